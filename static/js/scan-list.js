/**
 * The list of scans, newest first, keyed by scan id, with the counters.
 *
 * Row states: pending (not yet echoed: "queued" until this tab sends it, then "sending"),
 * retrying (the server asked us to slow down), confirmed (stored), removing (removal sent),
 * failed (refused, with the reason).
 */

import { h } from "./dom.js";
import { format, gettext, language } from "./i18n.js";

const STATE_LABELS = {
  queued: () => gettext("En cola"),
  pending: () => gettext("Enviando"),
  retrying: () => gettext("Reintentando"),
  confirmed: () => gettext("Confirmado"),
  removing: () => gettext("Eliminando"),
  failed: () => gettext("Rechazado"),
};
// How a stored scan compares with the expected list; "expected" (in the books) needs no mark.
const MATCH_MARKS = {
  unexpected: () => ({
    label: gettext("No esperado"),
    title: gettext("No está en la lista esperada (los libros)."),
  }),
  flagged: () => ({
    label: gettext("VIN dudoso"),
    title: gettext("El dígito verificador del VIN no cuadra: probablemente se leyó mal."),
    hint: gettext("Revisa el código: el VIN parece mal leído."),
  }),
};
const COUNTED = new Set(["confirmed", "removing"]);
const UNSENT = new Set(["pending", "retrying"]);

