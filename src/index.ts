/**
 * Perry for JupyterLab: a left-sidebar panel of Docker development workspaces,
 * their terminals, agent sessions and tasks, and the commands to drive them.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification, WidgetTracker } from '@jupyterlab/apputils';

import { IWorkspace, PerryAPI } from './api';
import { perryIcon } from './icons';
import { PerryModel } from './model';
import { labServer } from './server';
import { PerryPanel } from './panel';
import { addResumeCommand } from './resume';
import { SessionWidget } from './session';
import { openTerminalTab } from './terminaltab';
import { CommandIDs } from './tokens';
import { WorkspacePage } from './workspacepage';

const CATEGORY = 'Perry';

/** The workspace a command is about: its argument, the selected one, the only one, or the user's pick. */
async function pickWorkspace(
  model: PerryModel,
  args: { workspace?: unknown },
  purpose: string,
  usable: (ws: IWorkspace) => boolean
): Promise<string | null> {
  if (typeof args.workspace === 'string' && args.workspace) {
    return args.workspace;
  }
  if (!model.store.loaded) {
    await model.store.loadWorkspaces();
  }
  const candidates = model.store.workspaces.filter(usable);
  const selected = model.ui.selected;
  if (selected && candidates.some(w => w.name === selected)) {
    return selected;
  }
  if (!candidates.length) {
    Notification.warning(`No running workspace to ${purpose}: create or start one in the Perry panel first.`, {
      autoClose: 6000
    });
    return null;
  }
  if (candidates.length === 1) {
    return candidates[0].name;
  }
  const result = await InputDialog.getItem({
    title: `Workspace to ${purpose}`,
    items: candidates.map(w => w.name)
  });
  return result.button.accept && result.value ? result.value : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'perry-jupyter:plugin',
  description: 'Perry workspaces, terminals, agent sessions and tasks in a JupyterLab sidebar.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const { commands, shell } = app;
    const model = new PerryModel(new PerryAPI(labServer(app.serviceManager.serverSettings)));
    const panel = new PerryPanel(model, commands);
    shell.add(panel, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(panel, 'perry-panel');
    }
    model.start();

    const sessions = new WidgetTracker<SessionWidget>({ namespace: 'perry-session' });
    if (restorer) {
      void restorer.restore(sessions, {
        command: CommandIDs.openSession,
        args: w => ({ workspace: w.workspace, sessionId: w.sessionId }),
        name: w => `${w.workspace}/${w.sessionId}`
      });
    }

    const pages = new WidgetTracker<WorkspacePage>({ namespace: 'perry-workspace' });
    if (restorer) {
      void restorer.restore(pages, {
        command: CommandIDs.openWorkspace,
        args: w => ({ workspace: w.workspace }),
        name: w => w.workspace
      });
    }

    const running = (ws: IWorkspace) => ws.status === 'running';

    commands.addCommand(CommandIDs.openWorkspace, {
      label: args => (args.workspace ? `Open Workspace ${args.workspace}` : 'Open Perry Workspace…'),
      caption: 'The workspace on a page of its own: overview, terminals, sessions, tasks, changes, ports',
      execute: async args => {
        const name = await pickWorkspace(model, args, 'open', () => true);
        if (!name) {
          return;
        }
        let page = pages.find(w => w.workspace === name);
        if (!page) {
          page = new WorkspacePage(model, name, commands);
          void pages.add(page);
          shell.add(page, 'main');
        }
        shell.activateById(page.id);
        return page;
      }
    });

    commands.addCommand(CommandIDs.openPanel, {
      label: 'Show Perry Workspaces',
      caption: 'Open the Perry sidebar',
      icon: perryIcon,
      execute: () => shell.activateById(panel.id)
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Perry Workspaces',
      execute: () => model.refresh()
    });

    commands.addCommand(CommandIDs.createWorkspace, {
      label: 'Create Perry Workspace…',
      caption: 'Create an isolated Docker development workspace',
      icon: args => (args.isPalette ? undefined : perryIcon),
      execute: () => {
        shell.activateById(panel.id);
        model.requestFocus({ workspace: null, target: 'create' });
      }
    });

    commands.addCommand(CommandIDs.openTerminal, {
      label: args => (args.workspace ? `Open Terminal in ${args.workspace}` : 'Open Terminal in Perry Workspace…'),
      caption: 'A JupyterLab terminal running inside the workspace',
      execute: async args => {
        const name = await pickWorkspace(model, args, 'open a terminal in', running);
        if (!name) {
          return;
        }
        if (!commands.hasCommand('terminal:open')) {
          Notification.error('Terminals are not available in this JupyterLab (the terminal extension is disabled).');
          return;
        }
        try {
          const terminal = await model.api.openTerminal(name);
          return await openTerminalTab(commands, model.api, name, terminal.name);
        } catch (e) {
          // The server's message as it is: it names the workspace and what to do.
          Notification.error((e as Error).message, { autoClose: false });
        }
      }
    });

    addResumeCommand(commands, model);

    commands.addCommand(CommandIDs.dispatchTask, {
      label: args => (args.workspace ? `Dispatch Agent Task to ${args.workspace}` : 'Dispatch Agent Task…'),
      caption: 'Give a coding agent in a workspace a task',
      execute: async args => {
        const name = await pickWorkspace(model, args, 'dispatch a task to', running);
        if (!name) {
          return;
        }
        shell.activateById(panel.id);
        model.requestFocus({ workspace: name, target: 'task' });
      }
    });

    commands.addCommand(CommandIDs.openSession, {
      label: args => (args.sessionId ? `Open Agent Session ${args.sessionId}` : 'Open Agent Session'),
      execute: args => {
        const workspace = String(args.workspace ?? '');
        const sessionId = String(args.sessionId ?? '');
        if (!workspace || !sessionId) {
          return;
        }
        let widget = sessions.find(w => w.workspace === workspace && w.sessionId === sessionId);
        if (!widget) {
          widget = new SessionWidget(model, workspace, sessionId, commands);
          void sessions.add(widget);
          shell.add(widget, 'main');
        }
        shell.activateById(widget.id);
        return widget;
      }
    });

    if (palette) {
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.openWorkspace,
        CommandIDs.createWorkspace,
        CommandIDs.openTerminal,
        CommandIDs.dispatchTask,
        CommandIDs.refresh
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }
  }
};

export default plugin;
