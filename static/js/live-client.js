/**
 * The live room's protocol client, with no DOM: the page listens to the events it dispatches.
 *
 * - One WebSocket, reconnected with exponential backoff and jitter (at once after 1012, a
 *   server restarting: the socket moves to another instance).
 * - Resync by sequence number: every change broadcast carries `data.seq` (gap-free per
 *   inventory); a reconnect asks for `?since=<last seq>` and the server replays what was
 *   missed, or sends a `snapshot`. When the socket cannot resume, the list is refetched by REST.
 * - An outbox in localStorage: scans and removals made offline are sent when the room is back,
 *   up to MAX_IN_FLIGHT at a time: each request carries a `ref` (its id) that the server echoes
 *   in its direct answer (the own scan_added/scan_removed, or an error), so every answer finds
 *   its request. Each scan carries
 *   a client-generated id that the server uses as an idempotency key, so a resend never
 *   counts twice. A removal names the scan's id when it is known, so a resend never removes a
 *   later re-scan of the same code; a scan resent after it was removed is refused
 *   (`scan_removed`) and dropped.
 *
 * - The outbox is shared by the user's tabs (a reload keeps what was queued). Each request
 *   names the tab that queued it, and only that tab sends it while it is open, so its answer
 *   (stored, refused) reaches the tab where it was typed and nothing is sent twice; a request
 *   whose tab is gone is sent by any other. Open tabs are known by the Web Locks each holds;
 *   without Web Locks (plain HTTP away from localhost) every tab may send any request, and the
 *   idempotency key still stores each scan once.
 * - The browser's `offline` event drops the socket at once (a socket left open only times out
 *   later), and no reconnect is tried until `online`, which reconnects at once.
 *
 * Events (CustomEvent, payload in `detail`): state, presence, user-joined, user-left,
 * scan-added, scan-removed (`replayed`: it answers a removal sent again), snapshot, request-sent,
 * request-failed, request-retrying, completed,
 * terminated (`cause`: "session_terminated" when the room was closed under us, "completed" when
 * it was found completed), fatal, server-error; and from the reconciliation extension: `match` and
 * `progress` on scan-added, `progress` on scan-removed, `summary` on completed, and progress.
 */

export const State = Object.freeze({
  CONNECTING: "connecting",
  ONLINE: "online",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  CLOSED: "closed",
});

// Close codes of protocol v1 (realtime/wire.py; tests/realtime/test_wire.py checks these copies).
const CLOSE_SERVER_ERROR = 1011;
// The instance is stopping (a deploy): another one takes the socket at once, so no backoff.
const CLOSE_SERVICE_RESTART = 1012;
const CLOSE_COMPLETED = 4409;
// Live delivery is down, or the instance has too many sockets joining: come back later.
const CLOSE_UNAVAILABLE = 4503;
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);

// Error codes that answer the request in flight (realtime/wire.py ERROR_CODES).
const REPLY_ERROR_CODES = new Set([
  "duplicate_scan",
  "scan_id_conflict",
  "scan_not_found",
  "scan_removed",
  "invalid",
  "invalid_data",
  "wrong_room",
  "internal_error",
]);

const REPLY_TIMEOUT_MS = 10000;
// Requests sent and not yet answered, each matched to its answer by `ref`.
export const MAX_IN_FLIGHT = 8;
const TAB_LOCK_PREFIX = "inventario:tab:";
const RATE_LIMIT_RETRY_MS = 5000;

/** Milliseconds to wait before reconnect attempt `attempt` (0-based): half fixed, half random. */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 15000 } = {}, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

// After a 4503 every client of the cluster comes back at about the same time (Redis is back for
// all of them at once): up to this much more, at random, spreads their joins out.
const UNAVAILABLE_JITTER_MS = 3000;

/** Milliseconds to wait after a 4503: the server's `retryAfter` (else the backoff), plus jitter. */
export function unavailableDelay(attempt, retryAfter, random = Math.random) {
  const base =
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : backoffDelay(attempt, undefined, random);
  return Math.round(base + random() * UNAVAILABLE_JITTER_MS);
}

