/**
 * A room's last known state, per user, in localStorage: the stored scans, who was in the room,
 * the `seq` they were read at, and the page's config. A page opened with no signal (the service
 * worker's copy of its HTML, maybe days old) starts from it, and resumes from its `seq`.
 */

const PREFIX = "inventario:room:v1:";
const SAVE_DELAY_MS = 300;

export class RoomStore {
  constructor(userId, { agency, month, year }) {
    this.key = `${PREFIX}${userId}:${String(agency).toLowerCase()}/${month}/${year}`;
    this.timer = null;
  }

  /** What was kept, or null. */
  load() {
    try {
      const state = JSON.parse(localStorage.getItem(this.key) || "null");
      if (!state || !Number.isInteger(state.seq) || !Array.isArray(state.scans)) return null;
      return { people: [], config: null, ...state };
    } catch {
      return null;
    }
  }

  /** Keep `read()`'s state soon: a burst of changes is written once. */
  saveSoon(read) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(read()), SAVE_DELAY_MS);
  }

  save(state) {
    try {
      localStorage.setItem(this.key, JSON.stringify(state));
    } catch {
      // A full quota or private mode: the page still works, only not from here next time.
    }
  }

  clear() {
    clearTimeout(this.timer);
    try {
      localStorage.removeItem(this.key);
    } catch {
      // Nothing was kept.
    }
  }
}

/** Forget every room's kept state, of every user (sign-out). */
export function forgetRooms() {
  try {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(PREFIX)) localStorage.removeItem(key);
    }
  } catch {
    // Nothing was kept.
  }
}
