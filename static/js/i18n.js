/**
 * Django's JavaScript catalog (the classic script at /jsi18n/, loaded before the modules),
 * with pass-through fallbacks so the page still works in Spanish if the catalog is missing.
 */

export const gettext = globalThis.gettext ?? ((text) => text);
export const ngettext =
  globalThis.ngettext ?? ((singular, plural, count) => (count === 1 ? singular : plural));
const interpolate =
  globalThis.interpolate ??
  ((template, values) => template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));

/** Fill `%(name)s` placeholders in an already translated string. */
export function format(template, values) {
  return interpolate(template, values, true);
}

export const language = document.documentElement.lang || "es";
