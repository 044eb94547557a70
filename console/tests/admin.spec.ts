import { test, expect, signIn, ownerToken, owner, uniq, server, accessible, screenshot } from './fixtures';

test('tokens: create shows the secret once, revoke stops it', async ({ page }) => {
  const project = uniq('tokens');
  await signIn(page, ownerToken(), project);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await expect(page.getByRole('heading', { name: 'API tokens' })).toBeVisible();
  await accessible(page, 'tokens');

  const name = uniq('ci-bot');
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Project', { exact: true }).last().fill(project);
  await page.getByLabel('Role', { exact: true }).selectOption('developer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByRole('dialog', { name: `Token ${name} created` });
  await expect(shown).toContainText('shown only this once');
  const secret = await shown.getByLabel('Secret', { exact: true }).inputValue();
  expect(secret).toMatch(/^mr_/);
  await accessible(page, 'token secret dialog');
  await screenshot(page, 'token-created');
  await shown.getByRole('button', { name: 'Done' }).click();
  await expect(shown).toBeHidden();
  expect(await page.content()).not.toContain(secret);

  // The new token works, as a developer of that project.
  const api = owner(project);
  const asBot = await fetch(`${server()}/assets/models`, { headers: { Authorization: `Bearer ${secret}`, 'X-Project-ID': project } });
  expect(asBot.status).toBe(200);

  const row = page.getByRole('row', { name: new RegExp(name) });
  await expect(row).toContainText('developer');
  await expect(row).toContainText('active');
  await screenshot(page, 'tokens');
  await row.getByRole('button', { name: `Revoke ${name}` }).click();
  const confirm = page.getByRole('alertdialog', { name: `Revoke ${name}?` });
  await confirm.getByRole('button', { name: 'Revoke token' }).click();
  await expect(row).toContainText('revoked');
  const after = await fetch(`${server()}/assets/models`, { headers: { Authorization: `Bearer ${secret}`, 'X-Project-ID': project } });
  expect(after.status).toBe(401);
  expect((await api.call('GET', '/admin/tokens')).json.find((t: any) => t.name === name).revoked_at).toBeTruthy();

  // A taken name is refused with the API's code.
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByRole('alert')).toContainText('RESOURCE_ALREADY_EXISTS');
});

test('the audit log, filtered', async ({ page }) => {
  const project = uniq('audit');
  const api = owner(project);
  const m = await api.create({ name: 'Audited', resource_uri: uniq('audited') });
  await api.call('PATCH', `/assets/models/${m.resource_uri}`, { rpm: 7 });
  await signIn(page, ownerToken(), project);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  await page.getByLabel('Resource URI', { exact: true }).fill(m.resource_uri);
  await page.getByRole('button', { name: 'Apply' }).click();
  const rows = page.locator('table tbody tr').filter({ hasText: m.resource_uri });
  await expect(rows).toHaveCount(2);
  await page.getByLabel('Action', { exact: true }).selectOption('model.update');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.locator('p.summary')).toHaveText('1 events');
  await expect(rows.first().getByRole('row', { name: /Requests per minute/ })).toContainText('7');
  await accessible(page, 'audit log');
  await screenshot(page, 'audit');
  // A filter the API refuses shows its error.
  await page.getByLabel('Actor', { exact: true }).fill('');
  await page.getByLabel('Since', { exact: true }).fill('2030-01-01T00:00');
  await page.getByLabel('Until', { exact: true }).fill('2020-01-01T00:00');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.locator('p.summary')).toHaveText('0 events');
});

test('the API reference: Swagger UI from the binary, trying a call with my token', async ({ page }) => {
  const project = uniq('apiref');
  await owner(project).create({ name: 'Referenced' });
  await signIn(page, ownerToken(), project);
  await page.getByRole('link', { name: 'API reference' }).click();
  await expect(page.locator('.swagger-ui .info .title')).toContainText('modelreg');
  await screenshot(page, 'api-reference');
  const op = page.locator('#operations-models-list_models');
  await op.locator('.opblock-summary').click();
  await op.getByRole('button', { name: 'Try it out' }).click();
  await op.getByRole('button', { name: 'Execute' }).click();
  await expect(op.locator('.live-responses-table tbody .response-col_status')).toContainText('200');
  await expect(op.locator('.responses-wrapper')).toContainText('Referenced');
  await accessible(page, 'API reference');
});
