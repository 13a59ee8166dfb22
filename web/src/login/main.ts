/** The sign-in page: entry point. */
import '../lib/style.css';
import { LoginFlow } from './login-flow.js';

const params = new URLSearchParams(location.search);
void new LoginFlow(document.getElementById('app') as HTMLElement, {
  next: params.get('next'),
  invite: params.get('invite'),
  signedOut: params.has('signed-out'),
}).start();
// Said once: a reload or a bookmark of this page is a plain sign-in page.
if (params.has('signed-out')) history.replaceState(null, '', '/login');
