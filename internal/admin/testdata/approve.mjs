// Approves one request through the Warden console in headless Chromium,
// the way an approver would: log in with the form, open the request from
// the list, check what it shows, comment, click Approve.
//
// Usage: node approve.mjs <console-base-url> <approval-id> <tool> <args-fragment> <comment>
// Environment: WARDEN_ADMIN_KEY (required; kept out of argv so it does not
// show in process listings), WARDEN_SCREENSHOT (optional PNG path, taken
// after approving), NODE_PATH (where playwright-core is installed).
// Exits 0 when the console shows the request approved, 1 otherwise.

import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ES module imports ignore NODE_PATH; require honours it.
const require = createRequire(import.meta.url);

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const stepTimeoutMs = 15000;

function fail(msg) {
  throw new Error(msg);
}

async function run() {
  const [base, id, tool, argsFragment, comment] = process.argv.slice(2);
  if (!base || !id || !tool || !argsFragment || !comment) {
    fail('usage: approve.mjs <console-base-url> <approval-id> <tool> <args-fragment> <comment>');
  }
  const key = process.env.WARDEN_ADMIN_KEY;
  if (!key) {
    fail('WARDEN_ADMIN_KEY is not set');
  }
  const origin = new URL(base).origin;
  const detailURL = `${origin}/console/approvals/${encodeURIComponent(id)}`;

  const { chromium } = require('playwright-core');
  const profile = await mkdtemp(join(tmpdir(), 'warden-console-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      timeout: 30000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(stepTimeoutMs);
    // The console runs no scripts; a dialog means injected markup ran.
    const problems = [];
    page.on('dialog', (d) => {
      problems.push(`page opened a ${d.type()} dialog: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

    // Log in through the form.
    await page.goto(`${origin}/console/login`);
    await page.fill('#key', key);
    await Promise.all([
      page.waitForURL(`${origin}/console/approvals`),
      page.click('button[type=submit]'),
    ]);

    // Open the request from the pending list.
    const link = page.locator(`a[href="/console/approvals/${id}"]`);
    if ((await link.count()) !== 1) {
      fail(`the pending list has no link to ${id}`);
    }
    await Promise.all([page.waitForURL(detailURL), link.click()]);

    const state = (await page.locator('#state').textContent())?.trim();
    if (state !== 'pending') {
      fail(`request ${id} shows state ${JSON.stringify(state)}, want pending`);
    }
    const table = await page.locator('table').first().innerText();
    if (!table.includes(tool)) {
      fail(`the request page does not show the tool ${JSON.stringify(tool)}:\n${table}`);
    }
    const args = await page.locator('pre').first().textContent();
    if (!args?.includes(argsFragment)) {
      fail(`the arguments do not include ${JSON.stringify(argsFragment)}:\n${args}`);
    }
    if ((await page.locator('script').count()) !== 0) {
      fail('the request page contains a script element');
    }

    // Approve with a comment; the POST answers 303 back to this page.
    await page.fill('#approve-comment', comment);
    const redirected = page.waitForResponse(
      (r) => r.request().method() === 'GET' && r.url() === detailURL &&
        r.request().redirectedFrom()?.method() === 'POST',
    );
    await page.click('#approve');
    const resp = await redirected;
    if (resp.status() !== 200) {
      fail(`after approving, the request page answered ${resp.status()}`);
    }
    await page.waitForLoadState('load');

    const after = (await page.locator('#state').textContent())?.trim();
    if (after !== 'approved') {
      fail(`after approving, request ${id} shows ${JSON.stringify(after)}, want approved`);
    }
    const decided = await page.locator('table').first().innerText();
    if (!decided.includes(comment)) {
      fail(`the approved request does not show the comment:\n${decided}`);
    }
    if ((await page.locator('#approve').count()) !== 0) {
      fail('the approved request still offers an Approve button');
    }
    if (problems.length > 0) {
      fail(problems.join('\n'));
    }
    if (process.env.WARDEN_SCREENSHOT) {
      await page.screenshot({ path: process.env.WARDEN_SCREENSHOT, fullPage: true });
    }
  } finally {
    if (context) {
      await context.close().catch(() => {});
    }
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

try {
  await run();
  console.log('approved through the console');
} catch (e) {
  console.error(`approve.mjs: ${e?.message ?? e}`);
  process.exit(1);
}
