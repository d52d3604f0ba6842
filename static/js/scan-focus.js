/**
 * Keep the scan field focused: barcode scanners (USB or Bluetooth) type into whatever has focus,
 * then press Enter. Focus returns to the field after clicks and blurs, and a printable key typed
 * anywhere else goes to the field; keyboard users can still Tab to the buttons.
 */

const TEXT_ENTRY = "input, textarea, select, [contenteditable]";

export function keepFocused(field) {
  const focusField = () => {
    if (field.disabled || document.querySelector("dialog[open]")) return;
    field.focus({ preventScroll: true });
  };
  const focusIfIdle = () => {
    const active = document.activeElement;
    if (!active || active === document.body || active === document.documentElement) focusField();
  };

  field.addEventListener("blur", () => setTimeout(focusIfIdle, 0));
  window.addEventListener("focus", () => setTimeout(focusIfIdle, 0));
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest(`${TEXT_ENTRY}, summary, a[href]`)) return;
    if (String(getSelection())) return; // someone is selecting text to copy it
    setTimeout(focusField, 0);
  });
  document.addEventListener("keydown", (event) => {
    const printable = event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey;
    if (!printable || event.target === field) return;
    if (event.target instanceof Element && event.target.closest(TEXT_ENTRY)) return;
    focusField(); // the key's character then lands in the field
  });
  focusField();
  return focusField;
}
