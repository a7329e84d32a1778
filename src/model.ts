/**
 * The panel's model: the data (`store`), what the user is doing (`ui`) and the live
 * events, tied together by the actions the views call. Views re-render on `changed`.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ITask, IWorkspace, PerryAPI, PerryError } from './api';
import { ConnectionState, LiveEvents } from './events';
import { errorMessage } from './format';
import * as notify from './notify';
import { EnginesState } from './resources';
import { labServer } from './server';
import { PerryStore } from './store';
import { IFocusRequest, PanelState } from './ui';

export class PerryModel implements IDisposable {
  constructor(readonly api: PerryAPI = new PerryAPI(labServer())) {
    this.store = new PerryStore(api);
    this.ui = new PanelState();
    this._live = new LiveEvents(api);
    const changed = () => this._changed.emit();
    this.store.changed.connect(changed);
    this.ui.changed.connect(changed);
    this._live.stateChanged.connect(changed);
    this.engines = new EnginesState(api);
    this.engines.changed.connect(changed);
    this._live.received.connect((_, event) => {
      this.store.apply(event);
      if (event.type.startsWith('engine.')) {
        void this.engines.load();
      }
    });
    this._live.reconnected.connect(() => void this.refresh());
    this.store.taskEnded.connect((_, task) => notify.taskEnded(task));
    this.store.started.connect((_, name) => {
      if (this.ui.isExpanded(name)) {
        void this.store.loadSessions(name);
      }
    });
    this.store.removed.connect((_, name) => {
      this.setExpanded(name, false);
      this.ui.forget(name);
    });
  }

  readonly store: PerryStore;
  readonly engines: EnginesState;
  readonly ui: PanelState;

  /** Anything shown changed: data, UI state or the connection. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get connection(): ConnectionState {
    return this._live.state;
  }

  start(): void {
    this._live.start();
    void this.refresh();
  }

  async refresh(): Promise<void> {
    this.ui.refreshing = true;
    await Promise.all([this.store.loadInfo(), this.store.loadWorkspaces(), this.engines.load()]);
    for (const name of this.ui.expanded) {
      this._loadLists(name);
    }
    this.ui.refreshing = false;
  }

  /** Open or close a workspace's details; open ones load their lists and follow their own events. */
  setExpanded(name: string, expanded: boolean): void {
    if (!this.ui.setExpanded(name, expanded)) {
      return;
    }
    if (expanded) {
      this._watches.set(name, this.watch(name));
      this._loadLists(name);
    } else {
      this._watches.get(name)?.dispose();
      this._watches.delete(name);
    }
  }

  requestFocus(request: IFocusRequest): void {
    if (request.workspace) {
      this.ui.selected = request.workspace;
      if (request.target === 'task') {
        this.setExpanded(request.workspace, true);
      }
    }
    this.ui.requestFocus(request);
  }

  /** Listen to one workspace's own events stream while the returned handle lives. */
  watch(name: string): IDisposable {
    return this._live.watch(name);
  }

  // ------------------------------------------------------------------ actions

  async create(name: string, clone: string, engine = ''): Promise<IWorkspace | null> {
    const started = Date.now();
    this.ui.creating = { name, clone, started };
    try {
      const ws = await this.api.create(name, clone.trim() || undefined, engine || undefined);
      this.store.put(ws);
      this.ui.creating = null;
      this.ui.selected = ws.name;
      notify.workspaceReady(ws);
      return ws;
    } catch (e) {
      this.ui.creating = { name, clone, started, error: errorMessage(e) };
      if (e instanceof PerryError && (e.code === 'image_missing' || e.status === 503)) {
        void this.store.loadInfo();
      }
      return null;
    }
  }

  dismissCreateError(): void {
    if (this.ui.creating?.error) {
      this.ui.creating = null;
    }
  }

  async action(name: string, action: 'start' | 'stop' | 'sync'): Promise<boolean> {
    const label = { start: 'starting', stop: 'stopping', sync: 'syncing' }[action];
    return this._busyWhile(name, label, async () => {
      const ws = await this.api.action(name, action);
      if (ws && ws.name) {
        this.store.put(ws);
      }
      if (action === 'sync') {
        notify.workspaceSynced(name);
      }
      if (this.ui.isExpanded(name)) {
        void this.store.loadSessions(name);
      }
    });
  }

  async remove(name: string): Promise<boolean> {
    return this._busyWhile(name, 'deleting', async () => {
      await this.api.remove(name);
      this.store.remove(name);
    });
  }

  async dispatch(name: string, agent: string, prompt: string, sessionId?: string): Promise<ITask> {
    const task = await this.api.dispatch(name, agent, prompt, sessionId);
    this.store.putTask(task);
    return task;
  }

  async cancelTask(task: ITask): Promise<void> {
    await this.api.cancelTask(task.workspace, task.id);
  }

  private _loadLists(name: string): void {
    void this.store.loadSessions(name);
    void this.store.loadTasks(name);
  }

  private async _busyWhile(name: string, label: string, work: () => Promise<void>): Promise<boolean> {
    this.ui.setBusy(name, label);
    try {
      await work();
      return true;
    } catch (e) {
      this.ui.setActionError(name, errorMessage(e));
      if (e instanceof PerryError && e.status === 503) {
        void this.store.loadInfo();
      }
      return false;
    } finally {
      this.ui.setBusy(name, undefined);
    }
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
    this._live.dispose();
    this.store.dispose();
    this.ui.dispose();
    Signal.clearData(this);
  }

  private _live: LiveEvents;
  private _watches = new Map<string, IDisposable>();
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
