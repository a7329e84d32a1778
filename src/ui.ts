/**
 * What the user is doing in the panel, apart from the data: the selected and the
 * opened workspaces, a create under way, the actions running and their errors.
 */
import { ISignal, Signal } from '@lumino/signaling';

export interface ICreating {
  name: string;
  clone: string;
  started: number;
  error?: string;
}

export interface IFocusRequest {
  workspace: string | null;
  target: 'create' | 'task' | 'workspace';
}

export class PanelState {
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get focusRequested(): ISignal<this, IFocusRequest> {
    return this._focusRequested;
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

  /** A refresh of everything is under way. */
  get refreshing(): boolean {
    return this._refreshing;
  }

  set refreshing(value: boolean) {
    this._refreshing = value;
    this._changed.emit();
  }

  get creating(): ICreating | null {
    return this._creating;
  }

  set creating(value: ICreating | null) {
    this._creating = value;
    this._changed.emit();
  }

  /** Workspaces whose details, sessions and tasks are open. */
  get expanded(): string[] {
    return [...this._expanded];
  }

  isExpanded(name: string): boolean {
    return this._expanded.has(name);
  }

  /** Answers whether anything changed. */
  setExpanded(name: string, expanded: boolean): boolean {
    if (expanded === this._expanded.has(name)) {
      return false;
    }
    if (expanded) {
      this._expanded.add(name);
    } else {
      this._expanded.delete(name);
    }
    this._changed.emit();
    return true;
  }

  /** What is being done to a workspace right now ("stopping", ...), if anything. */
  busy(name: string): string | undefined {
    return this._busy.get(name);
  }

  /** Marks the workspace busy (and clears its last error), or not busy with `undefined`. */
  setBusy(name: string, label: string | undefined): void {
    if (label) {
      this._busy.set(name, label);
      this._actionErrors.delete(name);
    } else {
      this._busy.delete(name);
    }
    this._changed.emit();
  }

  actionError(name: string): string | undefined {
    return this._actionErrors.get(name);
  }

  setActionError(name: string, error: string): void {
    this._actionErrors.set(name, error);
    this._changed.emit();
  }

  clearActionError(name: string): void {
    if (this._actionErrors.delete(name)) {
      this._changed.emit();
    }
  }

  /** The workspace is gone: nothing of it stays selected or open. */
  forget(name: string): void {
    this._expanded.delete(name);
    this._actionErrors.delete(name);
    if (this._selected === name) {
      this._selected = null;
    }
    this._changed.emit();
  }

  requestFocus(request: IFocusRequest): void {
    this._focusRequested.emit(request);
  }

  dispose(): void {
    Signal.clearData(this);
  }

  private _selected: string | null = null;
  private _refreshing = false;
  private _creating: ICreating | null = null;
  private _expanded = new Set<string>();
  private _busy = new Map<string, string>();
  private _actionErrors = new Map<string, string>();
  private _changed = new Signal<this, void>(this);
  private _focusRequested = new Signal<this, IFocusRequest>(this);
}
