/**
 * The REST client of Perry's API, shared by the JupyterLab panel and the phone page.
 * It imports nothing of JupyterLab: each side hands it its `IServer` (the panel's goes
 * through JupyterLab's ServerConnection, src/server.ts; the phone's through fetch,
 * src/phone/server.ts), which adds the credentials and the XSRF header.
 */

export type WorkspaceStatus = 'creating' | 'running' | 'stopped' | 'error';

export interface IWorkspace {
  name: string;
  status: WorkspaceStatus;
  containerId?: string | null;
  containerName?: string;
  created?: string | null;
  image?: string;
  ports?: { ssh?: number | null };
  sshHost?: string;
  /** How to reach it over SSH from where the server is used ("ssh -p 2201 workspace@host"). */
  sshCommand?: string | null;
  dind?: string | null;
  /** While it runs: whether its own Docker engine (Docker inside) answers yet; null otherwise. */
  dindStatus?: 'starting' | 'ready' | 'off' | null;
  clone?: string | null;
  /** The names of the agents whose CLIs its image carries; null when that is not known. */
  agents?: string[] | null;
  error?: string | null;
  volumes?: { home?: string; docker?: string };
  /** The Docker engine it runs on. */
  engine?: string;
  /** What it may use; null: no limit. */
  limits?: { cpus?: number | null; memory?: number | null; pids?: number | null };
  /** What it uses now (the server's last sample); null unless it runs. */
  use?: IWorkspaceUse | null;
  /** Seconds without use before it stops; 0 never. */
  idleTimeout?: number;
  /** While stopped: "idle" (the idle check stopped it; using it starts it again), "user", or null. */
  stopReason?: 'idle' | 'user' | null;
}

export interface IWorkspaceUse {
  /** 100 is one CPU busy; null until a second sample. */
  cpuPercent: number | null;
  memoryUsed: number;
  memoryLimit: number;
  /** The machine's CPUs. */
  cpus?: number;
  pids?: number | null;
}

export interface IEngine {
  name: string;
  address: string;
  reachable: boolean;
  version?: string | null;
  cpus?: number | null;
  memory?: number | null;
  rttMs?: number | null;
  error?: string | null;
  workspaces: { running: number; total: number };
}

export interface ICheck {
  name: string;
  ok: boolean;
  message: string;
  fix?: string;
}

export interface IInfo {
  version: string;
  engine: { reachable: boolean; address?: string; version?: string; error?: string };
  image: { tag?: string; present: boolean | null; upToDate?: boolean; error?: string };
  workspaces?: number | null;
  stateDir?: string;
  checks: ICheck[];
  /** Every agent Perry knows, declared once on the server. */
  agents?: IAgent[];
}

export interface IAgent {
  name: string;
  /** How to show it ("OpenCode"). */
  label?: string;
}

export interface ITokens {
  input?: number;
  output?: number;
  reasoning?: number;
  cacheRead?: number;
  cacheWrite?: number;
}

export interface ISession {
  sessionId: string;
  agent: string;
  title?: string;
  directory?: string | null;
  messageCount?: number;
  lastActivity?: string | null;
  tokens?: ITokens;
  cost?: number | null;
}

export interface IPart {
  type: 'text' | 'reasoning' | 'tool' | 'file' | string;
  text?: string;
  tool?: string;
  input?: unknown;
  output?: unknown;
  status?: string;
  [key: string]: unknown;
}

export interface IMessage {
  id: string;
  role: 'user' | 'assistant' | string;
  time?: string | null;
  parts: IPart[];
  tokens?: ITokens;
  cost?: number | null;
  [key: string]: unknown;
}

export interface IMessagePage {
  sessionId: string;
  total: number;
  offset: number;
  limit: number;
  messages: IMessage[];
}

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINISHED: TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface ITask {
  id: string;
  workspace: string;
  agent: string;
  prompt: string;
  status: TaskStatus;
  sessionId?: string | null;
  created?: string | null;
  started?: string | null;
  ended?: string | null;
  exitCode?: number | null;
  outputTail?: string[];
  summary?: string | null;
  error?: string | null;
}

export interface ITerminal {
  name: string;
  workspace: string;
  /** The agent session the terminal resumes; null for a plain shell. */
  resumes?: { sessionId: string; agent: string; directory: string; command: string[] } | null;
}

/** An error answered by the server (`{"error": {"code", "message"}}`) or by the network. */
export class PerryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string
  ) {
    super(message);
    this.name = 'PerryError';
  }

  /** The server does not have this route (or this method on it): an older Perry. */
  get unsupported(): boolean {
    return this.code === 'no_route' || this.status === 405;
  }
}

const API = 'perry/api';

/** Where the Jupyter server is and how to send it a request with the user's credentials. */
export interface IServer {
  baseUrl: string;
  wsUrl: string;
  /** Added to WebSocket URLs when `appendToken` (a browser cannot set their headers). */
  token?: string;
  appendToken?: boolean;
  request(url: string, init: RequestInit): Promise<Response>;
}

