// Perry's proxy puts this first in the <head> of the HTML pages it serves under
// /perry/proxy/{name}/{port}/ (never under /perry/proxy-absolute/, whose apps know their prefix).
// A single-origin app calls its server at the page origin's root ("/api/...", or
// location.origin + "/api/..."); under the proxy that root is Jupyter's. This moves those
// calls under the proxy's prefix, and gives the app's unsafe same-origin requests Jupyter's
// X-XSRFToken header (from the _xsrf cookie), so Jupyter's XSRF rule is met, not bypassed.
(function () {
  "use strict";
  var script = document.currentScript;
  var prefix = script && script.dataset.perryPrefix;
  if (!prefix || window.__perryProxy) return;
  window.__perryProxy = prefix;
  var origin = location.origin;
  var SAFE = { GET: 1, HEAD: 1, OPTIONS: 1 };

  // An absolute URL under the prefix for a same-origin URL that is not already under it (or
  // under Jupyter's own /perry/proxy/ addresses); anything else unchanged.
  function under(url) {
    var u;
    try {
      u = new URL(String(url), location.href);
    } catch (e) {
      return url;
    }
    var http = u.protocol === "http:" || u.protocol === "https:";
    var ws = u.protocol === "ws:" || u.protocol === "wss:";
    if (!(http && u.origin === origin) && !(ws && u.host === location.host)) return url;
    if (u.pathname === prefix || u.pathname.indexOf(prefix + "/") === 0 || u.pathname.indexOf("/perry/proxy") === 0) {
      return u.href;
    }
    u.pathname = prefix + u.pathname;
    return u.href;
  }

  function xsrf() {
    var m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function unsafeHere(method, url) {
    return !SAFE[String(method || "GET").toUpperCase()] && new URL(url, location.href).origin === origin;
  }

  var fetch0 = window.fetch;
  if (fetch0) {
    window.fetch = function (input, init) {
      var self = this, token = xsrf();
      if (input instanceof Request) {
        var url = under(input.url), unsafe = token && unsafeHere(input.method, url);
        if (url === input.url && !unsafe) return fetch0.call(self, input, init);
        // A new Request with the body read whole: one made from another with a streamed body
        // would need the streaming upload mode, which servers behind HTTP/1.1 do not all take.
        return (SAFE[input.method] ? Promise.resolve(undefined) : input.arrayBuffer()).then(function (body) {
          var headers = new Headers(input.headers);
          if (unsafe && !headers.has("X-XSRFToken")) headers.set("X-XSRFToken", token);
          return fetch0.call(self, new Request(url, {
            method: input.method, headers: headers, body: body, credentials: input.credentials,
            cache: input.cache, redirect: input.redirect, referrer: input.referrer,
            integrity: input.integrity, keepalive: input.keepalive, signal: input.signal
          }), init);
        });
      }
      var target = under(input);
      if (token && unsafeHere(init && init.method, target)) {
        var headers = new Headers(init.headers);
        if (!headers.has("X-XSRFToken")) headers.set("X-XSRFToken", token);
        init = Object.assign({}, init, { headers: headers });
      }
      return fetch0.call(self, target, init);
    };
  }

  var open0 = XMLHttpRequest.prototype.open, send0 = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    var args = Array.prototype.slice.call(arguments);
    args[1] = under(url);
    this.__perryUnsafe = unsafeHere(method, args[1]);
    return open0.apply(this, args);
  };
  XMLHttpRequest.prototype.send = function () {
    var token = this.__perryUnsafe && xsrf();
    if (token) this.setRequestHeader("X-XSRFToken", token);
    return send0.apply(this, arguments);
  };

  function wrap(name) {
    var Original = window[name];
    if (!Original) return;
    var Wrapped = function (url, other) {
      return arguments.length > 1 ? new Original(under(url), other) : new Original(under(url));
    };
    Wrapped.prototype = Original.prototype;
    ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) {
      if (k in Original) Object.defineProperty(Wrapped, k, { value: Original[k] });
    });
    window[name] = Wrapped;
  }
  wrap("EventSource");
  wrap("WebSocket");

  // Elements the app adds with root-relative addresses (a bundler's preload of a lazy chunk's
  // style sheet or module, an image): their property setters move them under the prefix too.
  [[window.HTMLLinkElement, "href"], [window.HTMLScriptElement, "src"], [window.HTMLImageElement, "src"],
   [window.HTMLSourceElement, "src"], [window.HTMLMediaElement, "src"], [window.HTMLIFrameElement, "src"]]
    .forEach(function (pair) {
      var proto = pair[0] && pair[0].prototype;
      var d = proto && Object.getOwnPropertyDescriptor(proto, pair[1]);
      if (!d || !d.set) return;
      Object.defineProperty(proto, pair[1], {
        configurable: true, enumerable: d.enumerable, get: d.get,
        set: function (value) { d.set.call(this, under(value)); }
      });
    });

  // A client-side router reads location.pathname and cannot be told a base from outside: it
  // would see the prefix as a route of its own. So the app starts at the path it would have at
  // the root ("/" for the proxy's "/perry/proxy/{name}/{port}/") and navigates from there;
  // the address bar then shows that path on Jupyter's origin (reloading it leaves the proxy).
  if (location.pathname.indexOf(prefix + "/") === 0) {
    history.replaceState(history.state, "", location.pathname.slice(prefix.length) + location.search + location.hash);
  }
})();