/** A v4 UUID; crypto.randomUUID exists only in secure contexts (HTTPS or localhost). */
export function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Requests not yet answered by the server, kept in localStorage so a reload or a crash keeps them. */
export class Outbox {
  constructor(key, storage = globalThis.localStorage) {
    this.key = key;
    this.storage = storage;
    this.memory = [];
  }

  all() {
    try {
      const items = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(items) ? items.filter(isItem) : [];
    } catch {
      return this.memory.slice();
    }
  }

  push(item) {
    this.write([...this.all().filter((other) => other.id !== item.id), item]);
  }

  remove(id) {
    const items = this.all();
    const kept = items.filter((item) => item.id !== id);
    this.write(kept);
    return kept.length !== items.length;
  }

  clear() {
    const items = this.all();
    this.write([]);
    return items;
  }

  write(items) {
    this.memory = items;
    try {
      if (items.length) this.storage.setItem(this.key, JSON.stringify(items));
      else this.storage.removeItem(this.key);
    } catch {
      // Private mode or a full quota: keep the items in memory for this page's life.
    }
  }
}

function isItem(item) {
  const kinds = ["scan", "remove"];
  if (!item || typeof item.id !== "string" || typeof item.code !== "string") return false;
  return kinds.includes(item.kind) && (item.scanId === undefined || typeof item.scanId === "string");
}

/** Whether a queued removal asks for the removal of this scan: by its id when it names one. */
function removes(item, scan) {
  if (item.kind !== "remove") return false;
  return item.scanId ? item.scanId === scan.id : item.code === scan.code;
}

export class LiveClient extends EventTarget {
  /**
   * @param {object} options
   * @param {{agency: string, month: string, year: number}} options.room
   * @param {string} options.websocketPath  e.g. "/ws/inventory"
   * @param {number} options.lastSeq  the sequence the initial state was read at
   * @param {string} options.userId
   * @param {{inventory: string, scans: string}} options.urls  REST fallback
   * @param {string[]} [options.knownScanIds]  ids already stored: dropped from the outbox
   */
  constructor({ room, websocketPath, lastSeq, userId, urls, heartbeatMs = 30000, knownScanIds = [] }) {
    super();
    this.room = { agency: room.agency, month: String(room.month), year: Number(room.year) };
    this.websocketPath = websocketPath;
    this.lastSeq = lastSeq;
    this.userId = String(userId);
    this.urls = urls;
    this.heartbeatMs = heartbeatMs;
    const roomKey = `${room.agency.toLowerCase()}/${room.month}/${room.year}`;
    this.outbox = new Outbox(`inventario:outbox:v1:${this.userId}:${roomKey}`);
    for (const id of knownScanIds) this.outbox.remove(id);

    this.state = State.CONNECTING;
    this.ws = null;
    this.opened = false;
    this.joined = false;
    this.everJoined = false;
    this.attempt = 0;
    // Requests sent on this socket and not yet answered, by ref (the request's id).
    this.inflight = new Map();
    this.completeRequested = false;
    this.completeSentOn = null;
    this.needsResync = false;
    this.resyncing = false;
    this.terminated = false;
    this.lastError = null;
    this.lastHeard = 0;
    this.pausedUntil = 0;
    this.timers = {};
    this.tabId = newId();
    // The ids of the open tabs of this browser; null until known.
    this.openTabs = globalThis.navigator?.locks ? null : new Set();
  }

