/**
 * What the panel knows: server health, workspaces, their sessions and tasks.
 * Loaded over REST, kept current by the events WebSocket; views re-render on `changed`.
 */
import { Notification } from '@jupyterlab/apputils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  FINISHED,
  IInfo,
  IPart,
  ISession,
  ITask,
  IWorkspace,
  PerryAPI,
  PerryError,
  TaskStatus
} from './api';
import { ConnectionState, EventStream, IPerryEvent } from './events';

export interface ICreating {
  name: string;
  clone: string;
  started: number;
  error?: string;
}

export interface IListState<T> {
  items: T[];
  loading: boolean;
  error: string | null;
  /** The server has no such route yet. */
  unsupported?: boolean;
}

export interface IFocusRequest {
  workspace: string | null;
  target: 'create' | 'task' | 'workspace';
}

export interface ISessionChange {
  workspace: string;
  session: ISession | null;
}

/** One part of a continued conversation's reply, as the agent prints it (`session.reply`). */
export interface IReplyPart {
  workspace: string;
  sessionId: string;
  part: IPart;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sortSessions(list: ISession[]): ISession[] {
  const t = (s: ISession) => (s.lastActivity ? Date.parse(s.lastActivity) || 0 : 0);
  return [...list].sort((a, b) => t(b) - t(a));
}

function sortTasks(list: ITask[]): ITask[] {
  const t = (x: ITask) => (x.created ? Date.parse(x.created) || 0 : 0);
  return [...list].sort((a, b) => t(b) - t(a));
}

export class PerryModel implements IDisposable {
  constructor(readonly api: PerryAPI = new PerryAPI()) {
    this._events = new EventStream(api);
    this._wire(this._events);
    this._events.stateChanged.connect(() => this._changed.emit());
  }

  // ----------------------------------------------------------------- signals

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get sessionChanged(): ISignal<this, ISessionChange> {
    return this._sessionChanged;
  }

  get replyPart(): ISignal<this, IReplyPart> {
    return this._replyPart;
  }

  get focusRequested(): ISignal<this, IFocusRequest> {
    return this._focusRequested;
  }

  // ------------------------------------------------------------------- state

  get info(): IInfo | null {
    return this._info;
  }

  get infoError(): string | null {
    return this._infoError;
  }

