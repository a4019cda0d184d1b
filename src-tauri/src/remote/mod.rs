//! HTTP + WebSocket transport for remote browsers (axum). Translates wire ⇄ [`crate::api`];
//! never decides permissions. The wire contract is docs/protocol.md.
//!
//! [`start`] runs the server in-process (tests, `stator serve`, the desktop shell) and returns a
//! [`ServerHandle`] with the bound address and a bounded shutdown.

mod assets;
mod compact;
mod fanout;
mod http;
pub mod metrics;
pub mod serve;
mod server;
mod ws;
mod wsock;

pub use server::{start, ServerConfig, ServerError, ServerHandle};
