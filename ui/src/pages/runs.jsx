import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Link } from '../router.jsx';
import { PHASES, duration, experimentOf, listQuery, when } from '../runs.js';
import { ErrorLine, StateBadge } from './common.jsx';

// How often the list is read again: runs are not on the watch stream.
const REFRESH_MS = 3000;

// The experiments' names by id (the Kubeflow face's list, read once).
export function useExperiments() {
  const [names, setNames] = useState(new Map());
  useEffect(() => {
    let alive = true;
    api
      .experiments()
      .then((r) => alive && setNames(new Map((r.experiments ?? []).map((e) => [e.id, e.name]))))
      .catch(() => {}); // the id is shown instead
    return () => {
      alive = false;
    };
  }, []);
  return names;
}

// Pipeline runs, newest first, filtered by name and status, a page at a
// time (Kubeflow's page tokens), read again every few seconds.
export function RunsPage() {
  const [name, setName] = useState('');
  const [status, setStatus] = useState('');
  const [tokens, setTokens] = useState([null]); // the pages walked: the last is shown
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const experiments = useExperiments();
  const token = tokens[tokens.length - 1];
  useEffect(() => {
    let alive = true;
    api
      .runs(listQuery({ name, status, pageToken: token }))
      .then((r) => alive && (setAnswer(r), setError(null)))
      .catch((e) => alive && setError(e.message));
    const timer = setTimeout(() => setTick((t) => t + 1), REFRESH_MS);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [name, status, token, tick]);
  // A new filter starts again at the first page.
  const refilter = (set) => (e) => {
    set(e.currentTarget.value);
    setTokens([null]);
  };
  const runs = answer?.runs ?? [];
  const total = Number(answer?.total_size ?? 0);
  return (
    <section>
      <h1>
        Runs <span class="muted">({total})</span>
      </h1>
      <div class="filters">
        <input aria-label="name contains" placeholder="name contains…" value={name} onInput={refilter(setName)} data-testid="runs-name" />
        <select aria-label="status" value={status} onChange={refilter(setStatus)} data-testid="runs-status">
          <option value="">any status</option>
          {PHASES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </div>
      <ErrorLine error={error} />
      <table data-testid="runs">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th>Created</th>
            <th>Duration</th>
            <th>Experiment</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => {
            const experiment = experimentOf(r);
            return (
              <tr key={r.id} data-run={r.id} data-status={r.status ?? ''}>
                <td>
                  <Link to={`/runs/${encodeURIComponent(r.id)}`}>{r.name || r.id}</Link>
                </td>
                <td>
                  <StateBadge value={r.status} />
                </td>
                <td class="mono">{when(r.created_at) ?? '—'}</td>
                <td>{duration(r.created_at, r.finished_at) ?? '—'}</td>
                <td>{experiment ? experiments.get(experiment) ?? experiment : '—'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {answer && runs.length === 0 && <p class="muted">No runs{name || status ? ' match' : ' yet'}.</p>}
      <p class="pages">
        <button class="tab" disabled={tokens.length < 2} onClick={() => setTokens(tokens.slice(0, -1))} data-testid="runs-prev">
          Previous
        </button>
        <button
          class="tab"
          disabled={!answer?.next_page_token}
          onClick={() => setTokens([...tokens, answer.next_page_token])}
          data-testid="runs-next"
        >
          Next
        </button>{' '}
        <span class="muted">page {tokens.length}</span>
      </p>
    </section>
  );
}
