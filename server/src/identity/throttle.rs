//! Brute-force protection for sign-in: a lockout per account name with back-off, and a rate
//! limit per client address.
//!
//! Names are counted whether or not an account has them, so a lockout says nothing about
//! existence. State is in memory: a restart forgets it, which costs an attacker a restart they
//! cannot cause.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthError;

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    consecutive: u32,
    locked_until: i64,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: i64,
    attempts: u32,
}

#[derive(Debug)]
pub struct Throttle {
    after: u32,
    first_lock: i64,
    per_minute: u32,
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<String, Window>>,
}

/// No lock lasts longer than this.
const LONGEST_LOCK: i64 = 3600;

impl Throttle {
    pub fn new(after: u32, first_lock: i64, per_minute: u32) -> Throttle {
        Throttle {
            after: after.max(1),
            first_lock: first_lock.max(1),
            per_minute: per_minute.max(1),
            accounts: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// May this account name be tried from this address now? Counts the attempt.
    pub fn admit(&self, account: &str, address: &str, now: i64) -> Result<(), AuthError> {
        {
            let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = accounts.get(account)
                && f.locked_until > now
            {
                return Err(AuthError::Locked { retry_after: f.locked_until - now });
            }
        }
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if addresses.len() > 100_000 {
            addresses.retain(|_, w| now - w.started < 60);
        }
        let window =
            addresses.entry(address.to_owned()).or_insert(Window { started: now, attempts: 0 });
        if now - window.started >= 60 {
            *window = Window { started: now, attempts: 0 };
        }
        if window.attempts >= self.per_minute {
            return Err(AuthError::Locked { retry_after: 60 - (now - window.started) });
        }
        window.attempts += 1;
        Ok(())
    }

    /// Records a failure; returns the lock's length when this failure starts one.
    pub fn failure(&self, account: &str, now: i64) -> Option<i64> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if accounts.len() > 100_000 {
            accounts.retain(|_, f| f.locked_until > now || f.consecutive > 0);
        }
        let f = accounts.entry(account.to_owned()).or_default();
        f.consecutive += 1;
        if f.consecutive < self.after {
            return None;
        }
        // 30 s, 60 s, 120 s, … for the 5th, 6th, 7th failure in a row.
        let doublings = (f.consecutive - self.after).min(20);
        let seconds = (self.first_lock << doublings).min(LONGEST_LOCK);
        f.locked_until = now + seconds;
        Some(seconds)
    }

    pub fn success(&self, account: &str) {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_and_doubles_each_further_failure() {
        let t = Throttle::new(5, 30, 1000);
        for _ in 0..4 {
            t.admit("kari", "a", 0).unwrap();
            assert_eq!(t.failure("kari", 0), None);
        }
        t.admit("kari", "a", 0).unwrap();
        assert_eq!(t.failure("kari", 0), Some(30));
        assert!(matches!(t.admit("kari", "a", 29), Err(AuthError::Locked { retry_after: 1 })));
        t.admit("kari", "a", 30).unwrap();
        assert_eq!(t.failure("kari", 30), Some(60));
        assert!(t.admit("kari", "a", 89).is_err());
        t.admit("kari", "a", 90).unwrap();
        t.success("kari");
        assert_eq!(t.failure("kari", 90), None, "success starts the count again");
        t.admit("other", "a", 29).expect("other names are not locked");
    }

    #[test]
    fn an_address_gets_a_fixed_number_of_attempts_a_minute() {
        let t = Throttle::new(5, 30, 3);
        for name in ["a", "b", "c"] {
            t.admit(name, "10.0.0.1", 100).unwrap();
        }
        assert!(matches!(
            t.admit("d", "10.0.0.1", 110),
            Err(AuthError::Locked { retry_after: 50 })
        ));
        t.admit("d", "10.0.0.2", 110).expect("another address");
        t.admit("d", "10.0.0.1", 160).expect("a new minute");
    }
}
