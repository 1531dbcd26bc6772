//! Request and response shapes of the HTTP API, shared by the server and the app.

use serde::{Deserialize, Serialize};

use crate::metadata::{DataType, Localized, Temporality, UnitType, VariableMetadata};

/// `GET /api/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub datastores: usize,
}

/// One entry of `GET /api/catalog/datastores`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatastoreSummary {
    pub name: String,
    pub label: Localized,
    pub description: Localized,
    /// Every published version, oldest first.
    pub versions: Vec<u32>,
    pub latest: u32,
    /// Variables in the latest version.
    pub variable_count: usize,
    pub unit_types: Vec<UnitType>,
}

/// One search hit of `GET /api/catalog/variables`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableHit {
    pub datastore: String,
    pub name: String,
    pub label: Localized,
    pub unit_type: UnitType,
    pub temporality: Temporality,
    pub data_type: DataType,
    pub subject_fields: Vec<String>,
}

/// A page of `GET /api/catalog/variables?q=&unit_type=&temporality=&subject=&page=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariablePage {
    pub query: String,
    /// Hits over all pages.
    pub total: usize,
    /// 1-based.
    pub page: usize,
    pub page_size: usize,
    pub hits: Vec<VariableHit>,
    /// Subject fields present in the catalog, for the filter menu.
    pub subjects: Vec<String>,
}

/// `GET /api/catalog/variables/{NAME}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableDetail {
    pub datastore: String,
    pub version: u32,
    pub metadata: VariableMetadata,
    /// A `require` and an `import` line ready to paste into a script.
    pub import_lines: String,
}

/// Every error response has this body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// Close matches, for "did you mean" on unknown names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did_you_mean: Vec<String>,
    /// What the app should do about it: `signed_out`, `terms`, `change_password`,
    /// `second_factor`, `csrf`, `country`, `too_many`, `unavailable` (the application database
    /// is busy or cannot be reached: send it again after Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `POST /api/run`: a script (or the selected part of one) to run in the caller's workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub script: String,
    /// The project to run in, for signed-in users with more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `GET /api/catalog/datastores/{name}/rules`: the disclosure rules of a datastore's newest
/// version, in plain words and as settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulesPage {
    pub datastore: String,
    pub version: u32,
    /// (rule number, the rule in plain words).
    pub rules: Vec<(u32, String)>,
    /// The thresholds as the server enforces them.
    pub settings: serde_json::Value,
}

/// `GET /api/session`: who the caller is, and what the app should show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub signed_in: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// member, teacher or steward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How the account signs in: password or passkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// second_factor, change_password or active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The terms in force are not accepted yet: only the terms page is reachable.
    #[serde(default)]
    pub needs_terms: bool,
    /// Sent back in `X-CSRF-Token` with every state-changing request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// Seconds until idle sign-out.
    #[serde(default)]
    pub idle_left: i64,
    /// The "stay signed in?" prompt shows when `idle_left` is at most this.
    #[serde(default)]
    pub idle_warning: i64,
    /// Scripts can run without signing in (demo datastore only).
    #[serde(default)]
    pub guest_workspace: bool,
}

/// `POST /api/auth/login`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

/// `POST /api/auth/totp` and `POST /api/enrol/totp`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeRequest {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /api/enrol/status` and `POST /api/enrol/password`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /api/enrol/status`: whose link it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrolStatus {
    pub user: String,
    pub display_name: String,
    /// The sign-in method linked now: none, password or passkey.
    pub method: String,
}

/// `POST /api/enrol/password`: what the authenticator app needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TotpSetup {
    pub otpauth_uri: String,
    pub secret: String,
    pub qr_svg: String,
}

/// `GET /api/terms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    pub version: u32,
    /// Markdown.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_version: Option<u32>,
}

/// `POST /api/account/password`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

/// `POST /api/auth/passkey/start` (with `user`), `/api/enrol/passkey/start` (with `token`) and
/// `/api/account/passkeys/start` (neither).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PasskeyBegin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The answer to a `…/start`: the options for `navigator.credentials` in WebAuthn's JSON form,
/// and the id of the ceremony the server keeps for five minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasskeyChallenge {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// `POST …/finish`: the authenticator's answer (`PublicKeyCredential.toJSON()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasskeyFinish {
    pub ceremony: String,
    pub credential: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Proof, just now, that the caller holds the account's credential, for what could hand the
/// account to someone else (switching method, adding a passkey): the password and a TOTP
/// code, or a passkey assertion to a challenge from `POST /api/account/reauth/passkey/start`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reauthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceremony: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<serde_json::Value>,
}

/// `GET /api/admin/users`: one account, as a data steward sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub display_name: String,
    /// member, teacher or steward.
    pub role: String,
    /// none (not enrolled yet), password or passkey.
    pub method: String,
    /// Unix seconds, when the user asked for the account to be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_requested_at: Option<i64>,
}

