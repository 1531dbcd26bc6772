//! Brute-force protection for sign-in: a lockout per account name with back-off, and a rate
//! limit per client address.
//!
//! Names are counted whether or not an account has them, so a lockout says nothing about
//! existence. State is in memory: a restart forgets it, which costs an attacker a restart they
//! cannot cause.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthError;

/// Which way of signing in an account's failures count against. Each has its own lockout, so
/// that wrong passwords typed under a passkey user's name do not lock the passkey out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Factor {
    /// The password and its TOTP code.
    Password,
    Passkey,
    /// A course's join code, for a signed-in user.
    CourseCode,
}

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    consecutive: u32,
    locked_until: i64,
    last_failure: i64,
}

/// Names and addresses remembered at most. Beyond this the oldest are forgotten, so a flood
/// of made-up names cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;
/// A run of failures is forgotten once its lock is over and this long has passed without
/// another failure.
const FAILURES_FORGOTTEN_AFTER: i64 = 3600;

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
    accounts: Mutex<HashMap<(Factor, String), Failures>>,
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
    pub fn admit(
        &self,
        factor: Factor,
        account: &str,
        address: &str,
        now: i64,
    ) -> Result<(), AuthError> {
        {
            let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = accounts.get(&(factor, account.to_owned()))
                && f.locked_until > now
            {
                return Err(AuthError::Locked { retry_after: f.locked_until - now });
            }
        }
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        if addresses.len() >= MAX_ENTRIES {
            addresses.retain(|_, w| now - w.started < 60);
        }
        let address = network_of(address);
        if addresses.len() >= MAX_ENTRIES && !addresses.contains_key(&address) {
            // As many addresses as this in one minute is an attack from everywhere: refuse
            // new ones until the minute is over rather than grow without bound.
            return Err(AuthError::Locked { retry_after: 60 });
        }
        let window = addresses.entry(address).or_insert(Window { started: now, attempts: 0 });
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
    pub fn failure(&self, factor: Factor, account: &str, now: i64) -> Option<i64> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if accounts.len() >= MAX_ENTRIES {
            accounts.retain(|_, f| {
                f.locked_until > now || now - f.last_failure < FAILURES_FORGOTTEN_AFTER
            });
        }
        if accounts.len() >= MAX_ENTRIES {
            // Still full of live entries: forget the older half, unlocked ones first.
            let mut ages: Vec<(bool, i64)> =
                accounts.values().map(|f| (f.locked_until > now, f.last_failure)).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            accounts.retain(|_, f| (f.locked_until > now, f.last_failure) > cut);
        }
        let f = accounts.entry((factor, account.to_owned())).or_default();
        if f.locked_until <= now && now - f.last_failure >= FAILURES_FORGOTTEN_AFTER {
            f.consecutive = 0;
        }
        f.consecutive += 1;
        f.last_failure = now;
        if f.consecutive < self.after {
            return None;
        }
        // 30 s, 60 s, 120 s, … for the 5th, 6th, 7th failure in a row.
        let doublings = (f.consecutive - self.after).min(20);
        let seconds = (self.first_lock << doublings).min(LONGEST_LOCK);
        f.locked_until = now + seconds;
        Some(seconds)
    }

    pub fn success(&self, factor: Factor, account: &str) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.remove(&(factor, account.to_owned()));
    }

    #[cfg(test)]
    fn remembered(&self) -> (usize, usize) {
        let accounts = self.accounts.lock().unwrap().len();
        (accounts, self.addresses.lock().unwrap().len())
    }
}

