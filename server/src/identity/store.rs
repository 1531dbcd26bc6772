//! The application database: accounts, sessions, passkeys, terms acceptances, projects and
//! grants. `AppStore` is the interface; `SqliteStore` serves it from one file.
//!
//! The SQL is the common subset of SQLite and PostgreSQL (no SQLite-only types or functions;
//! `ON CONFLICT … DO UPDATE` is in both), so a PostgreSQL store is the same statements over
//! another driver. Methods are synchronous: callers on the async runtime wrap whole operations
//! (which also hash passwords) in `spawn_blocking`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Method, Project, ProjectKind, Role, Session, Stage, User};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("application database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("application database file: {0}")]
    File(String),
    /// The file the server opened was removed or replaced while it ran: what it wrote would
    /// go to a file nobody will read again, so it writes nothing.
    #[error(
        "application database file {0} was removed or replaced while the server ran: put it back, or restart the server"
    )]
    Gone(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything identity and access keep, and the jobs. Times are Unix seconds.
pub trait AppStore:
    crate::jobs::JobStore + crate::disclosure::memory::MemoryStore + Send + Sync
{
    fn insert_user(&self, user: &User) -> StoreResult<i64>;
    fn save_user(&self, user: &User) -> StoreResult<()>;
    /// Records that a TOTP code of `step` was used, if no code of that step or a later one
    /// was: one conditional update, so two requests with the same code cannot both pass.
    /// False when the step was taken already.
    fn claim_totp_step(&self, user: i64, step: i64) -> StoreResult<bool>;
    fn user(&self, id: i64) -> StoreResult<Option<User>>;
    fn user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    fn users(&self) -> StoreResult<Vec<User>>;
    /// Removes the account and everything that hangs on it.
    fn delete_user(&self, id: i64) -> StoreResult<()>;

    /// A new enrolment, which ends every other unused one of the user: one live link each.
    fn insert_enrolment(&self, token_hash: &str, user: i64, expires: i64) -> StoreResult<()>;
    /// Keeps a password enrolment's hash and TOTP secret until its code confirms them.
    fn set_pending_credentials(
        &self,
        token_hash: &str,
        password_hash: &str,
        totp_secret: &str,
    ) -> StoreResult<()>;
    /// The pending (password hash, TOTP secret) of an enrolment.
    fn pending_credentials(&self, token_hash: &str) -> StoreResult<Option<(String, String)>>;
    /// The user of an unused, unexpired enrolment.
    fn enrolment_user(&self, token_hash: &str, now: i64) -> StoreResult<Option<i64>>;
    /// Marks an enrolment used; false if it already was.
    fn use_enrolment(&self, token_hash: &str, now: i64) -> StoreResult<bool>;

    fn insert_session(&self, session: &Session) -> StoreResult<()>;
    fn session(&self, id_hash: &str) -> StoreResult<Option<Session>>;
    fn touch_session(&self, id_hash: &str, last_seen: i64) -> StoreResult<()>;
    /// Records that the session's holder proved the credential again at `now`.
    fn mark_reauthenticated(&self, id_hash: &str, now: i64) -> StoreResult<()>;
    fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    fn delete_sessions_of(&self, user: i64) -> StoreResult<usize>;
    /// Ends every session of `user` but the one with id hash `keep`.
    fn delete_other_sessions_of(&self, user: i64, keep: &str) -> StoreResult<usize>;

    fn insert_passkey(
        &self,
        user: i64,
        credential_id: &str,
        passkey: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// (credential id, serialised passkey) of every passkey of `user`.
    fn passkeys(&self, user: i64) -> StoreResult<Vec<(String, String)>>;
    fn update_passkey(&self, credential_id: &str, passkey: &str, now: i64) -> StoreResult<()>;
    fn delete_passkeys(&self, user: i64) -> StoreResult<()>;

    fn record_terms(&self, user: i64, version: u32, now: i64) -> StoreResult<()>;
    /// The newest terms version the user accepted.
    fn accepted_terms(&self, user: i64) -> StoreResult<Option<u32>>;
    /// Every acceptance of a user, as (version, time).
    fn terms_history(&self, user: i64) -> StoreResult<Vec<(u32, i64)>>;

    fn insert_project(&self, project: &Project) -> StoreResult<i64>;
    fn project(&self, id: i64) -> StoreResult<Option<Project>>;
    fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;
    fn project_by_join_code(&self, code: &str) -> StoreResult<Option<Project>>;
    fn projects_of(&self, user: i64) -> StoreResult<Vec<Project>>;
    fn add_member(&self, project: i64, user: i64) -> StoreResult<()>;
    fn members(&self, project: i64) -> StoreResult<Vec<i64>>;
    /// Grants a whole datastore (`variable` None) or one variable of it.
    fn add_grant(&self, project: i64, datastore: &str, variable: Option<&str>) -> StoreResult<()>;
    fn grants(&self, project: i64) -> StoreResult<Vec<(String, Option<String>)>>;

    /// A random secret of this installation, made on first use and kept.
    fn installation_secret(&self) -> StoreResult<String>;

    /// The files of an area (`user:ID` or `project:ID`), by name.
    fn files(&self, area: &str) -> StoreResult<Vec<StoredFile>>;
    fn read_file(&self, area: &str, name: &str) -> StoreResult<Option<String>>;
    /// Saves (or replaces) a file unless the area would then hold more than `limit` bytes;
    /// the check and the write are one step, so two saves cannot both squeeze in.
    fn write_file(
        &self,
        area: &str,
        file: &StoredFile,
        content: &str,
        limit: u64,
    ) -> StoreResult<Saved>;
    /// False when there was no such file.
    fn delete_file(&self, area: &str, name: &str) -> StoreResult<bool>;
    fn delete_area(&self, area: &str) -> StoreResult<()>;

    /// A personal access token, by the SHA-256 of its secret.
    fn insert_token(&self, token: &AccessToken, token_hash: &str) -> StoreResult<i64>;
    /// The unexpired token with this hash, marking it used at `now`.
    fn use_token(&self, token_hash: &str, now: i64) -> StoreResult<Option<AccessToken>>;
    fn tokens_of(&self, user: i64) -> StoreResult<Vec<AccessToken>>;
    /// False when the user has no such token.
    fn delete_token(&self, user: i64, id: i64) -> StoreResult<bool>;
}

/// A personal access token's facts (its secret is kept only as a hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub id: i64,
    pub user: i64,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

/// A file's facts, without its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    pub bytes: u64,
    pub updated_at: i64,
    pub updated_by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// Refused: the other files already hold `used` bytes.
    OverLimit {
        used: u64,
    },
}

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file has come.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    role TEXT NOT NULL,
    method TEXT NOT NULL,
    password_hash TEXT,
    password_changed_at BIGINT,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_last_step BIGINT,
    created_at BIGINT NOT NULL,
    deletion_requested_at BIGINT
);
CREATE TABLE enrolments (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    stage TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE TABLE terms_acceptances (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    join_code TEXT UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id)
);
CREATE TABLE grants (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    datastore TEXT NOT NULL,
    variable TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project_id, datastore, variable)
);
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
",
    // 2: the personal and project areas (scripts and released results, as text).
    "
