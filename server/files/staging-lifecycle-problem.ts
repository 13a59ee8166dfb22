/**
 * Whether a bucket's lifecycle rules expire Cove's staging objects and abandoned multipart
 * uploads, as a second line behind Cove's own staging sweep (which is what must work: a rule is
 * advice, never a requirement).
 */
import type { LifecycleRule } from '@aws-sdk/client-s3';

const dayS = 86_400;

/** The most days a rule may wait: S3 counts whole days, so a retention of 25 h allows 2. */
export function maxLifecycleDays(retentionS: number): number {
  return Math.max(1, Math.ceil(retentionS / dayS));
}

/** The rule Cove recommends, as `aws s3api put-bucket-lifecycle-configuration` takes it. */
export function requiredLifecycleRule(prefix: string, retentionS: number): LifecycleRule {
  const days = maxLifecycleDays(retentionS);
  return {
    ID: 'cove-staging-expiry',
    Filter: { Prefix: prefix },
    Status: 'Enabled',
    Expiration: { Days: days },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: days },
  };
}

/**
 * Whether the rule applies to every staged object. Cove tags nothing and stages empty files too,
 * so a tag or size condition leaves some staged objects out.
 */
function coversPrefix(rule: LifecycleRule, prefix: string): boolean {
  const filter = rule.Filter;
  const and = filter?.And;
  if (filter?.Tag || (and?.Tags?.length ?? 0) > 0) return false;
  const sizeConditions = [
    filter?.ObjectSizeGreaterThan,
    filter?.ObjectSizeLessThan,
    and?.ObjectSizeGreaterThan,
    and?.ObjectSizeLessThan,
  ];
  if (sizeConditions.some((n) => n !== undefined)) return false;
  // `rule.Prefix` is the pre-2019 form without a Filter, which S3 still returns for old rules.
  const rulePrefix = filter?.Prefix ?? and?.Prefix ?? rule.Prefix ?? '';
  return prefix.startsWith(rulePrefix);
}

function name(rule: LifecycleRule): string {
  return rule.ID ? `"${rule.ID}"` : '(no ID)';
}

/**
 * What the rules miss for objects under `prefix` to go within the retention, or undefined when
 * the enabled rules covering the prefix expire objects and abort incomplete multipart uploads in
 * time (one rule or two: S3 applies every matching rule).
 */
export function stagingLifecycleProblem(
  rules: readonly LifecycleRule[],
  prefix: string,
  retentionS: number,
): string | undefined {
  const days = maxLifecycleDays(retentionS);
  const covering = rules.filter((r) => coversPrefix(r, prefix));
  const enabled = covering.filter((r) => r.Status === 'Enabled');
  if (enabled.length === 0) {
    const disabled = covering.map(name);
    return disabled.length > 0
      ? `the lifecycle rule ${disabled.join(', ')} covering "${prefix}" is disabled`
      : `no lifecycle rule covers the staging prefix "${prefix}"`;
  }
  const problems: string[] = [];
  const expiring = enabled.filter((r) => r.Expiration?.Days !== undefined);
  if (!expiring.some((r) => (r.Expiration?.Days ?? Infinity) <= days)) {
    const found = expiring.map((r) => `${name(r)} after ${r.Expiration?.Days} days`).join(', ');
    problems.push(
      `no enabled lifecycle rule covering "${prefix}" expires objects within ${days} day${days === 1 ? '' : 's'}${found ? ` (found: ${found})` : ''}`,
    );
  }
  const aborting = enabled.filter((r) => r.AbortIncompleteMultipartUpload?.DaysAfterInitiation !== undefined);
  if (!aborting.some((r) => (r.AbortIncompleteMultipartUpload?.DaysAfterInitiation ?? Infinity) <= days)) {
    const found = aborting
      .map((r) => `${name(r)} after ${r.AbortIncompleteMultipartUpload?.DaysAfterInitiation} days`)
      .join(', ');
    problems.push(
      `no enabled lifecycle rule covering "${prefix}" aborts incomplete multipart uploads within ${days} day${days === 1 ? '' : 's'}${found ? ` (found: ${found})` : ''}`,
    );
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}
