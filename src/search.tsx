/**
 * The panel's search box: the messages of every agent session in the running workspaces
 * that hold a text (`GET /perry/api/sessions/search`), newest first, with a snippet.
 */
import * as React from 'react';

import { PerryAPI } from './api';
import { ErrorAlert } from './components';
import { age } from './format';
import { PerryModel } from './model';
import { escapeCloses } from './keys';

export interface ISearchHit {
  workspace: string;
  agent: string;
  sessionId: string;
  messageId?: string | null;
  role: string;
  time?: string | null;
  snippet: string;
}

export interface ISearchResults {
  query: string;
  results: ISearchHit[];
  truncated: boolean;
  errors: { workspace: string; message: string }[];
}

export async function searchSessions(api: PerryAPI, text: string): Promise<ISearchResults> {
  return api.request<ISearchResults>(`sessions/search?q=${encodeURIComponent(text)}`);
}

export function SessionSearch(props: { model: PerryModel }): JSX.Element {
  const { model } = props;
  const [text, setText] = React.useState('');
  const [found, setFound] = React.useState<ISearchResults | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [searching, setSearching] = React.useState(false);

  const search = async () => {
    if (!text.trim()) {
      setFound(null);
      return;
    }
    setSearching(true);
    setError(null);
    try {
      setFound(await searchSessions(model.api, text));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setSearching(false);
    }
  };

  return (
    <div className="perry-search" role="search">
      <form
        onKeyDown={escapeCloses(() => {
          setText('');
          setFound(null);
          setError(null);
        })}
        onSubmit={e => {
          e.preventDefault();
          void search();
        }}
      >
        <input
          className="jp-mod-styled perry-search-input"
          type="search"
          placeholder="Search agent sessions…"
          aria-label="Search agent sessions"
          value={text}
          onChange={e => {
            setText(e.target.value);
            if (!e.target.value) {
              setFound(null);
            }
          }}
        />
      </form>
      <ErrorAlert message={error} />
      {searching ? <div className="perry-dim">Searching…</div> : null}
      {found && !searching ? (
        found.results.length ? (
          <ul className="perry-search-results" aria-label={`Messages holding ${found.query}`}>
            {found.results.map(hit => (
              <li
                key={`${hit.workspace}/${hit.sessionId}/${hit.messageId ?? hit.time}`}
                className="perry-search-hit"
                data-workspace={hit.workspace}
                data-agent={hit.agent}
              >
                <div className="perry-search-where perry-dim">
                  {hit.workspace} · {hit.agent} · {hit.role}
                  {hit.time ? ` · ${age(hit.time, Date.now())} ago` : ''}
                </div>
                <div className="perry-search-snippet">{hit.snippet}</div>
              </li>
            ))}
            {found.truncated ? <li className="perry-dim">More messages match: narrow the search.</li> : null}
          </ul>
        ) : (
          <div className="perry-dim">No session message holds “{found.query}”.</div>
        )
      ) : null}
    </div>
  );
}
