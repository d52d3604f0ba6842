/**
 * Scanning with the phone's camera: the rear camera in the page, read continuously, every new
 * code handed to the page's own scan path (the same as a typed one).
 *
 * - The browser's Barcode Detection API where it has one with our symbologies; elsewhere the
 *   vendored polyfill of that same API (barcode-detector: ZXing-C++ as WebAssembly), loaded
 *   from our static files on first use, never from a CDN.
 * - A code is handed over once for as long as it stays in view: it counts again only after it
 *   has been out of sight for GONE_AFTER_MS (a frame or two without it is a blur, not a leave).
 * - A beep and a vibration tell a new code from a duplicate without looking at the screen.
 * - Closing the camera (or leaving the page) stops every track, so the phone's camera is free.
 */

import { format, gettext } from "./i18n.js";

// Door-jamb VIN labels (Code 39), and windshield or dealer stickers (Code 128, Data Matrix, QR).
export const FORMATS = ["code_39", "code_128", "data_matrix", "qr_code"];
const FRAME_INTERVAL_MS = 100;
const GONE_AFTER_MS = 1500;
// An imported vehicle's Code 39 label may carry an "I" before the 17 characters of the VIN.
const IMPORT_MARKED_VIN = /^I([A-HJ-NPR-Z0-9]{17})$/;

const TONES = {
  // One short high beep for a new code; two low ones for a code already counted.
  new: { notes: [[1760, 0, 0.09]], vibrate: 80 },
  duplicate: {
    notes: [
      [330, 0, 0.12],
      [330, 0.18, 0.12],
    ],
    vibrate: [70, 60, 70, 60, 70],
  },
};

/** The code a barcode carries, as the page stores it: trimmed, without a VIN label's "I" marker. */
export function normalizeCode(rawValue, barcodeFormat) {
  // Control characters (a GS1 group separator, a trailing CR) are never part of a code we count.
  const code = String(rawValue ?? "")
    .replace(/[\u0000-\u001f\u007f]/g, "")
    .trim();
  if (barcodeFormat === "code_39") {
    const vin = IMPORT_MARKED_VIN.exec(code.toUpperCase());
    if (vin) return vin[1];
  }
  return code;
}

/** Whether this browser can open a camera here: a secure context and at least one video input. */
export async function cameraAvailable() {
  if (!globalThis.isSecureContext || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.some((device) => device.kind === "videoinput");
  } catch {
    return false;
  }
}

/** A BarcodeDetector for our symbologies: the browser's own if it reads them all, else the polyfill. */
export async function createDetector({ engineUrl, wasmUrl }) {
  const Native = globalThis.BarcodeDetector;
  if (Native?.getSupportedFormats) {
    try {
      const supported = await Native.getSupportedFormats();
      if (FORMATS.every((name) => supported.includes(name))) return new Native({ formats: FORMATS });
    } catch {
      // A native API that cannot answer: use the polyfill.
    }
  }
  const engine = await import(engineUrl);
  // The .wasm comes from our static files (the default would fetch it from a CDN), and is
  // compiled now, so that a failure is reported when the camera opens, not on the first frame.
  await engine.prepareZXingModule({
    overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? wasmUrl : prefix + path) },
    fireImmediately: true,
  });
  return new engine.BarcodeDetector({ formats: FORMATS });
}

/** What to tell the counter when the camera cannot be opened. */
export function cameraErrorText(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return gettext(
        "No hay permiso para usar la cámara. Permítelo en los ajustes del navegador para este sitio y vuelve a intentarlo.",
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return gettext("No se encontró ninguna cámara en este dispositivo.");
    case "NotReadableError":
    case "AbortError":
      return gettext("La cámara está en uso por otra aplicación. Ciérrala y vuelve a intentarlo.");
    default:
      return gettext("No se pudo abrir la cámara.");
  }
}

