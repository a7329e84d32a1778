/** One list per workspace (its sessions, its tasks): loaded over REST, patched by events, newest first. */
import { PerryError } from './api';
import { errorMessage } from './format';

export interface IListState<T> {
  items: T[];
  loading: boolean;
  error: string | null;
  /** The server has no such route yet. */
  unsupported?: boolean;
}

/** What differs between the lists: where they come from, what identifies an item, how recent it is. */
export interface IListSpec<T> {
  fetch(workspace: string): Promise<T[]>;
  key(item: T): string;
  time(item: T): string | null | undefined;
}

export class WorkspaceLists<T> {
  constructor(
    private spec: IListSpec<T>,
    private changed: () => void
  ) {}

  get(workspace: string): IListState<T> {
    return this._lists.get(workspace) ?? { items: [], loading: false, error: null };
  }

  /** Whether the workspace's list was ever asked for (events only patch lists someone reads). */
  has(workspace: string): boolean {
    return this._lists.has(workspace);
  }

  /** Fetch the workspace's list; when it cannot be read now (`readable` false), keep what is known, without error. */
  async load(workspace: string, readable = true): Promise<void> {
    if (!readable) {
      this._set(workspace, { items: this.get(workspace).items, loading: false, error: null });
      return;
    }
    this._set(workspace, { ...this.get(workspace), loading: true });
    try {
      const items = this._sorted(await this.spec.fetch(workspace));
      this._set(workspace, { items, loading: false, error: null });
    } catch (e) {
      this._set(workspace, {
        items: this.get(workspace).items,
        loading: false,
        error: errorMessage(e),
        unsupported: e instanceof PerryError && e.unsupported
      });
    }
  }

  /** Add or replace one item; answers the version it replaced, if any. */
  upsert(workspace: string, item: T): T | undefined {
    const state = this.get(workspace);
    const key = this.spec.key(item);
    const before = state.items.find(i => this.spec.key(i) === key);
    const items = state.items.filter(i => i !== before);
    items.push(item);
    this._set(workspace, { ...state, items: this._sorted(items) });
    return before;
  }

  delete(workspace: string): void {
    this._lists.delete(workspace);
  }

  private _sorted(items: T[]): T[] {
    const t = (item: T) => {
      const time = this.spec.time(item);
      return time ? Date.parse(time) || 0 : 0;
    };
    return [...items].sort((a, b) => t(b) - t(a));
  }

  private _set(workspace: string, state: IListState<T>): void {
    this._lists.set(workspace, state);
    this.changed();
  }

  private _lists = new Map<string, IListState<T>>();
}
