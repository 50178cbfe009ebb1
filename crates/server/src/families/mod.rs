//! Command families: one file per family of commands, as Redis groups them. Each handler's doc
//! line is its syntax; each file's `register` lists its commands for the command table.
//!
//! A handler parses its arguments (errors are values: `Err(CommandError)`), locks what it needs
//! through the `Context`, operates on the store, propagates the write's deterministic form with
//! the guard still held, and replies.
//!
//! Keyspace notifications. A write emits its events right after it propagates, with its guard
//! still held (so events are ordered as the writes are), with Redis's event names, classes and
//! order:
//!
//! - `context.notify(EventClass::List, "lpush", key)` for one event on a key of the client's
//!   database (`shard.notify(...)` on a `Locked`, `server.notify(class, event, database, key)`
//!   where there is no context, as when serving a blocked client);
//! - `context.notify_removal(EventClass::Set, "srem", &shard, key)` for commands that remove
//!   elements: the event, then `del` when the key is gone (the command emptied it);
//! - `new` (class `n`) needs nothing: the store records the keys a command creates, and they are
//!   announced before the command's next event (or when it ends). A command that creates a key
//!   in another database (MOVE, COPY) calls `server.notify_created(database)` first. A command
//!   that takes an entry out and puts it back uses `Shard::put_back`, which creates nothing.
//! - `expired` (expiry) and `evicted` (eviction) are emitted by the server itself.
//!
//! A write that changes nothing emits nothing, as it propagates nothing.

pub mod acl;
pub mod aof;
pub mod bitmaps;
pub mod cluster;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod modules;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use crate::command::CommandTable;

/// Registers every family's handlers.
pub fn register_all(table: &mut CommandTable) {
    acl::register(table);
    aof::register(table);
    bitmaps::register(table);
    cluster::register(table);
    connection::register(table);
    geo::register(table);
    hashes::register(table);
    hyperloglog::register(table);
    keys::register(table);
    lists::register(table);
    modules::register(table);
    persistence::register(table);
    pubsub::register(table);
    replication::register(table);
    scripting::register(table);
    server::register(table);
    streams::register(table);
    sets::register(table);
    sort::register(table);
    strings::register(table);
    transactions::register(table);
    zsets::register(table);
}
