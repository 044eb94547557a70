// The fields of a model as a form, once, for adding and for editing: every writable field of
// SPEC §1. Values are held as the strings the inputs show and turned into the API's types
// only when sent, so a half-typed number never becomes a wrong value. Prices are shown and
// typed per million tokens, and sent per token, as the API keeps them.
import { MODES, STATUSES, type Model, type Provenance } from '../api';
import { perMillion, perToken, plainDecimal } from '../catalog';
import { CapabilityChecks, CapabilityChips, Origin, Price } from './catalog';
import { Value } from './components';

export type FieldKind = 'text' | 'textarea' | 'url' | 'int' | 'number' | 'price' | 'date' | 'capabilities' | 'tags' | 'mode' | 'status';

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
  hint?: string;
  /** Only when editing: new models always start PENDING. */
  editOnly?: boolean;
  /** Filled from the catalog when not given (docs/catalog.md). */
  catalog?: boolean;
}

export const FIELDS: FieldSpec[] = [
  { name: 'name', label: 'Name', kind: 'text', required: true, hint: 'required' },
  { name: 'litellm_model', label: 'LiteLLM model', kind: 'text', required: true, hint: 'required: provider/model, e.g. openai/gpt-4o' },
  { name: 'base_model', label: 'Base model', kind: 'text', hint: 'the catalog entry of a deployment, e.g. azure/gpt-4o' },
  { name: 'provider', label: 'Provider', kind: 'text', hint: 'inferred from the LiteLLM model when empty' },
  { name: 'mode', label: 'Mode', kind: 'mode' },
  { name: 'api_base', label: 'API base URL', kind: 'url' },
  { name: 'api_version', label: 'API version', kind: 'text' },
  { name: 'description', label: 'Description', kind: 'textarea' },
  { name: 'tags', label: 'Tags', kind: 'tags', hint: 'comma-separated' },
  { name: 'input_cost_per_token', label: 'Input price (USD per 1M tokens)', kind: 'price', catalog: true },
  { name: 'output_cost_per_token', label: 'Output price (USD per 1M tokens)', kind: 'price', catalog: true },
  { name: 'cache_read_cost_per_token', label: 'Cache read price (USD per 1M tokens)', kind: 'price', catalog: true },
  { name: 'cache_write_cost_per_token', label: 'Cache write price (USD per 1M tokens)', kind: 'price', catalog: true },
  { name: 'max_input_tokens', label: 'Max input tokens', kind: 'int', catalog: true, hint: 'the context window' },
  { name: 'max_output_tokens', label: 'Max output tokens', kind: 'int', catalog: true },
  { name: 'deprecation_date', label: 'Deprecation date', kind: 'date', catalog: true },
  { name: 'capabilities', label: 'Capabilities', kind: 'capabilities', catalog: true },
  { name: 'default_max_tokens', label: 'Default max tokens', kind: 'int' },
  { name: 'rpm', label: 'Requests per minute (rpm)', kind: 'int' },
  { name: 'tpm', label: 'Tokens per minute (tpm)', kind: 'int' },
  { name: 'default_temperature', label: 'Default temperature', kind: 'number', hint: '0 to 9.99' },
  { name: 'timeout', label: 'Timeout (seconds)', kind: 'number' },
  { name: 'status', label: 'Status', kind: 'status', editOnly: true },
  { name: 'status_message', label: 'Status message', kind: 'textarea', editOnly: true },
];

export const FIELD_LABEL: Record<string, string> = Object.fromEntries(FIELDS.map((f) => [f.name, f.label]));
const BY_NAME: Record<string, FieldSpec> = Object.fromEntries(FIELDS.map((f) => [f.name, f]));

/** The fields the catalog fills. */
export const CATALOG_FIELDS = FIELDS.filter((f) => f.catalog).map((f) => f.name);

export type FormValues = Record<string, string>;

