/**
 * A workspace's shell on a phone: xterm.js on `/perry/terminal/{name}` (terminado's protocol,
 * what `perry shell` uses), and a row of the keys a phone keyboard lacks. Ctrl is sticky: it
 * applies to the next key typed, as on a hardware keyboard held down.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import * as React from 'react';

import { joinUrl, PerryAPI } from '../api';

type Message = ['stdout', string] | ['setup', unknown] | ['exit', number] | ['disconnect', number] | [string, ...unknown[]];

const CSI = '\x1b[';
const ARROWS: Record<string, string> = { up: 'A', down: 'B', right: 'C', left: 'D' };

/** The control character of a key typed with Ctrl held (Ctrl-C is \x03); other input unchanged. */
export function withCtrl(data: string): string {
  if (data.length !== 1) {
    return data;
  }
  const code = data.toUpperCase().charCodeAt(0);
  return code >= 64 && code <= 95 ? String.fromCharCode(code - 64) : data;
}

export function TerminalScreen(props: { api: PerryAPI; workspace: string }): JSX.Element {
  const { api, workspace } = props;
  const host = React.useRef<HTMLDivElement>(null);
  const termRef = React.useRef<Terminal | null>(null);
  const socketRef = React.useRef<WebSocket | null>(null);
  const ctrlRef = React.useRef(false);
  const [ctrl, setCtrl] = React.useState(false);
  const [state, setState] = React.useState<'connecting' | 'open' | 'ended'>('connecting');

  const send = React.useCallback((message: unknown[]) => {
    const socket = socketRef.current;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    }
  }, []);

  const type = React.useCallback(
    (data: string) => {
      if (ctrlRef.current) {
        data = withCtrl(data);
        ctrlRef.current = false;
        setCtrl(false);
      }
      send(['stdin', data]);
    },
    [send]
  );

  React.useEffect(() => {
    const term = new Terminal({ fontSize: 14, cursorBlink: true, scrollback: 5000, theme: { background: '#111417' } });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    termRef.current = term;
    const socket = new WebSocket(joinUrl(api.server.wsUrl, 'perry/terminal', encodeURIComponent(workspace)));
    socketRef.current = socket;
    socket.onopen = () => {
      setState('open');
      socket.send(JSON.stringify(['set_size', term.rows, term.cols]));
      term.focus();
    };
    socket.onmessage = event => {
      let message: Message;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (message[0] === 'stdout') {
        term.write(String(message[1]));
      } else if (message[0] === 'exit') {
        term.write(`\r\n[the shell ended with status ${String(message[1])}]\r\n`);
      }
    };
    socket.onclose = () => setState('ended');
    const data = term.onData(d => type(d));
    const resized = term.onResize(({ rows, cols }) => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(['set_size', rows, cols]));
      }
    });
    const refit = () => fit.fit();
    window.addEventListener('resize', refit);
    return () => {
      window.removeEventListener('resize', refit);
      data.dispose();
      resized.dispose();
      socket.onclose = null;
      socket.close();
      term.dispose();
      termRef.current = null;
      socketRef.current = null;
    };
  }, [api, workspace, type]);

  const key = (data: string) => (e: React.PointerEvent | React.MouseEvent) => {
    e.preventDefault(); // the terminal keeps the focus, so the phone keyboard stays up
    type(data);
    termRef.current?.focus();
  };
  const arrow = (name: string) => {
    // In application cursor mode (less, vim, readline in some setups) arrows are ESC O x.
    const app = termRef.current?.modes.applicationCursorKeysMode;
    return (app ? '\x1bO' : CSI) + ARROWS[name];
  };
  const toggleCtrl = (e: React.MouseEvent) => {
    e.preventDefault();
    ctrlRef.current = !ctrlRef.current;
    setCtrl(ctrlRef.current);
    termRef.current?.focus();
  };

  return (
    <div className="pp-terminal">
      <div className="pp-terminal-state" role="status">
        {state === 'connecting' ? 'Connecting…' : state === 'ended' ? 'Disconnected: go back and open it again' : ''}
      </div>
      <div className="pp-xterm" ref={host} aria-label={`Terminal in ${workspace}`} />
      <div className="pp-keys" role="toolbar" aria-label="Terminal keys">
        <button type="button" onMouseDown={e => e.preventDefault()} onClick={key('\x1b')}>
          Esc
        </button>
        <button type="button" aria-pressed={ctrl} className={ctrl ? 'pp-on' : ''} onMouseDown={e => e.preventDefault()} onClick={toggleCtrl}>
          Ctrl
        </button>
        <button type="button" onMouseDown={e => e.preventDefault()} onClick={key('\t')}>
          Tab
        </button>
        {(['left', 'up', 'down', 'right'] as const).map(name => (
          <button
            type="button"
            key={name}
            aria-label={`${name} arrow`}
            onMouseDown={e => e.preventDefault()}
            onClick={e => {
              e.preventDefault();
              type(arrow(name));
              termRef.current?.focus();
            }}
          >
            {{ left: '←', up: '↑', down: '↓', right: '→' }[name]}
          </button>
        ))}
      </div>
    </div>
  );
}
