/** The admin console: entry point. */
import '../lib/style.css';
import { mountHeader } from '../lib/header.js';
import { AdminPage } from './admin-page.js';

const root = document.getElementById('app') as HTMLElement;
void mountHeader('admin').then((me) => new AdminPage(root, me).start());
