/**
 * A task that ends while the page is open is told twice: in the page (a toast, always) and
 * by the system's notifications where the user allowed them. Mobile Chrome refuses
 * `new Notification()` in a page, so the service worker's registration shows it there.
 */
import { ITask } from '../api';
import { failureNotice } from '../failures';

export function supported(): boolean {
  return typeof window !== 'undefined' && 'Notification' in window;
}

export function permission(): NotificationPermission | 'unsupported' {
  return supported() ? Notification.permission : 'unsupported';
}

export async function askPermission(): Promise<NotificationPermission | 'unsupported'> {
  if (!supported()) {
    return 'unsupported';
  }
  return Notification.requestPermission();
}

/** The one line a user reads: where, how it ended, and what was asked (or why it failed). */
export function taskEndedText(task: ITask): string {
  if (task.status === 'failed') {
    return failureNotice(task);
  }
  const prompt = task.prompt.length > 60 ? `${task.prompt.slice(0, 57)}…` : task.prompt;
  return `Task in ${task.workspace} ${task.status}: ${prompt}`;
}

export async function notifyTaskEnded(task: ITask, icon: string): Promise<void> {
  if (permission() !== 'granted') {
    return;
  }
  const options: NotificationOptions = { body: taskEndedText(task), icon, tag: `perry-task-${task.id}` };
  try {
    new Notification('Perry', options);
  } catch {
    const registration = await navigator.serviceWorker?.getRegistration();
    await registration?.showNotification('Perry', options);
  }
}
