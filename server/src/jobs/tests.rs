use std::collections::BTreeSet;

use super::*;
use crate::identity::SqliteStore;

fn queued(store: &SqliteStore, owner: &str, script: &str) -> i64 {
    let job = NewJob {
        owner: owner.into(),
        user_id: None,
        project: Some("p".into()),
        kind: JobKind::Batch,
        script: script.into(),
        state: JobState::Queued,
        now_ms: 1,
    };
    store.insert_job(&job).unwrap()
}

fn done(store: &SqliteStore, id: i64) {
    let finish = Finish {
        state: JobState::Done,
        error: None,
        outputs: StoredOutputs::of(&[]),
        datastores: vec!["demo@1".into()],
        now_ms: 2,
    };
    assert!(store.finish_job(id, &finish).unwrap());
}

/// Guards the queue's one promise to workers: a job is taken once, however many workers ask
/// at the same moment (here 4 threads over one file-backed database, 60 jobs of 3 owners).
#[test]
fn concurrent_workers_take_every_job_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let sealer = || crate::identity::sealed::Sealer::new([7; 32]);
    let store = SqliteStore::open(&path, sealer()).unwrap();
    for i in 0..60 {
        queued(&store, &format!("user:{}", i % 3), &format!("-- job {i}"));
    }
    let taken: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                // Each worker its own connection, as separate processes would have.
                let store = SqliteStore::open(&path, sealer()).unwrap();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(job) = store.claim_job(100, 5).unwrap() {
                        assert_eq!(job.summary.state, JobState::Running);
                        assert_eq!(job.summary.attempts, 1);
                        done(&store, job.summary.id);
                        mine.push(job.summary.id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let distinct: BTreeSet<i64> = taken.iter().copied().collect();
    assert_eq!((taken.len(), distinct.len()), (60, 60));
}

#[test]
fn an_owner_runs_at_most_their_share_and_the_others_go_ahead() {
    let store = SqliteStore::in_memory().unwrap();
    let a1 = queued(&store, "user:1", "a1");
    let a2 = queued(&store, "user:1", "a2");
    let a3 = queued(&store, "user:1", "a3");
    let b1 = queued(&store, "user:2", "b1");
    let claim = || store.claim_job(2, 10).unwrap().map(|j| j.summary.id);
    assert_eq!(claim(), Some(a1));
    assert_eq!(claim(), Some(a2));
    // user:1 runs two already: user:2's later job goes first.
    assert_eq!(claim(), Some(b1));
    assert_eq!(claim(), None);
    done(&store, a1);
    assert_eq!(claim(), Some(a3));
    assert_eq!(store.count_jobs("user:1", JobKind::Batch, JobState::Running).unwrap(), 2);
}

#[test]
fn a_restart_requeues_batch_jobs_and_fails_what_cannot_run_again() {
    let store = SqliteStore::in_memory().unwrap();
    let batch = queued(&store, "user:1", "batch");
    let tired = queued(&store, "user:1", "tired");
    let cancelled = queued(&store, "user:2", "cancelled");
    let interactive = store
        .insert_job(&NewJob {
            owner: "user:3".into(),
            user_id: None,
            project: None,
            kind: JobKind::Interactive,
            script: "x".into(),
            state: JobState::Running,
            now_ms: 1,
        })
        .unwrap();
    for _ in 0..3 {
        store.claim_job(10, 2).unwrap().unwrap();
    }
    // `tired` has been started twice before: this was its third start.
    store.with(|c| c.execute("UPDATE jobs SET attempts=3 WHERE id=?1", [tired])).unwrap();
    assert_eq!(store.cancel_job(cancelled, "user:2", 3).unwrap(), Some(JobState::Running));
    assert!(store.cancel_requested(cancelled).unwrap());
    // Someone else's job is not theirs to cancel.
    assert_eq!(store.cancel_job(batch, "user:2", 3).unwrap(), None);

    let recovered = store.recover_jobs(3, 9).unwrap();
    assert_eq!(recovered, Recovered { requeued: 1, failed: 3 });
    let state = |id| store.job(id).unwrap().unwrap().summary;
    assert_eq!(state(batch).state, JobState::Queued);
    assert_eq!(state(tired).state, JobState::Failed);
    assert!(state(tired).error.unwrap().contains("3 times"));
    assert_eq!(state(cancelled).state, JobState::Cancelled);
    assert_eq!(state(interactive).state, JobState::Failed);
    assert!(state(interactive).error.unwrap().contains("run the script again"));
    // The requeued job starts again as its second attempt.
    let again = store.claim_job(10, 10).unwrap().unwrap();
    assert_eq!((again.summary.id, again.summary.attempts), (batch, 2));
}

#[test]
fn a_queued_job_is_cancelled_at_once_and_a_finished_one_stays_as_it_ended() {
    let store = SqliteStore::in_memory().unwrap();
    let id = queued(&store, "user:1", "x");
    assert_eq!(store.cancel_job(id, "user:1", 4).unwrap(), Some(JobState::Cancelled));
    assert!(store.claim_job(10, 5).unwrap().is_none(), "a cancelled job is not run");
    let other = queued(&store, "user:1", "y");
    store.claim_job(10, 5).unwrap().unwrap();
    done(&store, other);
    assert_eq!(store.cancel_job(other, "user:1", 6).unwrap(), Some(JobState::Done));
    let finish = Finish {
        state: JobState::Failed,
        error: Some("late".into()),
        outputs: StoredOutputs::of(&[]),
        datastores: Vec::new(),
        now_ms: 7,
    };
    assert!(!store.finish_job(other, &finish).unwrap(), "a finished job is not finished again");
    let job = store.job(other).unwrap().unwrap();
    assert_eq!(
        (job.summary.state, job.summary.datastores),
        (JobState::Done, vec!["demo@1".into()])
    );
}

#[test]
fn a_run_in_this_process_is_followed_step_by_step_until_it_ends() {
    let jobs = super::Jobs::new(super::JobSettings::default());
    assert!(jobs.follow(7).is_none(), "nothing runs yet");
    let cancelled = jobs.register(7);
    let mut follower = jobs.follow(7).unwrap();
    assert_eq!(*follower.borrow_and_update(), None);
    for step in 1..=3 {
        let p =
            crate::engine::Progress { step, of: 3, line: step as u32, command: "summarize".into() };
        jobs.publish(7, &p);
    }
    // A follower that reads late sees the newest step, marked as new.
    assert!(follower.has_changed().unwrap());
    assert_eq!(follower.borrow_and_update().as_ref().map(|p| (p.step, p.of)), Some((3, 3)));
    jobs.cancel_here(7);
    assert!(cancelled.load(std::sync::atomic::Ordering::SeqCst));
    jobs.unregister(7);
    assert!(jobs.follow(7).is_none());
    // The sender is gone with the run: a waiting follower is told, not left hanging.
    assert!(follower.has_changed().is_err());
}

#[test]
fn guests_finished_runs_are_forgotten_after_their_time_and_nothing_else() {
    let store = SqliteStore::in_memory().unwrap();
    let run = |owner: &str, user_id: Option<i64>, kind: JobKind, at: i64| {
        let job = NewJob {
            owner: owner.into(),
            user_id,
            project: None,
            kind,
            script: "create-dataset p".into(),
            state: JobState::Running,
            now_ms: at,
        };
        store.insert_job(&job).unwrap()
    };
    let end = |id: i64, at: i64| {
        let finish = Finish { now_ms: at, ..Finish::failed("x".into()) };
        assert!(store.finish_job(id, &finish).unwrap());
    };
    let old_guest = run("guest:a", None, JobKind::Interactive, 10);
    end(old_guest, 20);
    let new_guest = run("guest:b", None, JobKind::Interactive, 10);
    end(new_guest, 200);
    let running_guest = run("guest:c", None, JobKind::Interactive, 10);
    let old_user = run("user:1", Some(1), JobKind::Interactive, 10);
    end(old_user, 20);
    let old_batch = run("user:1", Some(1), JobKind::Batch, 10);
    end(old_batch, 20);

    assert_eq!(store.forget_guest_runs(100).unwrap(), 1);
    assert!(store.job(old_guest).unwrap().is_none());
    for kept in [new_guest, running_guest, old_user, old_batch] {
        assert!(store.job(kept).unwrap().is_some(), "job {kept} was forgotten");
    }
    assert_eq!(store.forget_guest_runs(100).unwrap(), 0);
}

#[test]
fn an_owner_has_only_so_many_progress_streams_open_and_a_closed_one_makes_room() {
    let jobs = Arc::new(super::Jobs::new(super::JobSettings::default()));
    let mut open: Vec<_> =
        (0..super::FOLLOWERS_PER_OWNER).map(|_| jobs.open_follower("user:1").unwrap()).collect();
    assert!(jobs.open_follower("user:1").is_none(), "one stream too many");
    // Someone else is not counted against them.
    assert!(jobs.open_follower("user:2").is_some());
    open.pop();
    open.push(jobs.open_follower("user:1").expect("a closed stream makes room"));
    assert!(jobs.open_follower("user:1").is_none());
}
