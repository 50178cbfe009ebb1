//! What a command handler works with: the server, its client, the reply writer, the command's
//! clock; the error type handlers return; and shard guards that propagate as they go.
//!
//! A handler locks the shards it needs through [`Context::lock`] / [`Context::lock_keys`]. The
//! guards deref to the store's shards; a write calls [`Locked::propagate`] with its
//! deterministic form while the guard is alive, and the guard propagates the deletion of any
//! key that expired under it before it unlocks, so the propagation stream is ordered exactly as
//! the shard locks ordered the commands.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use parking_lot::MutexGuard;
use resp::ReplyWriter;
use store::{LockedShards, Shard};

use crate::client::Client;
use crate::command::Command;
use crate::server::Server;

/// A user error: the whole error line, code first (`ERR ...`, `WRONGTYPE ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub Cow<'static, str>);

impl CommandError {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        CommandError(message.into())
    }
}

impl From<&'static str> for CommandError {
    fn from(message: &'static str) -> Self {
        CommandError(Cow::Borrowed(message))
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        CommandError(Cow::Owned(message))
    }
}

pub type CommandResult = Result<(), CommandError>;

/// Redis's error lines that many commands share.
pub mod errors {
    pub const SYNTAX: &str = "ERR syntax error";
    pub const WRONG_TYPE: &str =
        "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const DB_INDEX_OUT_OF_RANGE: &str = "ERR DB index is out of range";
    pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '%s' command";
    pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
    pub const NO_AUTH: &str = "NOAUTH Authentication required.";
}

/// The standard arity error for `command_name`.
pub fn wrong_arity(command_name: &str) -> CommandError {
    CommandError::new(format!(
        "ERR wrong number of arguments for '{command_name}' command"
    ))
}

pub struct Context<'a> {
    pub server: &'a Server,
    pub client: &'a mut Client,
    pub reply: ReplyWriter<'a>,
    /// The command's clock (Unix milliseconds), fixed for the whole command.
    pub now_ms: u64,
    pub command: &'a Command,
}

impl<'a> Context<'a> {
    /// The client's selected database.
    pub fn database(&self) -> usize {
        self.client.database
    }

    /// Locks the shard of `key` in the client's database.
    pub fn lock(&self, key: &[u8]) -> Locked<'a> {
        let database = self.client.database;
        self.server.lock(database, key)
    }

    /// Locks the shards of several keys of the client's database, in the global order.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> LockedMany<'a> {
        let database = self.client.database;
        self.server
            .lock_keys(keys.into_iter().map(|key| (database, key)))
    }

    /// Propagates a write of the client's database (for writes that hold no shard guard, such
    /// as FLUSHDB, which call it while holding their own locks).
    pub fn propagate(&self, args: &[&[u8]]) {
        self.server.propagation.append(self.client.database, args);
    }
}

/// One locked shard. Propagates expired keys when dropped.
pub struct Locked<'s> {
    pub(crate) guard: MutexGuard<'s, Shard>,
    pub(crate) server: &'s Server,
    pub(crate) database: usize,
}

impl Locked<'_> {
    /// Propagates the deterministic form of a write made under this lock.
    pub fn propagate(&self, args: &[&[u8]]) {
        self.server.propagation.append(self.database, args);
    }

    pub fn database(&self) -> usize {
        self.database
    }
}

impl Deref for Locked<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.guard.blocked.has_ready() {
            let now_ms = crate::server::unix_time_ms();
            crate::blocking::serve_ready(self.server, self.database, &mut self.guard, now_ms);
        }
        if self.guard.has_expired() {
            self.server
                .propagate_expired(self.database, &mut self.guard);
        }
    }
}

/// Several locked shards. Propagates expired keys when dropped.
pub struct LockedMany<'s> {
    pub(crate) shards: LockedShards<'s>,
    pub(crate) server: &'s Server,
}

impl LockedMany<'_> {
    /// The locked shard of `key` in `database`.
    pub fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        self.shards.shard(database, key)
    }

    pub fn propagate(&self, database: usize, args: &[&[u8]]) {
        self.server.propagation.append(database, args);
    }
}

impl Drop for LockedMany<'_> {
    fn drop(&mut self) {
        let server = self.server;
        for (database, shard) in self.shards.iter_mut() {
            if shard.blocked.has_ready() {
                let now_ms = crate::server::unix_time_ms();
                crate::blocking::serve_ready(server, database, shard, now_ms);
            }
            if shard.has_expired() {
                server.propagate_expired(database, shard);
            }
        }
    }
}
