/** Short notices about what others do (joins, leaves, scans), announced politely and fading out. */

import { h } from "./dom.js";

export class Notices {
  constructor(region, { max = 4, ttlMs = 6000 } = {}) {
    this.region = region;
    this.max = max;
    this.ttlMs = ttlMs;
  }

  show(text, kind = "info") {
    const notice = h("div", { class: `notice notice-${kind}`, text });
    this.region.append(notice);
    while (this.region.children.length > this.max) this.region.firstElementChild.remove();
    setTimeout(() => {
      notice.classList.add("notice-leaving");
      setTimeout(() => notice.remove(), 300);
    }, this.ttlMs);
  }
}
