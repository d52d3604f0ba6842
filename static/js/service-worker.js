/**
 * The service worker of the installable app, so that a room's page opens with no signal.
 *
 * Served by inventory/pwa.py at /service-worker.js (scope: the whole site), after a first line
 * that sets `self.SHELL`: { version, static: [URL paths], pages: [path patterns], catalog }.
 *
 * - Pages (the index and the rooms the user opened) and the JavaScript catalog: network first.
 *   While the network answers, that answer is what the page gets (and the copy kept); only when
 *   it fails is the kept copy shown. Redirects (to the sign-in page) and errors are never kept.
 * - The application shell (CSS, JS modules, icons, the barcode engine): fetched at install into a
 *   cache named for their contents' hash, served from it; an update installs a new cache, and
 *   activation deletes every older one (and the pages kept with it: their HTML names old files).
 * - Nothing else is cached: no API response, no socket, no admin, no sign-in page. Sign-out
 *   deletes these caches (static/js/sw-register.js).
 */

/* global SHELL */
const PREFIX = "inventario-";
const STATIC_CACHE = `${PREFIX}static-${SHELL.version}`;
const PAGES_CACHE = `${PREFIX}pages-${SHELL.version}`;
const STATIC_PATHS = new Set(SHELL.static);
const PAGE_PATTERNS = SHELL.pages.map((pattern) => new RegExp(pattern));

self.addEventListener("install", (event) => {
  event.waitUntil(fillShell().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith(PREFIX) && name !== STATIC_CACHE && name !== PAGES_CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isPage(url) || url.pathname === SHELL.catalog) {
    event.respondWith(networkFirst(request));
  } else if (STATIC_PATHS.has(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
  // Anything else goes to the network as if there were no service worker.
});

// Each page says it is open: the shell is filled again if sign-out emptied it, and a page not
// kept yet (loaded before this worker controlled it, or kept by the worker this one replaced)
// is fetched now, while online.
self.addEventListener("message", (event) => {
  const { type, url } = event.data ?? {};
  if (type !== "keep") return;
  const target = typeof url === "string" ? new URL(url, self.location.origin) : null;
  const page = target?.origin === self.location.origin && isPage(target) ? target.pathname : null;
  event.waitUntil(Promise.all([fillShell(), page && keepPage(page)]).catch(() => {}));
});

async function keepPage(path) {
  const cache = await caches.open(PAGES_CACHE);
  if (await cache.match(path, { ignoreVary: true })) return;
  await networkFirst(new Request(path, { credentials: "same-origin" }));
}

async function fillShell() {
  const cache = await caches.open(STATIC_CACHE);
  const missing = [];
  for (const path of SHELL.static) if (!(await cache.match(path))) missing.push(path);
  if (missing.length) await cache.addAll(missing);
}

function isPage(url) {
  return !url.search && PAGE_PATTERNS.some((pattern) => pattern.test(url.pathname));
}

async function networkFirst(request) {
  const cache = await caches.open(PAGES_CACHE);
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    const kept = await cache.match(request, { ignoreVary: true });
    if (kept) return kept;
    if (request.mode === "navigate") return offlinePage();
    throw error;
  }
  // Only the signed-in user's own page: not a redirect to sign in, not an error.
  if (response.ok && !response.redirected && response.type === "basic") {
    await cache.put(request.url, response.clone());
  }
  return response;
}

async function cacheFirst(request) {
  const cache = await caches.open(STATIC_CACHE);
  const kept = await cache.match(request, { ignoreVary: true });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

function offlinePage() {
  const body = `<!doctype html><html lang="es"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sin conexión · Offline</title>
<body style="font: 16px/1.5 system-ui, sans-serif; margin: 2rem;">
<h1>Sin conexión</h1><p>Esta página no se abrió antes en este teléfono. Ábrela con señal una vez para tenerla sin conexión.</p>
<h1 lang="en">Offline</h1><p lang="en">This page was not opened on this phone before. Open it once with a signal to have it offline.</p>
</body></html>`;
  return new Response(body, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}
