import { test, expect, signIn, ownerToken, owner, uniq, accessible, screenshot, server } from './fixtures';

test('edit any field, and a concurrent edit opens the conflict dialog', async ({ page }) => {
  const project = uniq('edit');
  const api = owner(project);
  await api.create({ name: 'Editable', resource_uri: 'editable', description: 'first', tags: ['a'] });
  await signIn(page, ownerToken(), project);
  await page.goto(`${server()}/ui/models/editable`);
  await expect(page.getByRole('heading', { name: 'Editable' })).toBeVisible();
  await accessible(page, 'model detail');
  await screenshot(page, 'model-detail');

  // A plain edit of several fields.
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Description', { exact: true }).fill('second');
  await page.getByLabel('Tags', { exact: true }).fill('a, b');
  await page.getByLabel('Timeout (seconds)', { exact: true }).fill('30');
  await page.getByLabel('Status', { exact: true }).selectOption('DEPRECATED');
  await page.getByLabel('Status message', { exact: true }).fill('use the new one');
  await accessible(page, 'edit form');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  let stored = (await api.call('GET', '/assets/models/editable')).json;
  expect(stored).toMatchObject({ description: 'second', tags: ['a', 'b'], timeout: 30, status: 'DEPRECATED', status_message: 'use the new one' });

  // Someone else changes the model between our load and our save: 412 → the dialog.
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Description', { exact: true }).fill('mine');
  await page.getByLabel('Requests per minute (rpm)', { exact: true }).fill('100');
  const theirs = await api.call('PATCH', '/assets/models/editable', { description: 'theirs', api_version: '2024-10-21' });
  expect(theirs.status).toBe(200);
  await page.getByRole('button', { name: 'Save' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Someone else changed this model' });
  await expect(dialog).toBeVisible();
  const row = (field: string) => dialog.getByRole('row', { name: new RegExp(`^${field}`) });
  await expect(row('Description')).toContainText('theirs');
  await expect(row('Description')).toContainText('mine');
  await expect(row('API version')).toContainText('2024-10-21');
  await expect(row('Requests per minute')).toContainText('100');
  await accessible(page, 'conflict dialog');
  await screenshot(page, 'conflict');

  // Overwrite with mine: my fields win, theirs that I did not touch stay.
  await dialog.getByRole('button', { name: 'Overwrite with mine' }).click();
  await expect(dialog).toBeHidden();
  stored = (await api.call('GET', '/assets/models/editable')).json;
  expect(stored).toMatchObject({ description: 'mine', rpm: 100, api_version: '2024-10-21' });

  // Again, and this time keep theirs.
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Description', { exact: true }).fill('mine again');
  await api.call('PATCH', '/assets/models/editable', { description: 'theirs again' });
  await page.getByRole('button', { name: 'Save' }).click();
  await dialog.getByRole('button', { name: 'Keep theirs' }).click();
  await expect(page.getByText('Their version is shown')).toBeVisible();
  await expect(page.locator('dl.grid').first()).toContainText('theirs again');
  expect((await api.call('GET', '/assets/models/editable')).json.description).toBe('theirs again');
});

test('credentials are replaced without ever being shown; history shows per-field diffs; delete asks first', async ({ page }) => {
  const project = uniq('hist');
  const api = owner(project);
  await api.create({ name: 'Historic', resource_uri: 'historic', credentials: { api_key: 'sk-old-secret', org: 'o-1' } });
  await api.call('PATCH', '/assets/models/historic', { rpm: 10, tags: ['x'] });
  await signIn(page, ownerToken(), project);
  await page.goto(`${server()}/ui/models/historic`);

  // Credential names only.
  const creds = page.getByRole('region', { name: 'Credentials' });
  await expect(creds).toContainText('api_key');
  await expect(creds).toContainText('org');
  await page.getByRole('button', { name: 'Replace credentials' }).click();
  const dlg = page.getByRole('dialog', { name: 'Replace credentials' });
  await expect(dlg.getByLabel('Value of api_key', { exact: true })).toHaveValue('');
  await dlg.getByLabel('Value of api_key', { exact: true }).fill('sk-new-secret');
  await dlg.getByRole('button', { name: 'Remove org' }).click();
  await dlg.getByRole('button', { name: 'Replace' }).click();
  await expect(dlg).toBeHidden();
  await expect(creds).not.toContainText('org');
  const html = await page.content();
  expect(html).not.toContain('sk-old-secret');
  expect(html).not.toContain('sk-new-secret');

  // History, newest first, as per-field diffs.
  const history = page.getByRole('region', { name: 'History' });
  const events = history.locator('ol.events > li');
  await expect(events).toHaveCount(3);
  await expect(events.nth(0)).toContainText('model.update');
  await expect(events.nth(0)).toContainText('changed (values are never recorded)');
  await expect(events.nth(1).getByRole('row', { name: /Requests per minute/ })).toContainText('10');
  await expect(events.nth(1).getByRole('row', { name: /Tags/ })).toContainText('x');
  await expect(events.nth(2)).toContainText('model.create');
  await screenshot(page, 'history', history);

  // Delete: a confirmation first; Cancel keeps it.
  await page.getByRole('button', { name: 'Delete' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete Historic?' });
  await expect(confirm.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await accessible(page, 'delete dialog');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  expect((await api.call('GET', '/assets/models/historic')).status).toBe(200);
  await page.getByRole('button', { name: 'Delete' }).click();
  await confirm.getByRole('button', { name: 'Delete model' }).click();
  await expect(page).toHaveURL(/\/ui\/models$/);
  expect((await api.call('GET', '/assets/models/historic')).status).toBe(404);

  // A model that is gone shows the API's 404, not a blank page.
  await page.goto(`${server()}/ui/models/historic`);
  await expect(page.getByRole('alert')).toContainText('RESOURCE_NOT_FOUND');
});
