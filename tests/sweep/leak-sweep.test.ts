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
 * A sweep that saw nothing proves nothing: before it says "no leaks" it checks that the run
 * recorded logs from many apps, error bodies, container snapshots, and secrets of every kind
 * (session cookies, TOTP secrets, presigned signatures, AWS keys and session tokens). A run with
 * earlier groups filtered out sets TEST_LEAK_SWEEP_PARTIAL=1 to sweep what little was recorded.
 * GNU grep -F holds thousands of secrets against megabytes of logs in a second.
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

/**
 * What a full run records at the least (a full run records far more: ~100 apps' logs, hundreds of
 * secrets). Fewer means the recording broke, and "no leaks" would be an empty claim.
 */
const MIN_EVIDENCE = { logs: 20, bodies: 5, snapshots: 5 } as const;
const EVERY_KIND: readonly SecretKind[] = [
  'aws-access-key-id',
  'aws-secret-access-key',
  'aws-session-token',
  'session-cookie',
  'totp-secret',
  'presigned-signature',
  'scim-token',
];

/** What is missing from the record for the sweep's "no leaks" to mean something; empty when enough. */
export function missingEvidence(
  counts: Readonly<Record<string, number>>,
  secrets: ReadonlyMap<string, SecretKind>,
): string[] {
  const missing: string[] = [];
  for (const [dir, least] of Object.entries(MIN_EVIDENCE))
    if ((counts[dir] ?? 0) < least) missing.push(`${dir}: ${counts[dir] ?? 0} files (at least ${least})`);
  const kinds = new Set(secrets.values());
  for (const kind of EVERY_KIND) if (!kinds.has(kind)) missing.push(`no recorded ${kind}`);
  return missing;
}

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
    if (process.env.TEST_LEAK_SWEEP_PARTIAL !== '1')
      expect(
        missingEvidence(counts, secrets),
        'the run recorded too little for "no leaks" to mean anything (a filtered run: set TEST_LEAK_SWEEP_PARTIAL=1)',
      ).toEqual([]);
    expect(
      findings.map((f) => `${f.where} ${f.what}`),
      `leaks (record directory ${root}; run with TEST_LEAK_RECORD_KEEP=1 to keep it)`,
    ).toEqual([]);
  });

  it('R02 the evidence check refuses a record without logs, bodies, snapshots or a kind of secret', () => {
    const full = { logs: 40, bodies: 9, snapshots: 12, secrets: 3 };
    const all = new Map<string, SecretKind>(EVERY_KIND.map((kind, i) => [`secret-${i}-xxxxxxxx`, kind]));
    expect(missingEvidence(full, all)).toEqual([]);
    expect(missingEvidence({ ...full, logs: 3 }, all)).toEqual(['logs: 3 files (at least 20)']);
    expect(missingEvidence({}, new Map())).toHaveLength(3 + EVERY_KIND.length);
    const noTotp = new Map([...all].filter(([, kind]) => kind !== 'totp-secret'));
    expect(missingEvidence(full, noTotp)).toEqual(['no recorded totp-secret']);
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
