/** The agents a task can go to: the server declares them (`/info`'s `agents`), the panel lists none of its own. */
import { IInfo, IWorkspace } from './api';

export interface IAgentChoice {
  name: string;
  label: string;
  /** Its CLI is in the workspace's image (or that is not known). */
  installed: boolean;
}

/**
 * Every agent the server declares, marking those the workspace's image lacks;
 * from a server that declares none, the agents the workspace's image carries.
 */
export function agentChoices(info: IInfo | null, ws: IWorkspace): IAgentChoice[] {
  const carried = ws.agents;
  if (info && Array.isArray(info.agents)) {
    return info.agents.map(a => ({
      name: a.name,
      label: a.label || a.name,
      installed: !carried || carried.includes(a.name)
    }));
  }
  return (carried ?? []).map(name => ({ name, label: name, installed: true }));
}

/** The one picked while it can still be picked, else the first that can; '' when none can. */
export function chosenAgent(choices: IAgentChoice[], picked: string | null): string {
  const usable = choices.filter(c => c.installed);
  return usable.find(c => c.name === picked)?.name ?? usable[0]?.name ?? '';
}
