/**
 * R02, once, after every other group (vitest project `sweep`, groupOrder 4): greps everything the
 * run recorded (tests/helpers/leak-record.ts) — every test server's log lines, the HTTP error
 * bodies they sent, `docker inspect` of their containers and execs plus the files in those
 * homes, taken as each harness closed — and every Cove container still present now, for every
 * secret the run handed out (AWS keys the local STS issued, session cookies, TOTP secrets,
 * presigned signatures and security tokens) and for the shapes that must never show (AWS key
 * ids, `aws_secret_access_key = …`, presigned signatures, `otpauth://` URIs, session cookies,
 * stack traces in error bodies). A finding names the file, line and kind, never the secret.
 *
 * When earlier groups were filtered out, it checks what was recorded (possibly only the live
 * containers). GNU grep -F holds thousands of secrets against megabytes of logs in a second.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { leakRecord, RECORD_DIRS, type SecretKind } from '../helpers/leak-record.js';

const run = promisify(execFile);

/** Shapes that are leaks wherever they show, with a value after them (redacted forms don't match). */
const PATTERNS: readonly { readonly kind: string; readonly regex: string }[] = [
  { kind: 'AWS key id', regex: '\\b(AKIA|ASIA)[A-Z0-9]{16}\\b' },
  {
    kind: 'aws_secret_access_key value',
    regex: 'aws_secret_access_key[[:space:]]*=[[:space:]]*[A-Za-z0-9/+]{8}',
  },
  { kind: 'presigned signature', regex: 'X-Amz-Signature=[0-9a-f]{16}' },
  { kind: 'presigned security token', regex: 'X-Amz-Security-Token=[A-Za-z0-9%]{16}' },
  { kind: 'TOTP URI with secret', regex: 'otpauth://[^[:space:]"]*secret=[A-Z2-7]{8}' },
  { kind: 'session cookie', regex: '(__Host-)?cove_session=[A-Za-z0-9_-]{16}' },
];
/** A Node stack frame or a serialized `stack`, in an HTTP error body. */
const STACK_TRACE = /(?:\n|\\n)\s+at [^\n]*?:\d+:\d+|"stack"\s*:/;

interface Finding {
  readonly where: string;
  readonly what: string;
}

const fingerprint = (secret: string): string =>
  createHash('sha256').update(secret).digest('hex').slice(0, 12);

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

function readSecrets(root: string): Map<string, SecretKind> {
  const secrets = new Map<string, SecretKind>();
  for (const file of filesUnder(join(root, RECORD_DIRS.secrets)))
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0) secrets.set(line.slice(tab + 1), line.slice(0, tab) as SecretKind);
    }
  return secrets;
}

/**
 * `grep -o` over the files; each hit as `file:line:match`. Exit 1 is "nothing found". The matches
 * stay in this process: findings carry only where and what kind.
 */
async function grep(args: readonly string[], files: readonly string[]): Promise<[string, string, string][]> {
  if (files.length === 0) return [];
  try {
    const { stdout } = await run('grep', ['-o', '-a', '-n', '-H', ...args, '--', ...files], {
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [file, lineNo, ...rest] = line.split(':');
        return [file ?? '', lineNo ?? '', rest.join(':')];
      });
  } catch (error) {
    if ((error as { code?: number }).code === 1) return [];
    throw error;
  }
}

