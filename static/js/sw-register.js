/**
 * On every page: register the service worker (static/js/service-worker.js, served at the site's
 * root), and forget what this browser kept for offline use when nobody is signed in any more.
 *
 * What is kept belongs to the signed-in user: the pages of the rooms they opened (service worker
 * caches) and each room's last known scans and people (localStorage, room-store.js). Signing out,
 * arriving signed out, or arriving as someone else deletes both. Scans still waiting to be sent
 * (the outbox) are kept: they are named for their user and sent when that user is back.
 */

import { forgetRooms } from "./room-store.js";

const CACHE_PREFIX = "inventario-";
const USER_KEY = "inventario:user";

const script = document.querySelector("script[data-service-worker]");
const user = script?.dataset.user ?? "";

let forgotten = Promise.resolve();
if (readUser() !== user) {
  // Synchronous, so that no page script of this load reads another user's rooms.
  forgetRooms();
  forgotten = forgetCaches();
  writeUser(user);
}

document.querySelector("form.logout")?.addEventListener("submit", (event) => {
  const form = event.currentTarget;
  event.preventDefault();
  forgetRooms();
  writeUser("");
  forgetCaches().finally(() => form.submit());
});

if (user && script && "serviceWorker" in navigator && globalThis.isSecureContext) {
  forgotten.then(() => register(script.dataset.serviceWorker));
}

async function register(url) {
  try {
    await navigator.serviceWorker.register(url, { scope: "/" });
    const registration = await navigator.serviceWorker.ready;
    // Keep this page if it is not yet (loaded before the worker, or kept by an older one).
    const keep = (worker) => worker?.postMessage({ type: "keep", url: location.pathname });
    keep(registration.active);
    const { serviceWorker } = navigator;
    serviceWorker.addEventListener("controllerchange", () => keep(serviceWorker.controller));
  } catch (error) {
    // No offline copy on this browser; the page works as before.
    console.warn("service worker not registered:", error);
  }
}

async function forgetCaches() {
  if (!globalThis.caches) return;
  try {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith(CACHE_PREFIX)).map((name) => caches.delete(name)));
  } catch {
    // Storage refused (private mode): nothing was kept.
  }
}

function readUser() {
  try {
    return localStorage.getItem(USER_KEY) ?? "";
  } catch {
    return "";
  }
}

function writeUser(value) {
  try {
    if (value) localStorage.setItem(USER_KEY, value);
    else localStorage.removeItem(USER_KEY);
  } catch {
    // Private mode: nothing is kept either.
  }
}
