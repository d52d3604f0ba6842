/**
 * Reconciliation on the live page: the progress panel, the missing list and the marks on the
 * scans, kept live from the room's messages (docs/protocol.md, "Reconciliation extension").
 *
 * The figures travel with every change (`progress` in scan_added and scan_removed, and the
 * `progress` message after an import). The missing list drops a vehicle the moment it is
 * found, and is reloaded when the figures and its location counts disagree (a removal, a
 * vehicle of another location, a new list). After a new list, a snapshot or a reconnect, REST
 * fills in what the messages do not carry; its answer never overwrites figures that a newer
 * message brought while it was on its way.
 */

import { getJson } from "./live-client.js";
import { isProgress } from "./progress-panel.js";

const REFRESH_DELAY_MS = 400;
const RETRY_DELAY_MS = 10000;

export class Reconciliation {
  /**
   * @param {object} options
   * @param {object} options.state  the view's `reconciliation` (progress, locations, URLs)
   * @param {import("./progress-panel.js").ProgressPanel} options.panel
   * @param {import("./missing-list.js").MissingList | null} options.missing  null under blind counting
   * @param {import("./scan-list.js").ScanList} options.scans  whose marks follow the expected list
   * @param {HTMLElement} options.grid  says whether the missing list has a place in the layout
   */
  constructor({ state, panel, missing, scans, grid }) {
    this.urls = { progress: state.progressUrl, exceptions: state.exceptionsUrl };
    this.panel = panel;
    this.missing = missing;
    this.scans = scans;
    this.grid = grid;
    this.version = 0; // how many figures the room's messages have brought
    this.summary = null;
    this.timer = null;
    this.refreshing = false;
    this.again = false;
    this.wantMarks = false;
    this.foundMeanwhile = [];

    panel.update(state.progress);
    missing?.setLocations(state.locations);
    this.place();
    if (this.missingShown) this.refresh({ listOnly: true });
  }

  get missingShown() {
    return Boolean(this.missing) && this.panel.hasList;
  }

  // What the room says.

  scanAdded({ scan, match, progress }) {
    this.apply(progress);
    if (match === "expected" && this.missing) {
      this.missing.found(scan.code);
      if (this.refreshing) this.foundMeanwhile.push(scan.code);
    }
    this.check();
  }

  scanRemoved({ progress }) {
    this.apply(progress);
    this.check();
  }

  /** A new expected list (or none): the figures came with it; the rows and the marks did not. */
  progressChanged({ progress }) {
    this.apply(progress);
    this.scheduleRefresh({ marks: true });
  }

  /** After a snapshot or a reconnect: messages may have been missed, so ask for everything. */
  resync() {
    this.scheduleRefresh({ delay: 0, marks: true });
  }

  completed(summary) {
    if (!isProgress(summary)) return;
    this.summary = summary;
    this.apply(summary);
  }

  /** The final figures: the completion message's, or the server's when it was missed. */
  async finalSummary() {
    if (this.summary) return this.summary;
    try {
      const state = await getJson(this.urls.progress);
      if (isProgress(state.progress)) return state.progress;
    } catch {
      // Offline: the last figures seen are the best there are.
    }
    return this.panel.progress;
  }

  // Keeping the parts in step.

  apply(progress) {
    if (!isProgress(progress)) return; // e.g. a replayed retry carries no figures
    this.version += 1;
    this.panel.update(progress);
    this.place();
  }

  /** Give the missing list its place in the layout, or take it away (no list, or blind counting). */
  place() {
    this.grid.dataset.missing = this.missingShown ? "shown" : "hidden";
  }

  /** Reload the list when the figures and its location counts disagree. */
  check() {
    if (!this.missingShown || this.refreshing) return;
    const { missing, expected } = this.panel.progress;
    if (missing !== this.missing.missingByLocation || expected !== this.missing.expectedByLocation) {
      this.scheduleRefresh();
    }
  }

  scheduleRefresh({ delay = REFRESH_DELAY_MS, marks = false } = {}) {
    this.wantMarks ||= marks;
    if (this.refreshing) {
      this.again = true;
      return;
    }
    if (this.timer !== null) {
      if (delay > 0) return; // one is coming
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, delay);
  }

  async refresh({ listOnly = false } = {}) {
    this.refreshing = true;
    this.again = false;
    this.foundMeanwhile = [];
    const marks = this.wantMarks && !listOnly;
    if (marks) this.wantMarks = false;
    const version = this.version;
    let ok = true;
    try {
      if (!listOnly) {
        const state = await getJson(this.urls.progress);
        if (version === this.version) this.panel.update(state.progress);
        if (!state.canSeeExpected) this.missing = null; // blind counting was turned on
        else this.missing?.setLocations(state.locations);
        this.place();
      }
      if (marks) await this.remark();
      if (this.missingShown) {
        ok = await this.missing.load();
        // Found while the rows were on their way: they may still be among them.
        for (const code of this.foundMeanwhile) this.missing.found(code);
      }
    } catch (error) {
      if (error.status === 403 && this.missing) {
        this.missing = null;
        this.place();
      } else {
        ok = false;
        this.wantMarks ||= marks;
      }
    } finally {
      this.refreshing = false;
    }
    if (!ok) this.scheduleRefresh({ delay: RETRY_DELAY_MS });
    else if (this.again) this.scheduleRefresh();
    // Messages came meanwhile: what the server said may already be out of date.
    else if (version !== this.version) this.check();
  }

  /** Every scan's match after the list changed: the variances say which are not in the books. */
  async remark() {
    const codes = this.scans.storedCodes(); // scans added from now on bring their own match
    const { unexpected } = await getJson(this.urls.exceptions);
    const variances = new Map((unexpected ?? []).map((item) => [item.code, item.kind]));
    const hasList = this.panel.hasList;
    this.scans.remark(codes, (code) => variances.get(code) ?? (hasList ? "expected" : null));
  }
}
