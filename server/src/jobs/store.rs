//! Job records in the application database. `JobStore` is the interface (PostgreSQL can serve
//! the same statements later); `SqliteStore` implements it beside accounts and projects.
//!
//! A job's outputs are stored only as [`StoredOutputs`], which only released outputs make, so
//! nothing unreleased can reach the table.

use rusqlite::{OptionalExtension, Row, params};
use shared::api::{JobKind, JobState, JobSummary};

use crate::disclosure::Released;
use crate::identity::SqliteStore;
use crate::identity::store::StoreResult;

/// Released outputs as the gate produced them, in the JSON the API sends. Made only from
/// [`Released`] values, and read back from the store; never from what a client sent.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredOutputs(String);

impl StoredOutputs {
    pub fn of(outputs: &[Released]) -> StoredOutputs {
        // Released outputs are plain data; serialising them cannot fail.
        StoredOutputs(serde_json::to_string(outputs).unwrap_or_else(|_| "[]".into()))
    }

    pub fn json(&self) -> &str {
        &self.0
    }

    /// The outputs as the app and the CLI read them.
    pub fn outputs(&self) -> Vec<shared::output::Output> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

/// A job to insert: who runs what, where.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// `user:ID` or `guest:…`: whose limits and listing the job counts in.
    pub owner: String,
    pub user_id: Option<i64>,
    pub project: Option<String>,
    pub kind: JobKind,
    pub script: String,
    pub state: JobState,
    pub now_ms: i64,
}

/// A job as stored.
#[derive(Clone, Debug)]
pub struct JobRecord {
    pub summary: JobSummary,
    pub owner: String,
    pub user_id: Option<i64>,
    pub script: String,
    /// Present once the job finished with outputs.
    pub outputs: Option<StoredOutputs>,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub struct Finish {
    pub state: JobState,
    pub error: Option<String>,
    pub outputs: StoredOutputs,
    pub datastores: Vec<String>,
    pub now_ms: i64,
}

/// What a start of the server found of jobs the last one left unfinished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Batch jobs put back in the queue, to run again from the start.
    pub requeued: usize,
    /// Jobs marked failed: interactive runs (their workspace is gone), and batch jobs that
    /// had been started `max_attempts` times.
    pub failed: usize,
}

pub trait JobStore: Send + Sync {
    fn insert_job(&self, job: &NewJob) -> StoreResult<i64>;
    fn job(&self, id: i64) -> StoreResult<Option<JobRecord>>;
    /// The owner's newest jobs, at most `limit`, without script or outputs.
    fn jobs_of(&self, owner: &str, limit: u32) -> StoreResult<Vec<JobSummary>>;
    /// The owner's jobs of `kind` in `state`.
    fn count_jobs(&self, owner: &str, kind: JobKind, state: JobState) -> StoreResult<u32>;
    /// Takes the oldest queued batch job whose owner runs fewer than `per_owner` batch jobs,
    /// marking it running: one statement, so two workers cannot take the same job.
    fn claim_job(&self, per_owner: u32, now_ms: i64) -> StoreResult<Option<JobRecord>>;
    fn set_progress(&self, id: i64, step: u32, steps: u32, command: &str) -> StoreResult<()>;
    /// Records the end of a running job; false when it was not running (cancelled while
    /// queued, or finished already).
    fn finish_job(&self, id: i64, finish: &Finish) -> StoreResult<bool>;
    /// Asks a job to stop: a queued job is cancelled at once, a running one is flagged for its
    /// worker. None when the owner has no such job; else the state after the request.
    fn cancel_job(&self, id: i64, owner: &str, now_ms: i64) -> StoreResult<Option<JobState>>;
    fn cancel_requested(&self, id: i64) -> StoreResult<bool>;
    /// Puts a running job back in the queue, its start given back: a stopping server cut it
    /// short. False when it was not running.
    fn requeue_job(&self, id: i64) -> StoreResult<bool>;
    /// At start: running jobs belong to a server that is gone.
    fn recover_jobs(&self, max_attempts: u32, now_ms: i64) -> StoreResult<Recovered>;
    /// Deletes the records of guests' runs that finished before `before_ms` (no one can list
    /// them; the audit log keeps what they released). Returns how many.
    fn forget_guest_runs(&self, before_ms: i64) -> StoreResult<usize>;
}

const SUMMARY_COLUMNS: &str = "id, kind, state, project, script_sha256, datastores, step, steps, \
    command, submitted_at, started_at, finished_at, error, attempts, cancel_requested";

fn summary_from(row: &Row<'_>) -> rusqlite::Result<JobSummary> {
    let kind: String = row.get(1)?;
    let state: String = row.get(2)?;
    let datastores: String = row.get(5)?;
    Ok(JobSummary {
        id: row.get(0)?,
        kind: if kind == "batch" { JobKind::Batch } else { JobKind::Interactive },
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        project: row.get(3)?,
        script_sha256: row.get(4)?,
        datastores: datastores.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        step: row.get(6)?,
        steps: row.get(7)?,
        command: row.get(8)?,
        submitted_at: row.get(9)?,
        started_at: row.get(10)?,
        finished_at: row.get(11)?,
        error: row.get(12)?,
        attempts: row.get(13)?,
        cancel_requested: row.get::<_, i64>(14)? != 0,
    })
}

fn record_from(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        summary: summary_from(row)?,
        owner: row.get(15)?,
        user_id: row.get(16)?,
        script: row.get(17)?,
        outputs: row.get::<_, Option<String>>(18)?.map(StoredOutputs),
    })
}

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Interactive => "interactive",
        JobKind::Batch => "batch",
    }
}

/// SHA-256 of a script, hex: what the job, the audit log and a published script share.
pub fn script_sha256(script: &str) -> String {
    crate::identity::sha256_hex(script)
}

