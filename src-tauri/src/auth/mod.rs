//! Who may do what: roles → permissions, password hashing, sessions and tokens, lockout.
//! The single place where permissions are decided; transports never decide them.

pub mod secrets;
