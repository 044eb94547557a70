// Add a model: pick a provider preset (its credential keys and default api_base), fill the
// fields, verify with POST /assets/models/verify (nothing is stored), then create.
import { useState } from 'preact/hooks';
import { call, type Model, type ProbeOutcome } from '../api';
import { useApp } from '../me';
import { PRESETS } from '../providers';
import { navigate } from '../router';
import { ErrorBanner, Link } from '../ui/components';
import { CredentialInputs, ModelFields, createBody, credentialsOf, toForm, type FormValues } from '../ui/modelForm';

export function AddModel() {
  const { can } = useApp();
  const [presetId, setPresetId] = useState('openai');
  const preset = PRESETS.find((p) => p.id === presetId)!;
  const [form, setForm] = useState<FormValues>(() => ({ ...toForm(null), litellm_model: 'openai/' }));
  const [uri, setUri] = useState('');
  const [rows, setRows] = useState(preset.keys.map((k) => ({ key: k.key, value: '' })));
  const [error, setError] = useState<unknown>(null);
  const [outcome, setOutcome] = useState<ProbeOutcome | null>(null);
  const [busy, setBusy] = useState<'verify' | 'create' | null>(null);

  const choose = (id: string) => {
    const next = PRESETS.find((p) => p.id === id)!;
    setPresetId(id);
    setRows(next.keys.map((k) => ({ key: k.key, value: '' })));
    const model = form.litellm_model;
    const rest = model.includes('/') ? model.slice(model.indexOf('/') + 1) : model;
    setForm({ ...form, litellm_model: `${next.prefix}/${rest}` });
    setOutcome(null);
  };

  const body = () => {
    const b: Record<string, unknown> = { ...createBody(form), credentials: credentialsOf(rows) };
    if (uri.trim()) b.resource_uri = uri.trim();
    return b;
  };

  const verify = async () => {
    setBusy('verify');
    setError(null);
    setOutcome(null);
    try {
      setOutcome((await call<ProbeOutcome>('POST', '/assets/models/verify', { body: body() })).data);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy('create');
    setError(null);
    try {
      const r = await call<Model>('POST', '/assets/models', { body: body() });
      navigate(`/ui/models/${encodeURIComponent(r.data.resource_uri)}`);
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };

  if (!can.write) {
    return (
      <main id="main" class="page">
        <h1>Add model</h1>
        <p>Your role in this project may not create models.</p>
      </main>
    );
  }

  const hints = Object.fromEntries(preset.keys.filter((k) => k.hint || k.optional).map((k) => [k.key, [k.optional ? 'optional' : '', k.hint ?? ''].filter(Boolean).join(': ')]));
  return (
    <main id="main" class="page">
      <p>
        <Link href="/ui/models">← Models</Link>
      </p>
      <h1>Add model</h1>
      <form class="card" onSubmit={create} aria-label="New model">
        <div class="fields">
          <div class="field">
            <label for="preset">Provider preset</label>
            <select id="preset" value={presetId} onChange={(e) => choose(e.currentTarget.value)} aria-describedby="preset-hint">
              {PRESETS.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.label}
                </option>
              ))}
            </select>
            <small id="preset-hint" class="muted">
              e.g. <code>{preset.example}</code>.{' '}
              {preset.defaultBase ? (
                <>
                  Leave the API base empty for <code>{preset.defaultBase}</code>.
                </>
              ) : (
                <>This provider needs an API base URL.</>
              )}
              {preset.needsApiVersion && ' Set the API version of your deployment.'}
            </small>
          </div>
          <div class="field">
            <label for="f-resource_uri">Resource URI</label>
            <input id="f-resource_uri" type="text" value={uri} pattern="[a-z0-9-]{1,100}" autoComplete="off" aria-describedby="uri-hint" onInput={(e) => setUri(e.currentTarget.value)} />
            <small id="uri-hint" class="muted">
              a-z, 0-9 and -; generated from the name when empty
            </small>
          </div>
        </div>
        <ModelFields
          values={form}
          editing={false}
          placeholders={{ api_base: preset.defaultBase ?? 'https://…', litellm_model: preset.example }}
          onChange={(k, v) => {
            setForm({ ...form, [k]: v });
            setOutcome(null);
          }}
        />
        <fieldset>
          <legend>Credentials</legend>
          <p class="muted small">Stored encrypted; never shown again. A value may be a reference such as <code>os.environ/OPENAI_API_KEY</code>.</p>
          <CredentialInputs
            rows={rows}
            hints={hints}
            onChange={(r) => {
              setRows(r);
              setOutcome(null);
            }}
          />
        </fieldset>
        <ErrorBanner error={error} />
        {outcome && (
          <div class={`result ${outcome.verified ? 'ok' : 'bad'}`} role="status">
            <strong>{outcome.verified ? 'Verified' : 'Verification failed'}</strong>: {outcome.message} ({outcome.latency_ms} ms)
          </div>
        )}
        <div class="actions">
          {can.verify && (
            <button type="button" class="secondary" onClick={verify} disabled={!!busy}>
              {busy === 'verify' ? 'Verifying…' : 'Verify'}
            </button>
          )}
          <button type="submit" disabled={!!busy}>
            {busy === 'create' ? 'Creating…' : outcome && !outcome.verified ? 'Create anyway' : 'Create'}
          </button>
        </div>
      </form>
    </main>
  );
}
