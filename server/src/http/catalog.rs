//! The public catalog, no sign-in: `/api/catalog/datastores`, `/api/catalog/variables` (search)
//! and `/api/catalog/variables/{NAME}` (one variable's full metadata).

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use shared::api::{DatastoreSummary, VariableDetail, VariablePage};
use shared::metadata::{Temporality, UnitType, import_lines};

use super::AppError;
use crate::AppState;
use crate::catalog::SearchQuery;
use shared::api::RulesPage;

const MAX_QUERY_CHARS: usize = 200;
const MAX_PAGE: usize = 1_000;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/datastores", get(datastores))
        .route("/variables", get(search))
        .route("/variables/{name}", get(variable))
        .route("/datastores/{name}/rules", get(rules))
}

/// The disclosure rules of a datastore's newest version, public like the catalog.
async fn rules(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<RulesPage>, AppError> {
    let latest = state
        .registry
        .datastores
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, versions)| versions.last())
        .ok_or_else(|| AppError::NotFound {
            message: format!("unknown datastore '{name}'"),
            did_you_mean: state.registry.datastores.keys().map(|n| n.to_string()).collect(),
        })?;
    let version = latest.metadata.version;
    let rules = state
        .engine
        .rules(&name, version)
        .ok_or_else(|| anyhow::anyhow!("no gate for {name}:{version}"))?;
    Ok(Json(RulesPage {
        datastore: name,
        version,
        rules: rules.describe(),
        settings: serde_json::to_value(rules)?,
    }))
}

async fn datastores(State(state): State<AppState>) -> Json<Vec<DatastoreSummary>> {
    let summaries = state
        .registry
        .datastores
        .values()
        .filter_map(|versions| {
            let latest = versions.last()?;
            let mut unit_types: Vec<UnitType> =
                latest.variables.values().map(|v| v.unit_type).collect();
            unit_types.sort();
            unit_types.dedup();
            Some(DatastoreSummary {
                name: latest.metadata.name.to_string(),
                label: latest.metadata.label.clone(),
                description: latest.metadata.description.clone(),
                versions: versions.iter().map(|v| v.metadata.version).collect(),
                latest: latest.metadata.version,
                variable_count: latest.variables.len(),
                unit_types,
            })
        })
        .collect();
    Json(summaries)
}

/// Query parameters as `(name, value)` pairs, parsed by hand so each error names its parameter.
fn parameters(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn bad(parameter: &'static str, message: impl Into<String>) -> AppError {
    AppError::BadRequest { parameter, message: message.into() }
}

fn parse_search(raw: Option<String>) -> Result<SearchQuery, AppError> {
    let mut query = SearchQuery { page: 1, page_size: DEFAULT_PAGE_SIZE, ..SearchQuery::default() };
    for (name, value) in parameters(raw) {
        match name.as_str() {
            "q" => {
                if value.chars().count() > MAX_QUERY_CHARS {
                    return Err(bad(
                        "q",
                        format!("at most {MAX_QUERY_CHARS} characters, please shorten the search"),
                    ));
                }
                query.text = value;
            }
            "unit_type" if value.is_empty() => {}
            "unit_type" => {
                let all: Vec<&str> = UnitType::ALL.iter().map(|u| u.as_str()).collect();
                query.unit_type = Some(UnitType::parse(&value).ok_or_else(|| {
                    bad(
                        "unit_type",
                        format!("unknown unit type '{value}'; use one of {}", all.join(", ")),
                    )
                })?);
            }
            "temporality" if value.is_empty() => {}
            "temporality" => {
                let all: Vec<&str> = Temporality::ALL.iter().map(|t| t.as_str()).collect();
                query.temporality = Some(Temporality::parse(&value).ok_or_else(|| {
                    bad(
                        "temporality",
                        format!("unknown temporality '{value}'; use one of {}", all.join(", ")),
                    )
                })?);
            }
            "subject" if value.is_empty() => {}
            "subject" => query.subject = Some(value),
            "page" => query.page = bounded("page", &value, MAX_PAGE)?,
            "page_size" => query.page_size = bounded("page_size", &value, MAX_PAGE_SIZE)?,
            _ => {
                return Err(AppError::BadRequest {
                    parameter: "(unknown)",
                    message: format!(
                        "'{name}' is not a parameter of this endpoint; use q, unit_type, temporality, subject, page or page_size"
                    ),
                });
            }
        }
    }
    Ok(query)
}

fn bounded(parameter: &'static str, value: &str, max: usize) -> Result<usize, AppError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad(parameter, format!("'{value}' is not a whole number from 1 to {max}"))),
    }
}

async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<VariablePage>, AppError> {
    let query = parse_search(raw)?;
    let catalog = state.catalog.clone();
    let q = query.clone();
    // Searching is CPU work; keep it off the threads that serve connections.
    let result = tokio::task::spawn_blocking(move || catalog.search(&q)).await??;
    Ok(Json(VariablePage {
        query: query.text,
        total: result.total,
        page: query.page,
        page_size: query.page_size,
        hits: result.hits,
        subjects: state.catalog.subjects().to_vec(),
    }))
}

async fn variable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<VariableDetail>, AppError> {
    let mut datastore = None;
    let mut version = None;
    for (key, value) in parameters(raw) {
        match key.as_str() {
            "datastore" => datastore = Some(value),
            "version" => version = Some(bounded("version", &value, u32::MAX as usize)? as u32),
            _ => {
                return Err(AppError::BadRequest {
                    parameter: "(unknown)",
                    message: format!(
                        "'{key}' is not a parameter of this endpoint; use datastore or version"
                    ),
                });
            }
        }
    }
    let not_found = |what: String| AppError::NotFound {
        did_you_mean: state.catalog.did_you_mean(&name),
        message: what,
    };
    let (datastore_name, version_number, metadata) = match version {
        None => {
            let entry = state.catalog.variable(&name, datastore.as_deref()).ok_or_else(|| {
                not_found(match &datastore {
                    Some(d) => format!("unknown variable '{name}' in datastore '{d}'"),
                    None => format!("unknown variable '{name}'"),
                })
            })?;
            (entry.datastore.clone(), entry.version, (*entry.metadata).clone())
        }
        Some(v) => {
            let Some(d) = datastore else {
                return Err(bad(
                    "version",
                    "give the datastore too, e.g. ?datastore=demo&version=1",
                ));
            };
            let found = state
                .registry
                .datastores
                .iter()
                .find(|(n, _)| n.as_str() == d)
                .and_then(|(_, versions)| versions.iter().find(|x| x.metadata.version == v))
                .ok_or_else(|| not_found(format!("datastore '{d}' has no version {v}")))?;
            let meta = found
                .variables
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, m)| m.clone())
                .ok_or_else(|| {
                    not_found(format!("unknown variable '{name}' in datastore '{d}' version {v}"))
                })?;
            (d, v, meta)
        }
    };
    let import_lines = import_lines(&datastore_name, version_number, &metadata);
    Ok(Json(VariableDetail {
        datastore: datastore_name,
        version: version_number,
        metadata,
        import_lines,
    }))
}
