/**
 * What the agent changed in a workspace's project: the changed files with +/- lines, a
 * file's coloured diff, and a follow-up box that continues the last task's session.
 * Reloads when the server says the project changed (`changes.updated`, sent when a task ends).
 */
import * as React from 'react';

import { IWorkspace } from './api';
import { ErrorAlert } from './components';
import { errorMessage } from './format';
import { PerryModel } from './model';

export interface IChangedFile {
  path: string;
  oldPath?: string;
  status: string;
  staged?: boolean;
  binary?: boolean;
  added?: number | null;
  removed?: number | null;
}

export interface IChanges {
  directory: string;
  repository: boolean;
  root?: string | null;
  state: 'branch' | 'detached' | 'empty' | 'no_repository';
  message?: string | null;
  branch?: string | null;
  upstream?: string | null;
  ahead?: number | null;
  behind?: number | null;
  head?: { sha: string; subject: string } | null;
  files: IChangedFile[];
  totals?: { files: number; added: number; removed: number };
}

export interface IDiff {
  file?: string | null;
  base: string;
  diff: string;
  bytes: number;
  truncated: boolean;
  binary: string[];
  message?: string | null;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

export function fetchChanges(model: PerryModel, name: string): Promise<IChanges> {
  return model.api.request<IChanges>(`workspaces/${enc(name)}/changes`);
}

export function fetchDiff(model: PerryModel, name: string, file: string): Promise<IDiff> {
  return model.api.request<IDiff>(`workspaces/${enc(name)}/changes/diff?file=${enc(file)}`);
}

const STATUS_LETTER: Record<string, string> = {
  modified: 'M',
  added: 'A',
  deleted: 'D',
  renamed: 'R',
  copied: 'C',
  untracked: 'U',
  conflicted: '!'
};

/** The class of one diff line, by its first characters. */
export function diffLineKind(line: string): string {
  if (/^(\+\+\+|---|diff --git|index |new file|deleted file|rename |similarity |old mode|new mode|Binary files)/.test(line)) {
    return 'meta';
  }
  if (line.startsWith('@@')) {
    return 'hunk';
  }
  if (line.startsWith('+')) {
    return 'add';
  }
  if (line.startsWith('-')) {
    return 'del';
  }
  return 'context';
}

function DiffView(props: { diff: IDiff }): JSX.Element {
  const { diff } = props;
  const lines = diff.diff ? diff.diff.replace(/\n$/, '').split('\n') : [];
  return (
    <div className="perry-diff-view">
      {diff.binary.length ? (
        <div className="perry-dim">Binary file{diff.binary.length > 1 ? 's' : ''} not shown: {diff.binary.join(', ')}</div>
      ) : null}
      {diff.truncated ? (
        <div className="perry-warning perry-diff-truncated" role="note">
          Truncated: {diff.message ?? `the diff is ${diff.bytes} bytes`}
        </div>
      ) : null}
      {lines.length ? (
        <pre className="perry-diff" aria-label={`Diff of ${diff.file ?? 'the project'}`}>
          {lines.map((line, i) => (
            <div key={i} className={`perry-diff-line perry-diff-${diffLineKind(line)}`}>
              {line || ' '}
            </div>
          ))}
        </pre>
      ) : null}
      {!lines.length && !diff.binary.length ? <div className="perry-dim">{diff.message ?? 'No changes.'}</div> : null}
    </div>
  );
}

function Counts(props: { file: IChangedFile }): JSX.Element {
  const f = props.file;
  if (f.binary) {
    return <span className="perry-dim">binary</span>;
  }
  return (
    <span className="perry-counts">
      <span className="perry-added">+{f.added ?? '?'}</span> <span className="perry-removed">−{f.removed ?? '?'}</span>
    </span>
  );
}

/** Continue the session of the workspace's last task that has one, as a new task. */
function FollowUp(props: { model: PerryModel; ws: IWorkspace }): JSX.Element | null {
  const { model, ws } = props;
  const last = model.store.tasks.get(ws.name).items.find(t => !!t.sessionId);
  const [prompt, setPrompt] = React.useState('');
  const [sending, setSending] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  if (!last) {
    return null;
  }
  const send = async (e?: React.FormEvent) => {
    e?.preventDefault();
    if (!prompt.trim() || sending) {
      return;
    }
    setSending(true);
    setError(null);
    try {
      await model.dispatch(ws.name, last.agent, prompt.trim(), last.sessionId!);
      setPrompt('');
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setSending(false);
    }
  };
  return (
    <form className="perry-follow-up" onSubmit={send} aria-label={`Follow up in ${ws.name}`}>
      <label className="perry-dim" htmlFor={`perry-follow-up-${ws.name}`}>
        Follow up in the last task's {last.agent} session
      </label>
      <textarea
        id={`perry-follow-up-${ws.name}`}
        className="jp-mod-styled perry-task-prompt"
        rows={2}
        placeholder="Ask for a change to these files (Ctrl+Enter to send)"
        value={prompt}
        disabled={sending || ws.status !== 'running'}
        onChange={e => setPrompt(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <div className="perry-row">
        <button type="submit" className="jp-mod-styled jp-mod-accept perry-button" disabled={sending || !prompt.trim()}>
          {sending ? 'Sending…' : 'Follow up'}
        </button>
      </div>
      <ErrorAlert message={error} />
    </form>
  );
}

export function ChangesSection(props: { model: PerryModel; ws: IWorkspace }): JSX.Element | null {
  const { model, ws } = props;
  const running = ws.status === 'running';
  const [changes, setChanges] = React.useState<IChanges | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(false);
  const [file, setFile] = React.useState<string | null>(null);
  const [diff, setDiff] = React.useState<IDiff | null>(null);
  const [diffError, setDiffError] = React.useState<string | null>(null);
  const fileRef = React.useRef<string | null>(null);
  fileRef.current = file;

  const showDiff = React.useCallback(
    async (path: string | null) => {
      setFile(path);
      setDiffError(null);
      if (path === null) {
        setDiff(null);
        return;
      }
      try {
        const answer = await fetchDiff(model, ws.name, path);
        if (fileRef.current === path) {
          setDiff(answer);
        }
      } catch (e) {
        setDiffError(errorMessage(e));
      }
    },
    [model, ws.name]
  );

  const load = React.useCallback(async () => {
    setLoading(true);
    try {
      const answer = await fetchChanges(model, ws.name);
      setChanges(answer);
      setError(null);
      const open = fileRef.current;
      if (open !== null) {
        void showDiff(answer.files.some(f => f.path === open) ? open : null);
      }
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, [model, ws.name, showDiff]);

  const name = ws.name;
  const updated = model.store.changesUpdated;
  React.useEffect(() => {
    if (!running) {
      return;
    }
    void load();
    const onUpdate = (_: unknown, changed: string) => {
      if (changed === name) {
        void load();
      }
    };
    updated.connect(onUpdate);
    return () => {
      updated.disconnect(onUpdate);
    };
  }, [running, load, name, updated]);

  if (!running) {
    return null;
  }
  const where = changes?.root ?? changes?.directory;
  return (
    <section className="perry-section perry-changes" aria-label={`Changes in ${ws.name}`}>
      <div className="perry-section-head">
        <h4>Changes</h4>
        <button className="perry-link" onClick={() => void load()} disabled={loading} title="Read the changes again">
          {loading ? 'Reading…' : 'Refresh'}
        </button>
      </div>
      {error ? <div className="perry-error">{error}</div> : null}
      {changes ? (
        <>
          <div className="perry-changes-head" title={where ?? ''}>
            {changes.repository ? (
              <>
                <span className="perry-branch">{changes.branch ?? `(${changes.state})`}</span>
                {changes.upstream ? (
                  <span className="perry-dim">
                    {' '}
                    {changes.upstream} ↑{changes.ahead ?? 0} ↓{changes.behind ?? 0}
                  </span>
                ) : null}
                {changes.head ? (
                  <span className="perry-dim" title={changes.head.sha}>
                    {' · '}
                    {changes.head.sha.slice(0, 8)} {changes.head.subject}
                  </span>
                ) : null}
              </>
            ) : null}
          </div>
          {changes.message ? <div className="perry-dim perry-changes-message">{changes.message}</div> : null}
          {changes.files.length ? (
            <ul className="perry-changed-files" aria-label={`Changed files of ${ws.name}`}>
              {changes.files.map(f => (
                <li key={f.path} data-path={f.path} data-status={f.status}>
                  <button
                    className={`perry-changed-file${file === f.path ? ' perry-selected' : ''}`}
                    aria-pressed={file === f.path}
                    title={f.oldPath ? `${f.oldPath} → ${f.path}` : f.path}
                    onClick={() => void showDiff(file === f.path ? null : f.path)}
                  >
                    <span className={`perry-change-letter perry-change-${f.status}`} title={f.status}>
                      {STATUS_LETTER[f.status] ?? '?'}
                    </span>
                    <span className="perry-changed-path">{f.path}</span>
                    <Counts file={f} />
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
          <ErrorAlert message={diffError} />
          {file && diff && diff.file === file ? <DiffView diff={diff} /> : null}
          <FollowUp model={model} ws={ws} />
        </>
      ) : null}
    </section>
  );
}
