// The UI's live copy of the scheduler's jobs and pods: loaded with GETs,
// then kept current by the watch stream (GET /api/v1/watch, server-sent
// events). After a dropped connection the watch resumes from the last
// revision it applied (since=R), so nothing is reloaded; when the
// scheduler no longer has that revision (OUT_OF_RANGE: the window moved
// on, or the scheduler restarted) the data is reloaded by GET and a
// fresh watch (snapshot, then changes) starts, without a page reload.
// A scheduler without the watch route is polled instead.

import { api, hooks } from './api.js';
import { whenLoggedIn } from './auth.js';
import { readEvents } from './sse.js';

const listeners = new Set();

export const state = {
  jobs: new Map(), // job id -> job summary
  pods: new Map(), // pod name -> pod summary
  revision: null, // the last revision applied
  link: 'connecting', // connecting | live | reconnecting | polling
  linkError: null,
  // bumped on every change, so pages can refetch what they show
  // (events, runs) when their pod changed
  podTouched: new Map(), // pod name -> counter
  // the revision of the watch's last word on each pod: a GET's answer
  // (read at some revision after it was asked) does not overwrite a pod
  // the watch changed since it was asked. The watch delivers every change
  // in order, so its copy is never behind for long; a GET's can be, with
  // nothing after it to set it right (a pod shown STARTING for good).
  podRevision: new Map(), // pod name -> revision
  generation: 0,
  drops: 0, // times the live stream was lost
  resyncs: 0, // times the data was reloaded after OUT_OF_RANGE
};

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  state.generation += 1;
  for (const fn of listeners) fn(state.generation);
}

export const jobIdOf = (podName) => podName.slice(0, podName.lastIndexOf('-'));
export const instanceOf = (podName) => Number(podName.slice(podName.lastIndexOf('-') + 1));

function touch(name) {
  state.podTouched.set(name, (state.podTouched.get(name) ?? 0) + 1);
}

function putJob(summary) {
  state.jobs.set(summary.job_id.value, summary);
}

function putPod(summary) {
  const name = summary.pod_name.value;
  state.pods.set(name, summary);
  touch(name);
}

// Whether the watch changed pod `name` after revision `askedAt` (null: a
// GET asked before any watch data).
function watchedSince(name, askedAt) {
  return (state.podRevision.get(name) ?? -Infinity) > (askedAt ?? -Infinity);
}

// The pods of one job as GET /api/v1/jobs/{id}/pods lists them (all its
// instances), asked when the watch had applied `askedAt` (state.revision
// then): replaces what was known of that job's pods, but for those the
// watch changed since.
export function setJobPods(jobId, pods, askedAt) {
  for (const name of [...state.pods.keys()]) {
    if (jobIdOf(name) === jobId && !watchedSince(name, askedAt)) state.pods.delete(name);
  }
  for (const p of pods) if (!watchedSince(p.pod_name.value, askedAt)) putPod(p);
  changed();
}

export function putPodSummary(summary) {
  putPod(summary);
  changed();
}

// The job a route names, by id or by name.
export function findJob(ref) {
  if (state.jobs.has(ref)) return state.jobs.get(ref);
  for (const j of state.jobs.values()) if (j.name === ref) return j;
  return null;
}

// GETs of what the pages show: every job, and the pods of the jobs whose
// pods are known (the page open). Used at start, after OUT_OF_RANGE, and
// when polling.
export async function reload() {
  const { jobs } = await api.jobs();
  state.jobs = new Map();
  for (const j of jobs) putJob(j);
  const shown = new Set([...state.pods.keys()].map(jobIdOf));
  for (const id of shown) {
    if (!state.jobs.has(id)) continue;
    try {
      const askedAt = state.revision;
      const { pods } = await api.jobPods(id);
      setJobPods(id, pods, askedAt);
    } catch {
      // the job went between the two reads: the next change tells
    }
  }
  changed();
}

