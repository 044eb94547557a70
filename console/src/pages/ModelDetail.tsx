// One model: every field, edit (with If-Match, and a conflict dialog when someone else
// changed it meanwhile), verify, credential names with replacement, its catalog values with
// upstream changes to take or keep, history, delete.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, enc, query, type CatalogSource, type Model, type ModelUpstream, type Provenance, type StoredVerification, type UpstreamChanges } from '../api';
import { useApp } from '../me';
import { navigate } from '../router';
import { UpstreamBadge } from '../ui/catalog';
import { Dialog, ErrorBanner, Link, Loading, StatusBadge, Time, Value } from '../ui/components';
import { CATALOG_FIELDS, CredentialInputs, FIELDS, FIELD_LABEL, FieldValue, ModelFields, credentialsOf, patchOf, same, toForm, type FormValues } from '../ui/modelForm';
import { History } from './History';
import { ModelCatalog, type SettleAction } from './ModelCatalog';

const READ_ONLY = ['id', 'resource_uri', 'organization_id', 'project_id', 'created_at', 'created_by', 'updated_at', 'updated_by', 'last_verified_at'];

interface Conflict {
  theirs: Model;
  theirsEtag: string | null;
  patch: Record<string, unknown>;
  /** What "Overwrite with mine" does (default: the patch again, with their ETag). */
  retry?: (etag: string | null) => Promise<unknown>;
}

