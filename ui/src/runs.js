// What the run pages show of the Kubeflow face's answers, apart from
// fetching and drawing them: the list's query (Kubeflow's filter JSON),
// a run's nodes read from its Argo workflow (`pipeline_runtime.
// workflow_manifest`, `status.nodes` keyed by node id) in the DAG's order
// with what each waits for, durations, and who may act on a run. Pure.

// The phases a run or node can have, as Argo names them.
export const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Error', 'Skipped', 'Omitted'];

// A run in one of these will not change unless it is retried.
export const isDone = (status) => Boolean(status) && status !== 'Pending' && status !== 'Running';

// kfp retries a run that ended without succeeding.
export const isRetriable = (status) => isDone(status) && status !== 'Succeeded';

// The list query: newest first, the name as a substring and the status
// as an exact phase, ANDed (kfp's filter, ops by name, snake_case keys).
// A later page's token carries the first page's sort and filter.
export function listQuery({ name = '', status = '', pageToken = null, pageSize = 20 }) {
  const query = { page_size: String(pageSize), sort_by: 'created_at desc' };
  if (pageToken) {
    query.page_token = pageToken;
    return query;
  }
  const predicates = [];
  if (name.trim()) predicates.push({ op: 'IS_SUBSTRING', key: 'name', string_value: name.trim() });
  if (status) predicates.push({ op: 'EQUALS', key: 'status', string_value: status });
  if (predicates.length > 0) query.filter = JSON.stringify({ predicates });
  return query;
}

// The experiment a run belongs to: its EXPERIMENT reference's id.
export function experimentOf(run) {
  const ref = (run?.resource_references ?? []).find((r) => r.key?.type === 'EXPERIMENT');
  return ref?.key?.id ?? null;
}

const millis = (iso) => {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
};

// "1h 02m", "3m 05s", "12s"; under ten seconds in tenths ("0.4s") when
// the start has them (a run's times), else "<1s" for none (a node's
// times are Argo's, in whole seconds); null without a start.
export function duration(startIso, endIso, nowMs = Date.now()) {
  const start = millis(startIso);
  if (start === null) return null;
  const end = millis(endIso) ?? nowMs;
  const ms = Math.max(0, end - start);
  const tenths = /\.\d+(Z|[+-]\d\d:\d\d)$/.test(startIso);
  if (tenths && ms < 9950) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s === 0) return '<1s';
  const pad = (n) => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${s}s`;
}

// A time as the pages show it: RFC 3339 to the second, in UTC.
export function when(iso) {
  const ms = millis(iso);
  return ms === null ? null : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace('T', ' ');
}

// The Argo Workflow of a run's detail, or {} when it has none (or it does
// not parse: the page still shows the run).
export function workflowOf(detail) {
  try {
    const workflow = JSON.parse(detail?.pipeline_runtime?.workflow_manifest ?? '{}');
    return workflow && typeof workflow === 'object' ? workflow : {};
  } catch {
    return {};
  }
}

// The task names a dag task waits for: its `dependencies`, or the tasks
// named in its `depends` expression (`a && (b.Succeeded || c.Failed)`).
export function taskDependencies(task) {
  if (Array.isArray(task?.dependencies)) return task.dependencies;
  if (typeof task?.depends !== 'string') return [];
  const names = task.depends
    .split(/&&|\|\||[!()\s]+/)
    .map((t) => t.trim().replace(/\.[A-Za-z]+$/, ''))
    .filter(Boolean);
  return [...new Set(names)];
}

// A loop item's node is displayed as `task(0:item)`: its task's name.
const taskName = (displayName) => (displayName ?? '').replace(/\(\d+:.*\)$/, '');

// The run's nodes in the DAG's order: depth first from the workflow's root
// (children by start time, then name), each with its depth, the tasks it
// waits for, its Drover job and pod (a container node's job is
// `hostNodeName`; its one pod is `<job>-0`), and its outputs. Nodes the
// walk does not reach come last.
export function runNodes(workflow) {
  const byId = workflow?.status?.nodes ?? {};
  const templates = new Map((workflow?.spec?.templates ?? []).map((t) => [t.name, t]));
  const start = (n) => millis(n.startedAt) ?? Number.MAX_SAFE_INTEGER;
  const order = (a, b) => start(a) - start(b) || (a.displayName ?? '').localeCompare(b.displayName ?? '');
  const waitsFor = (n) => {
    const parent = byId[n.boundaryID];
    const tasks = templates.get(parent?.templateName)?.dag?.tasks ?? [];
    return taskDependencies(tasks.find((t) => t.name === taskName(n.displayName)));
  };
  const rows = [];
  const seen = new Set();
  const visit = (n, depth) => {
    if (!n || seen.has(n.id)) return;
    seen.add(n.id);
    const job = n.hostNodeName ?? null;
    rows.push({
      id: n.id,
      name: n.displayName ?? n.name ?? n.id,
      depth,
      type: n.type ?? '',
      template: n.templateName ?? '',
      phase: n.phase ?? '',
      message: n.message ?? '',
      startedAt: n.startedAt ?? null,
      finishedAt: n.finishedAt ?? null,
      waitsFor: waitsFor(n),
      job,
      pod: job ? `${job}-0` : null,
      outputs: n.outputs?.parameters ?? [],
      artifacts: (n.outputs?.artifacts ?? []).map((a) => a.name),
    });
    const children = (n.children ?? []).map((id) => byId[id]).filter(Boolean);
    for (const c of children.sort(order)) visit(c, depth + 1);
  };
  const root = byId[workflow?.metadata?.name] ?? Object.values(byId).find((n) => !n.boundaryID);
  visit(root, 0);
  for (const n of Object.values(byId).sort(order)) visit(n, 0);
  return rows;
}

// A metric's value as kfp formats it: PERCENTAGE as a percent.
export function metricValue(metric) {
  const v = Number(metric?.number_value ?? 0);
  return metric?.format === 'PERCENTAGE' ? `${(v * 100).toFixed(2)}%` : String(v);
}

// The Kubeflow run and node a Drover job runs, from the labels the
// scheduler gives a node's job (`kfp.run_id`, `kfp.node_id`); null for
// any other job.
export function runOfJob(job) {
  const label = (key) => (job?.labels ?? []).find((l) => l.key === key)?.value;
  const run = label('kfp.run_id');
  return run ? { run, node: label('kfp.node_id') ?? null } : null;
}

// Whether `who` (GET /api/v1/whoami) may terminate or retry a run: every
// role but viewer may run pipelines.
export const canEdit = (who) => Boolean(who) && who.role !== 'viewer';
