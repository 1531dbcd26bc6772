//! Jobs: every script run is one, stored in the application database with its released
//! outputs.
//!
//! A run from the workbench is an *interactive* job: the request runs it in the user's
//! workspace and answers with its outputs, and the record keeps them. A *batch* job is queued
//! and run by one of a bounded pool of worker threads, in a fresh workspace with the project's
//! grants of the moment, and lives on after its owner signs out. When the server stops (even by
//! `kill -9`), the next start puts the batch jobs it was running back in the queue, to run
//! again from the start: a run's outputs are deterministic (cell-key noise is keyed by the
//! contributors), so the rerun releases what the first attempt would have. An interactive run
//! cannot be rerun (its workspace is gone) and is marked failed with that reason.
//!
//! Workers take jobs with one conditional update (`JobStore::claim_job`), so several workers,
//! and later several servers on one database, never take the same job.

pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shared::api::{JobKind, JobState, JobSummary};

pub use store::{Finish, JobRecord, JobStore, NewJob, Recovered, StoredOutputs, script_sha256};

use crate::AppState;
use crate::disclosure::Released;
use crate::engine::{Progress, RunControl, Workspace};
use crate::identity::{AuthError, User};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Batch jobs running at once on this server; 0: one per core.
    pub workers: usize,
    /// Batch jobs one user may have waiting in the queue.
    pub max_queued_per_user: u32,
    /// Batch jobs of one user running at once; the rest wait.
    pub max_running_per_user: u32,
    /// Starts of one job (restarts of the server during it count) before it is failed.
    pub max_attempts: u32,
    /// Hours the records of guests' runs are kept after they finish (guests have no job
    /// list; what they released is in the audit log). Signed-in users' jobs are kept.
    pub keep_guest_runs_hours: u32,
    /// Seconds a stopping server (SIGTERM, Ctrl-C) lets its running batch jobs go on; what is
    /// still running then stops at its next command and goes back to the queue.
    pub shutdown_grace_seconds: u32,
}

impl Default for JobSettings {
    fn default() -> JobSettings {
        JobSettings {
            workers: 0,
            max_queued_per_user: 20,
            max_running_per_user: 2,
            max_attempts: 3,
            keep_guest_runs_hours: 24,
            shutdown_grace_seconds: 20,
        }
    }
}

/// The jobs of one server: who is working, and the cancellation flags of the runs in progress.
pub struct Jobs {
    pub settings: JobSettings,
    /// Bumped when a job is queued; idle workers wait on it.
    queued: (Mutex<u64>, Condvar),
    running: Mutex<HashMap<i64, Running>>,
    /// Progress streams open per owner (each reads the database every second or so).
    followers: Mutex<HashMap<String, u32>>,
    stopping: AtomicBool,
    /// Set when a stopping server cuts its running jobs short ([`Jobs::drain`]).
    interrupting: AtomicBool,
}

/// Progress streams one owner may have open at once: a Jobs page opens at most three.
pub const FOLLOWERS_PER_OWNER: u32 = 8;

/// One open progress stream of an owner; closing it makes room for another.
pub struct Follower {
    jobs: Arc<Jobs>,
    owner: String,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut open = self.jobs.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// A run going on in this process: its cancellation flag, and its progress for the streams
/// that follow it (`GET /api/jobs/{id}/progress`), step by step.
struct Running {
    cancelled: Arc<AtomicBool>,
    progress: tokio::sync::watch::Sender<Option<Progress>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// How often a running job's progress is written to the database (the stream of a job in
/// this process sees every step).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// An idle worker looks at the queue at least this often (a job queued by another process).
const POLL: Duration = Duration::from_secs(2);
/// How often guests' old run records are deleted.
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Unix milliseconds: job times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error(
        "you have {0} batch jobs waiting already (max_queued_per_user): wait for one to finish, or cancel one"
    )]
    QueueFull(u32),
}

