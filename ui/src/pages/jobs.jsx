import { state } from '../store.js';
import { Link } from '../router.jsx';
import { Counts, StateBadge, Workflow, useLive } from './common.jsx';

export function JobsPage() {
  useLive();
  const jobs = [...state.jobs.values()];
  return (
    <section>
      <h1>Jobs <span class="muted">({jobs.length})</span></h1>
      <table data-testid="jobs">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>State</th>
            <th>Instances</th>
            <th>Pods by state</th>
            <th>Update</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.job_id.value} data-job={j.job_id.value}>
              <td>
                <Link to={`/jobs/${encodeURIComponent(j.job_id.value)}`}>{j.name || j.job_id.value}</Link>
              </td>
              <td class="mono">{j.job_id.value}</td>
              <td>
                <StateBadge value={j.status.state} />
              </td>
              <td>{j.instance_count}</td>
              <td>
                <Counts stats={j.status.pod_stats} />
              </td>
              <td>
                <Workflow status={j.status.workflow_status} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {jobs.length === 0 && <p class="muted">No jobs yet.</p>}
    </section>
  );
}
