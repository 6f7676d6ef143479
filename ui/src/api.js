// The scheduler's JSON API, same origin. Errors carry the API's
// {"code", "message"} so the pages can show them as they are.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

// gRPC's code names by number: the Kubeflow face (/apis/v1beta1) writes
// its errors as grpc-gateway does, {"error", "code": 5, "message"}.
const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND',
  'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED',
  'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

// The error code of an answer's body: a name, whichever face wrote it.
export function codeOf(body, status) {
  const code = body?.code;
  if (typeof code === 'number') return GRPC_CODES[code] ?? `code ${code}`;
  return code ?? `HTTP ${status}`;
}

// Set by auth.js: what a 401 does (the login comes back).
export const hooks = { unauthenticated: () => {} };

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  // The scheduler takes a write made with the session cookie only with
  // this header, which a page of another site cannot add.
  if (method !== 'GET') init.headers['x-drover-csrf'] = '1';
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = null;
  }
  if (res.status === 401 && path !== '/api/v1/login') hooks.unauthenticated();
  if (!res.ok) {
    throw new ApiError(res.status, codeOf(json, res.status), json?.message ?? text);
  }
  return json;
}

export const get = (path) => call('GET', path);
export const post = (path, body = {}) => call('POST', path, body);

const enc = encodeURIComponent;

export const api = {
  jobs: () => get('/api/v1/jobs'),
  job: (id) => get(`/api/v1/jobs/${enc(id)}`),
  jobPods: (id) => get(`/api/v1/jobs/${enc(id)}/pods`),
  pod: (pod) => get(`/api/v1/pods/${enc(pod)}`),
  podEvents: (pod) => get(`/api/v1/pods/${enc(pod)}/events`),
  podLog: (pod, stream, offset, run) => {
    const q = new URLSearchParams();
    if (offset !== undefined && offset !== null) q.set('offset', String(offset));
    if (run !== undefined && run !== null) q.set('run', String(run));
    return get(`/api/v1/pods/${enc(pod)}/logs/${stream}?${q}`);
  },
  agents: () => get('/api/v1/agents'),
  // action: stop | start | restart
  jobAction: (id, action) => post(`/api/v1/jobs/${enc(id)}/${action}`),
  podAction: (pod, action) => post(`/api/v1/pods/${enc(pod)}/${action}`),
  // Pipeline runs, on the Kubeflow Pipelines v1beta1 face the kfp SDK
  // calls (the same service, rules and permissions). `query`: the list's
  // page_size, page_token, sort_by and filter (runs.js builds them).
  runs: (query) => get(`/apis/v1beta1/runs?${new URLSearchParams(query)}`),
  run: (id) => get(`/apis/v1beta1/runs/${enc(id)}`),
  experiments: () => get('/apis/v1beta1/experiments?page_size=200'),
  // action: terminate | retry
  runAction: (id, action) => post(`/apis/v1beta1/runs/${enc(id)}/${action}`),
};
