//! HTTP + WebSocket transport for remote browsers (axum). Translates wire ⇄ [`crate::api`];
//! never decides permissions. The wire contract is docs/protocol.md.
//!
//! [`start`] runs the server in-process (tests, `stator serve`, the desktop shell) and returns a
//! [`ServerHandle`] with the bound address and a bounded shutdown.

mod assets;
mod compact;
mod conn;
mod fanout;
mod http;
mod openapi;
mod origin;
mod server;
mod setup_code;
mod ws;
mod wsock;

pub use compact::PROTOCOL as COMPACT_PROTOCOL;
pub use server::{router, start, ServerConfig, ServerError, ServerHandle};

/// The `update` message for these changes exactly as `/ws` sends it, in the default JSON or the
/// compact encoding (docs/protocol.md). Public for the bench, which measures both.
pub fn encode_update(compact: bool, seq: u64, plcs: &[crate::live::PlcDelta]) -> String {
    fanout::encode(compact, seq, plcs).as_str().to_string()
}
