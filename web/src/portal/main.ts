/** The access portal: entry point. */
import '../lib/style.css';
import { mountHeader } from '../lib/header.js';
import { PortalPage } from './portal-page.js';

const root = document.getElementById('app') as HTMLElement;
void mountHeader('portal').then((me) => new PortalPage(root, me).load());
