/**
 * The room's figures against the expected list: found of expected as a progress bar, and how
 * many are missing, unexpected and flagged. Without an expected list it is a plain counter.
 */

import { h } from "./dom.js";
import { format, gettext, language, ngettext } from "./i18n.js";

const number = new Intl.NumberFormat(language);
const percent = new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 0 });
const FIGURES = ["expected", "found", "missing", "unexpected", "flagged", "counted"];

/** Whether a value is the protocol's `progress` (or `summary`): every figure a whole number. */
export function isProgress(value) {
  return Boolean(value) && FIGURES.every((name) => Number.isInteger(value[name]));
}

export function foundText({ found, expected }) {
  return format(gettext("%(found)s de %(expected)s encontrados"), {
    found: number.format(found),
    expected: number.format(expected),
  });
}

export class ProgressPanel {
  constructor({ panel, text, percent: percentLabel, bar, fill, counted, missing, unexpected, flagged }) {
    this.panel = panel;
    this.text = text;
    this.percent = percentLabel;
    this.bar = bar;
    this.fill = fill;
    this.counted = counted;
    this.figures = { missing, unexpected, flagged };
    this.progress = null;
  }

  get hasList() {
    return (this.progress?.expected ?? 0) > 0;
  }

  update(progress) {
    if (!isProgress(progress)) return;
    this.progress = progress;
    const { expected, found, counted } = progress;
    this.panel.dataset.hasList = String(expected > 0);
    this.panel.dataset.complete = String(expected > 0 && found >= expected);
    // Floor, so the bar never says 100 % while a vehicle is still missing.
    const ratio = expected > 0 ? Math.min(Math.floor((found * 100) / expected), 100) / 100 : 0;
    const label = foundText(progress);
    this.text.textContent = label;
    this.percent.textContent = percent.format(ratio);
    this.bar.setAttribute("aria-valuemax", String(expected));
    this.bar.setAttribute("aria-valuenow", String(found));
    this.bar.setAttribute("aria-valuetext", label);
    this.fill.style.width = `${ratio * 100}%`;
    this.counted.textContent = format(
      ngettext("%(count)s vehículo contado", "%(count)s vehículos contados", counted),
      { count: number.format(counted) },
    );
    for (const [name, element] of Object.entries(this.figures)) {
      element.textContent = number.format(progress[name]);
      element.parentElement.dataset.zero = String(progress[name] === 0);
    }
  }
}

/** The final figures for the completion banner: what `inventory_completed` carries in `summary`. */
export function summaryFigures(summary) {
  const shown = [
    ["counted", gettext("Contados")],
    // Without an expected list, found, missing and unexpected mean nothing.
    ...(summary.expected > 0
      ? [
          ["found", gettext("Encontrados")],
          ["missing", gettext("Faltan")],
          ["unexpected", gettext("No esperados")],
        ]
      : []),
    ["flagged", gettext("VIN dudosos")],
  ];
  return shown.map(([name, label]) =>
    h(
      "div",
      { class: "summary-figure" },
      h("dt", { text: label }),
      h("dd", { data: { figure: name }, text: number.format(summary[name]) }),
    ),
  );
}
