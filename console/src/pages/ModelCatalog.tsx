// A model's link to the catalog, on its page: the entry it matched, each catalogued field's
// value and whether it is the catalog's or the model's own, and, after a catalog refresh,
// the fields whose catalog value changed upstream, each to take or keep.
import type { CatalogSource, Model, ModelUpstream, UpstreamChange } from '../api';
import { Link } from '../ui/components';
import { UpstreamBadge, Origin } from '../ui/catalog';
import { CATALOG_FIELDS, FIELD_LABEL, FieldValue } from '../ui/modelForm';

export type SettleAction = 'take' | 'keep';

export function ModelCatalog(props: {
  model: Model;
  upstream: ModelUpstream | null;
  source: CatalogSource | null;
  canWrite: boolean;
  busy: boolean;
  onSettle: (action: SettleAction, fields?: string[]) => void;
}) {
  const { model, upstream } = props;
  const m = model as Record<string, unknown>;
  const key = model.catalog.key;
  return (
    <section class="card" aria-labelledby="catalog-h">
      <h2 id="catalog-h">Catalog</h2>
      <p>
        {key ? (
          <>
            Catalog entry <Link href={`/ui/catalog?search=${encodeURIComponent(key)}`}>{key}</Link>
          </>
        ) : (
          <span class="muted">No catalog entry matches this model's LiteLLM model{model.base_model ? ' or base model' : ''}.</span>
        )}
        {props.source && (
          <span class="muted small">
            {' '}
            · catalog in force: {props.source.name} {props.source.version} ({props.source.date})
          </span>
        )}
      </p>
      {upstream && upstream.changes.length > 0 && <UpstreamPanel changes={upstream.changes} {...props} />}
      <table class="catalog-fields">
        <caption class="sr-only">Catalogued fields and where each value comes from</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Value</th>
            <th scope="col">Source</th>
          </tr>
        </thead>
        <tbody>
          {CATALOG_FIELDS.map((f) => (
            <tr key={f}>
              <th scope="row">{FIELD_LABEL[f]}</th>
              <td>
                <FieldValue name={f} v={m[f]} />
              </td>
              <td>{model.catalog.fields[f] ? <Origin p={model.catalog.fields[f]} /> : <span class="muted">not set</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function UpstreamPanel(props: { changes: UpstreamChange[]; source: CatalogSource | null; canWrite: boolean; busy: boolean; onSettle: (action: SettleAction, fields?: string[]) => void }) {
  const { changes, source } = props;
  return (
    <div class="upstream-panel" role="group" aria-labelledby="upstream-h">
      <h3 id="upstream-h">
        <UpstreamBadge /> The catalog has other values{source ? ` (${source.name} ${source.version}, ${source.date})` : ''}
      </h3>
      <p class="small">
        Take a value to follow the catalog again; keep yours to make it this model's own (an override, not offered again).
      </p>
      <table class="diff">
        <caption class="sr-only">Fields whose catalog value changed upstream</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Current</th>
            <th scope="col">Upstream</th>
            {props.canWrite && <th scope="col">Choose</th>}
          </tr>
        </thead>
        <tbody>
          {changes.map((c) => (
            <tr key={c.field} class="changed">
              <th scope="row">{FIELD_LABEL[c.field] ?? c.field}</th>
              <td class="from">
                <FieldValue name={c.field} v={c.current} />
              </td>
              <td class="to">
                <FieldValue name={c.field} v={c.upstream} />
              </td>
              {props.canWrite && (
                <td class="choose">
                  <button type="button" class="small" disabled={props.busy} onClick={() => props.onSettle('take', [c.field])}>
                    Take<span class="sr-only"> the upstream {FIELD_LABEL[c.field] ?? c.field}</span>
                  </button>{' '}
                  <button type="button" class="secondary small" disabled={props.busy} onClick={() => props.onSettle('keep', [c.field])}>
                    Keep<span class="sr-only"> the current {FIELD_LABEL[c.field] ?? c.field}</span>
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {props.canWrite && changes.length > 1 && (
        <div class="actions">
          <button type="button" disabled={props.busy} onClick={() => props.onSettle('take')}>
            Take all
          </button>
          <button type="button" class="secondary" disabled={props.busy} onClick={() => props.onSettle('keep')}>
            Keep all
          </button>
        </div>
      )}
    </div>
  );
}
