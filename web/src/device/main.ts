/** The "Authorize request" page for `aws sso login`: entry point. */
import '../lib/style.css';
import { mountHeader } from '../lib/header.js';
import { DevicePage } from './device-page.js';

const root = document.getElementById('app') as HTMLElement;
void mountHeader('portal').then((me) => new DevicePage(root, me).load());
