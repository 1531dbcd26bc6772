//! Black-box tests: the real application on port 0, spoken to over TCP like any client.

use std::time::Duration;

use server::datastore::generate::{GenerateOptions, generate};
use server::settings::Settings;
use tokio::sync::oneshot;

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _data: tempfile::TempDir,
}

async fn start() -> Running {
    start_with(|_| {}).await
}

async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Running {
    let data = tempfile::tempdir().unwrap();
    let options = GenerateOptions {
        persons: 2_500,
        seed: 5,
        out: data.path().join("stores"),
        force: false,
        threads: 2,
    };
    generate(&options, &|_, _| {}).unwrap();
    std::fs::create_dir_all(data.path().join("dist")).unwrap();
    std::fs::write(data.path().join("dist/index.html"), "<!DOCTYPE html><title>Skjold</title>")
        .unwrap();
    let settings = Settings {
        datastores: data.path().join("stores"),
        app_dir: data.path().join("dist"),
        audit_log: data.path().join("audit.jsonl"),
        identity: server::identity::IdentitySettings {
            database: data.path().join("app.sqlite3"),
            ..Default::default()
        },
        ..Settings::default()
    };
    let mut settings = settings;
    adjust(&mut settings);
    let state = server::AppState::load(&settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::run(listener, state, &settings, async move {
            let _ = stopped.await;
        })
        .await
    });
    Running { base, stop: Some(stop), task, _data: data }
}

async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> T {
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_visitor_searches_and_reads_a_variable_without_signing_in() {
    let server = start().await;
    let page: serde_json::Value =
        get_json(format!("{}/api/catalog/variables?q=wage", server.base)).await;
    let names: Vec<&str> =
        page["hits"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"INNTEKT_WLONN"), "{names:?}");

    let detail: shared::api::VariableDetail =
        get_json(format!("{}/api/catalog/variables/INNTEKT_WLONN", server.base)).await;
    assert_eq!(detail.metadata.label.en, "Wage income");
    assert_eq!(detail.metadata.coverage.unwrap().start.to_string(), "2000-01-01");

    let app = reqwest::get(format!("{}/variables/INNTEKT_WLONN", server.base)).await.unwrap();
    assert_eq!(app.status(), 200);
    assert_eq!(app.headers()["x-content-type-options"], "nosniff");
    assert!(app.text().await.unwrap().contains("<title>Skjold</title>"));
}

#[tokio::test]
async fn shutdown_lets_the_server_finish_and_return_cleanly() {
    let mut server = start().await;
    let health = reqwest::get(format!("{}/api/health", server.base)).await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), &mut server.task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(reqwest::get(format!("{}/api/health", server.base)).await.is_err());
}

#[tokio::test]
async fn runs_beyond_the_rate_limit_get_429_per_address_even_without_the_cookie() {
    let server = start_with(|s| s.rate_limits.runs_per_minute = 2).await;
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(format!("{}/api/run", server.base))
            .header("content-type", "application/json")
            .body(r#"{"script": "help"}"#)
            .send()
    };
    // No cookie is sent back: each request is a new guest, but the same address.
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(post().await.unwrap().status(), 200);
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = refused.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("2 runs a minute") && message.contains("rule 11"), "{message}");
}

#[tokio::test]
async fn a_long_run_streams_progress_lines_before_its_outputs() {
    let server = start().await;
    let script = "require demo:1 as db\ncreate-dataset persons\nimport db/BEFOLKNING_KJOENN as sex\ntabulate sex\n";
    let response = reqwest::Client::new()
        .post(format!("{}/api/run", server.base))
        .header("content-type", "application/json")
        .header("accept", "application/x-ndjson")
        .body(serde_json::json!({ "script": script }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> =
        body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "{body}");
    for (i, line) in lines[..4].iter().enumerate() {
        assert_eq!(line["progress"]["step"], i + 1);
        assert_eq!(line["progress"]["of"], 4);
        assert_eq!(line["progress"]["line"], i + 1);
    }
    assert_eq!(lines[3]["progress"]["command"], "tabulate");
    let outputs = lines[4]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4);
    assert_eq!(outputs[3]["kind"], "table");
}

