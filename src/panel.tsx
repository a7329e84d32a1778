/**
 * The left-sidebar panel: health, the create form and the workspace list, each
 * workspace with its actions, sessions and tasks.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget, refreshIcon, addIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import { IWorkspace } from './api';
import { age, dockerInside, fullTime, sshCommand } from './format';
import { perryIcon } from './icons';
import { PerryModel } from './model';
import { IFocusRequest } from './ui';
import { createNameError } from './names';
import { escapeCloses } from './keys';
import { StatusBadge, useModel } from './components';
import { CommandIDs } from './tokens';
import { TasksSection } from './tasks';
import { ChangesSection } from './changes';
import { PortsSection } from './ports';
import { EngineBadge, EnginePicker, EnginesHealth, UseBars, limitsText } from './resources';
import { stopTooltip, stopWhy, wakesOnUse } from './idle';
import { LogsSection } from './logs';
import { SessionSearch } from './search';

// ---------------------------------------------------------------------------- health

/** Text with `backticked` spans shown as code, as the server's messages write commands. */
function withCode(text: string): React.ReactNode[] {
  return text.split('`').map((piece, i) => (i % 2 ? <code key={i}>{piece}</code> : piece));
}

function Health(props: { model: PerryModel }): JSX.Element | null {
  const { info, infoError } = props.model.store;
  if (infoError && !info) {
    return (
      <div className="perry-health perry-error" role="alert">
        <strong>Cannot reach Perry's API.</strong>
        <div>{infoError}</div>
      </div>
    );
  }
  if (!info || !props.model.store.unhealthy) {
    return null;
  }
  const again = (
    <button className="perry-link" onClick={() => void props.model.refresh()}>
      check again
    </button>
  );
  if (!info.engine?.reachable) {
    const check = info.checks.find(c => c.name === 'engine');
    return (
      <div className="perry-health" role="alert" aria-label="Perry health">
        <strong>The Docker engine is not reachable.</strong>
        <p>{withCode(check?.message ?? info.engine?.error ?? '')}</p>
        {check?.fix ? <p className="perry-fix">Fix: {withCode(check.fix)}</p> : null}
        <p>
          Run <code>perry doctor</code> in a terminal to see what is missing and how to fix it, then {again}.
        </p>
      </div>
    );
  }
  return (
    <div className="perry-health" role="alert" aria-label="Perry health">
      <strong>The workspace image {info.image?.tag ?? ''} is not built.</strong>
      <p>
        Workspaces are made from it. Run <code>perry build</code> in a terminal to build it (it works without a
        registry, a few minutes the first time), then {again}.
      </p>
    </div>
  );
}

// ---------------------------------------------------------------------------- create

function CreateForm(props: { model: PerryModel; onClose: () => void; nameRef: React.RefObject<HTMLInputElement> }): JSX.Element {
  const { model } = props;
  const creating = model.ui.creating;
  const [name, setName] = React.useState('');
  const [clone, setClone] = React.useState('');
  const [engine, setEngine] = React.useState('');
  const [touched, setTouched] = React.useState(false);
  const inProgress = !!creating && !creating.error;
  // Taken names too, while typing; not the name being created (the list has it from the start).
  const error = inProgress ? null : createNameError(name, model.store.workspaces);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (error || inProgress) {
      return;
    }
    const ws = await model.create(name, clone, engine);
    if (ws) {
      setName('');
      setClone('');
      setTouched(false);
      props.onClose();
    }
  };

  const elapsed = creating ? Math.round((Date.now() - creating.started) / 1000) : 0;
  return (
    <form
      className="perry-create"
      onSubmit={submit}
      aria-label="Create a workspace"
      onKeyDown={escapeCloses(() => {
        if (!inProgress) {
          props.onClose();
        }
      })}
    >
      <label>
        Name
        <input
          ref={props.nameRef}
          className="jp-mod-styled perry-input"
          name="name"
          value={name}
          placeholder="my-project"
          autoComplete="off"
          spellCheck={false}
          disabled={inProgress}
          aria-invalid={touched && !!error}
          aria-describedby="perry-name-error"
          onChange={e => {
            setName(e.target.value);
            setTouched(true);
          }}
        />
      </label>
      {touched && error ? (
        <div id="perry-name-error" className="perry-field-error" role="alert">
          {error}
        </div>
      ) : null}
      <label>
        Repository to clone (optional)
        <input
          className="jp-mod-styled perry-input"
          name="clone"
          value={clone}
          placeholder="https://github.com/you/project.git"
          autoComplete="off"
          spellCheck={false}
          disabled={inProgress}
          onChange={e => setClone(e.target.value)}
        />
      </label>
      <EnginePicker engines={model.engines} value={engine} disabled={inProgress} onChange={setEngine} />
      <div className="perry-row">
        <button type="submit" className="jp-mod-styled jp-mod-accept perry-button" disabled={inProgress || (touched && !!error)}>
          Create
        </button>
        <button type="button" className="jp-mod-styled jp-mod-reject perry-button" onClick={props.onClose} disabled={inProgress}>
          Cancel
        </button>
      </div>
      {inProgress && creating ? (
        <div className="perry-progress" role="status" aria-live="polite">
          <div className="perry-progress-bar" />
          Creating <strong>{creating.name}</strong>… {elapsed} s
          <div className="perry-dim">Starting the container, waiting for SSH and Docker inside it{creating.clone ? ', cloning' : ''}.</div>
        </div>
      ) : null}
      {creating?.error ? (
        <div className="perry-error" role="alert">
          <span className="perry-server-message">{creating.error}</span>{' '}
          <button type="button" className="perry-link" onClick={() => model.dismissCreateError()}>
            Dismiss
          </button>
        </div>
      ) : null}
    </form>
  );
}

