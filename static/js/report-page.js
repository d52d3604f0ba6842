/**
 * The variance report page: managers give variances their reasons and import the expected list
 * without leaving it (the REST endpoints of docs/reconciliation.md, session auth with the CSRF
 * cookie); tables wider than the screen say that they scroll.
 */

import { h, readJson } from "./dom.js";
import { format, gettext, language, ngettext } from "./i18n.js";

const config = readJson("report-config");
const number = new Intl.NumberFormat(language);

function csrfToken() {
  const prefix = `${config.csrfCookieName}=`;
  for (const part of document.cookie.split(";")) {
    const cookie = part.trim();
    if (cookie.startsWith(prefix)) return decodeURIComponent(cookie.slice(prefix.length));
  }
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

/** Send a write; answer `{ok, status, data}` whatever the server says, or throw when offline. */
async function send(url, { method, json, body }) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers,
    body: json !== undefined ? JSON.stringify(json) : body,
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  return { ok: response.ok, status: response.status, data };
}

/** What a refusal says: `detail`, or DRF's first field error; and which field it names. */
function refusal({ status, data }) {
  if (data && typeof data.detail === "string") return { message: data.detail, field: data.field ?? null };
  if (data && typeof data === "object") {
    for (const [field, value] of Object.entries(data)) {
      if (Array.isArray(value) && typeof value[0] === "string") return { message: value[0], field };
    }
  }
  return {
    message: format(gettext("El servidor respondió con un error (HTTP %(status)s)."), { status }),
    field: null,
  };
}

function say(element, state, text) {
  element.dataset.state = state;
  element.textContent = text;
}

// The "still unexplained" figure and the totals by reason follow every saved explanation.

const unexplainedFigure = document.getElementById("figure-unexplained");
const reasonsCard = document.getElementById("reasons-card");
let unexplained = Number(unexplainedFigure?.dataset.value ?? 0);

function countReason(reason, delta) {
  if (!reason || !reasonsCard) return;
  const row = reasonsCard.querySelector(`tr[data-reason="${CSS.escape(reason)}"]`);
  if (!row) return;
  const cell = row.querySelector("td");
  const count = Math.max(0, Number(row.dataset.count ?? cell.textContent.trim()) + delta);
  row.dataset.count = String(count);
  cell.textContent = number.format(count);
  row.hidden = count === 0;
}

function explanationChanged(before, after) {
  if (before === after) return;
  countReason(before, -1);
  countReason(after, +1);
  if (Boolean(before) !== Boolean(after)) {
    unexplained = Math.max(0, unexplained + (after ? -1 : 1));
    unexplainedFigure.dataset.value = String(unexplained);
    unexplainedFigure.textContent = number.format(unexplained);
  }
  if (reasonsCard) {
    reasonsCard.hidden = !reasonsCard.querySelector("tr[data-reason]:not([hidden])");
  }
}

function explainForm(form) {
  const row = form.closest("tr");
  const reason = form.elements.reason;
  const note = form.elements.note;
  const button = form.querySelector("button[type=submit]");
  const status = form.querySelector(".explain-status");

  note.addEventListener("input", () => note.removeAttribute("aria-invalid"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    note.removeAttribute("aria-invalid");
    say(status, "pending", gettext("Guardando…"));
    try {
      const answer = await send(config.exceptionsUrl, {
        method: "PUT",
        json: { code: row.dataset.code, reason: reason.value, note: note.value },
      });
      if (answer.ok) {
        const saved = answer.data?.results?.[0] ?? {};
        const before = row.dataset.reason ?? "";
        const after = saved.reason ?? "";
        row.dataset.reason = after;
        reason.value = after;
        note.value = saved.note ?? "";
        explanationChanged(before, after);
        say(
          status,
          "saved",
          after
            ? format(gettext("Guardado: %(reason)s."), { reason: saved.reasonLabel ?? after })
            : gettext("Guardado: sin explicar."),
        );
      } else {
        const { message, field } = refusal(answer);
        say(status, "error", message);
        if (field === "note") {
          note.setAttribute("aria-invalid", "true");
          note.focus();
        }
      }
    } catch {
      say(status, "error", gettext("Sin conexión: no se guardó. Inténtalo de nuevo."));
    } finally {
      button.disabled = false;
    }
  });
}

// Importing the expected list: errors by line, or the report again with the new list.

function importForm(form) {
  const file = form.elements.file;
  const button = form.querySelector("button[type=submit]");
  const status = document.getElementById("import-status");
  const errors = document.getElementById("import-errors");
  const errorRows = errors.querySelector("tbody");
  const more = document.getElementById("import-errors-more");

  function showErrors(list, total) {
    errorRows.replaceChildren(
      ...list.map(({ line, message }) =>
        h(
          "tr",
          {},
          h("td", { class: "num", text: line === null ? gettext("Archivo") : number.format(line) }),
          h("td", { text: message }),
        ),
      ),
    );
    more.hidden = total <= list.length;
    more.textContent = more.hidden
      ? ""
      : format(gettext("Se muestran %(shown)s de %(count)s problemas."), {
          shown: number.format(list.length),
          count: number.format(total),
        });
    errors.hidden = list.length === 0;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    showErrors([], 0);
    const chosen = file.files?.[0];
    if (!chosen) {
      say(status, "error", gettext("Elige un archivo CSV o XLSX."));
      file.focus();
      return;
    }
    const body = new FormData();
    body.append("file", chosen);
    button.disabled = true;
    say(status, "pending", gettext("Importando…"));
    try {
      const answer = await send(config.expectedUrl, { method: "POST", body });
      if (answer.ok) {
        const count = answer.data?.imported ?? 0;
        say(
          status,
          "saved",
          format(
            ngettext(
              "Se importó %(count)s vehículo. Actualizando el informe…",
              "Se importaron %(count)s vehículos. Actualizando el informe…",
              count,
            ),
            { count: number.format(count) },
          ),
        );
        window.location.reload();
        return;
      }
      say(status, "error", refusal(answer).message);
      const list = Array.isArray(answer.data?.errors) ? answer.data.errors : [];
      showErrors(list, answer.data?.errorCount ?? list.length);
    } catch {
      say(status, "error", gettext("Sin conexión: no se importó nada. Inténtalo de nuevo."));
    }
    button.disabled = false;
  });
}

// Wide tables: the hint shows only while the table is wider than its box.

function watchOverflow(box) {
  const scroller = box.querySelector(".table-scroll");
  const update = () => {
    box.dataset.overflowing = String(scroller.scrollWidth > scroller.clientWidth + 1);
  };
  new ResizeObserver(update).observe(scroller);
  update();
}

for (const box of document.querySelectorAll(".scroll-box")) watchOverflow(box);
if (config.isManager) {
  for (const form of document.querySelectorAll(".explain-form")) explainForm(form);
  const upload = document.getElementById("import-form");
  if (upload) importForm(upload);
}
