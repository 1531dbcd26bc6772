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
