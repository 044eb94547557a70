// Models: search, every filter of the list (status, mode, provider, tags, created_by,
// capabilities, context window, input price), sort by a column, keyset paging with
// next_cursor. The filters live in the URL, so a reload or a shared link shows the same list.
// Prices read per million tokens; a model whose catalog values changed upstream has a badge.
import { useEffect, useRef, useState } from 'preact/hooks';
import { MODES, STATUSES, call, query, type ModelList, type UpstreamChanges } from '../api';
import { formatTokens, parseTokens, perMillion, perToken, plainDecimal } from '../catalog';
import { useApp } from '../me';
import { CapabilityChips, CapabilityFilter, Price, Tokens, UpstreamBadge } from '../ui/catalog';
import { ErrorBanner, Link, StatusBadge, Time } from '../ui/components';

const FILTERS = ['search', 'status', 'mode', 'provider', 'tags', 'created_by', 'capability', 'min_input_tokens', 'max_input_cost'] as const;
type Filter = (typeof FILTERS)[number];
type Filters = Record<Filter, string> & { sort: string; limit: string };

// The list's filters and sorts by catalog fields (capability, min_input_tokens,
// max_input_cost; sort by input_cost_per_token and max_input_tokens): shown where the API has
// them, as it does since [catalog] part 3.
const CATALOG_LIST_FILTERS = true;

const COLUMNS: { field: string | null; label: string; title?: string; num?: boolean }[] = [
  { field: 'name', label: 'Name' },
  { field: 'litellm_model', label: 'LiteLLM model' },
  { field: 'provider', label: 'Provider' },
  { field: 'mode', label: 'Mode' },
  { field: 'status', label: 'Status' },
  { field: CATALOG_LIST_FILTERS ? 'input_cost_per_token' : null, label: 'Input $/1M', title: 'US dollars per million input tokens', num: true },
  { field: null, label: 'Output $/1M', title: 'US dollars per million output tokens', num: true },
  { field: CATALOG_LIST_FILTERS ? 'max_input_tokens' : null, label: 'Context', title: 'The context window: the most tokens a request may carry', num: true },
  { field: null, label: 'Capabilities' },
  { field: null, label: 'Tags' },
  { field: null, label: 'Created by' },
  { field: 'updated_at', label: 'Updated' },
];

function fromUrl(search: string): Filters {
  const p = new URLSearchParams(search);
  const f = {} as Filters;
  for (const k of FILTERS) f[k] = p.get(k) ?? '';
  f.sort = p.get('sort') ?? '';
  f.limit = p.get('limit') ?? '50';
  return f;
}

/** The first page's API path for the list at `search` (the page's query string). */
export function firstListPath(search: string): string {
  return `/assets/models${query({ ...fromUrl(search) })}`;
}

