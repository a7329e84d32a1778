/**
 * A workspace's container log in the panel, followed as it grows: the server's
 * server-sent events (`GET .../logs?follow=true`), read through ServerConnection (which
 * adds the token) and stopped with an AbortController when the section closes.
 */
import * as React from 'react';

import { IWorkspace, joinUrl, PerryAPI } from './api';
import { ErrorAlert } from './components';
import { PerryModel } from './model';

const KEPT = 500; // lines shown; older ones drop off the top

/** One server-sent event: its type and its data lines joined. */
export interface IStreamEvent {
  event: string;
  data: string;
}

/** Read a server-sent event stream, handing each event to `onEvent`, until it ends or `signal` aborts. */
export async function readEvents(
  api: PerryAPI,
  path: string,
  onEvent: (e: IStreamEvent) => void,
  signal: AbortSignal
): Promise<void> {
  const url = joinUrl(api.server.baseUrl, 'perry/api', path);
  const response = await api.server.request(url, { signal });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error?.message ?? message;
    } catch {
      // not JSON: the status says enough
    }
    throw new Error(message);
  }
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length) {
          onEvent({ event, data: data.join('\n') });
        }
        event = 'message';
        data = [];
      } else if (line.startsWith('event:')) {
        event = line.slice(6).trim();
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
  }
}

export function LogsSection(props: { model: PerryModel; ws: IWorkspace }): JSX.Element | null {
  const { model, ws } = props;
  const [open, setOpen] = React.useState(false);
  const [lines, setLines] = React.useState<string[]>([]);
  const [state, setState] = React.useState<'following' | 'ended' | 'idle'>('idle');
  const [error, setError] = React.useState<string | null>(null);
  const bottom = React.useRef<HTMLPreElement>(null);
  const running = ws.status === 'running';

  React.useEffect(() => {
    if (!open || !running) {
      return;
    }
    const abort = new AbortController();
    setLines([]);
    setError(null);
    setState('following');
    const path = `workspaces/${encodeURIComponent(ws.name)}/logs?follow=true&tail=100`;
    readEvents(
      model.api,
      path,
      e => {
        if (e.event === 'message') {
          setLines(old => [...old, e.data].slice(-KEPT));
        } else if (e.event === 'error') {
          setError(JSON.parse(e.data).error?.message ?? 'the log stream failed');
        }
      },
      abort.signal
    )
      .then(() => setState('ended'))
      .catch(e => {
        if (!abort.signal.aborted) {
          setError((e as Error).message);
          setState('ended');
        }
      });
    return () => abort.abort();
  }, [open, running, model.api, ws.name]);

  React.useEffect(() => {
    const pre = bottom.current;
    if (pre) {
      pre.scrollTop = pre.scrollHeight;
    }
  }, [lines]);

  return (
    <section className="perry-section perry-logs" aria-label={`Log of ${ws.name}`}>
      <div className="perry-section-head">
        <h4>Log</h4>
        <button
          className="perry-link"
          aria-expanded={open}
          aria-label={`${open ? 'Hide' : 'Follow'} the log of ${ws.name}`}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Hide' : 'Follow'}
        </button>
      </div>
      {open ? (
        <>
          <ErrorAlert message={error} />
          <pre className="perry-log" ref={bottom} data-state={state}>
            {lines.join('\n')}
          </pre>
          <div className="perry-dim">
            {state === 'following' ? 'following…' : running ? 'the stream ended' : 'the workspace is not running'}
          </div>
        </>
      ) : null}
    </section>
  );
}
