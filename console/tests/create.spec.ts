import { test, expect, signIn, ownerToken, uniq, fakeOpenAi, GOOD_KEY, accessible, screenshot, owner } from './fixtures';

test('add a model: a preset, verify against the fake provider, then create', async ({ page }) => {
  const project = uniq('create');
  await signIn(page, ownerToken(), project);
  await page.getByRole('link', { name: 'Add model' }).first().click();
  await expect(page.getByRole('heading', { name: 'Add model' })).toBeVisible();

  await page.getByLabel('Provider preset', { exact: true }).selectOption('openai');
  await page.getByLabel('Name', { exact: true }).fill('GPT-4o via the fake');
  await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/gpt-4o');
  await page.getByLabel('API base URL', { exact: true }).fill(fakeOpenAi());
  await page.getByLabel('Tags', { exact: true }).fill('prod, chat');
  await page.getByLabel('Mode', { exact: true }).selectOption('chat');
  await page.getByLabel('Requests per minute (rpm)', { exact: true }).fill('500');

  // A wrong key: the verification fails and says why; nothing is stored.
  await page.getByLabel('Value of api_key', { exact: true }).fill('wrong-key');
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Verification failed' })).toContainText('rejected the credentials');
  expect((await owner(project).call('GET', '/assets/models')).json.pagination.total_items).toBe(0);

  await page.getByLabel('Value of api_key', { exact: true }).fill(GOOD_KEY);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Verified' })).toContainText('credentials accepted');
  await accessible(page, 'add model');
  await screenshot(page, 'add-model');

  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page).toHaveURL(/\/ui\/models\/gpt-4o-via-the-fake$/);
  await expect(page.getByRole('heading', { name: 'GPT-4o via the fake' })).toBeVisible();
  await expect(page.locator('.title .badge')).toHaveText('PENDING');
  await expect(page.getByText('api_key', { exact: true })).toBeVisible();
  // The key never reaches the page.
  expect(await page.content()).not.toContain(GOOD_KEY);

  const stored = (await owner(project).call('GET', '/assets/models/gpt-4o-via-the-fake')).json;
  expect(stored).toMatchObject({ api_base: fakeOpenAi(), tags: ['prod', 'chat'], mode: 'chat', rpm: 500, credential_fields: ['api_key'] });

  // Verify the stored model from its page: ACTIVE, with the provider's answer.
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Verified' })).toContainText('Status is now ACTIVE');
  await expect(page.locator('.title .badge')).toHaveText('ACTIVE');
});

test('a create the API refuses shows each field error', async ({ page }) => {
  const project = uniq('create-bad');
  await owner(project).create({ name: 'Taken', resource_uri: 'taken' });
  await signIn(page, ownerToken(), project);
  await page.goto(page.url().replace(/\/ui\/.*$/, '/ui/models/new'));
  await page.getByLabel('Resource URI', { exact: true }).fill('taken');
  await page.getByLabel('Name', { exact: true }).fill('Again');
  await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/gpt-4o');
  await page.getByLabel('Value of api_key', { exact: true }).fill('sk-x');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('RESOURCE_ALREADY_EXISTS');
  await page.getByLabel('Resource URI', { exact: true }).fill('fine');
  await page.getByLabel('Default temperature', { exact: true }).fill('12');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('VALIDATION_ERROR');
  await expect(page.getByRole('alert')).toContainText('body.default_temperature');
});
