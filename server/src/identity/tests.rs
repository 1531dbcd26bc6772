//! The identity service on a real SQLite database (in memory) with a controlled clock.

use std::sync::Arc;

use super::*;
use crate::disclosure::audit::MemoryAudit;

const START: i64 = 1_800_000_000;
const GOOD: &str = "Tre små Katter 9";

struct Fixture {
    identity: Identity,
    clock: Arc<ManualClock>,
    audit: Arc<MemoryAudit>,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::at(START));
    let audit = Arc::new(MemoryAudit::default());
    let identity = Identity::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        clock.clone(),
        IdentitySettings::default(),
        audit.clone(),
    )
    .unwrap();
    Fixture { identity, clock, audit }
}

fn token_of(link: &str) -> &str {
    link.split_once('#').expect("the token is in the fragment").1
}

impl Fixture {
    /// A user enrolled with password + TOTP; returns the TOTP secret.
    fn enrolled(&self, name: &str) -> String {
        let (_, link) =
            self.identity.add_user(name, "Kari Nordmann", None, Role::Member, "steward").unwrap();
        let enrolment = self.identity.enrol_password(token_of(&link), GOOD).unwrap();
        let code = totp::code_at(&enrolment.secret, self.clock.now()).unwrap();
        self.identity.confirm_password_enrolment(token_of(&link), &code).unwrap();
        // The next sign-in needs a code of a later step than the enrolment's.
        self.clock.advance(30);
        enrolment.secret
    }

    fn sign_in(&self, name: &str, secret: &str) -> NewSession {
        let pending = self.identity.login_password(name, GOOD, "192.0.2.1").unwrap();
        let code = totp::code_at(secret, self.clock.now()).unwrap();
        self.identity.login_totp(&pending.session, &code, "192.0.2.1").unwrap()
    }
}

#[test]
fn enrolment_then_password_and_totp_gives_an_active_session_with_a_new_id() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let pending = f.identity.login_password("kari", GOOD, "192.0.2.1").unwrap();
    assert_eq!(pending.session.stage, Stage::SecondFactor);
    let code = totp::code_at(&secret, f.clock.now()).unwrap();
    let active = f.identity.login_totp(&pending.session, &code, "192.0.2.1").unwrap();
    assert_eq!(active.session.stage, Stage::Active);
    assert_ne!(active.cookie, pending.cookie, "the session id is rotated at sign-in");
    assert!(matches!(f.identity.session(&pending.cookie), Err(AuthError::NoSession)));
    let signed_in = f.identity.session(&active.cookie).unwrap();
    assert_eq!(signed_in.user.name, "kari");
    assert!(signed_in.needs_terms, "terms are accepted at first sign-in");
    // The cookie value is not what the database keeps.
    assert_eq!(active.session.id_hash, sha256_hex(&active.cookie));
    assert_eq!(
        f.audit.event_names(),
        ["user-added", "enrolment-issued", "enrolled", "password-accepted", "signed-in"]
    );
}

#[test]
fn an_enrolment_link_works_once_and_expires() {
    let f = fixture();
    let (_, link) = f.identity.add_user("ola", "Ola", None, Role::Member, "steward").unwrap();
    let e = f.identity.enrol_password(token_of(&link), GOOD).unwrap();
    let code = totp::code_at(&e.secret, f.clock.now()).unwrap();
    f.identity.confirm_password_enrolment(token_of(&link), &code).unwrap();
    assert!(matches!(f.identity.enrolment(token_of(&link)), Err(AuthError::BadEnrolment)));
    let (_, link) = f.identity.add_user("per", "Per", None, Role::Member, "steward").unwrap();
    f.clock.advance(72 * 3600);
    assert!(matches!(f.identity.enrolment(token_of(&link)), Err(AuthError::BadEnrolment)));
}

