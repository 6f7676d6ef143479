// The live store's watch logic against a fake scheduler (node's test
// runner, a stubbed fetch): a watch resumes from the last revision it
// applied; OUT_OF_RANGE reloads by GET and takes a fresh snapshot; a
// cut-off names the revision to resume from; a repeated revision is not
// applied twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { state, watchOnce, reload, setJobPods } from '../src/store.js';

const job = (id, s) => ({ job_id: { value: id }, name: id, status: { state: s, pod_stats: {} } });
const pod = (name, s) => ({ pod_name: { value: name }, status: { state: s } });

function sse(events) {
  const text = events
    .map(([event, id, data]) => `event: ${event}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
    .join(': keep-alive\n\n');
  return new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

// Answers each fetch with the next of `answers` (a function of the URL).
function scheduler(answers) {
  const asked = [];
  globalThis.fetch = async (url) => {
    asked.push(String(url));
    const next = answers.shift();
    if (!next) throw new Error(`unexpected fetch ${url}`);
    return next(String(url));
  };
  return asked;
}

test('a watch resumes from the last revision, and OUT_OF_RANGE reloads and starts afresh', async () => {
  const asked = scheduler([
    () => json(200, { jobs: [job('a', 'JOB_STATE_PENDING')] }),
    () =>
      sse([
        ['snapshot', 5, { revision: 5, jobs: [job('a', 'JOB_STATE_PENDING')], pods: [pod('a-0', 'POD_STATE_PENDING')] }],
        ['change', 6, { revision: 6, jobs: [], deleted_jobs: [], pods: [pod('a-0', 'POD_STATE_RUNNING')], deleted_pods: [] }],
      ]),
    // the connection dropped: resumed from 6; a repeat of 6 is not applied
    () =>
      sse([
        ['change', 6, { revision: 6, jobs: [], pods: [pod('a-0', 'POD_STATE_PENDING')] }],
        ['change', 7, { revision: 7, jobs: [job('b', 'JOB_STATE_RUNNING')], deleted_jobs: ['a'], pods: [], deleted_pods: ['a-0'] }],
      ]),
    // the scheduler restarted: 7 is gone
    () => json(400, { code: 'OUT_OF_RANGE', message: 'revision 7 is older than the window: take a fresh snapshot' }),
    () => json(200, { jobs: [job('b', 'JOB_STATE_RUNNING'), job('c', 'JOB_STATE_PENDING')] }),
    () => sse([['snapshot', 9, { revision: 9, jobs: [job('b', 'JOB_STATE_RUNNING'), job('c', 'JOB_STATE_PENDING')], pods: [] }]]),
  ]);
  await reload();
  assert.equal(await watchOnce(), 'ended');
  assert.equal(state.revision, 6);
  assert.equal(state.pods.get('a-0').status.state, 'POD_STATE_RUNNING');

  assert.equal(await watchOnce(), 'ended');
  assert.equal(asked[2], '/api/v1/watch?since=6');
  assert.equal(state.revision, 7);
  assert.deepEqual([...state.jobs.keys()], ['b']);
  assert.equal(state.pods.has('a-0'), false);

  assert.equal(await watchOnce(), 'resync');
  assert.equal(asked[3], '/api/v1/watch?since=7');
  assert.equal(asked[4], '/api/v1/jobs');
  assert.equal(state.revision, null);
  assert.deepEqual([...state.jobs.keys()], ['b', 'c']);

  assert.equal(await watchOnce(), 'ended');
  assert.equal(asked[5], '/api/v1/watch');
  assert.equal(state.revision, 9);
  assert.equal(state.resyncs, 1);
});

test('a watcher cut off for lagging resumes from the revision it was given', async () => {
  state.revision = 20;
  const asked = scheduler([
    () =>
      sse([
        ['change', 21, { revision: 21, jobs: [], pods: [pod('x-0', 'POD_STATE_RUNNING')] }],
        ['error', 21, { code: 'RESOURCE_EXHAUSTED', message: 'too far behind: resume from revision 21', revision: 21 }],
      ]),
    () => new Promise(() => {}), // the next watch: never answered here
  ]);
  assert.equal(await watchOnce(), 'ended');
  assert.equal(state.revision, 21);
  assert.equal(state.link, 'reconnecting');
  assert.match(state.linkError, /RESOURCE_EXHAUSTED/);
  watchOnce();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(asked[1], '/api/v1/watch?since=21');
});

test('an unreachable scheduler is a failed watch, to back off from', async () => {
  scheduler([
    () => {
      throw new TypeError('fetch failed');
    },
  ]);
  assert.equal(await watchOnce(), 'failed');
  assert.equal(state.link, 'reconnecting');
});

test("a GET's pods asked before a watch change do not overwrite what the watch said since", async () => {
  scheduler([
    () =>
      sse([
        ['snapshot', 30, { revision: 30, jobs: [job('j', 'JOB_STATE_RUNNING')], pods: [pod('j-0', 'POD_STATE_LAUNCHED'), pod('j-1', 'POD_STATE_LAUNCHED')] }],
      ]),
    () => sse([['change', 31, { revision: 31, jobs: [], pods: [pod('j-0', 'POD_STATE_RUNNING')], deleted_pods: ['j-2'] }]]),
  ]);
  assert.equal(await watchOnce(), 'ended');
  // The job page asks for the pods at 30; the watch applies 31 before the
  // answer (read at 30) arrives.
  const askedAt = state.revision;
  assert.equal(await watchOnce(), 'ended');
  setJobPods('j', [pod('j-0', 'POD_STATE_STARTING'), pod('j-1', 'POD_STATE_STARTING'), pod('j-2', 'POD_STATE_RUNNING')], askedAt);
  assert.equal(state.pods.get('j-0').status.state, 'POD_STATE_RUNNING', 'the watch is newer');
  assert.equal(state.pods.get('j-1').status.state, 'POD_STATE_STARTING', 'the GET is newer');
  assert.ok(!state.pods.has('j-2'), 'a pod the watch removed is not brought back');
  // Asked after 31: the GET's answer is taken whole.
  setJobPods('j', [pod('j-0', 'POD_STATE_SUCCEEDED')], state.revision);
  assert.equal(state.pods.get('j-0').status.state, 'POD_STATE_SUCCEEDED');
  assert.ok(!state.pods.has('j-1'));
});
