/**
 * The phone page (`<base_url>/perry/`): the panel's API client, model and events under
 * views made for a phone. Built by `jlpm build:phone` into perry_jupyter/static/phone/build/.
 */
import * as React from 'react';
import { createRoot } from 'react-dom/client';

import { PerryAPI } from '../api';
import { LiveEvents } from '../events';
import { PerryStore } from '../store';
import { App } from './app';
import { PhoneContext } from './context';
import { notifyTaskEnded } from './notify';
import { phoneServer } from './server';

function start(): void {
  const config = JSON.parse(document.getElementById('perry-config')?.textContent || '{}') as { baseUrl?: string };
  const api = new PerryAPI(phoneServer(config.baseUrl ?? '/'));
  const store = new PerryStore(api);
  const events = new LiveEvents(api);
  events.received.connect((_, event) => store.apply(event));
  // Back after a drop: anything may have happened meanwhile.
  events.reconnected.connect(() => void store.loadWorkspaces());
  const icon = new URL('phone/icon-192.png', window.location.href).href;
  store.taskEnded.connect((_, task) => void notifyTaskEnded(task, icon));
  events.start();
  void store.loadInfo();
  void store.loadWorkspaces();

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js', { scope: './' }).catch(e => console.warn('Perry: no service worker:', e));
  }

  createRoot(document.getElementById('perry-phone')!).render(
    <PhoneContext.Provider value={{ api, store, events }}>
      <App />
    </PhoneContext.Provider>
  );
}

start();
