/**
 * The live-scan page: wires the protocol client to the scan list, the people, the notices and
 * the reconciliation (progress against the expected list, and what is still missing).
 */

import { CameraScanner } from "./camera.js";
import { h, readJson } from "./dom.js";
import { format, gettext, ngettext } from "./i18n.js";
import { LiveClient, State } from "./live-client.js";
import { MissingList } from "./missing-list.js";
import { Notices } from "./notices.js";
import { PeopleList } from "./people-list.js";
import { ProgressPanel, summaryFigures } from "./progress-panel.js";
import { Reconciliation } from "./reconciliation.js";
import { RoomStore } from "./room-store.js";
import { ScanList } from "./scan-list.js";
import { keepFocused } from "./scan-focus.js";

const CODE_MAX_LENGTH = 64;
const STATE_LABELS = {
  [State.CONNECTING]: () => gettext("Conectando…"),
  [State.ONLINE]: () => gettext("En línea"),
  [State.RECONNECTING]: () => gettext("Reconectando…"),
  [State.OFFLINE]: () => gettext("Sin conexión"),
  [State.CLOSED]: () => gettext("Cerrado"),
};

const $ = (id) => document.getElementById(id);
const config = readJson("live-config");
// The room as this browser last knew it: newer than this HTML when it is the offline copy.
const store = new RoomStore(config.user.id, config);
const kept = store.load();
if (config.inventoryId === null) {
  // Nobody opened this room yet, and the page's GET opens nothing: open it now with a POST. Read
  // everything from the start (seq 0): someone may have scanned since this page was rendered.
  try {
    Object.assign(config, await openRoom(config), { lastSeq: 0 });
  } catch (error) {
    if (!kept?.config) throw error;
    Object.assign(config, kept.config); // offline, in a room opened on an earlier visit
  }
}
const resumeFromKept = kept !== null && kept.seq > config.lastSeq;
if (resumeFromKept) config.lastSeq = kept.seq;
const me = config.user;
const ui = {
  form: $("scan-form"),
  field: $("scan-input"),
  submit: document.querySelector("#scan-form button[type=submit]"),
  feedback: $("scan-feedback"),
  connection: $("connection"),
  connectionLabel: $("connection-label"),
  completeButton: $("complete-button"),
  dialog: $("complete-dialog"),
  dialogPending: $("complete-pending"),
  terminated: $("terminated"),
  terminatedMessage: $("terminated-message"),
  terminatedSummary: $("terminated-summary"),
  terminatedReport: $("terminated-report"),
  terminatedHome: $("terminated-home"),
};

const scans = new ScanList({
  list: $("scan-list"),
  empty: $("scan-empty"),
  counters: { total: $("count-total"), mine: $("count-mine"), pending: $("count-pending") },
  me,
});
const people = new PeopleList({ list: $("people"), count: $("people-count"), staleNote: $("people-stale"), me });
const notices = new Notices($("notices"));
const initialScans = resumeFromKept ? kept.scans : readJson("initial-scans");
scans.reset(initialScans);
if (kept?.people.length && (resumeFromKept || navigator.onLine === false)) {
  // Opened with no signal: who was here last, shown as such until a `presence` greets us.
  people.set(kept.people);
  people.markStale();
}
const focusScanField = () => {
  if (!ui.field.disabled) ui.field.focus({ preventScroll: true });
};
const reconciliation = new Reconciliation({
  state: config.reconciliation,
  scans,
  grid: $("live-grid"),
  panel: new ProgressPanel({
    panel: $("progress-panel"),
    text: $("progress-text"),
    percent: $("progress-percent"),
    bar: $("progress-bar"),
    fill: $("progress-fill"),
    counted: $("progress-counted"),
    missing: $("progress-missing"),
    unexpected: $("progress-unexpected"),
    flagged: $("progress-flagged"),
  }),
  // Under blind counting the page has no missing list and never asks for it.
  missing:
    config.reconciliation.canSeeExpected && $("missing-panel")
      ? new MissingList({
          list: $("missing-list"),
          select: $("missing-location"),
          filter: $("missing-filter"),
          count: $("missing-count"),
          status: $("missing-status"),
          url: config.reconciliation.expectedUrl,
          onChosen: focusScanField, // a barcode scanner types into whatever has focus
        })
      : null,
});

