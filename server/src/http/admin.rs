//! Stewards manage users, projects and grants; teachers open courses; members join them and
//! list their projects. Every change goes to the audit log (inside `Identity`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::AppError;
use super::auth::{Need, blocking, signed_in};
use shared::api::{EnrolmentLink, NewUser, ProjectSummary, UserSummary};

use crate::AppState;
use crate::identity::{ProjectKind, Role, SignedIn};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users).post(add_user))
        .route("/admin/users/{name}/role", post(set_role))
        .route("/admin/users/{name}/enrolment", post(new_enrolment))
        .route("/admin/users/{name}/temporary-password", post(temporary_password))
        .route("/admin/users/{name}/delete", post(delete_user))
        .route("/admin/projects", post(add_project))
        .route("/admin/projects/{name}/grants", post(add_grant))
        .route("/admin/projects/{name}/members", post(add_member))
        .route("/admin/audit", get(audit_log))
        .route("/projects", get(my_projects))
        .route("/courses", post(open_course))
        .route("/courses/join", post(join_course))
}

async fn steward(
    state: &AppState,
    headers: &HeaderMap,
    method: Method,
) -> Result<SignedIn, AppError> {
    let caller = signed_in(state, headers, &method, Need::Active, true).await?;
    if caller.user.role != Role::Steward {
        return Err(AppError::Forbidden("only data stewards may do this".into()));
    }
    Ok(caller)
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// The newest records of the audit log, for stewards (reading it is itself no change).
async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<AuditQuery>,
) -> Result<Json<shared::api::AuditPage>, AppError> {
    steward(&state, &headers, Method::GET).await?;
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let audit = state.audit.clone();
    let page = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        Ok(shared::api::AuditPage { head: audit.head()?, records: audit.recent(limit)? })
    })
    .await
    .map_err(|e| anyhow::anyhow!("the audit task failed: {e}"))?
    .map_err(|e| anyhow::anyhow!("cannot read the audit log: {e}"))?;
    Ok(Json(page))
}

async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<UserSummary>>, AppError> {
    steward(&state, &headers, Method::GET).await?;
    let users = blocking(&state, |identity| Ok(identity.store.users()?)).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserSummary {
                name: u.name,
                display_name: u.display_name,
                role: u.role.as_str().into(),
                method: u.method.as_str().into(),
                deletion_requested_at: u.deletion_requested_at,
            })
            .collect(),
    ))
}

async fn add_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(new): Json<NewUser>,
) -> Result<Json<EnrolmentLink>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    let role = Role::parse(&new.role).ok_or_else(|| AppError::BadRequest {
        parameter: "role",
        message: format!("'{}' is not a role: use member, teacher or steward", new.role),
    })?;
    let (link, mailed) = blocking(&state, move |identity| {
        let email = new.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let (user, link) = identity.add_user(&new.name, &new.display_name, email, role, &by)?;
        let mailed = identity.mail_enrolment(&user, &link);
        Ok((link, mailed))
    })
    .await?;
    Ok(Json(EnrolmentLink { link, mailed }))
}

#[derive(Deserialize)]
struct RoleChange {
    role: Role,
}

async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(change): Json<RoleChange>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    blocking(&state, move |identity| identity.set_role(&name, change.role, &by)).await?;
    Ok(Json(serde_json::json!({ "role": change.role })))
}

async fn new_enrolment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<EnrolmentLink>, AppError> {
    steward(&state, &headers, Method::POST).await?;
    let link = blocking(&state, move |identity| {
        let user = identity.store.user_by_name(&name)?.ok_or_else(|| {
            crate::identity::AuthError::NotFound(format!("there is no user named '{name}'"))
        })?;
        let link = identity.enrolment_link(&user)?;
        let mailed = identity.mail_enrolment(&user, &link);
        Ok((link, mailed))
    })
    .await?;
    Ok(Json(EnrolmentLink { link: link.0, mailed: link.1 }))
}

async fn temporary_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    let password =
        blocking(&state, move |identity| identity.set_temporary_password(&name, &by)).await?;
    Ok(Json(serde_json::json!({ "password": password })))
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    blocking(&state, move |identity| identity.delete_user(&name, &by)).await?;
    Ok(Json(serde_json::json!({ "deleted": true })))
}

#[derive(Deserialize)]
struct NewProject {
    name: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    course: bool,
}

