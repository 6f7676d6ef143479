import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { auth } from '../auth.js';
import { Link } from '../router.jsx';
import { canEdit, duration, experimentOf, isDone, isRetriable, metricValue, runNodes, when, workflowOf } from '../runs.js';
import { ActionButton, ErrorLine, StateBadge } from './common.jsx';
import { useExperiments } from './runs.jsx';

// How often a run that has not ended is read again.
const REFRESH_MS = 2000;

// One pipeline run: its summary, its DAG's nodes (phase, times, the Drover
// job and pod each runs as, outputs), its metrics, and Terminate and Retry
// for those who may run pipelines. Read again every two seconds until the
// run ends or is not found (and again after a button).
export function RunPage({ id }) {
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [asked, setAsked] = useState(0); // bumped by a button: read again
  const experiments = useExperiments();
  useEffect(() => {
    let alive = true;
    let timer = null;
    const load = () =>
      api
        .run(id)
        .then((d) => {
          if (!alive) return;
          setDetail(d);
          setError(null);
          if (!isDone(d.run?.status)) timer = setTimeout(load, REFRESH_MS);
        })
        .catch((e) => {
          if (!alive) return;
          setError(e.message);
          // a run that is not there (deleted) will not come back
          if (e.code !== 'NOT_FOUND') timer = setTimeout(load, REFRESH_MS);
        });
    load();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [id, asked]);
  const run = detail?.run;
  const nodes = runNodes(workflowOf(detail));
  const nodeName = new Map(nodes.map((n) => [n.id, n.name]));
  const experiment = experimentOf(run);
  const act = (action) => async () => {
    try {
      await api.runAction(id, action);
    } finally {
      setAsked((n) => n + 1);
    }
  };
  const editor = canEdit(auth.who);
  return (
    <section>
      <p class="crumbs">
        <Link to="/runs">Runs</Link> / {run?.name || id}
      </p>
      <h1>
        {run?.name || id} {run && <StateBadge value={run.status} />}
      </h1>
      <ErrorLine error={error} />
      {run && (
        <div class="summary" data-testid="run-summary">
          <div>
            <b>Id</b> <span class="mono">{run.id}</span>
            {experiment && (
              <>
                {' '}
                · <b>experiment</b> {experiments.get(experiment) ?? experiment}
              </>
            )}
          </div>
          <div>
            <b>Created</b> {when(run.created_at) ?? '—'} · <b>finished</b> {when(run.finished_at) ?? '—'} ·{' '}
            <b>duration</b> {duration(run.created_at, run.finished_at) ?? '—'}
          </div>
          {(run.pipeline_spec?.parameters ?? []).length > 0 && (
            <div>
              <b>Parameters</b>{' '}
              <span class="mono">{run.pipeline_spec.parameters.map((p) => `${p.name}=${p.value ?? ''}`).join(', ')}</span>
            </div>
          )}
          {run.error && (
            <div>
              <b>Message</b> <span data-testid="run-error">{run.error}</span>
            </div>
          )}
          {editor && (
            <div class="actions">
              {!isDone(run.status) && (
                <ActionButton label="Terminate" what={`run ${run.name || run.id}`} run={act('terminate')} testid="run-terminate" />
              )}
              {isRetriable(run.status) && (
                <ActionButton label="Retry" what={`run ${run.name || run.id}`} run={act('retry')} testid="run-retry" />
              )}
            </div>
          )}
        </div>
      )}
      <h2>Nodes</h2>
      <table data-testid="nodes">
        <thead>
          <tr>
            <th>Node</th>
            <th>Type</th>
            <th>Phase</th>
            <th>Waits for</th>
            <th>Started</th>
            <th>Finished</th>
            <th>Duration</th>
            <th>Drover job / pod</th>
            <th>Outputs</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.id} data-node={n.name} data-phase={n.phase} data-type={n.type}>
              <td style={{ paddingLeft: `${10 + 16 * n.depth}px` }}>
                {n.name}
                {n.message && <div class="muted node-message">{n.message}</div>}
              </td>
              <td class="muted">{n.type}</td>
              <td>
                <StateBadge value={n.phase} />
              </td>
              <td>{n.waitsFor.join(', ')}</td>
              <td class="mono">{when(n.startedAt) ?? '—'}</td>
              <td class="mono">{when(n.finishedAt) ?? '—'}</td>
              <td>{duration(n.startedAt, n.finishedAt) ?? '—'}</td>
              <td class="pod">
                {n.job ? (
                  <>
                    <Link to={`/jobs/${encodeURIComponent(n.job)}`} data-testid="node-job">
                      job
                    </Link>{' '}
                    /{' '}
                    <Link to={`/pods/${encodeURIComponent(n.pod)}`} data-testid="node-pod">
                      {n.pod}
                    </Link>
                  </>
                ) : (
                  '—'
                )}
              </td>
              <td class="outputs">
                {n.outputs.map((p) => (
                  <div key={p.name} class="mono" data-output={p.name}>
                    {p.name} = {p.value ?? ''}
                  </div>
                ))}
                {n.artifacts.map((a) => (
                  <div key={a} class="muted">
                    artifact {a}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(run?.metrics ?? []).length > 0 && (
        <>
          <h2>Metrics</h2>
          <table data-testid="metrics">
            <thead>
              <tr>
                <th>Metric</th>
                <th>Value</th>
                <th>Node</th>
              </tr>
            </thead>
            <tbody>
              {run.metrics.map((m) => (
                <tr key={`${m.node_id}/${m.name}`} data-metric={m.name}>
                  <td>{m.name}</td>
                  <td class="mono">{metricValue(m)}</td>
                  <td>{nodeName.get(m.node_id) ?? m.node_id}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
