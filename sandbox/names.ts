/**
 * Container names and labels derived from immutable ids, in the style of KubeSpawner's slugs:
 * an id that is already a safe slug is used as is; anything else becomes a readable stripped
 * prefix plus `---` plus a hash of the original. A safe slug never contains `--`, so a hashed
 * slug can never equal a safe one, and two different ids only meet on a hash collision.
 */
import { createHash } from 'node:crypto';

import type { EnvironmentKey } from './sandbox-driver.js';

export const LABEL_MANAGED = 'cove.managed';
export const LABEL_OWNER = 'cove.owner';
export const LABEL_REGION = 'cove.region';
export const LABEL_SPEC_HASH = 'cove.spec-hash';

export const CONTAINER_NAME_PREFIX = 'cove-env-';
/** Docker label filter selecting every container this library manages. */
export const MANAGED_LABEL_FILTER = `${LABEL_MANAGED}=true`;

const SAFE_SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const HASH_HEX_CHARS = 10;

/**
 * A slug made only of `[a-z0-9-]`, at most `maxLength` characters, stable for a given input and
 * distinct for distinct inputs (up to a 40-bit hash collision on the hashed form).
 */
export function safeSlug(value: string, maxLength = 63): string {
  if (value.length <= maxLength && SAFE_SLUG.test(value)) {
    return value;
  }
  const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, HASH_HEX_CHARS);
  const keep = Math.max(1, maxLength - HASH_HEX_CHARS - 3);
  const stripped =
    value
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+/, '')
      .slice(0, keep)
      .replace(/-+$/, '') || 'x';
  return `${stripped}---${hash}`;
}

/**
 * `cove-env-<region>_<owner>`. The `_` separator is not `-` on purpose: slugs contain dashes, so
 * `eu-west` + `1-x` and `eu-west-1` + `x` would otherwise give the same name.
 */
export function containerName(key: EnvironmentKey): string {
  return `${CONTAINER_NAME_PREFIX}${safeSlug(key.region, 40)}_${safeSlug(key.ownerId, 63)}`;
}

/** Labels are the source of truth after a restart: they hold the raw ids, not the slugs. */
export function containerLabels(key: EnvironmentKey, specHash: string): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_OWNER]: key.ownerId,
    [LABEL_REGION]: key.region,
    [LABEL_SPEC_HASH]: specHash,
  };
}

/** The key a managed container belongs to, or undefined when its labels are not ours. */
export function keyFromLabels(
  labels: Readonly<Record<string, string>> | undefined,
): EnvironmentKey | undefined {
  if (!labels || labels[LABEL_MANAGED] !== 'true') {
    return undefined;
  }
  const ownerId = labels[LABEL_OWNER];
  const region = labels[LABEL_REGION];
  if (ownerId === undefined || region === undefined) {
    return undefined;
  }
  return { ownerId, region };
}
