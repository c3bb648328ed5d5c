//! What the console may do, read from the token's `role` claim. The payload is decoded without
//! verifying the signature: the control plane verifies it on every request, and the console only
//! uses the role to hide actions the server would refuse anyway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::Role;

/// The console's permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The role claimed by the token, when it could be read.
    pub role: Option<Role>,
    /// Why the role is unknown (no token, not a JWT, no `role` claim).
    pub unreadable: Option<String>,
}

impl Access {
    /// Reads the role from a JWT's payload.
    pub fn from_token(token: Option<&str>) -> Self {
        let Some(token) = token else {
            return Self::unknown("no token given");
        };
        let Some(payload) = token.trim().split('.').nth(1) else {
            return Self::unknown("the token is not a JWT");
        };
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
            return Self::unknown("the token's payload is not base64url");
        };
        #[derive(serde::Deserialize)]
        struct RoleClaim {
            role: Option<String>,
        }
        match serde_json::from_slice::<RoleClaim>(&bytes) {
            Ok(RoleClaim { role: Some(r) }) => match Role::parse(&r) {
                Some(role) => Self {
                    role: Some(role),
                    unreadable: None,
                },
                None => Self::unknown(&format!("unknown role {r:?} in the token")),
            },
            Ok(RoleClaim { role: None }) => Self::unknown("the token has no role claim"),
            Err(_) => Self::unknown("the token's payload is not JSON"),
        }
    }

    /// A role known to the console.
    pub fn with_role(role: Role) -> Self {
        Self {
            role: Some(role),
            unreadable: None,
        }
    }

    fn unknown(why: &str) -> Self {
        Self {
            role: None,
            unreadable: Some(why.to_owned()),
        }
    }

    /// Operators and admins may act (rollouts, moderation); everyone else reads.
    pub fn can_act(&self) -> bool {
        matches!(self.role, Some(Role::Admin | Role::Operator))
    }

    /// `operator`, `viewer`, … or `unknown role`.
    pub fn label(&self) -> &'static str {
        self.role.map_or("unknown role", Role::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn roles_from_the_payload() {
        let op = Access::from_token(Some(&jwt(r#"{"sub":"ana","role":"operator","exp":1}"#)));
        assert_eq!(op.role, Some(Role::Operator));
        assert!(op.can_act());
        let admin = Access::from_token(Some(&jwt(r#"{"role":"admin"}"#)));
        assert!(admin.can_act());
        let viewer = Access::from_token(Some(&jwt(r#"{"role":"viewer"}"#)));
        assert_eq!(viewer.label(), "viewer");
        assert!(!viewer.can_act());
        assert!(!Access::from_token(Some(&jwt(r#"{"role":"cso","org":"x"}"#))).can_act());
    }

    #[test]
    fn unreadable_tokens_are_read_only() {
        for (token, why) in [
            (None, "no token"),
            (Some("garbage".to_owned()), "not a JWT"),
            (Some("a.!!!.c".to_owned()), "base64url"),
            (Some(jwt("[1]")), "not JSON"),
            (Some(jwt(r#"{"sub":"x"}"#)), "no role"),
            (Some(jwt(r#"{"role":"root"}"#)), "unknown role"),
        ] {
            let a = Access::from_token(token.as_deref());
            assert_eq!(a.role, None);
            assert!(!a.can_act());
            let reason = a.unreadable.unwrap();
            assert!(reason.contains(why), "{reason} should say {why}");
        }
    }
}
