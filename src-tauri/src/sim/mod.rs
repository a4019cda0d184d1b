//! The built-in S7-1200-like OPC UA server (`stator sim`, `--demo`, tests). Not needed in production.

pub mod cli;
