//! Rate limits on script runs, per user and per client address (disclosure rule 11).
//!
//! Averaging and differencing attacks need many outputs; a budget of runs per minute and of
//! released outputs per hour bounds how fast anyone can collect them. Each key (a user, an
//! address) has two token buckets; a run needs a run token from every key, and is refused
//! while any key's output budget is spent. The clock is a parameter, so tests control it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Script runs (or selections) a user or address may start per minute; also the burst.
    pub runs_per_minute: u32,
    /// Outputs a user or address may receive per hour.
    pub outputs_per_hour: u32,
}

impl Default for RateLimitSettings {
    fn default() -> RateLimitSettings {
        RateLimitSettings { runs_per_minute: 30, outputs_per_hour: 3000 }
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
}

/// Keys idle this long are full again and can be forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> RateLimits {
        RateLimits { settings, keys: Mutex::new(HashMap::new()) }
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
        let limits =
            RateLimits::new(RateLimitSettings { runs_per_minute: 2, outputs_per_hour: 1000 });
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
        let limits =
            RateLimits::new(RateLimitSettings { runs_per_minute: 100, outputs_per_hour: 10 });
        let t0 = Instant::now();
        assert!(limits.admit(&["u"], t0).is_ok());
        limits.spend_outputs(&["u"], 12, t0);
        let refused = limits.admit(&["u"], t0).unwrap_err();
        assert!(refused.message.contains("10 outputs an hour"), "{}", refused.message);
        // 3 tokens short of one: 3 × 360 s.
        assert_eq!(refused.retry_after, Duration::from_secs(1080));
        assert!(limits.admit(&["u"], t0 + Duration::from_secs(1080)).is_ok());
    }

    #[test]
    fn a_refused_run_spends_nothing() {
        let limits =
            RateLimits::new(RateLimitSettings { runs_per_minute: 1, outputs_per_hour: 100 });
        let t0 = Instant::now();
        assert!(limits.admit(&["address"], t0).is_ok());
        // "user" would have a token, but the address has none: neither is spent.
        assert!(limits.admit(&["user", "address"], t0).is_err());
        assert!(limits.admit(&["user"], t0).is_ok());
    }
}
