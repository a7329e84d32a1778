/** Small React pieces shared by the panel and the session view. */
import * as React from 'react';

import { PerryModel } from './model';

/** Re-render on every change of the model; tick every few seconds for ages and timers. */
export function useModel(model: PerryModel, tickMs = 0): void {
  const [, setVersion] = React.useState(0);
  React.useEffect(() => {
    const bump = () => setVersion(v => v + 1);
    model.changed.connect(bump);
    const timer = tickMs ? window.setInterval(bump, tickMs) : undefined;
    return () => {
      model.changed.disconnect(bump);
      if (timer !== undefined) {
        window.clearInterval(timer);
      }
    };
  }, [model, tickMs]);
}

export function StatusBadge(props: { status: string; label?: string; title?: string }): JSX.Element {
  return (
    <span className={`perry-badge perry-badge-${props.status}`} data-status={props.status} title={props.title}>
      {props.label ?? props.status}
    </span>
  );
}

/** The server's (or the browser's) error message, announced to screen readers; nothing without one. */
export function ErrorAlert(props: { message?: string | null }): JSX.Element | null {
  return props.message ? (
    <div className="perry-error" role="alert">
      {props.message}
    </div>
  ) : null;
}
