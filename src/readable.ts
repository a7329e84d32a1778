/**
 * What the agents and the server say, as a person reads it: no raw JSON reaches the user.
 *
 * The agents print their work as one JSON event a line (OpenCode `--format json`, Claude Code
 * `stream-json`, Codex `--json`): a task's output is told here line by line in words, and tool
 * inputs and outputs (objects in a session) as indented `key: value` text. Shared by the panel,
 * the workspace page and the phone page.
 */

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** `value` as indented `key: value` lines; strings as they are. */
export function readable(value: unknown, indent = ''): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value !== 'object') {
    return String(value);
  }
  const entries: [string, unknown][] = Array.isArray(value) ? value.map(v => ['-', v]) : Object.entries(value);
  if (!entries.length) {
    return Array.isArray(value) ? `${indent}(none)` : `${indent}(empty)`;
  }
  return entries
    .map(([key, v]) => {
      const label = key === '-' ? '-' : `${key}:`;
      if (typeof v === 'object' && v !== null) {
        return `${indent}${label}\n${readable(v, `${indent}  `)}`;
      }
      const text = v === null || v === undefined ? '' : String(v);
      // A text of many lines goes under its key, indented, so its lines stay apart from the next key.
      return text.includes('\n')
        ? `${indent}${label}\n${text.replace(/\n$/, '').replace(/^/gm, `${indent}  `)}`
        : `${indent}${label} ${text}`;
    })
    .join('\n');
}

const MAIN_ARGUMENT = ['command', 'cmd', 'filePath', 'file_path', 'path', 'pattern', 'url', 'query', 'description', 'prompt'];

/** A tool call's input in one line: its main argument ("ls -la", a path), else its fields. */
export function toolArgument(input: unknown): string {
  if (!isObj(input)) {
    return oneLine(readable(input));
  }
  for (const key of MAIN_ARGUMENT) {
    const v = input[key];
    if (typeof v === 'string' && v) {
      return oneLine(v);
    }
    if (Array.isArray(v) && v.length) {
      return oneLine(v.map(String).join(' '));
    }
  }
  return oneLine(
    Object.entries(input)
      .filter(([, v]) => v !== null && typeof v !== 'object')
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ')
  );
}

function oneLine(text: string, limit = 160): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > limit ? `${line.slice(0, limit - 1)}…` : line;
}

function firstLine(text: string): string {
  return oneLine(text.split('\n').find(l => l.trim()) ?? '');
}

function tokens(n: unknown): string {
  return typeof n === 'number' && n ? ` · ${n.toLocaleString()} tokens` : '';
}

/** OpenCode's error object: its message and HTTP status. */
function opencodeError(error: unknown): string {
  if (!isObj(error)) {
    return str(error) || 'unknown error';
  }
  const data = isObj(error.data) ? error.data : {};
  const message = str(data.message) || str(error.message) || str(error.name) || 'unknown error';
  return data.statusCode ? `${message} (HTTP ${String(data.statusCode)})` : message;
}

function opencodeEvent(event: Obj): string[] | null {
  const part = isObj(event.part) ? event.part : {};
  switch (event.type) {
    case 'step_start':
      return [];
    case 'step_finish':
      return part.reason === 'stop' && isObj(part.tokens) ? [`· done${tokens(part.tokens.total)}`] : [];
    case 'text':
      return str(part.text).trim() ? [str(part.text)] : [];
    case 'reasoning':
      return str(part.text).trim() ? [`Thinking: ${str(part.text)}`] : [];
    case 'tool_use': {
      const state = isObj(part.state) ? part.state : {};
      const status = str(state.status);
      const lines = [`▸ ${str(part.tool) || 'tool'} ${str(state.title) || toolArgument(state.input)}${status && status !== 'completed' ? ` (${status})` : ''}`];
      const out = firstLine(str(state.output) || str(state.error));
      if (out) {
        lines.push(`  ↳ ${out}`);
      }
      return lines;
    }
    case 'error':
      // Codex's errors have the same type and a `message` instead.
      return isObj(event.error) ? [`Error: ${opencodeError(event.error)}`] : null;
    default:
      return null;
  }
}

