/**
 * The admin console's word on what only an administrator can fix: when STS does not answer (or
 * refuses the server's own identity), every user's AWS credentials fail, so the console says
 * which endpoint, since when, and what to configure. Read from /readyz, which reports it.
 */
import type { ReadyzResponse, StsHealthView } from '../../../server/protocol/api.js';
import { formatTime, h, replaceChildren } from '../lib/dom.js';

const headlines: Partial<Record<StsHealthView['status'], string>> = {
  unreachable: 'AWS credentials are not working: STS does not answer',
  'no-identity': 'AWS credentials are not working: this server has no usable AWS identity',
  failing: 'AWS credentials are failing: STS answers with errors',
};

export class ServerHealth {
  readonly element = h('div', { 'data-testid': 'server-health' });

  async refresh(): Promise<void> {
    let body: ReadyzResponse;
    try {
      // 503 (another check failing) still carries the report.
      body = (await (
        await fetch('/readyz', { headers: { accept: 'application/json' } })
      ).json()) as ReadyzResponse;
    } catch {
      return;
    }
    replaceChildren(this.element, stsAlert(body.sts));
  }
}

function stsAlert(sts: StsHealthView | undefined): HTMLElement | null {
  const headline = sts ? headlines[sts.status] : undefined;
  if (!sts || !headline) return null;
  return h(
    'div',
    { class: sts.status === 'failing' ? 'alert alert-info' : 'alert alert-error', role: 'alert' },
    h('p', { style: 'margin:0 0 0.4rem' }, h('strong', null, headline)),
    h(
      'p',
      { style: 'margin:0 0 0.4rem' },
      `Endpoint: ${sts.endpoint}`,
      sts.since ? ` · since ${formatTime(sts.since)}` : null,
      sts.lastError ? ` · last error ${sts.lastError}` : null,
    ),
    sts.action ? h('p', { style: 'margin:0' }, sts.action) : null,
  );
}