/** Greps the record directory (and anything put in `extra`) for the secrets and the patterns. */
async function sweep(root: string, secrets: ReadonlyMap<string, SecretKind>): Promise<Finding[]> {
  const evidence = [RECORD_DIRS.logs, RECORD_DIRS.bodies, RECORD_DIRS.snapshots].flatMap((dir) =>
    filesUnder(join(root, dir)),
  );
  const findings: Finding[] = [];
  const where = (file: string, line: string) => `${relative(root, file)}:${line}`;

  const patternFile = join(root, 'sweep-secrets.txt');
  writeFileSync(patternFile, [...secrets.keys()].join('\n') + '\n', { mode: 0o600 });
  if (secrets.size > 0)
    for (const [file, line, match] of await grep(['-F', '-f', patternFile], evidence))
      findings.push({
        where: where(file, line),
        what: `${secrets.get(match) ?? 'recorded secret'} (sha256 ${fingerprint(match)}…)`,
      });

  for (const pattern of PATTERNS)
    for (const [file, line] of await grep(['-E', '-e', pattern.regex], evidence))
      findings.push({ where: where(file, line), what: pattern.kind });

  for (const file of filesUnder(join(root, RECORD_DIRS.bodies)))
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, index) => {
        if (!line) return;
        const { status, method, route, body } = JSON.parse(line) as Record<string, string>;
        if (STACK_TRACE.test(body ?? ''))
          findings.push({
            where: where(file, String(index + 1)),
            what: `stack trace in a ${status} body (${method} ${route})`,
          });
      });
  // One line per place and kind: a leaky log line repeated a thousand times is one finding.
  return [...new Map(findings.map((f) => [`${f.where} ${f.what}`, f])).values()];
}

describe('R02 one sweep after the whole suite', () => {
  it('R02 no secret the run handed out, key id, presigned signature, TOTP URI or cookie in any log, inspect, home or error body; no stack trace in error bodies', async () => {
    const root = leakRecord.dir();
    expect(root, 'the globalSetup (tests/setup/leak-record-dir.ts) made no record directory').toBeDefined();
    if (!root) return;

    // Containers still present now: any run's inspect, and the homes of this run's.
    const dataDirs = filesUnder(join(root, RECORD_DIRS.dataDirs)).flatMap((file) =>
      readFileSync(file, 'utf8').split('\n').filter(Boolean),
    );
    const live = await leakRecord.snapshotAllContainers('sweep-live', dataDirs);

    const secrets = readSecrets(root);
    const findings = await sweep(root, secrets);
    const counts = Object.fromEntries(
      Object.values(RECORD_DIRS).map((dir) => [dir, filesUnder(join(root, dir)).length]),
    );
    const snapshotMs = filesUnder(join(root, RECORD_DIRS.snapshots))
      .flatMap((file) => [...readFileSync(file, 'latin1').matchAll(/^== snapshot took (\d+) ms$/gm)])
      .reduce((sum, m) => sum + Number(m[1]), 0);
    console.log(
      `R02 sweep: ${secrets.size} recorded secrets; files: ${JSON.stringify(counts)}; ` +
        `live Cove containers: ${live}; container snapshots took ${snapshotMs} ms in all`,
    );
    expect(
      findings.map((f) => `${f.where} ${f.what}`),
      `leaks (record directory ${root}; run with TEST_LEAK_RECORD_KEEP=1 to keep it)`,
    ).toEqual([]);
  });

  it('R02 the sweep finds a planted secret, a key id and a stack trace (the grep itself works)', async () => {
    const root = leakRecord.dir();
    if (!root) throw new Error('no record directory');
    const scratch = join(root, 'self-check');
    for (const dir of [RECORD_DIRS.logs, RECORD_DIRS.bodies])
      mkdirSync(join(scratch, dir), { recursive: true });
    const planted = `planted-${Math.random().toString(36).slice(2)}-secret`;
    writeFileSync(join(scratch, RECORD_DIRS.logs, 'x.log'), `{"msg":"ok"}\n{"msg":"oops ${planted}"}\n`);
    writeFileSync(
      join(scratch, RECORD_DIRS.bodies, 'x.jsonl'),
      `${JSON.stringify({ status: 500, method: 'GET', route: '/x', body: 'Error: x\n    at f (/srv/a.js:1:2)' })}\n` +
        `${JSON.stringify({ status: 403, method: 'GET', route: '/y', body: 'key ASIAABCDEFGHIJKLMNOP' })}\n`,
    );
    const findings = await sweep(scratch, new Map([[planted, 'session-cookie']]));
    expect(findings.map((f) => f.what).sort()).toEqual([
      'AWS key id',
      `session-cookie (sha256 ${fingerprint(planted)}…)`,
      'stack trace in a 500 body (GET /x)',
    ]);
    expect(findings.find((f) => f.what.startsWith('session-cookie'))?.where).toBe('logs/x.log:2');
    expect(JSON.stringify(findings)).not.toContain(planted);
  });
});
