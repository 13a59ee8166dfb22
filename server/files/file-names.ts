/**
 * Pure checks of file names and home paths, done before anything moves. The helper in the
 * container applies the same rules again (it is the one that touches the file system); these give
 * the user a 400 with the reason without starting anything.
 */
import { maxFileNameBytes } from '../protocol/files.js';

/** C0 controls (incl. NUL, ESC, newline), DEL and C1 controls: none may reach a terminal or a name. */
const isControl = (code: number): boolean => code < 0x20 || (code >= 0x7f && code < 0xa0);
const hasControl = (text: string): boolean => [...text].some((ch) => isControl(ch.charCodeAt(0)));

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `name` cannot be a file name, or undefined when it can. */
export function fileNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name === '.' || name === '..') return `the name is "${name}"`;
  if (name.includes('/')) return 'the name contains /';
  if (name.includes('\u0000')) return 'the name contains a NUL character';
  if (hasControl(name)) return 'the name contains a control character (such as a newline or ESC)';
  if (Buffer.byteLength(name, 'utf8') > maxFileNameBytes)
    return `the name is longer than ${maxFileNameBytes} bytes`;
  if (loneSurrogate.test(name)) return 'the name is not valid Unicode';
  return undefined;
}

export interface HomePath {
  /** Components below $HOME; empty for the home itself. */
  readonly components: readonly string[];
  /** As the user reads it and the helper takes it: `~` or `~/a/b`. */
  readonly display: string;
}

/** The container's home, where absolute paths must lead. */
export const containerHome = '/home/cloudshell-user';

/**
 * Parses `~`, `~/a/b`, `a/b` (relative to ~) or `/home/cloudshell-user/a/b`. `..` is refused, not
 * resolved; `.` and empty components are dropped. Returns the reason on failure.
 */
export function parseHomePath(path: string): HomePath | { problem: string } {
  if (path.length === 0) return { problem: 'the path is empty' };
  if (path.length > 4096) return { problem: 'the path is longer than 4096 characters' };
  if (path.includes('\u0000')) return { problem: 'the path contains a NUL character' };
  let rest: string;
  if (path === '~' || path.startsWith('~/')) rest = path.slice(1);
  else if (path.startsWith('/')) {
    if (path !== containerHome && !path.startsWith(`${containerHome}/`))
      return { problem: `the path is outside your home (${containerHome})` };
    rest = path.slice(containerHome.length);
  } else rest = `/${path}`;
  const components = rest.split('/').filter((c) => c !== '' && c !== '.');
  for (const component of components) {
    if (component === '..') return { problem: 'the path contains ..' };
    const problem = fileNameProblem(component);
    if (problem) return { problem: `"${escapeForTerminal(component)}": ${problem}` };
  }
  return { components, display: ['~', ...components].join('/') };
}

export function isHomePath(value: HomePath | { problem: string }): value is HomePath {
  return 'components' in value;
}

/** Joins a folder and a name into the path the user reads. */
export function joinHomePath(dir: HomePath, name: string): string {
  return [dir.display, name].join('/');
}

/**
 * Makes any text safe to show in a terminal or a log line: control characters (ESC sequences,
 * newlines, NUL, C1) become visible `\xNN` escapes, so a name can never move the cursor, retitle
 * the window or forge a second line.
 */
export function escapeForTerminal(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (ch === '\\') out += '\\\\';
    else if (isControl(code)) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}