// Scans typed or read by the camera in this tab. The outbox is shared by the user's tabs (so a
// reload keeps what was queued), and any tab may be the one the server answers: only this tab
// says "registered".
const sentHere = new Set();
// Camera reads that sounded "new": the server may still refuse one as a duplicate.
const readAsNew = new Map();
const camera = new CameraScanner({
  root: $("camera"),
  openButton: $("camera-open"),
  view: $("camera-view"),
  video: $("camera-video"),
  torchButton: $("camera-torch"),
  closeButton: $("camera-close"),
  status: $("camera-status"),
  onCode: (code) => {
    const duplicate = Boolean(scans.storedEntry(code));
    const item = submitCode(code);
    if (item && !duplicate) readAsNew.set(item.id, code);
    return item && { duplicate };
  },
});

const client = new LiveClient({
  room: { agency: config.agency, month: config.month, year: config.year },
  websocketPath: config.websocketPath,
  lastSeq: config.lastSeq,
  userId: me.id,
  heartbeatMs: config.heartbeatMs,
  urls: { inventory: config.inventoryUrl, scans: config.scansUrl },
  knownScanIds: initialScans.map((scan) => scan.id),
});
// Scans kept from an earlier visit (made offline, never answered) show as pending until sent.
for (const item of client.pending()) {
  if (item.kind === "scan") {
    scans.addPending(item);
    sentHere.add(item.id);
  } else {
    scans.markRemoving(item.code, item.scanId);
  }
}
if (config.status === "open") {
  const focusField = keepFocused(ui.field);
  listen();
  keepRoomState();
  bindControls(focusField);
  camera.init();
  client.start();
} else {
  // Completed meanwhile: what was kept can no longer be stored; say so once and forget it.
  client.discard();
  // The same words as a page that was open when it happened (the server's text is a fallback).
  ui.terminatedMessage.textContent = completedText(config.completedBy);
  scans.close(gettext("No se envió: el inventario ya está cerrado."));
}

function listen() {
  const on = (type, handler) => client.addEventListener(type, (event) => handler(event.detail));
  const tell = (template, values, kind) => notices.show(format(template, values), kind);

  let wasOnline = false;
  on("state", ({ state }) => {
    showConnection(state);
    if (state !== State.ONLINE) {
      scans.queueAll(); // nothing is on its way any more
      // Shown as last known until the `presence` that greets the next connection.
      if (state === State.RECONNECTING || state === State.OFFLINE) people.markStale();
    }
    // Back after a loss: a `progress` message (not replayed) may have been missed.
    if (state === State.ONLINE && wasOnline) reconciliation.resync();
    if (state === State.ONLINE) wasOnline = true;
  });
  on("presence", ({ users }) => people.set(users));
  on("user-joined", ({ userId, userName }) => {
    if (people.join(userId, userName) && userId !== me.id) {
      tell(gettext("%(name)s entró a la sala"), { name: userName });
    }
  });
  on("user-left", ({ userId, userName }) => {
    if (people.leave(userId) && userId !== me.id) {
      tell(gettext("%(name)s salió de la sala"), { name: userName });
    }
  });
  on("scan-added", (detail) => {
    const { scan, userName } = detail;
    scans.confirm(scan);
    reconciliation.scanAdded(detail);
    if (sentHere.has(scan.id)) showRegistered(scan.code, detail.match);
    else if (scan.userId !== me.id) {
      // A burst from one person is one notice that counts: "Ana escaneó 5 códigos".
      const key = `scanned:${scan.userId}`;
      notices.show((count) => scannedNotice(count, userName, scan.code), "info", { key });
    }
    sentHere.delete(scan.id);
  });
  on("scan-removed", (detail) => {
    const { scan, userId, userName } = detail;
    scans.removeScan(scan);
    reconciliation.scanRemoved(detail);
    if (userId !== me.id && !detail.replayed) {
      const key = `removed:${userId}`;
      notices.show((count) => removedNotice(count, userName, scan.code), "info", { key });
    }
  });
  on("snapshot", ({ scans: list }) => {
    scans.reset(list);
    reconciliation.resync(); // a snapshot carries no figures
  });
  on("progress", (detail) => reconciliation.progressChanged(detail));
  on("request-failed", ({ item, code, message, details }) => {
    if (item.kind === "remove") {
      if (code === "scan_not_found") scans.removeCode(item.code, item.scanId);
      else scans.restore(item.code, message, item.scanId);
      return;
    }
    if (code === "duplicate_scan" && readAsNew.has(item.id)) camera.refusedAsDuplicate(item.code);
    readAsNew.delete(item.id);
    const reason = refusalReason(item, code, message, details);
    scans.fail(item.id, reason);
    if (sentHere.delete(item.id)) showFeedback(`${item.code}: ${reason}`, "error");
  });
  on("request-sent", ({ item }) => {
    if (item.kind === "scan") scans.sending(item.id);
  });
  on("request-retrying", ({ item }) => {
    if (item.kind !== "scan") return;
    scans.retrying(item.id, gettext("Demasiados escaneos por minuto: se reintentará en unos segundos."));
    showFeedback(gettext("Demasiados escaneos seguidos; reintentando…"), "warning");
  });
  // The server's texts are protocol v1's, in Spanish for every client: the page says it in its own language.
  on("completed", ({ completedBy, summary }) => {
    reconciliation.completed(summary);
    notices.show(completedText(completedBy), "warning");
  });
  on("terminated", ({ completedBy, cause }) => {
    const text =
      cause === "session_terminated" && completedBy
        ? format(gettext("Tu sesión ha sido terminada porque %(name)s completó el inventario."), {
            name: completedBy,
          })
        : completedText(completedBy);
    endSession(text, null, { completed: true });
  });
  on("fatal", ({ closeCode, message }) => {
    const text = closeCode === 4401 ? gettext("Tu sesión expiró: inicia sesión de nuevo.") : message;
    endSession(text || gettext("No se pudo entrar a la sala."), closeCode === 4401 ? config.loginUrl : null);
  });
  on("server-error", ({ message }) => message && notices.show(message, "error"));
}

