/**
 * Resume an agent session in a JupyterLab terminal: the server opens a workspace terminal
 * running the agent's own CLI on the session, and JupyterLab's terminal widget shows it.
 */
import { Notification } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';

import { PerryModel } from './model';
import { openTerminalTab } from './terminaltab';
import { CommandIDs } from './tokens';

export function addResumeCommand(commands: CommandRegistry, model: PerryModel): void {
  commands.addCommand(CommandIDs.resumeSession, {
    label: 'Resume in Terminal',
    caption: "Open the session in the agent's own interactive CLI, in a terminal in its workspace",
    execute: async args => {
      const workspace = String(args.workspace ?? '');
      const sessionId = String(args.sessionId ?? '');
      if (!workspace || !sessionId) {
        return;
      }
      if (!commands.hasCommand('terminal:open')) {
        Notification.error('Terminals are not available in this JupyterLab (the terminal extension is disabled).');
        return;
      }
      try {
        const terminal = await model.api.resumeSession(workspace, sessionId);
        return await openTerminalTab(commands, model.api, workspace, terminal.name);
      } catch (e) {
        // The server's message as it is: it names the session, or the agent the workspace lacks.
        Notification.error((e as Error).message, { autoClose: false });
      }
    }
  });
}
