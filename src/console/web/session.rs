//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie,
//! kept in memory with its expiry and its CSRF token. A restart logs
//! everyone out, which is what a person expects of an appliance.
//!
//! The clock is an argument (an `Instant`), so expiry is tested without
//! waiting. The table is capped: expired sessions go first, then the one
//! closest to expiry, so a flood of logins cannot grow memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::console::web::access::Role;
use crate::model::ids::random_id;

/// The session cookie's name.
pub const COOKIE: &str = "netsensor_session";
/// How long a session lasts after login.
pub const TTL: Duration = Duration::from_secs(8 * 3600);
/// The most sessions kept at once.
pub const MAX: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The token every state-changing form carries.
    pub csrf: String,
    pub role: Role,
    pub expires: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(TTL)
    }
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            table: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `role`: its id (256 random bits) and the session.
    pub fn open(&self, role: Role, now: Instant) -> (String, Session) {
        let id = format!("{}{}", random_id(), random_id());
        let session = Session {
            csrf: random_id(),
            role,
            expires: now + self.ttl,
        };
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX {
            t.retain(|_, s| s.expires > now);
        }
        if t.len() >= MAX
            && let Some(oldest) = t.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            t.remove(&oldest);
        }
        t.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session `id`, if any (an expired one is removed).
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match t.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                t.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_its_expiry_then_is_gone() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, session) = s.open(Role::Read, t0);
        assert_eq!(id.len(), 64);
        assert_ne!(session.csrf, id);
        assert_eq!(s.get(&id, t0 + Duration::from_secs(59)), Some(session));
        assert_eq!(s.get(&id, t0 + Duration::from_secs(60)), None);
        assert!(s.is_empty(), "expired on sight");
        let (id, _) = s.open(Role::Admin, t0);
        s.close(&id);
        assert_eq!(s.get(&id, t0), None);
    }

    #[test]
    fn the_table_is_capped() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (first, _) = s.open(Role::Read, t0);
        for i in 1..=MAX {
            s.open(Role::Read, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.len(), MAX);
        assert_eq!(s.get(&first, t0), None, "the oldest went first");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = "a=1; netsensor_session=abc; netsensor_session2=x";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie("x=netsensor_session=1", COOKIE), None);
    }
}
