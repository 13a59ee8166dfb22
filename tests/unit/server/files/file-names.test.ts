import { describe, expect, it } from 'vitest';
import {
  escapeForTerminal,
  fileNameProblem,
  isHomePath,
  parseHomePath,
} from '../../../../server/files/file-names.js';

describe('fileNameProblem', () => {
  it.each([
    ['data.csv', undefined],
    ['résumé final (2).pdf', undefined],
    ['..\\..\\x', undefined],
    // Names travel in a JSON body and nothing URL-decodes them: `%2f` is two plain characters.
    ['..%2f..%2fx', undefined],
    ['..%2F..%2Fx', undefined],
    ['.bashrc', undefined],
    ['a'.repeat(255), undefined],
    ['é'.repeat(127), undefined],
    ['', 'the name is empty'],
    ['.', 'the name is "."'],
    ['..', 'the name is ".."'],
    ['../../etc/passwd', 'the name contains /'],
    ['/etc/shadow', 'the name contains /'],
    ['a\u0000b', 'the name contains a NUL character'],
    ['line\nbreak', 'the name contains a control character (such as a newline or ESC)'],
    ['x\u001b]0;pwn\u0007', 'the name contains a control character (such as a newline or ESC)'],
    ['del\u007f', 'the name contains a control character (such as a newline or ESC)'],
    ['csi\u009b', 'the name contains a control character (such as a newline or ESC)'],
    ['a'.repeat(256), 'the name is longer than 255 bytes'],
    ['é'.repeat(150), 'the name is longer than 255 bytes'],
    ['bad\ud800', 'the name is not valid Unicode'],
  ])('H01 %j → %s', (name, problem) => {
    expect(fileNameProblem(name)).toBe(problem);
  });
});

describe('parseHomePath', () => {
  it.each([
    ['~', '~'],
    ['~/', '~'],
    ['~/a/b', '~/a/b'],
    ['a/b', '~/a/b'],
    ['./a//b/.', '~/a/b'],
    ['/home/cloudshell-user', '~'],
    ['/home/cloudshell-user/x.txt', '~/x.txt'],
    ['~/..%2f..%2fx', '~/..%2f..%2fx'],
    ['~/%2e%2e/x', '~/%2e%2e/x'],
  ])('H01 %j → %s', (path, display) => {
    const parsed = parseHomePath(path);
    expect(isHomePath(parsed) ? parsed.display : parsed.problem).toBe(display);
  });

  it.each([
    ['', 'the path is empty'],
    ['~/../x', 'the path contains ..'],
    ['..', 'the path contains ..'],
    ['/etc/passwd', 'the path is outside your home (/home/cloudshell-user)'],
    ['/home/cloudshell-userx/a', 'the path is outside your home (/home/cloudshell-user)'],
    ['~/a\u0000b', 'the path contains a NUL character'],
    ['~/x\u001b[2J', '"x\\x1b[2J": the name contains a control character (such as a newline or ESC)'],
  ])('H01 %j is refused: %s', (path, problem) => {
    const parsed = parseHomePath(path);
    expect(isHomePath(parsed) ? parsed.display : parsed.problem).toBe(problem);
  });
});

describe('escapeForTerminal', () => {
  it.each([
    ['plain name.txt', 'plain name.txt'],
    ['x\u001b]0;pwn\u0007', 'x\\x1b]0;pwn\\x07'],
    ['two\nlines\r', 'two\\x0alines\\x0d'],
    ['back\\slash', 'back\\\\slash'],
    ['c1\u009b31m', 'c1\\x9b31m'],
    ['日本語', '日本語'],
  ])('H01 %j → %j', (text, escaped) => {
    expect(escapeForTerminal(text)).toBe(escaped);
  });
});
