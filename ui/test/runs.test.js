// The run pages' reading of the Kubeflow face (node's test runner): the
// list's query as kfp's filter JSON, a run's nodes from its Argo workflow
// in the DAG's order with their jobs, pods and waits, durations, metric
// values, who may act, and kfp's numbered error codes by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canEdit, duration, runOfJob, isDone, isRetriable, listQuery, metricValue, runNodes, taskDependencies, workflowOf } from '../src/runs.js';
import { api, codeOf } from '../src/api.js';

test('the list asks newest first, name as a substring and status exactly; a page token alone after', () => {
  assert.deepEqual(listQuery({}), { page_size: '20', sort_by: 'created_at desc' });
  const q = listQuery({ name: ' three ', status: 'Running' });
  assert.deepEqual(JSON.parse(q.filter), {
    predicates: [
      { op: 'IS_SUBSTRING', key: 'name', string_value: 'three' },
      { op: 'EQUALS', key: 'status', string_value: 'Running' },
    ],
  });
  assert.deepEqual(listQuery({ name: 'x', pageToken: 'tok' }), { page_size: '20', sort_by: 'created_at desc', page_token: 'tok' });
});

test('the run calls go to the Kubeflow paths', async () => {
  const asked = [];
  globalThis.fetch = async (url, init) => {
    asked.push(`${init.method} ${url} ${init.headers['x-drover-csrf'] ?? ''}`);
    return new Response('{}', { status: 200 });
  };
  await api.runs(listQuery({ name: 'a b' }));
  await api.run('r/1');
  await api.runAction('r1', 'terminate');
  await api.runAction('r1', 'retry');
  assert.equal(asked[0].startsWith('GET /apis/v1beta1/runs?page_size=20&sort_by=created_at+desc&filter=%7B'), true, asked[0]);
  assert.deepEqual(asked.slice(1), [
    'GET /apis/v1beta1/runs/r%2F1 ',
    'POST /apis/v1beta1/runs/r1/terminate 1',
    'POST /apis/v1beta1/runs/r1/retry 1',
  ]);
});

test('kfp errors carry the gRPC code by number: the page shows its name', async () => {
  assert.equal(codeOf({ code: 12, error: 'x' }, 501), 'UNIMPLEMENTED');
  assert.equal(codeOf({ code: 'NOT_FOUND' }, 404), 'NOT_FOUND');
  assert.equal(codeOf(null, 502), 'HTTP 502');
  globalThis.fetch = async () => new Response(JSON.stringify({ error: 'no', code: 9, message: 'the run is still running' }), { status: 400 });
  await assert.rejects(api.runAction('r1', 'retry'), { message: 'FAILED_PRECONDITION: the run is still running', status: 400 });
});

// A run of producer -> (left, right) -> join, as the scheduler writes it.
const workflow = {
  metadata: { name: 'three-abc' },
  spec: {
    entrypoint: 'three',
    templates: [
      {
        name: 'three',
        dag: {
          tasks: [
            { name: 'producer', template: 'produce' },
            { name: 'left', template: 'consume', dependencies: ['producer'] },
            { name: 'right', template: 'consume', depends: 'producer.Succeeded' },
            { name: 'join', template: 'join', depends: 'left && (right.Succeeded || right.Failed)' },
          ],
        },
      },
    ],
  },
  status: {
    phase: 'Running',
    nodes: {
      'three-abc-4': { id: 'three-abc-4', displayName: 'join', type: 'Pod', phase: 'Pending', boundaryID: 'three-abc', templateName: 'join' },
      'three-abc-2': { id: 'three-abc-2', displayName: 'right', type: 'Pod', phase: 'Running', boundaryID: 'three-abc', startedAt: '2026-12-07T09:00:05Z', hostNodeName: 'kfp-r1-2-1', templateName: 'consume' },
      'three-abc': { id: 'three-abc', displayName: 'three-abc', type: 'DAG', phase: 'Running', startedAt: '2026-12-07T09:00:00Z', children: ['three-abc-4', 'three-abc-2', 'three-abc-3', 'three-abc-1'], templateName: 'three' },
      'three-abc-1': {
        id: 'three-abc-1', displayName: 'producer', type: 'Pod', phase: 'Succeeded', boundaryID: 'three-abc', templateName: 'produce',
        startedAt: '2026-12-07T09:00:00Z', finishedAt: '2026-12-07T09:00:04Z', hostNodeName: 'kfp-r1-1-1',
        outputs: { parameters: [{ name: 'produce-word', value: 'hello' }], artifacts: [{ name: 'produce-data' }] },
      },
      'three-abc-3': { id: 'three-abc-3', displayName: 'left', type: 'Pod', phase: 'Running', boundaryID: 'three-abc', startedAt: '2026-12-07T09:00:05Z', hostNodeName: 'kfp-r1-3-2', templateName: 'consume' },
    },
  },
};

