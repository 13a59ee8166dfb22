/**
 * The confirmation card an "Open in Cove" link shows before anything happens: which region and
 * identity the shell gets, which repository is cloned into which folder, which command is typed
 * (shown with every hidden character as a marker). Confirm is the only way on; a link with a
 * refused repository or command shows why and offers no Confirm at all.
 */
import { errorMessage, getJson } from '../lib/api.js';
import { h, visibleName } from '../lib/dom.js';
import { commandPreview, commandProblem, type OpenLink } from './open-link.js';

export interface LinkPlan {
  readonly repository?: { readonly url: string; readonly folder: string };
  readonly cmd?: string;
}

export interface LinkCardOptions {
  readonly region: string;
  readonly identity: string;
  readonly link: OpenLink;
}

/** Asks the server what the link's repository would be; the card says why when it is refused. */
async function repositoryOf(git: string): Promise<{ url: string; folder: string } | { problem: string }> {
  try {
    return await getJson<{ url: string; folder: string }>(
      `/api/links/repository?${new URLSearchParams({ git })}`,
    );
  } catch (error) {
    return { problem: errorMessage(error) };
  }
}

/**
 * Shows the card in `parent` and resolves with the plan once the user confirms, or undefined when
 * they cancel (or the link is refused and they leave). The card removes itself.
 */
export async function confirmLink(
  parent: HTMLElement,
  options: LinkCardOptions,
): Promise<LinkPlan | undefined> {
  const { link } = options;
  const problems: string[] = [];
  let repository: { url: string; folder: string } | undefined;
  if (link.git !== undefined) {
    const answer = await repositoryOf(link.git);
    if ('problem' in answer) problems.push(answer.problem);
    else repository = answer;
  }
  const cmdProblem = link.cmd === undefined ? undefined : commandProblem(link.cmd);
  if (cmdProblem) problems.push(cmdProblem);

  const row = (label: string, ...value: (Node | string)[]) =>
    h('div', { class: 'link-card-row' }, h('dt', null, label), h('dd', null, ...value));
  const rows = h(
    'dl',
    { class: 'link-card-plan' },
    row('Region', options.region),
    row('Identity', options.identity),
    link.git === undefined
      ? null
      : repository
        ? row(
            'Clone',
            h('code', { 'data-testid': 'link-repository' }, visibleName(repository.url)),
            ' into ',
            h('code', { 'data-testid': 'link-folder' }, `~/${repository.folder}`),
            h('span', { class: 'link-card-note' }, ' (a folder that exists is used as it is, not updated)'),
          )
        : row(
            'Clone',
            h('code', { 'data-testid': 'link-repository' }, visibleName(commandPreview(link.git))),
          ),
    link.cmd === undefined
      ? null
      : row(
          'Type at the prompt',
          h(
            'code',
            { class: 'link-card-command', 'data-testid': 'link-command' },
            visibleName(commandPreview(link.cmd)),
          ),
        ),
  );
  const refused = problems.length > 0;
  const alert = refused
    ? h(
        'div',
        { class: 'alert alert-error', role: 'alert', 'data-testid': 'link-refused' },
        ...problems.map((problem) => h('p', null, problem)),
      )
    : null;
  const confirm = refused
    ? null
    : h(
        'button',
        { type: 'button', class: 'btn btn-primary', 'data-testid': 'link-confirm' },
        'Open the shell',
      );
  const cancel = h(
    'button',
    { type: 'button', class: refused ? 'btn btn-primary' : 'btn', 'data-testid': 'link-cancel' },
    refused ? 'Close' : 'Cancel',
  );
  const card = h(
    'section',
    { class: 'link-card', 'aria-labelledby': 'link-card-title', 'data-testid': 'link-card' },
    h('h2', { id: 'link-card-title' }, refused ? 'This link cannot be opened' : 'Open this shell?'),
    h(
      'p',
      null,
      refused
        ? 'A link opened this page, and Cove refused it:'
        : 'A link asks Cove to do the following. Nothing happens until you choose Open the shell.',
    ),
    alert,
    rows,
    link.cmd !== undefined && !refused
      ? h(
          'p',
          { class: 'link-card-note' },
          'The command is typed at the prompt but not run: read it, then press Enter yourself.',
        )
      : null,
    h('div', { class: 'link-card-actions' }, confirm, cancel),
  );
  parent.append(card);
  (confirm ?? cancel).focus();
  return new Promise((resolve) => {
    confirm?.addEventListener('click', () => {
      card.remove();
      resolve({
        ...(repository ? { repository } : {}),
        ...(link.cmd !== undefined ? { cmd: link.cmd } : {}),
      });
    });
    cancel.addEventListener('click', () => {
      card.remove();
      resolve(undefined);
    });
  });
}
