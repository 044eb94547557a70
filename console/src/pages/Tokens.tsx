// API tokens of the organization (owners and admins): list, create (the secret is shown
// once), revoke.
import { useEffect, useState } from 'preact/hooks';
import { call, enc, type CreatedToken, type TokenView } from '../api';
import { useApp } from '../me';
import { Dialog, ErrorBanner, Loading, Time } from '../ui/components';

const ROLES = ['owner', 'admin', 'member', 'developer', 'operator', 'viewer'];

export function Tokens() {
  const { can, project } = useApp();
  const [tokens, setTokens] = useState<TokenView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [form, setForm] = useState({ name: '', project: project ?? '*', role: 'viewer', expires: '' });
  const [formError, setFormError] = useState<unknown>(null);

  const load = () =>
    call<TokenView[]>('GET', '/admin/tokens', { project: false }).then(
      (r) => setTokens(r.data),
      setError,
    );
  useEffect(() => {
    load();
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    try {
      const body: Record<string, string> = { name: form.name.trim(), project: form.project.trim(), role: form.role };
      if (form.expires) body.expires_at = new Date(form.expires).toISOString();
      const r = await call<CreatedToken>('POST', '/admin/tokens', { body, project: false });
      setCreated(r.data);
      setForm({ ...form, name: '' });
      load();
    } catch (err) {
      setFormError(err);
    }
  };

  return (
    <main id="main" class="page">
      <h1>API tokens</h1>
      {!can.manage_tokens && <p class="muted">Only owners and admins of the whole organization manage tokens; the server will refuse otherwise.</p>}
      <ErrorBanner error={error} />
      <form class="card" onSubmit={create} aria-labelledby="new-token-h">
        <h2 id="new-token-h">New token</h2>
        <div class="fields">
          <div class="field">
            <label for="t-name">Name</label>
            <input id="t-name" required pattern="[A-Za-z0-9._\-]{1,100}" value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} autoComplete="off" />
          </div>
          <div class="field">
            <label for="t-project">Project</label>
            <input id="t-project" required value={form.project} onInput={(e) => setForm({ ...form, project: e.currentTarget.value })} aria-describedby="t-project-hint" />
            <small id="t-project-hint" class="muted">
              a project id, or * for all
            </small>
          </div>
          <div class="field">
            <label for="t-role">Role</label>
            <select id="t-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="t-expires">Expires</label>
            <input id="t-expires" type="datetime-local" value={form.expires} onInput={(e) => setForm({ ...form, expires: e.currentTarget.value })} aria-describedby="t-expires-hint" />
            <small id="t-expires-hint" class="muted">
              optional; never when empty
            </small>
          </div>
        </div>
        <ErrorBanner error={formError} />
        <div class="actions">
          <button type="submit">Create token</button>
        </div>
      </form>
      {!tokens && !error && <Loading what="tokens" />}
      {tokens && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">API tokens</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Project</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.name} class={t.revoked_at ? 'revoked' : ''}>
                  <td class="mono">{t.name}</td>
                  <td>{t.project}</td>
                  <td>{t.role}</td>
                  <td>
                    <Time at={t.created_at} />
                  </td>
                  <td>{t.expires_at ? <Time at={t.expires_at} /> : <span class="muted">never</span>}</td>
                  <td>
                    <Time at={t.last_used_at} />
                  </td>
                  <td>{t.revoked_at ? <>revoked <Time at={t.revoked_at} /></> : 'active'}</td>
                  <td>
                    {!t.revoked_at && (
                      <button type="button" class="danger small" onClick={() => setRevoking(t.name)} aria-label={`Revoke ${t.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {created && (
        <Dialog title={`Token ${created.name} created`} onClose={() => setCreated(null)}>
          <p>
            Copy the secret now. <strong>It is shown only this once</strong>: only its hash is stored.
          </p>
          <label for="secret">Secret</label>
          <input id="secret" class="mono" readOnly value={created.token} data-autofocus onFocus={(e) => e.currentTarget.select()} />
          <div class="actions">
            <button type="button" class="secondary" onClick={() => navigator.clipboard?.writeText(created.token)}>
              Copy
            </button>
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </Dialog>
      )}
      {revoking && (
        <RevokeDialog
          name={revoking}
          onClose={() => setRevoking(null)}
          onRevoked={() => {
            setRevoking(null);
            load();
          }}
        />
      )}
    </main>
  );
}

function RevokeDialog(props: { name: string; onClose: () => void; onRevoked: () => void }) {
  const [error, setError] = useState<unknown>(null);
  return (
    <Dialog title={`Revoke ${props.name}?`} role="alertdialog" onClose={props.onClose}>
      <p>The token stops working at once, everywhere. This cannot be undone.</p>
      <ErrorBanner error={error} />
      <div class="actions">
        <button type="button" class="secondary" data-autofocus onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class="danger"
          onClick={() => call('DELETE', `/admin/tokens/${enc(props.name)}`, { project: false }).then(props.onRevoked, setError)}
        >
          Revoke token
        </button>
      </div>
    </Dialog>
  );
}
