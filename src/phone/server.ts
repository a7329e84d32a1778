/**
 * The phone page's way to the server: plain fetch with the login cookie, and Jupyter's
 * XSRF rule kept by hand (the `_xsrf` cookie sent back as `X-XSRFToken`), as JupyterLab's
 * ServerConnection does for the panel.
 */
import { IServer } from '../api';

function cookie(name: string): string | null {
  const match = document.cookie.match(new RegExp(`(?:^|;\\s*)${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : null;
}

export function phoneServer(baseUrl: string): IServer {
  const base = new URL(baseUrl, window.location.origin).href;
  return {
    baseUrl: base,
    wsUrl: base.replace(/^http/, 'ws'),
    request: (url, init) => {
      const headers = new Headers(init.headers);
      const method = (init.method ?? 'GET').toUpperCase();
      const xsrf = cookie('_xsrf');
      if (xsrf && method !== 'GET' && method !== 'HEAD') {
        headers.set('X-XSRFToken', xsrf);
      }
      return fetch(url, { ...init, headers, credentials: 'same-origin', cache: 'no-store' });
    }
  };
}
