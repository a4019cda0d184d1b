//! Stator: an HMI core for Siemens S7-1200 PLCs over OPC UA.
//!
//! See ARCHITECTURE.md at the repository root for the module map and the invariants.

pub mod alarms;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod code;
pub mod config;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod history;
pub mod live;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod mqtt;
pub mod plc;
pub mod remote;
pub mod roles;
pub mod service;
pub mod sim;
pub mod store;
