/** Workspace names, checked exactly as the server checks them (perry_jupyter/core/names.py). */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Python's repr of a plain string, so the message reads as the server's does. */
function pyRepr(s: string): string {
  if (s.includes("'") && !s.includes('"')) {
    return `"${s}"`;
  }
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The server's message for an invalid name, or null when the name is valid. */
export function nameError(name: string): string | null {
  if (!name) {
    return 'workspace name is required';
  }
  if (!NAME_PATTERN.test(name)) {
    return (
      `invalid workspace name ${pyRepr(name)}: use 1-63 lowercase letters, digits ` +
      'and hyphens, starting and ending with a letter or digit'
    );
  }
  return null;
}

/**
 * Why `name` cannot be created now (invalid, or a workspace of the list has it), or null:
 * said while the user types, in the server's words for the same refusal.
 */
export function createNameError(name: string, workspaces: { name: string }[]): string | null {
  const invalid = nameError(name);
  if (invalid) {
    return invalid;
  }
  return workspaces.some(w => w.name === name) ? `workspace ${pyRepr(name)} already exists` : null;
}
