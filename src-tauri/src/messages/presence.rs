//! Who is online: one entry per live client (a WebSocket, or the panel window's session), so
//! that `presence` can say who is reachable right now, on which kind of client, since when.
//!
//! Entries are added and removed by the transports through an RAII guard in `api`, so a client
//! that disconnects (or whose session ends) always leaves. Bounded by [`MAX_CLIENTS`]: the
//! transports cap their connections well below it, and beyond it a client is simply not listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

/// Live clients tracked at most.
pub const MAX_CLIENTS: usize = 10_000;

/// The kind of client a person uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// The panel window on the machine itself.
    Panel,
    /// A remote browser (or another WebSocket client).
    Browser,
}

/// One live client.
#[derive(Debug, Clone)]
pub struct Online {
    pub user_id: i64,
    pub username: String,
    pub kind: ClientKind,
    pub since: DateTime<Utc>,
    /// The user's visible parks; `None` for a superuser (every park).
    pub parks: Option<BTreeSet<String>>,
}

/// One client of a user as listed by `presence`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientView {
    pub kind: ClientKind,
    pub since: DateTime<Utc>,
}

/// One online user as listed by `presence`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserPresence {
    pub username: String,
    /// Their live clients, oldest first (empty when they just went offline).
    pub clients: Vec<ClientView>,
}

/// Whether two park sets share a park (`None` = every park).
pub fn share(a: Option<&BTreeSet<String>>, b: Option<&BTreeSet<String>>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => a.intersection(b).next().is_some(),
    }
}

/// The registry of live clients.
#[derive(Default)]
pub struct Presence {
    clients: Mutex<(u64, HashMap<u64, Online>)>,
}

impl Presence {
    /// Registers a client; its key for [`Presence::leave`], or `None` when the registry is full.
    pub fn enter(&self, o: Online) -> Option<u64> {
        let mut g = self.clients.lock();
        if g.1.len() >= MAX_CLIENTS {
            tracing::warn!(user = %o.username, "presence registry full; client not listed");
            return None;
        }
        g.0 += 1;
        let key = g.0;
        g.1.insert(key, o);
        Some(key)
    }

    /// Removes a client; the entry it had.
    pub fn leave(&self, key: u64) -> Option<Online> {
        self.clients.lock().1.remove(&key)
    }

    /// How many live clients of `kind` are registered.
    pub fn count(&self, kind: ClientKind) -> usize {
        self.clients
            .lock()
            .1
            .values()
            .filter(|o| o.kind == kind)
            .count()
    }

    /// Whether the user has a live client.
    pub fn is_online(&self, user_id: i64) -> bool {
        self.clients.lock().1.values().any(|o| o.user_id == user_id)
    }

    /// The user's live clients, oldest first.
    pub fn of_user(&self, user_id: i64, username: &str) -> UserPresence {
        let g = self.clients.lock();
        let mut clients: Vec<ClientView> =
            g.1.values()
                .filter(|o| o.user_id == user_id)
                .map(|o| ClientView {
                    kind: o.kind,
                    since: o.since,
                })
                .collect();
        clients.sort_by_key(|c| (c.since, c.kind));
        UserPresence {
            username: username.to_string(),
            clients,
        }
    }

    /// Every online user who shares a park with `parks` (`None`: a superuser sees all), by name.
    pub fn visible_to(&self, parks: Option<&BTreeSet<String>>) -> Vec<UserPresence> {
        let g = self.clients.lock();
        let mut users: BTreeMap<String, Vec<ClientView>> = BTreeMap::new();
        for o in g.1.values() {
            if parks.is_none() || share(parks, o.parks.as_ref()) {
                users
                    .entry(o.username.clone())
                    .or_default()
                    .push(ClientView {
                        kind: o.kind,
                        since: o.since,
                    });
            }
        }
        users
            .into_iter()
            .map(|(username, mut clients)| {
                clients.sort_by_key(|c| (c.since, c.kind));
                UserPresence { username, clients }
            })
            .collect()
    }

    /// The other online users who may learn about `subject`'s presence: those sharing a park
    /// with them (superusers: everyone online; everyone sees a superuser).
    pub fn audience_of(&self, subject: &Online) -> Vec<i64> {
        let g = self.clients.lock();
        let mut ids: Vec<i64> =
            g.1.values()
                .filter(|o| o.user_id != subject.user_id)
                .filter(|o| o.parks.is_none() || share(subject.parks.as_ref(), o.parks.as_ref()))
                .map(|o| o.user_id)
                .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(id: i64, parks: Option<&[&str]>) -> Online {
        Online {
            user_id: id,
            username: format!("u{id}"),
            kind: ClientKind::Browser,
            since: Utc::now(),
            parks: parks.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn visibility_follows_shared_parks() {
        let p = Presence::default();
        let a = p.enter(online(1, Some(&["alpha"]))).unwrap();
        p.enter(online(2, Some(&["beta"]))).unwrap();
        p.enter(online(3, None)).unwrap();
        let alpha: BTreeSet<String> = ["alpha".to_string()].into();
        let names: Vec<String> = p
            .visible_to(Some(&alpha))
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["u1", "u3"]);
        assert_eq!(p.visible_to(None).len(), 3);
        assert_eq!(p.audience_of(&online(9, Some(&["beta"]))), [2, 3]);
        assert!(p.is_online(1));
        p.leave(a);
        assert!(!p.is_online(1));
    }
}
