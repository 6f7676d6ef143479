import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorLine } from './common.jsx';

const SCALARS = ['cpus', 'mem', 'disk', 'gpus'];

const fmt = (n) => (typeof n === 'number' ? (Number.isInteger(n) ? n : n.toFixed(2)) : n ?? '—');

// Agents come from the master (not the watch stream): read every 5 s.
export function ClusterPage() {
  const [agents, setAgents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let alive = true;
    const load = () =>
      api
        .agents()
        .then((r) => alive && (setAgents(r.agents), setError(null)))
        .catch((e) => alive && setError(e.message));
    load();
    const timer = setInterval(load, 5000);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, []);
  return (
    <section>
      <h1>Cluster {agents && <span class="muted">({agents.length} agents)</span>}</h1>
      <ErrorLine error={error} />
      <table data-testid="agents">
        <thead>
          <tr>
            <th>Agent</th>
            <th>Id</th>
            {SCALARS.map((r) => (
              <th key={r}>{r} used / total (free)</th>
            ))}
            <th>Ports</th>
            <th>Attributes</th>
          </tr>
        </thead>
        <tbody>
          {(agents ?? []).map((a) => (
            <tr key={a.id} class={a.active ? '' : 'inactive'}>
              <td>{a.hostname}</td>
              <td class="mono">{a.id}</td>
              {SCALARS.map((r) => (
                <td key={r}>
                  {fmt(a.used_resources[r] ?? 0)} / {fmt(a.resources[r])} ({fmt(a.free_resources[r])})
                </td>
              ))}
              <td class="mono">{a.resources.ports ?? '—'}</td>
              <td>
                {Object.entries(a.attributes)
                  .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
                  .join(', ') || '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
