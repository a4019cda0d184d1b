//! The acquisition engine: one task per PLC, connection state machine, discovery,
//! subscriptions (or polling), reconnect, and writes. Knows nothing about users.
//!
//! - [`engine`]: [`Engine`], the per-PLC tasks and the state machine.
//! - [`connection`]: opening a session (security, identity) and explaining failures.
//! - [`discovery`]: browsing below the root into tags (shared with `stator discover`).
//! - [`subscribe`]: monitored items in batches, bulk-Read polling.
//! - [`values`]: OPC UA values → typed JSON; [`coerce`]: JSON → OPC UA values for writes.
//! - [`netwatch`]: the OS network-change signal that ends a reconnect wait at once.
//! - [`write`]: [`Engine::write`], [`WriteError`], [`writable_by_policy`].
//! - [`certs`], [`discover`]: the `stator certs` and `stator discover` commands.

pub mod certs;
pub mod coerce;
pub mod connection;
pub mod diag;
pub mod discover;
pub mod discovery;
pub mod engine;
pub mod netwatch;
pub mod retry;
pub mod subscribe;
pub mod values;
pub mod write;

pub use diag::{DiagReport, ServerCertificate, ServerStatus, CERT_WARN_DAYS};
pub use engine::{Backoff, Engine, EngineOptions, PasswordFn};
pub use write::{split_element, writable_by_policy, WriteError};
