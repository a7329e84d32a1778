/** One agent session on a phone: its last messages, followed live, and a box to continue it. */
import * as React from 'react';

import { IMessage, IPart, ISession } from '../api';
import { fullTime } from '../format';
import { readable } from '../readable';
import { ErrorLine, useAction, usePhone } from './context';

const TAIL = 50;

export function PartView(props: { part: IPart }): JSX.Element | null {
  const { part } = props;
  if (part.type === 'text') {
    return part.text ? <p className="pp-text">{part.text}</p> : null;
  }
  if (part.type === 'error') {
    return <p className="pp-error">{part.text ?? 'the turn failed'}</p>;
  }
  if (part.type === 'reasoning' && part.text) {
    return (
      <details className="pp-detail">
        <summary>Reasoning</summary>
        <p className="pp-text">{part.text}</p>
      </details>
    );
  }
  if (part.type === 'tool') {
    return (
      <details className="pp-detail">
        <summary>
          {part.tool ?? 'tool'} {part.status ? <span className="pp-muted">({part.status})</span> : null}
        </summary>
        <pre className="pp-pre" tabIndex={0}>{readable(part.input) || '(no input)'}</pre>
        <pre className="pp-pre" tabIndex={0}>{readable(part.output) || '(no output)'}</pre>
      </details>
    );
  }
  return null;
}

function MessageView(props: { message: IMessage }): JSX.Element {
  const { message } = props;
  return (
    <article className={`pp-msg pp-msg-${message.role === 'user' ? 'user' : 'assistant'}`} data-role={message.role}>
      <header className="pp-muted">
        {message.role === 'user' ? 'You' : message.role === 'assistant' ? 'Agent' : message.role} · {fullTime(message.time)}
      </header>
      {message.parts.map((p, i) => (
        <PartView key={i} part={p} />
      ))}
    </article>
  );
}

/**
 * The agent's reply as the continue call answered it, in place of a copy read while the agent
 * was still writing it (a message listed before its parts are saved).
 */
export function withReply(messages: IMessage[], reply: IMessage | undefined): IMessage[] {
  if (!reply) {
    return messages;
  }
  const at = messages.findIndex(m => m.id === reply.id);
  if (at < 0) {
    return [...messages, reply];
  }
  if (messages[at].parts.length >= reply.parts.length) {
    return messages;
  }
  return messages.map((m, i) => (i === at ? reply : m));
}

export function SessionScreen(props: { workspace: string; sessionId: string }): JSX.Element {
  const { workspace, sessionId } = props;
  const { api, store, events } = usePhone();
  const [session, setSession] = React.useState<ISession | null>(null);
  const [messages, setMessages] = React.useState<IMessage[]>([]);
  const [error, setError] = React.useState<string | null>(null);
  const [loaded, setLoaded] = React.useState(false);
  const [streamed, setStreamed] = React.useState<IPart[]>([]);
  const [draft, setDraft] = React.useState('');
  const send = useAction();
  // The page's end is the continue box: scrolled to it, the last message sits just above it.
  const bottom = React.useRef<HTMLFormElement>(null);

  const reload = React.useCallback(async (reply?: IMessage) => {
    try {
      const meta = await api.session(workspace, sessionId);
      const from = Math.max(0, (meta.messageCount ?? 0) - TAIL);
      const page = await api.messages(workspace, sessionId, from, TAIL);
      setSession(meta);
      setMessages(withReply(page.messages, reply));
      setStreamed([]);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoaded(true);
    }
  }, [api, workspace, sessionId]);

  React.useEffect(() => {
    void reload();
    const again = () => void reload();
    const watch = events.watch(workspace); // the server follows the workspace's sessions meanwhile
    const changed = (_: unknown, change: { workspace: string; session: ISession | null }) => {
      if (change.workspace === workspace && change.session?.sessionId === sessionId) {
        again();
      }
    };
    const reply = (_: unknown, r: { workspace: string; sessionId: string; part: IPart }) => {
      if (r.workspace === workspace && r.sessionId === sessionId) {
        setStreamed(parts => [...parts, r.part]);
      }
    };
    store.sessionChanged.connect(changed);
    store.replyPart.connect(reply);
    events.reconnected.connect(again);
    return () => {
      watch.dispose();
      store.sessionChanged.disconnect(changed);
      store.replyPart.disconnect(reply);
      events.reconnected.disconnect(again);
    };
  }, [api, store, events, workspace, sessionId, reload]);

  React.useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: 'end' });
  }, [messages, streamed]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const words = draft.trim();
    let reply: IMessage | undefined;
    if (await send.run(async () => (reply = (await api.continueSession(workspace, sessionId, words)).reply))) {
      setDraft('');
      await reload(reply);
    }
  };

  return (
    <main className="pp-main pp-session">
      <h2 className="pp-title">{session?.title || sessionId}</h2>
      {session ? (
        <p className="pp-muted">
          {session.agent} · {session.messageCount ?? messages.length} messages
        </p>
      ) : null}
      <ErrorLine error={error} />
      {!loaded ? <p className="pp-muted">Loading…</p> : null}
      {session && (session.messageCount ?? 0) > messages.length ? (
        <p className="pp-muted">The last {messages.length} messages.</p>
      ) : null}
      <div className="pp-messages" aria-label="Messages">
        {messages.map(m => (
          <MessageView key={m.id} message={m} />
        ))}
        {streamed.length ? (
          <article className="pp-msg pp-msg-assistant pp-pending" aria-label="The reply as it comes">
            {streamed.map((p, i) => (
              <PartView key={i} part={p} />
            ))}
          </article>
        ) : null}
      </div>
      <form ref={bottom} className="pp-form pp-continue" onSubmit={e => void submit(e)}>
        <label htmlFor="pp-continue-text">Continue the session</label>
        <textarea id="pp-continue-text" rows={3} value={draft} onChange={e => setDraft(e.target.value)} />
        <button type="submit" disabled={send.busy || !draft.trim()}>
          {send.busy ? 'The agent is answering…' : 'Send'}
        </button>
        <ErrorLine error={send.error} />
      </form>
    </main>
  );
}
