/**
 * The one check every route with a region in it makes: the region must be configured, and a
 * wrong one gets the list of those that are (H05: never a container, never an STS call).
 */
import type { Config } from './config.js';
import { errors } from './errors.js';

/** Throws a 400 naming the configured regions unless `region` is one of them. */
export function regionGuard(config: Pick<Config, 'regions'>): (region: string) => void {
  const regionIds = config.regions.map((r) => r.id);
  return (region) => {
    if (!regionIds.includes(region))
      throw errors.badRequest(
        `There is no region "${region.slice(0, 64)}". Use one of: ${regionIds.join(', ')}.`,
        { regions: regionIds },
      );
  };
}
