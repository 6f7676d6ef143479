import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { jobIdOf, putPodSummary, state } from '../store.js';
import { Link } from '../router.jsx';
import { Actions, ErrorLine, Ports, StateBadge, useLive, version } from './common.jsx';

const runOf = (podId) => Number((podId ?? '').slice(podId.lastIndexOf('-') + 1));

export function PodPage({ name }) {
  useLive();
  const [detail, setDetail] = useState(null);
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(null);
  const touched = state.podTouched.get(name) ?? 0;
  // The pod's runs and events: at first, and again whenever the watch
  // says the pod changed.
  useEffect(() => {
    let alive = true;
    Promise.all([api.pod(name), api.podEvents(name)])
      .then(([d, e]) => {
        if (!alive) return;
        setDetail(d);
        setEvents(e.events);
        setError(null);
        if (!state.pods.has(name) && d.current?.status) {
          putPodSummary({ pod_name: { value: name }, status: d.current.status });
        }
      })
      .catch((e) => alive && setError(e.message));
    return () => {
      alive = false;
    };
  }, [name, touched]);
  const status = state.pods.get(name)?.status ?? detail?.current?.status;
  const job = jobIdOf(name);
  const runs = [detail?.current, ...(detail?.previous ?? [])].filter((r) => r?.status?.pod_id);
  return (
    <section>
      <p class="crumbs">
        <Link to="/">Jobs</Link> / <Link to={`/jobs/${encodeURIComponent(job)}`}>{state.jobs.get(job)?.name || job}</Link> / {name}
      </p>
      <h1>
        {name} {status && <StateBadge value={status.state} />}
      </h1>
      <ErrorLine error={error} />
      {status && (
        <div class="summary" data-testid="pod-status">
          <div>
            <b>Run</b> <span class="mono">{status.pod_id?.value ?? '—'}</span> · <b>desired</b>{' '}
            <StateBadge value={status.desired_state} />
          </div>
          <div>
            <b>Health</b> {status.healthy ?? '—'} · <b>host</b> {status.host ?? '—'} · <b>ports</b>{' '}
            <Ports ports={status.ports} />
          </div>
          <div>
            <b>Version</b> {version(status.version)} / desired {version(status.desired_version)}
            {status.failure_count > 0 && <> · <b>failures</b> {status.failure_count}</>}
          </div>
          {status.pending_reason && (
            <div>
              <b>Pending</b> <span class="reason">{status.pending_reason}</span>
            </div>
          )}
          {status.message && (
            <div>
              <b>Message</b> {status.message} {status.reason && <span class="muted">({status.reason})</span>}
            </div>
          )}
          <div>
            <Actions what={`pod ${name}`} call={(a) => api.podAction(name, a)} prefix="pod" />
          </div>
        </div>
      )}
      <Logs name={name} runs={runs} current={status?.pod_id?.value} />
      <h2>Runs</h2>
      <table data-testid="runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>State</th>
            <th>Host</th>
            <th>Started</th>
            <th>Ended</th>
            <th>Reason</th>
            <th>Version</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.status.pod_id.value}>
              <td class="mono">{r.status.pod_id.value}</td>
              <td>
                <StateBadge value={r.status.state} />
              </td>
              <td>{r.status.host ?? '—'}</td>
              <td>{r.status.start_time ?? '—'}</td>
              <td>{r.status.completion_time ?? '—'}</td>
              <td>{r.status.reason ?? ''}</td>
              <td>{version(r.status.version)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Events</h2>
      <table data-testid="events">
        <thead>
          <tr>
            <th>Time</th>
            <th>Run</th>
            <th>State</th>
            <th>Health</th>
            <th>Host</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          {[...events].reverse().map((e, i) => (
            <tr key={i} data-event={short(e.actual_state)}>
              <td class="mono">{e.timestamp}</td>
              <td class="mono">{e.pod_id.value}</td>
              <td>
                <StateBadge value={e.actual_state} />
              </td>
              <td>{e.healthy}</td>
              <td>{e.hostname ?? ''}</td>
              <td>
                {e.message ?? ''} {e.reason && <span class="muted">({e.reason})</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

const short = (s) => (s ?? '').replace(/^POD_STATE_/, '');

// A run's stdout or stderr, read through the scheduler from the agent's
// files API and followed: new bytes are asked for every second from the
// offset reached.
function Logs({ name, runs, current }) {
  const [stream, setStream] = useState('stdout');
  const [chosen, setChosen] = useState(null); // a pod_id; null: the current run
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const pre = useRef(null);
  const podId = chosen ?? current;
  useEffect(() => {
    if (!podId) return undefined;
    let alive = true;
    let offset = 0;
    let timer = null;
    setText('');
    setError(null);
    const run = runOf(podId);
    const tick = async () => {
      try {
        // read to the end, then wait for more
        for (;;) {
          const chunk = await api.podLog(name, stream, offset, run);
          if (!alive) return;
          setError(null);
          if (!chunk.data) break;
          offset = chunk.offset + new TextEncoder().encode(chunk.data).length;
          setText((t) => t + chunk.data);
        }
      } catch (e) {
        if (alive) setError(e.message);
      }
      if (alive) timer = setTimeout(tick, 1000);
    };
    tick();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [name, stream, podId]);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);
  return (
    <div class="logs">
      <h2>
        Sandbox{' '}
        {['stdout', 'stderr'].map((s) => (
          <button key={s} class={s === stream ? 'tab active' : 'tab'} onClick={() => setStream(s)} data-testid={`log-${s}`}>
            {s}
          </button>
        ))}{' '}
        <select value={chosen ?? ''} onChange={(e) => setChosen(e.currentTarget.value || null)}>
          <option value="">current run</option>
          {runs.map((r) => (
            <option key={r.status.pod_id.value} value={r.status.pod_id.value}>
              {r.status.pod_id.value}
            </option>
          ))}
        </select>{' '}
        <span class="muted">following</span>
      </h2>
      <ErrorLine error={error} />
      <pre ref={pre} data-testid="log">{text || (podId ? '' : 'no run yet')}</pre>
    </div>
  );
}
