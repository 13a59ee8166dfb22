/**
 * Just enough of a browser for redirect-based sign-in tests over real HTTP: a cookie jar (by
 * host and path, like a browser: ports do not separate cookies), manual redirects so a test
 * can stop at any hop, and form posts.
 */
export interface Page {
  readonly url: string;
  readonly status: number;
  readonly body: string;
  readonly location: string | undefined;
  readonly headers: Headers;
}

interface StoredCookie {
  readonly value: string;
  readonly path: string;
}

export class CookieJarBrowser {
  /** host → "name path" → cookie */
  private readonly cookies = new Map<string, Map<string, StoredCookie & { name: string }>>();

  cookie(host: string, name: string): string | undefined {
    for (const c of this.cookies.get(host)?.values() ?? []) if (c.name === name) return c.value;
    return undefined;
  }

  setCookie(host: string, name: string, value: string, path = '/'): void {
    const jar = this.cookies.get(host) ?? new Map<string, StoredCookie & { name: string }>();
    this.cookies.set(host, jar);
    jar.set(`${name} ${path}`, { name, value, path });
  }

  /** A copy of this browser's cookies, as another tab of an attacker who stole them would have. */
  clone(): CookieJarBrowser {
    const copy = new CookieJarBrowser();
    for (const [host, jar] of this.cookies)
      for (const c of jar.values()) copy.setCookie(host, c.name, c.value, c.path);
    return copy;
  }

  private header(url: URL): string {
    const jar = this.cookies.get(url.hostname);
    if (!jar) return '';
    return [...jar.values()]
      .filter(
        (c) =>
          url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key = '', val = ''] = attribute.split('=');
        if (key.toLowerCase() === 'path') path = val || '/';
        if (key.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
        if (key.toLowerCase() === 'expires' && Date.parse(val) <= Date.now()) expired = true;
      }
      const jar = this.cookies.get(url.hostname) ?? new Map<string, StoredCookie & { name: string }>();
      this.cookies.set(url.hostname, jar);
      if (expired) jar.delete(`${name} ${path}`);
      else jar.set(`${name} ${path}`, { name, value, path });
    }
  }

  async request(url: string, init: { method?: string; form?: URLSearchParams } = {}): Promise<Page> {
    const target = new URL(url);
    const headers: Record<string, string> = {};
    const cookie = this.header(target);
    if (cookie) headers.cookie = cookie;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = target.origin;
    }
    const response = await fetch(target, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      headers,
      redirect: 'manual',
      ...(init.form ? { body: init.form.toString() } : {}),
    });
    this.store(target, response.headers.getSetCookie());
    const location = response.headers.get('location') ?? undefined;
    return {
      url: target.href,
      status: response.status,
      body: await response.text(),
      location: location === undefined ? undefined : new URL(location, target).href,
      headers: response.headers,
    };
  }

  /**
   * Follows redirects from `url` until a page that is not a redirect, or until `stopAt` says
   * the next hop should not be taken (its URL is then in `location`).
   */
  async navigate(
    url: string,
    options: { form?: URLSearchParams; stopAt?: (next: string) => boolean } = {},
  ): Promise<Page> {
    let page = await this.request(url, options.form ? { form: options.form } : {});
    for (let hops = 0; page.location && page.status >= 300 && page.status < 400; hops++) {
      if (hops > 20) throw new Error(`too many redirects from ${url}`);
      if (options.stopAt?.(page.location)) return page;
      page = await this.request(page.location);
    }
    return page;
  }
}

/** The `action` of the first form on a page, resolved against the page's URL. */
export function formAction(page: Page): string {
  const match = /<form[^>]*action="([^"]+)"/.exec(page.body);
  if (!match?.[1])
    throw new Error(`no form on ${page.url} (HTTP ${page.status}): ${page.body.slice(0, 200)}`);
  return new URL(match[1].replaceAll('&amp;', '&'), page.url).href;
}
