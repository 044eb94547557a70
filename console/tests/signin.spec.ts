import { test, expect, signIn, server, ownerToken, accessible, screenshot, owner, uniq } from './fixtures';

test('sign in with a token, keep it in this tab only, sign out forgets it', async ({ page, context }) => {
  await page.goto(`${server()}/`);
  await expect(page).toHaveURL(/\/ui\/$/);
  await expect(page.getByRole('heading', { name: 'modelreg' })).toBeVisible();
  await accessible(page, 'sign-in');
  await screenshot(page, 'sign-in');

  // A wrong token is refused with the API's code and message, and is not kept.
  await page.getByLabel('API token').fill('mr_not-a-real-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('INVALID_TOKEN');
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

  const project = uniq('signin');
  await owner(project).create({ name: 'Signed in' });
  await signIn(page, ownerToken(), project);
  await expect(page.getByRole('link', { name: 'Signed in' })).toBeVisible();
  await expect(page.locator('header .who')).toHaveText('service:bootstrap');

  // Only sessionStorage holds the credential: no localStorage, no cookie.
  expect(await page.evaluate(() => localStorage.length)).toBe(0);
  expect(await context.cookies()).toEqual([]);
  expect(await page.evaluate(() => sessionStorage.getItem('modelreg.credential'))).toContain(ownerToken());

  // A reload keeps the session (same tab); the project stays chosen.
  await page.reload();
  await expect(page.getByRole('link', { name: 'Signed in' })).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByLabel('API token')).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  expect(await page.content()).not.toContain(ownerToken());
});

test('a revoked credential shows its error, not a blank page', async ({ page }) => {
  const project = uniq('revoked');
  const api = owner(project);
  await api.create({ name: 'Before the revocation' });
  const token = await api.mint('viewer', project);
  await signIn(page, token);
  await expect(page.getByRole('link', { name: 'Before the revocation' })).toBeVisible();
  const name = (await api.call('GET', '/admin/tokens')).json.find((t: any) => !t.revoked_at && t.role === 'viewer' && t.project === project).name;
  expect((await api.call('DELETE', `/admin/tokens/${name}`)).status).toBe(204);
  await page.getByLabel('Search', { exact: true }).fill('anything');
  await expect(page.getByRole('alert')).toContainText('INVALID_TOKEN');
});
