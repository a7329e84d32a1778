/** What every screen of the phone page reaches: the shared client, model and events, and small views. */
import * as React from 'react';

import { PerryAPI } from '../api';
import { LiveEvents } from '../events';
import { errorMessage } from '../format';
import { PerryStore } from '../store';

export interface IPhone {
  api: PerryAPI;
  store: PerryStore;
  events: LiveEvents;
}

export const PhoneContext = React.createContext<IPhone>(null as unknown as IPhone);

export function usePhone(): IPhone {
  return React.useContext(PhoneContext);
}

/** Run an action, keeping its error to show; `busy` while it runs. */
export function useAction(): { busy: boolean; error: string | null; run: (action: () => Promise<unknown>) => Promise<boolean> } {
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const run = React.useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (e) {
      setError(errorMessage(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run };
}

export function ErrorLine(props: { error: string | null }): JSX.Element | null {
  return props.error ? (
    <p className="pp-error" role="alert">
      {props.error}
    </p>
  ) : null;
}

export function StatusBadge(props: { status: string }): JSX.Element {
  return <span className={`pp-badge pp-${props.status}`}>{props.status}</span>;
}