/// `POST /api/admin/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// member, teacher or steward.
    pub role: String,
}

/// A one-time enrolment link, for the steward to pass on (or for the user switching method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentLink {
    pub link: String,
    /// What became of the e-mail with the link, when mail is configured: "sent to …" or why
    /// not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailed: Option<String>,
}

/// `GET /api/projects` and the answers of the project and course endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub name: String,
    /// project or course.
    pub kind: String,
    /// A course's join code, shown to its owner only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_code: Option<String>,
    /// `datastore` or `datastore/VARIABLE`.
    pub grants: Vec<String>,
}

/// `GET /api/areas/personal/files` or `/api/areas/projects/{project}/files`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AreaListing {
    pub files: Vec<FileSummary>,
    /// Bytes the files hold, and the area's limit.
    pub used: u64,
    pub limit: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    pub name: String,
    pub bytes: u64,
    /// Unix seconds.
    pub updated_at: i64,
    pub updated_by: String,
}

/// `GET` and `PUT …/files/{name}`: a file's text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileContent {
    pub content: String,
}

/// Where a job is. A job is queued until a worker takes it, running until its last command,
/// then done (every command ran), failed (a command failed or was refused, or the server
/// could not finish it; `error` says which) or cancelled by its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Done, failed or cancelled: nothing will change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// A run from the workbench (answered in the request) or a batch job (queued, run by a worker,
/// fetched later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Interactive,
    Batch,
}

/// `POST /api/jobs`: a script to run as a batch job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    pub script: String,
    /// The project to run in, for users with more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A job without its script and outputs: `GET /api/jobs` lists these, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: i64,
    pub kind: JobKind,
    pub state: JobState,
    pub project: Option<String>,
    /// SHA-256 of the script, hex.
    pub script_sha256: String,
    /// The datastore versions the run bound, `name@version`.
    pub datastores: Vec<String>,
    /// The command running (or last run), 1-based after loops are unrolled, of `steps`.
    pub step: u32,
    pub steps: u32,
    pub command: String,
    /// Unix milliseconds.
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// Times a worker started the job: more than 1 after a restart of the server.
    pub attempts: u32,
    pub cancel_requested: bool,
}

/// `GET /api/jobs/{id}`: a job with its script and its released outputs (empty until done).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    pub script: String,
    pub outputs: Vec<crate::output::Output>,
}

/// `GET /api/tokens`: a personal access token's facts; the token itself is shown once, when
/// it is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenInfo {
    pub id: i64,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

/// `POST /api/tokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccessToken {
    pub name: String,
    /// Days until it expires (1 to 365).
    pub days: u32,
}

/// The answer to `POST /api/tokens`: the token, shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedAccessToken {
    pub token: String,
    #[serde(flatten)]
    pub info: AccessTokenInfo,
}

/// `GET /api/admin/audit`: the newest records of the audit log, newest first, for stewards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The chain's head, "SEQ HASH": `skjold audit verify` checks the whole log against it.
    pub head: Option<String>,
    /// Each record as the log holds it: an output's (`user`, `command`, `kind`, `decisions`)
    /// or a security event's (`event`, `user`, `detail`), with `seq`, `prev` and `hash`.
    pub records: Vec<serde_json::Value>,
}

/// `POST /api/order` and `skjold order`: the data a script uses, as an attachment to an
/// application for access to the full microdata. Read from the script and the catalogue only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataOrder {
    /// Each `require`, its version resolved.
    pub datastores: Vec<OrderedDatastore>,
    /// Each variable once, with every date it is imported at.
    pub variables: Vec<OrderedVariable>,
    /// The lines that choose the units: `keep if`, `drop if`, `sample`, `clone-units`.
    pub populations: Vec<PopulationRule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderedDatastore {
    pub alias: String,
    pub name: String,
    pub version: u32,
    pub label: Localized,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderedVariable {
    pub datastore: String,
    pub version: u32,
    pub variable: String,
    /// From the catalogue; none for a name the datastore does not have.
    pub label: Option<Localized>,
    /// `import`, `import-event` or `import-panel`: how the script reads it.
    pub command: String,
    /// As written after expansion, sorted: `2021-12-31`, or `2020-01-01 to 2020-12-31` for
    /// events; none for a fixed variable.
    pub dates: Vec<String>,
    /// 1-based script lines that import it.
    pub lines: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopulationRule {
    /// The dataset in use at the line.
    pub dataset: String,
    pub line: u32,
    /// The command as written after expansion.
    pub rule: String,
}

/// `POST /api/order`'s answer: the order and the same as a page of text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderResponse {
    pub order: DataOrder,
    pub text: String,
}