CREATE TABLE files (
    area TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (area, name)
);
",
    // 3: a password enrolment's credentials wait in the enrolment until its code confirms
    // them; until then the account signs in as it did.
    "
ALTER TABLE enrolments ADD COLUMN pending_password_hash TEXT;
ALTER TABLE enrolments ADD COLUMN pending_totp_secret TEXT;
",
    // 4: when the session's holder last proved the credential again (re-authentication).
    "
ALTER TABLE sessions ADD COLUMN reauthenticated_at BIGINT;
",
    // 5: every run is a job, with its released outputs; personal access tokens for the batch
    // client. Job times are Unix milliseconds.
    "
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    user_id BIGINT,
    project TEXT,
    kind TEXT NOT NULL,
    script TEXT NOT NULL,
    script_sha256 TEXT NOT NULL,
    datastores TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    step BIGINT NOT NULL DEFAULT 0,
    steps BIGINT NOT NULL DEFAULT 0,
    command TEXT NOT NULL DEFAULT '',
    submitted_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    error TEXT,
    outputs TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    cancel_requested BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_owner ON jobs (owner, id);
CREATE INDEX jobs_by_state ON jobs (state, kind, id);
CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT
);
",
    // 6: the disclosure memory per user (rule 11's populations, the refusal budget), so that
    // it outlives workspaces, sessions and restarts.
    "
