/** Command ids, shared by the plugin, the panel and the session view. */
export namespace CommandIDs {
  export const openPanel = 'perry:open-panel';
  export const refresh = 'perry:refresh';
  export const createWorkspace = 'perry:create-workspace';
  export const openTerminal = 'perry:open-terminal';
  export const dispatchTask = 'perry:dispatch-task';
  export const openSession = 'perry:open-session';
  export const openWorkspace = 'perry:open-workspace';
  export const resumeSession = 'perry:resume-session';
}