/** The form's strings for a model, or a catalog entry (or empty ones for a new model). */
export function toForm(m?: Record<string, unknown> | null): FormValues {
  const v: FormValues = {};
  for (const f of FIELDS) {
    const x = m ? m[f.name] : undefined;
    if (x === null || x === undefined) v[f.name] = '';
    else if (f.kind === 'price' && typeof x === 'number') v[f.name] = plainDecimal(perMillion(x));
    else v[f.name] = Array.isArray(x) ? x.join(', ') : String(x);
  }
  return v;
}

/** A field's string as the API's value; `undefined` marks an input that is not a value. */
export function fromInput(f: FieldSpec, s: string): unknown {
  const t = s.trim();
  switch (f.kind) {
    case 'tags':
    case 'capabilities':
      return t ? t.split(',').map((x) => x.trim()).filter(Boolean) : [];
    case 'int':
    case 'number': {
      if (!t) return null;
      const n = Number(t);
      return Number.isFinite(n) ? n : undefined;
    }
    case 'price':
      return t ? perToken(t) : null;
    case 'status':
      return t;
    case 'textarea':
      return s === '' ? null : s;
    default:
      return t === '' ? (f.required ? '' : null) : t;
  }
}

/** The value of field `name` as typed, for the API. */
export const valueOf = (name: string, values: FormValues) => fromInput(BY_NAME[name], values[name] ?? '');

export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * The fields whose value differs from `base`, as a merge patch. A field whose text was not
 * touched is never sent, so a price that reads the same is not made an override by rounding.
 */
export function patchOf(values: FormValues, base: Partial<Model>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  const was = toForm(base as Record<string, unknown>);
  for (const f of FIELDS) {
    if ((values[f.name] ?? '') === was[f.name]) continue;
    const v = fromInput(f, values[f.name] ?? '');
    if (v === undefined) continue;
    if (!same(v, (base as Record<string, unknown>)[f.name])) patch[f.name] = v;
  }
  return patch;
}

/**
 * The create body's fields: every non-empty one (new models take the server's defaults), but
 * no catalogued field: the add form sends those it overrides itself.
 */
export function createBody(values: FormValues): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of FIELDS) {
    if (f.editOnly || f.catalog) continue;
    const v = fromInput(f, values[f.name] ?? '');
    if (v === undefined || v === null || (Array.isArray(v) && !v.length)) continue;
    body[f.name] = v;
  }
  return body;
}

/** A field's value as a page shows it: prices per million tokens, capabilities as chips. */
export function FieldValue({ name, v }: { name: string; v: unknown }) {
  const kind = BY_NAME[name]?.kind;
  if (v === null || v === undefined) return <span class="muted">not set</span>;
  if (kind === 'price' && typeof v === 'number') return <Price v={v} />;
  if (kind === 'int' && typeof v === 'number') return <span>{v.toLocaleString('en-US')}</span>;
  if (kind === 'capabilities' && Array.isArray(v)) return v.length ? <CapabilityChips caps={v as string[]} /> : <span class="muted">none</span>;
  return <Value v={v} />;
}