export function ModelDetail({ uri }: { uri: string }) {
  const { can } = useApp();
  const [model, setModel] = useState<Model | null>(null);
  const [etag, setEtag] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState<FormValues>({});
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [verified, setVerified] = useState<StoredVerification | null>(null);
  const [notice, setNotice] = useState('');
  const [replacing, setReplacing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [historyKey, setHistoryKey] = useState(0);
  const [upstream, setUpstream] = useState<{ source: CatalogSource; model: ModelUpstream | null } | null>(null);
  const [settling, setSettling] = useState(false);
  const [settleError, setSettleError] = useState<unknown>(null);
  const path = `/assets/models/${enc(uri)}`;

  // Whether the catalog changed upstream for this model.
  const loadUpstream = async (resourceUri: string) => {
    try {
      const r = await call<UpstreamChanges>('GET', `/assets/catalog/changes${query({ resource_uri: resourceUri })}`);
      setUpstream({ source: r.data.source, model: r.data.data.find((m) => m.resource_uri === resourceUri) ?? null });
    } catch (e) {
      setError(e);
    }
  };

  const load = async () => {
    try {
      const r = await call<Model>('GET', path);
      setModel(r.data);
      setEtag(r.etag);
      setError(null);
      return r;
    } catch (e) {
      setError(e);
      return null;
    }
  };
  useEffect(() => {
    load().then((r) => r && loadUpstream(r.data.resource_uri));
  }, [uri]);

  const shown = (m: Model) => {
    setModel(m);
    setHistoryKey((k) => k + 1);
    loadUpstream(m.resource_uri);
  };

  /** A 412: their version beside what we meant to write, in the conflict dialog. */
  const conflicted = async (patch: Record<string, unknown>, onError: (e: unknown) => void, retry?: Conflict['retry']) => {
    try {
      const now = await call<Model>('GET', path);
      setConflict({ theirs: now.data, theirsEtag: now.etag, patch, retry });
      return true;
    } catch (e) {
      onError(e);
      return false;
    }
  };

  // Take or keep upstream changes (all, or `fields`), guarded by the model's ETag.
  const settle = async (action: SettleAction, fields: string[] | undefined, ifMatch: string | null) => {
    const changes = (upstream?.model?.changes ?? []).filter((c) => !fields || fields.includes(c.field));
    setSettling(true);
    setSettleError(null);
    setNotice('');
    try {
      const r = await call<Model>('POST', `/assets/catalog/changes/${enc(model?.resource_uri ?? uri)}`, {
        body: fields ? { action, fields } : { action },
        headers: ifMatch ? { 'If-Match': ifMatch } : {},
      });
      shown(r.data);
      setEtag(r.etag);
      setConflict(null);
      const names = changes.map((c) => FIELD_LABEL[c.field] ?? c.field).join(', ');
      setNotice(action === 'take' ? `Took the catalog's ${names}.` : `Kept the current ${names}: now this model's own.`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'PRECONDITION_FAILED') {
        const patch = Object.fromEntries(changes.map((c) => [c.field, action === 'take' ? c.upstream : c.current]));
        await conflicted(patch, setSettleError, (etag) => settle(action, fields, etag));
      } else {
        setSettleError(e);
      }
    } finally {
      setSettling(false);
    }
  };

  const save = async (patch: Record<string, unknown>, ifMatch: string | null): Promise<'ok' | 'conflict' | 'error'> => {
    setSaving(true);
    setSaveError(null);
    try {
      const r = await call<Model>('PATCH', path, { body: patch, headers: ifMatch ? { 'If-Match': ifMatch } : {} });
      shown(r.data);
      setEtag(r.etag);
      setEditing(false);
      setConflict(null);
      setNotice('Saved.');
      return 'ok';
    } catch (e) {
      if (e instanceof ApiError && e.code === 'PRECONDITION_FAILED') {
        // Someone else changed the model since it was loaded: show their version beside ours.
        if (await conflicted(patch, setSaveError)) return 'conflict';
      } else {
        setSaveError(e);
      }
      return 'error';
    } finally {
      setSaving(false);
    }
  };

  const submitEdit = (e: Event) => {
    e.preventDefault();
    if (!model) return;
    const patch = patchOf(form, model);
    if (!Object.keys(patch).length) {
      setEditing(false);
      setNotice('Nothing changed.');
      return;
    }
    save(patch, etag);
  };

  const verify = async () => {
    setVerifying(true);
    setVerified(null);
    setError(null);
    try {
      const r = await call<StoredVerification>('POST', `${path}/verify`);
      setVerified(r.data);
      const fresh = await load();
      if (fresh) shown(fresh.data);
    } catch (e) {
      setError(e);
    } finally {
      setVerifying(false);
    }
  };

  if (error && !model) {
    return (
      <main id="main" class="page">
        <p>
          <Link href="/ui/models">← Models</Link>
        </p>
        <h1>{uri}</h1>
        <ErrorBanner error={error} />
      </main>
    );
  }
  if (!model) {
    return (
      <main id="main" class="page">
        <Loading what="the model" />
      </main>
    );
  }

  return (
    <main id="main" class="page">
      <p>
        <Link href="/ui/models">← Models</Link>
      </p>
      <div class="title">
        <h1>{model.name}</h1>
        <StatusBadge status={model.status} message={model.status_message} verifiedAt={model.last_verified_at} />
        {upstream?.model && upstream.model.changes.length > 0 && <UpstreamBadge />}
        <div class="spacer" />
        {can.verify && (
          <button type="button" onClick={verify} disabled={verifying}>
            {verifying ? 'Verifying…' : 'Verify'}
          </button>
        )}
        {can.write && !editing && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setForm(toForm(model));
              setEditing(true);
              setNotice('');
              setSaveError(null);
            }}
          >
            Edit
          </button>
        )}
        {can.delete && (
          <button type="button" class="danger" onClick={() => setDeleting(true)}>
            Delete
          </button>
        )}
      </div>
      <p class="health">
        <span class="mono muted">{model.resource_uri}</span> · {model.status_message ? <span class="status-message">{model.status_message}</span> : <span class="muted">no status message</span>} · last verified <Time at={model.last_verified_at} />
      </p>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {verified && (
        <div class={`result ${verified.verified ? 'ok' : 'bad'}`} role="status">
          <strong>{verified.verified ? 'Verified' : 'Verification failed'}</strong>: {verified.message} ({verified.latency_ms} ms). Status is now {verified.status}.
        </div>
      )}
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}

      {editing ? (
        <form class="card" onSubmit={submitEdit} aria-label="Edit model">
          <h2>Edit</h2>
          <ErrorBanner error={saveError} />
          <ModelFields values={form} editing origins={editOrigins(form, model)} onChange={(k, v) => setForm({ ...form, [k]: v })} />
          <div class="actions">
            <button type="submit" disabled={saving}>
              {saving ? 'Saving…' : 'Save'}
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <section class="card" aria-labelledby="fields-h">
          <h2 id="fields-h">Configuration</h2>
          <dl class="grid">
            {FIELDS.filter((f) => !f.catalog).map((f) => (
              <div key={f.name}>
                <dt>{f.label}</dt>
                <dd>
                  <FieldValue name={f.name} v={(model as Record<string, unknown>)[f.name]} />
                </dd>
              </div>
            ))}
          </dl>
        </section>
      )}
      {!editing && <ErrorBanner error={settleError} onDismiss={() => setSettleError(null)} />}
      {!editing && (
        <ModelCatalog
          model={model}
          upstream={upstream?.model ?? null}
          source={upstream?.source ?? null}
          canWrite={can.write}
          busy={settling}
          onSettle={(action, fields) => settle(action, fields, etag)}
        />
      )}

      <section class="card" aria-labelledby="creds-h">
        <h2 id="creds-h">Credentials</h2>
        <p>
          Stored keys:{' '}
          {model.credential_fields.length ? (
            model.credential_fields.map((k) => (
              <code class="tag" key={k}>
                {k}
              </code>
            ))
          ) : (
            <span class="muted">none</span>
          )}
        </p>
        <p class="muted small">Values are encrypted on the server and never shown.</p>
        {can.write && (
          <button type="button" class="secondary" onClick={() => setReplacing(true)}>
            Replace credentials
          </button>
        )}
      </section>

      <section class="card" aria-labelledby="meta-h">
        <h2 id="meta-h">Record</h2>
        <dl class="grid">
          {READ_ONLY.map((k) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{k.endsWith('_at') ? <Time at={(model as Record<string, any>)[k]} /> : <Value v={(model as Record<string, unknown>)[k]} />}</dd>
            </div>
          ))}
        </dl>
      </section>

      <History key={historyKey} path={path} />

      {conflict && (
        <ConflictDialog
          conflict={conflict}
          base={model}
          onTheirs={() => {
            shown(conflict.theirs);
            setEtag(conflict.theirsEtag);
            setConflict(null);
            setEditing(false);
            setNotice('Their version is shown; your changes were discarded.');
          }}
          onOverwrite={() => (conflict.retry ? conflict.retry(conflict.theirsEtag) : save(conflict.patch, conflict.theirsEtag))}
          onCancel={() => setConflict(null)}
          saving={saving || settling}
        />
      )}
      {replacing && (
        <ReplaceCredentials
          keys={model.credential_fields}
          onCancel={() => setReplacing(false)}
          onSave={async (credentials) => {
            if ((await save({ credentials }, etag)) !== 'error') setReplacing(false);
          }}
          error={saveError}
        />
      )}
      {deleting && (
        <Dialog title={`Delete ${model.name}?`} role="alertdialog" onClose={() => setDeleting(false)}>
          <DeleteBody
            uri={model.resource_uri}
            onCancel={() => setDeleting(false)}
            onDelete={async () => {
              await call('DELETE', path, { headers: etag ? { 'If-Match': etag } : {} });
              navigate('/ui/models');
            }}
          />
        </Dialog>
      )}
    </main>
  );
}