/// Guards a panic found by the workbench's progress bar: behind the compression layer (a
/// browser asks for gzip) the stream was polled once after its end, the unfold panicked and
/// the answer broke off before its last bytes.
#[tokio::test]
async fn a_streamed_run_compressed_for_a_browser_arrives_whole() {
    let server = start().await;
    let script = "require demo:1 as db\ncreate-dataset persons\nimport db/BEFOLKNING_KJOENN as sex\ntabulate sex\n";
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(format!("{}/api/run", server.base))
            .header("content-type", "application/json")
            .header("accept", "application/x-ndjson")
            .header("accept-encoding", "gzip")
            .body(serde_json::json!({ "script": script }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let body = response.bytes().await.expect("the whole compressed answer arrives");
        // A gzip member ends with its CRC and length: 8 bytes after the deflate data.
        assert!(body.len() > 18 && body[..2] == [0x1f, 0x8b], "{} bytes", body.len());
    }
}

/// Guards the crash of the security review: the parser recursed without bound, and one guest
/// request of nested parentheses overflowed the stack and aborted the whole process (which
/// here is this test's process, so a regression fails the test by crashing it).
#[tokio::test]
async fn deep_nesting_and_long_chains_get_an_error_and_the_server_keeps_serving() {
    let server = start().await;
    let client = reqwest::Client::new();
    let prefix = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n";
    // Just under the request limit of 256 KiB, counting the JSON around the script.
    let room = 256 * 1024 - 200 - prefix.len();
    let nested =
        format!("{prefix}tabulate sex if {}1{}\n", "(".repeat(100_000), ")".repeat(100_000));
    let chain = format!("{prefix}generate x = 1{}\n", "+1".repeat(room / 2 - 20));
    let loops = format!("{prefix}{}", "for i in 1\n".repeat(room / 12));
    let unary = format!("{prefix}generate x = {}1\n", "-".repeat(room - 20));
    let call = format!("{prefix}generate x = rowtotal(1{})\n", ",1".repeat(room / 2 - 30));
    for (what, script, expected) in [
        ("100 000 nested parentheses", &nested, "nested more than 100 levels deep"),
        ("a 256 KiB chain of +1", &chain, "nested more than 100 levels deep"),
        ("for loops nested 21 000 deep", &loops, "for loops nest more than 10 deep"),
        ("a 256 KiB run of unary minus", &unary, "nested more than 100 levels deep"),
        ("a call with 130 000 arguments", &call, "has more than 5000 parts"),
    ] {
        let body = serde_json::json!({ "script": script }).to_string();
        assert!(body.len() <= 256 * 1024, "{what}: {} bytes", body.len());
        let response = client
            .post(format!("{}/api/run", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(response.status(), 200, "{what}");
        let answer: serde_json::Value = response.json().await.unwrap();
        let outputs = answer["outputs"].as_array().unwrap();
        assert!(
            outputs.iter().all(|o| o["kind"] == "error"),
            "{what}: nothing runs in a script with a mistake: {}",
            answer.to_string().chars().take(300).collect::<String>()
        );
        let messages: Vec<&str> = outputs.iter().filter_map(|o| o["message"].as_str()).collect();
        assert!(messages.iter().any(|m| m.contains(expected)), "{what}: {messages:?}");
        let health = client.get(format!("{}/api/health", server.base)).send().await.unwrap();
        assert_eq!(health.status(), 200, "{what}: the server stopped answering");
    }
}

/// Guards the review's finding that the database (with TOTP secrets) and the audit log were
/// created readable by every account on the machine.
#[cfg(unix)]
#[tokio::test]
async fn the_application_database_and_the_audit_log_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let server = start().await;
    for file in ["audit.jsonl", "app.sqlite3", "app.sqlite3.totp-key"] {
        let path = server._data.path().join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
}

/// Guards the headers the review found missing, and the plain-text refusals of axum.
#[tokio::test]
async fn answers_carry_security_headers_and_every_refusal_is_json() {
    let server = start().await;
    let client = reqwest::Client::new();
    let session = client.get(format!("{}/api/session", server.base)).send().await.unwrap();
    assert_eq!(session.headers()["cache-control"], "no-store");
    assert_eq!(session.headers()["referrer-policy"], "no-referrer");
    assert!(session.headers().get("strict-transport-security").is_none(), "not behind TLS");
    let page = client.get(format!("{}/", server.base)).send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for part in ["default-src 'self'", "'wasm-unsafe-eval'", "frame-ancestors 'none'"] {
        assert!(policy.contains(part), "{policy}");
    }
    assert!(
        !policy.contains("'unsafe-eval'") && !policy.contains("script-src 'self' 'unsafe-inline'")
    );

    let login = format!("{}/api/auth/login", server.base);
    let huge = serde_json::json!({ "user": "a".repeat(100_000), "password": "x" }).to_string();
    for (what, body, status, expected) in [
        ("a 100 KB name", huge, 413, "too large"),
        (
            "a body of the wrong shape",
            r#"{"name": "kari"}"#.to_owned(),
            422,
            "missing field `user`",
        ),
        (
            "a 65-character name",
            serde_json::json!({ "user": "a".repeat(65), "password": "x" }).to_string(),
            422,
            "at most 64",
        ),
    ] {
        let response = client
            .post(&login)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{what}");
        let answer: serde_json::Value =
            response.json().await.unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
    }
}

/// Guards the review's DNS-rebinding finding: a page on another domain that resolves to this
/// server sends its own domain as Origin and Host, which used to pass as same-origin.
#[tokio::test]
async fn writes_from_a_rebound_domain_are_refused_and_from_public_url_accepted() {
    let server = start().await;
    let client = reqwest::Client::new();
    let post = |origin: &'static str, host: Option<&'static str>| {
        let mut request = client
            .post(format!("{}/api/auth/login", server.base))
            .header("content-type", "application/json")
            .header("origin", origin)
            .body(r#"{"user": "kari", "password": "wrong"}"#);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        request.send()
    };
    let rebound =
        post("http://attacker.example:8080", Some("attacker.example:8080")).await.unwrap();
    assert_eq!(rebound.status(), 403);
    let public = post("http://localhost:8080", None).await.unwrap();
    assert_eq!(public.status(), 401, "public_url's origin reaches the handler (a wrong password)");
    let own_address = server.base.clone();
    let address = client
        .post(format!("{own_address}/api/auth/login"))
        .header("content-type", "application/json")
        .header("origin", own_address.as_str())
        .body(r#"{"user": "kari", "password": "wrong"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(address.status(), 401, "an address literal as Host cannot be rebound");
}
