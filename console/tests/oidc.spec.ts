// Sign-in at an OIDC issuer: the authorization-code flow with PKCE, against a small identity
// provider run here (discovery, authorize, token, JWKS; RS256), and a server of its own that
// accepts that issuer and offers it to the console (MODELREG_OIDC_ISSUERS,
// MODELREG_CONSOLE_OIDC_CLIENT_ID).
import { createHash, generateKeyPairSync, createSign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { test, expect, accessible } from './fixtures';
import { startModelreg } from './server';

const CLIENT = 'modelreg-console';

interface Pending {
  challenge: string;
  nonce: string;
  redirect: string;
}

function idp() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, Pending>();
  const seen: Record<string, string>[] = [];
  const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64url');
  let issuer = '';
  const sign = (claims: object) => {
    const head = b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' }));
    const body = b64(JSON.stringify(claims));
    const s = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKey);
    return `${head}.${body}.${b64(s)}`;
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url!, issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const q = Object.fromEntries(url.searchParams);
      seen.push(q);
      if (q.client_id !== CLIENT || q.response_type !== 'code' || q.code_challenge_method !== 'S256' || !q.code_challenge || !q.state || !q.nonce) {
        res.writeHead(400);
        return res.end('bad authorization request');
      }
      const code = b64(createHash('sha256').update(String(Math.random())).digest());
      codes.set(code, { challenge: q.code_challenge, nonce: q.nonce, redirect: q.redirect_uri });
      res.writeHead(302, { location: `${q.redirect_uri}?code=${code}&state=${encodeURIComponent(q.state)}` });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let raw = '';
      for await (const c of req) raw += c;
      const f = Object.fromEntries(new URLSearchParams(raw));
      const p = codes.get(f.code);
      codes.delete(f.code);
      const verified = p && b64(createHash('sha256').update(f.code_verifier ?? '').digest()) === p.challenge;
      if (!p || !verified || f.grant_type !== 'authorization_code' || f.redirect_uri !== p.redirect || f.client_id !== CLIENT) {
        return json(400, { error: 'invalid_grant' });
      }
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: issuer, sub: 'u-1', preferred_username: 'alice', org_id: 'acme', roles: { '*': 'owner' }, iat: now, exp: now + 600 };
      return json(200, { token_type: 'Bearer', access_token: sign(claims), id_token: sign({ ...claims, aud: CLIENT, nonce: p.nonce }), expires_in: 600 });
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise<{ issuer: string; seen: typeof seen; close: () => void }>((ok) =>
    server.listen(0, '127.0.0.1', () => {
      issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      ok({ issuer, seen, close: () => server.close() });
    }),
  );
}

test('sign in at the identity provider with PKCE; the token is the bearer', async ({ page }) => {
  const provider = await idp();
  const server = await startModelreg({ MODELREG_OIDC_ISSUERS: provider.issuer, MODELREG_CONSOLE_OIDC_CLIENT_ID: CLIENT });
  try {
    await page.goto(`${server.url}/ui/models`);
    const button = page.getByRole('button', { name: `Sign in with ${new URL(provider.issuer).host}` });
    await expect(button).toBeVisible();
    await accessible(page, 'sign-in with a provider');
    await button.click();
    // Back on the console, signed in as the provider's user, in its organization.
    await expect(page.locator('header .who')).toHaveText('user:alice');
    await expect(page).toHaveURL(`${server.url}/ui/models`);
    await expect(page.getByRole('heading', { name: 'Models' })).toBeVisible();
    const q = provider.seen[0];
    expect(q).toMatchObject({ client_id: CLIENT, redirect_uri: `${server.url}/ui/callback`, code_challenge_method: 'S256' });
    expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The verifier and state are gone; the token lives in this tab only.
    expect(await page.evaluate(() => sessionStorage.getItem('modelreg.oidc'))).toBeNull();
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // The server takes the token: a model made from the console is the user's.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Add model' }).click();
    await page.getByLabel('Name', { exact: true }).fill('From OIDC');
    await page.getByLabel('LiteLLM model', { exact: true }).fill('openai/gpt-4o');
    await page.getByLabel('Value of api_key', { exact: true }).fill('sk-x');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'From OIDC' })).toBeVisible();
    await expect(page.locator('dl.grid').nth(1)).toContainText('user:alice');

    // A callback that does not match the request is refused with a message, not a blank page.
    await page.goto(`${server.url}/ui/callback?code=x&state=forged`);
    await expect(page.getByRole('alert')).toBeVisible();
  } finally {
    await server.stop();
    provider.close();
  }
});
