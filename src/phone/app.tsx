/**
 * The phone page's screens: the workspaces, one workspace (sessions, tasks, changes, ports),
 * a session, a terminal. The data is the panel's model (PerryStore) fed by the panel's
 * events (LiveEvents); only the views are the phone's own.
 */
import * as React from 'react';

import { ITask, IWorkspace } from '../api';
import { ConnectionState } from '../events';
import { dockerInside } from '../format';
import { escapeCloses } from '../keys';
import { createNameError } from '../names';
import { ErrorLine, StatusBadge, useAction, usePhone } from './context';
import { href, useRoute, useSignal } from './hooks';
import { askPermission, permission, taskEndedText } from './notify';
import { SessionScreen } from './session';
import { ChangesTab, PortsTab, SessionsTab, TasksTab } from './tabs';
import { TerminalScreen } from './terminal';

const STATE_LABEL: Record<ConnectionState, string> = { open: 'Live', connecting: 'Connecting…', closed: 'Offline' };

function Header(props: { title: string; back?: string }): JSX.Element {
  const { events } = usePhone();
  useSignal(events.stateChanged);
  const [allowed, setAllowed] = React.useState(permission());
  return (
    <header className="pp-header">
      {props.back !== undefined ? (
        <a className="pp-back" href={props.back} aria-label="Back">
          ‹
        </a>
      ) : null}
      <h1>{props.title}</h1>
      {allowed === 'default' ? (
        <button type="button" className="pp-small" onClick={() => void askPermission().then(setAllowed)}>
          Notify me
        </button>
      ) : null}
      <span className={`pp-live pp-live-${events.state}`} role="status" aria-label={`Events: ${STATE_LABEL[events.state]}`}>
        {STATE_LABEL[events.state]}
      </span>
    </header>
  );
}

function WorkspaceCard(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { api, store } = usePhone();
  const action = useAction();
  const act = (what: 'start' | 'stop') => action.run(async () => store.put(await api.action(ws.name, what)));
  return (
    <li className="pp-card" data-workspace={ws.name}>
      <a className="pp-card-main" href={href('w', ws.name)}>
        <span className="pp-name">{ws.name}</span>
        <StatusBadge status={ws.status} />
      </a>
      {ws.error ? <p className="pp-error">{ws.error}</p> : null}
      <div className="pp-row">
        {ws.status === 'running' ? (
          <>
            <a className="pp-button" href={href('w', ws.name, 'terminal')}>
              Terminal
            </a>
            <button type="button" disabled={action.busy} onClick={() => void act('stop')}>
              {action.busy ? 'Stopping…' : 'Stop'}
            </button>
          </>
        ) : ws.status === 'stopped' || ws.status === 'error' ? (
          <button type="button" disabled={action.busy} onClick={() => void act('start')}>
            {action.busy ? 'Starting…' : 'Start'}
          </button>
        ) : null}
      </div>
      <ErrorLine error={action.error} />
    </li>
  );
}

function CreateForm(): JSX.Element {
  const { api, store } = usePhone();
  useSignal(store.changed);
  const [name, setName] = React.useState('');
  const action = useAction();
  const wanted = name.trim();
  // Said while typing; not while this very name is being created (the list has it from the start).
  const problem = wanted && !action.busy ? createNameError(wanted, store.workspaces) : null;
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (problem) {
      return;
    }
    if (await action.run(async () => store.put(await api.create(wanted)))) {
      setName('');
    }
  };
  return (
    <form
      className="pp-form"
      onSubmit={e => void submit(e)}
      onKeyDown={escapeCloses(() => {
        if (!action.busy) {
          setName('');
          (document.activeElement as HTMLElement | null)?.blur();
        }
      })}
    >
      <label htmlFor="pp-new-name">New workspace</label>
      <div className="pp-row">
        <input
          id="pp-new-name"
          value={name}
          aria-invalid={!!problem}
          aria-describedby={problem ? 'pp-new-name-problem' : undefined}
          onChange={e => setName(e.target.value)}
          placeholder="name"
          autoCapitalize="none"
          autoCorrect="off"
          spellCheck={false}
          required
        />
        <button type="submit" disabled={action.busy || !wanted || !!problem}>
          {action.busy ? 'Creating…' : 'Create'}
        </button>
      </div>
      {problem ? (
        <p id="pp-new-name-problem" className="pp-error" role="alert">
          {problem}
        </p>
      ) : null}
      <ErrorLine error={action.error} />
    </form>
  );
}

