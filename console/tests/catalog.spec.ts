// The catalog in the console: prices, context and capabilities in the models list and its
// filters, the catalog browser, the add form filled from the catalog (the catalog's values
// and overrides), and, after a catalog refresh, the "upstream changed" badge with take and keep.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Locator, Page } from '@playwright/test';
import { test, expect, signIn, ownerToken, owner, uniq, accessible, screenshot, server, Api } from './fixtures';
import { startModelreg } from './server';

const root = resolve(import.meta.dirname, '../..');

// The bundled catalog's gpt-4o (LiteLLM 1.108.14), which the tests read prices from.
const GPT_4O = { key: 'gpt-4o', input: 2.5e-6, output: 1e-5, context: 128000, maxOutput: 16384 };

/** The cell of `row` under the column headed `header`. */
async function cell(page: Page, row: Locator, header: string): Promise<Locator> {
  const headers = (await page.locator('table thead th').allTextContents()).map((h) => h.replace(/[▲▼]/g, '').trim());
  const i = headers.indexOf(header);
  expect(i, `a column headed ${header} in ${headers.join(' | ')}`).toBeGreaterThanOrEqual(0);
  return row.locator('th, td').nth(i);
}

test('the models list shows the catalog prices, context and capabilities of a model created bare', async ({ page }) => {
  const project = uniq('cat-list');
  const api = owner(project);
  // The catalog's gpt-4o is what a bare create fills from.
  const found = (await api.call('GET', '/assets/catalog?litellm_model=openai/gpt-4o')).json.data;
  expect(found).toHaveLength(1);
  expect(found[0]).toMatchObject({
    key: GPT_4O.key,
    input_cost_per_token: GPT_4O.input,
    output_cost_per_token: GPT_4O.output,
    max_input_tokens: GPT_4O.context,
  });
  await api.create({ name: 'Bare 4o', litellm_model: 'openai/gpt-4o' });
  await api.create({ name: 'Unknown', litellm_model: 'openai/not-in-any-catalog' });

  await signIn(page, ownerToken(), project);
  const bare = page.getByRole('row', { name: /Bare 4o/ });
  await expect(bare).toBeVisible();
  const input = (await cell(page, bare, 'Input $/1M')).locator('span');
  await expect(input).toHaveText('$2.50');
  await expect(input).toHaveAttribute('title', '$0.0000025 per token');
  const output = (await cell(page, bare, 'Output $/1M')).locator('span');
  await expect(output).toHaveText('$10.00');
  await expect(output).toHaveAttribute('title', '$0.00001 per token');
  const context = (await cell(page, bare, 'Context')).locator('span');
  await expect(context).toHaveText('128K');
  await expect(context).toHaveAttribute('title', '128,000 tokens');
  // Compact: the four capabilities that tell models apart most, then "+4" for the rest.
  expect(found[0].capabilities).toHaveLength(8);
  const caps = await cell(page, bare, 'Capabilities');
  await expect(caps.locator('.chip:not(.more)')).toHaveText(['vision', 'tools', 'PDF', 'schema']);
  await expect(caps.locator('.chip[title="function calling"]')).toHaveText('tools');
  const more = caps.locator('.chip.more');
  await expect(more).toContainText('+4');
  await expect(more).toHaveAttribute('title', 'prompt caching, parallel function calling, tool choice, system messages');

  // A model the catalog does not know has no price.
  const unknown = page.getByRole('row', { name: /Unknown/ });
  await expect(await cell(page, unknown, 'Input $/1M')).toHaveText('–');
  await expect(await cell(page, unknown, 'Context')).toHaveText('–');
  await accessible(page, 'models with catalog columns');
});

