// The phone page's bundle (`jlpm build:phone`, part of `jlpm build` and `build:prod`): the
// TypeScript tsc compiled into lib/phone/, with React, Lumino's signals and xterm.js inside,
// into perry_jupyter/static/phone/build/, which the server extension serves at <base_url>/perry/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export default {
  mode: 'production',
  devtool: false,
  entry: {
    phone: ['./lib/phone/index.js', './src/phone/phone.css', '@xterm/xterm/css/xterm.css']
  },
  output: {
    path: path.join(here, 'perry_jupyter', 'static', 'phone', 'build'),
    filename: '[name].js',
    clean: true
  },
  // One client, two faces: what the phone shares with the panel (api.ts, events.ts, store.ts, ...)
  // must not pull JupyterLab in. The build fails, naming the import, the day it does.
  externals: [
    ({ request, context }, callback) =>
      /^@jupyterlab\//.test(request ?? '')
        ? callback(new Error(`the phone bundle must not import ${request} (from ${path.relative(here, context ?? '')})`))
        : callback()
  ],
  resolve: {
    // One React, whatever else in node_modules carries a copy (two break hooks at run time).
    alias: {
      react: path.join(here, 'node_modules', 'react'),
      'react-dom': path.join(here, 'node_modules', 'react-dom')
    }
  },
  module: {
    rules: [{ test: /\.css$/, use: ['style-loader', 'css-loader'] }]
  },
  performance: { hints: false }
};