function ConflictDialog(props: { conflict: Conflict; base: Model; onTheirs: () => void; onOverwrite: () => void; onCancel: () => void; saving: boolean }) {
  const { theirs, patch } = props.conflict;
  const t = theirs as Record<string, unknown>;
  const b = props.base as Record<string, unknown>;
  // Every field either side changed: theirs since we loaded, ours in the form.
  const fields = FIELDS.map((f) => f.name).filter((k) => k in patch || !same(t[k], b[k]));
  return (
    <Dialog title="Someone else changed this model" onClose={props.onCancel} wide role="alertdialog">
      <p>
        It was changed by <strong>{theirs.updated_by}</strong> <Time at={theirs.updated_at} /> while you were editing. Compare and choose.
      </p>
      <table class="diff">
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Their version (saved)</th>
            <th scope="col">Your version</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((k) => {
            const mine = k in patch ? patch[k] : b[k];
            return (
              <tr key={k} class={same(t[k], mine) ? '' : 'changed'}>
                <th scope="row">{FIELD_LABEL[k] ?? k}</th>
                <td>
                  <FieldValue name={k} v={t[k]} />
                </td>
                <td>{k in patch ? <FieldValue name={k} v={mine} /> : <span class="muted">not changed by you (theirs stays)</span>}</td>
              </tr>
            );
          })}
          {'credentials' in patch && (
            <tr class="changed">
              <th scope="row">Credentials</th>
              <td>{(theirs.credential_fields ?? []).join(', ')}</td>
              <td>replaced ({Object.keys(patch.credentials as object).join(', ')})</td>
            </tr>
          )}
        </tbody>
      </table>
      <div class="actions">
        <button type="button" class="secondary" onClick={props.onTheirs}>
          Keep theirs
        </button>
        <button type="button" class="danger" onClick={props.onOverwrite} disabled={props.saving}>
          Overwrite with mine
        </button>
        <button type="button" class="link" onClick={props.onCancel}>
          Back to editing
        </button>
      </div>
    </Dialog>
  );
}

function ReplaceCredentials(props: { keys: string[]; onCancel: () => void; onSave: (c: Record<string, string>) => Promise<void>; error: unknown }) {
  const [rows, setRows] = useState(props.keys.length ? props.keys.map((key) => ({ key, value: '' })) : [{ key: 'api_key', value: '' }]);
  const creds = credentialsOf(rows);
  return (
    <Dialog title="Replace credentials" onClose={props.onCancel}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          await props.onSave(creds);
        }}
      >
        <p class="muted">The stored credentials are replaced as a whole by these. Current values are never shown.</p>
        <ErrorBanner error={props.error} />
        <CredentialInputs rows={rows} onChange={setRows} />
        <div class="actions">
          <button type="submit" disabled={!Object.keys(creds).length}>
            Replace
          </button>
          <button type="button" class="secondary" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function DeleteBody(props: { uri: string; onCancel: () => void; onDelete: () => Promise<void> }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <p>
        This removes <code>{props.uri}</code> and its stored credentials. Its history stays in the audit log.
      </p>
      <ErrorBanner error={error} />
      <div class="actions">
        <button type="button" class="secondary" data-autofocus onClick={props.onCancel}>
          Cancel
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await props.onDelete();
            } catch (e) {
              setError(e);
              setBusy(false);
            }
          }}
        >
          Delete model
        </button>
      </div>
    </>
  );
}

/** In the edit form: a catalogued field changed there becomes an override when saved. */
function editOrigins(form: FormValues, model: Model): Record<string, Provenance | undefined> {
  const was = toForm(model as Record<string, unknown>);
  return Object.fromEntries(
    CATALOG_FIELDS.map((f): [string, Provenance | undefined] => [f, (form[f] ?? '') !== was[f] ? 'override' : model.catalog.fields[f]]),
  );
}
