//! HTTP + WebSocket transport for remote browsers (axum). Translates wire ⇄ [`crate::api`];
//! never decides permissions. The wire contract is docs/protocol.md.
//!
//! [`start`] runs the server in-process (tests, `stator serve`, the desktop shell) and returns a
//! [`ServerHandle`] with the bound address and a bounded shutdown.

mod assets;
mod conn;
mod fanout;
mod http;
mod origin;
mod server;
mod setup_code;
mod ws;

pub use server::{start, ServerConfig, ServerError, ServerHandle};
