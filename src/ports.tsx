/**
 * What a workspace serves: its listening TCP ports, each with an Open button that opens
 * it through Perry's authenticated proxy (`<base_url>/perry/proxy/{name}/{port}/`) in a
 * new browser tab.
 */
import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IWorkspace, joinUrl, PerryAPI } from './api';
import { ErrorAlert } from './components';
import { PerryModel } from './model';

export interface IPort {
  port: number;
  addresses?: string[];
  /** The owning process, or "unknown" when it cannot be seen. */
  pid?: number | string;
  command?: string;
}

export async function listPorts(api: PerryAPI, name: string): Promise<IPort[]> {
  return (await api.request<{ ports: IPort[] }>(`workspaces/${encodeURIComponent(name)}/ports`)).ports;
}

/** Where the browser opens a port of a workspace. */
export function proxyUrl(api: PerryAPI, name: string, port: number): string {
  return joinUrl(api.server.baseUrl, 'perry/proxy', encodeURIComponent(name), String(port), '/');
}

export function PortsSection(props: { model: PerryModel; ws: IWorkspace }): JSX.Element | null {
  const { model, ws } = props;
  const api = model.api;
  const [ports, setPorts] = React.useState<IPort[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(false);
  const running = ws.status === 'running';

  const load = React.useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      setPorts(await listPorts(api, ws.name));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  }, [api, ws.name]);

  React.useEffect(() => {
    if (running) {
      void load();
    } else {
      setPorts(null);
    }
  }, [running, load]);

  if (!running) {
    return null;
  }
  return (
    <section className="perry-section perry-ports" aria-label={`Ports of ${ws.name}`}>
      <div className="perry-section-head">
        <h4>Ports</h4>
        <button
          className="perry-icon-button"
          title="Reload ports"
          aria-label={`Reload ports of ${ws.name}`}
          disabled={loading}
          onClick={() => void load()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </div>
      <ErrorAlert message={error} />
      {ports === null ? (
        error ? null : <div className="perry-dim">Loading ports…</div>
      ) : ports.length === 0 ? (
        <div className="perry-dim">Nothing listens on a TCP port yet.</div>
      ) : (
        <ul className="perry-port-list">
          {ports.map(p => (
            <li key={p.port} className="perry-port" data-port={p.port}>
              <span className="perry-port-number">{p.port}</span>
              <span className="perry-port-command perry-dim" title={p.command}>
                {p.command && p.command !== 'unknown' ? p.command : 'unknown process'}
              </span>
              <a
                className="jp-mod-styled perry-button"
                href={proxyUrl(api, ws.name, p.port)}
                target="_blank"
                rel="noopener noreferrer"
                aria-label={`Open port ${p.port} of ${ws.name}`}
              >
                Open
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
