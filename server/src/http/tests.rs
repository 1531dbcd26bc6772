//! The HTTP layer in-process (`router().oneshot`): status codes, error shapes, payloads.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::test_support::demo_state;

async fn get(uri: &str) -> (StatusCode, Value) {
    let app_dir = tempfile::tempdir().unwrap();
    std::fs::write(app_dir.path().join("index.html"), "<html>app</html>").unwrap();
    let response = super::router(demo_state(), app_dir.path())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

#[tokio::test]
async fn health_answers_ok_with_the_datastore_count() {
    let (status, body) = get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["datastores"], 1);
}

#[tokio::test]
async fn datastores_lists_demo_with_its_versions() {
    let (status, body) = get("/api/catalog/datastores").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "demo");
    assert_eq!(body[0]["versions"], serde_json::json!([1]));
    assert_eq!(body[0]["variable_count"], 63);
    assert!(body[0]["description"]["en"].as_str().unwrap().contains("3000 persons"));
}

#[tokio::test]
async fn search_returns_a_page_of_hits() {
    let (status, body) = get("/api/catalog/variables?q=inntkt&page_size=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["query"], "inntkt");
    assert_eq!(body["page_size"], 5);
    assert_eq!(body["hits"].as_array().unwrap().len(), 5);
    assert!(body["total"].as_u64().unwrap() >= 10);
    assert!(body["subjects"].as_array().unwrap().iter().any(|s| s == "Inntekt og formue"));
}

#[tokio::test]
async fn malformed_parameters_are_refused_naming_the_parameter() {
    for (uri, expected) in [
        (
            "/api/catalog/variables?page=0",
            "parameter 'page': '0' is not a whole number from 1 to 1000",
        ),
        (
            "/api/catalog/variables?page_size=500",
            "parameter 'page_size': '500' is not a whole number from 1 to 100",
        ),
        (
            "/api/catalog/variables?unit_type=PERSONS",
            "parameter 'unit_type': unknown unit type 'PERSONS'; use one of PERSON",
        ),
        (
            "/api/catalog/variables?temporality=DAILY",
            "parameter 'temporality': unknown temporality 'DAILY'",
        ),
        ("/api/catalog/variables?sort=name", "'sort' is not a parameter of this endpoint"),
    ] {
        let (status, body) = get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{uri}: {body}");
    }
    let long = format!("/api/catalog/variables?q={}", "a".repeat(201));
    let (status, body) = get(&long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("parameter 'q': at most 200 characters"));
}

#[tokio::test]
async fn a_variable_comes_with_its_code_list_coverage_and_import_lines() {
    let (status, body) = get("/api/catalog/variables/SIVSTANDFDT_SIVSTAND").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["datastore"], "demo");
    assert_eq!(body["metadata"]["temporality"], "STATUS");
    assert_eq!(body["metadata"]["value_domain"]["codes"][1]["label"]["en"], "Married");
    assert_eq!(body["metadata"]["coverage"]["latest"], "2024-01-01");
    assert_eq!(
        body["import_lines"],
        "require demo:1 as db\nimport db/SIVSTANDFDT_SIVSTAND 2024-01-01"
    );

    let (_, event) =
        get("/api/catalog/variables/ARBSOEK_ARBSOKERSTATUS?datastore=demo&version=1").await;
    assert!(
        event["import_lines"]
            .as_str()
            .unwrap()
            .contains("import-event db/ARBSOEK_ARBSOKERSTATUS 2000-")
    );
}

#[tokio::test]
async fn an_unknown_variable_is_404_with_did_you_mean() {
    let (status, body) = get("/api/catalog/variables/INNTEKT_WLON").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown variable 'INNTEKT_WLON'");
    assert_eq!(body["did_you_mean"][0], "INNTEKT_WLONN");
    let (status, body) = get("/api/catalog/variables/INNTEKT_WLONN?datastore=demo&version=7").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "datastore 'demo' has no version 7");
}

