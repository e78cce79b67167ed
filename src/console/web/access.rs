//! Who may open the console: the tokens of this sensor, each with a role.
//! An administrator token and a read token both open every page (the
//! console only reads); the role is kept in the session for the actions
//! that will change state.

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Read,
}

/// The tokens the login form accepts.
#[derive(Clone, Default)]
pub struct Tokens {
    pub admin: Vec<String>,
    pub read: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ admin: {}, read: {} }}", self.admin.len(), self.read.len())
    }
}

/// Equal bytes, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.admin.is_empty() && self.read.is_empty()
    }

    /// The role `token` carries; every stored token is compared, so the
    /// time taken does not say which one nearly matched.
    pub fn role(&self, token: &str) -> Option<Role> {
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        let admin = self
            .admin
            .iter()
            .fold(false, |hit, t| same(t.as_bytes(), token.as_bytes()) | hit);
        let read = self
            .read
            .iter()
            .fold(false, |hit, t| same(t.as_bytes(), token.as_bytes()) | hit);
        if admin {
            Some(Role::Admin)
        } else if read {
            Some(Role::Read)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_give_their_role_and_nothing_else_does() {
        let t = Tokens {
            admin: vec!["admin-secret".into()],
            read: vec!["reader".into()],
        };
        assert_eq!(t.role("admin-secret"), Some(Role::Admin));
        assert_eq!(t.role(" reader\n"), Some(Role::Read));
        assert_eq!(t.role("admin-secre"), None);
        assert_eq!(t.role(""), None);
        assert_eq!(Tokens::default().role(""), None);
        assert!(!format!("{t:?}").contains("secret"), "Debug never prints a token");
    }
}