function claudeEvent(event: Obj): string[] | null {
  const message = isObj(event.message) ? event.message : {};
  const content = Array.isArray(message.content) ? message.content.filter(isObj) : [];
  switch (event.type) {
    case 'system':
      if (event.subtype === 'init') {
        return [`Claude Code started${str(event.model) ? ` (${str(event.model)})` : ''}`];
      }
      if (event.subtype === 'api_retry') {
        const status = event.error_status ? ` (HTTP ${String(event.error_status)})` : '';
        const what = str(event.error).replace(/_/g, ' ');
        return [`Retrying the model: ${what && what !== 'unknown' ? what : 'the model API did not answer'}${status}`];
      }
      return [];
    case 'assistant':
      return content.flatMap(c => {
        if (c.type === 'text') {
          return str(c.text).trim() ? [str(c.text)] : [];
        }
        if (c.type === 'thinking') {
          return str(c.thinking).trim() ? [`Thinking: ${str(c.thinking)}`] : [];
        }
        if (c.type === 'tool_use') {
          return [`▸ ${str(c.name) || 'tool'} ${toolArgument(c.input)}`];
        }
        return [];
      });
    case 'user':
      return content.flatMap(c => {
        if (c.type !== 'tool_result') {
          return [];
        }
        const result = Array.isArray(c.content) ? c.content.filter(isObj).map(x => str(x.text)).join('\n') : str(c.content);
        const line = firstLine(result);
        return line ? [`  ↳ ${c.is_error ? 'error: ' : ''}${line}`] : [];
      });
    case 'result': {
      if (event.is_error) {
        const errors = Array.isArray(event.errors) ? event.errors.map(String).join('; ') : '';
        return [`Error: ${str(event.result) || errors || str(event.subtype) || 'Claude Code reported an error'}`];
      }
      const seconds = typeof event.duration_ms === 'number' ? ` in ${Math.round(event.duration_ms / 1000)} s` : '';
      return [`· done${seconds}`];
    }
    default:
      return null;
  }
}

function codexEvent(event: Obj): string[] | null {
  const item = isObj(event.item) ? event.item : {};
  switch (event.type) {
    case 'thread.started':
    case 'turn.started':
    case 'item.started':
    case 'item.updated':
      return [];
    case 'turn.completed': {
      const usage = isObj(event.usage) ? event.usage : {};
      const total = (Number(usage.input_tokens) || 0) + (Number(usage.output_tokens) || 0);
      return [`· done${tokens(total)}`];
    }
    case 'turn.failed':
      return [`Error: ${isObj(event.error) ? str(event.error.message) : str(event.error) || 'the turn failed'}`];
    case 'error': {
      const retry = /^Reconnecting\.\.\.\s*(?:\d+\/\d+\s*)?(?:waiting for network\s*)?(?:\((.*)\))?\s*$/s.exec(str(event.message));
      return [retry ? `Retrying the model: ${retry[1] || 'no answer'}` : `Error: ${str(event.message) || 'unknown error'}`];
    }
    case 'item.completed':
      switch (item.type) {
        case 'agent_message':
        case 'assistant_message':
          return str(item.text).trim() ? [str(item.text)] : [];
        case 'reasoning':
          return str(item.text).trim() ? [`Thinking: ${str(item.text)}`] : [];
        case 'command_execution': {
          const code = typeof item.exit_code === 'number' ? ` (exit ${item.exit_code})` : '';
          const out = firstLine(str(item.aggregated_output));
          return [`▸ $ ${oneLine(str(item.command))}${code}`, ...(out ? [`  ↳ ${out}`] : [])];
        }
        case 'file_change': {
          const changes = Array.isArray(item.changes) ? item.changes.filter(isObj) : [];
          return [`▸ changed ${changes.map(c => `${str(c.path)}${str(c.kind) ? ` (${str(c.kind)})` : ''}`).join(', ') || 'files'}`];
        }
        case 'error':
          return [`Note: ${str(item.message)}`];
        default:
          return [`▸ ${String(item.type ?? 'item')} ${toolArgument(item)}`.trimEnd()];
      }
    default:
      return null;
  }
}

/** An event no reader above knows: its type and its plain fields, in one line. */
function otherEvent(event: Obj): string[] {
  const kind = str(event.type) || str(event.event);
  const fields = Object.entries(event)
    .filter(([k, v]) => k !== 'type' && v !== null && typeof v !== 'object' && !/id$|^timestamp$/i.test(k))
    .map(([k, v]) => `${k}: ${oneLine(String(v), 80)}`);
  return [oneLine([kind, ...fields].filter(Boolean).join(' · ')) || '(an event without words)'];
}

// OpenCode's own log lines (`--print-logs`): `timestamp=… level=ERROR … message="…"`.
const LOGFMT = /^timestamp=\S+ level=(\w+) .*?\bmessage=("(?:[^"\\]|\\.)*"|\S+)/;

const LOGFMT_ERROR = /\berror(?:\.error)?=("(?:[^"\\]|\\.)*")/;

function unquote(value: string): string {
  return value.startsWith('"') ? value.slice(1, -1).replace(/\\"/g, '"') : value;
}

/** One printed line of an agent, as it reads: none, one or a few lines. */
export function outputLine(line: string): string[] {
  const trimmed = line.trim();
  const logged = LOGFMT.exec(trimmed);
  if (logged) {
    const error = LOGFMT_ERROR.exec(trimmed);
    return [`log ${logged[1].toLowerCase()}: ${unquote(logged[2])}${error ? ` (${unquote(error[1])})` : ''}`];
  }
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) {
    return [line];
  }
  let event: unknown;
  try {
    event = JSON.parse(trimmed);
  } catch {
    return [line];
  }
  if (!isObj(event)) {
    return [oneLine(readable(event))];
  }
  return opencodeEvent(event) ?? claudeEvent(event) ?? codexEvent(event) ?? otherEvent(event);
}

/** A task's output lines as they read. */
export function readableOutput(lines: string[]): string[] {
  return lines.flatMap(outputLine);
}
