import { test, expect, signIn, owner, uniq, server, accessible } from './fixtures';

test('a viewer sees no write controls, and the server refuses anyway', async ({ page }) => {
  const project = uniq('viewer');
  const api = owner(project);
  await api.create({ name: 'Look only', resource_uri: 'look-only' });
  const viewer = await api.mint('viewer', project);
  await signIn(page, viewer);
  // Bound to one project: the picker offers that one.
  await expect(page.getByLabel('Project', { exact: true })).toHaveValue(project);
  await expect(page.getByRole('link', { name: 'Look only' })).toBeVisible();
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Models' })).toBeVisible();
  for (const hidden of ['Add model', 'Tokens', 'Audit log']) await expect(nav.getByRole('link', { name: hidden })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Add model' })).toHaveCount(0);

  await page.getByRole('link', { name: 'Look only' }).click();
  await expect(page.getByRole('heading', { name: 'Look only' })).toBeVisible();
  for (const b of ['Edit', 'Verify', 'Delete', 'Replace credentials']) await expect(page.getByRole('button', { name: b })).toHaveCount(0);
  await expect(page.getByRole('region', { name: 'History' }).locator('ol.events > li')).toHaveCount(1);
  await accessible(page, 'model detail (viewer)');

  // Typed in the address bar: the page says no; the API would too.
  await page.goto(`${server()}/ui/models/new`);
  await expect(page.getByText('may not create models')).toBeVisible();
  await page.goto(`${server()}/ui/tokens`);
  await expect(page.getByRole('alert')).toContainText('INSUFFICIENT_PERMISSIONS');
});

test('an operator may verify but not edit', async ({ page }) => {
  const project = uniq('operator');
  const api = owner(project);
  await api.create({ name: 'Operated', resource_uri: 'operated' });
  await signIn(page, await api.mint('operator', project));
  await page.goto(`${server()}/ui/models/operated`);
  await expect(page.getByRole('button', { name: 'Verify' })).toBeVisible();
  for (const b of ['Edit', 'Delete']) await expect(page.getByRole('button', { name: b })).toHaveCount(0);
});