impl JobStore for SqliteStore {
    fn insert_job(&self, job: &NewJob) -> StoreResult<i64> {
        let started = (job.state == JobState::Running).then_some(job.now_ms);
        let attempts = u32::from(job.state == JobState::Running);
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs (owner, user_id, project, kind, script, script_sha256, state, \
                 submitted_at, started_at, attempts) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    job.owner,
                    job.user_id,
                    job.project,
                    kind_name(job.kind),
                    job.script,
                    script_sha256(&job.script),
                    job.state.as_str(),
                    job.now_ms,
                    started,
                    attempts,
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn job(&self, id: i64) -> StoreResult<Option<JobRecord>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, owner, user_id, script, outputs FROM jobs WHERE id=?1"
                ),
                [id],
                record_from,
            )
            .optional()
        })
    }

    fn jobs_of(&self, owner: &str, limit: u32) -> StoreResult<Vec<JobSummary>> {
        self.with(|c| {
            c.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM jobs WHERE owner=?1 ORDER BY id DESC LIMIT ?2"
            ))?
            .query_map(params![owner, limit], summary_from)?
            .collect()
        })
    }

    fn count_jobs(&self, owner: &str, kind: JobKind, state: JobState) -> StoreResult<u32> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM jobs WHERE owner=?1 AND kind=?2 AND state=?3",
                params![owner, kind_name(kind), state.as_str()],
                |r| r.get(0),
            )
        })
    }

    fn claim_job(&self, per_owner: u32, now_ms: i64) -> StoreResult<Option<JobRecord>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "UPDATE jobs SET state='running', started_at=?2, attempts=attempts+1, \
                     step=0, steps=0, command='' \
                     WHERE id = (SELECT q.id FROM jobs q WHERE q.state='queued' AND q.kind='batch' \
                       AND (SELECT COUNT(*) FROM jobs r WHERE r.owner=q.owner AND \
                            r.state='running' AND r.kind='batch') < ?1 \
                       ORDER BY q.id LIMIT 1) AND state='queued' \
                     RETURNING {SUMMARY_COLUMNS}, owner, user_id, script, outputs"
                ),
                params![per_owner, now_ms],
                record_from,
            )
            .optional()
        })
    }

    fn set_progress(&self, id: i64, step: u32, steps: u32, command: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET step=?2, steps=?3, command=?4 WHERE id=?1 AND state='running'",
                params![id, step, steps, command],
            )
            .map(drop)
        })
    }

    fn finish_job(&self, id: i64, f: &Finish) -> StoreResult<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state=?2, error=?3, outputs=?4, datastores=?5, finished_at=?6 \
                 WHERE id=?1 AND state='running'",
                params![
                    id,
                    f.state.as_str(),
                    f.error,
                    f.outputs.json(),
                    f.datastores.join(","),
                    f.now_ms
                ],
            )
            .map(|n| n == 1)
        })
    }

    fn cancel_job(&self, id: i64, owner: &str, now_ms: i64) -> StoreResult<Option<JobState>> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state='cancelled', finished_at=?3, error='cancelled by its owner' \
                 WHERE id=?1 AND owner=?2 AND state='queued'",
                params![id, owner, now_ms],
            )?;
            c.execute(
                "UPDATE jobs SET cancel_requested=1 WHERE id=?1 AND owner=?2 AND state='running'",
                params![id, owner],
            )?;
            let state: Option<String> = c
                .query_row(
                    "SELECT state FROM jobs WHERE id=?1 AND owner=?2",
                    params![id, owner],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(state.and_then(|s| JobState::parse(&s)))
        })
    }

    fn cancel_requested(&self, id: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.query_row("SELECT cancel_requested FROM jobs WHERE id=?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.unwrap_or(0) != 0)
        })
    }

    fn requeue_job(&self, id: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state='queued', step=0, steps=0, command='', started_at=NULL, \
                 attempts=MAX(attempts-1, 0) WHERE id=?1 AND state='running'",
                [id],
            )
            .map(|n| n == 1)
        })
    }

    fn recover_jobs(&self, max_attempts: u32, now_ms: i64) -> StoreResult<Recovered> {
        self.with(|c| {
            let failed_interactive = c.execute(
                "UPDATE jobs SET state='failed', finished_at=?1, error='the server stopped during \
                 the run, and the workspace it ran in is gone: run the script again' \
                 WHERE state='running' AND kind='interactive'",
                [now_ms],
            )?;
            let cancelled = c.execute(
                "UPDATE jobs SET state='cancelled', finished_at=?1, error='cancelled by its owner' \
                 WHERE state='running' AND kind='batch' AND cancel_requested=1",
                [now_ms],
            )?;
            let failed_batch = c.execute(
                "UPDATE jobs SET state='failed', finished_at=?1, error='the server stopped during \
                 this job ' || attempts || ' times: it is not started again (split the script, \
                 or ask your data steward)' \
                 WHERE state='running' AND kind='batch' AND attempts>=?2",
                params![now_ms, max_attempts],
            )?;
            let requeued = c.execute(
                "UPDATE jobs SET state='queued', step=0, steps=0, command='' \
                 WHERE state='running' AND kind='batch'",
                [],
            )?;
            Ok(Recovered { requeued, failed: failed_interactive + failed_batch + cancelled })
        })
    }

    fn forget_guest_runs(&self, before_ms: i64) -> StoreResult<usize> {
        self.with(|c| {
            c.execute(
                "DELETE FROM jobs WHERE user_id IS NULL AND kind='interactive' \
                 AND state IN ('done', 'failed', 'cancelled') AND finished_at < ?1",
                [before_ms],
            )
        })
    }
}