  /** Workspaces by name, sorted. */
  get workspaces(): IWorkspace[] {
    return [...this._workspaces.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  workspace(name: string): IWorkspace | undefined {
    return this._workspaces.get(name);
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get loading(): boolean {
    return this._loading;
  }

  get listError(): string | null {
    return this._listError;
  }

  get connection(): ConnectionState {
    return this._events.state;
  }

  get creating(): ICreating | null {
    return this._creating;
  }

  /** What is being done to a workspace right now ("stopping", ...), if anything. */
  busy(name: string): string | undefined {
    return this._busy.get(name);
  }

  actionError(name: string): string | undefined {
    return this._actionErrors.get(name);
  }

  clearActionError(name: string): void {
    if (this._actionErrors.delete(name)) {
      this._changed.emit();
    }
  }

  get selected(): string | null {
    return this._selected;
  }

  set selected(name: string | null) {
    if (name !== this._selected) {
      this._selected = name;
      this._changed.emit();
    }
  }

  isExpanded(name: string): boolean {
    return this._expanded.has(name);
  }

  setExpanded(name: string, expanded: boolean): void {
    if (expanded === this._expanded.has(name)) {
      return;
    }
    if (expanded) {
      this._expanded.add(name);
      this._watches.set(name, this.watch(name));
      void this.loadSessions(name);
      void this.loadTasks(name);
    } else {
      this._expanded.delete(name);
      this._watches.get(name)?.dispose();
      this._watches.delete(name);
    }
    this._changed.emit();
  }

  sessions(name: string): IListState<ISession> {
    return this._sessions.get(name) ?? { items: [], loading: false, error: null };
  }

  tasks(name: string): IListState<ITask> {
    return this._tasks.get(name) ?? { items: [], loading: false, error: null };
  }

  /** True when the engine or the image is missing: the panel explains instead of listing. */
  get unhealthy(): boolean {
    const info = this._info;
    return !!info && (!info.engine?.reachable || info.image?.present === false);
  }

  requestFocus(request: IFocusRequest): void {
    if (request.workspace) {
      this.selected = request.workspace;
      if (request.target === 'task') {
        this.setExpanded(request.workspace, true);
      }
    }
    this._focusRequested.emit(request);
  }

  // ------------------------------------------------------------------ loading

  start(): void {
    this._events.start();
    void this.refresh();
  }

  async refresh(): Promise<void> {
    this._loading = true;
    this._changed.emit();
    await Promise.all([this.loadInfo(), this.loadWorkspaces()]);
    for (const name of this._expanded) {
      void this.loadSessions(name);
      void this.loadTasks(name);
    }
    this._loading = false;
    this._changed.emit();
  }

  async loadInfo(): Promise<void> {
    try {
      this._info = await this.api.info();
      this._infoError = null;
    } catch (e) {
      this._infoError = message(e);
    }
    this._changed.emit();
  }

  async loadWorkspaces(): Promise<void> {
    try {
      const list = await this.api.workspaces();
      this._workspaces = new Map(list.map(w => [w.name, w]));
      this._listError = null;
      for (const name of [...this._expanded]) {
        if (!this._workspaces.has(name)) {
          this.setExpanded(name, false);
        }
      }
    } catch (e) {
      this._listError = message(e);
    }
    this._loaded = true;
    this._changed.emit();
  }

  async loadSessions(name: string): Promise<void> {
    const ws = this._workspaces.get(name);
    if (ws && ws.status !== 'running') {
      this._sessions.set(name, { items: this.sessions(name).items, loading: false, error: null });
      this._changed.emit();
      return;
    }
    this._sessions.set(name, { ...this.sessions(name), loading: true });
    this._changed.emit();
    try {
      const items = sortSessions(await this.api.sessions(name));
      this._sessions.set(name, { items, loading: false, error: null });
    } catch (e) {
      this._sessions.set(name, {
        items: this.sessions(name).items,
        loading: false,
        error: message(e),
        unsupported: e instanceof PerryError && e.unsupported
      });
    }
    this._changed.emit();
  }

  async loadTasks(name: string): Promise<void> {
    this._tasks.set(name, { ...this.tasks(name), loading: true });
    this._changed.emit();
    try {
      const items = sortTasks(await this.api.tasks(name));
      for (const t of items) {
        this._taskStatus.set(t.id, t.status);
      }
      this._tasks.set(name, { items, loading: false, error: null });
    } catch (e) {
      this._tasks.set(name, {
        items: this.tasks(name).items,
        loading: false,
        error: message(e),
        unsupported: e instanceof PerryError && e.unsupported
      });
    }
    this._changed.emit();
  }

  /**
   * Listen to one workspace's own events stream while the returned handle lives:
   * the server watches a workspace's agent sessions for such a listener, also for
   * workspaces that started after the panel connected.
   */
  watch(name: string): IDisposable {
    let entry = this._workspaceStreams.get(name);
    if (!entry) {
      const stream = new EventStream(this.api, name);
      this._wire(stream, true);
      entry = { stream, users: 0 };
      this._workspaceStreams.set(name, entry);
      stream.start();
    }
    entry.users++;
    let disposed = false;
    const streams = this._workspaceStreams;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose() {
        if (disposed) {
          return;
        }
        disposed = true;
        const e = streams.get(name);
        if (e && --e.users === 0) {
          e.stream.dispose();
          streams.delete(name);
        }
      }
    };
  }

  // ------------------------------------------------------------------ actions

  async create(name: string, clone: string): Promise<IWorkspace | null> {
    this._creating = { name, clone, started: Date.now() };
    this._changed.emit();
    try {
      const ws = await this.api.create(name, clone.trim() || undefined);
      this._workspaces.set(ws.name, ws);
      this._creating = null;
      this.selected = ws.name;
      this._changed.emit();
      Notification.success(`Workspace ${ws.name} is ready`, { autoClose: 5000 });
      return ws;
    } catch (e) {
      this._creating = { name, clone, started: this._creating?.started ?? Date.now(), error: message(e) };
      this._changed.emit();
      if (e instanceof PerryError && (e.code === 'image_missing' || e.status === 503)) {
        void this.loadInfo();
      }
      return null;
    }
  }

  dismissCreateError(): void {
    if (this._creating?.error) {
      this._creating = null;
      this._changed.emit();
    }
  }

  async action(name: string, action: 'start' | 'stop' | 'sync'): Promise<boolean> {
    const label = { start: 'starting', stop: 'stopping', sync: 'syncing' }[action];
    return this._busyWhile(name, label, async () => {
      const ws = await this.api.action(name, action);
      if (ws && ws.name) {
        this._workspaces.set(ws.name, ws);
      }
      if (action === 'sync') {
        Notification.info(`Synced keys, git config and the worker into ${name}`, { autoClose: 4000 });
      }
      if (this._expanded.has(name)) {
        void this.loadSessions(name);
      }
    });
  }

  async remove(name: string): Promise<boolean> {
    return this._busyWhile(name, 'deleting', async () => {
      await this.api.remove(name);
      this._forget(name);
    });
  }

  async dispatch(name: string, agent: string, prompt: string, sessionId?: string): Promise<ITask> {
    const task = await this.api.dispatch(name, agent, prompt, sessionId);
    this._upsertTask(task, true);
    return task;
  }

  async cancelTask(task: ITask): Promise<void> {
    await this.api.cancelTask(task.workspace, task.id);
  }

  private async _busyWhile(name: string, label: string, work: () => Promise<void>): Promise<boolean> {
    this._busy.set(name, label);
    this._actionErrors.delete(name);
    this._changed.emit();
    try {
      await work();
      return true;
    } catch (e) {
      this._actionErrors.set(name, message(e));
      if (e instanceof PerryError && e.status === 503) {
        void this.loadInfo();
      }
      return false;
    } finally {
      this._busy.delete(name);
      this._changed.emit();
    }
  }

  // ------------------------------------------------------------------- events

  private _wire(stream: EventStream, workspaceOnly = false): void {
    stream.received.connect((_, event) => this._onEvent(event));
    if (!workspaceOnly) {
      // After a (re)connection, anything may have happened meanwhile.
      let first = true;
      stream.connected.connect(() => {
        if (!first) {
          void this.refresh();
        }
        first = false;
      });
    }
  }

  private _onEvent(event: IPerryEvent): void {
    const name = event.workspace;
    const type = event.type;
    if (type === 'workspace.deleted') {
      if (name) {
        this._forget(name);
      }
    } else if (type.startsWith('workspace.')) {
      const ws = event.data as IWorkspace | undefined;
      if (ws && ws.name) {
        const before = this._workspaces.get(ws.name);
        this._workspaces.set(ws.name, ws);
        if (this._info && this._info.workspaces !== undefined && !before) {
          this._info = { ...this._info, workspaces: this._workspaces.size };
        }
        if (before && before.status !== 'running' && ws.status === 'running' && this._expanded.has(ws.name)) {
          void this.loadSessions(ws.name);
        }
        this._changed.emit();
      } else if (name) {
        void this.loadWorkspaces();
      }
    } else if (type === 'session.created' || type === 'session.updated') {
      if (!name) {
        return;
      }
      const session = (event.data as ISession | undefined) ?? null;
      if (session && session.sessionId && this._sessions.has(name)) {
        const state = this.sessions(name);
        const items = state.items.filter(s => s.sessionId !== session.sessionId);
        items.push(session);
        this._sessions.set(name, { ...state, items: sortSessions(items) });
        this._changed.emit();
      }
      this._sessionChanged.emit({ workspace: name, session });
    } else if (type === 'session.reply') {
      const data = event.data as { sessionId?: string; part?: IPart } | undefined;
      if (name && data?.sessionId && data.part) {
        this._replyPart.emit({ workspace: name, sessionId: data.sessionId, part: data.part });
      }
    } else if (type === 'task.created' || type === 'task.updated') {
      const task = event.data as ITask | undefined;
      if (task && task.id) {
        this._upsertTask({ ...task, workspace: task.workspace || name || '' }, true);
      }
    }
  }

  private _upsertTask(task: ITask, live: boolean): void {
    const name = task.workspace;
    const state = this.tasks(name);
    const items = state.items.filter(t => t.id !== task.id);
    items.push(task);
    this._tasks.set(name, { ...state, items: sortTasks(items) });
    const before = this._taskStatus.get(task.id);
    this._taskStatus.set(task.id, task.status);
    // Live events only: a task first seen finished by a listing is old news.
    if (live && FINISHED.includes(task.status) && (before === undefined || !FINISHED.includes(before))) {
      this._notifyEnded(task);
    }
    this._changed.emit();
  }

  private _notifyEnded(task: ITask): void {
    const prompt = task.prompt.length > 60 ? `${task.prompt.slice(0, 57)}…` : task.prompt;
    const text = `Task in ${task.workspace} ${task.status}: ${prompt}`;
    const options = { autoClose: task.status === 'succeeded' ? 8000 : (false as const) };
    if (task.status === 'succeeded') {
      Notification.success(text, options);
    } else if (task.status === 'failed') {
      const why = task.error || task.summary;
      Notification.error(why ? `${text} (${why})` : text, options);
    } else {
      Notification.info(text, { autoClose: 5000 });
    }
  }

  private _forget(name: string): void {
    this._workspaces.delete(name);
    if (this._expanded.has(name)) {
      this.setExpanded(name, false);
    }
    this._sessions.delete(name);
    this._tasks.delete(name);
    this._actionErrors.delete(name);
    if (this._selected === name) {
      this._selected = null;
    }
    this._changed.emit();
  }

  // ----------------------------------------------------------------- disposal

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._events.dispose();
    for (const { stream } of this._workspaceStreams.values()) {
      stream.dispose();
    }
    this._workspaceStreams.clear();
    Signal.clearData(this);
  }

  private _events: EventStream;
  private _workspaceStreams = new Map<string, { stream: EventStream; users: number }>();
  private _watches = new Map<string, IDisposable>();
  private _info: IInfo | null = null;
  private _infoError: string | null = null;
  private _workspaces = new Map<string, IWorkspace>();
  private _loaded = false;
  private _loading = false;
  private _listError: string | null = null;
  private _creating: ICreating | null = null;
  private _busy = new Map<string, string>();
  private _actionErrors = new Map<string, string>();
  private _selected: string | null = null;
  private _expanded = new Set<string>();
  private _sessions = new Map<string, IListState<ISession>>();
  private _tasks = new Map<string, IListState<ITask>>();
  private _taskStatus = new Map<string, TaskStatus>();
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _sessionChanged = new Signal<this, ISessionChange>(this);
  private _focusRequested = new Signal<this, IFocusRequest>(this);
  private _replyPart = new Signal<this, IReplyPart>(this);
}
