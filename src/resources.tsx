/**
 * What a workspace may use and uses (limits, CPU and memory bars) and where it runs (its engine,
 * the engines' health, the engine picker of the create form).
 */
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { IEngine, IWorkspace, IWorkspaceUse, PerryAPI } from './api';
import { errorMessage } from './format';

// ---------------------------------------------------------------------- sizes and limits

/** Bytes as a person reads them: "300 MiB", "1.5 GiB". */
export function sizeText(bytes: number | null | undefined): string {
  if (typeof bytes !== 'number') {
    return '—';
  }
  const units: [string, number][] = [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10]
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) {
      const n = bytes / size;
      return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

/** "2 CPUs, 4.0 GiB, 512 processes", or "none". */
export function limitsText(ws: IWorkspace): string {
  const l = ws.limits ?? {};
  const parts: string[] = [];
  if (l.cpus) {
    parts.push(`${l.cpus} CPU${l.cpus === 1 ? '' : 's'}`);
  }
  if (l.memory) {
    parts.push(sizeText(l.memory));
  }
  if (l.pids) {
    parts.push(`${l.pids} processes`);
  }
  return parts.join(', ') || 'none';
}

// ---------------------------------------------------------------------------- use bars

function Bar(props: { label: string; fraction: number; text: string; title: string }): JSX.Element {
  const pct = Math.max(0, Math.min(100, Math.round(props.fraction * 100)));
  const tone = pct >= 90 ? ' perry-use-high' : pct >= 70 ? ' perry-use-warn' : '';
  return (
    <div className="perry-use" title={props.title}>
      <span className="perry-use-label">{props.label}</span>
      <span
        className={`perry-use-bar${tone}`}
        role="meter"
        aria-label={`${props.label} use`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-valuetext={props.text}
      >
        <span className="perry-use-fill" style={{ width: `${pct}%` }} />
      </span>
      <span className="perry-use-text">{props.text}</span>
    </div>
  );
}

/** CPU and memory bars of a running workspace (nothing until the server's first sample). */
export function UseBars(props: { ws: IWorkspace }): JSX.Element | null {
  const use: IWorkspaceUse | null | undefined = props.ws.use;
  if (props.ws.status !== 'running' || !use) {
    return null;
  }
  // 100% is one CPU busy (as `docker stats` counts): the bar's whole is the limit, else the machine.
  const cpus = props.ws.limits?.cpus ?? use.cpus ?? 1;
  const cpu = use.cpuPercent;
  return (
    <div className="perry-uses" aria-label={`Use of ${props.ws.name}`}>
      <Bar
        label="CPU"
        fraction={cpu === null || cpu === undefined ? 0 : cpu / (cpus * 100)}
        text={cpu === null || cpu === undefined ? 'measuring…' : `${Math.round(cpu)}% of ${cpus} CPU${cpus === 1 ? '' : 's'}`}
        title={`CPU: ${cpu ?? '?'}% (100% is one CPU busy) of ${cpus} CPU${cpus === 1 ? '' : 's'}`}
      />
      <Bar
        label="Memory"
        fraction={use.memoryLimit ? use.memoryUsed / use.memoryLimit : 0}
        text={`${sizeText(use.memoryUsed)} / ${sizeText(use.memoryLimit)}`}
        title={`Memory: ${sizeText(use.memoryUsed)} used of ${sizeText(use.memoryLimit)}`}
      />
    </div>
  );
}

// ----------------------------------------------------------------------------- engines

/** The engines and their health, reloaded on `engine.down` / `engine.up` and on refresh. */
export class EnginesState {
  constructor(private api: PerryAPI) {}

  get engines(): IEngine[] {
    return this._engines;
  }

  get error(): string | null {
    return this._error;
  }

  /** More than one engine: worth a picker, a badge and a health section. */
  get several(): boolean {
    return this._engines.length > 1;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  async load(): Promise<void> {
    try {
      this._engines = await this.api.engines();
      this._error = null;
    } catch (e) {
      this._error = errorMessage(e);
    }
    this._changed.emit();
  }

  private _engines: IEngine[] = [];
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
}

export function EngineBadge(props: { ws: IWorkspace; engines: EnginesState }): JSX.Element | null {
  if (!props.ws.engine || !props.engines.several) {
    return null;
  }
  const down = props.engines.engines.find(e => e.name === props.ws.engine)?.reachable === false;
  return (
    <span
      className={`perry-engine-badge${down ? ' perry-engine-down' : ''}`}
      data-engine={props.ws.engine}
      title={`On Docker engine ${props.ws.engine}${down ? ' (not reachable)' : ''}`}
    >
      {props.ws.engine}
    </span>
  );
}

/** The create form's engine choice: only when there is a choice; "" is the placement rule's. */
export function EnginePicker(props: {
  engines: EnginesState;
  value: string;
  disabled: boolean;
  onChange: (engine: string) => void;
}): JSX.Element | null {
  if (!props.engines.several) {
    return null;
  }
  return (
    <label>
      Engine
      <select
        className="jp-mod-styled perry-input"
        name="engine"
        value={props.value}
        disabled={props.disabled}
        onChange={e => props.onChange(e.target.value)}
      >
        <option value="">automatic placement</option>
        {props.engines.engines.map(e => (
          <option key={e.name} value={e.name} disabled={!e.reachable}>
            {e.name}
            {e.reachable ? '' : ' (not reachable)'}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Each engine: reachable or not, its workspaces running/total, its round trip. */
export function EnginesHealth(props: { engines: EnginesState }): JSX.Element | null {
  const { engines } = props;
  if (!engines.several) {
    return null;
  }
  return (
    <section className="perry-engines" aria-label="Engines">
      <h4>Engines</h4>
      <ul>
        {engines.engines.map(e => (
          <li key={e.name} data-engine={e.name} data-reachable={e.reachable ? 'yes' : 'no'} title={e.error ?? e.address}>
            <span className={`perry-engine-dot${e.reachable ? ' perry-engine-up' : ''}`} aria-hidden="true" />
            <span className="perry-engine-name">{e.name}</span>
            <span className="perry-engine-state">{e.reachable ? 'up' : 'down'}</span>
            <span>
              {e.workspaces.running}/{e.workspaces.total} running
            </span>
            <span>{typeof e.rttMs === 'number' ? `${Math.round(e.rttMs)} ms` : '—'}</span>
          </li>
        ))}
      </ul>
      {engines.error ? <div className="perry-error">{engines.error}</div> : null}
    </section>
  );
}