test('capability, context and price filters narrow the list, in the URL; price and context sort it', async ({ page }) => {
  const project = uniq('cat-filter');
  const api = owner(project);
  // gpt-4o: vision, 128K, $2.50; gpt-4o-mini: vision, 128K, $0.15; o3-mini: reasoning, 200K,
  // $1.10; gpt-3.5-turbo: neither, 16K, $0.50; and one the catalog does not know.
  for (const [name, model] of [
    ['Four-o', 'openai/gpt-4o'],
    ['Four-o mini', 'openai/gpt-4o-mini'],
    ['O3 mini', 'openai/o3-mini'],
    ['Three-five', 'openai/gpt-3.5-turbo'],
    ['Unknown', 'openai/not-in-any-catalog'],
  ]) {
    await api.create({ name, litellm_model: model });
  }
  await signIn(page, ownerToken(), project);
  const rows = page.locator('table.models tbody tr');
  const summary = page.locator('p.summary');
  await expect(summary).toHaveText(/^5 models/);

  // Capabilities: every one checked must hold.
  const caps = page.locator('details.multi summary');
  await caps.click();
  await page.getByLabel('vision', { exact: true }).check();
  await expect(summary).toHaveText(/^2 models/);
  await expect(rows.filter({ hasText: 'Four-o mini' })).toHaveCount(1);
  await accessible(page, 'the capability filter');
  await page.getByLabel('reasoning', { exact: true }).check();
  await expect(summary).toHaveText(/^0 models/);
  await expect(page).toHaveURL(/capability=vision%2Creasoning/);
  await page.getByLabel('vision', { exact: true }).uncheck();
  await expect(summary).toHaveText(/^1 model/);
  await expect(rows.first()).toContainText('O3 mini');
  await page.getByLabel('reasoning', { exact: true }).uncheck();
  await caps.click();
  await expect(summary).toHaveText(/^5 models/);

  // The context window, as people write it, and the input price per million tokens.
  const minContext = page.getByLabel('Min context', { exact: true });
  await minContext.fill('100K');
  await minContext.press('Enter');
  await expect(summary).toHaveText(/^3 models/);
  await expect(page).toHaveURL(/min_input_tokens=100000/);
  const maxPrice = page.getByLabel('Max input $/1M', { exact: true });
  await maxPrice.fill('1');
  await maxPrice.press('Enter');
  await expect(page).toHaveURL(/max_input_cost=0\.000001(&|$)/);
  await expect(summary).toHaveText(/^1 model/);
  await expect(rows.first()).toContainText('Four-o mini');
  await page.reload();
  await expect(summary).toHaveText(/^1 model/);
  await expect(page.getByLabel('Min context', { exact: true })).toHaveValue('100K');
  await expect(page.getByLabel('Max input $/1M', { exact: true })).toHaveValue('1');
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await expect(summary).toHaveText(/^5 models/);

  // Sort by price, then by context, from the headers. Where a model without a price or a
  // context goes is the API's choice: only the others' order is checked.
  const known = async () => (await rows.locator('td:first-child a').allTextContents()).filter((n) => n !== 'Unknown');
  await page.getByRole('button', { name: 'Input $/1M' }).click();
  await expect(page.getByRole('columnheader', { name: /Input \$\/1M/ })).toHaveAttribute('aria-sort', 'ascending');
  await expect(page).toHaveURL(/sort=input_cost_per_token%3Aasc/);
  await expect.poll(known).toEqual(['Four-o mini', 'Three-five', 'O3 mini', 'Four-o']);
  await page.getByRole('button', { name: 'Context' }).click();
  await page.getByRole('button', { name: 'Context' }).click();
  await expect(page.getByRole('columnheader', { name: /Context/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(page).toHaveURL(/sort=max_input_tokens%3Adesc/);
  await expect.poll(async () => {
    const k = await known();
    return [k[0], k[k.length - 1]];
  }).toEqual(['O3 mini', 'Three-five']);
});

test('the catalog browser: search, provider, mode, capabilities, pages, and "Add as model"', async ({ page }) => {
  const project = uniq('cat-browse');
  const api = owner(project);
  const total = async (q: string) => (await api.call('GET', `/assets/catalog?${q}`)).json.pagination.total_items as number;
  await signIn(page, ownerToken(), project);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Catalog' }).click();
  await expect(page.getByRole('heading', { name: 'Catalog' })).toBeVisible();
  await expect(page.locator('p.source')).toContainText('version 1.108.14 of 2026-11-20');
  const summary = page.locator('p.summary');
  const entries = (n: number) => new RegExp(`^${n.toLocaleString('en-US')} entr(y|ies)$`);
  await expect(summary).toHaveText(entries(await total('')));

  await page.getByLabel('Search', { exact: true }).fill('gpt-4o');
  await expect(summary).toHaveText(entries(await total('search=gpt-4o')));
  await expect(page).toHaveURL(/search=gpt-4o/);
  // The provider and mode lists are the catalog's own.
  await page.getByLabel('Provider', { exact: true }).selectOption('openai');
  await expect(summary).toHaveText(entries(await total('search=gpt-4o&provider=openai')));
  await page.getByLabel('Mode', { exact: true }).selectOption('chat');
  await expect(summary).toHaveText(entries(await total('search=gpt-4o&provider=openai&mode=chat')));
  await page.locator('details.multi summary').click();
  await page.getByLabel('PDF input', { exact: true }).check();
  await page.getByLabel('vision', { exact: true }).check();
  const narrowed = await total('search=gpt-4o&provider=openai&mode=chat&capability=vision,pdf_input');
  expect(narrowed).toBeGreaterThan(1);
  await expect(summary).toHaveText(entries(narrowed));
  await expect(page).toHaveURL(/capability=vision%2Cpdf_input/);
  await accessible(page, 'the catalog\'s capability filter');
  await page.locator('details.multi summary').click();

  // Each entry's prices per million tokens, context, output limit and capabilities.
  const row = page.getByRole('row', { name: /^gpt-4o / });
  await expect(row).toHaveCount(1);
  await expect(await cell(page, row, 'Input $/1M')).toHaveText('$2.50');
  await expect(await cell(page, row, 'Output $/1M')).toHaveText('$10.00');
  await expect(await cell(page, row, 'Context')).toHaveText('128K');
  await expect(await cell(page, row, 'Max output')).toHaveText('16K');
  await expect((await cell(page, row, 'Capabilities')).locator('.chip[title="vision"]')).toBeVisible();
  await accessible(page, 'catalog');
  await screenshot(page, 'catalog');

  // A deprecation date, and paging.
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByLabel('Search', { exact: true }).fill('gpt-4-0613');
  await expect(page.getByRole('row', { name: /^gpt-4-0613 / })).toBeVisible();
  const deprecated = (await api.call('GET', '/assets/catalog/gpt-4-0613')).json.deprecation_date;
  expect(deprecated).toMatch(/^\d{4}-\d\d-\d\d$/);
  await expect(await cell(page, page.getByRole('row', { name: /^gpt-4-0613 / }), 'Deprecation')).toContainText(deprecated);
  await page.getByLabel('Search', { exact: true }).fill('');
  const pages = Math.ceil((await total('')) / 25);
  await expect(page.locator('nav.pager')).toContainText(`page 1 of ${pages}`);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.locator('nav.pager')).toContainText(`page 2 of ${pages}`);
  await expect(page).toHaveURL(/page=2/);
  await page.getByRole('button', { name: 'Previous' }).click();
  await expect(page.locator('nav.pager')).toContainText(`page 1 of ${pages}`);

  // "Add as model" opens the add form with the entry's model string, filled from it.
  await page.getByLabel('Search', { exact: true }).fill('gpt-4o-mini');
  const mini = page.getByRole('row', { name: /^gpt-4o-mini / });
  await mini.getByRole('link', { name: /^Add as model/ }).click();
  await expect(page).toHaveURL(/\/ui\/models\/new\?litellm_model=gpt-4o-mini$/);
  await expect(page.getByRole('heading', { name: 'Add model' })).toBeVisible();
  await expect(page.getByLabel('LiteLLM model', { exact: true })).toHaveValue('gpt-4o-mini');
  await expect(page.locator('p.catalog-match')).toContainText('From the catalog entry gpt-4o-mini');
  await expect(page.getByLabel('Input price (USD per 1M tokens)', { exact: true })).toHaveValue('0.15');
});

test('the add form fills from the catalog: untouched values are the catalog\'s, an edited one is an override', async ({ page }) => {
  const project = uniq('cat-add');
  await signIn(page, ownerToken(), project);
  await page.goto(`${server()}/ui/models/new`);
  await page.getByLabel('Name', { exact: true }).fill('Catalogued');
  await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/gpt-4o');
  const match = page.locator('p.catalog-match');
  await expect(match).toContainText('From the catalog entry gpt-4o');
  const input = page.getByLabel('Input price (USD per 1M tokens)', { exact: true });
  const output = page.getByLabel('Output price (USD per 1M tokens)', { exact: true });
  const maxOut = page.getByLabel('Max output tokens', { exact: true });
  await expect(input).toHaveValue('2.5');
  await expect(output).toHaveValue('10');
  await expect(page.getByLabel('Max input tokens', { exact: true })).toHaveValue(String(GPT_4O.context));
  await expect(maxOut).toHaveValue(String(GPT_4O.maxOutput));
  await expect(page.getByLabel('Cache write price (USD per 1M tokens)', { exact: true })).toHaveValue('');
  await expect(page.getByLabel('vision', { exact: true })).toBeChecked();
  await expect(page.getByLabel('reasoning', { exact: true })).not.toBeChecked();
  await expect(page.locator('#f-input_cost_per_token-origin')).toHaveText('from catalog');

  // An edited value is an override; "Use the catalog's value" takes it back.
  await output.fill('12');
  await expect(page.locator('#f-output_cost_per_token-origin')).toHaveText('override');
  await maxOut.fill('1000');
  await expect(page.locator('#f-max_output_tokens-origin')).toHaveText('override');
  await page.getByRole('button', { name: "Use the catalog's value for Max output tokens" }).click();
  await expect(maxOut).toHaveValue(String(GPT_4O.maxOutput));
  await expect(page.locator('#f-max_output_tokens-origin')).toHaveText('from catalog');
  await page.getByLabel('reasoning', { exact: true }).check();
  await expect(page.locator('#f-capabilities-origin')).toHaveText('override');
  await page.getByLabel('reasoning', { exact: true }).uncheck();
  await expect(page.locator('#f-capabilities-origin')).toHaveText('from catalog');

  // Another model string: none in the catalog, so its values go; the override stays.
  await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/no-such-model-here');
  await expect(match).toContainText('No catalog entry for openai/no-such-model-here');
  await expect(input).toHaveValue('');
  await expect(output).toHaveValue('12');
  await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/gpt-4o');
  await expect(input).toHaveValue('2.5');
  await expect(match).toContainText('From the catalog entry gpt-4o');
  await accessible(page, 'add model from the catalog');
  await screenshot(page, 'add-model-catalog', page.getByRole('group', { name: 'Prices, limits and capabilities' }));

  // Only the override is sent; the server fills the rest from the same entry.
  await page.getByLabel('Value of api_key', { exact: true }).fill('sk-x');
  const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/assets/models'));
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  const body = (await sent).postDataJSON();
  expect(body.output_cost_per_token).toBe(0.000012);
  for (const f of ['input_cost_per_token', 'cache_read_cost_per_token', 'max_input_tokens', 'max_output_tokens', 'capabilities', 'deprecation_date']) {
    expect(body, `${f} is not sent`).not.toHaveProperty(f);
  }
  await expect(page).toHaveURL(/\/ui\/models\/catalogued$/);

  // The model's page says which value is whose.
  const section = page.getByRole('region', { name: 'Catalog' });
  await expect(section).toContainText('Catalog entry gpt-4o');
  const fieldRow = (label: string) => section.getByRole('row', { name: new RegExp(`^${label.replace(/[()$/]/g, '\\$&')}`) });
  await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('$2.50');
  await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('from catalog');
  await expect(fieldRow('Output price (USD per 1M tokens)')).toContainText('$12.00');
  await expect(fieldRow('Output price (USD per 1M tokens)')).toContainText('override');
  await expect(fieldRow('Max input tokens')).toContainText('128,000');
  await expect(fieldRow('Cache write price (USD per 1M tokens)')).toContainText('not set');
  await accessible(page, 'model detail with its catalog values');

  const stored = (await owner(project).call('GET', '/assets/models/catalogued')).json;
  expect(stored).toMatchObject({
    input_cost_per_token: GPT_4O.input,
    output_cost_per_token: 0.000012,
    max_input_tokens: GPT_4O.context,
    catalog: { key: 'gpt-4o', fields: { input_cost_per_token: 'catalog', output_cost_per_token: 'override', max_input_tokens: 'catalog', capabilities: 'catalog' } },
  });

  // Editing a catalogued field on the model's page makes it an override too.
  await page.getByRole('button', { name: 'Edit' }).click();
  await expect(page.locator('#f-max_input_tokens-origin')).toHaveText('from catalog');
  await page.getByLabel('Max input tokens', { exact: true }).fill('64000');
  await expect(page.locator('#f-max_input_tokens-origin')).toHaveText('override');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  await expect(fieldRow('Max input tokens')).toContainText('override');
  const edited = (await owner(project).call('GET', '/assets/models/catalogued')).json;
  expect(edited.max_input_tokens).toBe(64000);
  expect(edited.catalog.fields).toMatchObject({ max_input_tokens: 'override', input_cost_per_token: 'catalog' });
});

/** The bundled cost map with gpt-4o dearer and with a longer context, as a newer release. */
function newerCostMap(dir: string): string {
  const map = JSON.parse(gunzipSync(readFileSync(join(root, 'crates/modelreg-core/catalog/litellm-model-prices.json.gz'))).toString('utf8'));
  map['gpt-4o'] = { ...map['gpt-4o'], input_cost_per_token: 0.00001, max_input_tokens: 256000 };
  const file = join(dir, 'newer.json');
  writeFileSync(file, JSON.stringify(map));
  return file;
}

test('after a catalog refresh: the badge, the changes, Take and Keep, and a concurrent edit', async ({ page }) => {
  test.setTimeout(120_000);
  // A server of its own: the refresh changes the catalog for every project on it.
  const own = await startModelreg();
  const tmp = mkdtempSync(join(tmpdir(), 'modelreg-catalog-'));
  try {
    const tokenFile = join(own.data, 'bootstrap-token');
    await expect.poll(() => existsSync(tokenFile) && readFileSync(tokenFile, 'utf8').trim() !== '').toBe(true);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const project = 'refresh';
    const api = new Api(token, project, own.url);
    for (const uri of ['taker', 'keeper']) await api.create({ name: uri, resource_uri: uri });
    await api.create({ name: 'pinned', resource_uri: 'pinned', input_cost_per_token: 0.000003 });

    await signIn(page, token, project, own.url);
    await expect(page.getByRole('row', { name: /taker/ })).toBeVisible();
    await expect(page.locator('.badge.upstream')).toHaveCount(0);

    // `modelreg catalog refresh` against the server's database, as an operator runs it.
    const bin = process.env.MODELREG_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug/modelreg');
    execFileSync(bin, ['catalog', 'refresh', newerCostMap(tmp), '--version', 'test-2', '--date', '2026-12-01'], {
      env: { ...process.env, MODELREG_DATA_DIR: own.data, MODELREG_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });

    // Every model holding a catalog value that changed has the badge; an override never counts,
    // but pinned's context window is still the catalog's.
    await page.reload();
    for (const uri of ['taker', 'keeper', 'pinned']) {
      await expect(page.getByRole('row', { name: new RegExp(uri) }).locator('.badge.upstream')).toHaveText('upstream changed');
    }
    await accessible(page, 'models with upstream changes');

    // Take, field by field.
    await page.getByRole('link', { name: 'taker', exact: true }).click();
    await expect(page.locator('.title .badge.upstream')).toBeVisible();
    const panel = page.getByRole('group', { name: /The catalog has other values/ });
    await expect(panel).toContainText('test-2');
    const change = (label: string) => panel.getByRole('row', { name: new RegExp(`^${label.replace(/[()$/]/g, '\\$&')}`) });
    await expect(change('Input price (USD per 1M tokens)')).toContainText('$2.50');
    await expect(change('Input price (USD per 1M tokens)')).toContainText('$10.00');
    await expect(change('Max input tokens')).toContainText('128,000');
    await expect(change('Max input tokens')).toContainText('256,000');
    await accessible(page, 'upstream changes');
    await screenshot(page, 'upstream', page.getByRole('region', { name: 'Catalog' }));
    await change('Input price (USD per 1M tokens)').getByRole('button', { name: /^Take/ }).click();
    await expect(page.getByRole('status').filter({ hasText: "Took the catalog's Input price" })).toBeVisible();
    await expect(change('Input price (USD per 1M tokens)')).toHaveCount(0);
    const section = page.getByRole('region', { name: 'Catalog' });
    const fieldRow = (label: string) => section.locator('table.catalog-fields').getByRole('row', { name: new RegExp(`^${label.replace(/[()$/]/g, '\\$&')}`) });
    await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('$10.00');
    await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('from catalog');
    await change('Max input tokens').getByRole('button', { name: /^Take/ }).click();
    await expect(panel).toBeHidden();
    await expect(page.locator('.title .badge.upstream')).toHaveCount(0);
    await expect(fieldRow('Max input tokens')).toContainText('256,000');
    let m = (await api.call('GET', '/assets/models/taker')).json;
    expect(m).toMatchObject({ input_cost_per_token: 0.00001, max_input_tokens: 256000, catalog: { fields: { input_cost_per_token: 'catalog', max_input_tokens: 'catalog' } } });
    // The history records each take as an update, its values as the page shows them.
    const events = page.getByRole('region', { name: 'History' }).locator('ol.events > li');
    await expect(events.nth(0).getByRole('row', { name: /^Max input tokens/ })).toContainText('128,000');
    await expect(events.nth(0).getByRole('row', { name: /^Max input tokens/ })).toContainText('256,000');
    await expect(events.nth(1).getByRole('row', { name: /^Input price/ })).toContainText('$10.00');
    await expect(events.nth(1).getByRole('row', { name: /^Catalog link/ })).toContainText("the catalog's: Input price (USD per 1M tokens)");

    // Keep: the model's values stay, now its own, and are not offered again.
    await page.goto(`${own.url}/ui/models/keeper`);
    await panel.getByRole('button', { name: 'Keep all' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Kept the current' })).toBeVisible();
    await expect(panel).toBeHidden();
    await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('$2.50');
    await expect(fieldRow('Input price (USD per 1M tokens)')).toContainText('override');
    await expect(events.nth(0).getByRole('row', { name: /^Catalog link/ })).toContainText("now the model's own: Input price (USD per 1M tokens), Max input tokens");
    m = (await api.call('GET', '/assets/models/keeper')).json;
    expect(m).toMatchObject({ input_cost_per_token: GPT_4O.input, max_input_tokens: GPT_4O.context, catalog: { fields: { input_cost_per_token: 'override', max_input_tokens: 'override' } } });

    // Someone else changes the model between load and take: 412, the conflict dialog, then
    // take again over their version.
    await page.goto(`${own.url}/ui/models/pinned`);
    await expect(change('Max input tokens')).toBeVisible();
    await expect(change('Input price (USD per 1M tokens)')).toHaveCount(0);
    expect((await api.call('PATCH', '/assets/models/pinned', { description: 'theirs' })).status).toBe(200);
    await change('Max input tokens').getByRole('button', { name: /^Take/ }).click();
    const dialog = page.getByRole('alertdialog', { name: 'Someone else changed this model' });
    await expect(dialog).toBeVisible();
    await expect(dialog.getByRole('row', { name: /^Description/ })).toContainText('theirs');
    await expect(dialog.getByRole('row', { name: /^Max input tokens/ })).toContainText('256,000');
    await accessible(page, 'conflict on take');
    await dialog.getByRole('button', { name: 'Overwrite with mine' }).click();
    await expect(dialog).toBeHidden();
    await expect(panel).toBeHidden();
    m = (await api.call('GET', '/assets/models/pinned')).json;
    expect(m).toMatchObject({ description: 'theirs', input_cost_per_token: 0.000003, max_input_tokens: 256000 });
    expect((await api.call('GET', '/assets/catalog/changes')).json.data).toEqual([]);

    // The list has no badge left.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Models' }).click();
    await expect(page.getByRole('row', { name: /taker/ })).toBeVisible();
    await expect(page.locator('.badge.upstream')).toHaveCount(0);
  } finally {
    await own.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
