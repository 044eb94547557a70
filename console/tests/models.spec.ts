import { test, expect, signIn, ownerToken, owner, uniq, accessible, screenshot, Api } from './fixtures';

test('the list: search, every filter, sort by a column, cursor paging', async ({ page }) => {
  const project = uniq('list');
  const api = owner(project);
  // 45 models: 3 providers, tags by parity, a few in ERROR with a message, one by another
  // principal.
  for (let i = 0; i < 45; i++) {
    const m = await api.create({
      name: `Model ${String(i).padStart(2, '0')}`,
      litellm_model: ['openai/gpt-4o', 'anthropic/claude-3-5-sonnet', 'groq/llama3-70b'][i % 3],
      mode: i % 5 === 0 ? 'embedding' : 'chat',
      tags: i % 2 ? ['odd', 'prod'] : ['even'],
      description: i === 7 ? 'The needle in the haystack' : null,
    });
    if (i % 10 === 3) {
      const r = await api.call('PATCH', `/assets/models/${m.resource_uri}`, { status: 'ERROR', status_message: `broken ${i}` });
      expect(r.status).toBe(200);
    }
  }
  const other = await api.mint('developer', project);
  const byOther = await new Api(other, project).create({ name: 'By the developer' });

  await signIn(page, ownerToken(), project);
  const rows = page.locator('table.models tbody tr');
  const summary = page.locator('p.summary');
  await expect(summary).toHaveText(/^46 models/);
  await expect(rows).toHaveCount(46);
  await accessible(page, 'models');
  await screenshot(page, 'models');

  // Paging by cursor, 20 a page.
  await page.getByLabel('Per page').selectOption('20');
  await expect(rows).toHaveCount(20);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(summary).toContainText('page 2');
  await expect(rows).toHaveCount(20);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(rows).toHaveCount(6);
  await expect(page.getByRole('button', { name: 'Next' })).toBeDisabled();
  await page.getByRole('button', { name: 'Previous' }).click();
  await expect(rows).toHaveCount(20);

  // Sort by name, both ways, by clicking the column header.
  await page.getByRole('button', { name: 'Name' }).click();
  await expect(page.getByRole('columnheader', { name: /Name/ })).toHaveAttribute('aria-sort', 'ascending');
  await expect(rows.first()).toContainText('By the developer');
  await page.getByRole('button', { name: 'Name' }).click();
  await expect(page.getByRole('columnheader', { name: /Name/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(rows.first()).toContainText('Model 44');

  // Search (debounced) on name or description.
  await page.getByLabel('Search', { exact: true }).fill('haystack');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Model 07');
  await page.getByLabel('Search', { exact: true }).fill('');
  await expect(summary).toHaveText(/^46 models/);

  // Status: the ERROR ones, each with its message and when it was last verified.
  await page.getByLabel('Status', { exact: true }).selectOption('ERROR');
  await expect(summary).toHaveText(/^5 models/);
  await expect(rows.first().locator('.badge')).toHaveText('ERROR');
  await expect(rows.first()).toContainText(/broken \d+/);
  await expect(rows.first()).toContainText('verified never');
  await page.getByLabel('Status', { exact: true }).selectOption('');

  // Mode, provider, tags (all of them), created_by; and together.
  await page.getByLabel('Mode', { exact: true }).selectOption('embedding');
  await expect(summary).toHaveText(/^9 models/);
  await page.getByLabel('Mode', { exact: true }).selectOption('');
  const provider = page.getByLabel('Provider', { exact: true });
  await provider.fill('anthropic');
  await provider.press('Enter');
  await expect(summary).toHaveText(/^15 models/);
  const tags = page.getByLabel('Tags (all of)');
  await tags.fill('odd, prod');
  await tags.press('Enter');
  await expect(summary).toHaveText(/^8 models/);
  await provider.fill('');
  await provider.press('Enter');
  await expect(summary).toHaveText(/^22 models/);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  const createdBy = page.getByLabel('Created by');
  await createdBy.fill(byOther.created_by);
  await createdBy.press('Enter');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('By the developer');

  // The filters are in the URL: a reload shows the same list.
  await page.reload();
  await expect(rows).toHaveCount(1);
  await expect(page.getByLabel('Created by')).toHaveValue(byOther.created_by);

  // An invalid filter shows the API's error (422), not an empty table.
  await createdBy.fill('');
  await createdBy.press('Enter');
  await page.getByLabel('Search', { exact: true }).fill('x'.repeat(300));
  await expect(page.getByRole('alert')).toContainText('VALIDATION_ERROR');
});
