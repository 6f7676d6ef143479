// Who the UI acts as. The scheduler authenticates every API call; the UI
// logs in with a user name and password from the scheduler's credentials
// file (POST /api/v1/login), which sets an HttpOnly session cookie the
// browser then sends with every call. The UI never sees the cookie, so a
// script injected into the page could not read it either. A 401 at any
// time (the session ended, the user was removed) brings the login back.

import { get, post, hooks } from './api.js';

const listeners = new Set();
let loggedIn = null; // resolves the wait of whoever awaits whenLoggedIn()

export const auth = {
  status: 'checking', // checking | in | out | error
  who: null, // {name, role, teams, via}
  error: null,
};

export function subscribeAuth(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function set(status, who = null, error = null) {
  auth.status = status;
  auth.who = who;
  auth.error = error;
  if (status === 'in' && loggedIn) {
    loggedIn();
    loggedIn = null;
  }
  for (const fn of listeners) fn(auth);
}

// Resolves once the UI is logged in (at once if it is).
export function whenLoggedIn() {
  if (auth.status === 'in') return Promise.resolve();
  return new Promise((resolve) => {
    const previous = loggedIn;
    loggedIn = () => {
      previous?.();
      resolve();
    };
  });
}

// Asks the scheduler who we are: a session from before, or anonymous
// access (a scheduler started with --allow-anonymous).
export async function checkLogin() {
  try {
    set('in', await get('/api/v1/whoami'));
  } catch (e) {
    if (e.status === 401) set('out');
    else set('error', null, e.message);
  }
}

export async function login(user, password) {
  const who = await post('/api/v1/login', { user, password });
  set('in', who);
}

export async function logout() {
  try {
    await post('/api/v1/logout');
  } finally {
    set('out');
  }
}

hooks.unauthenticated = () => {
  if (auth.status !== 'out') set('out');
};
