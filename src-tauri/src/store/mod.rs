//! SQLite: schema, migrations, and one file per table family. No SQL outside this module.

pub mod cli;
