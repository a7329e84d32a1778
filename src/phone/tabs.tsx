/** A workspace's sections on a phone: its sessions, its tasks, what the agents changed, its ports. */
import * as React from 'react';

import { agentChoices, chosenAgent } from '../agents';
import { FINISHED, ITask, IWorkspace, joinUrl } from '../api';
import type { IChanges } from '../changes';
import { age } from '../format';
import { escapeCloses } from '../keys';
import { readableOutput } from '../readable';
import type { IPort } from '../ports';
import { ErrorLine, StatusBadge, useAction, usePhone } from './context';
import { href, useLoad, useSignal } from './hooks';

function enc(part: string): string {
  return encodeURIComponent(part);
}

function NotRunning(props: { ws: IWorkspace; what: string }): JSX.Element {
  return (
    <p className="pp-muted">
      {props.ws.name} is {props.ws.status}: start it to see its {props.what}.
    </p>
  );
}

export function SessionsTab(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { store } = usePhone();
  useSignal(store.changed);
  React.useEffect(() => {
    void store.loadSessions(ws.name);
  }, [store, ws.name, ws.status]);
  const list = store.sessions.get(ws.name);
  return (
    <section aria-label="Sessions">
      <ErrorLine error={list.error} />
      {list.loading && !list.items.length ? <p className="pp-muted">Loading…</p> : null}
      {!list.loading && !list.items.length && !list.error ? (
        ws.status === 'running' ? (
          <p className="pp-muted">No agent sessions yet: dispatch a task.</p>
        ) : (
          <NotRunning ws={ws} what="agent sessions" />
        )
      ) : null}
      <ul className="pp-list">
        {list.items.map(s => (
          <li key={s.sessionId} className="pp-card">
            <a className="pp-card-main" href={href('w', ws.name, 's', s.sessionId)}>
              <span className="pp-name">{s.title || s.sessionId}</span>
              <span className="pp-muted">
                {s.agent} · {s.messageCount ?? 0} msgs · {age(s.lastActivity)}
              </span>
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}

function TaskCard(props: { task: ITask }): JSX.Element {
  const { task } = props;
  const { api } = usePhone();
  const cancel = useAction();
  const done = FINISHED.includes(task.status);
  const tail = readableOutput(task.outputTail ?? []);
  return (
    <li className="pp-card" data-task={task.id}>
      <div className="pp-row pp-spread">
        <StatusBadge status={task.status} />
        <span className="pp-muted">
          {task.agent} · {age(task.created)}
        </span>
      </div>
      <p className="pp-text pp-prompt">{task.prompt}</p>
      {tail.length ? (
        <pre className="pp-pre" aria-label="Output" tabIndex={0}>
          {tail.slice(-20).join('\n')}
        </pre>
      ) : null}
      {task.error ? <p className="pp-error">{task.error}</p> : task.summary && done ? <p className="pp-text">{task.summary}</p> : null}
      <div className="pp-row">
        {task.sessionId ? (
          <a className="pp-button" href={href('w', task.workspace, 's', task.sessionId)}>
            Session
          </a>
        ) : null}
        {!done ? (
          <button type="button" disabled={cancel.busy} onClick={() => void cancel.run(() => api.cancelTask(task.workspace, task.id))}>
            {cancel.busy ? 'Cancelling…' : 'Cancel'}
          </button>
        ) : null}
      </div>
      <ErrorLine error={cancel.error} />
    </li>
  );
}

function DispatchForm(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { api, store } = usePhone();
  useSignal(store.changed);
  const choices = agentChoices(store.info, ws);
  const [picked, setPicked] = React.useState<string | null>(null);
  const agent = chosenAgent(choices, picked);
  const [sessionId, setSessionId] = React.useState('');
  const [prompt, setPrompt] = React.useState('');
  const action = useAction();
  const sessions = store.sessions.get(ws.name).items.filter(s => s.agent === agent);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const words = prompt.trim();
    if (await action.run(async () => store.putTask(await api.dispatch(ws.name, agent, words, sessionId || undefined)))) {
      setPrompt('');
    }
  };
  return (
    <form
      className="pp-form"
      onSubmit={e => void submit(e)}
      // An inline form has nothing to fold: Esc drops the draft and leaves the form.
      onKeyDown={escapeCloses(() => {
        setPrompt('');
        setSessionId('');
        (document.activeElement as HTMLElement | null)?.blur();
      })}
    >
      <label htmlFor="pp-agent">Agent</label>
      <select
        id="pp-agent"
        value={agent}
        onChange={e => {
          setPicked(e.target.value);
          setSessionId('');
        }}
      >
        {choices.map(c => (
          <option key={c.name} value={c.name} disabled={!c.installed}>
            {c.label}
            {c.installed ? '' : ' (not in the image)'}
          </option>
        ))}
      </select>
      <label htmlFor="pp-session">Session</label>
      <select id="pp-session" value={sessionId} onChange={e => setSessionId(e.target.value)}>
        <option value="">A new session</option>
        {sessions.map(s => (
          <option key={s.sessionId} value={s.sessionId}>
            {s.title || s.sessionId}
          </option>
        ))}
      </select>
      <label htmlFor="pp-prompt">Prompt</label>
      <textarea id="pp-prompt" rows={3} value={prompt} onChange={e => setPrompt(e.target.value)} />
      <button type="submit" disabled={action.busy || !agent || !prompt.trim() || ws.status !== 'running'}>
        {action.busy ? 'Dispatching…' : 'Dispatch'}
      </button>
      <ErrorLine error={action.error} />
    </form>
  );
}

export function TasksTab(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { store } = usePhone();
  useSignal(store.changed);
  React.useEffect(() => {
    void store.loadTasks(ws.name);
    void store.loadSessions(ws.name);
    if (!store.info) {
      void store.loadInfo();
    }
  }, [store, ws.name]);
  const list = store.tasks.get(ws.name);
  return (
    <section aria-label="Tasks">
      {ws.status === 'running' ? <DispatchForm ws={ws} /> : <NotRunning ws={ws} what="agents" />}
      <ErrorLine error={list.error} />
      <ul className="pp-list" aria-label="Task list">
        {list.items.map(t => (
          <TaskCard key={t.id} task={t} />
        ))}
      </ul>
    </section>
  );
}

export function ChangesTab(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { api, store } = usePhone();
  const running = ws.status === 'running';
  const changes = useLoad<IChanges | null>(
    () => (running ? api.request<IChanges>(`workspaces/${enc(ws.name)}/changes`) : Promise.resolve(null)),
    [api, ws.name, running]
  );
  const { reload } = changes;
  React.useEffect(() => {
    const listener = (_: unknown, name: string) => {
      if (name === ws.name) {
        reload();
      }
    };
    store.changesUpdated.connect(listener);
    return () => {
      store.changesUpdated.disconnect(listener);
    };
  }, [store, ws.name, reload]);
  if (!running) {
    return <NotRunning ws={ws} what="changes" />;
  }
  const c = changes.value;
  return (
    <section aria-label="Changes">
      <ErrorLine error={changes.error} />
      {changes.loading && !c ? <p className="pp-muted">Loading…</p> : null}
      {c ? (
        <>
          <p className="pp-muted pp-wrap">
            {c.directory}
            {c.branch ? ` · ${c.branch}` : ''}
            {c.head ? ` · ${c.head.subject}` : ''}
          </p>
          {c.message ? <p className="pp-muted">{c.message}</p> : null}
          {c.repository && !c.files.length ? <p className="pp-muted">No uncommitted changes.</p> : null}
          <ul className="pp-list">
            {c.files.map(f => (
              <li key={f.path} className="pp-card pp-row pp-spread">
                <span className="pp-wrap">
                  <span className="pp-badge">{f.status}</span> {f.path}
                </span>
                <span className="pp-muted">{f.binary ? 'binary' : `+${f.added ?? 0} −${f.removed ?? 0}`}</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

export function PortsTab(props: { ws: IWorkspace }): JSX.Element {
  const { ws } = props;
  const { api } = usePhone();
  const running = ws.status === 'running';
  const ports = useLoad<IPort[]>(
    async () => (running ? (await api.request<{ ports: IPort[] }>(`workspaces/${enc(ws.name)}/ports`)).ports : []),
    [api, ws.name, running]
  );
  if (!running) {
    return <NotRunning ws={ws} what="ports" />;
  }
  const list = ports.value ?? [];
  return (
    <section aria-label="Ports">
      <button type="button" className="pp-small" onClick={ports.reload}>
        Refresh
      </button>
      <ErrorLine error={ports.error} />
      {!ports.loading && !list.length && !ports.error ? <p className="pp-muted">Nothing listens in {ws.name}.</p> : null}
      <ul className="pp-list">
        {list.map(p => (
          <li key={p.port} className="pp-card pp-row pp-spread">
            <span className="pp-wrap">
              <strong>{p.port}</strong> <span className="pp-muted">{p.command ?? ''}</span>
            </span>
            <a className="pp-button" href={joinUrl(api.server.baseUrl, 'perry/proxy', enc(ws.name), String(p.port), '/')} target="_blank" rel="noreferrer">
              Open
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}