impl Jobs {
    pub fn new(settings: JobSettings) -> Jobs {
        Jobs {
            settings,
            queued: (Mutex::new(0), Condvar::new()),
            running: Mutex::default(),
            followers: Mutex::default(),
            stopping: AtomicBool::new(false),
            interrupting: AtomicBool::new(false),
        }
    }

    /// Worker threads this server starts.
    pub fn workers(&self) -> usize {
        match self.settings.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    fn wake(&self) {
        let (count, ready) = &self.queued;
        *count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        ready.notify_all();
    }

    fn wait_for_work(&self, seen: &mut u64) {
        let (count, ready) = &self.queued;
        let guard = count.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = ready
            .wait_timeout_while(guard, POLL, |c| *c == *seen && !self.stopping())
            .unwrap_or_else(|p| p.into_inner());
        *seen = *guard;
    }

    /// Lets the workers finish the job in hand and take no other.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The graceful stop: no job is taken any more, the runs in hand have `grace` to end, and
    /// those still going then stop at their next command and go back to the queue (see
    /// `run_batch_job`), to run again from the start at the next start or on another server.
    /// Returns how many were cut short. A command that outlasts `wait` more is left to the exit;
    /// the next start puts its job back in the queue, as after a crash.
    pub fn drain(&self, grace: Duration, wait: Duration) -> usize {
        self.stop();
        let idle = || self.running.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        let until = |deadline: Instant| {
            while !idle() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        until(Instant::now() + grace);
        let cut = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            self.interrupting.store(true, Ordering::SeqCst);
            running.values().for_each(|r| r.cancelled.store(true, Ordering::SeqCst));
            running.len()
        };
        until(Instant::now() + wait);
        cut
    }

    fn interrupting(&self) -> bool {
        self.interrupting.load(Ordering::SeqCst)
    }

    /// The cancellation flag of a run that starts now in this process.
    pub fn register(&self, id: i64) -> Arc<AtomicBool> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (progress, _) = tokio::sync::watch::channel(None);
        let running = Running { cancelled: cancelled.clone(), progress };
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, running);
        cancelled
    }

    /// A place for one more progress stream of `owner`; `None` when they have
    /// [`FOLLOWERS_PER_OWNER`] open, so that streams cannot pile up without bound.
    pub fn open_follower(self: &Arc<Self>, owner: &str) -> Option<Follower> {
        let mut open = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(owner.to_owned()).or_default();
        if *n >= FOLLOWERS_PER_OWNER {
            return None;
        }
        *n += 1;
        Some(Follower { jobs: self.clone(), owner: owner.to_owned() })
    }

    /// Tells those following run `id` of this process that it has reached `progress`.
    pub fn publish(&self, id: i64, progress: &Progress) {
        if let Some(running) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            running.progress.send_replace(Some(progress.clone()));
        }
    }

    /// The progress of run `id` step by step, while it runs in this process; `None` for a
    /// job queued, finished or running in another process (its record says how far it is).
    pub fn follow(&self, id: i64) -> Option<tokio::sync::watch::Receiver<Option<Progress>>> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(&id).map(|r| r.progress.subscribe())
    }

    pub fn unregister(&self, id: i64) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Stops a run of this process now (one of another process sees the database's flag at
    /// its next progress).
    fn cancel_here(&self, id: i64) {
        if let Some(running) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            running.cancelled.store(true, Ordering::SeqCst);
        }
    }
}

/// The owner key of a signed-in user's jobs.
pub fn owner_of(user: &User) -> String {
    format!("user:{}", user.id)
}