CREATE TABLE disclosure_populations (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    sketch TEXT NOT NULL
);
CREATE INDEX disclosure_populations_by_owner ON disclosure_populations (owner, id);
CREATE TABLE disclosure_refusals (
    owner TEXT PRIMARY KEY,
    refusals BIGINT NOT NULL
);
",
];

pub struct SqliteStore {
    connection: Mutex<Connection>,
    /// Seals TOTP secrets on the way in, opens them on the way out.
    sealer: super::sealed::Sealer,
    /// The file the connection opened and its identity (device, inode); none in memory.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

/// A file's device and inode, which stay the same when it is renamed back and change when it
/// is replaced.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating when absent) the database file and brings its schema up to date; TOTP
    /// secrets are sealed with `sealer`.
    pub fn open(path: &Path, sealer: super::sealed::Sealer) -> StoreResult<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path)?;
        // SQLite gives its -wal and -shm files the database's own mode.
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        for file in [path, wal.as_path()] {
            if file.exists() {
                crate::owner_only(file).map_err(|e| {
                    StoreError::File(format!("cannot make {} private: {e}", file.display()))
                })?;
            }
        }
        let mut store = SqliteStore::with_connection(connection, sealer)?;
        store.file = file_identity(path).map(|identity| (path.to_owned(), identity));
        Ok(store)
    }

    /// A private database in memory, for tests and the batch path, sealing under a random key.
    pub fn in_memory() -> StoreResult<SqliteStore> {
        let sealer = super::sealed::Sealer::new(rand::random());
        SqliteStore::with_connection(Connection::open_in_memory()?, sealer)
    }

    fn with_connection(
        connection: Connection,
        sealer: super::sealed::Sealer,
    ) -> StoreResult<SqliteStore> {
        // WAL lets `skjold user add` write while the server reads; the busy timeout makes the
        // two wait for each other instead of failing.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            connection.execute_batch(&format!(
                "BEGIN; {migration} PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(SqliteStore { connection: Mutex::new(connection), sealer, file: None })
    }

    fn seal(&self, secret: Option<&str>) -> StoreResult<Option<String>> {
        secret.map(|s| self.sealer.seal(s).map_err(StoreError::File)).transpose()
    }

    fn unseal(&self, secret: Option<String>) -> StoreResult<Option<String>> {
        secret.map(|s| self.sealer.open(&s).map_err(StoreError::File)).transpose()
    }

    fn opened(&self, mut user: User) -> StoreResult<User> {
        user.totp_secret = self.unseal(user.totp_secret.take())?;
        Ok(user)
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((path, identity)) = &self.file
            && file_identity(path) != Some(*identity)
        {
            return Err(StoreError::Gone(path.display().to_string()));
        }
        Ok(f(&connection)?)
    }
}

const USER_COLUMNS: &str = "id, name, display_name, email, role, method, password_hash, \
    password_changed_at, must_change_password, totp_secret, totp_last_step, created_at, \
    deletion_requested_at";

