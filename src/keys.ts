/** Keys every form of the panel, the workspace page and the phone page answers the same way. */
import type * as React from 'react';

/**
 * A keydown handler on which Esc calls `close` (a form's Cancel): it stops there, so
 * JupyterLab does not also take the key for one of its own shortcuts.
 */
export function escapeCloses(close: () => void): (e: React.KeyboardEvent) => void {
  return e => {
    if (e.key === 'Escape' && !e.defaultPrevented) {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  };
}
