// Signing in at an OIDC issuer: the authorization-code flow with PKCE (S256), state and
// nonce, as a public client. The browser fetches the issuer's discovery document, sends the
// person to its authorization endpoint, and exchanges the code at its token endpoint itself
// (the server's CSP allows each configured issuer's origin in connect-src). The token it gets
// is then a bearer credential like any other: the server verifies it on every call.
import { session } from './session';

const PENDING = 'modelreg.oidc';

interface Pending {
  issuer: string;
  clientId: string;
  tokenEndpoint: string;
  verifier: string;
  state: string;
  nonce: string;
  returnTo: string;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

function random(bytes = 32): string {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return b64url(a);
}

function b64url(a: Uint8Array): string {
  let s = '';
  a.forEach((b) => (s += String.fromCharCode(b)));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function redirectUri(): string {
  return `${location.origin}/ui/callback`;
}

async function discover(issuer: string): Promise<Discovery> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch {
    throw new Error(`The identity provider ${issuer} could not be reached.`);
  }
  if (!res.ok) throw new Error(`The identity provider answered ${res.status} for its discovery document.`);
  const d = (await res.json()) as Partial<Discovery>;
  if (!d.authorization_endpoint || !d.token_endpoint) {
    throw new Error('The discovery document names no authorization or token endpoint.');
  }
  return d as Discovery;
}

/** Sends the browser to the issuer's sign-in page. */
export async function startSignIn(issuer: string, clientId: string, returnTo: string): Promise<void> {
  if (!crypto.subtle) throw new Error('Signing in with an identity provider needs HTTPS (or localhost).');
  const d = await discover(issuer);
  const verifier = random(32);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const pending: Pending = {
    issuer,
    clientId,
    tokenEndpoint: d.token_endpoint,
    verifier,
    state: random(16),
    nonce: random(16),
    returnTo,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(d.authorization_endpoint);
  const p = url.searchParams;
  p.set('response_type', 'code');
  p.set('client_id', clientId);
  p.set('redirect_uri', redirectUri());
  p.set('scope', 'openid profile');
  p.set('state', pending.state);
  p.set('nonce', pending.nonce);
  p.set('code_challenge', b64url(new Uint8Array(digest)));
  p.set('code_challenge_method', 'S256');
  location.assign(url.toString());
}

function claims(jwt: string): Record<string, unknown> | null {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

/** Finishes a sign-in on /ui/callback; resolves with the page to go back to. */
export async function completeSignIn(search: string): Promise<string> {
  const q = new URLSearchParams(search);
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (q.get('error')) {
    throw new Error(`The identity provider refused: ${q.get('error')}${q.get('error_description') ? ` (${q.get('error_description')})` : ''}.`);
  }
  if (!raw) throw new Error('No sign-in was in progress in this tab. Start again.');
  const p = JSON.parse(raw) as Pending;
  const code = q.get('code');
  if (!code || q.get('state') !== p.state) throw new Error('The sign-in answer does not match the request (state). Start again.');
  let res: Response;
  try {
    res = await fetch(p.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri(),
        client_id: p.clientId,
        code_verifier: p.verifier,
      }),
    });
  } catch {
    throw new Error('The identity provider\'s token endpoint could not be reached.');
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, string>;
  if (!res.ok) throw new Error(`The token exchange failed: ${body.error ?? res.status}${body.error_description ? ` (${body.error_description})` : ''}.`);
  if (body.id_token) {
    const c = claims(body.id_token);
    if (!c || c.nonce !== p.nonce) throw new Error('The ID token does not carry this sign-in\'s nonce.');
  }
  const token = body.access_token || body.id_token;
  if (!token) throw new Error('The identity provider returned no token.');
  session.signIn({ token, kind: 'oidc', issuer: p.issuer });
  return p.returnTo || '/ui/models';
}