/// The network an address is counted for: the address itself for IPv4, its /64 for IPv6,
/// because one IPv6 subscriber is given a whole /64 and could otherwise try from 2^64 addresses.
fn network_of(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default()
        }
        _ => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_and_doubles_each_further_failure() {
        let t = Throttle::new(5, 30, 1000);
        for _ in 0..4 {
            t.admit(Factor::Password, "kari", "a", 0).unwrap();
            assert_eq!(t.failure(Factor::Password, "kari", 0), None);
        }
        t.admit(Factor::Password, "kari", "a", 0).unwrap();
        assert_eq!(t.failure(Factor::Password, "kari", 0), Some(30));
        assert!(matches!(
            t.admit(Factor::Password, "kari", "a", 29),
            Err(AuthError::Locked { retry_after: 1 })
        ));
        t.admit(Factor::Password, "kari", "a", 30).unwrap();
        assert_eq!(t.failure(Factor::Password, "kari", 30), Some(60));
        assert!(t.admit(Factor::Password, "kari", "a", 89).is_err());
        t.admit(Factor::Password, "kari", "a", 90).unwrap();
        t.success(Factor::Password, "kari");
        assert_eq!(t.failure(Factor::Password, "kari", 90), None, "success starts the count again");
        t.admit(Factor::Password, "other", "a", 29).expect("other names are not locked");
    }

    /// Guards the review's finding that failures of made-up names were kept for ever.
    #[test]
    fn memory_of_names_and_addresses_is_bounded_and_forgets_old_failures() {
        let t = Throttle::new(5, 30, 1_000_000);
        for i in 0..(MAX_ENTRIES + 5_000) {
            let name = format!("name{i}");
            t.admit(Factor::Password, &name, "a", 0).unwrap();
            t.failure(Factor::Password, &name, 0);
        }
        let (accounts, _) = t.remembered();
        assert!(accounts <= MAX_ENTRIES, "{accounts} names kept");
        // An hour later the old ones go at the next pruning.
        t.failure(Factor::Password, "late", FAILURES_FORGOTTEN_AFTER + 1);
        for i in 0..MAX_ENTRIES {
            t.failure(Factor::Password, &format!("new{i}"), FAILURES_FORGOTTEN_AFTER + 2);
        }
        assert!(t.remembered().0 <= MAX_ENTRIES);
        // A run of failures long over starts again from one.
        let t = Throttle::new(5, 30, 1000);
        for _ in 0..4 {
            t.failure(Factor::Password, "kari", 0);
        }
        assert_eq!(t.failure(Factor::Password, "kari", FAILURES_FORGOTTEN_AFTER), None);
        for _ in 0..3 {
            t.failure(Factor::Password, "kari", FAILURES_FORGOTTEN_AFTER);
        }
        assert_eq!(
            t.failure(Factor::Password, "kari", FAILURES_FORGOTTEN_AFTER),
            Some(30),
            "five in a row lock"
        );
        // Addresses: at most MAX_ENTRIES in one minute.
        let t = Throttle::new(5, 30, 1000);
        for i in 0..MAX_ENTRIES {
            t.admit(Factor::Password, "x", &format!("10.{i}"), 0).unwrap();
        }
        assert!(t.admit(Factor::Password, "x", "192.0.2.1", 0).is_err());
        t.admit(Factor::Password, "x", "192.0.2.1", 61)
            .expect("a minute later the old windows are pruned");
        assert_eq!(t.remembered().1, 1);
    }

    #[test]
    fn password_and_passkey_failures_lock_separately() {
        let t = Throttle::new(2, 30, 1000);
        t.failure(Factor::Password, "kari", 0);
        assert_eq!(t.failure(Factor::Password, "kari", 0), Some(30));
        assert!(t.admit(Factor::Password, "kari", "a", 1).is_err());
        t.admit(Factor::Passkey, "kari", "a", 1).expect("the passkey is not locked out");
    }

    #[test]
    fn ipv6_addresses_are_counted_per_64() {
        let t = Throttle::new(5, 30, 2);
        t.admit(Factor::Password, "a", "2001:db8:1:2::1", 0).unwrap();
        t.admit(Factor::Password, "b", "2001:db8:1:2:ffff::9", 0).unwrap();
        assert!(t.admit(Factor::Password, "c", "2001:db8:1:2:abcd::1", 0).is_err(), "same /64");
        t.admit(Factor::Password, "c", "2001:db8:1:3::1", 0).expect("another /64");
        assert_eq!(network_of("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(network_of("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn an_address_gets_a_fixed_number_of_attempts_a_minute() {
        let t = Throttle::new(5, 30, 3);
        for name in ["a", "b", "c"] {
            t.admit(Factor::Password, name, "10.0.0.1", 100).unwrap();
        }
        assert!(matches!(
            t.admit(Factor::Password, "d", "10.0.0.1", 110),
            Err(AuthError::Locked { retry_after: 50 })
        ));
        t.admit(Factor::Password, "d", "10.0.0.2", 110).expect("another address");
        t.admit(Factor::Password, "d", "10.0.0.1", 160).expect("a new minute");
    }
}