// ------------------------------------------------------------------------ workspaces

export async function confirmDelete(ws: IWorkspace): Promise<boolean> {
  const home = ws.volumes?.home ?? `${ws.name}-home`;
  const docker = ws.volumes?.docker ?? `${ws.name}-docker`;
  const body = (
    <div className="perry-confirm">
      <p>
        Delete workspace <strong>{ws.name}</strong>? This cannot be undone. It removes:
      </p>
      <ul>
        <li>
          the container <code>{ws.containerName ?? ws.name}</code> and whatever runs in it;
        </li>
        <li>
          the home volume <code>{home}</code>: every file under <code>/home/workspace</code>, agent sessions included;
        </li>
        <li>
          the Docker volume <code>{docker}</code>: images and containers of Docker inside the workspace.
        </li>
      </ul>
    </div>
  );
  const result = await showDialog({
    title: `Delete ${ws.name}?`,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete', ariaLabel: `Delete ${ws.name} and its volumes` })],
    defaultButton: 0
  });
  return result.button.accept;
}

export function SessionList(props: { model: PerryModel; commands: CommandRegistry; ws: IWorkspace }): JSX.Element {
  const { model, ws } = props;
  const state = model.store.sessions.get(ws.name);
  let content: JSX.Element;
  if (ws.status !== 'running') {
    content = <div className="perry-dim">Start the workspace to read its agent sessions.</div>;
  } else if (state.error) {
    content = <div className={state.unsupported ? 'perry-dim' : 'perry-error'}>{state.error}</div>;
  } else if (!state.items.length) {
    content = <div className="perry-dim">{state.loading ? 'Loading…' : 'No agent sessions yet.'}</div>;
  } else {
    content = (
      <ul className="perry-sessions" aria-label={`Sessions of ${ws.name}`}>
        {state.items.map(s => (
          <li key={s.sessionId}>
            <button
              className="perry-session"
              title={`${s.title || s.sessionId}\n${s.directory ?? ''}\nlast activity ${fullTime(s.lastActivity)}`}
              onClick={() =>
                void props.commands.execute(CommandIDs.openSession, { workspace: ws.name, sessionId: s.sessionId })
              }
            >
              <span className="perry-session-title">{s.title || s.sessionId}</span>
              <span className="perry-session-meta">
                <span className="perry-agent">{s.agent}</span>
                <span>{s.messageCount ?? 0} msgs</span>
                <span>{age(s.lastActivity)} ago</span>
              </span>
            </button>
          </li>
        ))}
      </ul>
    );
  }
  return (
    <section className="perry-section">
      <div className="perry-section-head">
        <h4>Sessions</h4>
        {ws.status === 'running' ? (
          <button
            className="perry-icon-button"
            title="Reload sessions"
            aria-label={`Reload sessions of ${ws.name}`}
            onClick={() => void model.store.loadSessions(ws.name)}
          >
            <refreshIcon.react tag="span" />
          </button>
        ) : null}
      </div>
      {content}
    </section>
  );
}

