import { useEffect, useState } from 'preact/hooks';
import { subscribe } from '../store.js';

// Re-renders the component at each notice of `subscribeTo`, and once
// when it subscribes: effects run after the first paint, so a notice
// between the render and the subscription (an answer faster than a frame)
// would otherwise be missed for good, as the login's "Loading…" once was.
export function useNotices(subscribeTo) {
  const [gen, setGen] = useState(0);
  useEffect(() => {
    const bump = () => setGen((g) => g + 1);
    const unsubscribe = subscribeTo(bump);
    bump();
    return unsubscribe;
  }, [subscribeTo]);
  return gen;
}

// Re-renders the component on every change of the live state.
export const useLive = () => useNotices(subscribe);

export const short = (s) => (s ?? '').replace(/^(POD|JOB)_STATE_/, '');

export function StateBadge({ value }) {
  const s = short(value);
  return <span class={`state state-${s.toLowerCase()}`} data-state={s}>{s || '—'}</span>;
}

export const version = (v) => (v && v.value !== undefined ? v.value : '—');

export function Ports({ ports }) {
  if (!ports) return '—';
  return Object.entries(ports)
    .map(([k, v]) => `${k}:${v}`)
    .join(', ');
}

// A stop/start/restart button asking for confirmation first; shows the
// API's error if the call is refused.
export function ActionButton({ label, what, run, testid }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    if (!confirm(`${label} ${what}?`)) return;
    setBusy(true);
    setError(null);
    try {
      await run();
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button onClick={click} disabled={busy} data-testid={testid}>
        {label}
      </button>
      {error && <span class="error">{error}</span>}
    </span>
  );
}

export function Actions({ what, call, prefix }) {
  return (
    <span class="actions">
      {['stop', 'start', 'restart'].map((a) => (
        <ActionButton
          key={a}
          label={a[0].toUpperCase() + a.slice(1)}
          what={what}
          run={() => call(a)}
          testid={`${prefix}-${a}`}
        />
      ))}
    </span>
  );
}

export function Counts({ stats }) {
  const entries = Object.entries(stats ?? {}).filter(([, n]) => n > 0);
  if (entries.length === 0) return <span class="muted">no pods</span>;
  return (
    <span class="counts">
      {entries.map(([s, n]) => (
        <span key={s} class={`count state-${short(s).toLowerCase()}`}>
          {short(s)} {n}
        </span>
      ))}
    </span>
  );
}

// An update's progress: its state and instances done of all.
export function Workflow({ status }) {
  if (!status) return <span class="muted">—</span>;
  const done = status.num_instances_completed ?? 0;
  const total = done + (status.num_instances_remaining ?? 0);
  const failed = status.num_instances_failed ?? 0;
  const pct = total > 0 ? Math.round((100 * done) / total) : 100;
  return (
    <span class="workflow" data-testid="workflow">
      <span>{(status.state ?? '').replace(/^WORKFLOW_STATE_/, '')}</span>{' '}
      <span class="bar"><span style={{ width: `${pct}%` }} /></span>{' '}
      {done}/{total}
      {failed > 0 && <span class="error"> ({failed} failed)</span>}
    </span>
  );
}

export function ErrorLine({ error }) {
  return error ? <p class="error">{error}</p> : null;
}
