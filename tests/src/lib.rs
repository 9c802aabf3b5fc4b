//! `lbgp-tests`: the test kit. An AWS emulator per test (moto with lbgp's
//! fidelity layer), mesh fixtures built with the plain SDK, and a local
//! Lambda Runtime API that drives the real function binaries.
#![forbid(unsafe_code)]

pub mod accounts_fixtures;
pub mod cli;
pub mod emulator;
pub mod events;
pub mod failover_fixtures;
pub mod fixtures;
pub mod migration_fixtures;
pub mod runtime_api;
pub mod styles;

pub use emulator::{Calls, Emulator};
pub use fixtures::{HOME, TestEnv};
