// Accounts for the browser tests: made with the `skjold user add` CLI in the server's own
// application database, and TOTP codes computed here from the enrolment secret (RFC 6238).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';

/// `skjold user add`; answers the enrolment link. `env` names the server's database and URL.
export function addUser(name, displayName, env = process.env, role = 'member') {
  const out = execFileSync(process.env.SKJOLD_BIN, ['user', 'add', name, '--display-name', displayName, '--role', role], {
    env,
    encoding: 'utf8',
  });
  const link = out.trim().split('\n').pop();
  assert.match(link, /\/enrol#[0-9a-f]{64}$/, out);
  return link;
}

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/// RFC 6238 with SHA-1, 6 digits and 30-second steps, `offset` steps from now.
export function totp(secret, offset = 0) {
  const step = BigInt(Math.floor(Date.now() / 1000 / 30) + offset);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(step);
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, '0');
}

/// Enrols from `link` with a password; answers the TOTP secret the page showed.
export async function enrolWithPassword(page, link, password) {
  await page.goto(link);
  await page.locator('#choose-password').click();
  await page.locator('#new-password').fill(password);
  await page.locator('#repeat-password').fill(password);
  await page.locator('#save-password').click();
  const secret = (await page.locator('#totp-secret').innerText({ timeout: 10_000 })).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await page.locator('#code').fill(totp(secret));
  await page.locator('#confirm-code').click();
  await page.locator('#enrolled', { hasText: 'password' }).waitFor({ timeout: 10_000 });
  return secret;
}

/// Signs in with password and the next step's code (the enrolment used this step's), and
/// accepts the terms.
export async function signIn(page, baseUrl, user, password, secret) {
  await page.goto(baseUrl + '/login');
  await page.locator('#user').fill(user);
  await page.locator('#password').fill(password);
  await page.locator('#sign-in').click();
  await page.locator('#code').fill(totp(secret, 1));
  await page.locator('#send-code').click();
  await page.waitForURL(/\/terms$/, { timeout: 15_000 });
  await page.locator('#accept-terms').click();
  await page.waitForURL(/\/workbench$/, { timeout: 15_000 });
}