function WorkspacesScreen(): JSX.Element {
  const { store } = usePhone();
  useSignal(store.changed);
  const list = store.workspaces;
  return (
    <>
      <Header title="Perry" />
      <main className="pp-main">
        <CreateForm />
        {store.unhealthy ? <p className="pp-error">The Docker engine or the workspace image is missing: see the JupyterLab panel.</p> : null}
        <ErrorLine error={store.listError} />
        {!store.loaded ? <p className="pp-muted">Loading…</p> : null}
        {store.loaded && !list.length ? <p className="pp-muted">No workspaces yet.</p> : null}
        <ul className="pp-list" aria-label="Workspaces">
          {list.map(ws => (
            <WorkspaceCard key={ws.name} ws={ws} />
          ))}
        </ul>
      </main>
    </>
  );
}

const TABS = ['sessions', 'tasks', 'changes', 'ports'] as const;
type Tab = (typeof TABS)[number];

function WorkspaceScreen(props: { name: string; tab: Tab }): JSX.Element {
  const { name, tab } = props;
  const { store, events } = usePhone();
  useSignal(store.changed);
  // The server watches the workspace's agent sessions while someone listens to its stream.
  React.useEffect(() => {
    const watch = events.watch(name);
    return () => watch.dispose();
  }, [events, name]);
  const ws = store.workspace(name);
  if (!ws) {
    return (
      <>
        <Header title={name} back={href()} />
        <main className="pp-main">
          <p className="pp-muted">{store.loaded ? `No workspace ${name}.` : 'Loading…'}</p>
        </main>
      </>
    );
  }
  return (
    <>
      <Header title={name} back={href()} />
      <main className="pp-main">
        <div className="pp-row pp-summary">
          <StatusBadge status={ws.status} />
          {dockerInside(ws) ? (
            <span className="pp-muted" role="status" data-dind={ws.dindStatus ?? ''}>
              {dockerInside(ws)}
            </span>
          ) : null}
          {ws.status === 'running' ? (
            <a className="pp-button" href={href('w', name, 'terminal')}>
              Terminal
            </a>
          ) : null}
        </div>
        <nav className="pp-tabs" aria-label="Workspace sections">
          {TABS.map(t => (
            <a key={t} href={href('w', name, t)} aria-current={t === tab ? 'page' : undefined}>
              {t[0].toUpperCase() + t.slice(1)}
            </a>
          ))}
        </nav>
        {tab === 'sessions' ? <SessionsTab ws={ws} /> : null}
        {tab === 'tasks' ? <TasksTab ws={ws} /> : null}
        {tab === 'changes' ? <ChangesTab ws={ws} /> : null}
        {tab === 'ports' ? <PortsTab ws={ws} /> : null}
      </main>
    </>
  );
}

/** Tasks that ended while the page was open, told in the page (the system notification is extra). */
function Toasts(): JSX.Element {
  const { store } = usePhone();
  const [ended, setEnded] = React.useState<ITask[]>([]);
  React.useEffect(() => {
    const listener = (_: unknown, task: ITask) => setEnded(list => [task, ...list.filter(t => t.id !== task.id)].slice(0, 3));
    store.taskEnded.connect(listener);
    return () => {
      store.taskEnded.disconnect(listener);
    };
  }, [store]);
  return (
    <div className="pp-toasts" role="status" aria-live="polite">
      {ended.map(task => (
        <div key={task.id} className={`pp-toast pp-${task.status}`}>
          <a href={href('w', task.workspace, 'tasks')}>{taskEndedText(task)}</a>
          <button type="button" aria-label="Dismiss" onClick={() => setEnded(list => list.filter(t => t.id !== task.id))}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

export function App(): JSX.Element {
  const { api } = usePhone();
  const route = useRoute();
  let screen: JSX.Element;
  if (route[0] === 'w' && route[1]) {
    const name = route[1];
    if (route[2] === 'terminal') {
      screen = (
        <>
          <Header title={`${name}: terminal`} back={href('w', name)} />
          <TerminalScreen api={api} workspace={name} />
        </>
      );
    } else if (route[2] === 's' && route[3]) {
      screen = (
        <>
          <Header title="Session" back={href('w', name, 'sessions')} />
          <SessionScreen workspace={name} sessionId={route[3]} />
        </>
      );
    } else {
      const tab = (TABS as readonly string[]).includes(route[2]) ? (route[2] as Tab) : 'sessions';
      screen = <WorkspaceScreen name={name} tab={tab} />;
    }
  } else {
    screen = <WorkspacesScreen />;
  }
  return (
    <div className="pp-app">
      {screen}
      <Toasts />
    </div>
  );
}
