/**
 * The top bar every signed-in page shows: Cove, where you are, the user's name, Admin for
 * administrators, and Sign out.
 */
import type { LogoutResponse, Me } from '../../../server/protocol/api.js';
import { getJson, postJson } from './api.js';
import { h } from './dom.js';

export type HeaderSection = 'portal' | 'admin' | 'shell';

export async function signOut(): Promise<void> {
  let next = '/login?signed-out=1';
  try {
    const answer = await postJson<LogoutResponse>('/api/auth/logout', {}, { redirectOnAuth: false });
    // Signed in through an identity provider: sign out there too; it sends the browser back.
    if (answer.logoutUrl) next = answer.logoutUrl;
  } finally {
    // Whatever the server said, the user asked to leave: show the sign-in page, which says so.
    location.assign(next);
  }
}

export function renderHeader(me: Me, section: HeaderSection = 'portal'): HTMLElement {
  const link = (href: string, label: string, current: boolean) =>
    h('a', { href, class: 'topbar-link', 'aria-current': current ? 'page' : null }, label);
  const signOutButton = h(
    'button',
    { type: 'button', class: 'topbar-button', 'data-testid': 'sign-out' },
    'Sign out',
  );
  signOutButton.addEventListener('click', () => {
    signOutButton.disabled = true;
    void signOut();
  });
  return h(
    'header',
    { class: 'topbar', role: 'banner' },
    h(
      'a',
      { href: '/', class: 'topbar-brand', 'aria-label': 'Cove portal' },
      h('span', { class: 'topbar-logo', 'aria-hidden': 'true' }, '◆'),
      h('span', { class: 'topbar-brand-name' }, 'Cove'),
    ),
    h(
      'nav',
      { class: 'topbar-nav', 'aria-label': 'Main' },
      link('/', 'Portal', section === 'portal'),
      me.isAdmin ? link('/admin', 'Admin', section === 'admin') : null,
    ),
    h(
      'div',
      { class: 'topbar-user' },
      h(
        'span',
        { class: 'topbar-username', 'data-testid': 'current-user', title: `Signed in as ${me.username}` },
        me.username,
      ),
      signOutButton,
    ),
  );
}

/** Loads the signed-in user (redirecting to sign-in when there is none) and puts the bar on top. */
export async function mountHeader(section: HeaderSection = 'portal'): Promise<Me> {
  const me = await getJson<Me>('/api/me');
  document.body.prepend(renderHeader(me, section));
  return me;
}
