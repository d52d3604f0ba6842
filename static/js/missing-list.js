/**
 * What the books list and nobody has scanned yet, filterable by location, so the team knows
 * where to walk next. Loaded from `GET /api/inventories/{id}/expected/?state=missing`; a vehicle
 * found live leaves it at once, and the coordinator reloads it when the figures disagree.
 */

import { h } from "./dom.js";
import { format, gettext, language } from "./i18n.js";
import { getJson, sameOriginPath } from "./live-client.js";

const PAGE_SIZE = 500;
// A phone does not need thousands of rows: past this many, the location filter narrows it down.
const MAX_SHOWN = 2000;
const number = new Intl.NumberFormat(language);

/** The form in which codes are compared with the books (inventory/reconciliation/matching.py). */
export function codeKey(code) {
  return String(code).trim().toUpperCase();
}

export class MissingList {
  /**
   * @param {object} options
   * @param {string} options.url  the expected list's endpoint
   * @param {() => void} [options.onChosen]  a location was picked with the pointer
   */
  constructor({ list, select, filter, count, status, url, onChosen }) {
    this.list = list;
    this.select = select;
    this.filter = filter;
    this.count = count;
    this.status = status;
    this.url = url;
    this.items = []; // the missing vehicles of the chosen location, in file order
    this.total = 0; // how many the server has for that filter (more than shown when capped)
    this.locations = []; // [{location, expected, missing}]
    this.choices = [null]; // one per <option>: null is "every location"
    this.location = null;
    this.request = 0;
    this.shownFor = undefined; // the location the rows on screen belong to

    let byPointer = false;
    select.addEventListener("pointerdown", () => (byPointer = true));
    select.addEventListener("keydown", () => (byPointer = false));
    select.addEventListener("change", () => {
      this.location = this.choices[select.selectedIndex] ?? null;
      this.load();
      if (byPointer) onChosen?.();
    });
  }

  /** How many are missing in every location together, by the location counts. */
  get missingByLocation() {
    return this.locations.reduce((sum, place) => sum + place.missing, 0);
  }

  get expectedByLocation() {
    return this.locations.reduce((sum, place) => sum + place.expected, 0);
  }

  setLocations(locations) {
    this.locations = Array.isArray(locations) ? locations.map((place) => ({ ...place })) : [];
    if (this.location !== null && !this.locations.some((place) => place.location === this.location)) {
      this.location = null; // a new list without that location
    }
    this.renderLocations();
  }

  /** Reload the rows for the chosen location; false if it failed (the caller retries). */
  async load() {
    const request = ++this.request;
    const location = this.location;
    if (this.shownFor !== location) {
      this.list.replaceChildren();
      this.showStatus(gettext("Cargando…"));
    }
    this.list.setAttribute("aria-busy", "true");
    const query = new URLSearchParams({ state: "missing", limit: String(PAGE_SIZE) });
    if (location !== null) query.set("location", location);
    try {
      const items = [];
      let total = 0;
      let url = `${this.url}?${query}`;
      while (url && items.length < MAX_SHOWN) {
        const page = await getJson(url);
        if (request !== this.request) return true; // the filter changed meanwhile
        total = Number.isInteger(page.count) ? page.count : 0;
        items.push(...(Array.isArray(page.results) ? page.results : []));
        url = page.next ? sameOriginPath(page.next) : null;
      }
      this.items = items.slice(0, MAX_SHOWN);
      this.total = Math.max(total, this.items.length);
      this.shownFor = location;
      this.render();
      return true;
    } catch (error) {
      if (request !== this.request) return true;
      if (error.status === 403) throw error; // blind counting was turned on: the caller hides us
      this.showStatus(gettext("No se pudo cargar la lista de faltantes; se volverá a intentar."));
      return false;
    } finally {
      if (request === this.request) this.list.removeAttribute("aria-busy");
    }
  }

  /** A vehicle of the list was scanned: drop it now. Whether it was among the rows shown. */
  found(code) {
    const key = codeKey(code);
    const index = this.items.findIndex((item) => codeKey(item.code) === key);
    if (index === -1) return false;
    const [item] = this.items.splice(index, 1);
    this.total = Math.max(this.total - 1, 0);
    const place = this.locations.find((entry) => entry.location === item.location);
    if (place) place.missing = Math.max(place.missing - 1, 0);
    this.render();
    this.renderLocations();
    return true;
  }

  // Rendering.

  render() {
    const filtered = this.location !== null;
    this.list.replaceChildren(...this.items.map((item) => this.row(item, { filtered })));
    this.count.textContent = number.format(this.total);
    if (this.total === 0) {
      this.showStatus(
        filtered
          ? format(gettext("No falta ninguno en %(location)s."), { location: placeName(this.location) })
          : gettext("Ya se encontraron todos los vehículos de la lista."),
      );
    } else if (this.items.length < this.total) {
      this.showStatus(
        format(gettext("Se muestran %(shown)s de %(count)s: filtra por ubicación."), {
          shown: number.format(this.items.length),
          count: number.format(this.total),
        }),
      );
    } else {
      this.showStatus("");
    }
  }

  row(item, { filtered }) {
    const details = [
      item.stockNumber ? format(gettext("Stock %(stock)s"), { stock: item.stockNumber }) : null,
      filtered ? null : placeName(item.location),
    ].filter(Boolean);
    return h(
      "li",
      { class: "missing", data: { code: item.code } },
      h("span", { class: "missing-code", text: item.code }),
      item.description ? h("span", { class: "missing-description", text: item.description }) : null,
      details.length ? h("span", { class: "missing-meta", text: details.join(" · ") }) : null,
    );
  }

  renderLocations() {
    const choices = [null, ...this.locations.map((place) => place.location)];
    const labels = [
      format(gettext("Todas las ubicaciones (%(count)s)"), { count: number.format(this.missingByLocation) }),
      ...this.locations.map((place) =>
        format(gettext("%(location)s (%(count)s)"), {
          location: placeName(place.location),
          count: number.format(place.missing),
        }),
      ),
    ];
    const same =
      choices.length === this.choices.length && choices.every((choice, i) => choice === this.choices[i]);
    if (same && this.select.options.length === labels.length) {
      // Only the counts changed: leave the options (and an open picker) in place.
      labels.forEach((label, i) => {
        if (this.select.options[i].textContent !== label) this.select.options[i].textContent = label;
      });
    } else {
      this.choices = choices;
      this.select.replaceChildren(
        ...labels.map((label, i) => h("option", { attrs: { value: String(i) }, text: label })),
      );
    }
    this.select.selectedIndex = Math.max(this.choices.indexOf(this.location), 0);
    // One location (or none named) leaves nothing to choose between.
    this.filter.hidden = this.locations.length < 2;
  }

  showStatus(text) {
    if (this.status.textContent !== text) this.status.textContent = text;
    this.status.hidden = !text;
  }
}

function placeName(location) {
  return location || gettext("Sin ubicación");
}
