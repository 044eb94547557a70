// The fields of a model as a form, once, for adding and for editing: every writable field of
// SPEC §1. Values are held as the strings the inputs show and turned into the API's types
// only when sent, so a half-typed number never becomes a wrong value.
import { MODES, STATUSES, type Model } from '../api';

export type FieldKind = 'text' | 'textarea' | 'url' | 'int' | 'number' | 'tags' | 'mode' | 'status';

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
  hint?: string;
  /** Only when editing: new models always start PENDING. */
  editOnly?: boolean;
}

export const FIELDS: FieldSpec[] = [
  { name: 'name', label: 'Name', kind: 'text', required: true, hint: 'required' },
  { name: 'litellm_model', label: 'LiteLLM model', kind: 'text', required: true, hint: 'required: provider/model, e.g. openai/gpt-4o' },
  { name: 'provider', label: 'Provider', kind: 'text', hint: 'inferred from the LiteLLM model when empty' },
  { name: 'mode', label: 'Mode', kind: 'mode' },
  { name: 'api_base', label: 'API base URL', kind: 'url' },
  { name: 'api_version', label: 'API version', kind: 'text' },
  { name: 'description', label: 'Description', kind: 'textarea' },
  { name: 'tags', label: 'Tags', kind: 'tags', hint: 'comma-separated' },
  { name: 'max_input_tokens', label: 'Max input tokens', kind: 'int' },
  { name: 'max_output_tokens', label: 'Max output tokens', kind: 'int' },
  { name: 'default_max_tokens', label: 'Default max tokens', kind: 'int' },
  { name: 'rpm', label: 'Requests per minute (rpm)', kind: 'int' },
  { name: 'tpm', label: 'Tokens per minute (tpm)', kind: 'int' },
  { name: 'default_temperature', label: 'Default temperature', kind: 'number', hint: '0 to 9.99' },
  { name: 'timeout', label: 'Timeout (seconds)', kind: 'number' },
  { name: 'status', label: 'Status', kind: 'status', editOnly: true },
  { name: 'status_message', label: 'Status message', kind: 'textarea', editOnly: true },
];

export const FIELD_LABEL: Record<string, string> = Object.fromEntries(FIELDS.map((f) => [f.name, f.label]));

export type FormValues = Record<string, string>;

/** The form's strings for a model (or empty ones for a new model). */
export function toForm(m?: Partial<Model> | null): FormValues {
  const v: FormValues = {};
  for (const f of FIELDS) {
    const x = m ? (m as Record<string, unknown>)[f.name] : undefined;
    v[f.name] = x === null || x === undefined ? '' : Array.isArray(x) ? x.join(', ') : String(x);
  }
  return v;
}

/** A field's string as the API's value; `undefined` marks an input that is not a value. */
export function fromInput(f: FieldSpec, s: string): unknown {
  const t = s.trim();
  switch (f.kind) {
    case 'tags':
      return t ? t.split(',').map((x) => x.trim()).filter(Boolean) : [];
    case 'int':
    case 'number': {
      if (!t) return null;
      const n = Number(t);
      return Number.isFinite(n) ? n : undefined;
    }
    case 'status':
      return t;
    case 'textarea':
      return s === '' ? null : s;
    default:
      return t === '' ? (f.required ? '' : null) : t;
  }
}

export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The fields whose value differs from `base`, as a merge patch. */
export function patchOf(values: FormValues, base: Partial<Model>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const v = fromInput(f, values[f.name] ?? '');
    if (v === undefined) continue;
    if (!same(v, (base as Record<string, unknown>)[f.name])) patch[f.name] = v;
  }
  return patch;
}

/** The create body's fields: every non-empty one (new models take the server's defaults). */
export function createBody(values: FormValues): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of FIELDS) {
    if (f.editOnly) continue;
    const v = fromInput(f, values[f.name] ?? '');
    if (v === undefined || v === null || (Array.isArray(v) && !v.length)) continue;
    body[f.name] = v;
  }
  return body;
}

export function ModelFields(props: {
  values: FormValues;
  onChange: (name: string, value: string) => void;
  editing: boolean;
  placeholders?: Record<string, string>;
  only?: string[];
}) {
  const { values, onChange, editing } = props;
  const fields = FIELDS.filter((f) => (editing || !f.editOnly) && (!props.only || props.only.includes(f.name)));
  return (
    <div class="fields">
      {fields.map((f) => {
        const id = `f-${f.name}`;
        const common = {
          id,
          name: f.name,
          value: values[f.name] ?? '',
          required: f.required,
          'aria-describedby': f.hint ? `${id}-hint` : undefined,
          placeholder: props.placeholders?.[f.name],
          onInput: (e: Event) => onChange(f.name, (e.currentTarget as HTMLInputElement).value),
        };
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
            input = <input type="number" step="any" min={0} {...common} />;
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
            {f.hint && (
              <small id={`${id}-hint`} class="muted">
                {f.hint}
              </small>
            )}
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