async fn add_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(new): Json<NewProject>,
) -> Result<Json<ProjectSummary>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    let kind = if new.course { ProjectKind::Course } else { ProjectKind::Project };
    let project = blocking(&state, move |identity| {
        identity.create_project(&new.name, kind, new.owner.as_deref(), &by)
    })
    .await?;
    Ok(Json(ProjectSummary {
        name: project.name,
        kind: kind.as_str().into(),
        join_code: project.join_code,
        grants: Vec::new(),
    }))
}

#[derive(Deserialize)]
struct NewGrant {
    datastore: String,
    #[serde(default)]
    variable: Option<String>,
}

async fn add_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(grant): Json<NewGrant>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = steward(&state, &headers, Method::POST).await?.user.name;
    if !state.registry.datastores.keys().any(|d| d.as_str() == grant.datastore) {
        return Err(AppError::Refused(format!(
            "there is no datastore named '{}'",
            grant.datastore
        )));
    }
    blocking(&state, move |identity| {
        identity.grant(&name, &grant.datastore, grant.variable.as_deref(), &by)
    })
    .await?;
    Ok(Json(serde_json::json!({ "granted": true })))
}

#[derive(Deserialize)]
struct NewMember {
    user: String,
}

async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(member): Json<NewMember>,
) -> Result<Json<serde_json::Value>, AppError> {
    // Stewards add anyone to any project. A project's owner adds people to their own, but
    // only while it is granted nothing but the synthetic demo: who may see real registers is
    // the steward's decision.
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let added = blocking(&state, move |identity| {
        let project = identity.project_named(&name)?;
        if caller.user.role == Role::Steward {
            identity.add_member(&name, &member.user, &caller.user.name)?;
            return Ok(serde_json::json!({ "added": true }));
        }
        if project.owner != Some(caller.user.id) {
            return Err(crate::identity::AuthError::NotAllowed(format!(
                "only the owner of '{name}' or a data steward may add members"
            )));
        }
        let real = identity
            .store
            .grants(project.id)?
            .into_iter()
            .any(|(datastore, _)| !super::run::GUEST_DATASTORES.contains(&datastore.as_str()));
        if real {
            return Err(crate::identity::AuthError::NotAllowed(format!(
                "'{name}' is granted register data, so a data steward decides who joins it: ask your steward to add the member"
            )));
        }
        // An owner is not told which names are accounts: the answer is the same either way.
        match identity.add_member(&name, &member.user, &caller.user.name) {
            Ok(()) | Err(crate::identity::AuthError::NotFound(_)) => Ok(serde_json::json!({
                "added": format!("if '{}' is an account, it is a member of '{name}' now", member.user)
            })),
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(Json(added))
}

async fn my_projects(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<ProjectSummary>>, AppError> {
    let caller = signed_in(&state, &headers, &Method::GET, Need::Active, true).await?;
    let rows = blocking(&state, move |identity| {
        let mut rows = Vec::new();
        for p in identity.store.projects_of(caller.user.id)? {
            let grants = identity
                .store
                .grants(p.id)?
                .into_iter()
                .map(|(d, v)| v.map_or_else(|| d.clone(), |v| format!("{d}/{v}")))
                .collect();
            // Only the owner sees a course's join code.
            let join_code = p.join_code.filter(|_| p.owner == Some(caller.user.id));
            rows.push(ProjectSummary {
                name: p.name,
                kind: p.kind.as_str().into(),
                join_code,
                grants,
            });
        }
        Ok(rows)
    })
    .await?;
    Ok(Json(rows))
}

#[derive(Deserialize)]
struct NewCourse {
    name: String,
}

/// The datastore every course works on: synthetic data only.
pub const COURSE_DATASTORE: &str = "demo";

async fn open_course(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(new): Json<NewCourse>,
) -> Result<Json<ProjectSummary>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    if caller.user.role < Role::Teacher {
        return Err(AppError::Forbidden("only teachers and data stewards open courses".into()));
    }
    let project = blocking(&state, move |identity| {
        let name = caller.user.name.clone();
        let project =
            identity.create_project(&new.name, ProjectKind::Course, Some(&name), &name)?;
        identity.grant(&project.name, COURSE_DATASTORE, None, &name)?;
        Ok(project)
    })
    .await?;
    Ok(Json(ProjectSummary {
        name: project.name,
        kind: ProjectKind::Course.as_str().into(),
        join_code: project.join_code,
        grants: vec![COURSE_DATASTORE.into()],
    }))
}

#[derive(Deserialize)]
struct Join {
    code: String,
}

async fn join_course(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(join): Json<Join>,
) -> Result<Json<serde_json::Value>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let project =
        blocking(&state, move |identity| identity.join_course(&caller, &join.code)).await?;
    Ok(Json(serde_json::json!({ "joined": project.name })))
}
