//! Sign-in throttling: at most `auth.login_attempts` failed attempts per user name and per
//! client address within `auth.login_window_secs`.
//!
//! An attempt is reserved *before* the password is checked, so a burst of parallel
//! requests cannot all slip in while the first bcrypt verification is still running; a
//! successful sign-in gives its reservation back and clears the user name's record. Both
//! tables are capped: expired windows are dropped first, then the oldest, so a flood of
//! invented user names costs bounded memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthSettings;

/// Keys tracked per table at most.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

struct Table<K> {
    entries: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            entries: HashMap::new(),
        }
    }

    /// How long until `key` may try again, if it is exhausted now.
    fn blocked(&mut self, key: &K, now: Instant, max: u32, window: Duration) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let elapsed = now.saturating_duration_since(entry.start);
        if elapsed >= window {
            self.entries.remove(key);
            return None;
        }
        (entry.count >= max).then(|| window - elapsed)
    }

    fn reserve(&mut self, key: &K, now: Instant, window: Duration, cap: usize) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.count += 1;
            return;
        }
        if self.entries.len() >= cap {
            self.entries
                .retain(|_, w| now.saturating_duration_since(w.start) < window);
        }
        if self.entries.len() >= cap
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            key.clone(),
            Window {
                start: now,
                count: 1,
            },
        );
    }

    fn refund(&mut self, key: &K) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

struct Tables {
    users: Table<String>,
    addrs: Table<IpAddr>,
}

pub struct LoginLimiter {
    max: u32,
    window: Duration,
    cap: usize,
    tables: Mutex<Tables>,
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration, cap: usize) -> Self {
        LoginLimiter {
            max: max.max(1),
            window,
            cap: cap.max(1),
            tables: Mutex::new(Tables {
                users: Table::new(),
                addrs: Table::new(),
            }),
        }
    }

    pub fn from_settings(auth: &AuthSettings) -> Self {
        LoginLimiter::new(
            auth.login_attempts,
            Duration::from_secs(auth.login_window_secs),
            MAX_TRACKED,
        )
    }

    /// Reserve one attempt for `user` from `addr`, or say how long to wait.
    pub fn try_acquire(
        &self,
        user: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let user_key = normalize(user);
        let by_user = t.users.blocked(&user_key, now, self.max, self.window);
        let by_addr = addr.and_then(|a| t.addrs.blocked(&a, now, self.max, self.window));
        if let Some(retry_after) = by_user.into_iter().chain(by_addr).max() {
            return Err(Limited { retry_after });
        }
        t.users.reserve(&user_key, now, self.window, self.cap);
        if let Some(a) = addr {
            t.addrs.reserve(&a, now, self.window, self.cap);
        }
        Ok(())
    }

    /// The attempt reserved by [`try_acquire`](Self::try_acquire) signed in.
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>) {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.users.forget(&normalize(user));
        if let Some(a) = addr {
            t.addrs.refund(&a);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let t = self.tables.lock().unwrap();
        (t.users.entries.len(), t.addrs.entries.len())
    }
}

/// `Ana` and `ana ` are the same target for a guesser, whatever the database collation.
fn normalize(user: &str) -> String {
    user.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(60);

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn per_user_limit_and_window() {
        let l = LoginLimiter::new(3, W, 100);
        let t0 = Instant::now();
        for i in 0..3 {
            l.try_acquire("ana", ip(i), t0).unwrap();
        }
        // Other addresses do not help once the user name is exhausted.
        let err = l
            .try_acquire("Ana", ip(9), t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(50));
        // Another user is unaffected.
        l.try_acquire("luis", ip(9), t0).unwrap();
        // The window passes.
        l.try_acquire("ana", ip(9), t0 + W).unwrap();
    }

    #[test]
    fn per_address_limit() {
        let l = LoginLimiter::new(2, W, 100);
        let t0 = Instant::now();
        l.try_acquire("a", ip(1), t0).unwrap();
        l.try_acquire("b", ip(1), t0).unwrap();
        assert!(l.try_acquire("c", ip(1), t0).is_err());
        l.try_acquire("c", ip(2), t0).unwrap();
    }

    #[test]
    fn success_gives_the_attempt_back() {
        let l = LoginLimiter::new(2, W, 100);
        let t0 = Instant::now();
        for _ in 0..10 {
            l.try_acquire("ana", ip(1), t0).unwrap();
            l.succeeded("ana", ip(1));
        }
        l.try_acquire("x", ip(1), t0).unwrap();
        l.try_acquire("y", ip(1), t0).unwrap();
        assert!(l.try_acquire("ana", ip(1), t0).is_err());
    }

    #[test]
    fn tables_are_capped() {
        let l = LoginLimiter::new(1000, W, 50);
        let t0 = Instant::now();
        for i in 0..500u32 {
            l.try_acquire(&format!("u{i}"), None, t0 + Duration::from_millis(i as u64))
                .unwrap();
        }
        let (users, addrs) = l.tracked();
        assert!(users <= 50, "{users}");
        assert_eq!(addrs, 0);
        // The newest survived the evictions.
        let err = LoginLimiter::new(1, W, 50);
        err.try_acquire("z", None, t0).unwrap();
        assert!(err.try_acquire("z", None, t0).is_err());
    }
}
