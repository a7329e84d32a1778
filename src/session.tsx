/**
 * One agent session in the main area: its turns, tool calls folded with their
 * input and output, token use; refetched when the session changes; a box to continue.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';
import * as React from 'react';

import { IMessage, IPart, ISession, PerryError } from './api';
import { ErrorAlert, useModel } from './components';
import { cost, fullTime, tokenSummary, tokenTotal } from './format';
import { perryIcon } from './icons';
import { PerryModel } from './model';
import { readable } from './readable';
import { IReplyPart, ISessionChange } from './store';
import { CommandIDs } from './tokens';

/** Messages fetched when a session opens (the newest); older ones on demand. */
const PAGE = 100;
/** The server's largest page. */
const MAX_LIMIT = 1000;

function Part(props: { part: IPart }): JSX.Element | null {
  const { part } = props;
  switch (part.type) {
    case 'text':
      return part.text ? <div className="perry-text">{part.text}</div> : null;
    case 'error':
      return <div className="perry-error perry-msg-failure">{part.text ?? 'the turn failed'}</div>;
    case 'reasoning':
      return part.text ? (
        <details className="perry-reasoning">
          <summary>Reasoning</summary>
          <div className="perry-text">{part.text}</div>
        </details>
      ) : null;
    case 'tool': {
      const input = readable(part.input);
      const output = readable(part.output);
      return (
        <details className="perry-tool" data-tool={part.tool ?? ''}>
          <summary>
            <span className="perry-tool-name">{part.tool ?? 'tool'}</span>
            {typeof part.title === 'string' && part.title ? <span className="perry-dim perry-tool-title">{part.title}</span> : null}
            {part.status ? <span className={`perry-badge perry-badge-${part.status}`}>{part.status}</span> : null}
          </summary>
          <div className="perry-tool-label">Input</div>
          <pre className="perry-output">{input || '(none)'}</pre>
          <div className="perry-tool-label">Output</div>
          <pre className="perry-output">{output || '(none)'}</pre>
        </details>
      );
    }
    case 'file': {
      const label = (part.filename ?? part.url ?? part.text ?? 'file') as string;
      return <div className="perry-file">📎 {label}</div>;
    }
    default:
      return null;
  }
}

/** ``pending``: not saved yet; the words shown in place of its time. */
function Message(props: { message: IMessage; pending?: string }): JSX.Element {
  const { message } = props;
  const role = message.role === 'user' ? 'user' : message.role === 'assistant' ? 'assistant' : 'other';
  const tokens = tokenSummary(message.tokens);
  return (
    <article className={`perry-msg perry-msg-${role}${props.pending ? ' perry-pending' : ''}`} data-role={message.role}>
      <header>
        <span className="perry-role">{role === 'user' ? 'User' : role === 'assistant' ? 'Assistant' : message.role}</span>
        <span className="perry-dim">{props.pending ?? fullTime(message.time)}</span>
        {tokens ? <span className="perry-dim perry-tokens">{tokens}</span> : null}
      </header>
      {message.parts.map((p, i) => (
        <Part key={i} part={p} />
      ))}
    </article>
  );
}