fn user_from(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(4)?;
    let method: String = row.get(5)?;
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        display_name: row.get(2)?,
        email: row.get(3)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        method: Method::parse(&method),
        password_hash: row.get(6)?,
        password_changed_at: row.get(7)?,
        must_change_password: row.get(8)?,
        totp_secret: row.get(9)?,
        totp_last_step: row.get(10)?,
        created_at: row.get(11)?,
        deletion_requested_at: row.get(12)?,
    })
}

fn project_from(row: &Row<'_>) -> rusqlite::Result<Project> {
    let kind: String = row.get(2)?;
    Ok(Project {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: if kind == "course" { ProjectKind::Course } else { ProjectKind::Project },
        owner: row.get(3)?,
        join_code: row.get(4)?,
        created_at: row.get(5)?,
    })
}

const PROJECT_COLUMNS: &str = "id, name, kind, owner_id, join_code, created_at";

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl AppStore for SqliteStore {
    fn insert_user(&self, u: &User) -> StoreResult<i64> {
        let totp_secret = self.seal(u.totp_secret.as_deref())?;
        let result = self.with(|c| {
            c.execute(
                "INSERT INTO users (name, display_name, email, role, method, password_hash, \
                 password_changed_at, must_change_password, totp_secret, totp_last_step, \
                 created_at, deletion_requested_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                params![
                    u.name,
                    u.display_name,
                    u.email,
                    u.role.as_str(),
                    u.method.as_str(),
                    u.password_hash,
                    u.password_changed_at,
                    u.must_change_password,
                    totp_secret,
                    u.totp_last_step,
                    u.created_at,
                    u.deletion_requested_at
                ],
            )?;
            Ok(c.last_insert_rowid())
        });
        match result {
            Err(StoreError::Database(e)) if unique_violation(&e) => {
                Err(StoreError::Conflict(format!("a user named '{}' exists already", u.name)))
            }
            other => other,
        }
    }

    fn save_user(&self, u: &User) -> StoreResult<()> {
        let totp_secret = self.seal(u.totp_secret.as_deref())?;
        self.with(|c| {
            c.execute(
                "UPDATE users SET display_name=?2, email=?3, role=?4, method=?5, password_hash=?6, \
                 password_changed_at=?7, must_change_password=?8, totp_secret=?9, \
                 totp_last_step=?10, deletion_requested_at=?11 WHERE id=?1",
                params![
                    u.id,
                    u.display_name,
                    u.email,
                    u.role.as_str(),
                    u.method.as_str(),
                    u.password_hash,
                    u.password_changed_at,
                    u.must_change_password,
                    totp_secret,
                    u.totp_last_step,
                    u.deletion_requested_at
                ],
            )
            .map(drop)
        })
    }

    fn claim_totp_step(&self, user: i64, step: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET totp_last_step=?2 \
                 WHERE id=?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![user, step],
            )
            .map(|changed| changed == 1)
        })
    }

    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        let user = self.with(|c| {
            c.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE id=?1"), [id], user_from)
                .optional()
        })?;
        user.map(|u| self.opened(u)).transpose()
    }

    fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let user = self.with(|c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name=?1"),
                [name],
                user_from,
            )
            .optional()
        })?;
        user.map(|u| self.opened(u)).transpose()
    }

    fn users(&self) -> StoreResult<Vec<User>> {
        let users: Vec<User> = self.with(|c| {
            let mut statement =
                c.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
            statement.query_map([], user_from)?.collect()
        })?;
        users.into_iter().map(|u| self.opened(u)).collect()
    }

    fn delete_user(&self, id: i64) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM users WHERE id=?1", [id]).map(drop))
    }

    fn insert_enrolment(&self, token_hash: &str, user: i64, expires: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute_batch("BEGIN")?;
            let result = c
                .execute("DELETE FROM enrolments WHERE user_id=?1 AND used_at IS NULL", [user])
                .and_then(|_| {
                    c.execute(
                        "INSERT INTO enrolments (token_hash, user_id, expires_at) VALUES (?1,?2,?3)",
                        params![token_hash, user, expires],
                    )
                });
            match result {
                Ok(_) => c.execute_batch("COMMIT"),
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
    }

    fn set_pending_credentials(
        &self,
        token_hash: &str,
        password_hash: &str,
        totp_secret: &str,
    ) -> StoreResult<()> {
        let totp_secret = self.seal(Some(totp_secret))?;
        self.with(|c| {
            c.execute(
                "UPDATE enrolments SET pending_password_hash=?2, pending_totp_secret=?3 \
                 WHERE token_hash=?1 AND used_at IS NULL",
                params![token_hash, password_hash, totp_secret],
            )
            .map(drop)
        })
    }

    fn pending_credentials(&self, token_hash: &str) -> StoreResult<Option<(String, String)>> {
        let pending: Option<(String, String)> = self.with(|c| {
            c.query_row(
                "SELECT pending_password_hash, pending_totp_secret FROM enrolments \
                 WHERE token_hash=?1 AND pending_password_hash IS NOT NULL \
                 AND pending_totp_secret IS NOT NULL",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        match pending {
            Some((hash, secret)) => {
                Ok(Some((hash, self.unseal(Some(secret))?.unwrap_or_default())))
            }
            None => Ok(None),
        }
    }

    fn enrolment_user(&self, token_hash: &str, now: i64) -> StoreResult<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT user_id FROM enrolments WHERE token_hash=?1 AND used_at IS NULL \
                 AND expires_at > ?2",
                params![token_hash, now],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn use_enrolment(&self, token_hash: &str, now: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE enrolments SET used_at=?2 WHERE token_hash=?1 AND used_at IS NULL",
                params![token_hash, now],
            )
            .map(|n| n == 1)
        })
    }

    fn insert_session(&self, s: &Session) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf, stage, created_at, last_seen) \
                 VALUES (?1,?2,?3,?4,?5,?6)",
                params![s.id_hash, s.user, s.csrf, s.stage.as_str(), s.created_at, s.last_seen],
            )
            .map(drop)
        })
    }

    fn session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        self.with(|c| {
            c.query_row(
                "SELECT id_hash, user_id, csrf, stage, created_at, last_seen, reauthenticated_at \
                 FROM sessions WHERE id_hash=?1",
                [id_hash],
                |r| {
                    let stage: String = r.get(3)?;
                    Ok(Session {
                        id_hash: r.get(0)?,
                        user: r.get(1)?,
                        csrf: r.get(2)?,
                        stage: Stage::parse(&stage),
                        created_at: r.get(4)?,
                        last_seen: r.get(5)?,
                        reauthenticated_at: r.get(6)?,
                    })
                },
            )
            .optional()
        })
    }

    fn mark_reauthenticated(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sessions SET reauthenticated_at=?2 WHERE id_hash=?1",
                params![id_hash, now],
            )
            .map(drop)
        })
    }

    fn touch_session(&self, id_hash: &str, last_seen: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sessions SET last_seen=?2 WHERE id_hash=?1",
                params![id_hash, last_seen],
            )
            .map(drop)
        })
    }

    fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE id_hash=?1", [id_hash]).map(drop))
    }

    fn delete_sessions_of(&self, user: i64) -> StoreResult<usize> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE user_id=?1", [user]))
    }

    fn delete_other_sessions_of(&self, user: i64, keep: &str) -> StoreResult<usize> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE user_id=?1 AND id_hash<>?2", params![user, keep])
        })
    }

    fn insert_passkey(
        &self,
        user: i64,
        credential_id: &str,
        passkey: &str,
        now: i64,
    ) -> StoreResult<()> {
        let result = self.with(|c| {
            c.execute(
                "INSERT INTO passkeys (credential_id, user_id, passkey, created_at) \
                 VALUES (?1,?2,?3,?4)",
                params![credential_id, user, passkey, now],
            )
            .map(drop)
        });
        match result {
            Err(StoreError::Database(e)) if unique_violation(&e) => {
                Err(StoreError::Conflict("this passkey is registered already".into()))
            }
            other => other,
        }
    }

    fn passkeys(&self, user: i64) -> StoreResult<Vec<(String, String)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT credential_id, passkey FROM passkeys WHERE user_id=?1 ORDER BY created_at",
            )?;
            statement.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    fn update_passkey(&self, credential_id: &str, passkey: &str, now: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE passkeys SET passkey=?2, last_used_at=?3 WHERE credential_id=?1",
                params![credential_id, passkey, now],
            )
            .map(drop)
        })
    }

    fn delete_passkeys(&self, user: i64) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM passkeys WHERE user_id=?1", [user]).map(drop))
    }

    fn record_terms(&self, user: i64, version: u32, now: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO terms_acceptances (user_id, version, accepted_at) VALUES (?1,?2,?3) \
                 ON CONFLICT (user_id, version) DO UPDATE SET accepted_at = excluded.accepted_at",
                params![user, version, now],
            )
            .map(drop)
        })
    }

    fn accepted_terms(&self, user: i64) -> StoreResult<Option<u32>> {
        self.with(|c| {
            c.query_row(
                "SELECT MAX(version) FROM terms_acceptances WHERE user_id=?1",
                [user],
                |r| r.get(0),
            )
        })
    }

    fn terms_history(&self, user: i64) -> StoreResult<Vec<(u32, i64)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT version, accepted_at FROM terms_acceptances WHERE user_id=?1 \
                 ORDER BY accepted_at",
            )?;
            statement.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    fn insert_project(&self, p: &Project) -> StoreResult<i64> {
        let result = self.with(|c| {
            c.execute(
                "INSERT INTO projects (name, kind, owner_id, join_code, created_at) \
                 VALUES (?1,?2,?3,?4,?5)",
                params![p.name, p.kind.as_str(), p.owner, p.join_code, p.created_at],
            )?;
            Ok(c.last_insert_rowid())
        });
        match result {
            Err(StoreError::Database(e)) if unique_violation(&e) => {
                Err(StoreError::Conflict(format!("a project named '{}' exists already", p.name)))
            }
            other => other,
        }
    }

    fn project(&self, id: i64) -> StoreResult<Option<Project>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id=?1"),
                [id],
                project_from,
            )
            .optional()
        })
    }

    fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE name=?1"),
                [name],
                project_from,
            )
            .optional()
        })
    }

    fn project_by_join_code(&self, code: &str) -> StoreResult<Option<Project>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE join_code=?1"),
                [code],
                project_from,
            )
            .optional()
        })
    }

    fn projects_of(&self, user: i64) -> StoreResult<Vec<Project>> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {PROJECT_COLUMNS} FROM projects WHERE owner_id=?1 OR id IN \
                 (SELECT project_id FROM project_members WHERE user_id=?1) ORDER BY name"
            ))?;
            statement.query_map([user], project_from)?.collect()
        })
    }

    fn add_member(&self, project: i64, user: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO project_members (project_id, user_id) VALUES (?1,?2) \
                 ON CONFLICT DO NOTHING",
                params![project, user],
            )
            .map(drop)
        })
    }

    fn members(&self, project: i64) -> StoreResult<Vec<i64>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT user_id FROM project_members WHERE project_id=?1 ORDER BY user_id",
            )?;
            statement.query_map([project], |r| r.get(0))?.collect()
        })
    }

    fn add_grant(&self, project: i64, datastore: &str, variable: Option<&str>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO grants (project_id, datastore, variable) VALUES (?1,?2,?3) \
                 ON CONFLICT DO NOTHING",
                params![project, datastore, variable.unwrap_or("")],
            )
            .map(drop)
        })
    }

    fn grants(&self, project: i64) -> StoreResult<Vec<(String, Option<String>)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT datastore, variable FROM grants WHERE project_id=?1 \
                 ORDER BY datastore, variable",
            )?;
            statement
                .query_map([project], |r| {
                    let variable: String = r.get(1)?;
                    Ok((r.get(0)?, (!variable.is_empty()).then_some(variable)))
                })?
                .collect()
        })
    }

    fn installation_secret(&self) -> StoreResult<String> {
        let fresh: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO secrets (name, value) VALUES ('installation', ?1) ON CONFLICT DO NOTHING",
                [&fresh],
            )?;
            c.query_row("SELECT value FROM secrets WHERE name='installation'", [], |r| r.get(0))
        })
    }

    fn files(&self, area: &str) -> StoreResult<Vec<StoredFile>> {
        self.with(|c| {
            c.prepare(
                "SELECT name, bytes, updated_at, updated_by FROM files WHERE area=?1 ORDER BY name",
            )?
            .query_map([area], |r| {
                Ok(StoredFile {
                    name: r.get(0)?,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                    updated_at: r.get(2)?,
                    updated_by: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    fn read_file(&self, area: &str, name: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT content FROM files WHERE area=?1 AND name=?2", [area, name], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn write_file(
        &self,
        area: &str,
        file: &StoredFile,
        content: &str,
        limit: u64,
    ) -> StoreResult<Saved> {
        self.with(|c| {
            let used: i64 = c.query_row(
                "SELECT COALESCE(SUM(bytes), 0) FROM files WHERE area=?1 AND name<>?2",
                [area, &file.name],
                |r| r.get(0),
            )?;
            let used = used.max(0) as u64;
            if used + file.bytes > limit {
                return Ok(Saved::OverLimit { used });
            }
            c.execute(
                "INSERT INTO files (area, name, content, bytes, updated_at, updated_by) \
                 VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT (area, name) DO UPDATE SET \
                 content=excluded.content, bytes=excluded.bytes, \
                 updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                params![
                    area,
                    file.name,
                    content,
                    file.bytes as i64,
                    file.updated_at,
                    file.updated_by
                ],
            )?;
            Ok(Saved::Saved)
        })
    }

    fn delete_file(&self, area: &str, name: &str) -> StoreResult<bool> {
        self.with(|c| {
            c.execute("DELETE FROM files WHERE area=?1 AND name=?2", [area, name]).map(|n| n > 0)
        })
    }

    fn delete_area(&self, area: &str) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM files WHERE area=?1", [area]).map(drop))
    }

    fn insert_token(&self, t: &AccessToken, token_hash: &str) -> StoreResult<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO access_tokens (user_id, name, token_hash, created_at, expires_at) \
                 VALUES (?1,?2,?3,?4,?5)",
                params![t.user, t.name, token_hash, t.created_at, t.expires_at],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn use_token(&self, token_hash: &str, now: i64) -> StoreResult<Option<AccessToken>> {
        self.with(|c| {
            c.query_row(
                "UPDATE access_tokens SET last_used_at=?2 WHERE token_hash=?1 AND expires_at>?2 \
                 RETURNING id, user_id, name, created_at, expires_at, last_used_at",
                params![token_hash, now],
                token_from,
            )
            .optional()
        })
    }

    fn tokens_of(&self, user: i64) -> StoreResult<Vec<AccessToken>> {
        self.with(|c| {
            c.prepare(
                "SELECT id, user_id, name, created_at, expires_at, last_used_at \
                 FROM access_tokens WHERE user_id=?1 ORDER BY id",
            )?
            .query_map([user], token_from)?
            .collect()
        })
    }

    fn delete_token(&self, user: i64, id: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute("DELETE FROM access_tokens WHERE user_id=?1 AND id=?2", [user, id])
                .map(|n| n > 0)
        })
    }
}

fn token_from(row: &Row<'_>) -> rusqlite::Result<AccessToken> {
    Ok(AccessToken {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}
