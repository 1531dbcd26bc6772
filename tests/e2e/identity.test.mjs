// Signing in for real: an account made with the CLI, enrolled from its link, signed in with a
// password and a TOTP code the test computes (RFC 6238), and with a passkey through Chromium's
// virtual authenticator (the DevTools WebAuthn domain). Each then meets the terms of use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { addUser, totp } from './accounts.mjs';
import { launch, openPage, BASE_URL } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const PASSWORD = 'Blå Fjord ' + randomBytes(3).toString('hex') + ' 7';

async function acceptTermsAndSeeName(page, displayName) {
  await page.waitForURL(/\/terms$/, { timeout: 15_000 });
  // Until the terms are accepted, nothing else is reachable: the workbench sends us back.
  await page.goto(BASE_URL + '/workbench');
  await page.waitForURL(/\/terms$/, { timeout: 15_000 });
  await page.locator('#accept-terms').click();
  await page.waitForURL(/\/workbench$/, { timeout: 15_000 });
  await page.locator('.account-menu', { hasText: displayName }).waitFor({ timeout: 10_000 });
}

test('password and TOTP: enrol from the link, sign in with a computed code, accept the terms', async () => {
  const problems = [];
  const link = addUser('e2e-totp', 'Tove Test');
  const page = await openPage(browser, problems);
  await page.goto(link);
  await page.locator('#choose-password').click();
  // The policy is the server's: a short password is refused with the reason.
  await page.locator('#new-password').fill('short1A!');
  await page.locator('#repeat-password').fill('short1A!');
  await page.locator('#save-password').click();
  await page.locator('.error', { hasText: '12' }).waitFor({ timeout: 10_000 });
  await page.locator('#new-password').fill(PASSWORD);
  await page.locator('#repeat-password').fill(PASSWORD);
  await page.locator('#save-password').click();
  const secret = (await page.locator('#totp-secret').innerText({ timeout: 10_000 })).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  assert.ok(await page.locator('.qr svg').count() === 1, 'the QR code is shown');
  await page.locator('#code').fill(totp(secret));
  await page.locator('#confirm-code').click();
  await page.locator('#enrolled', { hasText: 'password' }).waitFor({ timeout: 10_000 });

  await page.goto(BASE_URL + '/login');
  await page.locator('#user').fill('e2e-totp');
  await page.locator('#password').fill(PASSWORD + 'x');
  await page.locator('#sign-in').click();
  await page.locator('.error', { hasText: 'user name or password is wrong' }).waitFor({ timeout: 10_000 });
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#sign-in').click();
  // The enrolment used this step's code, and a code is good once: the next step's is still
  // within the allowed skew.
  await page.locator('#code').fill(totp(secret, 1));
  await page.locator('#send-code').click();
  await acceptTermsAndSeeName(page, 'Tove Test');

  // The personal area keeps a script, within its 250 MB.
  await page.getByLabel('Script').fill('require demo:1 as db\ncreate-dataset p\n');
  await page.locator('#file-name').fill('first.mds');
  await page.locator('#save-script').click();
  await page.locator('#files-message', { hasText: 'Saved first.mds' }).waitFor({ timeout: 10_000 });
  await page.locator('.file-list .file-name', { hasText: 'first.mds' }).waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#area-usage').innerText(), /^\d+ B of 250\.0 MB used$/);

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'skjold_session');
  assert.ok(session?.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));

  await page.locator('#sign-out').click();
  await page.waitForURL(/\/login\?ended=signout$/, { timeout: 10_000 });
  await page.locator('a', { hasText: 'Sign in' }).first().waitFor({ timeout: 10_000 });
  assert.deepEqual(problems.filter((p) => !p.includes('401') && !p.includes('status of 4')), []);
  await page.close();
});

test('passkey: register from the link and sign in through the virtual authenticator', async () => {
  const problems = [];
  const link = addUser('e2e-passkey', 'Per Passkey');
  const page = await openPage(browser, problems);
  const devtools = await page.context().newCDPSession(page);
  await devtools.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await page.goto(link);
  await page.locator('#choose-passkey').click();
  await page.locator('#enrolled', { hasText: 'passkey' }).waitFor({ timeout: 15_000 });
  const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].rpId, 'localhost');

  await page.goto(BASE_URL + '/login');
  await page.locator('#user').fill('e2e-passkey');
  await page.locator('#sign-in-passkey').click();
  await acceptTermsAndSeeName(page, 'Per Passkey');
  const after = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(after.credentials[0].signCount > credentials[0].signCount, 'the sign-in used the passkey');

  // A second device: confirmed with the first (adding a passkey needs the credential proved
  // again), the first goes away, a new one registers from the account page and signs in on
  // its own.
  await page.goto(BASE_URL + '/account');
  await page.locator('#reauth').click();
  await page.locator('#account-message', { hasText: 'Confirmed' }).waitFor({ timeout: 15_000 });
  await devtools.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  const second = (await devtools.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })).authenticatorId;
  await page.locator('#add-passkey').click();
  await page.locator('#account-message', { hasText: 'Another passkey' }).waitFor({ timeout: 15_000 });
  await page.locator('#sign-out').click();
  await page.waitForURL(/\/login/, { timeout: 10_000 });
  await page.locator('#user').fill('e2e-passkey');
  await page.locator('#sign-in-passkey').click();
  await page.waitForURL(/\/workbench$/, { timeout: 15_000 });
  const onSecond = await devtools.send('WebAuthn.getCredentials', { authenticatorId: second });
  assert.equal(onSecond.credentials.length, 1);
  assert.ok(onSecond.credentials[0].signCount >= 1, 'the second passkey signed in');

  // A user who is not verified (no PIN, no fingerprint) is refused: verification is required.
  await page.locator('#sign-out').click();
  await page.waitForURL(/\/login/, { timeout: 10_000 });
  await devtools.send('WebAuthn.setUserVerified', { authenticatorId: second, isUserVerified: false });
  await page.locator('#user').fill('e2e-passkey');
  await page.locator('#sign-in-passkey').click();
  await page.locator('.error').waitFor({ timeout: 15_000 });
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(problems.filter((p) => !p.includes('401') && !p.includes('status of 4')), []);
  await page.close();
});
