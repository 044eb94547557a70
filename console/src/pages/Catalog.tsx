// The model catalog (docs/catalog.md): search, provider, mode and capabilities, paged; each
// entry's prices per million tokens, context window, output limit, capabilities and
// deprecation date, and "Add as model", which opens the add form with its model string. The
// filters live in the URL, as on the models page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, query, type CatalogPage } from '../api';
import { catalogFacets, type Facets } from '../catalog';
import { useApp } from '../me';
import { CapabilityChips, CapabilityFilter, Price, Tokens } from '../ui/catalog';
import { ErrorBanner, Link } from '../ui/components';

const FILTERS = ['search', 'provider', 'mode', 'capability'] as const;
type Filters = Record<(typeof FILTERS)[number], string> & { page: string };
const LIMIT = 25;

function fromUrl(search: string): Filters {
  const p = new URLSearchParams(search);
  const f = {} as Filters;
  for (const k of FILTERS) f[k] = p.get(k) ?? '';
  f.page = p.get('page') ?? '';
  return f;
}

const today = () => new Date().toISOString().slice(0, 10);

export function Catalog() {
  const { can } = useApp();
  const [filters, setFilters] = useState<Filters>(() => fromUrl(location.search));
  const [typed, setTyped] = useState(filters.search);
  const [page, setPage] = useState<CatalogPage | null>(null);
  const [facets, setFacets] = useState<Facets | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    const t = setTimeout(() => typed !== filters.search && update({ search: typed }), 250);
    return () => clearTimeout(t);
  }, [typed]);

  useEffect(() => {
    abort.current?.abort();
    const ac = new AbortController();
    abort.current = ac;
    setLoading(true);
    call<CatalogPage>('GET', `/assets/catalog${query({ ...filters, limit: LIMIT })}`, { signal: ac.signal }).then(
      (r) => {
        setPage(r.data);
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
  }, [filters]);

  // The dropdowns' choices, gathered from the whole catalog once its source is known.
  const sha = page?.source.sha256;
  useEffect(() => {
    if (!page) return;
    catalogFacets(page.source).then(setFacets, setError);
  }, [sha]);

  function update(change: Partial<Filters>) {
    const next = { ...filters, page: '', ...change };
    setFilters(next);
    history.replaceState(null, '', `/ui/catalog${query({ ...next })}`);
  }

  // A chosen value the dropdown does not list (from a shared link, or before the lists are in).
  const options = (all: string[] | undefined, chosen: string) => (chosen && !all?.includes(chosen) ? [chosen, ...(all ?? [])] : (all ?? []));
  const p = page?.pagination;
  const src = page?.source;
  const any = FILTERS.some((k) => filters[k]);

  return (
    <main id="main" class="page wide">
      <div class="title">
        <h1>Catalog</h1>
      </div>
      <p class="muted source">
        {src ? (
          <>
            Prices, limits and capabilities of known models, from {src.name === 'litellm' ? "LiteLLM's model cost map" : src.name}, version{' '}
            <strong>{src.version}</strong> of <strong>{src.date}</strong> <span class="small mono" title={`sha256 ${src.sha256}`}>(sha256 {src.sha256.slice(0, 12)}…)</span>. Prices are in US dollars per million tokens.
          </>
        ) : (
          'Prices, limits and capabilities of known models.'
        )}
      </p>
      <form class="filters" role="search" aria-label="Filter the catalog" onSubmit={(e) => e.preventDefault()}>
        <div class="field grow">
          <label for="c-q">Search</label>
          <input id="c-q" type="search" placeholder="Model key, e.g. gpt-4o" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="c-provider">Provider</label>
          <select id="c-provider" value={filters.provider} aria-busy={!facets} onChange={(e) => update({ provider: e.currentTarget.value })}>
            <option value="">Any</option>
            {options(facets?.providers, filters.provider).map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="c-mode">Mode</label>
          <select id="c-mode" value={filters.mode} aria-busy={!facets} onChange={(e) => update({ mode: e.currentTarget.value })}>
            <option value="">Any</option>
            {options(facets?.modes, filters.mode).map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </div>
        <CapabilityFilter idPrefix="c-cap" value={filters.capability} onChange={(v) => update({ capability: v })} />
        {any && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setTyped('');
              update({ search: '', provider: '', mode: '', capability: '' });
            }}
          >
            Clear filters
          </button>
        )}
      </form>
      <ErrorBanner error={error} />
      <p class="summary" aria-live="polite">
        {loading ? 'Loading…' : p ? `${p.total_items.toLocaleString('en-US')} entr${p.total_items === 1 ? 'y' : 'ies'}` : ''}
      </p>
      <div class="table-wrap">
        <table class="catalog" aria-busy={loading}>
          <caption class="sr-only">Catalog entries, by key</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Provider</th>
              <th scope="col">Mode</th>
              <th scope="col" class="num" title="US dollars per million input tokens">
                Input $/1M
              </th>
              <th scope="col" class="num" title="US dollars per million output tokens">
                Output $/1M
              </th>
              <th scope="col" class="num" title="US dollars per million input tokens read from the prompt cache">
                Cache read $/1M
              </th>
              <th scope="col" class="num" title="The context window: the most tokens a request may carry">
                Context
              </th>
              <th scope="col" class="num" title="The most tokens one response may hold">
                Max output
              </th>
              <th scope="col">Capabilities</th>
              <th scope="col">Deprecation</th>
              {can.write && (
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {page?.data.map((e) => (
              <tr key={e.key}>
                <th scope="row" class="mono key">
                  {e.key}
                </th>
                <td>{e.provider ?? <span class="muted">–</span>}</td>
                <td>{e.mode ?? <span class="muted">–</span>}</td>
                <td class="num">
                  <Price v={e.input_cost_per_token} />
                </td>
                <td class="num">
                  <Price v={e.output_cost_per_token} />
                </td>
                <td class="num">
                  <Price v={e.cache_read_cost_per_token} />
                </td>
                <td class="num">
                  <Tokens n={e.max_input_tokens} />
                </td>
                <td class="num">
                  <Tokens n={e.max_output_tokens} />
                </td>
                <td class="caps-cell">
                  <CapabilityChips caps={e.capabilities} compact />
                </td>
                <td class="small">
                  {e.deprecation_date ? (
                    <span class={e.deprecation_date <= today() ? 'past' : undefined}>
                      {e.deprecation_date}
                      {e.deprecation_date <= today() && ' (retired)'}
                    </span>
                  ) : (
                    <span class="muted">–</span>
                  )}
                </td>
                {can.write && (
                  <td>
                    <Link href={`/ui/models/new${query({ litellm_model: e.key })}`} class="button small">
                      Add as model<span class="sr-only"> ({e.key})</span>
                    </Link>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {page && page.data.length === 0 && !loading && <p class="empty">{any ? 'No catalog entry matches these filters.' : 'The catalog is empty.'}</p>}
      </div>
      <nav class="pager" aria-label="Catalog pages">
        <button type="button" class="secondary" disabled={!p?.prev_page} onClick={() => p?.prev_page && update({ page: String(p.prev_page) })}>
          Previous
        </button>
        {p && p.total_pages > 0 && (
          <span class="muted">
            page {p.page} of {p.total_pages}
          </span>
        )}
        <button type="button" class="secondary" disabled={!p?.next_page} onClick={() => p?.next_page && update({ page: String(p.next_page) })}>
          Next
        </button>
      </nav>
    </main>
  );
}
