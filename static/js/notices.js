/**
 * Short notices about what others do (joins, leaves, scans), announced politely and fading out.
 * A notice with a `key` still on screen is replaced by the next one with that key, which gets
 * the running count: a burst of scans from one person is one notice, not a pile.
 */

import { h } from "./dom.js";

export class Notices {
  constructor(region, { max = 4, ttlMs = 6000 } = {}) {
    this.region = region;
    this.max = max;
    this.ttlMs = ttlMs;
    this.byKey = new Map();
  }

  /** `text` is a string, or a function of how many notices with this key came in a row. */
  show(text, kind = "info", { key = null } = {}) {
    const previous = key ? this.byKey.get(key) : null;
    const live = previous?.element.isConnected && !previous.element.classList.contains("notice-leaving");
    const count = live ? previous.count + 1 : 1;
    if (previous) {
      clearTimeout(previous.timer);
      previous.element.remove();
    }
    const content = typeof text === "function" ? text(count) : text;
    const element = h("div", { class: `notice notice-${kind}`, text: content });
    this.region.append(element);
    while (this.region.children.length > this.max) this.region.firstElementChild.remove();
    const notice = { element, count, timer: 0 };
    if (key) this.byKey.set(key, notice);
    notice.timer = setTimeout(() => {
      element.classList.add("notice-leaving");
      if (key && this.byKey.get(key) === notice) this.byKey.delete(key);
      setTimeout(() => element.remove(), 300);
    }, this.ttlMs);
  }
}
