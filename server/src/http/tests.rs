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
