/**
 * The events WebSocket (`/perry/api/events[?workspace=NAME]`), reconnecting with
 * backoff when it drops. Every (re)connection is announced, so listeners can
 * refetch what they may have missed meanwhile.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { PerryAPI } from './api';

export interface IPerryEvent {
  type: string;
  workspace: string | null;
  time?: number;
  data?: any;
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

export class EventStream {
  constructor(
    private api: PerryAPI,
    readonly workspace?: string
  ) {}

  get received(): ISignal<this, IPerryEvent> {
    return this._received;
  }

  /** Emitted with each new connection's `hello`: refetch, something may have been missed. */
  get connected(): ISignal<this, void> {
    return this._connected;
  }

  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get state(): ConnectionState {
    return this._state;
  }

  start(): void {
    if (this._disposed || this._socket) {
      return;
    }
    this._connect();
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
      this._timer = undefined;
    }
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    Signal.clearData(this);
  }

  private _setState(state: ConnectionState): void {
    if (state !== this._state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _connect(): void {
    this._timer = undefined;
    if (this._disposed) {
      return;
    }
    this._setState('connecting');
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.api.eventsUrl(this.workspace));
    } catch {
      this._retry();
      return;
    }
    this._socket = socket;
    socket.onmessage = msg => {
      let event: IPerryEvent;
      try {
        event = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      if (event.type === 'hello') {
        this._delay = MIN_DELAY;
        this._setState('open');
        this._connected.emit();
        return;
      }
      this._received.emit(event);
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._retry();
      }
    };
  }

  private _retry(): void {
    if (this._disposed) {
      return;
    }
    this._setState('closed');
    const delay = this._delay;
    this._delay = Math.min(MAX_DELAY, this._delay * 2);
    // A little jitter, so many tabs do not reconnect in step after a server restart.
    this._timer = window.setTimeout(() => this._connect(), delay * (0.8 + Math.random() * 0.4));
  }

  private _socket: WebSocket | null = null;
  private _timer: number | undefined;
  private _delay = MIN_DELAY;
  private _disposed = false;
  private _state: ConnectionState = 'closed';
  private _received = new Signal<this, IPerryEvent>(this);
  private _connected = new Signal<this, void>(this);
  private _stateChanged = new Signal<this, ConnectionState>(this);
}

/**
 * The panel's streams: the server-wide one, and one per workspace someone watches,
 * shared by its watchers and closed with the last of them. The server watches a
 * workspace's agent sessions while such a listener is connected.
 */
export class LiveEvents implements IDisposable {
  constructor(private api: PerryAPI) {
    this._main = this._listen(new EventStream(api));
    this._main.stateChanged.connect((_, state) => this._stateChanged.emit(state));
    let first = true;
    this._main.connected.connect(() => {
      if (!first) {
        this._reconnected.emit();
      }
      first = false;
    });
  }

  /** Events of every stream. */
  get received(): ISignal<this, IPerryEvent> {
    return this._received;
  }

  /** The server-wide stream is back after a drop: anything may have happened meanwhile. */
  get reconnected(): ISignal<this, void> {
    return this._reconnected;
  }

  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get state(): ConnectionState {
    return this._main.state;
  }

  start(): void {
    this._main.start();
  }

  /** Listen to one workspace's own stream while the returned handle lives. */
  watch(name: string): IDisposable {
    let entry = this._watched.get(name);
    if (!entry) {
      entry = { stream: this._listen(new EventStream(this.api, name)), users: 0 };
      this._watched.set(name, entry);
      entry.stream.start();
    }
    entry.users++;
    let disposed = false;
    const watched = this._watched;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose() {
        if (disposed) {
          return;
        }
        disposed = true;
        const e = watched.get(name);
        if (e && --e.users === 0) {
          e.stream.dispose();
          watched.delete(name);
        }
      }
    };
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._main.dispose();
    for (const { stream } of this._watched.values()) {
      stream.dispose();
    }
    this._watched.clear();
    Signal.clearData(this);
  }

  private _listen(stream: EventStream): EventStream {
    stream.received.connect((_, event) => this._received.emit(event));
    return stream;
  }

  private _main: EventStream;
  private _watched = new Map<string, { stream: EventStream; users: number }>();
  private _disposed = false;
  private _received = new Signal<this, IPerryEvent>(this);
  private _reconnected = new Signal<this, void>(this);
  private _stateChanged = new Signal<this, ConnectionState>(this);
}
