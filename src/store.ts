/**
 * The data the panel shows: server health, the workspaces, and per workspace its
 * sessions and tasks. Loaded over REST and kept current by the events `apply`d to it.
 * It holds no UI state and notifies no one: its signals say what happened.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { FINISHED, IInfo, IPart, ISession, ITask, IWorkspace, PerryAPI } from './api';
import { IPerryEvent } from './events';
import { errorMessage } from './format';
import { WorkspaceLists } from './lists';

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

function ended(task: ITask | undefined): boolean {
  return !!task && FINISHED.includes(task.status);
}

export class PerryStore {
  constructor(readonly api: PerryAPI) {
    const changed = () => this._changed.emit();
    this.sessions = new WorkspaceLists<ISession>(
      { fetch: name => api.sessions(name), key: s => s.sessionId, time: s => s.lastActivity },
      changed
    );
    this.tasks = new WorkspaceLists<ITask>({ fetch: name => api.tasks(name), key: t => t.id, time: t => t.created }, changed);
  }

  readonly sessions: WorkspaceLists<ISession>;
  readonly tasks: WorkspaceLists<ITask>;

  // ----------------------------------------------------------------- signals

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A workspace is gone: deleted, or no longer listed. */
  get removed(): ISignal<this, string> {
    return this._removed;
  }

  /** A workspace known as not running is running now. */
  get started(): ISignal<this, string> {
    return this._started;
  }

  get sessionChanged(): ISignal<this, ISessionChange> {
    return this._sessionChanged;
  }

  get replyPart(): ISignal<this, IReplyPart> {
    return this._replyPart;
  }

  /** A task ended while the panel listened (a task first seen finished by a listing is old news). */
  get taskEnded(): ISignal<this, ITask> {
    return this._taskEnded;
  }

  /** The project of a workspace may have changed (`changes.updated`, e.g. a task ended): its name. */
  get changesUpdated(): ISignal<this, string> {
    return this._changesUpdated;
  }

  // -------------------------------------------------------------------- data

  get info(): IInfo | null {
    return this._info;
  }

  get infoError(): string | null {
    return this._infoError;
  }

  /** True when the engine or the image is missing: the panel explains instead of listing. */
  get unhealthy(): boolean {
    const info = this._info;
    return !!info && (!info.engine?.reachable || info.image?.present === false);
  }

  /** Workspaces by name, sorted. */
  get workspaces(): IWorkspace[] {
    return [...this._workspaces.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  workspace(name: string): IWorkspace | undefined {
    return this._workspaces.get(name);
  }

  /** The workspace list has been answered (or has failed) once. */
  get loaded(): boolean {
    return this._loaded;
  }

  get listError(): string | null {
    return this._listError;
  }

  // ----------------------------------------------------------------- loading

  async loadInfo(): Promise<void> {
    try {
      this._info = await this.api.info();
      this._infoError = null;
    } catch (e) {
      this._infoError = errorMessage(e);
    }
    this._changed.emit();
  }

  async loadWorkspaces(): Promise<void> {
    try {
      const list = await this.api.workspaces();
      const before = this._workspaces;
      this._workspaces = new Map(list.map(w => [w.name, w]));
      this._listError = null;
      for (const name of before.keys()) {
        if (!this._workspaces.has(name)) {
          this.remove(name);
        }
      }
    } catch (e) {
      this._listError = errorMessage(e);
    }
    this._loaded = true;
    this._changed.emit();
  }

  /** A stopped workspace's agent sessions cannot be read: its list keeps what was known. */
  loadSessions(name: string): Promise<void> {
    const ws = this._workspaces.get(name);
    return this.sessions.load(name, !ws || ws.status === 'running');
  }

  loadTasks(name: string): Promise<void> {
    return this.tasks.load(name);
  }

  // ----------------------------------------------------------------- updates

  put(ws: IWorkspace): void {
    const before = this._workspaces.get(ws.name);
    if (ws.use === undefined && before?.use && ws.status === 'running') {
      ws = { ...ws, use: before.use }; // events carry no use: the last sample holds until the next list
    }
    const isNew = !before;
    this._workspaces.set(ws.name, ws);
    if (isNew && this._info && this._info.workspaces !== undefined) {
      this._info = { ...this._info, workspaces: this._workspaces.size };
    }
    this._changed.emit();
  }

  remove(name: string): void {
    this._workspaces.delete(name);
    this.sessions.delete(name);
    this.tasks.delete(name);
    this._removed.emit(name);
    this._changed.emit();
  }

  putTask(task: ITask): void {
    const before = this.tasks.upsert(task.workspace, task);
    if (ended(task) && !ended(before)) {
      this._taskEnded.emit(task);
    }
  }

  /** One event of the events stream. */
  apply(event: IPerryEvent): void {
    const type = event.type;
    if (type.startsWith('workspace.')) {
      this._applyWorkspace(event);
    } else if (type.startsWith('session.')) {
      this._applySession(event);
    } else if (type === 'changes.updated') {
      if (event.workspace) {
        this._changesUpdated.emit(event.workspace);
      }
    } else if (type === 'task.created' || type === 'task.updated') {
      const task = event.data as ITask | undefined;
      if (task && task.id) {
        this.putTask({ ...task, workspace: task.workspace || event.workspace || '' });
      }
    }
  }

  private _applyWorkspace(event: IPerryEvent): void {
    const name = event.workspace;
    const ws = event.data as IWorkspace | undefined;
    if (event.type === 'workspace.deleted') {
      if (name) {
        this.remove(name);
      }
    } else if (ws && ws.name) {
      const before = this._workspaces.get(ws.name);
      this.put(ws);
      if (before && before.status !== 'running' && ws.status === 'running') {
        this._started.emit(ws.name);
      }
    } else if (name) {
      void this.loadWorkspaces();
    }
  }

  private _applySession(event: IPerryEvent): void {
    const name = event.workspace;
    if (!name) {
      return;
    }
    if (event.type === 'session.reply') {
      const data = event.data as { sessionId?: string; part?: IPart } | undefined;
      if (data?.sessionId && data.part) {
        this._replyPart.emit({ workspace: name, sessionId: data.sessionId, part: data.part });
      }
    } else if (event.type === 'session.created' || event.type === 'session.updated') {
      const session = (event.data as ISession | undefined) ?? null;
      if (session && session.sessionId && this.sessions.has(name)) {
        this.sessions.upsert(name, session);
      }
      this._sessionChanged.emit({ workspace: name, session });
    }
  }

  dispose(): void {
    Signal.clearData(this);
  }

  private _info: IInfo | null = null;
  private _infoError: string | null = null;
  private _workspaces = new Map<string, IWorkspace>();
  private _loaded = false;
  private _listError: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _removed = new Signal<this, string>(this);
  private _started = new Signal<this, string>(this);
  private _sessionChanged = new Signal<this, ISessionChange>(this);
  private _replyPart = new Signal<this, IReplyPart>(this);
  private _taskEnded = new Signal<this, ITask>(this);
  private _changesUpdated = new Signal<this, string>(this);
}
