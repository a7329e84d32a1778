/** How the panel tells of a failed task: the agent's own reason, whole words, whole URLs. */
import { ITask } from './api';

/** JupyterLab cuts a notification's text at 140 characters, wherever that falls. */
export const NOTIFICATION_LIMIT = 140;

/** `text` in at most `limit` characters, cut between words and never inside a URL. */
export function shorten(text: string, limit: number): string {
  if (text.length <= limit) {
    return text;
  }
  let cut = text.slice(0, limit - 1);
  const url = /\S+:\/\/\S+/g;
  let match: RegExpExecArray | null;
  let inUrl = false;
  while ((match = url.exec(text)) !== null) {
    if (match.index < cut.length && cut.length < match.index + match[0].length) {
      cut = cut.slice(0, match.index);
      inUrl = true;
      break;
    }
  }
  if (!inUrl && cut.includes(' ')) {
    cut = cut.slice(0, cut.lastIndexOf(' '));
  }
  return cut.replace(/[\s,;:(]+$/, '') + '…';
}

/** The notification of a failed task: where, and why in the agent's words (the panel has it whole). */
export function failureNotice(task: ITask): string {
  const head = `Task in ${task.workspace} failed`;
  const why = task.error || task.summary;
  return why ? `${head}: ${shorten(why, NOTIFICATION_LIMIT - head.length - 2)}` : head;
}
