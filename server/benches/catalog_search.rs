//! Catalog search latency, server-side: `cargo bench -p server --bench catalog_search -- ROOT`.
//!
//! Runs a mix of searches users make (whole words, prefixes while typing, typos, filters, an
//! empty query) against the catalog of the datastores under ROOT, directly and through the HTTP
//! router in-process, and prints p50/p99 in microseconds.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use server::catalog::SearchQuery;
use server::settings::Settings;
use shared::metadata::{Temporality, UnitType};
use tower::ServiceExt;

const ROUNDS: usize = 300;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut micros: Vec<f64>) {
    micros.sort_by(f64::total_cmp);
    println!(
        "{what:<32} n={:<6} p50={:>8.1} µs  p99={:>8.1} µs",
        micros.len(),
        percentile(&micros, 0.50),
        percentile(&micros, 0.99)
    );
}

fn main() {
    let root = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| ".skjold/datastores".into());
    let settings = Settings { datastores: root.clone().into(), ..Settings::default() };
    let state = server::AppState::load_for_batch(&settings).expect("datastores load");
    assert!(!state.catalog.is_empty(), "no variables under {root}: generate a datastore first");
    let texts = [
        "inntekt",
        "inntkt",
        "inn",
        "wage income",
        "kjønn",
        "bosted",
        "sivilstand",
        "BEFOLKNING_KJOENN",
        "utdanning nus",
        "",
    ];
    let mut queries = Vec::new();
    for text in texts {
        queries.push(SearchQuery {
            text: text.into(),
            page: 1,
            page_size: 20,
            ..SearchQuery::default()
        });
    }
    queries.push(SearchQuery {
        text: "lønn".into(),
        unit_type: Some(UnitType::Job),
        page: 1,
        page_size: 20,
        ..SearchQuery::default()
    });
    queries.push(SearchQuery {
        temporality: Some(Temporality::Event),
        page: 1,
        page_size: 20,
        ..SearchQuery::default()
    });

    let mut direct = Vec::new();
    for _ in 0..ROUNDS {
        for q in &queries {
            let started = Instant::now();
            let result = state.catalog.search(q).expect("search");
            direct.push(started.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(result);
        }
    }
    report("Catalog::search", direct);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let app = server::http::router(state, std::path::Path::new("dist"));
    let uris: Vec<String> = texts
        .iter()
        .map(|t| format!("/api/catalog/variables?q={}", t.replace(' ', "%20")))
        .chain([
            "/api/catalog/variables?q=l%C3%B8nn&unit_type=JOB".into(),
            "/api/catalog/variables?temporality=EVENT".into(),
        ])
        .collect();
    let mut http = Vec::new();
    runtime.block_on(async {
        for _ in 0..ROUNDS {
            for uri in &uris {
                let started = Instant::now();
                let response = app
                    .clone()
                    .oneshot(Request::get(uri.as_str()).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                http.push(started.elapsed().as_secs_f64() * 1e6);
                std::hint::black_box(body);
            }
        }
    });
    report("GET /api/catalog/variables", http);
}