/// Queues `script` as a batch job of `user` in `project` (their only project when `None`).
pub fn submit(
    state: &AppState,
    user: &User,
    project: Option<String>,
    script: String,
) -> Result<JobSummary, SubmitError> {
    let (project, _grants) = state.identity.project_for_run(user, project)?;
    let owner = owner_of(user);
    let store = &state.identity.store;
    let queued =
        store.count_jobs(&owner, JobKind::Batch, JobState::Queued).map_err(AuthError::from)?;
    if queued >= state.jobs.settings.max_queued_per_user {
        return Err(SubmitError::QueueFull(queued));
    }
    let job = NewJob {
        owner,
        user_id: Some(user.id),
        project: Some(project),
        kind: JobKind::Batch,
        script,
        state: JobState::Queued,
        now_ms: now_ms(),
    };
    let id = store.insert_job(&job).map_err(AuthError::from)?;
    state.jobs.wake();
    tracing::info!(job = id, user = %user.name, "batch job queued");
    let record = store.job(id).map_err(AuthError::from)?;
    record.map(|r| r.summary).ok_or_else(|| {
        SubmitError::Auth(AuthError::NotFound(format!("job {id} vanished as it was queued")))
    })
}

/// Cancels a job of `user`: None when they have no such job.
pub fn cancel(state: &AppState, owner: &str, id: i64) -> Result<Option<JobState>, AuthError> {
    let after = state.identity.store.cancel_job(id, owner, now_ms())?;
    if after == Some(JobState::Running) {
        state.jobs.cancel_here(id);
    }
    Ok(after)
}

impl Finish {
    /// A job that ended before any output, for `reason`.
    fn failed(reason: String) -> Finish {
        Finish {
            state: JobState::Failed,
            error: Some(reason),
            outputs: StoredOutputs::of(&[]),
            datastores: Vec::new(),
            now_ms: now_ms(),
        }
    }
}

/// How a run's outputs end its job: cancelled when its owner stopped it, failed when its last
/// output is an error (the first failure stops a run), else done.
pub fn finish_of(outputs: &[Released], cancelled: bool, datastores: Vec<String>) -> Finish {
    let error = outputs.last().and_then(|o| o.output().error_message()).map(str::to_owned);
    let state = match (&error, cancelled) {
        (_, true) => JobState::Cancelled,
        (Some(_), false) => JobState::Failed,
        (None, false) => JobState::Done,
    };
    Finish { state, error, outputs: StoredOutputs::of(outputs), datastores, now_ms: now_ms() }
}

/// At start: finds the jobs a stopped server left running, and starts the worker threads. The
/// workers run until [`Jobs::stop`].
pub fn start(state: &AppState, runtime: tokio::runtime::Handle) -> std::io::Result<Recovered> {
    let recovered = state
        .identity
        .store
        .recover_jobs(state.jobs.settings.max_attempts, now_ms())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if recovered != Recovered::default() {
        tracing::warn!(
            requeued = recovered.requeued,
            failed = recovered.failed,
            "jobs left running by the last server"
        );
    }
    for n in 0..state.jobs.workers() {
        let state = state.clone();
        let runtime = runtime.clone();
        std::thread::Builder::new()
            .name(format!("skjold-job-{n}"))
            .spawn(move || work(&state, &runtime))?;
    }
    let state = state.clone();
    std::thread::Builder::new()
        .name("skjold-job-retention".into())
        .spawn(move || forget_old_guest_runs(&state))?;
    Ok(recovered)
}

/// Deletes guests' run records past `keep_guest_runs_hours`, at start and every hour, until
/// the server stops. Without it every anonymous run would stay in the database for ever.
fn forget_old_guest_runs(state: &AppState) {
    let keep = i64::from(state.jobs.settings.keep_guest_runs_hours) * 3_600_000;
    let mut seen = 0;
    while !state.jobs.stopping() {
        match state.identity.store.forget_guest_runs(now_ms() - keep) {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "forgot guests' old runs"),
            Err(e) => tracing::warn!(error = %e, "cannot forget guests' old runs"),
        }
        let next = Instant::now() + FORGET_EVERY;
        while Instant::now() < next && !state.jobs.stopping() {
            state.jobs.wait_for_work(&mut seen);
        }
    }
}