test("a run's nodes come in the DAG's order with their waits, jobs, pods and outputs", () => {
  const detail = { pipeline_runtime: { workflow_manifest: JSON.stringify(workflow) } };
  const nodes = runNodes(workflowOf(detail));
  assert.deepEqual(
    nodes.map((n) => [n.name, n.depth, n.phase, n.waitsFor.join('+'), n.pod]),
    [
      ['three-abc', 0, 'Running', '', null],
      ['producer', 1, 'Succeeded', '', 'kfp-r1-1-1-0'],
      ['left', 1, 'Running', 'producer', 'kfp-r1-3-2-0'],
      ['right', 1, 'Running', 'producer', 'kfp-r1-2-1-0'],
      ['join', 1, 'Pending', 'left+right', null],
    ],
  );
  assert.deepEqual(nodes[1].outputs, [{ name: 'produce-word', value: 'hello' }]);
  assert.deepEqual(nodes[1].artifacts, ['produce-data']);
  assert.equal(nodes[1].job, 'kfp-r1-1-1');
  // No workflow, or one that does not parse: no nodes, no throw.
  assert.deepEqual(runNodes(workflowOf({ pipeline_runtime: { workflow_manifest: 'not json' } })), []);
  assert.deepEqual(runNodes(workflowOf(null)), []);
});

test('loop items wait as their task does; depends expressions name their tasks', () => {
  assert.deepEqual(taskDependencies({ depends: '!a.Failed && b' }), ['a', 'b']);
  assert.deepEqual(taskDependencies({}), []);
  const looped = structuredClone(workflow);
  looped.status.nodes['three-abc-4'].displayName = 'join(0:x)';
  const join = runNodes(looped).find((n) => n.name === 'join(0:x)');
  assert.deepEqual(join.waitsFor, ['left', 'right']);
});

test('durations, phases that end, metric values and who may act', () => {
  assert.equal(duration('2026-12-07T09:00:00Z', '2026-12-07T09:00:04Z'), '4s');
  assert.equal(duration('2026-12-07T09:00:00Z', '2026-12-07T09:00:00Z'), '<1s');
  assert.equal(duration('2026-12-07T09:00:00.100Z', '2026-12-07T09:00:00.500Z'), '0.4s');
  assert.equal(duration('2026-12-07T09:00:00.100Z', '2026-12-07T09:00:20.500Z'), '20s');
  assert.equal(duration('2026-12-07T09:00:00Z', '2026-12-07T09:00:12Z'), '12s');
  assert.equal(duration('2026-12-07T09:00:00Z', '2026-12-07T09:03:05Z'), '3m 05s');
  assert.equal(duration('2026-12-07T09:00:00Z', null, Date.parse('2026-12-07T10:02:00Z')), '1h 02m');
  assert.equal(duration(null, null), null);
  assert.deepEqual(['Pending', 'Running', 'Succeeded', 'Failed', 'Error', 'Omitted'].map(isDone), [false, false, true, true, true, true]);
  assert.deepEqual(['Running', 'Succeeded', 'Failed', 'Error'].map(isRetriable), [false, false, true, true]);
  assert.equal(metricValue({ name: 'acc', number_value: 0.5, format: 'PERCENTAGE' }), '50.00%');
  assert.equal(metricValue({ name: 'loss' }), '0');
  assert.equal(canEdit({ role: 'viewer' }), false);
  assert.equal(canEdit({ role: 'user' }), true);
  assert.equal(canEdit(null), false);
});

test("a node's Drover job names its run and node by its labels", () => {
  const labels = [{ key: 'kfp.run_id', value: 'r1' }, { key: 'kfp.node_id', value: 'p-1-2' }];
  assert.deepEqual(runOfJob({ labels }), { run: 'r1', node: 'p-1-2' });
  assert.equal(runOfJob({ labels: [{ key: 'team', value: 'x' }] }), null);
  assert.equal(runOfJob(null), null);
});
