import { defineConfig } from 'vitest/config';

// Fast unit tests with fakes, integration tests against real services (Docker, SQLite files, S3
// on loopback), browser tests in a real Chromium, and fault tests that restart the Cove server or
// the Docker engine. Each project is its own group (groupOrder), run one after another; the
// Docker-backed ones run one file at a time, and the fault tests last, since they disturb the rest.
// Then one sweep (R02) greps what every earlier group recorded (tests/helpers/leak-record.ts) for
// leaked secrets; the globalSetup makes the run's record directory, record-every-app.ts has every
// app a test builds record what it sends and logs.
/** App tests without containers, run a second time on PostgreSQL (project `integration-pg`). */
const postgresAppTests = [
  'tests/integration/server/auth/*.test.ts',
  'tests/integration/server/directory/*.test.ts',
  'tests/integration/server/metrics/*.test.ts',
  'tests/integration/server/sso/*.test.ts',
  'tests/integration/server/scim/scim-provisioning.test.ts',
  'tests/integration/server/scim/scim-oidc-sign-in.test.ts',
  'tests/security/access-enumeration.test.ts',
  'tests/security/admin-api.test.ts',
  'tests/security/auth-mfa.test.ts',
  'tests/security/auth-session.test.ts',
  'tests/security/auth-throttle.test.ts',
  'tests/security/csrf-matrix.test.ts',
  'tests/security/forwarded-for.test.ts',
  'tests/security/lookalike-names.test.ts',
  'tests/security/metrics-exposure.test.ts',
  'tests/security/oidc-attacks.test.ts',
  'tests/security/sso-api.test.ts',
  'tests/security/scim.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['tests/setup/leak-record-dir.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['tests/setup/loopback-aws.ts', 'tests/setup/record-every-app.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts', 'tests/security/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['tests/setup/loopback-aws.ts', 'tests/setup/record-every-app.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // The app tests that do not need a container, again on PostgreSQL: each app gets a fresh
          // database of the run's throwaway server (tests/helpers/test-store.ts). The store
          // contract itself runs on both in the integration project.
          name: 'integration-pg',
          include: postgresAppTests,
          environment: 'node',
          globalSetup: ['tests/setup/postgres-global.ts'],
          setupFiles: ['tests/setup/loopback-aws.ts', 'tests/setup/record-every-app.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['tests/setup/loopback-aws.ts', 'tests/setup/record-every-app.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
      {
        test: {
          name: 'faults',
          include: ['tests/faults/**/*.test.ts'],
          environment: 'node',
          // The Cove process's error bodies, for the R02 sweep (in-process servers record their own).
          setupFiles: ['tests/setup/loopback-aws.ts', 'tests/setup/record-fetch-errors.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { groupOrder: 4 },
        },
      },
      {
        test: {
          name: 'sweep',
          include: ['tests/sweep/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['tests/setup/loopback-aws.ts'],
          testTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 5 },
        },
      },
    ],
  },
});