export class CameraScanner {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root  carries data-engine and data-wasm (the vendored files' URLs)
   * @param {(code: string) => {duplicate: boolean} | null} options.onCode  the page's scan path
   */
  constructor({ root, openButton, view, video, torchButton, closeButton, status, onCode }) {
    Object.assign(this, { root, openButton, view, video, torchButton, closeButton, status, onCode });
    this.stream = null;
    this.detector = null;
    this.inView = new Map(); // code -> when it was last seen
    this.timer = null;
    this.audio = null;
    this.opening = false;
  }

  /** Show the control where a camera can be opened; wire it. */
  async init() {
    if (!(await cameraAvailable())) return false;
    this.openButton.hidden = false;
    this.openButton.addEventListener("click", () => (this.stream ? this.close() : this.open()));
    this.closeButton.addEventListener("click", () => this.close());
    this.torchButton.addEventListener("click", () => this.toggleTorch());
    // The page puts focus back on the code field after a click (for USB scanners); here that
    // would open the phone's keyboard over the camera.
    this.root.addEventListener("click", (event) => event.stopPropagation());
    // A page in the background keeps nobody's camera busy.
    document.addEventListener("visibilitychange", () => document.hidden && this.close());
    window.addEventListener("pagehide", () => this.close());
    return true;
  }

  async open() {
    if (this.stream || this.opening) return;
    this.opening = true;
    // Created within the click: browsers let a page play sound only after a gesture.
    this.audio ??= globalThis.AudioContext ? new AudioContext() : null;
    this.audio?.resume?.();
    this.say(gettext("Abriendo la cámara…"));
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
      this.stream = stream;
      this.video.srcObject = stream;
      this.view.hidden = false;
      this.openButton.setAttribute("aria-pressed", "true");
      await this.video.play().catch(() => {});
      this.showTorch();
      this.detector ??= await createDetector({
        engineUrl: this.root.dataset.engine,
        wasmUrl: this.root.dataset.wasm,
      });
    } catch (error) {
      const engineFailed = Boolean(this.stream);
      this.close();
      this.say(engineFailed ? gettext("No se pudo cargar el lector de códigos.") : cameraErrorText(error), "error");
      return;
    } finally {
      this.opening = false;
    }
    if (!this.stream) return; // closed while the engine loaded
    this.say(gettext("Apunta al código de barras o al código QR."));
    this.inView.clear();
    this.scanSoon(0);
  }

  /** Release the camera: stop every track. */
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    const wasOpen = Boolean(this.stream);
    this.stream = null;
    this.video.srcObject = null;
    this.view.hidden = true;
    this.torchButton.hidden = true;
    this.torchButton.setAttribute("aria-pressed", "false");
    this.openButton.setAttribute("aria-pressed", "false");
    if (wasOpen) this.say("");
  }

  /** The inventory was closed: no more scanning here. */
  disable() {
    this.close();
    this.openButton.disabled = true;
  }

  scanSoon(delay = FRAME_INTERVAL_MS) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.scanFrame(), delay);
  }

  async scanFrame() {
    if (!this.stream) return;
    if (this.video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && this.video.videoWidth) {
      try {
        this.seen(await this.detector.detect(this.video));
      } catch {
        // One bad frame (the camera switching resolution) is not worth stopping for.
      }
    }
    if (this.stream) this.scanSoon();
  }

  seen(barcodes) {
    const now = performance.now();
    for (const barcode of barcodes) {
      const code = normalizeCode(barcode.rawValue, barcode.format);
      if (!code) continue;
      const inSight = this.inView.has(code);
      this.inView.set(code, now);
      if (inSight) continue; // still the same label in front of the camera
      const result = this.onCode(code);
      if (!result) continue; // refused by the page (too long): it says why
      this.feedback(result.duplicate ? "duplicate" : "new");
      const text = result.duplicate ? gettext("%(code)s ya estaba contado.") : gettext("Leído: %(code)s");
      this.say(format(text, { code }), result.duplicate ? "warning" : "success");
    }
    for (const [code, lastSeen] of this.inView) {
      if (now - lastSeen > GONE_AFTER_MS) this.inView.delete(code);
    }
  }

  /** The server refused a code read as new (counted meanwhile, or while offline): say it by ear too. */
  refusedAsDuplicate(code) {
    this.feedback("duplicate");
    this.say(format(gettext("%(code)s ya estaba contado."), { code }), "warning");
  }

  /** A sound and a vibration: "new" or "duplicate". */
  feedback(kind) {
    const tone = TONES[kind];
    this.root.dataset.lastFeedback = kind;
    navigator.vibrate?.(tone.vibrate);
    const audio = this.audio;
    if (!audio) return;
    for (const [frequency, start, length] of tone.notes) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = frequency;
      gain.gain.value = 0.08;
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(audio.currentTime + start);
      oscillator.stop(audio.currentTime + start + length);
    }
  }

  showTorch() {
    const [track] = this.stream.getVideoTracks();
    const capabilities = track?.getCapabilities?.() ?? {};
    this.torchButton.hidden = !capabilities.torch;
  }

  async toggleTorch() {
    const [track] = this.stream?.getVideoTracks() ?? [];
    if (!track) return;
    const on = this.torchButton.getAttribute("aria-pressed") !== "true";
    try {
      await track.applyConstraints({ advanced: [{ torch: on }] });
      this.torchButton.setAttribute("aria-pressed", String(on));
    } catch {
      this.say(gettext("No se pudo encender la linterna."), "warning");
    }
  }

  say(text, kind = "info") {
    this.status.dataset.kind = kind;
    this.status.textContent = text;
  }
}