#[tokio::test]
async fn unknown_api_paths_are_json_404_and_other_paths_get_the_app() {
    let (status, body) = get("/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no API endpoint at /api/nothing"));
    let (status, body) = get("/variables/INNTEKT_WLONN").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::String("<html>app</html>".into()));
}

async fn post_run(
    app: axum::Router,
    script: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::post("/api/run").header("content-type", "application/json");
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let body = serde_json::to_vec(&serde_json::json!({ "script": script })).unwrap();
    let response = app.oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, set_cookie, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_guest_runs_scripts_in_a_workspace_kept_by_a_cookie() {
    let app_dir = tempfile::tempdir().unwrap();
    let app = super::router(demo_state(), app_dir.path());
    let script = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n";
    let (status, cookie, body) = post_run(app.clone(), script, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.expect("a new guest gets a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert_eq!(body["outputs"][2]["kind"], "notice");
    assert_eq!(body["outputs"][2]["line"], 3);

    // The next run sees the dataset the first one made.
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (status, again, body) = post_run(app.clone(), "tabulate sex", Some(&pair)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, None, "a known guest keeps its cookie");
    let output = &body["outputs"][0];
    assert_eq!(output["kind"], "table", "{body}");
    assert_eq!(output["line"], 1);
    assert_eq!(output["row_labels"][2], "Total");

    // Another guest has a workspace of its own.
    let (_, _, body) = post_run(app, "tabulate sex", None).await;
    assert_eq!(body["outputs"][0]["kind"], "error");
    assert!(body["outputs"][0]["message"].as_str().unwrap().contains("no current dataset"));
}

#[tokio::test]
async fn run_refuses_bodies_that_are_not_json_and_nothing_runs_when_guests_are_off() {
    let app_dir = tempfile::tempdir().unwrap();
    let app = super::router(demo_state(), app_dir.path());
    let response = app
        .clone()
        .oneshot(
            Request::post("/api/run")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("script=help"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let mut state = demo_state();
    state.guests = None;
    let (status, _, body) = post_run(super::router(state, app_dir.path()), "help", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "sign in to run scripts on this server");
    assert_eq!(body["code"], "signed_out");
}

#[tokio::test]
async fn the_rules_of_a_datastore_are_public_in_plain_words() {
    let (status, body) = get("/api/catalog/datastores/demo/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
    assert_eq!(body["settings"]["population_floor"], 1000);
    let rule5 = body["rules"].as_array().unwrap().iter().find(|r| r[0] == 5).unwrap();
    assert!(rule5[1].as_str().unwrap().contains("±2"), "{rule5}");
    let (status, _) = get("/api/catalog/datastores/nope/rules").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_data_order_lists_what_a_script_uses_and_refuses_one_it_cannot_read() {
    let post = |body: serde_json::Value| async move {
        let app_dir = tempfile::tempdir().unwrap();
        let response = super::router(demo_state(), app_dir.path())
            .oneshot(
                Request::post("/api/order")
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<Value>(&bytes).unwrap())
    };
    let script = "require demo:1 as db\ncreate-dataset persons\nimport db/INNTEKT_WLONN 2021-12-31 as wage\nkeep if wage > 0\n";
    // No session: the order reads the script and the catalogue only, as the catalogue is public.
    let (status, body) = post(serde_json::json!({ "script": script })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["variables"][0]["variable"], "INNTEKT_WLONN");
    assert_eq!(body["order"]["variables"][0]["dates"][0], "2021-12-31");
    assert_eq!(body["order"]["populations"][0]["rule"], "keep if wage > 0");
    assert!(body["text"].as_str().unwrap().contains("demo:1 INNTEKT_WLONN"), "{body}");

    let (status, body) = post(serde_json::json!({ "script": "tabluate x" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");
    let (status, body) = post(serde_json::json!({ "script": "help", "project": "p" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
