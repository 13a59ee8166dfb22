// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** Layers the compiler enforces are enforced here too, with a message that says why. */
const zones = [
  {
    target: './server/protocol',
    from: ['./server', './sandbox', './web', './tests'],
    except: ['./protocol'],
    message: 'server/protocol is pure: it imports nothing of ours.',
  },
  {
    target: './sandbox',
    from: ['./server', './web', './tests'],
    message: 'sandbox never imports server/ or web/.',
  },
  {
    target: './web',
    from: ['./sandbox', './tests'],
    message: 'web/ may import only web/ and server/protocol.',
  },
  { target: './server', from: ['./web', './tests'], message: 'server/ never imports web/ or tests/.' },
];

/** Nothing outside web/ imports the front end. */
const noWebImports = { group: ['**/web/**'], message: 'Nothing outside web/ imports the front end.' };

/**
 * The server sees the sandbox package only through its public surface, so a backend's files
 * (sandbox/docker/, ...) can change or be added without touching the server.
 */
const sandboxIndexOnly = {
  group: ['**/sandbox/**', '!**/sandbox/index.js', 'dockerode'],
  message: 'server/ imports the sandbox package only through sandbox/index.js (and never dockerode).',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          noWarnOnMultipleProjects: true,
          project: [
            'server/tsconfig.json',
            'sandbox/tsconfig.json',
            'server/protocol/tsconfig.json',
            'web/tsconfig.json',
            'tests/tsconfig.json',
          ],
        }),
      ],
    },
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones }],
      'no-restricted-imports': ['error', { patterns: [noWebImports] }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    // tests/unit/web mirrors web/: unit tests of the front end's pure logic.
    files: ['web/**/*.ts', 'tests/unit/web/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['server/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noWebImports, sandboxIndexOnly] }] },
  },
  {
    files: ['server/**/*.ts'],
    ignores: ['server/config.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'process.env is read only in server/config.ts.' },
      ],
    },
  },
  {
    files: ['tests/**/*.ts', 'scripts/**/*.{js,ts,mjs}', 'server/main.ts'],
    rules: { 'no-console': 'off' },
  },
);