/// Guards the review's account-takeover finding: a link's first step saved the new password
/// and TOTP secret at once, several links were live, and sessions outlived a new credential.
#[test]
fn a_new_password_waits_for_its_code_one_link_lives_and_a_credential_change_ends_sessions() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let session = f.sign_in("kari", &secret);
    let user = f.identity.user_named("kari").unwrap();
    let first = f.identity.enrolment_link(&user).unwrap();
    let second = f.identity.enrolment_link(&user).unwrap();
    assert!(
        matches!(f.identity.enrolment(token_of(&first)), Err(AuthError::BadEnrolment)),
        "a new link ends the one before"
    );
    // Someone with the link chooses a password but never confirms: nothing changes.
    let other = "Fire store Hunder 7";
    let pending = f.identity.enrol_password(token_of(&second), other).unwrap();
    f.identity.session(&session.cookie).expect("the session lives on");
    assert!(matches!(
        f.identity.login_password("kari", other, "192.0.2.1"),
        Err(AuthError::BadCredentials)
    ));
    f.clock.advance(30);
    let again = f.sign_in("kari", &secret);
    // The code confirms it: the new credentials apply and every session ends.
    f.clock.advance(30);
    let code = totp::code_at(&pending.secret, f.clock.now()).unwrap();
    f.identity.confirm_password_enrolment(token_of(&second), &code).unwrap();
    for cookie in [&session.cookie, &again.cookie] {
        assert!(matches!(f.identity.session(cookie), Err(AuthError::NoSession)));
    }
    f.identity.login_password("kari", other, "192.0.2.1").expect("the new password works");
    assert!(matches!(
        f.identity.confirm_password_enrolment(token_of(&second), &code),
        Err(AuthError::BadEnrolment)
    ));
    let events = f.audit.events.lock().unwrap();
    let enrolled = events.iter().rev().find(|e| e.event == "enrolled").unwrap();
    assert!(enrolled.detail.contains("2 sessions ended"), "{}", enrolled.detail);
}

#[test]
fn a_weak_password_is_refused_at_enrolment_with_the_reason() {
    let f = fixture();
    let (_, link) = f.identity.add_user("ola", "Ola", None, Role::Member, "steward").unwrap();
    let e = f.identity.enrol_password(token_of(&link), "Password123!").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the password is built on 'password', one of the most common passwords; choose another"
    );
}

#[test]
fn a_totp_code_is_accepted_once() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let code = totp::code_at(&secret, f.clock.now()).unwrap();
    let p1 = f.identity.login_password("kari", GOOD, "192.0.2.1").unwrap();
    f.identity.login_totp(&p1.session, &code, "192.0.2.1").unwrap();
    let p2 = f.identity.login_password("kari", GOOD, "192.0.2.1").unwrap();
    assert!(matches!(
        f.identity.login_totp(&p2.session, &code, "192.0.2.1"),
        Err(AuthError::BadCode)
    ));
}

