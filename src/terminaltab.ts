/**
 * A workspace terminal in a JupyterLab tab. Closing the tab asks what becomes of its shell:
 * keep it running (reattach it later from the workspace page's Terminals tab) or end it
 * (`DELETE …/terminals/{name}`: whatever runs in it stops).
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Message, MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { PerryAPI, PerryError } from './api';

const asked = new WeakSet<Widget>();

/** What the user chose on closing the tab of terminal `terminal` of `workspace`. */
async function askOnClose(workspace: string, terminal: string): Promise<'keep' | 'end' | 'cancel'> {
  const result = await showDialog({
    title: `Close terminal ${terminal}?`,
    body:
      `Its shell in ${workspace} can keep running: attach it again later from the workspace's ` +
      'Terminals tab. Or end it now: whatever runs in it stops.',
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: 'End shell' }),
      Dialog.okButton({ label: 'Keep running' })
    ],
    defaultButton: 2
  });
  if (!result.button.accept) {
    return 'cancel';
  }
  return result.button.label === 'End shell' ? 'end' : 'keep';
}

/** Ask before `widget` (a terminal tab) closes, once the user decided it goes. */
function askBeforeClosing(widget: Widget, api: PerryAPI, workspace: string, terminal: string): void {
  if (asked.has(widget)) {
    return;
  }
  asked.add(widget);
  let open = false; // a dialog is up: more close requests wait for it
  let decided = false;
  const decide = async () => {
    open = true;
    try {
      const choice = await askOnClose(workspace, terminal);
      if (choice === 'cancel') {
        return;
      }
      if (choice === 'end') {
        try {
          await api.closeTerminal(workspace, terminal);
        } catch (e) {
          // Gone already (the shell exited, the workspace stopped): the tab goes all the same.
          if (!(e instanceof PerryError && e.status === 404)) {
            Notification.error(`Could not end ${terminal}: ${(e as Error).message}`, { autoClose: false });
            return;
          }
        }
      }
      decided = true;
      if (!widget.isDisposed) {
        widget.close();
      }
    } finally {
      open = false;
    }
  };
  MessageLoop.installMessageHook(widget, (_: unknown, msg: Message) => {
    if (msg.type !== 'close-request' || decided || widget.isDisposed) {
      return true;
    }
    if (!open) {
      void decide();
    }
    return false;
  });
}

/** Opens (or shows again) workspace terminal `terminal` in a JupyterLab tab that asks before it closes. */
export async function openTerminalTab(
  commands: CommandRegistry,
  api: PerryAPI,
  workspace: string,
  terminal: string
): Promise<any> {
  // The terminal's MainAreaWidget, as JupyterLab's own command answers it.
  const widget = await commands.execute('terminal:open', { name: terminal });
  if (widget instanceof Widget) {
    askBeforeClosing(widget, api, workspace, terminal);
  }
  return widget;
}