export function WorkspaceActions(props: {
  model: PerryModel;
  commands: CommandRegistry;
  ws: IWorkspace;
  /** Shown on the workspace's own page: no button to open it. */
  onPage?: boolean;
}): JSX.Element {
  const { model, ws } = props;
  const busy = model.ui.busy(ws.name);
  const running = ws.status === 'running';
  const disabled = !!busy || ws.status === 'creating';
  const act = (action: 'start' | 'stop' | 'sync') => () => {
    model.ui.selected = ws.name;
    void model.action(ws.name, action);
  };
  const remove = async () => {
    model.ui.selected = ws.name;
    if (await confirmDelete(ws)) {
      await model.remove(ws.name);
    }
  };
  return (
    <div className="perry-actions" role="toolbar" aria-label={`Actions for ${ws.name}`}>
      {props.onPage ? null : (
        <button
          className="perry-button"
          title="The workspace on a page of its own: overview, terminals, sessions, tasks, changes, ports"
          onClick={() => void props.commands.execute(CommandIDs.openWorkspace, { workspace: ws.name })}
        >
          Open
        </button>
      )}
      <button
        className="perry-button"
        disabled={disabled || !(running || wakesOnUse(ws))}
        title={wakesOnUse(ws) ? 'Start the workspace (stopped while idle) and open a terminal' : undefined}
        onClick={() => {
          model.ui.selected = ws.name;
          void props.commands.execute(CommandIDs.openTerminal, { workspace: ws.name });
        }}
      >
        Terminal
      </button>
      {running ? (
        <button className="perry-button" disabled={disabled} onClick={act('stop')}>
          Stop
        </button>
      ) : (
        <button className="perry-button" disabled={disabled} onClick={act('start')}>
          Start
        </button>
      )}
      <button className="perry-button" disabled={disabled || !running} onClick={act('sync')} title="Copy keys, git config and the worker in again">
        Sync
      </button>
      <button className="perry-button perry-danger" disabled={!!busy} onClick={() => void remove()}>
        Delete
      </button>
    </div>
  );
}

/** Whether the workspace's own Docker engine answers yet: a running workspace is usable before it does. */
export function DockerInsideBadge(props: { ws: IWorkspace }): JSX.Element | null {
  const text = dockerInside(props.ws);
  return text ? (
    <span
      className={`perry-dind perry-dind-${props.ws.dindStatus}`}
      data-dind={props.ws.dindStatus ?? ''}
      role="status"
      title={props.ws.dindStatus === 'starting' ? '`docker` inside the workspace waits for its engine until then' : undefined}
    >
      {text}
    </span>
  ) : null;
}

/** Copies `text`, and says so for a moment. */
function CopyButton(props: { text: string; label: string }): JSX.Element {
  const [said, setSaid] = React.useState<string | null>(null);
  const copy = async () => {
    try {
      // No clipboard on a page served over plain http from another host: say so, the text stays selectable.
      await navigator.clipboard.writeText(props.text);
      setSaid('Copied');
    } catch {
      setSaid('Copy failed');
    }
    window.setTimeout(() => setSaid(null), 2000);
  };
  return (
    <button className="perry-button perry-copy" aria-label={props.label} title={props.label} onClick={() => void copy()}>
      {said ?? 'Copy'}
    </button>
  );
}

export function WorkspaceDetails(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const ssh = sshCommand(ws);
  return (
    <dl className="perry-details">
      <dt>Container</dt>
      <dd>{ws.containerName}</dd>
      <dt>Image</dt>
      <dd>{ws.image}</dd>
      {ws.agents ? (
        <>
          <dt>Agents</dt>
          <dd>{ws.agents.join(', ') || 'none'}</dd>
        </>
      ) : null}
      {ssh ? (
        <>
          <dt>SSH</dt>
          <dd>
            <code>{ssh}</code> <CopyButton text={ssh} label="Copy the SSH command" />
          </dd>
        </>
      ) : null}
      {ws.clone ? (
        <>
          <dt>Cloned</dt>
          <dd>{ws.clone}</dd>
        </>
      ) : null}
      {ws.engine ? (
        <>
          <dt>Engine</dt>
          <dd>{ws.engine}</dd>
        </>
      ) : null}
      <dt>Limits</dt>
      <dd className="perry-limits">{limitsText(ws)}</dd>
    </dl>
  );
}