/** Keep the room's last known state in this browser, for a page opened with no signal. */
function keepRoomState() {
  const { inventoryId, inventoryUrl, scansUrl, status, reconciliation: state } = config;
  const read = () => ({
    seq: client.lastSeq,
    scans: [...scans.entries.values()]
      .filter((entry) => entry.state === "confirmed" || entry.state === "removing")
      .map(({ state: _state, reason: _reason, sending: _sending, ...scan }) => scan),
    people: [...people.people].map(([userId, userName]) => ({ userId, userName })),
    config: { inventoryId, inventoryUrl, scansUrl, status, reconciliation: state },
  });
  for (const type of ["presence", "user-joined", "user-left", "scan-added", "scan-removed", "snapshot"]) {
    client.addEventListener(type, () => store.saveSoon(read));
  }
  client.addEventListener("terminated", () => store.clear());
  store.saveSoon(read);
  if (resumeFromKept) {
    // The HTML's figures are older than the kept scans: read them again once connected.
    const refresh = ({ detail }) => {
      if (detail.state !== State.ONLINE) return;
      client.removeEventListener("state", refresh);
      reconciliation.resync();
    };
    client.addEventListener("state", refresh);
  }
}

function bindControls(focusField) {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = ui.field.value.trim();
    ui.field.value = "";
    if (code) submitCode(code);
  });

  $("scan-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const entry = scans.get(button.closest("li").dataset.id);
    if (!entry) return;
    if (button.dataset.action === "remove") {
      client.remove(entry.code, entry.id);
      scans.markRemoving(entry.code, entry.id);
    } else if (button.dataset.action === "cancel") {
      if (client.cancel(entry.id)) scans.delete(entry.id);
    } else {
      scans.delete(entry.id);
    }
  });

  ui.completeButton.addEventListener("click", () => {
    const unsent = client.pending().length;
    ui.dialogPending.hidden = unsent === 0;
    ui.dialogPending.textContent = format(
      ngettext(
        "Hay %(count)s cambio por enviar: se enviará antes de completar.",
        "Hay %(count)s cambios por enviar: se enviarán antes de completar.",
        unsent,
      ),
      { count: unsent },
    );
    ui.dialog.showModal();
  });
  ui.dialog.addEventListener("close", () => {
    if (ui.dialog.returnValue === "confirm") {
      ui.completeButton.disabled = true;
      client.complete();
      showFeedback(gettext("Completando el inventario…"), "info");
    }
    focusField();
  });
}

/** Queue a scan (typed or read by the camera) and show it as pending; null if refused here. */
function submitCode(code) {
  if (code.length > CODE_MAX_LENGTH) {
    const tooLong = gettext("El código no puede tener más de %(max)s caracteres.");
    showFeedback(format(tooLong, { max: CODE_MAX_LENGTH }), "error");
    return null;
  }
  const item = client.scan(code);
  sentHere.add(item.id);
  scans.addPending(item, { sending: client.isSending(item.id) });
  if (client.state === State.ONLINE) {
    showFeedback(format(gettext("Enviando %(code)s…"), { code }), "info");
  } else {
    showFeedback(format(gettext("%(code)s guardado: se enviará al reconectar."), { code }), "warning");
  }
  return item;
}

