// The catalog's vocabulary in the console: the capabilities, prices as people read them (US
// dollars per million tokens) and back, token counts as "128K", and the catalog's providers
// and modes for the browser's dropdowns.
import { call, query, type CatalogPage, type CatalogSource, type Capability } from './api';

/** Every capability, in the API's order, with a short label for compact chips. */
export const CAPABILITIES: { id: Capability; label: string; short: string }[] = [
  { id: 'vision', label: 'vision', short: 'vision' },
  { id: 'function_calling', label: 'function calling', short: 'tools' },
  { id: 'parallel_function_calling', label: 'parallel function calling', short: 'parallel' },
  { id: 'tool_choice', label: 'tool choice', short: 'tool choice' },
  { id: 'response_schema', label: 'response schema', short: 'schema' },
  { id: 'reasoning', label: 'reasoning', short: 'reasoning' },
  { id: 'prompt_caching', label: 'prompt caching', short: 'caching' },
  { id: 'audio_input', label: 'audio input', short: 'audio in' },
  { id: 'audio_output', label: 'audio output', short: 'audio out' },
  { id: 'pdf_input', label: 'PDF input', short: 'PDF' },
  { id: 'video_input', label: 'video input', short: 'video' },
  { id: 'web_search', label: 'web search', short: 'web' },
  { id: 'computer_use', label: 'computer use', short: 'computer' },
  { id: 'system_messages', label: 'system messages', short: 'system' },
  { id: 'assistant_prefill', label: 'assistant prefill', short: 'prefill' },
];
// A capability the API adds and this list lacks fails the type check here.
type Missing = Exclude<Capability, (typeof CAPABILITIES)[number]['id']>;
const complete: Missing extends never ? true : Missing = true;
void complete;

/** The order a compact list shows capabilities in: what tells models apart first. */
export const CAPABILITY_PRIORITY: Capability[] = [
  'vision',
  'reasoning',
  'function_calling',
  'web_search',
  'audio_input',
  'audio_output',
  'video_input',
  'pdf_input',
  'computer_use',
  'response_schema',
  'prompt_caching',
  'parallel_function_calling',
  'tool_choice',
  'system_messages',
  'assistant_prefill',
];

export const capabilityLabel = (id: string) => CAPABILITIES.find((c) => c.id === id)?.label ?? id;

/** `v` × 10^`shift`, computed on its shortest decimal form, so 2.5e-6 becomes exactly 2.5. */
function shifted(v: number, shift: number): number {
  const [m, e] = v.toExponential().split('e');
  return Number(`${m}e${Number(e) + shift}`);
}

/** A price per token as the price per million tokens (2.5e-6 → 2.5). */
export const perMillion = (perToken: number) => shifted(perToken, 6);

/** A price per million tokens as typed ("2.5") as the price per token; undefined when not a price. */
export function perToken(perMillionText: string): number | undefined {
  const t = perMillionText.trim();
  if (!t) return undefined;
  const n = Number(t);
  return Number.isFinite(n) && n >= 0 ? shifted(n, -6) : undefined;
}

/** A number in plain decimal notation, never 2.5e-9: 0.0000000025. */
export function plainDecimal(v: number): string {
  const s = String(v);
  const m = s.match(/^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/);
  if (!m) return s;
  const [, sign, int, frac = '', exp] = m;
  const e = Number(exp);
  const digits = int + frac;
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  return sign + digits.padEnd(e + 1, '0');
}

/** The price per million tokens in dollars: "$2.50", "$0.075". */
export function formatPrice(perTokenValue: number): string {
  return `$${perMillion(perTokenValue).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 6 })}`;
}

/** The exact price per token, for a tooltip. */
export const exactPrice = (perTokenValue: number) => `$${plainDecimal(perTokenValue)} per token`;

/** A token count the way context windows are spoken of: 8.2K, 128K, 1.05M. */
export function formatTokens(n: number): string {
  const trim = (x: number, digits: number) => String(Number(x.toFixed(digits)));
  if (n >= 1_000_000) return `${trim(n / 1_000_000, 2)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}K`;
  if (n >= 1000) return `${trim(n / 1000, 1)}K`;
  return String(n);
}

/** "128K", "1.5M", "128000" → a token count; undefined when not one. */
export function parseTokens(text: string): number | undefined {
  const m = text.trim().replace(/[,_\s]/g, '').match(/^(\d+(?:\.\d+)?)([kKmM]?)$/);
  if (!m) return undefined;
  const n = Math.round(Number(m[1]) * (m[2] ? (m[2].toLowerCase() === 'k' ? 1000 : 1_000_000) : 1));
  return n >= 1 ? n : undefined;
}

export interface Facets {
  providers: string[];
  modes: string[];
}

// The API lists entries, not its providers and modes (docs/console.md asks for them), so they
// are gathered once from every page of the catalog, per catalog (its sha256), for this page
// load only.
let facets: { sha256: string; promise: Promise<Facets> } | null = null;

export function catalogFacets(source: CatalogSource): Promise<Facets> {
  if (facets?.sha256 === source.sha256) return facets.promise;
  const promise = (async () => {
    const page = (n: number) => call<CatalogPage>('GET', `/assets/catalog${query({ page: n, limit: 100 })}`).then((r) => r.data);
    const first = await page(1);
    const rest: CatalogPage[] = [];
    let next = 2;
    const worker = async () => {
      while (next <= first.pagination.total_pages) rest.push(await page(next++));
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const providers = new Set<string>();
    const modes = new Set<string>();
    for (const p of [first, ...rest]) {
      for (const e of p.data) {
        if (e.provider) providers.add(e.provider);
        if (e.mode) modes.add(e.mode);
      }
    }
    return { providers: [...providers].sort(), modes: [...modes].sort() };
  })();
  facets = { sha256: source.sha256, promise };
  promise.catch(() => {
    if (facets?.promise === promise) facets = null;
  });
  return promise;
}
