// What the UI's browser scripts share: Debian's Chromium, headless,
// started through playwright-core (which downloads no browser), and a
// failure that ends the script with its reason on stderr.

import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The longest any one wait of a script may take.
export const WAIT = 30_000;

// Ends the script: `label` names which one, on stderr, for the Rust test.
export function failer(label) {
  return (message) => {
    process.stderr.write(`${label} FAILED: ${message}\n`);
    process.exit(1);
  };
}

// The browser, or the script fails saying how to install it.
export async function launch(fail) {
  if (!existsSync(CHROMIUM)) fail(`no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

// What `page` asked that is still unanswered, or failed, as text for a
// failure's message: a wait that times out does not say why (a watch
// stream is always among the unanswered).
export function trackRequests(page) {
  const pending = new Map();
  const failed = [];
  page.on('request', (r) => pending.set(r, Date.now()));
  page.on('requestfinished', (r) => pending.delete(r));
  page.on('requestfailed', (r) => {
    pending.delete(r);
    failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  return () => {
    const now = Date.now();
    const open = [...pending].map(([r, at]) => `${r.method()} ${r.url()} (${now - at} ms)`);
    return `unanswered requests: ${open.join(', ') || 'none'}\nfailed requests: ${failed.join(', ') || 'none'}`;
  };
}

// The script's side of a stepped run (tests/src/harness/browser.rs):
// `step(name, detail, ask)` prints `STEP <name> [json]` for the test; with
// `ask`, it waits for the test's `GO` on stdin.
export function stepper() {
  const lines = createInterface({ input: process.stdin });
  const answers = [];
  let waiting = null;
  lines.on('line', (l) => (waiting ? (waiting(l), (waiting = null)) : answers.push(l)));
  const nextAnswer = () =>
    answers.length ? Promise.resolve(answers.shift()) : new Promise((r) => (waiting = r));
  return async (name, detail, ask = false) => {
    process.stdout.write(`STEP ${name}${detail ? ' ' + JSON.stringify(detail) : ''}\n`);
    if (ask) {
      const a = await nextAnswer();
      if (a !== 'GO') throw new Error(`test answered ${a} to ${name}`);
    }
  };
}

// Polls `check` every 100 ms until it holds, or throws after `timeout`.
export async function waitFor(check, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // the page changed under the check: try again
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
