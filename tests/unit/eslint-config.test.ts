// The layer rule in eslint.config.js, proved on fixtures: server code that reaches past
// sandbox/index.js (or for dockerode) fails the lint; the same code through the index passes.
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Only the rule under test: the full config would also resolve every import for no-cycle.
const eslint = new ESLint({ cwd: root, ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports' });

async function restrictedImports(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${filePath}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('eslint: server/ sees the sandbox package only through its index', () => {
  it('fails server code importing a backend file, the contract file directly, or dockerode', async () => {
    for (const specifier of [
      '../../sandbox/docker/docker-sandbox-driver.js',
      '../../sandbox/sandbox-driver.js',
      '../../sandbox/holder/holder-protocol.js',
      'dockerode',
    ]) {
      const messages = await restrictedImports(
        `import type { X } from '${specifier}';\nexport type Y = X;\n`,
        'server/environments/fixture.ts',
      );
      expect(messages, specifier).toEqual([
        expect.stringMatching(/^no-restricted-imports: .*only through sandbox\/index\.js/),
      ]);
    }
  }, 30_000);

  it('passes server code importing the index, and leaves tests free to import internals', async () => {
    expect(
      await restrictedImports(
        "import { createDriver } from '../../sandbox/index.js';\nexport const make = createDriver;\n",
        'server/environments/fixture.ts',
      ),
    ).toEqual([]);
    expect(
      await restrictedImports(
        "import { buildContainerSpec } from '../../../sandbox/docker/container-spec.js';\nexport const b = buildContainerSpec;\n",
        'tests/unit/sandbox/fixture.ts',
      ),
    ).toEqual([]);
  }, 30_000);
});
