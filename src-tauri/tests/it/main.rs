//! Stator's integration tests as ONE test binary (linking the crate once instead of once per
//! file). Each module owns one area; `support` is the shared harness. Real parts everywhere:
//! OPC UA over TCP to the built-in simulator, real SQLite files, real sockets.
//!
//! `auth_timing` stays a separate binary (`tests/auth_timing.rs`): it measures and must not share
//! the two cores with sibling tests.

#[allow(dead_code)]
mod support;

mod alarms;
mod auth;
mod auth_cli;
mod auth_secrets;
mod cli_config;
mod config_api;
mod dispatch;
mod engine;
mod history;
mod hub;
mod live;
mod messages;
mod mqtt;
mod remote_compact;
mod remote_conn;
mod remote_http;
mod remote_router;
mod remote_sim;
mod remote_tls;
mod remote_write;
mod remote_ws;
mod service;
mod sim;
mod store;
mod tokens;
