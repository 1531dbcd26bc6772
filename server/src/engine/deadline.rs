//! The run's time limit, seen from inside a command.
//!
//! The engine's timeout fires only at an await point; an estimator iterating on the CPU never
//! reaches one, so a run over its limit would go on until the estimator gave up by itself.
//! The deadline is set as a task-local for each command's future, and long loops ask
//! [`expired`] between iterations and stop early; the engine then reports the time limit, not
//! the estimator's failure to converge. A job cancelled by its owner expires the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

tokio::task_local! {
    static DEADLINE: (Instant, Arc<AtomicBool>);
}

/// Runs `command` with `deadline` and the job's cancellation flag visible to [`expired`] in
/// every poll.
pub(super) async fn within<F: Future>(
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
    command: F,
) -> F::Output {
    DEADLINE.scope((deadline, cancelled), command).await
}

/// The same, for synchronous code (tests and callers outside a task).
#[cfg(test)]
pub(super) fn within_sync<R>(deadline: Instant, work: impl FnOnce() -> R) -> R {
    DEADLINE.sync_scope((deadline, Arc::default()), work)
}

/// Whether the current command is past the run's time limit or its job was cancelled.
/// Outside a run (no deadline set) nothing expires.
pub(crate) fn expired() -> bool {
    DEADLINE
        .try_with(|(deadline, cancelled)| {
            Instant::now() > *deadline || cancelled.load(Ordering::Relaxed)
        })
        .unwrap_or(false)
}

/// Completes once `cancelled` is set: the engine races each command against it, so a scan
/// waiting on I/O stops too.
pub(super) async fn cancellation(cancelled: &AtomicBool) {
    while !cancelled.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
