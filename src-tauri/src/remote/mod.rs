//! HTTP + WebSocket transport for remote browsers (axum). Translates wire ⇄ api; never decides
//! permissions.

pub mod serve;