export function ModelFields(props: {
  values: FormValues;
  onChange: (name: string, value: string) => void;
  editing: boolean;
  placeholders?: Record<string, string>;
  only?: string[];
  /** For catalogued fields: whether the value shown is the catalog's or the model's own. */
  origins?: Record<string, Provenance | undefined>;
  /** Offers "Use the catalog's value" beside an override. */
  onReset?: (name: string) => void;
}) {
  const { values, onChange, editing } = props;
  const fields = FIELDS.filter((f) => (editing || !f.editOnly) && (!props.only || props.only.includes(f.name)));
  return (
    <div class="fields">
      {fields.map((f) => {
        const id = `f-${f.name}`;
        const origin = props.origins?.[f.name];
        const described = [f.hint ? `${id}-hint` : '', origin ? `${id}-origin` : ''].filter(Boolean).join(' ') || undefined;
        const common = {
          id,
          name: f.name,
          value: values[f.name] ?? '',
          required: f.required,
          'aria-describedby': described,
          placeholder: props.placeholders?.[f.name],
          onInput: (e: Event) => onChange(f.name, (e.currentTarget as HTMLInputElement).value),
        };
        const marks = (origin || f.hint) && (
          <small class="marks">
            <Origin p={origin} id={`${id}-origin`} />
            {origin === 'override' && props.onReset && (
              <button type="button" class="link small" onClick={() => props.onReset!(f.name)}>
                Use the catalog's value<span class="sr-only"> for {f.label}</span>
              </button>
            )}
            {f.hint && (
              <span id={`${id}-hint`} class="muted">
                {f.hint}
              </span>
            )}
          </small>
        );
        if (f.kind === 'capabilities') {
          const selected = (values[f.name] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
          return (
            <fieldset class="field span-all caps" key={f.name} aria-describedby={described}>
              <legend>{f.label}</legend>
              <CapabilityChecks idPrefix={id} selected={selected} onChange={(caps) => onChange(f.name, caps.join(', '))} />
              {marks}
            </fieldset>
          );
        }
        let input;
        switch (f.kind) {
          case 'textarea':
            input = <textarea rows={2} {...common} />;
            break;
          case 'mode':
            input = (
              <select {...common}>
                <option value="">(none)</option>
                {MODES.map((m) => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
              </select>
            );
            break;
          case 'status':
            input = (
              <select {...common}>
                {STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            );
            break;
          case 'int':
            input = <input type="number" step={1} min={1} inputMode="numeric" {...common} />;
            break;
          case 'number':
          case 'price':
            input = <input type="number" step="any" min={0} {...common} />;
            break;
          case 'date':
            input = <input type="date" {...common} />;
            break;
          case 'url':
            input = <input type="url" {...common} />;
            break;
          default:
            input = <input type="text" autoComplete="off" {...common} />;
        }
        return (
          <div class={`field ${f.kind === 'textarea' ? 'span2' : ''}`} key={f.name}>
            <label for={id}>{f.label}</label>
            {input}
            {marks}
          </div>
        );
      })}
    </div>
  );
}

/** Key/value inputs for credentials: values are typed, never shown back. */
export function CredentialInputs(props: {
  rows: { key: string; value: string }[];
  onChange: (rows: { key: string; value: string }[]) => void;
  hints?: Record<string, string>;
}) {
  const { rows, onChange } = props;
  const set = (i: number, part: 'key' | 'value', v: string) => onChange(rows.map((r, j) => (j === i ? { ...r, [part]: v } : r)));
  return (
    <div class="creds">
      {rows.map((r, i) => (
        <div class="cred-row" key={i}>
          <label for={`ck-${i}`} class="sr-only">
            Credential name {i + 1}
          </label>
          <input id={`ck-${i}`} type="text" value={r.key} placeholder="api_key" autoComplete="off" onInput={(e) => set(i, 'key', e.currentTarget.value)} />
          <label for={`cv-${i}`} class="sr-only">
            Value of {r.key || `credential ${i + 1}`}
          </label>
          <input
            id={`cv-${i}`}
            type="password"
            value={r.value}
            autoComplete="new-password"
            placeholder={props.hints?.[r.key] ?? 'value or os.environ/NAME'}
            onInput={(e) => set(i, 'value', e.currentTarget.value)}
          />
          <button type="button" class="secondary" aria-label={`Remove ${r.key || `credential ${i + 1}`}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" class="secondary" onClick={() => onChange([...rows, { key: '', value: '' }])}>
        Add a credential
      </button>
    </div>
  );
}

export function credentialsOf(rows: { key: string; value: string }[]): Record<string, string> {
  const c: Record<string, string> = {};
  for (const r of rows) if (r.key.trim() && r.value !== '') c[r.key.trim()] = r.value;
  return c;
}
