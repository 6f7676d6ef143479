import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { findJob, instanceOf, jobIdOf, setJobPods, state } from '../store.js';
import { Link } from '../router.jsx';
import { runOfJob } from '../runs.js';
import { Actions, Counts, ErrorLine, Ports, StateBadge, Workflow, useLive, version } from './common.jsx';

export function JobPage({ id }) {
  useLive();
  const [error, setError] = useState(null);
  const job = findJob(id);
  const jobId = job?.job_id.value ?? id;
  useEffect(() => {
    const askedAt = state.revision;
    api
      .jobPods(id)
      .then(({ pods }) => {
        setError(null);
        if (pods.length > 0) setJobPods(jobIdOf(pods[0].pod_name.value), pods, askedAt);
      })
      .catch((e) => setError(e.message));
  }, [id]);
  const pods = [...state.pods.values()]
    .filter((p) => jobIdOf(p.pod_name.value) === jobId)
    .sort((a, b) => instanceOf(a.pod_name.value) - instanceOf(b.pod_name.value));
  return (
    <section>
      <p class="crumbs">
        <Link to="/">Jobs</Link> / {job?.name || id}
      </p>
      <h1>
        {job?.name || id} {job && <StateBadge value={job.status.state} />}
      </h1>
      <ErrorLine error={error} />
      {job && (
        <div class="summary">
          <div>
            <b>Id</b> <span class="mono">{jobId}</span>
          </div>
          {runOfJob(job) && (
            <div data-testid="job-run">
              <b>Kubeflow run</b>{' '}
              <Link to={`/runs/${encodeURIComponent(runOfJob(job).run)}`}>{runOfJob(job).run}</Link> · <b>node</b>{' '}
              <span class="mono">{runOfJob(job).node ?? '—'}</span>
            </div>
          )}
          <div>
            <b>Instances</b> {job.instance_count} · <Counts stats={job.status.pod_stats} />
          </div>
          <div>
            <b>Desired</b> <StateBadge value={job.status.desired_state} /> · <b>version</b>{' '}
            {version(job.status.version)}
          </div>
          <div>
            <b>Update</b> <Workflow status={job.status.workflow_status} />
          </div>
          <div>
            <Actions what={`job ${job.name || jobId}`} call={(a) => api.jobAction(jobId, a)} prefix="job" />
          </div>
        </div>
      )}
      <h2>Pods</h2>
      <table data-testid="pods">
        <thead>
          <tr>
            <th>Pod</th>
            <th>State</th>
            <th>Desired</th>
            <th>Health</th>
            <th>Host</th>
            <th>Ports</th>
            <th>Version / desired</th>
            <th>Pending reason</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pods.map((p) => {
            const name = p.pod_name.value;
            const s = p.status;
            return (
              <tr key={name} data-pod={name} data-state={(s.state ?? '').replace('POD_STATE_', '')}>
                <td class="pod">
                  <Link to={`/pods/${encodeURIComponent(name)}`}>{name}</Link>
                </td>
                <td>
                  <StateBadge value={s.state} />
                </td>
                <td>
                  <StateBadge value={s.desired_state} />
                </td>
                <td>{s.healthy ?? '—'}</td>
                <td>{s.host ?? '—'}</td>
                <td>
                  <Ports ports={s.ports} />
                </td>
                <td>
                  {version(s.version)} / {version(s.desired_version)}
                </td>
                <td class="reason">{s.pending_reason ?? ''}</td>
                <td>
                  <Actions what={`pod ${name}`} call={(a) => api.podAction(name, a)} prefix={`pod-${name}`} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
