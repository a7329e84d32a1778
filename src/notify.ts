/** What the panel tells the user in JupyterLab's notifications. */
import { Notification } from '@jupyterlab/apputils';

import { ITask, IWorkspace } from './api';
import { failureNotice } from './failures';

export function workspaceReady(ws: IWorkspace): void {
  Notification.success(`Workspace ${ws.name} is ready`, { autoClose: 5000 });
}

export function workspaceSynced(name: string): void {
  Notification.info(`Synced keys, git config and the worker into ${name}`, { autoClose: 4000 });
}

/** Success fades away; a failure stays until read. */
export function taskEnded(task: ITask): void {
  const prompt = task.prompt.length > 60 ? `${task.prompt.slice(0, 57)}…` : task.prompt;
  const text = `Task in ${task.workspace} ${task.status}: ${prompt}`;
  if (task.status === 'succeeded') {
    Notification.success(text, { autoClose: 8000 });
  } else if (task.status === 'failed') {
    Notification.error(failureNotice(task), { autoClose: false });
  } else {
    Notification.info(text, { autoClose: 5000 });
  }
}