function SessionView(props: {
  model: PerryModel;
  workspace: string;
  sessionId: string;
  onTitle: (t: string) => void;
  onResume?: () => Promise<unknown>;
}): JSX.Element {
  const { model, workspace, sessionId } = props;
  const api = model.api;
  useModel(model);
  const [session, setSession] = React.useState<ISession | null>(null);
  const [messages, setMessages] = React.useState<IMessage[]>([]);
  const [start, setStart] = React.useState(0);
  const [total, setTotal] = React.useState(0);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [draft, setDraft] = React.useState('');
  const [pending, setPending] = React.useState<string | null>(null);
  const [streamed, setStreamed] = React.useState<IPart[]>([]);
  const [sendError, setSendError] = React.useState<string | null>(null);
  const [resuming, setResuming] = React.useState(false);
  const scroller = React.useRef<HTMLDivElement>(null);
  const stick = React.useRef(true);
  const startRef = React.useRef(0);
  startRef.current = start;
  const onTitle = React.useRef(props.onTitle);
  onTitle.current = props.onTitle;

  const fetchTail = React.useCallback(
    async (from: number) => {
      const page = await api.messages(workspace, sessionId, from, MAX_LIMIT);
      if (page.total < from) {
        // The session shrank (or the count was wrong): start again from its end.
        return fetchTail(Math.max(0, page.total - PAGE));
      }
      setStart(page.offset ?? from);
      setTotal(page.total);
      setMessages(page.messages);
    },
    [api, workspace, sessionId]
  );

  const reload = React.useCallback(async () => {
    try {
      const meta = await api.session(workspace, sessionId);
      setSession(meta);
      onTitle.current(meta.title || sessionId);
      await fetchTail(startRef.current);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  }, [api, workspace, sessionId, fetchTail]);

  // First load: the newest page.
  React.useEffect(() => {
    let cancelled = false;
    void (async () => {
      try {
        const meta = await api.session(workspace, sessionId);
        if (cancelled) {
          return;
        }
        setSession(meta);
        onTitle.current(meta.title || sessionId);
        await fetchTail(Math.max(0, (meta.messageCount ?? 0) - PAGE));
        setError(null);
      } catch (e) {
        if (!cancelled) {
          setError((e as Error).message);
        }
      } finally {
        if (!cancelled) {
          setLoading(false);
        }
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [api, workspace, sessionId, fetchTail]);

  // Live: refetch when the session changes (debounced: events come in bursts while an agent works).
  React.useEffect(() => {
    let timer: number | undefined;
    const onChange = (_: unknown, change: ISessionChange) => {
      if (change.workspace !== workspace) {
        return;
      }
      if (change.session && change.session.sessionId !== sessionId) {
        return;
      }
      if (change.session) {
        setSession(change.session);
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(() => void reload(), 300);
    };
    model.store.sessionChanged.connect(onChange);
    return () => {
      window.clearTimeout(timer);
      model.store.sessionChanged.disconnect(onChange);
    };
  }, [model, workspace, sessionId, reload]);

  // While our message waits for its answer, show the reply's parts as the agent prints them.
  React.useEffect(() => {
    const onPart = (_: unknown, reply: IReplyPart) => {
      if (reply.workspace === workspace && reply.sessionId === sessionId) {
        setStreamed(parts => [...parts, reply.part]);
      }
    };
    model.store.replyPart.connect(onPart);
    return () => {
      model.store.replyPart.disconnect(onPart);
    };
  }, [model, workspace, sessionId]);

  // Keep the view at the bottom while new messages arrive, unless the reader scrolled up.
  React.useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages, pending, streamed]);

  const loadEarlier = async () => {
    const from = Math.max(0, start - PAGE);
    try {
      const page = await api.messages(workspace, sessionId, from, start - from);
      stick.current = false;
      setMessages(m => [...page.messages, ...m]);
      setStart(from);
      setTotal(page.total);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const ws = model.store.workspace(workspace);
  const running = ws?.status === 'running';

  const send = async (e?: React.FormEvent) => {
    e?.preventDefault();
    const text = draft.trim();
    if (!text || pending !== null) {
      return;
    }
    setPending(text);
    setStreamed([]);
    setDraft('');
    setSendError(null);
    stick.current = true;
    try {
      await api.continueSession(workspace, sessionId, text);
      await reload();
    } catch (err) {
      setDraft(text);
      const msg = (err as Error).message;
      setSendError(
        err instanceof PerryError && err.unsupported
          ? `This server cannot continue conversations yet: it has no POST …/sessions/${sessionId}/messages (${msg}).`
          : msg
      );
    } finally {
      setPending(null);
      setStreamed([]);
    }
  };

  const tokens = tokenSummary(session?.tokens);
  return (
    <div className="perry-session-view">
      <header className="perry-session-header">
        <h2 title={session?.title || sessionId}>{session?.title || sessionId}</h2>
        <div className="perry-session-facts">
          <span className="perry-agent">{session?.agent ?? ''}</span>
          <span>workspace {workspace}</span>
          {session?.directory ? <span title="directory">{session.directory}</span> : null}
          <span>{total || session?.messageCount || 0} messages</span>
          {session?.lastActivity ? <span>last activity {fullTime(session.lastActivity)}</span> : null}
        </div>
        <div className="perry-session-facts" aria-label="Token use">
          {tokens ? (
            <span>
              Tokens: {tokenTotal(session?.tokens).toLocaleString()} ({tokens})
            </span>
          ) : (
            <span className="perry-dim">No token use recorded</span>
          )}
          {cost(session?.cost) ? <span>Cost: {cost(session?.cost)}</span> : null}
          <button className="perry-link" onClick={() => void reload()}>
            Reload
          </button>
          {props.onResume ? (
            <button
              className="jp-mod-styled perry-button perry-resume"
              disabled={!running || resuming}
              title={
                running
                  ? `Open this session in ${session?.agent ?? 'the agent'}'s own interactive CLI, in a terminal in ${workspace}`
                  : `Workspace ${workspace} is not running`
              }
              onClick={async () => {
                setResuming(true);
                try {
                  await props.onResume?.();
                } finally {
                  setResuming(false);
                }
              }}
            >
              Resume in terminal
            </button>
          ) : null}
        </div>
      </header>
      <div
        className="perry-messages"
        ref={scroller}
        tabIndex={0}
        aria-label="Messages"
        onScroll={e => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {start > 0 ? (
          <button className="perry-link perry-earlier" onClick={() => void loadEarlier()}>
            Load {Math.min(PAGE, start)} earlier messages
          </button>
        ) : null}
        {loading ? <div className="perry-dim">Loading…</div> : null}
        <ErrorAlert message={error} />
        {!loading && !error && !messages.length ? <div className="perry-dim">No messages.</div> : null}
        {messages.map(m => (
          <Message key={m.id} message={m} />
        ))}
        {pending !== null ? (
          <Message pending="sending…" message={{ id: 'pending', role: 'user', time: null, parts: [{ type: 'text', text: pending }] }} />
        ) : null}
        {pending !== null && streamed.length ? (
          <Message pending="writing…" message={{ id: 'streaming', role: 'assistant', time: null, parts: streamed }} />
        ) : null}
        {pending !== null ? (
          <div className="perry-progress" role="status">
            <div className="perry-progress-bar" />
            Waiting for the agent's reply…
          </div>
        ) : null}
      </div>
      <form className="perry-continue" onSubmit={send} aria-label="Continue the conversation">
        <textarea
          className="jp-mod-styled"
          rows={3}
          aria-label="Message to the agent"
          placeholder={running ? 'Continue the conversation (Ctrl+Enter to send)' : `Workspace ${workspace} is not running`}
          value={draft}
          disabled={!running || pending !== null}
          onChange={e => setDraft(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <button type="submit" className="jp-mod-styled jp-mod-accept perry-button" disabled={!running || pending !== null || !draft.trim()}>
          Send
        </button>
        <ErrorAlert message={sendError} />
      </form>
    </div>
  );
}

export class SessionWidget extends ReactWidget {
  constructor(
    readonly model: PerryModel,
    readonly workspace: string,
    readonly sessionId: string,
    readonly commands?: CommandRegistry
  ) {
    super();
    this.id = SessionWidget.idFor(workspace, sessionId);
    this.addClass('perry-session-widget');
    this.title.icon = perryIcon;
    this.title.label = sessionId;
    this.title.caption = `Session ${sessionId} in ${workspace}`;
    this.title.closable = true;
    // Our own events stream for this workspace: the server watches its sessions for us.
    this._watch = model.watch(workspace);
  }

  static idFor(workspace: string, sessionId: string): string {
    return `perry-session-${workspace}-${sessionId.replace(/[^\w-]/g, '_')}`;
  }

  dispose(): void {
    this._watch.dispose();
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <SessionView
        model={this.model}
        workspace={this.workspace}
        sessionId={this.sessionId}
        onResume={
          this.commands
            ? () => this.commands!.execute(CommandIDs.resumeSession, { workspace: this.workspace, sessionId: this.sessionId })
            : undefined
        }
        onTitle={t => {
          this.title.label = t.length > 40 ? `${t.slice(0, 37)}…` : t;
          this.title.caption = `${t}\nsession ${this.sessionId} in ${this.workspace}`;
        }}
      />
    );
  }

  private _watch: IDisposable;
}