#[test]
fn one_totp_code_sent_by_eight_requests_at_once_signs_in_once() {
    // Each request holds its own pending session and reads the user before any of them
    // writes: only the conditional update tells them apart.
    let f = fixture();
    let secret = f.enrolled("kari");
    let code = totp::code_at(&secret, f.clock.now()).unwrap();
    let pending: Vec<_> =
        (0..8).map(|_| f.identity.login_password("kari", GOOD, "192.0.2.1").unwrap()).collect();
    let start = std::sync::Barrier::new(pending.len());
    let signed_in = std::thread::scope(|s| {
        let handles: Vec<_> = pending
            .iter()
            .map(|p| {
                s.spawn(|| {
                    start.wait();
                    f.identity.login_totp(&p.session, &code, "192.0.2.1").is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count()
    });
    assert_eq!(signed_in, 1);
    // The race itself, without threads: a request that read the user before another used
    // the code finds the step taken when it tries to claim it.
    let store = &f.identity.store;
    let kari = store.user_by_name("kari").unwrap().unwrap();
    let used = kari.totp_last_step.expect("the sign-in above used a step");
    assert!(!store.claim_totp_step(kari.id, used).unwrap(), "the same step again");
    assert!(!store.claim_totp_step(kari.id, used - 1).unwrap(), "an earlier step");
    assert!(store.claim_totp_step(kari.id, used + 1).unwrap(), "the next step");
    assert!(!store.claim_totp_step(kari.id, used + 1).unwrap(), "the next step, twice");
}

#[test]
fn unknown_users_and_wrong_passwords_get_the_same_answer_and_both_lock() {
    let f = fixture();
    f.enrolled("kari");
    let wrong = f.identity.login_password("kari", "Wrong password 1", "192.0.2.1").unwrap_err();
    let unknown = f.identity.login_password("nobody", "Wrong password 1", "192.0.2.1").unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    for _ in 0..4 {
        f.identity.login_password("kari", "Wrong password 1", "192.0.2.2").unwrap_err();
        f.identity.login_password("nobody", "Wrong password 1", "192.0.2.2").unwrap_err();
    }
    // Locked: even the right password is refused, and the unknown name is locked the same way.
    let e = f.identity.login_password("kari", GOOD, "192.0.2.3").unwrap_err();
    assert!(matches!(e, AuthError::Locked { retry_after: 30 }), "{e}");
    let e = f.identity.login_password("nobody", GOOD, "192.0.2.3").unwrap_err();
    assert!(matches!(e, AuthError::Locked { retry_after: 30 }), "{e}");
    f.clock.advance(30);
    f.identity.login_password("kari", GOOD, "192.0.2.3").expect("the lock ran out");
    assert!(f.audit.event_names().iter().filter(|e| *e == "lockout").count() == 2);
}

#[test]
fn idle_sessions_end_after_five_minutes_and_activity_keeps_them() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let s = f.sign_in("kari", &secret);
    f.clock.advance(299);
    let mut signed_in = f.identity.session(&s.cookie).unwrap();
    assert_eq!(signed_in.idle_left, 1);
    f.identity.touch(&mut signed_in).unwrap();
    f.clock.advance(299);
    assert_eq!(f.identity.session(&s.cookie).unwrap().idle_left, 1);
    f.clock.advance(1);
    assert!(matches!(f.identity.session(&s.cookie), Err(AuthError::NoSession)));
    assert_eq!(f.audit.event_names().last().map(String::as_str), Some("signed-out"));
}

#[test]
fn a_session_ends_after_its_absolute_lifetime_however_active() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let s = f.sign_in("kari", &secret);
    for _ in 0..(12 * 3600 / 240) - 1 {
        f.clock.advance(240);
        let mut signed_in = f.identity.session(&s.cookie).unwrap();
        f.identity.touch(&mut signed_in).unwrap();
    }
    f.clock.advance(240);
    assert!(matches!(f.identity.session(&s.cookie), Err(AuthError::NoSession)));
}

#[test]
fn terms_are_accepted_again_when_their_version_changes() {
    let mut f = fixture();
    let secret = f.enrolled("kari");
    let s = f.sign_in("kari", &secret);
    let signed_in = f.identity.session(&s.cookie).unwrap();
    assert!(signed_in.needs_terms);
    assert!(f.identity.accept_terms(&signed_in, 2).is_err(), "only the version in force");
    f.identity.accept_terms(&signed_in, 1).unwrap();
    assert!(!f.identity.session(&s.cookie).unwrap().needs_terms);
    f.identity.settings.terms_version = 2;
    let signed_in = f.identity.session(&s.cookie).unwrap();
    assert!(signed_in.needs_terms, "a new version asks again");
    f.clock.advance(5);
    f.identity.accept_terms(&signed_in, 2).unwrap();
    assert_eq!(
        f.identity.store.terms_history(signed_in.user.id).unwrap(),
        [(1, START + 30), (2, START + 35)]
    );
}

#[test]
fn a_temporary_password_must_be_changed_at_first_sign_in() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let temporary = f.identity.set_temporary_password("kari", "steward").unwrap();
    password::check_policy(&temporary, "kari").expect("temporary passwords meet the policy");
    let pending = f.identity.login_password("kari", &temporary, "192.0.2.1").unwrap();
    let code = totp::code_at(&secret, f.clock.now()).unwrap();
    let s = f.identity.login_totp(&pending.session, &code, "192.0.2.1").unwrap();
    assert_eq!(s.session.stage, Stage::ChangePassword);
    let signed_in = f.identity.session(&s.cookie).unwrap();
    let e =
        f.identity.change_password(&signed_in, &temporary, &temporary, "192.0.2.1").unwrap_err();
    assert!(e.to_string().contains("must differ"), "{e}");
    let s2 = f.identity.change_password(&signed_in, &temporary, GOOD, "192.0.2.1").unwrap();
    assert_eq!(s2.session.stage, Stage::Active);
    assert!(f.identity.session(&s.cookie).is_err(), "other sessions end");
}

#[test]
fn an_old_password_must_be_changed() {
    let f = fixture();
    let secret = f.enrolled("kari");
    f.clock.advance(366 * 86_400);
    let s = f.sign_in("kari", &secret);
    assert_eq!(s.session.stage, Stage::ChangePassword);
}

#[test]
fn deletion_requests_are_carried_out_after_the_grace_period() {
    let f = fixture();
    let secret = f.enrolled("kari");
    let s = f.sign_in("kari", &secret);
    let signed_in = f.identity.session(&s.cookie).unwrap();
    f.identity.request_deletion(&signed_in).unwrap();
    f.clock.advance(29 * 86_400);
    assert_eq!(f.identity.purge_due_deletions().unwrap(), 0);
    f.clock.advance(86_400);
    assert_eq!(f.identity.purge_due_deletions().unwrap(), 1);
    assert!(f.identity.store.user_by_name("kari").unwrap().is_none());
    assert!(f.audit.event_names().contains(&"user-deleted".to_owned()));
}

#[test]
fn course_members_get_the_course_grants_and_others_none() {
    let f = fixture();
    let secret = f.enrolled("kari");
    f.enrolled("teacher");
    f.identity.set_role("teacher", Role::Teacher, "steward").unwrap();
    let course = f
        .identity
        .create_project("Statistikk 101", ProjectKind::Course, Some("teacher"), "steward")
        .unwrap();
    f.identity.grant("Statistikk 101", "demo", None, "steward").unwrap();
    let code = course.join_code.clone().unwrap();
    assert_eq!(code.len(), 8);
    let s = f.sign_in("kari", &secret);
    let signed_in = f.identity.session(&s.cookie).unwrap();
    let e = f.identity.grants_for(&signed_in.user, "Statistikk 101").unwrap_err();
    assert_eq!(e.to_string(), "you are not a member of project 'Statistikk 101'");
    f.identity.join_course(&signed_in, &code.to_lowercase()).unwrap();
    let grants = f.identity.grants_for(&signed_in.user, "Statistikk 101").unwrap();
    assert!(grants.allows_datastore("demo") && grants.allows_variable("demo", "INNTEKT_WLONN"));
    assert!(!grants.allows_datastore("ssb"));

    let project = f.identity.create_project("Lønn", ProjectKind::Project, None, "steward").unwrap();
    assert_eq!(project.join_code, None);
    f.identity.grant("Lønn", "demo", Some("INNTEKT_WLONN"), "steward").unwrap();
    f.identity.add_member("Lønn", "kari", "steward").unwrap();
    let grants = f.identity.grants_for(&signed_in.user, "Lønn").unwrap();
    assert!(grants.allows_variable("demo", "INNTEKT_WLONN"));
    assert!(!grants.allows_variable("demo", "BEFOLKNING_KJOENN"));
}

/// A one-message SMTP server on loopback: answers each command and returns the transcript.
fn smtp_server() -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let mut transcript = String::new();
        out.write_all(b"220 test ESMTP\r\n").unwrap();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            transcript.push_str(&line);
            let reply: &[u8] = if in_data {
                if line != ".\r\n" {
                    continue;
                }
                in_data = false;
                b"250 queued\r\n"
            } else {
                match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        out.write_all(b"221 bye\r\n").unwrap();
                        break;
                    }
                    _ => b"250 ok\r\n",
                }
            };
            out.write_all(reply).unwrap();
        }
        transcript
    });
    (port, handle)
}

