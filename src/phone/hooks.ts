/** React glue for the shared model: re-render on its signals, follow the page's hash route. */
import { ISignal } from '@lumino/signaling';
import * as React from 'react';

/** Re-render whenever `signal` fires. */
export function useSignal<T>(signal: ISignal<T, any>): void {
  const [, bump] = React.useReducer((n: number) => n + 1, 0);
  React.useEffect(() => {
    const listener = () => bump();
    signal.connect(listener);
    return () => {
      signal.disconnect(listener);
    };
  }, [signal]);
}

/** The route is the hash (`#/w/NAME/tasks`), so the shell is one cached page and Back works. */
export function useRoute(): string[] {
  const read = () =>
    window.location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .map(decodeURIComponent);
  const [route, setRoute] = React.useState(read);
  React.useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function go(...parts: string[]): void {
  window.location.hash = href(...parts);
}

/** Load something once per key, and again on `reload()`. */
export function useLoad<T>(load: () => Promise<T>, deps: React.DependencyList): {
  value: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
} {
  const [value, setValue] = React.useState<T | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [round, setRound] = React.useState(0);
  React.useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      v => {
        if (live) {
          setValue(v);
          setError(null);
          setLoading(false);
        }
      },
      (e: Error) => {
        if (live) {
          setError(e.message);
          setLoading(false);
        }
      }
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  return { value, error, loading, reload: React.useCallback(() => setRound(r => r + 1), []) };
}