function showConnection(state) {
  ui.connection.dataset.state = state;
  ui.connectionLabel.textContent = STATE_LABELS[state]();
}

/** Our scan was stored: say so, and whether the books have it. */
function showRegistered(code, match) {
  if (match === "unexpected") {
    const text = gettext("%(code)s registrado, pero no está en la lista esperada.");
    showFeedback(format(text, { code }), "warning");
  } else if (match === "flagged") {
    const text = gettext("%(code)s registrado, pero el VIN parece mal leído: revísalo.");
    showFeedback(format(text, { code }), "warning");
  } else {
    showFeedback(format(gettext("%(code)s registrado"), { code }), "success");
  }
}

function showFeedback(text, kind) {
  ui.feedback.dataset.kind = kind;
  ui.feedback.textContent = text;
}

/** Someone else's scans: the code for the first of a burst, then how many. */
function scannedNotice(count, name, code) {
  if (count === 1) return format(gettext("%(name)s escaneó %(code)s"), { name, code });
  const many = ngettext("%(name)s escaneó %(count)s código", "%(name)s escaneó %(count)s códigos", count);
  return format(many, { name, count });
}

function removedNotice(count, name, code) {
  if (count === 1) return format(gettext("%(name)s eliminó %(code)s"), { name, code });
  const many = ngettext("%(name)s eliminó %(count)s código", "%(name)s eliminó %(count)s códigos", count);
  return format(many, { name, count });
}

function completedText(completedBy) {
  return completedBy
    ? format(gettext("El inventario ha sido completado por %(name)s."), { name: completedBy })
    : gettext("El inventario ya fue completado.");
}

function refusalReason(item, code, message, details) {
  switch (code) {
    case "duplicate_scan": {
      const first = scans.storedEntry(item.code);
      const byMe = first ? scans.isMine(first) : details.scannedBy === me.name;
      if (byMe) return gettext("Ya lo escaneaste tú.");
      return format(gettext("Ya lo escaneó %(name)s."), { name: details.scannedBy ?? "" });
    }
    case "invalid":
    case "invalid_data":
      return message || gettext("Código no válido.");
    default:
      return message || gettext("El servidor rechazó el escaneo.");
  }
}

/** The room is over: say why (with the final figures if completed), stop scanning, offer the way back. */
function endSession(text, loginUrl = null, { completed = false } = {}) {
  ui.terminatedMessage.textContent = text;
  if (loginUrl) {
    ui.terminatedMessage.append(" ", h("a", { attrs: { href: loginUrl }, text: gettext("Iniciar sesión") }));
  }
  ui.terminatedReport.hidden = !completed;
  ui.terminatedSummary.hidden = true;
  if (completed) {
    reconciliation.finalSummary().then((summary) => {
      if (!summary) return;
      ui.terminatedSummary.replaceChildren(...summaryFigures(summary));
      ui.terminatedSummary.hidden = false;
    });
  }
  ui.terminated.hidden = false;
  showFeedback("", "info");
  for (const control of [ui.field, ui.submit, ui.completeButton]) control.disabled = true;
  camera.disable();
  if (ui.dialog.open) ui.dialog.close("cancel");
  scans.close(gettext("No se envió: el inventario ya está cerrado."));
  showConnection(State.CLOSED);
  ui.terminatedHome.focus();
}

/** Open the room's inventory (POST to the page's own address); answer the page's config for it. */
async function openRoom({ openUrl, csrfCookieName }) {
  const prefix = `${csrfCookieName}=`;
  const token = document.cookie
    .split(";")
    .map((part) => part.trim())
    .find((part) => part.startsWith(prefix));
  const csrf = token ? decodeURIComponent(token.slice(prefix.length)) : "";
  const fallback = document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
  const response = await fetch(openUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrf || fallback },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !Number.isInteger(body.inventoryId)) {
    // Refused, or not the server's answer (a sign-in page after the session ended).
    const feedback = document.getElementById("scan-feedback");
    if (feedback) feedback.textContent = body.detail || gettext("No se pudo entrar a la sala.");
    throw new Error(`opening the room failed: ${response.status}`);
  }
  return body;
}
