/** The panel's way to the server: JupyterLab's ServerConnection (base URL, token, XSRF header). */
import { ServerConnection } from '@jupyterlab/services';

import { IServer } from './api';

export function labServer(settings: ServerConnection.ISettings = ServerConnection.makeSettings()): IServer {
  return {
    baseUrl: settings.baseUrl,
    wsUrl: settings.wsUrl,
    token: settings.token,
    appendToken: settings.appendToken,
    request: (url, init) => ServerConnection.makeRequest(url, init, settings)
  };
}