function WorkspaceItem(props: { model: PerryModel; commands: CommandRegistry; ws: IWorkspace; now: number }): JSX.Element {
  const { model, ws, commands } = props;
  const busy = model.ui.busy(ws.name);
  const error = model.ui.actionError(ws.name);
  const expanded = model.ui.isExpanded(ws.name);
  const selected = model.ui.selected === ws.name;
  const port = ws.ports?.ssh;
  return (
    <li
      className={`perry-workspace${selected ? ' perry-selected' : ''}`}
      data-workspace={ws.name}
      data-status={ws.status}
      aria-label={`Workspace ${ws.name}, ${ws.status}`}
    >
      <div className="perry-ws-head">
        <button
          className="perry-ws-toggle"
          aria-expanded={expanded}
          title={expanded ? 'Hide details' : 'Show sessions, tasks and details'}
          onClick={() => {
            model.ui.selected = ws.name;
            model.setExpanded(ws.name, !expanded);
          }}
        >
          <span className={`perry-caret${expanded ? ' perry-open' : ''}`} aria-hidden="true">
            ▸
          </span>
          <span className="perry-ws-name">{ws.name}</span>
        </button>
        <EngineBadge ws={ws} engines={model.engines} />
        <StatusBadge
          status={busy ? 'busy' : ws.status}
          label={busy ? `${busy}…` : ws.status}
          title={busy ? undefined : stopTooltip(ws)}
        />
      </div>
      <div className="perry-ws-meta">
        <span title={sshCommand(ws) ?? 'no SSH port'}>SSH {port ? `:${port}` : '—'}</span>
        {stopWhy(ws) ? <span className="perry-stop-reason">{stopWhy(ws)}</span> : null}
        <DockerInsideBadge ws={ws} />
        <span title={`created ${fullTime(ws.created)}`}>{ws.created ? `${age(ws.created, props.now)} old` : ''}</span>
      </div>
      <UseBars ws={ws} />
      <WorkspaceActions model={model} commands={commands} ws={ws} />
      {ws.error ? <div className="perry-error">{ws.error}</div> : null}
      {error ? (
        <div className="perry-error" role="alert">
          {error}{' '}
          <button className="perry-link" onClick={() => model.ui.clearActionError(ws.name)} aria-label="Dismiss error">
            Dismiss
          </button>
        </div>
      ) : null}
      {expanded ? (
        <div className="perry-ws-body">
          <WorkspaceDetails ws={ws} />
          <SessionList model={model} commands={commands} ws={ws} />
          <TasksSection model={model} commands={commands} ws={ws} />
          <ChangesSection model={model} ws={ws} />
          <PortsSection model={model} ws={ws} />
          <LogsSection model={model} ws={ws} />
        </div>
      ) : null}
    </li>
  );
}

// ---------------------------------------------------------------------------- panel

/** The workspaces, or why there are none to show. */
function WorkspaceList(props: {
  model: PerryModel;
  commands: CommandRegistry;
  listRef: React.RefObject<HTMLUListElement>;
  createOpen: boolean;
}): JSX.Element {
  const { model, commands } = props;
  const { store } = model;
  const workspaces = store.workspaces;
  const now = Date.now();
  if (store.listError && !workspaces.length) {
    // When the engine is down the health note above already says why.
    return store.unhealthy ? (
      <></>
    ) : (
      <div className="perry-error" role="alert">
        {store.listError}
      </div>
    );
  }
  if (!store.loaded) {
    return <div className="perry-dim">Loading workspaces…</div>;
  }
  if (!workspaces.length) {
    return (
      <div className="perry-empty">
        No workspaces yet.{' '}
        {!props.createOpen && !store.unhealthy ? (
          <button className="perry-link" onClick={() => model.requestFocus({ workspace: null, target: 'create' })}>
            Create one
          </button>
        ) : null}
      </div>
    );
  }
  return (
    <ul className="perry-workspaces" ref={props.listRef} aria-label="Workspaces">
      {workspaces.map(ws => (
        <WorkspaceItem key={ws.name} model={model} commands={commands} ws={ws} now={now} />
      ))}
    </ul>
  );
}

