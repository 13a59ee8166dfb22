/**
 * The fake driver is held to the same SandboxDriver contract as the Docker driver (the shared
 * suite in tests/integration/sandbox/driver-contract.ts): the security rig, the usage quota, the
 * socket cap and the A06 cut-off are tested on it, so it must behave as a real backend does in
 * everything but running programs. Two drivers on one FakeSandboxBackend stand for two servers
 * (or a restarted one) on one engine.
 */
import { describeSandboxDriverContract } from '../../../integration/sandbox/driver-contract.js';
import { DEFAULT_LIMITS } from '../../../../sandbox/environment-image.js';
import { FakeSandboxBackend, FakeSandboxDriver } from './fake-sandbox-driver.js';

const backend = new FakeSandboxBackend();

describeSandboxDriverContract('fake', {
  createDriver: () => new FakeSandboxDriver(backend),
  specFor: (key, limits = {}) => ({
    ...key,
    image: 'cove/sandbox:fake',
    limits: { ...DEFAULT_LIMITS, ...limits },
    env: { COVE_USER: 'test', COVE_REGION: key.region },
  }),
  ownerPrefix: 'fake-',
  runsCommands: false,
});