fn work(state: &AppState, runtime: &tokio::runtime::Handle) {
    let mut seen = 0;
    while !state.jobs.stopping() {
        let per_owner = state.jobs.settings.max_running_per_user;
        match state.identity.store.claim_job(per_owner, now_ms()) {
            Ok(Some(job)) => {
                let id = job.summary.id;
                // A panic is our bug: the job fails with it, and the worker goes on.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_batch_job(state, runtime, &job)
                }));
                if ran.is_err() {
                    tracing::error!(job = id, "a batch job panicked");
                    let finish = Finish::failed("internal error; it has been logged".into());
                    let _ = state.identity.store.finish_job(id, &finish);
                }
                state.jobs.unregister(id);
            }
            Ok(None) => state.jobs.wait_for_work(&mut seen),
            Err(e) => {
                tracing::error!(error = %e, "cannot take a job from the queue");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Runs one claimed batch job to its end and records it.
fn run_batch_job(state: &AppState, runtime: &tokio::runtime::Handle, job: &JobRecord) {
    let id = job.summary.id;
    let store = &state.identity.store;
    let cancelled = state.jobs.register(id);
    let started = Instant::now();
    let who = (|| -> Result<(User, Workspace), AuthError> {
        let user = job
            .user_id
            .and_then(|u| store.user(u).transpose())
            .transpose()?
            .ok_or_else(|| AuthError::NotFound("the job's account was deleted".into()))?;
        let project = job.summary.project.clone();
        // The grants of now: a steward may have changed them since the job was queued.
        let (_, grants) = state.identity.project_for_run(&user, project)?;
        let mut workspace = Workspace::with_grants(grants);
        // The owner's disclosure memory, shared with their workspaces and other jobs.
        workspace.set_memory(state.memories.of(&job.owner)?);
        Ok((user, workspace))
    })();
    let (user, mut workspace) = match who {
        Ok(w) => w,
        Err(e) => {
            let _ = store.finish_job(id, &Finish::failed(format!("the job could not start: {e}")));
            return;
        }
    };
    let last_write = Mutex::new(None::<Instant>);
    let progress = |p: Progress| {
        state.jobs.publish(id, &p);
        let mut last = last_write.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || p.step == p.of;
        if !due {
            return;
        }
        *last = Some(Instant::now());
        let steps = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if let Err(e) = store.set_progress(id, steps(p.step), steps(p.of), &p.command) {
            tracing::warn!(job = id, error = %e, "cannot record a job's progress");
        }
        // Cancelled from another process: the flag is in the database.
        if store.cancel_requested(id).unwrap_or(false) {
            cancelled.store(true, Ordering::SeqCst);
        }
    };
    let control = RunControl { progress: &progress, cancelled: cancelled.clone() };
    let (outputs, _) = runtime.block_on(state.engine.run_controlled(
        &mut workspace,
        &job.script,
        state.audit.as_ref(),
        &user.name,
        &control,
    ));
    if let Err(e) = state.memories.save(&job.owner) {
        tracing::error!(job = id, error = %e, "cannot save the disclosure memory; it is kept in memory");
    }
    // Cut short by a stopping server, not by its owner: back to the queue, its start given
    // back (a graceful stop is no crash, which max_attempts counts).
    let cut_short = state.jobs.interrupting()
        && cancelled.load(Ordering::SeqCst)
        && !store.cancel_requested(id).unwrap_or(false);
    if cut_short {
        match store.requeue_job(id) {
            Ok(_) => tracing::info!(job = id, "batch job cut short by the stop; queued again"),
            Err(e) => {
                tracing::error!(job = id, error = %e, "cannot queue a cut-short job again; the next start will")
            }
        }
        return;
    }
    let finish =
        finish_of(&outputs, cancelled.load(Ordering::SeqCst), workspace.bound_datastores());
    tracing::info!(
        job = id,
        state = finish.state.as_str(),
        outputs = outputs.len(),
        seconds = started.elapsed().as_secs_f64(),
        "batch job finished"
    );
    if let Err(e) = store.finish_job(id, &finish) {
        // The outputs were released (and audited) but not kept: the job stays running and the
        // next start runs it again, so they are not lost.
        tracing::error!(job = id, error = %e, "cannot record a finished job");
    }
}

#[cfg(test)]
mod tests;
