// The idle prompt, in a real browser against a server of this test's own with short idle
// settings (12 s, the prompt for the last 8): the prompt appears, "Stay signed in" keeps the
// session, and ignoring it signs the user out to the sign-in page. (The rules themselves are
// tested on a controlled clock in the API tests; this checks what the user sees.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addUser, enrolWithPassword, signIn } from './accounts.mjs';
import { launch, openPage } from './browser.mjs';

let browser;
let server;
let baseUrl;
let env;

async function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skjold-idle-'));
  const port = await freePort();
  baseUrl = `http://localhost:${port}`;
  const config = join(dir, 'skjold.toml');
  writeFileSync(config, [
    '[identity]',
    `database = "${join(dir, 'app.sqlite3')}"`,
    `public_url = "${baseUrl}"`,
    'idle_timeout_seconds = 12',
    'idle_warning_seconds = 8',
    '',
  ].join('\n'));
  env = { ...process.env, SKJOLD_CONFIG: config, SKJOLD_AUDIT_LOG: join(dir, 'audit.jsonl') };
  delete env.SKJOLD_DATABASE;
  delete env.SKJOLD_PUBLIC_URL;
  server = spawn(process.env.SKJOLD_BIN, [
    'serve', '--listen', `127.0.0.1:${port}`,
    '--datastores', process.env.SKJOLD_E2E_DATASTORES,
    '--app-dir', process.env.SKJOLD_E2E_APP_DIR,
  ], { env, stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) break;
    } catch { /* not up yet */ }
    assert.ok(i < 100, 'the idle-test server did not start in 20 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

test('the idle prompt keeps a session on request and signs out when ignored', async () => {
  const problems = [];
  const page = await openPage(browser, problems);
  const password = 'Stille Vann 42 ok';
  const secret = await enrolWithPassword(page, addUser('e2e-idle', 'Ida Idle', env), password);
  await signIn(page, baseUrl, 'e2e-idle', password, secret);

  const prompt = page.locator('.idle-prompt');
  // Four quiet seconds in, the last eight begin: the prompt counts down.
  await prompt.waitFor({ timeout: 10_000 });
  assert.match(await prompt.innerText(), /You will be signed out in \d s/);
  await page.locator('#stay-signed-in').click();
  await prompt.waitFor({ state: 'detached', timeout: 5_000 });
  assert.equal(new URL(page.url()).pathname, '/workbench');

  // Ignored, the prompt runs out and the user lands on the sign-in page, told why.
  await prompt.waitFor({ timeout: 10_000 });
  await page.waitForURL(/\/login\?ended=idle$/, { timeout: 20_000 });
  await page.locator('.notice-line', { hasText: 'signed out after a while without activity' }).waitFor({ timeout: 5_000 });
  // The server agrees: the session is gone.
  const session = await page.evaluate(() => fetch('/api/session').then((r) => r.json()));
  assert.equal(session.signed_in, false);
  assert.deepEqual(problems.filter((p) => !p.includes('status of 4')), []);
  await page.close();
});
