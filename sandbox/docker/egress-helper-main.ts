/**
 * The firewall helper's process (sandbox/docker/egress-helper.ts), run on the host's network with
 * CAP_NET_ADMIN by docker-compose.yml's `egress` service:
 *
 *   egress-helper-main.js serve [--socket PATH]   answer the server until SIGTERM
 *   egress-helper-main.js install                 once: put the rules in place, exit 1 if they are not
 *   egress-helper-main.js check                   once: only look, exit 1 if rules are missing
 *
 * `install` and `check` know no regions, so they install and check the rules every region shares
 * and leave region exceptions alone; the server adds its regions' exceptions through `serve`.
 * scripts/compose-up.sh runs `install` before it starts anything.
 */
import { ExecIptablesRunner } from './iptables.js';
import { hostEgressInput, IptablesEgressPolicy } from './egress-policy.js';
import { DEFAULT_HELPER_SOCKET, serveEgressHelper } from './egress-helper.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const runner = new ExecIptablesRunner();

async function once(install: boolean): Promise<number> {
  const policy = new IptablesEgressPolicy(hostEgressInput([]), runner);
  const before = await policy.check();
  let after = before;
  if (install && before.length > 0) {
    // What is still missing afterwards says more than iptables-restore's line number.
    await policy.install().catch((error: unknown) => out(`Installing failed: ${(error as Error).message}`));
    after = await policy.check();
  }
  if (after.length === 0) {
    out(
      before.length === 0
        ? "Cove's firewall rules for environments are in place (checked)."
        : `Cove's firewall rules for environments were missing (${before.length} problems) and are in place now.`,
    );
    return 0;
  }
  out("Cove's firewall rules for environments are NOT in place on this host:");
  for (const problem of after) out(`  - ${problem}`);
  return 1;
}

async function serve(socketPath: string): Promise<void> {
  const log = (event: string, details: Record<string, unknown>) =>
    out(JSON.stringify({ time: new Date().toISOString(), event, ...details }));
  const server = await serveEgressHelper({
    socketPath,
    policyFor: (regions) => new IptablesEgressPolicy(hostEgressInput(regions), runner),
    log,
  });
  log('listening', { socketPath });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const [command, ...rest] = process.argv.slice(2);
const socketAt = rest.indexOf('--socket');
const socketPath = socketAt >= 0 ? rest[socketAt + 1] : DEFAULT_HELPER_SOCKET;

try {
  if (command === 'serve' && socketPath) await serve(socketPath);
  else if (command === 'install' || command === 'check') process.exitCode = await once(command === 'install');
  else {
    process.stderr.write('usage: egress-helper-main.js serve [--socket PATH] | install | check\n');
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`Cove's firewall helper: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
