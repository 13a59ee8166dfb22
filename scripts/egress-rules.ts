/**
 * Installs (or with --check only checks) Cove's firewall rules for environments on this host,
 * from the same config the server reads (COVE_CONFIG, COVE_*), for a Cove that cannot manage the
 * host's firewall itself. (The docker-compose deployment needs none of this: its egress service
 * does it, see sandbox/docker/egress-helper.ts.) Run as root on the Docker host,
 * `npx tsx scripts/egress-rules.ts [--check]`. Exits 1 when rules are missing afterwards.
 */
import pino from 'pino';
import { loadConfig } from '../server/config.js';
import { sandboxGuardFor } from '../server/environments/sandbox-guard.js';

const checkOnly = process.argv.includes('--check');
const log = pino({ level: 'silent' });
const { config } = loadConfig();
const guard = sandboxGuardFor({ ...config, security: { ...config.security, egressPolicy: 'enforce' } }, log);
if (!checkOnly) await guard.init();
const ready = await guard.networkReady();
console.log(
  ready
    ? 'Cove firewall rules are in place.'
    : 'Cove firewall rules are NOT in place (see docs/hardening.md).',
);
process.exit(ready ? 0 : 1);
