// Add a model: pick a provider preset (its credential keys and default api_base), fill the
// fields, verify with POST /assets/models/verify (nothing is stored), then create. As the
// LiteLLM model (and base model) are typed, the catalog's entry for them is looked up and its
// values fill the catalogued fields, marked "from catalog". Those are not sent: the server
// fills them from the same entry and records them as the catalog's. A field the user changes
// is an override, and is sent.
import { useEffect, useState } from 'preact/hooks';
import { call, query, type CatalogEntry, type CatalogPage, type CatalogSource, type Model, type ProbeOutcome, type Provenance } from '../api';
import { useApp } from '../me';
import { PRESETS } from '../providers';
import { navigate } from '../router';
import { ErrorBanner, Link } from '../ui/components';
import { CATALOG_FIELDS, FIELDS, CredentialInputs, ModelFields, createBody, credentialsOf, toForm, valueOf, type FormValues } from '../ui/modelForm';

const OTHER_FIELDS = FIELDS.filter((f) => !f.catalog).map((f) => f.name);

interface Lookup {
  /** What was looked up. */
  model: string;
  base: string;
  entry: CatalogEntry | null;
  source: CatalogSource;
}

/** The catalog's entry for a model string, looked up 300 ms after the last keystroke; none (null) while the string names no model. */
function useCatalogEntry(model: string, base: string) {
  const [found, setFound] = useState<Lookup | null>(null);
  const [error, setError] = useState<unknown>(null);
  // A model string without a name after its provider ("openai/") names nothing yet.
  const complete = model.trim() !== '' && !model.trim().endsWith('/');
  useEffect(() => {
    if (!complete) {
      setFound(null);
      setError(null);
      return;
    }
    const ac = new AbortController();
    const t = setTimeout(() => {
      call<CatalogPage>('GET', `/assets/catalog${query({ litellm_model: model.trim(), base_model: base.trim() })}`, { signal: ac.signal }).then(
        (r) => {
          setFound({ model, base, entry: r.data.data[0] ?? null, source: r.data.source });
          setError(null);
        },
        (e) => {
          if (e.name === 'AbortError') return;
          setError(e);
        },
      );
    }, 300);
    return () => {
      clearTimeout(t);
      ac.abort();
    };
  }, [model, base, complete]);
  // The last answer stays until the next one, so the fields do not blink while typing.
  const stale = !found || found.model !== model || found.base !== base;
  return { lookup: found, pending: complete && stale && !error, error };
}

export function AddModel() {
  const { can } = useApp();
  // "Add as model" in the catalog opens this page with the entry's model string.
  const [given] = useState(() => new URLSearchParams(location.search).get('litellm_model') ?? '');
  const [presetId, setPresetId] = useState(() => PRESETS.find((p) => given.startsWith(`${p.prefix}/`))?.id ?? 'openai');
  const preset = PRESETS.find((p) => p.id === presetId)!;
  const [form, setForm] = useState<FormValues>(() => ({ ...toForm(null), litellm_model: given || 'openai/' }));
  // The catalogued fields the user changed: sent, as overrides, unless changed back.
  const [edited, setEdited] = useState<string[]>([]);
  const { lookup, pending, error: lookupError } = useCatalogEntry(form.litellm_model, form.base_model);
  const catalogValues = toForm(lookup?.entry ?? null);
  const overridden = (f: string) => edited.includes(f) && (form[f] ?? '') !== catalogValues[f];

  // A new entry (or none) fills every catalogued field the user has not changed.
  useEffect(() => {
    setForm((prev) => {
      const next = { ...prev };
      for (const f of CATALOG_FIELDS) if (!edited.includes(f)) next[f] = catalogValues[f];
      return next;
    });
  }, [lookup]);
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
    // Only the overrides: a field left as the catalog's is filled (and recorded) by the server.
    for (const f of CATALOG_FIELDS) {
      if (!overridden(f)) continue;
      const v = valueOf(f, form);
      if (v !== undefined) b[f] = v;
    }
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
          only={OTHER_FIELDS}
          placeholders={{ api_base: preset.defaultBase ?? 'https://…', litellm_model: preset.example }}
          onChange={(k, v) => {
            setForm({ ...form, [k]: v });
            setOutcome(null);
          }}
        />
        <fieldset>
          <legend>Prices, limits and capabilities</legend>
          <CatalogMatch lookup={lookup} pending={pending} error={lookupError} />
          <ModelFields
            values={form}
            editing={false}
            only={CATALOG_FIELDS}
            origins={Object.fromEntries(
              CATALOG_FIELDS.map((f): [string, Provenance | undefined] => [f, overridden(f) ? 'override' : lookup?.entry && catalogValues[f] !== '' ? 'catalog' : undefined]),
            )}
            onReset={
              lookup?.entry
                ? (f) => {
                    setEdited(edited.filter((x) => x !== f));
                    setForm({ ...form, [f]: catalogValues[f] });
                  }
                : undefined
            }
            onChange={(k, v) => {
              setForm({ ...form, [k]: v });
              if (!edited.includes(k)) setEdited([...edited, k]);
              setOutcome(null);
            }}
          />
        </fieldset>
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

/** Which catalog entry the fields below come from, or that none matches. */
function CatalogMatch({ lookup, pending, error }: { lookup: Lookup | null; pending: boolean; error: unknown }) {
  if (error) return <ErrorBanner error={error} />;
  return (
    <p class="catalog-match small" role="status">
      {pending ? (
        <span class="muted">Looking the model up in the catalog…</span>
      ) : !lookup ? (
        <span class="muted">Type the LiteLLM model to fill these from the catalog.</span>
      ) : lookup.entry ? (
        <>
          From the catalog entry <code>{lookup.entry.key}</code> ({lookup.source.name} {lookup.source.version}, {lookup.source.date}). Values left as the
          catalog's follow it; a value you change is this model's own (an override).
        </>
      ) : (
        <>
          <strong>No catalog entry</strong> for <code>{lookup.model.trim()}</code>
          {lookup.base.trim() && (
            <>
              {' '}
              with base model <code>{lookup.base.trim()}</code>
            </>
          )}
          : fill in what you know.
        </>
      )}
    </p>
  );
}