function Header(props: { model: PerryModel }): JSX.Element {
  const { model } = props;
  const live = model.connection;
  return (
    <header className="perry-header">
      <perryIcon.react tag="span" className="perry-logo" />
      <h2>Perry</h2>
      <span
        className={`perry-live perry-live-${live}`}
        title={live === 'open' ? 'Live: updates arrive as they happen' : 'Reconnecting to live updates…'}
        aria-label={live === 'open' ? 'live' : 'reconnecting'}
      />
      <span className="perry-spacer" />
      <button
        className="perry-icon-button"
        title="New workspace"
        aria-label="New workspace"
        onClick={() => model.requestFocus({ workspace: null, target: 'create' })}
      >
        <addIcon.react tag="span" />
      </button>
      <button
        className={`perry-icon-button${model.ui.refreshing ? ' perry-spinning' : ''}`}
        title="Refresh"
        aria-label="Refresh"
        onClick={() => void model.refresh()}
      >
        <refreshIcon.react tag="span" />
      </button>
    </header>
  );
}

/** While a workspace runs, the list again every few seconds: it carries their use (the server's cached sample). */
function useUseSamples(model: PerryModel, everyMs = 5000): void {
  React.useEffect(() => {
    const timer = window.setInterval(() => {
      if (model.store.workspaces.some(ws => ws.status === 'running') && !document.hidden) {
        void model.store.loadWorkspaces();
      }
    }, everyMs);
    return () => window.clearInterval(timer);
  }, [model, everyMs]);
}

function Sidebar(props: { model: PerryModel; commands: CommandRegistry }): JSX.Element {
  const { model, commands } = props;
  useModel(model, model.ui.creating ? 1000 : 15000);
  useUseSamples(model);
  const [showCreate, setShowCreate] = React.useState(false);
  const nameRef = React.useRef<HTMLInputElement>(null);
  const listRef = React.useRef<HTMLUListElement>(null);

  React.useEffect(() => {
    const onFocus = (_: unknown, request: IFocusRequest) => {
      if (request.target === 'create') {
        setShowCreate(true);
        window.setTimeout(() => nameRef.current?.focus(), 0);
      } else if (request.workspace) {
        window.setTimeout(() => {
          const item = listRef.current?.querySelector(`[data-workspace="${request.workspace}"]`);
          const target =
            request.target === 'task'
              ? item?.querySelector<HTMLElement>('textarea.perry-task-prompt')
              : item?.querySelector<HTMLElement>('.perry-ws-toggle');
          item?.scrollIntoView({ block: 'nearest' });
          target?.focus();
        }, 50);
      }
    };
    model.ui.focusRequested.connect(onFocus);
    return () => {
      model.ui.focusRequested.disconnect(onFocus);
    };
  }, [model]);

  // Open while asked for, and while a create runs or its error waits to be read.
  const creatingOpen = showCreate || !!model.ui.creating;
  return (
    <div className="perry-sidebar">
      <Header model={model} />
      <Health model={model} />
      <EnginesHealth engines={model.engines} />
      {creatingOpen ? (
        <CreateForm
          model={model}
          nameRef={nameRef}
          onClose={() => {
            setShowCreate(false);
            model.dismissCreateError();
          }}
        />
      ) : null}
      {model.store.workspaces.length ? <SessionSearch model={model} /> : null}
      <WorkspaceList model={model} commands={commands} listRef={listRef} createOpen={creatingOpen} />
      {model.store.info ? (
        <footer className="perry-footer">
          perry {model.store.info.version}
          {model.store.info.engine?.version ? ` · Docker ${model.store.info.engine.version}` : ''}
        </footer>
      ) : null}
    </div>
  );
}

export class PerryPanel extends ReactWidget {
  constructor(
    readonly model: PerryModel,
    private commands: CommandRegistry
  ) {
    super();
    this.id = 'perry-panel';
    this.addClass('perry-panel');
    this.title.icon = perryIcon;
    this.title.caption = 'Perry workspaces';
  }

  render(): JSX.Element {
    return <Sidebar model={this.model} commands={this.commands} />;
  }
}
