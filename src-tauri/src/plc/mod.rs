//! The acquisition engine: one task per PLC, connection state machine, discovery,
//! subscriptions (or polling), reconnect, and writes. Knows nothing about users.

pub mod certs;
pub mod discover;
