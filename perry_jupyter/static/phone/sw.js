// The phone page's service worker (scope <base_url>/perry/). It keeps the page's shell
// (HTML, bundle, manifest, icons) so the page opens on a bad connection, and never touches
// anything else: API answers, terminals, the proxy and the events go to the network as they are.
'use strict';

const CACHE = 'perry-phone-shell-v1';
const SCOPE = new URL(self.registration.scope);
const SHELL = ['./', 'manifest.webmanifest', 'phone/build/phone.js', 'phone/icon.svg', 'phone/icon-192.png'];

function isShell(url) {
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) {
    return false;
  }
  const rest = url.pathname.slice(SCOPE.pathname.length);
  return rest === '' || rest === 'manifest.webmanifest' || rest.startsWith('phone/');
}

self.addEventListener('install', event => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(cache => cache.addAll(SHELL.map(path => new Request(new URL(path, SCOPE), { credentials: 'same-origin' }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener('activate', event => {
  event.waitUntil(
    caches
      .keys()
      .then(keys => Promise.all(keys.filter(key => key !== CACHE).map(key => caches.delete(key))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener('fetch', event => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || !isShell(url)) {
    return; // the API, terminals, events, proxy: the browser's own fetch, never cached here
  }
  // Network first, so an update reaches the page at once; the cache when the network fails.
  // A redirect (to the login page) is not the shell: it is followed and never stored.
  event.respondWith(
    fetch(request)
      .then(response => {
        if (response.ok && !response.redirected && response.type === 'basic') {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then(cache => cache.put(url.href.split('?')[0], copy)));
        }
        return response;
      })
      .catch(() => caches.match(url.href.split('?')[0]).then(hit => hit || Response.error()))
  );
});
