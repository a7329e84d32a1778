/**
 * A workspace on a main-area page of its own, so the sidebar can stay a list: tabs for its
 * overview, its terminals (the open ones to reattach, a new one), sessions, tasks, changes
 * and ports. The tabs are the panel's own sections; only the page around them is new.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';
import * as React from 'react';

import { ITerminal } from './api';
import { ChangesSection } from './changes';
import { ErrorAlert, StatusBadge, useModel } from './components';
import { perryIcon } from './icons';
import { LogsSection } from './logs';
import { PerryModel } from './model';
import { DockerInsideBadge, SessionList, WorkspaceActions, WorkspaceDetails } from './panel';
import { PortsSection } from './ports';
import { UseBars } from './resources';
import { TasksSection } from './tasks';
import { openTerminalTab } from './terminaltab';
import { CommandIDs } from './tokens';

const TABS = ['Overview', 'Terminals', 'Sessions', 'Tasks', 'Changes', 'Ports'] as const;
type Tab = (typeof TABS)[number];

function Terminals(props: { model: PerryModel; commands: CommandRegistry; name: string; running: boolean }): JSX.Element {
  const { model, commands, name, running } = props;
  const [terminals, setTerminals] = React.useState<ITerminal[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const load = React.useCallback(async () => {
    try {
      const answer = await model.api.request<{ terminals: ITerminal[] }>(`workspaces/${encodeURIComponent(name)}/terminals`);
      setTerminals(answer.terminals);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [model, name]);
  React.useEffect(() => {
    void load();
  }, [load, running]);
  return (
    <section className="perry-section" aria-label={`Terminals of ${name}`}>
      <div className="perry-actions">
        <button
          className="perry-button"
          disabled={!running}
          onClick={() => void Promise.resolve(commands.execute(CommandIDs.openTerminal, { workspace: name })).then(load)}
        >
          New terminal
        </button>
        <button className="perry-button" onClick={() => void load()}>
          Reload
        </button>
      </div>
      <ErrorAlert message={error} />
      {terminals && !terminals.length ? <div className="perry-dim">No open terminals.</div> : null}
      <ul className="perry-terminal-list">
        {(terminals ?? []).map(t => (
          <li key={t.name} className="perry-terminal-item">
            <span className="perry-wrap">
              <code>{t.name}</code>
              {t.resumes ? <span className="perry-dim"> resumes {t.resumes.agent} session {t.resumes.sessionId}</span> : null}
            </span>
            <button className="perry-button" onClick={() => void openTerminalTab(commands, model.api, name, t.name)}>
              Attach
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function WorkspacePageView(props: { model: PerryModel; commands: CommandRegistry; name: string }): JSX.Element {
  const { model, commands, name } = props;
  useModel(model);
  const [tab, setTab] = React.useState<Tab>('Overview');
  const ws = model.store.workspace(name);
  React.useEffect(() => {
    void model.store.loadSessions(name);
    void model.store.loadTasks(name);
  }, [model, name, ws?.status]);
  if (!ws) {
    return <div className="perry-workspace-page-body perry-dim">{model.store.loaded ? `No workspace ${name}.` : 'Loading…'}</div>;
  }
  const running = ws.status === 'running';
  return (
    <div className="perry-workspace-page-body">
      <header className="perry-workspace-page-head">
        <h2>{name}</h2>
        <StatusBadge status={ws.status} />
        <DockerInsideBadge ws={ws} />
        <WorkspaceActions model={model} commands={commands} ws={ws} onPage />
      </header>
      <div className="perry-tabs" role="tablist" aria-label={`Sections of ${name}`}>
        {TABS.map(t => (
          <button
            key={t}
            role="tab"
            id={`perry-${name}-tab-${t}`}
            aria-selected={t === tab}
            aria-controls={`perry-${name}-panel`}
            className={`perry-tab${t === tab ? ' perry-tab-current' : ''}`}
            onClick={() => setTab(t)}
          >
            {t}
          </button>
        ))}
      </div>
      <div className="perry-tab-panel" role="tabpanel" id={`perry-${name}-panel`} aria-labelledby={`perry-${name}-tab-${tab}`}>
        {tab === 'Overview' ? (
          <>
            <WorkspaceDetails ws={ws} />
            <UseBars ws={ws} />
            <LogsSection model={model} ws={ws} />
          </>
        ) : null}
        {tab === 'Terminals' ? <Terminals model={model} commands={commands} name={name} running={running} /> : null}
        {tab === 'Sessions' ? <SessionList model={model} commands={commands} ws={ws} /> : null}
        {tab === 'Tasks' ? <TasksSection model={model} commands={commands} ws={ws} /> : null}
        {tab === 'Changes' ? <ChangesSection model={model} ws={ws} /> : null}
        {tab === 'Ports' ? (running ? <PortsSection model={model} ws={ws} /> : <div className="perry-dim">Start the workspace to see its ports.</div>) : null}
      </div>
    </div>
  );
}

export class WorkspacePage extends ReactWidget {
  constructor(
    readonly model: PerryModel,
    readonly workspace: string,
    readonly commands: CommandRegistry
  ) {
    super();
    this.id = `perry-workspace-page-${workspace}`;
    this.addClass('perry-workspace-page');
    this.title.icon = perryIcon;
    this.title.label = workspace;
    this.title.caption = `Perry workspace ${workspace}`;
    this.title.closable = true;
    // The workspace's own events stream: the server watches its agent sessions while the page is open.
    this._watch = model.watch(workspace);
  }

  dispose(): void {
    this._watch.dispose();
    super.dispose();
  }

  render(): JSX.Element {
    return <WorkspacePageView model={this.model} commands={this.commands} name={this.workspace} />;
  }

  private _watch: IDisposable;
}
