//! Server-initiated messages (alarm transitions, chat messages, service banners…) for the clients
//! that may see them.
//!
//! One bounded broadcast channel carries every push with its [`Audience`]; each live WebSocket
//! and the panel window subscribe and deliver only what their session may see, checked against
//! the session's principal at delivery time (a grant revoked a moment ago is honoured). A
//! subscriber that falls more than [`CAPACITY`] pushes behind gets a fresh snapshot instead, so
//! whatever a client must not miss also belongs in the snapshot.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::auth::Principal;

/// Pushes kept for slow subscribers before they lag (and get a snapshot).
pub const CAPACITY: usize = 1024;

/// Who may receive a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every session granted this park (superusers see every configured park).
    Park(String),
    /// Every session of these users.
    Users(Vec<i64>),
    /// Every logged-in session.
    Everyone,
}

impl Audience {
    /// Whether `p` may receive a push for this audience.
    pub fn admits(&self, p: &Principal) -> bool {
        match self {
            Audience::Park(park) => p.parks.contains(park),
            Audience::Users(ids) => ids.contains(&p.user_id),
            Audience::Everyone => true,
        }
    }
}

/// One push: the audience and the message, already encoded once for every receiver.
#[derive(Debug)]
pub struct Push {
    pub audience: Audience,
    /// The JSON object sent as is (it carries its own `"type"`).
    pub body: Value,
    /// `body` as text, encoded once.
    pub text: String,
}

impl Push {
    /// Whether `p` receives this push: its audience admits `p`, and an API token (a machine,
    /// which acts for its creator but is not them) has the scope the push's type needs. People's
    /// traffic (messages, receipts, presence, shift log) never reaches a token.
    pub fn admits(&self, p: &Principal) -> bool {
        if !self.audience.admits(p) {
            return false;
        }
        let Some(t) = &p.token else {
            return true;
        };
        use crate::auth::Scope;
        match self.body.get("type").and_then(Value::as_str) {
            Some("alarm" | "alarms") => t.has(Scope::AlarmsRead),
            Some("service") => t.has(Scope::LiveRead),
            _ => false,
        }
    }
}

/// The broadcast every transport subscribes to.
#[derive(Clone)]
pub struct Pushes {
    tx: broadcast::Sender<Arc<Push>>,
}

impl Default for Pushes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Pushes {
    /// Publishes `body` (a JSON object with a `"type"` field) to `audience`. Never blocks; with
    /// nobody listening the push is simply dropped (nobody could have seen it).
    pub fn publish(&self, audience: Audience, body: &impl Serialize) {
        let body = match serde_json::to_value(body) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "push not serializable");
                return;
            }
        };
        debug_assert!(body.get("type").is_some(), "a push names its type");
        let text = body.to_string();
        let _ = self.tx.send(Arc::new(Push {
            audience,
            body,
            text,
        }));
    }

    /// A receiver of every push from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Push>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Parks, Role, Source};
    use chrono::Utc;

    fn principal(user_id: i64, parks: &[&str]) -> Principal {
        Principal {
            user_id,
            username: format!("u{user_id}"),
            role: Role::Operator,
            parks: Parks::Only(parks.iter().map(|s| s.to_string()).collect()),
            source: Source::Panel,
            session_id: 1,
            expires_at: Utc::now(),
            idle_expires_at: Utc::now(),
            token: None,
        }
    }

    #[test]
    fn audience_follows_parks_and_users() {
        let a = principal(1, &["north"]);
        let b = principal(2, &["south"]);
        let park = Audience::Park("north".into());
        assert!(park.admits(&a));
        assert!(!park.admits(&b));
        let users = Audience::Users(vec![2]);
        assert!(!users.admits(&a));
        assert!(users.admits(&b));
        assert!(Audience::Everyone.admits(&a));
    }

    #[test]
    fn a_token_receives_only_what_its_scopes_cover() {
        use crate::auth::{Scope, TokenGrant};
        let push = |kind: &str| {
            let body = serde_json::json!({"type": kind});
            Push {
                audience: Audience::Everyone,
                text: body.to_string(),
                body,
            }
        };
        let person = principal(1, &["north"]);
        let mut machine = principal(1, &["north"]);
        machine.token = Some(TokenGrant {
            id: 3,
            name: "gw".into(),
            scopes: vec![Scope::AlarmsRead],
        });
        for kind in [
            "alarm", "alarms", "service", "message", "receipt", "presence", "logbook",
        ] {
            assert!(push(kind).admits(&person), "{kind}");
        }
        assert!(push("alarm").admits(&machine));
        assert!(push("alarms").admits(&machine));
        assert!(!push("service").admits(&machine), "needs live:read");
        for kind in ["message", "receipt", "presence", "logbook"] {
            assert!(!push(kind).admits(&machine), "{kind} is people's traffic");
        }
    }

    #[tokio::test]
    async fn publish_encodes_once_and_delivers() {
        let pushes = Pushes::default();
        let mut rx = pushes.subscribe();
        pushes.publish(
            Audience::Everyone,
            &serde_json::json!({"type": "x", "n": 1}),
        );
        let p = rx.recv().await.unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&p.text).unwrap(),
            serde_json::json!({"type": "x", "n": 1})
        );
        assert_eq!(p.body["n"], 1);
    }
}