  // Public API.

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.goOffline());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") return;
      if (this.joined) this.send({ type: "user_joined", data: { ...this.room } });
      else this.reconnectNow();
    });
    this.timers.heartbeat = setInterval(() => this.checkHeartbeat(), Math.min(this.heartbeatMs / 2, 15000));
    // Another tab queued or answered something: what waited on it may go now.
    window.addEventListener("storage", (event) => {
      if (event.key === this.outbox.key) this.pump();
    });
    if (navigator.locks) {
      // Held for the life of the page: other tabs see this one is open.
      navigator.locks.request(`${TAB_LOCK_PREFIX}${this.tabId}`, () => new Promise(() => {}));
      this.findOpenTabs();
      // After a reload, the page before may hold its lock a moment longer: look again soon.
      this.timers.tabs = setTimeout(() => this.findOpenTabs(), 1500);
    }
    this.connect();
  }

  /** Queue a scan; it is sent now if the room is joined, else when it is. */
  scan(code) {
    const item = { kind: "scan", id: newId(), code, timestamp: now(), tab: this.tabId };
    this.outbox.push(item);
    this.pump();
    return item;
  }

  /** Queue the removal of a stored scan: the one with `scanId` when known, else the code's. */
  remove(code, scanId = undefined) {
    const item = { kind: "remove", id: newId(), code, tab: this.tabId };
    if (typeof scanId === "string" && scanId) item.scanId = scanId;
    this.outbox.push(item);
    this.pump();
    return item;
  }

  /** Drop a request not yet sent; false when it is already on its way. */
  cancel(id) {
    return !this.inflight.has(id) && this.outbox.remove(id);
  }

  /** Complete the inventory once everything queued before has been answered. */
  complete() {
    this.completeRequested = true;
    this.pump();
  }

  pending() {
    return this.outbox.all();
  }

  /** Forget every unsent request: the inventory was completed while they waited. */
  discard() {
    return this.outbox.clear();
  }

  reconnectNow() {
    if (this.terminated || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  /** Whether this request has been sent and awaits its answer. */
  isSending(id) {
    return this.inflight.has(id);
  }

  /** The browser has no network: say so now and stop trying until it is back (`online`). */
  goOffline() {
    if (this.terminated) return;
    clearTimeout(this.timers.reconnect);
    // Handled as a loss now: the requests in flight stay queued and is sent again after `online`.
    if (this.ws) this.dropSocket();
    this.setState(State.OFFLINE);
  }

  // The socket.

  async connect() {
    clearTimeout(this.timers.reconnect);
    if (this.terminated || this.ws || this.resyncing) return;
    if (navigator.onLine === false) {
      // Nothing can connect; the `online` event calls reconnectNow().
      this.setState(State.OFFLINE);
      return;
    }
    if (this.needsResync) {
      this.resyncing = true;
      try {
        await this.resyncFromRest();
        this.needsResync = false;
      } catch {
        this.scheduleReconnect();
        return;
      } finally {
        this.resyncing = false;
      }
      if (this.terminated || this.ws) return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const { agency, month, year } = this.room;
    const path = `${this.websocketPath}/${encodeURIComponent(agency)}/${month}/${year}`;
    const ws = new WebSocket(`${scheme}://${location.host}${path}?since=${this.lastSeq}`);
    this.ws = ws;
    this.opened = false;
    this.joined = false;
    this.lastError = null;
    this.lastHeard = Date.now();
    ws.addEventListener("open", () => {
      if (ws === this.ws) this.opened = true;
    });
    ws.addEventListener("message", (event) => ws === this.ws && this.receive(event.data));
    ws.addEventListener("close", (event) => ws === this.ws && this.closed(event.code));
  }

  closed(code) {
    const { opened, joined } = this;
    this.ws = null;
    this.joined = false;
    this.inflight.clear();
    clearTimeout(this.timers.reply);
    if (this.terminated) return;
    if (code === CLOSE_COMPLETED) {
      this.terminate(this.lastError?.message ?? "", this.lastError?.completedBy, "completed");
      return;
    }
    if (FINAL_CLOSE_CODES.has(code)) {
      this.setState(State.CLOSED);
      this.emit("fatal", { closeCode: code, message: this.lastError?.message ?? "" });
      return;
    }
    if (code === CLOSE_SERVICE_RESTART) {
      // Rejoin now with ?since; if no instance answers yet, the usual backoff takes over.
      this.setState(this.everJoined ? State.RECONNECTING : State.CONNECTING);
      this.reconnectNow();
      return;
    }
    // Refused for now (room full, server degraded): say why, then retry like any other loss.
    if (!joined && this.lastError) {
      this.emit("server-error", { code: this.lastError.code, message: this.lastError.message });
    }
    // A server fault while joining (e.g. on a `since` it cannot resume from), as opposed to a
    // refusal, which explains itself first: refetch the list before joining again.
    if (code === CLOSE_SERVER_ERROR || (opened && !joined && !this.lastError)) {
      this.needsResync = true;
    }
    if (code === CLOSE_UNAVAILABLE) {
      const retryAfter = this.lastError?.code === "unavailable" ? this.lastError.retryAfter : undefined;
      this.scheduleReconnect(unavailableDelay(this.attempt, retryAfter));
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect(delay = backoffDelay(this.attempt)) {
    if (this.terminated) return;
    this.attempt++;
    const offline = navigator.onLine === false;
    this.setState(offline ? State.OFFLINE : this.everJoined ? State.RECONNECTING : State.CONNECTING);
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  /** Give up on a socket that looks dead and reconnect. */
  dropSocket() {
    if (!this.ws) return;
    // Close it, but handle the loss now: its own close event is ignored once it is not `this.ws`.
    this.ws.close();
    this.closed(1006);
  }

  checkHeartbeat() {
    // A tab that closed with requests queued leaves them to the others.
    if (navigator.locks && this.outbox.all().some((item) => !this.maySend(item))) this.findOpenTabs();
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const silence = Date.now() - this.lastHeard;
    if (silence > 2 * this.heartbeatMs + 5000) this.dropSocket();
    else if (silence >= this.heartbeatMs) this.send({ type: "ping", data: { timestamp: now() } });
  }

  send(message) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Incoming messages.

  receive(text) {
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const data = message?.data;
    if (typeof message?.type !== "string" || !data || typeof data !== "object") return;
    // The request this message answers, when it names one of ours in flight.
    const request = typeof message.ref === "string" ? (this.inflight.get(message.ref) ?? null) : null;
    switch (message.type) {
      case "presence":
        this.onJoined(data);
        break;
      case "user_joined":
      case "user_left":
        this.emit(message.type.replace("_", "-"), {
          userId: String(data.userId),
          userName: String(data.userName ?? ""),
        });
        break;
      case "scan_added":
        this.onScanAdded(data, request);
        break;
      case "scan_removed":
        this.onScanRemoved(data, request);
        break;
      case "snapshot":
        this.applySnapshot(data);
        break;
      case "inventory_completed":
        if (this.acceptSeq(data)) {
          const summary = data.summary ?? null;
          this.emit("completed", { message: data.message, completedBy: data.completedBy, summary });
        }
        break;
      case "progress": // not sequenced: the figures after an import or a clear of the expected list
        this.emit("progress", { progress: data.progress ?? null, cause: data.cause ?? "" });
        break;
      case "session_terminated":
        this.terminate(data.message, data.completedBy, "session_terminated");
        break;
      case "error":
        // An answer to a request of ours already settled (by a broadcast that came first, when
        // another socket asked for the same change at the same moment) adds nothing.
        if (typeof message.ref === "string" && !request) break;
        this.onError(data, request);
        break;
      default: // pong, and types added later
    }
  }

  onJoined(data) {
    this.joined = true;
    this.everJoined = true;
    this.attempt = 0;
    this.setState(State.ONLINE);
    this.emit("presence", { users: Array.isArray(data.users) ? data.users : [] });
    this.pump();
  }

  /** Whether a sequenced change is new; a gap means a lost event: reconnect to resume. */
  acceptSeq(data) {
    const seq = data.seq;
    if (!Number.isInteger(seq)) return true;
    if (seq <= this.lastSeq) return false;
    if (seq > this.lastSeq + 1) {
      this.dropSocket();
      return false;
    }
    this.lastSeq = seq;
    return true;
  }

  onScanAdded(data, request = null) {
    const scan = data.scanData;
    if (!scan || typeof scan.code !== "string") return;
    const fresh = this.acceptSeq(data);
    // In flight counts too: another tab may have seen the broadcast first and settled it.
    const answersUs =
      request !== null || this.inflight.has(scan.id) || this.outbox.all().some((item) => item.id === scan.id);
    if (!fresh && !answersUs) return;
    const userId = data.userId == null ? null : String(data.userId);
    // `match` is null without an expected list; a replayed retry carries it but no `progress`.
    const match = typeof data.match === "string" ? data.match : null;
    const progress = data.progress ?? null;
    this.emit("scan-added", {
      scan: { ...scan, userId, match },
      userName: data.userName,
      ours: answersUs,
      match,
      progress,
    });
    if (answersUs) this.settle(request?.id ?? scan.id);
  }

  onScanRemoved(data, request = null) {
    const scan = data.scanData;
    if (!scan || typeof scan.code !== "string") return;
    const userId = data.userId == null ? null : String(data.userId);
    // Ours when it carries the ref of our removal; without a ref it may still make ours moot.
    const inflight = request?.kind === "remove" ? request : null;
    const mooted = [...this.inflight.values()].filter((item) => item !== inflight && removes(item, scan));
    if (data.replayed === true) {
      // A removal sent again (by id) after it was done: the answer to ours alone, nothing changed.
      if (!inflight) return;
      const detail = { scan, userId, userName: data.userName, ours: true, progress: null, replayed: true };
      this.emit("scan-removed", detail);
      this.settle(inflight.id);
      return;
    }
    if (!this.acceptSeq(data)) return;
    // Removed by us answers our request; removed by someone else makes ours moot, but each of
    // those still gets its own answer (scan_not_found, or by id a replayed scan_removed), by ref.
    const ours = Boolean(inflight);
    const progress = data.progress ?? null;
    this.emit("scan-removed", { scan, userId, userName: data.userName, ours, progress });
    for (const item of this.outbox.all()) {
      if (removes(item, scan) && item.id !== inflight?.id && !this.inflight.has(item.id)) {
        this.outbox.remove(item.id);
      }
    }
    for (const item of mooted) this.outbox.remove(item.id);
    if (ours) this.settle(inflight.id);
  }

  applySnapshot(data) {
    if (!Array.isArray(data.scans)) return;
    if (Number.isInteger(data.seq)) this.lastSeq = data.seq;
    const stored = new Set(data.scans.map((scan) => scan.id));
    this.emit("snapshot", { scans: data.scans, status: data.status });
    for (const item of this.outbox.all()) {
      if (item.kind === "scan" && stored.has(item.id)) this.settle(item.id);
    }
  }

  onError(data, request = null) {
    this.lastError = data;
    if (data.code === "inventory_completed") {
      this.terminate(data.message, data.completedBy, "completed");
      return;
    }
    const item = request;
    if (data.code === "scan_removed" && item?.id !== data.scanData?.id) {
      // A scan resent after its removal, already settled by the scan_added and scan_removed
      // that reached us first: the refusal tells nothing new.
      return;
    }
    const type = item?.kind === "scan" ? "scan_added" : "scan_removed";
    if (item && data.code === "rate_limited" && data.messageType === type) {
      // Nothing was stored: keep the request and try again when the window has moved on.
      this.inflight.delete(item.id);
      this.armReplyTimer();
      this.pausedUntil = Date.now() + RATE_LIMIT_RETRY_MS;
      this.timers.pause = setTimeout(() => this.pump(), RATE_LIMIT_RETRY_MS);
      this.emit("request-retrying", { item, code: data.code, message: data.message });
      return;
    }
    if (!item && data.code === "invalid_data") {
      // Nothing of ours in flight, so it answers our `since`: the server cannot resume from it
      // (its log went back in time). Refetch the list and join again from the server's seq.
      this.needsResync = true;
      this.dropSocket();
      return;
    }
    if (item && REPLY_ERROR_CODES.has(data.code)) {
      this.emit("request-failed", { item, code: data.code, message: data.message, details: data });
      this.settle(item.id);
      return;
    }
    this.emit("server-error", { code: data.code, message: data.message });
  }

  terminate(message, completedBy, cause = "completed") {
    if (this.terminated) return;
    this.terminated = true;
    this.inflight.clear();
    for (const timer of Object.values(this.timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    const dropped = this.discard();
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.setState(State.CLOSED);
    this.emit("terminated", { message: message ?? "", completedBy: completedBy ?? "", cause, dropped });
  }

  // The outbox, up to MAX_IN_FLIGHT requests at a time, each answered by its ref.

  pump() {
    if (!this.joined || this.terminated || Date.now() < this.pausedUntil) return;
    const items = this.outbox.all();
    const ready = items.filter((candidate) => !this.inflight.has(candidate.id) && this.maySend(candidate));
    for (const item of ready) {
      if (this.inflight.size >= MAX_IN_FLIGHT) break;
      if (!this.send(this.requestFor(item))) break;
      const first = this.inflight.size === 0;
      this.inflight.set(item.id, item);
      this.emit("request-sent", { item });
      if (first) this.armReplyTimer();
    }
    // In flight, or sent by another open tab: completion waits for every one of them.
    if (items.length) return;
    // Sent once per socket until the room is terminated: one lost with its socket is sent again.
    if (this.completeRequested && this.completeSentOn !== this.ws) {
      if (this.send({ type: "inventory_completed", data: { ...this.room } })) this.completeSentOn = this.ws;
    }
  }

  /** Whether this tab sends the request: its own, or one whose tab is closed. */
  maySend(item) {
    if (!item.tab || item.tab === this.tabId) return true;
    return this.openTabs !== null && !this.openTabs.has(item.tab);
  }

  async findOpenTabs() {
    try {
      const { held = [] } = await navigator.locks.query();
      const names = held.map((lock) => lock.name).filter((name) => name?.startsWith(TAB_LOCK_PREFIX));
      this.openTabs = new Set(names.map((name) => name.slice(TAB_LOCK_PREFIX.length)));
    } catch {
      this.openTabs = new Set();
    }
    this.pump();
  }

  requestFor(item) {
    if (item.kind === "scan") {
      const scanData = { code: item.code, timestamp: item.timestamp, id: item.id };
      return { type: "scan_added", ref: item.id, data: { ...this.room, scanData } };
    }
    const scanData = item.scanId ? { code: item.code, id: item.scanId } : { code: item.code };
    return { type: "scan_removed", ref: item.id, data: { ...this.room, scanData } };
  }

  /** No answer in time while requests are in flight: the socket is likely dead; they stay queued. */
  armReplyTimer() {
    clearTimeout(this.timers.reply);
    if (this.inflight.size) this.timers.reply = setTimeout(() => this.dropSocket(), REPLY_TIMEOUT_MS);
  }

  /** A request was answered (or made moot): forget it and send the next ones. */
  settle(id) {
    this.outbox.remove(id);
    if (this.inflight.delete(id)) this.armReplyTimer();
    this.pump();
  }

  // The REST fallback.

  async resyncFromRest() {
    // The sequence first: what changes after it is replayed by `?since=` and applied idempotently.
    const inventory = await getJson(this.urls.inventory);
    const scans = [];
    let url = `${this.urls.scans}?limit=1000`;
    while (url) {
      const page = await getJson(url);
      scans.push(...(page.results ?? []));
      url = page.next ? sameOriginPath(page.next) : null;
    }
    if (inventory.status !== "open") {
      this.terminate("", inventory.completedBy, "completed");
      return;
    }
    this.applySnapshot({ scans, seq: inventory.lastSeq, status: inventory.status });
  }

  // Events.

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function now() {
  return new Date().toISOString();
}

export async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export function sameOriginPath(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}