/** Join URL parts with single slashes, as URLExt.join does for these (no `..` in Perry's paths). */
export function joinUrl(base: string, ...parts: string[]): string {
  let url = base;
  for (const part of parts) {
    if (!part) {
      continue;
    }
    url = `${url.replace(/\/+$/, '')}/${part.replace(/^\/+/, '')}`;
  }
  return url;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

/**
 * What an answer that is not Perry's says, in words: Jupyter's own JSON errors
 * (`{"message", "reason"}`), an HTML error page's text, or plain text; never the raw JSON.
 */
export function bodyMessage(body: unknown, text: string): string {
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; reason?: unknown };
    const said = [b.message, b.reason].filter(x => typeof x === 'string' && x).join(': ');
    return said.slice(0, 300);
  }
  if (body !== null) {
    return String(body).slice(0, 300);
  }
  const plain = /<[a-z!/][^>]*>/i.test(text)
    ? text.replace(/<(script|style|head)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ')
    : text;
  return plain.replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** The REST API, one method per route. */
export class PerryAPI {
  constructor(readonly server: IServer) {}

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = joinUrl(this.server.baseUrl, API, path);
    let response: Response;
    try {
      response = await this.server.request(url, init);
    } catch (e) {
      throw new PerryError(`cannot reach the Jupyter server: ${(e as Error).message}`, 0, 'network');
    }
    const text = await response.text();
    let body: any = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!response.ok) {
      const err = body && typeof body === 'object' ? body.error : null;
      if (err && typeof err.message === 'string') {
        throw new PerryError(err.message, response.status, String(err.code ?? 'error'));
      }
      if (response.status === 404) {
        // Not an answer of Perry's handlers: the route itself is unknown.
        throw new PerryError(
          `this server has no ${init.method ?? 'GET'} /${API}/${path.split('?')[0]} (is the perry_jupyter server extension up to date?)`,
          404,
          'no_route'
        );
      }
      const said = bodyMessage(body, text);
      throw new PerryError(`${response.status} ${response.statusText || 'error'}${said ? `: ${said}` : ''}`, response.status, 'http');
    }
    return body as T;
  }

  private json<T>(method: string, path: string, payload?: unknown): Promise<T> {
    return this.request<T>(path, {
      method,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      headers: payload === undefined ? undefined : { 'Content-Type': 'application/json' }
    });
  }

  info(): Promise<IInfo> {
    return this.request<IInfo>('info');
  }

  async workspaces(): Promise<IWorkspace[]> {
    return (await this.request<{ workspaces: IWorkspace[] }>('workspaces')).workspaces;
  }

  workspace(name: string): Promise<IWorkspace> {
    return this.request<IWorkspace>(`workspaces/${enc(name)}`);
  }

  create(name: string, clone?: string, engine?: string): Promise<IWorkspace> {
    const body: { name: string; clone?: string; engine?: string } = { name };
    if (clone) {
      body.clone = clone;
    }
    if (engine) {
      body.engine = engine;
    }
    return this.json<IWorkspace>('POST', 'workspaces', body);
  }

  async engines(): Promise<IEngine[]> {
    return (await this.request<{ engines: IEngine[] }>('engines')).engines;
  }

  async remove(name: string): Promise<void> {
    await this.request<null>(`workspaces/${enc(name)}`, { method: 'DELETE' });
  }

  async action(name: string, action: 'start' | 'stop' | 'sync'): Promise<IWorkspace> {
    const answer = await this.json<any>('POST', `workspaces/${enc(name)}/${action}`);
    // sync answers {workspace, copied}; start and stop answer the workspace itself.
    return action === 'sync' ? (answer.workspace as IWorkspace) : (answer as IWorkspace);
  }

  openTerminal(name: string): Promise<ITerminal> {
    return this.json<ITerminal>('POST', `workspaces/${enc(name)}/terminals`);
  }

  /** A terminal running the session's agent CLI on it, in its directory (the agent found from the session). */
  resumeSession(name: string, sessionId: string): Promise<ITerminal> {
    return this.json<ITerminal>('POST', `workspaces/${enc(name)}/terminals`, { session: sessionId });
  }

  async sessions(name: string): Promise<ISession[]> {
    return (await this.request<{ sessions: ISession[] }>(`workspaces/${enc(name)}/sessions`)).sessions;
  }

  session(name: string, sessionId: string): Promise<ISession> {
    return this.request<ISession>(`workspaces/${enc(name)}/sessions/${enc(sessionId)}`);
  }

  messages(name: string, sessionId: string, offset: number, limit: number): Promise<IMessagePage> {
    return this.request<IMessagePage>(
      `workspaces/${enc(name)}/sessions/${enc(sessionId)}/messages?limit=${limit}&offset=${offset}`
    );
  }

  continueSession(name: string, sessionId: string, text: string): Promise<{ reply?: IMessage }> {
    return this.json('POST', `workspaces/${enc(name)}/sessions/${enc(sessionId)}/messages`, { text });
  }

  async tasks(name: string): Promise<ITask[]> {
    return (await this.request<{ tasks: ITask[] }>(`workspaces/${enc(name)}/tasks`)).tasks;
  }

  dispatch(name: string, agent: string, prompt: string, sessionId?: string): Promise<ITask> {
    const body: { agent: string; prompt: string; sessionId?: string } = { agent, prompt };
    if (sessionId) {
      body.sessionId = sessionId;
    }
    return this.json<ITask>('POST', `workspaces/${enc(name)}/tasks`, body);
  }

  /** Ends a terminal's shell (it cannot be reattached after). */
  async closeTerminal(name: string, terminal: string): Promise<void> {
    await this.request<null>(`workspaces/${enc(name)}/terminals/${enc(terminal)}`, { method: 'DELETE' });
  }

  async cancelTask(name: string, id: string): Promise<void> {
    await this.request<unknown>(`workspaces/${enc(name)}/tasks/${enc(id)}`, { method: 'DELETE' });
  }

  /** The WebSocket URL of the events stream, with the token as JupyterLab's own services add it. */
  eventsUrl(workspace?: string): string {
    const params: string[] = [];
    if (workspace) {
      params.push(`workspace=${enc(workspace)}`);
    }
    if (this.server.appendToken && this.server.token) {
      params.push(`token=${enc(this.server.token)}`);
    }
    const url = joinUrl(this.server.wsUrl, API, 'events');
    return params.length ? `${url}?${params.join('&')}` : url;
  }
}
