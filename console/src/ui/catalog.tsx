// Shared pieces of the catalog's values: prices per million tokens, context windows,
// capability chips and pickers, the "upstream changed" badge and a field's origin.
import { CAPABILITIES, CAPABILITY_PRIORITY, capabilityLabel, exactPrice, formatPrice, formatTokens } from '../catalog';
import type { Capability, Provenance } from '../api';

const none = <span class="muted">–</span>;

/** A price per token, shown per million tokens, with the exact price per token as its title. */
export function Price({ v }: { v?: number | null }) {
  if (v === null || v === undefined) return none;
  return <span title={exactPrice(v)}>{formatPrice(v)}</span>;
}

/** A token count as "128K", with the exact count as its title. */
export function Tokens({ n }: { n?: number | null }) {
  if (n === null || n === undefined) return none;
  return <span title={`${n.toLocaleString('en-US')} tokens`}>{formatTokens(n)}</span>;
}

/** How many chips a compact list shows before "+N". */
const COMPACT = 4;

/**
 * Capabilities as small chips. `compact` shows the first few that tell models apart most, by
 * their short labels (the full one is the title), and the rest as "+N".
 */
export function CapabilityChips({ caps, compact }: { caps: readonly string[]; compact?: boolean }) {
  if (!caps.length) return none;
  if (!compact) {
    return (
      <span class="chips">
        {caps.map((c) => (
          <span class="chip" key={c}>
            {capabilityLabel(c)}
          </span>
        ))}
      </span>
    );
  }
  const rank = (c: string) => {
    const i = CAPABILITY_PRIORITY.indexOf(c as Capability);
    return i < 0 ? CAPABILITY_PRIORITY.length : i;
  };
  const sorted = [...caps].sort((a, b) => rank(a) - rank(b));
  const shown = sorted.length > COMPACT + 1 ? sorted.slice(0, COMPACT) : sorted;
  const rest = sorted.slice(shown.length).map(capabilityLabel).join(', ');
  return (
    <span class="chips">
      {shown.map((c) => (
        <span class="chip" key={c} title={capabilityLabel(c)}>
          {CAPABILITIES.find((x) => x.id === c)?.short ?? c}
        </span>
      ))}
      {rest && (
        <span class="chip more" title={rest}>
          +{sorted.length - shown.length}
          <span class="sr-only"> more: {rest}</span>
        </span>
      )}
    </span>
  );
}

export function UpstreamBadge() {
  return (
    <span class="badge upstream" title="The catalog now has other values for this model's catalog fields: take or keep them on the model's page">
      upstream changed
    </span>
  );
}

/** Whether a catalogued field holds the catalog's value or the model's own. */
export function Origin({ p, id }: { p?: Provenance | null; id?: string }) {
  if (!p) return null;
  return (
    <span id={id} class={`origin ${p}`}>
      {p === 'catalog' ? 'from catalog' : 'override'}
    </span>
  );
}

/** Checkboxes for a set of capabilities. */
export function CapabilityChecks(props: { idPrefix: string; selected: string[]; onChange: (caps: string[]) => void; describedBy?: string }) {
  const { selected } = props;
  return (
    <div class="cap-checks">
      {CAPABILITIES.map((c) => {
        const id = `${props.idPrefix}-${c.id}`;
        return (
          <label key={c.id} for={id} class="check">
            <input
              id={id}
              type="checkbox"
              checked={selected.includes(c.id)}
              aria-describedby={props.describedBy}
              onChange={(e) => {
                const on = e.currentTarget.checked;
                // Kept in the API's order.
                props.onChange(CAPABILITIES.map((x) => x.id).filter((x) => (x === c.id ? on : selected.includes(x))));
              }}
            />
            {c.label}
          </label>
        );
      })}
    </div>
  );
}

/** A capability filter for a list: a disclosure holding the checkboxes (all of them must hold). */
export function CapabilityFilter(props: { idPrefix: string; value: string; onChange: (v: string) => void }) {
  const selected = props.value ? props.value.split(',').filter(Boolean) : [];
  return (
    <details class="field multi">
      <summary>
        <span class="summary-label">Capabilities</span>
        <span class="summary-value">{selected.length ? selected.map(capabilityLabel).join(' + ') : 'any'}</span>
      </summary>
      <fieldset>
        <legend>Capabilities the model has (all of them)</legend>
        <CapabilityChecks idPrefix={props.idPrefix} selected={selected} onChange={(caps) => props.onChange(caps.join(','))} />
      </fieldset>
    </details>
  );
}