export function Models() {
  const { can } = useApp();
  const [filters, setFilters] = useState<Filters>(() => fromUrl(location.search));
  // The search box as typed; it reaches the filters 250 ms after the last keystroke.
  const [typed, setTyped] = useState(filters.search);
  const [cursors, setCursors] = useState<string[]>([]);
  const [list, setList] = useState<ModelList | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const abort = useRef<AbortController | null>(null);
  // Which of the rows shown have catalog values that changed upstream: asked for those rows
  // once they are in, so it never delays them.
  const [upstream, setUpstream] = useState<Set<string>>(new Set());
  useEffect(() => {
    const uris = list?.data.map((m) => m.resource_uri) ?? [];
    if (!uris.length) return;
    const ac = new AbortController();
    call<UpstreamChanges>('GET', `/assets/catalog/changes${query({ resource_uri: uris.join(','), limit: uris.length })}`, { signal: ac.signal }).then(
      (r) => setUpstream(new Set(r.data.data.filter((m) => m.changes.length).map((m) => m.id))),
      (e) => e.name !== 'AbortError' && setError(e),
    );
    return () => ac.abort();
  }, [list]);

  useEffect(() => {
    const t = setTimeout(() => typed !== filters.search && update({ search: typed }), 250);
    return () => clearTimeout(t);
  }, [typed]);

  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    abort.current?.abort();
    const ac = new AbortController();
    abort.current = ac;
    setLoading(true);
    const path = cursor ? `/assets/models${query({ cursor, limit: filters.limit })}` : `/assets/models${query({ ...filters })}`;
    call<ModelList>('GET', path, { signal: ac.signal }).then(
      (r) => {
        setList(r.data);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (e.name === 'AbortError') return;
        setError(e);
        setLoading(false);
      },
    );
    return () => ac.abort();
  }, [filters, cursor]);

  function update(change: Partial<Filters>) {
    const next = { ...filters, ...change };
    setFilters(next);
    setCursors([]);
    const url = `/ui/models${query({ ...next, limit: next.limit === '50' ? '' : next.limit })}`;
    history.replaceState(null, '', url);
  }

  const sortKey = filters.sort.split(',')[0] ?? '';
  const [sortField, sortOrder] = sortKey ? sortKey.split(':') : ['created_at', 'desc'];
  const toggleSort = (field: string) => {
    const order = sortField === field && (sortOrder ?? 'asc') === 'asc' ? 'desc' : 'asc';
    update({ sort: `${field}:${order}` });
  };

  const p = list?.pagination;
  const total = p ? `${p.total_items_is_estimate ? 'More than ' : ''}${p.total_items.toLocaleString()} model${p.total_items === 1 ? '' : 's'}` : '';
  const any = FILTERS.some((k) => filters[k]);

  return (
    <main id="main" class="page wide">
      <div class="title">
        <h1>Models</h1>
        {can.write && (
          <Link href="/ui/models/new" class="button">
            Add model
          </Link>
        )}
      </div>
      <form class="filters" role="search" aria-label="Filter models" onSubmit={(e) => e.preventDefault()}>
        <div class="field grow">
          <label for="q">Search</label>
          <input id="q" type="search" placeholder="Name or description" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="f-status">Status</label>
          <select id="f-status" value={filters.status} onChange={(e) => update({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-mode">Mode</label>
          <select id="f-mode" value={filters.mode} onChange={(e) => update({ mode: e.currentTarget.value })}>
            <option value="">Any</option>
            {MODES.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </div>
        <TextFilter id="f-provider" label="Provider" value={filters.provider} onCommit={(v) => update({ provider: v })} />
        <TextFilter id="f-tags" label="Tags (all of)" placeholder="prod, chat" value={filters.tags} onCommit={(v) => update({ tags: v })} />
        <TextFilter id="f-created-by" label="Created by" placeholder="user:alice" value={filters.created_by} onCommit={(v) => update({ created_by: v })} />
        {CATALOG_LIST_FILTERS && (
          <>
        <CapabilityFilter idPrefix="f-cap" value={filters.capability} onChange={(v) => update({ capability: v })} />
        <TextFilter
          id="f-min-context"
          label="Min context"
          placeholder="128K"
          value={filters.min_input_tokens ? formatTokens(Number(filters.min_input_tokens)) : ''}
          parse={(v) => {
            const n = v ? parseTokens(v) : 0;
            return n === undefined ? undefined : n ? String(n) : '';
          }}
          invalid="a token count, e.g. 32000, 128K or 1M"
          onCommit={(v) => update({ min_input_tokens: v })}
        />
        <TextFilter
          id="f-max-price"
          label="Max input $/1M"
          placeholder="3"
          value={filters.max_input_cost && Number.isFinite(Number(filters.max_input_cost)) ? plainDecimal(perMillion(Number(filters.max_input_cost))) : filters.max_input_cost}
          parse={(v) => {
            const n = v ? perToken(v) : null;
            return n === undefined ? undefined : n === null ? '' : plainDecimal(n);
          }}
          invalid="US dollars per million input tokens, e.g. 2.5"
          onCommit={(v) => update({ max_input_cost: v })}
        />
          </>
        )}
        <div class="field">
          <label for="f-limit">Per page</label>
          <select id="f-limit" value={filters.limit} onChange={(e) => update({ limit: e.currentTarget.value })}>
            {['20', '50', '100'].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </div>
        {any && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setTyped('');
              update({ search: '', status: '', mode: '', provider: '', tags: '', created_by: '', capability: '', min_input_tokens: '', max_input_cost: '' });
            }}
          >
            Clear filters
          </button>
        )}
      </form>
      <ErrorBanner error={error} />
      <p class="summary" aria-live="polite">
        {loading ? 'Loading…' : total}
        {p && cursors.length > 0 && <span class="muted"> · page {cursors.length + 1}</span>}
      </p>
      <div class="table-wrap">
        <table class="models" aria-busy={loading}>
          <caption class="sr-only">Models, sorted by {sortField} {sortOrder ?? 'asc'}</caption>
          <thead>
            <tr>
              {COLUMNS.map((c) => {
                const sorted = c.field === sortField;
                const aria = sorted ? ((sortOrder ?? 'asc') === 'asc' ? 'ascending' : 'descending') : undefined;
                return (
                  <th key={c.label} scope="col" aria-sort={aria} class={c.num ? 'num' : undefined} title={c.title}>
                    {c.field ? (
                      <button type="button" class="sort" onClick={() => toggleSort(c.field!)}>
                        {c.label}
                        <span aria-hidden="true">{sorted ? (aria === 'ascending' ? ' ▲' : ' ▼') : ''}</span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {list?.data.map((m) => (
              <tr key={m.id}>
                <td>
                  <Link href={`/ui/models/${encodeURIComponent(m.resource_uri)}`}>{m.name}</Link>
                  {upstream.has(m.id) && (
                    <>
                      {' '}
                      <UpstreamBadge />
                    </>
                  )}
                  <div class="muted small mono">{m.resource_uri}</div>
                </td>
                <td class="mono">{m.litellm_model}</td>
                <td>{m.provider ?? <span class="muted">–</span>}</td>
                <td>{m.mode ?? <span class="muted">–</span>}</td>
                <td>
                  <StatusBadge status={m.status} message={m.status_message} verifiedAt={m.last_verified_at} />
                  {m.status_message && <div class="small status-message">{m.status_message}</div>}
                  <div class="muted small">
                    verified <Time at={m.last_verified_at} />
                  </div>
                </td>
                <td class="num">
                  <Price v={m.input_cost_per_token} />
                </td>
                <td class="num">
                  <Price v={m.output_cost_per_token} />
                </td>
                <td class="num">
                  <Tokens n={m.max_input_tokens} />
                </td>
                <td class="caps-cell">
                  <CapabilityChips caps={m.capabilities} compact />
                </td>
                <td>
                  {m.tags.map((t) => (
                    <span class="tag" key={t}>
                      {t}
                    </span>
                  ))}
                </td>
                <td class="small">{m.created_by}</td>
                <td class="small">
                  <Time at={m.updated_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {list && list.data.length === 0 && !loading && (
          <p class="empty">
            {any ? 'No model matches these filters.' : 'No models in this project yet.'}
            {!any && can.write && (
              <>
                {' '}
                <Link href="/ui/models/new">Add the first one</Link>.
              </>
            )}
          </p>
        )}
      </div>
      <nav class="pager" aria-label="Pages">
        <button type="button" class="secondary" disabled={!cursors.length} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <button type="button" class="secondary" disabled={!p?.next_cursor} onClick={() => p?.next_cursor && setCursors([...cursors, p.next_cursor])}>
          Next
        </button>
      </nav>
    </main>
  );
}

/**
 * A text filter that applies on Enter or when the field is left, not on every keystroke.
 * `parse` turns the text into the query's value (undefined: not a value, said under the field).
 */
function TextFilter(props: {
  id: string;
  label: string;
  value: string;
  placeholder?: string;
  parse?: (v: string) => string | undefined;
  invalid?: string;
  onCommit: (v: string) => void;
}) {
  const [v, setV] = useState(props.value);
  const [bad, setBad] = useState(false);
  useEffect(() => setV(props.value), [props.value]);
  const commit = () => {
    const t = v.trim();
    if (t === props.value) return setBad(false);
    const parsed = props.parse ? props.parse(t) : t;
    setBad(parsed === undefined);
    if (parsed !== undefined) props.onCommit(parsed);
  };
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="text"
        value={v}
        placeholder={props.placeholder}
        aria-invalid={bad || undefined}
        aria-describedby={bad ? `${props.id}-bad` : undefined}
        onInput={(e) => setV(e.currentTarget.value)}
        onChange={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
      />
      {bad && (
        <small id={`${props.id}-bad`} class="invalid" role="alert">
          Not {props.invalid}
        </small>
      )}
    </div>
  );
}
