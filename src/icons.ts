import { LabIcon } from '@jupyterlab/ui-components';

import perrySvg from '../style/icons/perry.svg';

export const perryIcon = new LabIcon({ name: 'perry-jupyter:perry', svgstr: perrySvg });