#[test]
fn enrolment_links_are_mailed_when_an_smtp_server_is_set() {
    let (port, server) = smtp_server();
    let settings = IdentitySettings {
        mail: mail::MailSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: Some(port),
            security: Some("none".into()),
            from: "Skjold <noreply@skjold.test>".into(),
            ..Default::default()
        },
        ..IdentitySettings::default()
    };
    let audit = Arc::new(MemoryAudit::default());
    let identity = Identity::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(ManualClock::at(START)),
        settings,
        audit.clone(),
    )
    .unwrap();
    let (user, link) = identity
        .add_user("kari", "Kari Nordmann", Some("kari@example.org"), Role::Member, "steward")
        .unwrap();
    assert_eq!(identity.mail_enrolment(&user, &link).as_deref(), Some("sent to kari@example.org"));
    let transcript = server.join().unwrap();
    assert!(transcript.contains("RCPT TO:<kari@example.org>"), "{transcript}");
    assert!(transcript.contains("Subject: Your Skjold account"), "{transcript}");
    // The body may be quoted-printable, with soft line breaks inside long lines.
    let body = transcript.replace("=\r\n", "").replace("=3D", "=");
    assert!(body.contains(&link), "the link is in the mail: {transcript}");
    assert!(audit.event_names().contains(&"enrolment-mailed".to_owned()));

    // No address, no mail; and without an SMTP server nothing is tried.
    let (nobody, link) = identity.add_user("per", "Per", None, Role::Member, "steward").unwrap();
    assert_eq!(identity.mail_enrolment(&nobody, &link), None);
    let f = fixture();
    let (with_address, link) =
        f.identity.add_user("ola", "Ola", Some("ola@example.org"), Role::Member, "s").unwrap();
    assert_eq!(f.identity.mail_enrolment(&with_address, &link), None);
}

