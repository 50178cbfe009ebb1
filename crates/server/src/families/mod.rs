//! Command families: one file per family of commands, as Redis groups them. Each handler's doc
//! line is its syntax; each file's `register` lists its commands for the command table.
//!
//! A handler parses its arguments (errors are values: `Err(CommandError)`), locks what it needs
//! through the `Context`, operates on the store, propagates the write's deterministic form with
//! the guard still held, and replies. Keyspace notifications and client-side caching will hook
//! in at the same place as propagation.

pub mod aof;
pub mod connection;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use crate::command::CommandTable;

/// Registers every family's handlers.
pub fn register_all(table: &mut CommandTable) {
    aof::register(table);
    connection::register(table);
    hashes::register(table);
    keys::register(table);
    lists::register(table);
    pubsub::register(table);
    server::register(table);
    streams::register(table);
    sets::register(table);
    strings::register(table);
    transactions::register(table);
    zsets::register(table);
}