const timeOnly = new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateAndTime = new Intl.DateTimeFormat(language, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

export class ScanList {
  constructor({ list, empty, counters, me }) {
    this.list = list;
    this.empty = empty;
    this.counters = counters;
    this.me = me;
    this.entries = new Map();
    this.readOnly = false;
  }

  /** Replace the stored scans with the server's list; unsent and refused rows stay. */
  reset(scans) {
    const next = new Map();
    for (const scan of scans) {
      const known = this.entries.get(scan.id);
      const state = known?.state === "removing" ? "removing" : "confirmed";
      next.set(scan.id, { ...scan, match: matchOf(scan, known), state, reason: "" });
    }
    for (const entry of this.entries.values()) {
      if (!COUNTED.has(entry.state) && !next.has(entry.id)) next.set(entry.id, entry);
    }
    this.entries = next;
    const sorted = [...next.values()].sort((a, b) => time(b) - time(a));
    this.list.replaceChildren(...sorted.map((entry) => this.render(entry)));
    this.update();
  }

  addPending(item, { sending = false } = {}) {
    for (const entry of this.entries.values()) {
      if (entry.code === item.code && entry.state === "failed") this.delete(entry.id);
    }
    const { id, code, timestamp } = item;
    this.put({ id, code, timestamp, user: this.me.name, userId: this.me.id, state: "pending", sending });
  }

  /** The scan is on its way (again, after a retry). */
  sending(id) {
    const entry = this.entries.get(id);
    if (entry && UNSENT.has(entry.state)) this.patch(id, { state: "pending", sending: true, reason: "" });
  }

  /** The connection is gone: every unsent scan waits in the queue again. */
  queueAll() {
    for (const entry of this.entries.values()) {
      if (entry.state === "pending" && entry.sending) this.patch(entry.id, { sending: false });
    }
  }

  /** A stored scan; its `match` (null: no expected list) comes with scan_added, not with a snapshot. */
  confirm(scan) {
    const known = this.entries.get(scan.id);
    const state = known?.state === "removing" ? "removing" : "confirmed";
    this.put({ ...scan, match: matchOf(scan, known), state, reason: "" });
  }

  fail(id, reason) {
    this.patch(id, { state: "failed", reason });
  }

  retrying(id, reason) {
    this.patch(id, { state: "retrying", reason });
  }

  /** A removal is on its way: of the scan `id` when known, else of the code's stored scan. */
  markRemoving(code, id = undefined) {
    const entry = this.stored(code, id);
    if (entry) this.patch(entry.id, { state: "removing", reason: "" });
  }

  restore(code, reason = "", id = undefined) {
    const entry = this.stored(code, id);
    if (entry) this.patch(entry.id, { state: "confirmed", reason });
  }

  removeCode(code, id = undefined) {
    const entry = this.stored(code, id);
    if (entry) this.delete(entry.id);
  }

  /** A removed scan: by its id, so a later re-scan of the same code stays; by code if it has none. */
  removeScan(scan) {
    this.removeCode(scan.code, scan.id);
  }

  delete(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.li.remove();
    this.entries.delete(id);
    this.update();
  }

  get(id) {
    return this.entries.get(id);
  }

  /** The stored scan of a code, or null; the server counts a code once whatever its letter case. */
  storedEntry(code) {
    const key = code.trim().toUpperCase();
    for (const entry of this.entries.values()) {
      if (COUNTED.has(entry.state) && entry.code.trim().toUpperCase() === key) return entry;
    }
    return null;
  }

  /** The codes of the stored scans. */
  storedCodes() {
    return new Set([...this.entries.values()].filter((entry) => COUNTED.has(entry.state)).map((e) => e.code));
  }

  /** Mark again the stored scans among `codes` after the expected list changed. */
  remark(codes, matchFor) {
    for (const entry of this.entries.values()) {
      if (!COUNTED.has(entry.state) || !codes.has(entry.code)) continue;
      const match = matchFor(entry.code);
      if (match === entry.match) continue;
      entry.match = match;
      this.replaceRow(entry);
    }
  }

  /** Completed: no more actions; unsent rows are refused with the reason. */
  close(reason) {
    this.readOnly = true;
    for (const entry of [...this.entries.values()]) {
      if (UNSENT.has(entry.state)) entry.state = "failed";
      if (entry.state === "failed" && !entry.reason) entry.reason = reason;
      if (entry.state === "removing") entry.state = "confirmed";
      this.replaceRow(entry);
    }
    this.update();
  }

  // Rendering.

  stored(code, id) {
    if (!id) return this.storedWithCode(code);
    const entry = this.entries.get(id);
    return entry && COUNTED.has(entry.state) ? entry : null;
  }

  storedWithCode(code) {
    for (const entry of this.entries.values()) {
      if (entry.code === code && COUNTED.has(entry.state)) return entry;
    }
    return null;
  }

  put(entry) {
    const old = this.entries.get(entry.id);
    this.entries.set(entry.id, entry);
    if (old) {
      entry.li = old.li;
      this.replaceRow(entry);
    } else {
      this.insert(entry);
    }
    this.update();
  }

  patch(id, changes) {
    const entry = this.entries.get(id);
    if (!entry) return;
    Object.assign(entry, changes);
    this.replaceRow(entry);
    this.update();
  }

  insert(entry) {
    const row = this.render(entry);
    const later = [...this.list.children].find((li) => time(this.entries.get(li.dataset.id)) < time(entry));
    this.list.insertBefore(row, later ?? null);
  }

  replaceRow(entry) {
    const old = entry.li;
    const row = this.render(entry);
    old?.replaceWith(row);
  }

  render(entry) {
    const moment = new Date(entry.timestamp);
    const action = this.actionFor(entry);
    const mark = COUNTED.has(entry.state) ? MATCH_MARKS[entry.match]?.() : null;
    const data = { id: entry.id, code: entry.code, state: entry.state };
    if (entry.match) data.match = entry.match;
    const label = entry.state === "pending" && !entry.sending ? "queued" : entry.state;
    if (entry.state === "pending") data.sending = String(Boolean(entry.sending));
    entry.li = h(
      "li",
      { class: "scan", data },
      h("span", { class: "scan-icon", attrs: { "aria-hidden": "true" } }),
      h(
        "div",
        { class: "scan-body" },
        h(
          "span",
          { class: "scan-line" },
          h("span", { class: "scan-code", text: entry.code }),
          mark
            ? h("span", {
                class: `scan-mark scan-mark-${entry.match}`,
                attrs: { title: mark.title },
                text: mark.label,
              })
            : null,
        ),
        h(
          "span",
          { class: "scan-meta" },
          h("span", { class: "scan-user", text: entry.user ?? "" }),
          h("time", {
            attrs: { datetime: entry.timestamp, title: moment.toLocaleString(language) },
            text: when(moment),
          }),
        ),
        entry.reason ? h("span", { class: "scan-reason", text: entry.reason }) : null,
        mark?.hint && !entry.reason ? h("span", { class: "scan-hint", text: mark.hint }) : null,
      ),
      h("span", { class: "scan-state", text: STATE_LABELS[label]() }),
      action
        ? h("button", {
            class: "scan-action",
            data: { action: action.name },
            attrs: {
              type: "button",
              "aria-label": format(action.label, { code: entry.code }),
              title: action.title,
            },
            text: "×",
          })
        : null,
    );
    return entry.li;
  }

  actionFor(entry) {
    if (this.readOnly) return entry.state === "failed" ? dismiss() : null;
    if (COUNTED.has(entry.state)) {
      if (entry.state === "removing") return null;
      return { name: "remove", label: gettext("Eliminar %(code)s"), title: gettext("Eliminar") };
    }
    if (UNSENT.has(entry.state)) {
      return { name: "cancel", label: gettext("Cancelar %(code)s"), title: gettext("Cancelar") };
    }
    return dismiss();
  }

  update() {
    let total = 0;
    let mine = 0;
    let unsent = 0;
    for (const entry of this.entries.values()) {
      if (COUNTED.has(entry.state)) {
        total += 1;
        if (this.isMine(entry)) mine += 1;
      } else if (UNSENT.has(entry.state)) {
        unsent += 1;
      }
    }
    this.counters.total.textContent = String(total);
    this.counters.mine.textContent = String(mine);
    this.counters.pending.textContent = String(unsent);
    this.empty.hidden = this.entries.size > 0;
  }

  isMine(entry) {
    // Snapshots carry the scanner's name but not always its id.
    return entry.userId ? entry.userId === this.me.id : entry.user === this.me.name;
  }
}

/** The scan's match if it brought one, else what was known of it (snapshots carry none). */
function matchOf(scan, known) {
  return scan.match !== undefined ? scan.match : (known?.match ?? null);
}

function dismiss() {
  return { name: "dismiss", label: gettext("Descartar %(code)s"), title: gettext("Descartar") };
}

function time(entry) {
  return entry ? Date.parse(entry.timestamp) || 0 : 0;
}

function when(moment) {
  if (Number.isNaN(moment.getTime())) return "";
  const today = moment.toDateString() === new Date().toDateString();
  return today ? timeOnly.format(moment) : dateAndTime.format(moment);
}