#[test]
fn a_wrong_mail_setting_is_named_and_the_password_never_shows() {
    let settings = mail::MailSettings {
        smtp_host: "smtp.example.org".into(),
        security: Some("ssl".into()),
        password: Some("hunter2-secret".into()),
        from: "Skjold <noreply@skjold.test>".into(),
        ..Default::default()
    };
    let error = mail::Mailer::new(&settings, "Skjold").unwrap_err().to_string();
    assert!(error.contains("identity.mail.security 'ssl'"), "{error}");
    assert!(!format!("{settings:?}").contains("hunter2"));
    let bad_from = mail::MailSettings { from: "nobody".into(), ..settings };
    let error = mail::Mailer::new(&bad_from, "Skjold").unwrap_err().to_string();
    assert!(error.contains("identity.mail.from 'nobody'"), "{error}");
}

#[test]
fn an_unknown_name_pays_for_one_argon2_verification_like_a_wrong_password() {
    let f = fixture();
    f.enrolled("kari");
    let mut cost = Vec::new();
    for name in ["kari", "nobody"] {
        let before = password::verifications();
        let answer = f.identity.login_password(name, "Wrong guess 123", "192.0.2.1");
        assert!(matches!(answer, Err(AuthError::BadCredentials)), "{name}");
        cost.push(password::verifications() - before);
    }
    assert_eq!(cost, [1, 1]);
    // And the decoy costs what a real hash costs: the same algorithm and parameters.
    let real = f.identity.store.user_by_name("kari").unwrap().unwrap().password_hash.unwrap();
    let parameters = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_owned();
    assert_eq!(parameters(password::decoy_hash()), parameters(&real));
    assert!(real.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{real}");
}

/// Guards the review's finding that TOTP secrets lay in the database in clear.
#[test]
fn totp_secrets_are_sealed_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        IdentitySettings { database: dir.path().join("app.sqlite3"), ..Default::default() };
    let clock = Arc::new(ManualClock::at(START));
    let identity = Identity::new(
        Arc::new(settings.open_store().unwrap()),
        clock.clone(),
        settings.clone(),
        Arc::new(MemoryAudit::default()),
    )
    .unwrap();
    let (_, link) = identity.add_user("kari", "Kari", None, Role::Member, "steward").unwrap();
    let enrolment = identity.enrol_password(token_of(&link), GOOD).unwrap();
    let code = totp::code_at(&enrolment.secret, clock.now()).unwrap();
    identity.confirm_password_enrolment(token_of(&link), &code).unwrap();
    let raw = rusqlite::Connection::open(&settings.database).unwrap();
    let stored: String =
        raw.query_row("SELECT totp_secret FROM users WHERE name='kari'", [], |r| r.get(0)).unwrap();
    assert!(stored.starts_with("sealed:v1:"), "{stored}");
    assert!(!stored.contains(&enrolment.secret));
    let pending: String =
        raw.query_row("SELECT pending_totp_secret FROM enrolments", [], |r| r.get(0)).unwrap();
    assert!(pending.starts_with("sealed:v1:"), "{pending}");
    // The account still signs in: the secret opens with the key file beside the database.
    clock.advance(30);
    let pending = identity.login_password("kari", GOOD, "192.0.2.1").unwrap();
    let code = totp::code_at(&enrolment.secret, clock.now()).unwrap();
    identity.login_totp(&pending.session, &code, "192.0.2.1").unwrap();
    assert!(dir.path().join("app.sqlite3.totp-key").exists());
}
