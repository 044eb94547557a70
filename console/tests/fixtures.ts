// What every browser test shares: the server's address and owner token, a small API client
// for setting the scene (and for changing things behind the browser's back), signing in as a
// person does, the accessibility check, screenshots, and a watch for CSP violations and
// uncaught errors, either of which fails the test.
import { test as base, expect, type Locator, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export { expect };
export const GOOD_KEY = 'good-key-123';
export const server = () => process.env.MODELREG_URL!;
export const ownerToken = () => process.env.MODELREG_TOKEN!;
export const fakeOpenAi = () => `${process.env.FAKE_PROVIDER_URL}/openai/v1`;

let n = 0;
/** A name no other test (or earlier run against the same server) uses. */
export function uniq(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${(n++).toString(36)}`;
}

export interface Reply {
  status: number;
  json: any;
  etag: string | null;
}

/** The API with a token, acting in `project` (on the shared test server, or on `base`). */
export class Api {
  constructor(
    readonly token: string,
    readonly project = 'default',
    readonly base?: string,
  ) {}

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await fetch(`${this.base ?? server()}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        'X-Project-ID': this.project,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null, etag: res.headers.get('etag') };
  }

  async create(body: Record<string, unknown>): Promise<any> {
    const r = await this.call('POST', '/assets/models', { credentials: { api_key: 'sk-test' }, litellm_model: 'openai/gpt-4o', ...body });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json;
  }

  /** A new token of `role` in `project` (a name of its own). */
  async mint(role: string, project: string): Promise<string> {
    const r = await this.call('POST', '/admin/tokens', { name: uniq(role), project, role });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json.token;
  }
}

export const owner = (project: string) => new Api(ownerToken(), project);

/** Signs in with `token` as a person does, and picks `project` in the header. */
export async function signIn(page: Page, token: string, project?: string, base = server()) {
  await page.goto(`${base}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
  if (project) await chooseProject(page, project);
}

export async function chooseProject(page: Page, project: string) {
  const picker = page.getByLabel('Project', { exact: true });
  await expect(picker).toBeVisible();
  if ((await picker.evaluate((e) => e.tagName)) === 'SELECT') {
    await picker.selectOption(project);
  } else {
    await picker.fill(project);
    await picker.press('Enter');
  }
  await expect(picker).toHaveValue(project);
}

/** axe-core on the page as it is: no serious or critical violation. */
export async function accessible(page: Page, what: string) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((x) => x.target.join(' ')).join(' | ')}`);
  expect(bad, `axe-core on ${what}`).toEqual([]);
}

const shots = resolve(process.env.CONSOLE_SCREENSHOTS ?? resolve(import.meta.dirname, '../../target/console/screenshots'));

/** A screenshot for docs/console.md (written there by `bash .ci/console --update`). */
export async function screenshot(page: Page, name: string, show?: Locator) {
  mkdirSync(shots, { recursive: true });
  if (show) await show.evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: join(shots, `${name}.png`) });
}

export const test = base.extend<{ watch: void }>({
  watch: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
      await use();
      expect(problems, 'CSP violations and uncaught errors').toEqual([]);
    },
    { auto: true },
  ],
});
