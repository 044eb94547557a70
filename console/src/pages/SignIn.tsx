// Sign in: paste an API token, or sign in at a configured OIDC issuer.
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api';
import { startSignIn } from '../oidc';
import { session } from '../session';
import { ErrorBanner } from '../ui/components';

interface ConsoleConfig {
  oidc: { issuer: string; client_id: string }[];
  version?: string;
}

export function SignIn() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState<ConsoleConfig | null>(null);

  useEffect(() => {
    // Where no issuer is configured (or the server is older), paste-a-token is the way in.
    call<ConsoleConfig>('GET', '/ui/config.json', { project: false }).then(
      (r) => setConfig(r.data),
      () => setConfig({ oidc: [] }),
    );
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    try {
      // Checked before it is kept: a wrong token never reaches session storage.
      await call('GET', '/auth/me', { project: false, headers: { Authorization: `Bearer ${t}` } });
      setToken('');
      session.signIn({ token: t, kind: 'token' });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const oidc = async (issuer: string, clientId: string) => {
    setError(null);
    try {
      const back = location.pathname.startsWith('/ui/') && location.pathname !== '/ui/callback' ? location.pathname + location.search : '/ui/models';
      await startSignIn(issuer, clientId, back);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <main id="main" class="signin">
      <h1>modelreg</h1>
      <p class="muted">Sign in to the model registry.</p>
      <ErrorBanner error={error} />
      <form onSubmit={submit} class="card">
        <label for="token">API token</label>
        <input id="token" type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} aria-describedby="token-hint" required />
        <small id="token-hint" class="muted">
          A token from <code>modelreg token create</code>, or the one <code>modelreg serve</code> printed on its first start. It is kept in this tab only.
        </small>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {config && config.oidc.length > 0 && (
        <div class="card">
          {config.oidc.map((o) => (
            <button type="button" class="secondary block" key={o.issuer} onClick={() => oidc(o.issuer, o.client_id)}>
              Sign in with {new URL(o.issuer).host}
            </button>
          ))}
        </div>
      )}
      {config?.version && <p class="muted small">modelreg {config.version}</p>}
    </main>
  );
}
