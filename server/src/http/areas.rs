//! The personal and project areas over HTTP: list, read, save and delete text files.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use axum::{Json, Router};
use shared::api::{AreaListing, FileContent, FileSummary};

use super::AppError;
use super::auth::{Need, blocking, signed_in};
use crate::AppState;
use crate::identity::areas::AreaName;
use crate::identity::store::StoredFile;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/areas/personal/files", get(list_personal))
        .route(
            "/areas/personal/files/{name}",
            get(read_personal).put(save_personal).delete(delete_personal),
        )
        .route("/areas/projects/{project}/files", get(list_project))
        .route(
            "/areas/projects/{project}/files/{name}",
            get(read_project).put(save_project).delete(delete_project),
        )
}

fn summary(f: StoredFile) -> FileSummary {
    FileSummary { name: f.name, bytes: f.bytes, updated_at: f.updated_at, updated_by: f.updated_by }
}

async fn list(
    state: AppState,
    headers: HeaderMap,
    area: AreaName,
) -> Result<Json<AreaListing>, AppError> {
    let caller = signed_in(&state, &headers, &Method::GET, Need::Active, true).await?;
    let listing = blocking(&state, move |identity| {
        let area = identity.area(&caller, &area)?;
        let files = identity.list_files(&area)?;
        let used = files.iter().map(|f| f.bytes).sum();
        Ok(AreaListing { files: files.into_iter().map(summary).collect(), used, limit: area.limit })
    })
    .await?;
    Ok(Json(listing))
}

async fn read(
    state: AppState,
    headers: HeaderMap,
    area: AreaName,
    name: String,
) -> Result<Json<FileContent>, AppError> {
    let caller = signed_in(&state, &headers, &Method::GET, Need::Active, true).await?;
    let content = blocking(&state, move |identity| {
        let area = identity.area(&caller, &area)?;
        identity.read_file(&area, &name)
    })
    .await?;
    Ok(Json(FileContent { content }))
}

async fn save(
    state: AppState,
    headers: HeaderMap,
    area: AreaName,
    name: String,
    file: FileContent,
) -> Result<Json<FileSummary>, AppError> {
    let caller = signed_in(&state, &headers, &Method::PUT, Need::Active, true).await?;
    let saved = blocking(&state, move |identity| {
        let area = identity.area(&caller, &area)?;
        identity.save_file(&caller, &area, &name, &file.content)
    })
    .await?;
    Ok(Json(summary(saved)))
}

async fn delete(
    state: AppState,
    headers: HeaderMap,
    area: AreaName,
    name: String,
) -> Result<Json<serde_json::Value>, AppError> {
    let caller = signed_in(&state, &headers, &Method::DELETE, Need::Active, true).await?;
    let deleted = name.clone();
    blocking(&state, move |identity| {
        let area = identity.area(&caller, &area)?;
        identity.delete_file(&area, &name)
    })
    .await?;
    Ok(Json(serde_json::json!({ "deleted": deleted })))
}

async fn list_personal(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AreaListing>, AppError> {
    list(state, headers, AreaName::Personal).await
}

async fn read_personal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<FileContent>, AppError> {
    read(state, headers, AreaName::Personal, name).await
}

async fn save_personal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(file): Json<FileContent>,
) -> Result<Json<FileSummary>, AppError> {
    save(state, headers, AreaName::Personal, name, file).await
}

async fn delete_personal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    delete(state, headers, AreaName::Personal, name).await
}

async fn list_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Json<AreaListing>, AppError> {
    list(state, headers, AreaName::Project(project)).await
}

async fn read_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<FileContent>, AppError> {
    read(state, headers, AreaName::Project(project), name).await
}

async fn save_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
    Json(file): Json<FileContent>,
) -> Result<Json<FileSummary>, AppError> {
    save(state, headers, AreaName::Project(project), name, file).await
}

async fn delete_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    delete(state, headers, AreaName::Project(project), name).await
}
