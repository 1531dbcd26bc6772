//! Rate limits on script runs, per user and per client address (disclosure rule 11).
//!
//! Averaging and differencing attacks need many outputs; a budget of runs per minute and of
//! released outputs per hour bounds how fast anyone can collect them. Each key (a user, an
//! address) has two token buckets; a run needs a run token from every key, and is refused
//! while any key's output budget is spent. The clock is a parameter, so tests control it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Script runs (or selections) a user or address may start per minute; also the burst.
    pub runs_per_minute: u32,
    /// Outputs a user or address may receive per hour.
    pub outputs_per_hour: u32,
    /// Runs one user or address may have going at once.
    pub runs_in_flight: u32,
    /// Runs going at once on the whole server; more wait their turn. 0: one per core.
    pub concurrent_runs: usize,
}

impl Default for RateLimitSettings {
    fn default() -> RateLimitSettings {
        RateLimitSettings {
            runs_per_minute: 30,
            outputs_per_hour: 3000,
            runs_in_flight: 2,
            concurrent_runs: 0,
        }
    }
}

/// Why a run was refused, and when to try again.
#[derive(Clone, Debug, PartialEq)]
pub struct Limited {
    pub message: String,
    pub retry_after: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket { tokens: capacity, updated: now }
    }

    fn refill(&mut self, capacity: f64, per_second: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.updated = now;
    }

    /// How long until the bucket holds one token.
    fn wait(&self, per_second: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0) / per_second).ceil().max(1.0))
    }
}

#[derive(Clone, Copy, Debug)]
struct Buckets {
    runs: Bucket,
    outputs: Bucket,
}

pub struct RateLimits {
    settings: RateLimitSettings,
    keys: Mutex<HashMap<String, Buckets>>,
    /// Runs going per key.
    in_flight: Mutex<HashMap<String, u32>>,
    /// One permit per run going on the server. Runs are CPU-bound: more at once than cores
    /// only makes each slower and holds more memory.
    slots: Arc<tokio::sync::Semaphore>,
}