function applySnapshot(data) {
  state.jobs = new Map();
  state.pods = new Map();
  state.podRevision = new Map();
  for (const j of data.jobs ?? []) putJob(j);
  for (const p of data.pods ?? []) {
    putPod(p);
    state.podRevision.set(p.pod_name.value, data.revision);
  }
  state.revision = data.revision;
}

function applyChange(data) {
  // one event per revision, strictly increasing: an older one is a
  // repeat after a resume, already applied
  if (state.revision !== null && data.revision <= state.revision) return;
  for (const j of data.jobs ?? []) putJob(j);
  for (const id of data.deleted_jobs ?? []) state.jobs.delete(id);
  for (const p of data.pods ?? []) {
    putPod(p);
    state.podRevision.set(p.pod_name.value, data.revision);
  }
  for (const name of data.deleted_pods ?? []) {
    state.pods.delete(name);
    state.podRevision.set(name, data.revision);
    touch(name);
  }
  state.revision = data.revision;
}

function setLink(link, error = null) {
  if (state.link === 'live' && link !== 'live') state.drops += 1;
  state.link = link;
  state.linkError = error;
  changed();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One watch: opens the stream (from the last revision applied, or a fresh
// snapshot) and applies it until it ends. Says what happened: 'ended' (the
// stream delivered, then ended or broke: resume), 'failed' (nothing came:
// back off), 'resync' (OUT_OF_RANGE: the data was
// reloaded by GET; the next watch takes a fresh snapshot), 'polled' (no
// watch route: the data was reloaded by GET).
export async function watchOnce() {
  let got = false;
  try {
    const url =
      state.revision === null ? '/api/v1/watch' : `/api/v1/watch?since=${state.revision}`;
    const res = await fetch(url, { headers: { accept: 'text/event-stream' } });
    if (res.status === 401) {
      hooks.unauthenticated();
      return 'failed';
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      if (res.status === 404 && body.code === 'NOT_FOUND') {
        setLink('polling');
        await reload();
        return 'polled';
      }
      if (body.code === 'OUT_OF_RANGE' || body.code === 'INVALID_ARGUMENT') {
        state.revision = null;
        state.podRevision = new Map();
        state.resyncs += 1;
        await reload();
        return 'resync';
      }
      throw new Error(`${body.code ?? res.status}: ${body.message ?? ''}`);
    }
    // Live once the scheduler accepted the watch: a resume from the head
    // sends nothing until something changes.
    got = true;
    setLink('live');
    let cutOff = null;
    await readEvents(res, ({ event, data }) => {
      got = true;
      const parsed = JSON.parse(data);
      if (event === 'snapshot') applySnapshot(parsed);
      else if (event === 'change') applyChange(parsed);
      else if (event === 'error') {
        cutOff = parsed;
        // every change up to its revision was delivered
        if (typeof parsed.revision === 'number') state.revision = parsed.revision;
      }
      state.link = 'live';
      state.linkError = null;
      changed();
    });
    setLink('reconnecting', cutOff ? `${cutOff.code}: ${cutOff.message}` : 'stream ended');
  } catch (e) {
    setLink('reconnecting', String(e.message ?? e));
  }
  return got ? 'ended' : 'failed';
}

// Runs for the page's life: GETs first, then watch after watch; while
// logged out, it waits for the login.
export async function follow() {
  for (;;) {
    await whenLoggedIn();
    try {
      await reload();
      break;
    } catch (e) {
      setLink('reconnecting', String(e.message ?? e));
      await sleep(1000);
    }
  }
  let pause = 250;
  for (;;) {
    await whenLoggedIn();
    const outcome = await watchOnce();
    if (outcome === 'resync') continue;
    if (outcome === 'polled') {
      await sleep(2000);
      continue;
    }
    // soon after a stream that delivered; backing off while nothing answers
    pause = outcome === 'ended' ? 250 : Math.min(pause * 2, 5000);
    await sleep(pause);
  }
}
