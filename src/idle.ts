import type { IWorkspace } from './api';

/** An idle timeout as people say it: 45 s, 30 min, 2 h. */
export function idleWords(seconds: number): string {
  if (seconds % 3600 === 0) {
    return `${seconds / 3600} h`;
  }
  return seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
}

/** Why a stopped workspace stopped, when Perry stopped it; null otherwise. */
export function stopWhy(ws: IWorkspace): string | null {
  if (ws.status !== 'stopped') {
    return null;
  }
  if (ws.stopReason === 'idle') {
    return ws.idleTimeout ? `stopped after ${idleWords(ws.idleTimeout)} idle` : 'stopped while idle';
  }
  return ws.stopReason === 'user' ? 'stopped by a user' : null;
}

/** The tooltip of a workspace's status badge: why it stopped, and that using it starts it again. */
export function stopTooltip(ws: IWorkspace): string | undefined {
  const why = stopWhy(ws);
  if (why === null) {
    return undefined;
  }
  return ws.stopReason === 'idle' ? `${why}; a terminal, task or request starts it again` : why;
}

/** Whether using the workspace starts it first (the server's auto_start, on by default, refuses otherwise). */
export function wakesOnUse(ws: IWorkspace): boolean {
  return ws.status === 'stopped' && ws.stopReason === 'idle';
}