/// A run that is going: counted against its keys until dropped.
pub struct InFlight {
    limits: Arc<RateLimits>,
    keys: Vec<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.limits.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if let Some(n) = map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

/// Keys idle this long are full again and can be forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> RateLimits {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let slots = if settings.concurrent_runs == 0 { cores } else { settings.concurrent_runs };
        RateLimits {
            settings,
            keys: Mutex::new(HashMap::new()),
            in_flight: Mutex::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
        }
    }

    /// Counts a run as going for every key, or refuses it when one of them has
    /// `runs_in_flight` going already. The count ends when the guard is dropped.
    pub fn begin(self: &Arc<Self>, keys: &[&str]) -> Result<InFlight, Limited> {
        let most = self.settings.runs_in_flight.max(1);
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if keys.iter().any(|k| map.get(*k).is_some_and(|n| *n >= most)) {
            return Err(Limited {
                message: format!(
                    "{most} of your runs are going already: wait for one to finish, or put the commands into one script"
                ),
                retry_after: Duration::from_secs(5),
            });
        }
        for key in keys {
            *map.entry((*key).to_owned()).or_default() += 1;
        }
        Ok(InFlight { limits: self.clone(), keys: keys.iter().map(|k| (*k).to_owned()).collect() })
    }

    /// Waits for a turn to run on the server; the turn lasts as long as the permit.
    pub async fn turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring cannot fail.
        self.slots.clone().acquire_owned().await.expect("the run semaphore is never closed")
    }

    fn rates(&self) -> ((f64, f64), (f64, f64)) {
        let runs = f64::from(self.settings.runs_per_minute.max(1));
        let outputs = f64::from(self.settings.outputs_per_hour.max(1));
        ((runs, runs / 60.0), (outputs, outputs / 3600.0))
    }

    /// Admits a run for every key, or says which limit stops it. Nothing is spent when refused.
    pub fn admit(&self, keys: &[&str], now: Instant) -> Result<(), Limited> {
        let ((run_cap, run_rate), (out_cap, out_rate)) = self.rates();
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, b| now.saturating_duration_since(b.runs.updated) < FORGET_AFTER);
        }
        for key in keys {
            let b = map.entry((*key).to_owned()).or_insert(Buckets {
                runs: Bucket::full(run_cap, now),
                outputs: Bucket::full(out_cap, now),
            });
            b.runs.refill(run_cap, run_rate, now);
            b.outputs.refill(out_cap, out_rate, now);
            if b.runs.tokens < 1.0 {
                let retry_after = b.runs.wait(run_rate);
                return Err(Limited {
                    message: format!(
                        "more than {} runs a minute (rule 11, rate limits): try again in {} s, or run the whole script at once",
                        self.settings.runs_per_minute,
                        retry_after.as_secs()
                    ),
                    retry_after,
                });
            }
            if b.outputs.tokens < 1.0 {
                let retry_after = b.outputs.wait(out_rate);
                return Err(Limited {
                    message: format!(
                        "more than {} outputs an hour (rule 11, rate limits): try again in {} s; a batch job has no such limit per run",
                        self.settings.outputs_per_hour,
                        retry_after.as_secs()
                    ),
                    retry_after,
                });
            }
        }
        for key in keys {
            if let Some(b) = map.get_mut(*key) {
                b.runs.tokens -= 1.0;
            }
        }
        Ok(())
    }

    /// Spends `outputs` from every key's hourly budget, after a run. It may go below zero: a
    /// large run then waits longer before the next.
    pub fn spend_outputs(&self, keys: &[&str], outputs: usize, now: Instant) {
        let (_, (out_cap, out_rate)) = self.rates();
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if let Some(b) = map.get_mut(*key) {
                b.outputs.refill(out_cap, out_rate, now);
                b.outputs.tokens -= outputs as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_beyond_the_minute_budget_wait_for_tokens_to_refill() {
        let limits = RateLimits::new(RateLimitSettings {
            runs_per_minute: 2,
            outputs_per_hour: 1000,
            ..Default::default()
        });
        let t0 = Instant::now();
        assert!(limits.admit(&["u"], t0).is_ok());
        assert!(limits.admit(&["u"], t0).is_ok());
        let refused = limits.admit(&["u"], t0).unwrap_err();
        assert!(refused.message.contains("2 runs a minute"), "{}", refused.message);
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        // Another user is not affected; the same address is.
        assert!(limits.admit(&["v"], t0).is_ok());
        assert!(limits.admit(&["w", "u"], t0).is_err());
        // Half a minute later one run is back.
        let t1 = t0 + Duration::from_secs(30);
        assert!(limits.admit(&["u"], t1).is_ok());
        assert!(limits.admit(&["u"], t1).is_err());
    }

    #[test]
    fn the_hourly_output_budget_stops_runs_until_it_refills() {
        let limits = RateLimits::new(RateLimitSettings {
            runs_per_minute: 100,
            outputs_per_hour: 10,
            ..Default::default()
        });
        let t0 = Instant::now();
        assert!(limits.admit(&["u"], t0).is_ok());
        limits.spend_outputs(&["u"], 12, t0);
        let refused = limits.admit(&["u"], t0).unwrap_err();
        assert!(refused.message.contains("10 outputs an hour"), "{}", refused.message);
        // 3 tokens short of one: 3 × 360 s.
        assert_eq!(refused.retry_after, Duration::from_secs(1080));
        assert!(limits.admit(&["u"], t0 + Duration::from_secs(1080)).is_ok());
    }

    /// Guards the review's finding that 30 runs of one address were admitted at once.
    #[test]
    fn a_key_may_have_only_so_many_runs_going_at_once() {
        let limits = Arc::new(RateLimits::new(RateLimitSettings {
            runs_in_flight: 2,
            ..Default::default()
        }));
        let first = limits.begin(&["u", "address:a"]).unwrap();
        let _second = limits.begin(&["v", "address:a"]).unwrap();
        let refused = limits.begin(&["w", "address:a"]).err().expect("a third from one address");
        assert!(
            refused.message.contains("2 of your runs are going already"),
            "{}",
            refused.message
        );
        assert!(limits.begin(&["u", "address:b"]).is_ok(), "u has one going, may have two");
        drop(first);
        assert!(limits.begin(&["w", "address:a"]).is_ok(), "one finished, so another may start");
    }

    #[test]
    fn a_refused_run_spends_nothing() {
        let limits = RateLimits::new(RateLimitSettings {
            runs_per_minute: 1,
            outputs_per_hour: 100,
            ..Default::default()
        });
        let t0 = Instant::now();
        assert!(limits.admit(&["address"], t0).is_ok());
        // "user" would have a token, but the address has none: neither is spent.
        assert!(limits.admit(&["user", "address"], t0).is_err());
        assert!(limits.admit(&["user"], t0).is_ok());
    }
}
