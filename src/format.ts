/** Small formatting helpers shared by the views. */
import { ITokens, IWorkspace } from './api';

/** Parse the server's times: ISO strings, or epoch seconds/milliseconds. */
export function parseTime(value: string | number | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') {
    return null;
  }
  if (typeof value === 'number' || /^\d+(\.\d+)?$/.test(value)) {
    const n = Number(value);
    return new Date(n < 1e12 ? n * 1000 : n);
  }
  const d = new Date(value);
  return isNaN(d.getTime()) ? null : d;
}

/** "12s", "5m", "3h", "2d": how long ago. */
export function age(value: string | number | null | undefined, now: number = Date.now()): string {
  const d = parseTime(value);
  if (!d) {
    return '';
  }
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h`;
  }
  return `${Math.floor(s / 86400)}d`;
}

export function fullTime(value: string | number | null | undefined): string {
  const d = parseTime(value);
  return d ? d.toLocaleString() : '';
}

export function tokenTotal(t: ITokens | undefined | null): number {
  if (!t) {
    return 0;
  }
  return (t.input ?? 0) + (t.output ?? 0) + (t.reasoning ?? 0) + (t.cacheRead ?? 0) + (t.cacheWrite ?? 0);
}

/** "1,234 in · 56 out · 7 reasoning · 800 cached" (only what is there). */
export function tokenSummary(t: ITokens | undefined | null): string {
  if (!t) {
    return '';
  }
  const parts: string[] = [];
  const add = (n: number | undefined, label: string) => {
    if (n) {
      parts.push(`${n.toLocaleString()} ${label}`);
    }
  };
  add(t.input, 'in');
  add(t.output, 'out');
  add(t.reasoning, 'reasoning');
  add(t.cacheRead, 'cache read');
  add(t.cacheWrite, 'cache write');
  return parts.join(' · ');
}

export function cost(value: number | null | undefined): string {
  return value ? `$${value.toFixed(value < 0.01 ? 4 : 2)}` : '';
}

/** An error's message, whatever was thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The server's SSH command line for the workspace; an older server's workspaces have none, so it is built as it was. */
export function sshCommand(ws: IWorkspace): string | null {
  if ('sshCommand' in ws) {
    return ws.sshCommand || null;
  }
  const port = ws.ports?.ssh;
  return port ? `ssh -p ${port} workspace@${ws.sshHost ?? '127.0.0.1'}` : null;
}

/** "Docker inside: starting…" while a running workspace's own engine comes up; null when not told. */
export function dockerInside(ws: IWorkspace): string | null {
  if (ws.status !== 'running' || !ws.dindStatus) {
    return null;
  }
  return `Docker inside: ${ws.dindStatus === 'starting' ? 'starting…' : ws.dindStatus}`;
}
