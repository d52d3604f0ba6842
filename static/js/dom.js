/** Build elements from data without ever parsing it as HTML: text always goes in as textContent. */

/**
 * h("li", { class: "scan", data: { id }, attrs: { title } }, "text", childElement)
 */
export function h(tag, { class: className, data = {}, attrs = {}, text } = {}, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  for (const [key, value] of Object.entries(data)) element.dataset[key] = value;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(key, value === true ? "" : value);
  }
  if (text !== undefined) element.textContent = text;
  for (const child of children) {
    if (child !== null && child !== undefined) element.append(child);
  }
  return element;
}

export function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}
