/** Dispatching agent tasks into a workspace, and following them live. */
import { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import { agentChoices, chosenAgent, IAgentChoice } from './agents';
import { FINISHED, ITask, IWorkspace } from './api';
import { age, fullTime } from './format';
import { PerryModel } from './model';
import { readableOutput } from './readable';
import { ErrorAlert, StatusBadge } from './components';
import { escapeCloses } from './keys';
import { CommandIDs } from './tokens';

const SHOWN = 5;

function TaskItem(props: { model: PerryModel; commands: CommandRegistry; task: ITask }): JSX.Element {
  const { task, model } = props;
  const [error, setError] = React.useState<string | null>(null);
  const [cancelling, setCancelling] = React.useState(false);
  const done = FINISHED.includes(task.status);
  const tail = readableOutput(task.outputTail ?? []);
  const preRef = React.useRef<HTMLPreElement>(null);
  const lastLine = tail[tail.length - 1];
  React.useEffect(() => {
    // Follow the output as it grows.
    const pre = preRef.current;
    if (pre) {
      pre.scrollTop = pre.scrollHeight;
    }
  }, [tail.length, lastLine]);

  const cancel = async () => {
    setCancelling(true);
    setError(null);
    try {
      await model.cancelTask(task);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setCancelling(false);
    }
  };
  const when = task.ended ?? task.started ?? task.created;
  const output = tail.length ? (
    <pre ref={preRef} className="perry-output" aria-label="Output tail" tabIndex={0}>
      {tail.join('\n')}
    </pre>
  ) : null;
  return (
    <li className="perry-task" data-task={task.id} data-status={task.status}>
      <div className="perry-task-head">
        <StatusBadge status={task.status} />
        <span className="perry-agent">{task.agent}</span>
        <span className="perry-dim" title={fullTime(when)}>
          {when ? `${age(when)} ago` : ''}
        </span>
        {task.exitCode !== null && task.exitCode !== undefined && done ? (
          <span className="perry-dim">exit {task.exitCode}</span>
        ) : null}
      </div>
      <div className="perry-task-prompt-text" title={task.prompt}>
        {task.prompt}
      </div>
      {task.summary ? <div className="perry-task-summary">{task.summary}</div> : null}
      {task.error ? <div className="perry-error">{task.error}</div> : null}
      {done && output ? (
        <details>
          <summary>Output</summary>
          {output}
        </details>
      ) : (
        output
      )}
      <div className="perry-row">
        {!done ? (
          <button className="perry-button" disabled={cancelling} onClick={() => void cancel()}>
            {cancelling ? 'Cancelling…' : 'Cancel'}
          </button>
        ) : null}
        {task.sessionId ? (
          <button
            className="perry-button"
            onClick={() =>
              void props.commands.execute(CommandIDs.openSession, { workspace: task.workspace, sessionId: task.sessionId! })
            }
          >
            Open session
          </button>
        ) : null}
      </div>
      <ErrorAlert message={error} />
    </li>
  );
}

/** The agents as the server declares them; one the image lacks is shown but cannot be picked. */
function AgentSelect(props: { choices: IAgentChoice[]; value: string; onChange: (agent: string) => void }): JSX.Element {
  return (
    <select className="perry-select" value={props.value} onChange={e => props.onChange(e.target.value)}>
      {props.choices.length ? null : (
        <option value="" disabled>
          no agent known
        </option>
      )}
      {props.choices.map(a => (
        <option key={a.name} value={a.name} title={a.label} disabled={!a.installed}>
          {a.installed ? a.name : `${a.name} (not in the image)`}
        </option>
      ))}
    </select>
  );
}

export function TasksSection(props: { model: PerryModel; commands: CommandRegistry; ws: IWorkspace }): JSX.Element {
  const { model, ws } = props;
  const state = model.store.tasks.get(ws.name);
  const sessions = model.store.sessions.get(ws.name).items;
  const choices = agentChoices(model.store.info, ws);
  const [picked, setAgent] = React.useState<string | null>(null);
  const agent = chosenAgent(choices, picked);
  const [sessionId, setSessionId] = React.useState('');
  const [prompt, setPrompt] = React.useState('');
  const [sending, setSending] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [showAll, setShowAll] = React.useState(false);
  const running = ws.status === 'running';
  const id = `perry-task-${ws.name}`;

  const submit = async (e?: React.FormEvent) => {
    e?.preventDefault();
    if (!prompt.trim() || sending || !running || !agent) {
      return;
    }
    setSending(true);
    setError(null);
    try {
      await model.dispatch(ws.name, agent, prompt.trim(), sessionId || undefined);
      setPrompt('');
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setSending(false);
    }
  };

  const tasks = showAll ? state.items : state.items.slice(0, SHOWN);
  const agentSessions = sessions.filter(s => s.agent === agent);
  return (
    <section className="perry-section">
      <div className="perry-section-head">
        <h4>Tasks</h4>
      </div>
      {state.unsupported ? (
        <div className="perry-dim">{state.error}</div>
      ) : (
        <form
          className="perry-task-form"
          onSubmit={submit}
          aria-label={`Dispatch a task to ${ws.name}`}
          // An inline form has nothing to fold: Esc drops the draft and leaves the form.
          onKeyDown={escapeCloses(() => {
            setPrompt('');
            setSessionId('');
            setError(null);
            (document.activeElement as HTMLElement | null)?.blur();
          })}
        >
          <div className="perry-row">
            <label>
              Agent{' '}
              <AgentSelect
                choices={choices}
                value={agent}
                onChange={a => {
                  setAgent(a);
                  setSessionId('');
                }}
              />
            </label>
            <label>
              Session{' '}
              <select className="perry-select" value={sessionId} onChange={e => setSessionId(e.target.value)}>
                <option value="">new session</option>
                {agentSessions.map(s => (
                  <option key={s.sessionId} value={s.sessionId}>
                    {(s.title || s.sessionId).slice(0, 40)}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <label htmlFor={id} className="perry-visually-hidden">
            Task prompt
          </label>
          <textarea
            id={id}
            className="jp-mod-styled perry-task-prompt"
            rows={3}
            placeholder={running ? 'What should the agent do? (Ctrl+Enter to dispatch)' : 'Start the workspace to dispatch tasks'}
            value={prompt}
            disabled={!running || sending}
            onChange={e => setPrompt(e.target.value)}
            onKeyDown={e => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                e.preventDefault();
                void submit();
              }
            }}
          />
          <div className="perry-row">
            <button type="submit" className="jp-mod-styled jp-mod-accept perry-button" disabled={!running || sending || !prompt.trim() || !agent}>
              {sending ? 'Dispatching…' : 'Dispatch'}
            </button>
          </div>
          <ErrorAlert message={error} />
        </form>
      )}
      {state.error && !state.unsupported ? <div className="perry-error">{state.error}</div> : null}
      {tasks.length ? (
        <ul className="perry-tasks" aria-label={`Tasks of ${ws.name}`}>
          {tasks.map(t => (
            <TaskItem key={t.id} model={model} commands={props.commands} task={t} />
          ))}
        </ul>
      ) : null}
      {state.items.length > SHOWN ? (
        <button className="perry-link" onClick={() => setShowAll(!showAll)}>
          {showAll ? 'Show fewer' : `Show all ${state.items.length} tasks`}
        </button>
      ) : null}
    </section>
  );
}
