//! What a command handler works with: the server, its client, the reply writer, the command's
//! clock; the error type handlers return; and shard guards that propagate as they go.
//!
//! A handler locks the shards it needs through [`Context::lock`] (one key),
//! [`Context::lock_keys`] (several keys, in the global order) or [`Context::lock_databases`]
//! (whole databases). The guards deref to the store's shards. A write calls `propagate` on its
//! guard with its deterministic form while the guard is alive; that also records the change for
//! WATCH. When a guard is dropped it propagates the deletion of keys that expired under it and
//! serves clients blocked on keys that became ready, before it unlocks, so the propagation
//! stream is ordered exactly as the shard locks ordered the commands.
//!
//! Inside EXEC the transaction already holds every lock it needs (an [`ExecScope`]): the same
//! calls then borrow from the scope instead of locking, propagation is captured so the whole
//! transaction is appended at once, and blocked clients are served only when the transaction
//! ends.

use std::borrow::Cow;
use std::cell::{RefCell, RefMut};
use std::ops::{Deref, DerefMut};

use parking_lot::MutexGuard;
use resp::ReplyWriter;
use smallvec::SmallVec;
use store::keyspace::shard_index;
use store::{Shard, SHARD_COUNT};

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

/// Redis's `addReplySubcommandSyntaxError`: `subcommand` as the client wrote it (at most 128
/// bytes), `container` the command to ask HELP of.
pub fn subcommand_syntax_error(container: &str, subcommand: &[u8]) -> CommandError {
    CommandError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&subcommand[..subcommand.len().min(128)])
    ))
}

/// Locks held by a running transaction, lent to its commands.
pub trait HeldScope {
    /// Borrows shard `index` of `database` (the scope must hold it).
    fn borrow(&self, database: usize, index: usize) -> RefMut<'_, Shard>;
    /// Keeps a propagated write for the end of the transaction.
    fn capture(&self, database: usize, args: &[&[u8]]);
}

/// The locks and captured propagation of one EXEC.
pub struct ExecScope<'s> {
    /// Sorted by (database, shard).
    held: Vec<((usize, usize), RefCell<MutexGuard<'s, Shard>>)>,
    captured: RefCell<Vec<(usize, Vec<Vec<u8>>)>>,
}

impl<'s> ExecScope<'s> {
    /// Locks the shards of `(database, key)` pairs, or every shard when `everything`.
    pub fn lock<'k>(
        server: &'s Server,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
        everything: bool,
    ) -> Self {
        let mut ids: Vec<(usize, usize)> = if everything {
            (0..server.keyspace.database_count())
                .flat_map(|database| (0..SHARD_COUNT).map(move |shard| (database, shard)))
                .collect()
        } else {
            keys.into_iter()
                .map(|(database, key)| (database, shard_index(key)))
                .collect()
        };
        ids.sort_unstable();
        ids.dedup();
        let held = ids
            .into_iter()
            .map(|(database, shard)| {
                let guard = server.keyspace.database(database).lock_shard(shard);
                ((database, shard), RefCell::new(guard))
            })
            .collect();
        ExecScope {
            held,
            captured: RefCell::new(Vec::new()),
        }
    }

    /// The writes the transaction propagated, in order.
    pub fn take_captured(&self) -> Vec<(usize, Vec<Vec<u8>>)> {
        std::mem::take(&mut *self.captured.borrow_mut())
    }

    /// Ends the transaction: propagates expired keys and serves blocked clients, then unlocks.
    pub fn finish(self, server: &Server) {
        let now_ms = crate::server::unix_time_ms();
        for ((database, _), guard) in self.held {
            let mut guard = guard.into_inner();
            if guard.blocked.has_ready() {
                crate::blocking::serve_ready(server, database, &mut guard, now_ms);
            }
            if guard.has_expired() {
                server.propagate_expired(database, &mut guard);
            }
        }
    }
}

impl HeldScope for ExecScope<'_> {
    fn borrow(&self, database: usize, index: usize) -> RefMut<'_, Shard> {
        let position = self
            .held
            .binary_search_by_key(&(database, index), |(id, _)| *id)
            .expect("a transaction holds the lock of every shard its commands touch");
        RefMut::map(self.held[position].1.borrow_mut(), |guard| &mut **guard)
    }

    fn capture(&self, database: usize, args: &[&[u8]]) {
        self.captured
            .borrow_mut()
            .push((database, args.iter().map(|arg| arg.to_vec()).collect()));
    }
}

pub struct Context<'a> {
    pub server: &'a Server,
    pub client: &'a mut Client,
    pub reply: ReplyWriter<'a>,
    /// The command's clock (Unix milliseconds), fixed for the whole command.
    pub now_ms: u64,
    pub command: &'a Command,
    /// Set while the command runs inside EXEC.
    pub scope: Option<&'a (dyn HeldScope + 'a)>,
}

impl<'a> Context<'a> {
    /// The client's selected database.
    pub fn database(&self) -> usize {
        self.client.database
    }

    /// Whether the command runs inside a transaction (blocking commands must not block).
    pub fn in_transaction(&self) -> bool {
        self.scope.is_some()
    }

    fn guard(&self, database: usize, index: usize) -> ShardGuard<'a> {
        match self.scope {
            Some(scope) => ShardGuard::Held(scope.borrow(database, index)),
            None => ShardGuard::Owned(self.server.keyspace.database(database).lock_shard(index)),
        }
    }

    /// Locks the shard of `key` in the client's database.
    pub fn lock(&self, key: &[u8]) -> Locked<'a> {
        let database = self.client.database;
        Locked {
            guard: self.guard(database, shard_index(key)),
            server: self.server,
            database,
            scope: self.scope,
        }
    }

    /// Locks shard `index` of the client's database (RANDOMKEY's pick).
    pub fn lock_shard_index(&self, index: usize) -> Locked<'a> {
        let database = self.client.database;
        Locked {
            guard: self.guard(database, index),
            server: self.server,
            database,
            scope: self.scope,
        }
    }

    /// Locks the shards of several keys of the client's database, in the global order.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> LockedMany<'a> {
        let database = self.client.database;
        self.lock_pairs(keys.into_iter().map(|key| (database, key)))
    }

    /// Locks the shards of `(database, key)` pairs (keys of several databases: MOVE, COPY).
    pub fn lock_pairs<'k>(
        &self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
    ) -> LockedMany<'a> {
        let mut ids: SmallVec<[(usize, usize); 8]> = keys
            .into_iter()
            .map(|(database, key)| (database, shard_index(key)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let guards = ids
            .into_iter()
            .map(|(database, index)| ((database, index), self.guard(database, index)))
            .collect();
        LockedMany {
            guards,
            server: self.server,
            scope: self.scope,
        }
    }

    /// Locks every shard of the given databases, in the global order (FLUSHDB, SWAPDB, KEYS).
    pub fn lock_databases(&self, databases: &[usize]) -> LockedMany<'a> {
        let mut sorted: SmallVec<[usize; 4]> = databases.iter().copied().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let guards = sorted
            .into_iter()
            .flat_map(|database| (0..SHARD_COUNT).map(move |index| (database, index)))
            .map(|(database, index)| ((database, index), self.guard(database, index)))
            .collect();
        LockedMany {
            guards,
            server: self.server,
            scope: self.scope,
        }
    }

    /// Emits a keyspace notification for `key` of the client's database (see `crate::notify`).
    pub fn notify(&self, class: crate::notify::EventClass, event: &str, key: &[u8]) {
        self.server.notify(class, event, self.client.database, key);
    }

    /// Emits `event` for `key`, then `del` when the command emptied (deleted) it from `shard`.
    pub fn notify_removal(
        &self,
        class: crate::notify::EventClass,
        event: &str,
        shard: &Shard,
        key: &[u8],
    ) {
        self.server
            .notify_removal(class, event, self.client.database, shard, key, self.now_ms);
    }

    /// Propagates a write that holds its locks some other way (whole-database commands).
    pub fn propagate(&self, args: &[&[u8]]) {
        match self.scope {
            Some(scope) => scope.capture(self.client.database, args),
            None => self.server.propagation.append(self.client.database, args),
        }
    }

    /// Locks every shard of every database (FLUSHALL).
    pub fn lock_everything(&self) -> LockedMany<'a> {
        let databases: Vec<usize> = (0..self.server.keyspace.database_count()).collect();
        self.lock_databases(&databases)
    }
}

/// A shard locked by the command itself, or borrowed from the transaction holding it.
pub enum ShardGuard<'a> {
    Owned(MutexGuard<'a, Shard>),
    Held(RefMut<'a, Shard>),
}

impl Deref for ShardGuard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        match self {
            ShardGuard::Owned(guard) => guard,
            ShardGuard::Held(guard) => guard,
        }
    }
}

impl DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        match self {
            ShardGuard::Owned(guard) => guard,
            ShardGuard::Held(guard) => guard,
        }
    }
}

/// Appends a write to the stream (or the transaction's capture) and records the change of its
/// keys for WATCH through `touch`.
/// Which keys a propagated write changed (for WATCH and tracking).
#[derive(Clone, Copy)]
pub enum Changed<'a> {
    /// Every key the command names.
    KeysOfCommand,
    /// Only these (SMOVE of a member the destination already holds changes the source alone).
    Only(&'a [&'a [u8]]),
}

fn propagate_write(
    server: &Server,
    scope: Option<&dyn HeldScope>,
    database: usize,
    args: &[&[u8]],
    changed: Changed<'_>,
    watched: bool,
    mut touch: impl FnMut(&[u8]),
) {
    let tracking = server.tracking.active();
    if watched || tracking {
        let mut changed_key = |key: &[u8]| {
            if watched {
                touch(key);
            }
            if tracking {
                server.tracking.invalidate(key);
            }
        };
        match changed {
            Changed::KeysOfCommand => {
                if let Some(command) = server.commands.get(args[0]) {
                    for position in command.key_positions(args) {
                        changed_key(args[position]);
                    }
                }
            }
            Changed::Only(keys) => keys.iter().for_each(|key| changed_key(key)),
        }
    }
    match scope {
        Some(scope) => scope.capture(database, args),
        None => server.propagation.append(database, args),
    }
}

fn find_guard(
    guards: &[((usize, usize), ShardGuard<'_>)],
    database: usize,
    index: usize,
) -> Option<usize> {
    guards
        .binary_search_by_key(&(database, index), |(id, _)| *id)
        .ok()
}

/// Propagates the deletion of keys that expired under a guard (before any write that follows,
/// so replicas see the deletion first).
pub(crate) fn flush_expired(
    server: &Server,
    scope: Option<&dyn HeldScope>,
    database: usize,
    shard: &mut Shard,
) {
    if !shard.has_expired() {
        return;
    }
    match scope {
        None => server.propagate_expired(database, shard),
        Some(scope) => {
            for key in shard.take_expired() {
                shard.watched.touch(&key);
                server.tracking.invalidate_expired(&key);
                server
                    .stats
                    .expired_keys
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                scope.capture(database, &[server.expired_deletion(), &key]);
                server.notify(
                    crate::notify::EventClass::Expired,
                    "expired",
                    database,
                    &key,
                );
            }
        }
    }
}

/// Propagates the deletion of expired keys, and (outside transactions) serves blocked clients.
fn settle(server: &Server, scope: Option<&dyn HeldScope>, database: usize, shard: &mut Shard) {
    flush_expired(server, scope, database, shard);
    if scope.is_none() && shard.blocked.has_ready() {
        let now_ms = crate::server::unix_time_ms();
        crate::blocking::serve_ready(server, database, shard, now_ms);
    }
}

/// One locked shard.
pub struct Locked<'s> {
    guard: ShardGuard<'s>,
    server: &'s Server,
    database: usize,
    scope: Option<&'s (dyn HeldScope + 's)>,
}

impl<'s> Locked<'s> {
    /// Locks shard `index` of `database` outside any command (background tasks).
    pub fn lock_shard(server: &'s Server, database: usize, index: usize) -> Self {
        let guard = server.keyspace.database(database).lock_shard(index);
        Locked {
            guard: ShardGuard::Owned(guard),
            server,
            database,
            scope: None,
        }
    }

    /// Propagates the deterministic form of a write made under this lock (and records the
    /// change of its keys for WATCH).
    pub fn propagate(&mut self, args: &[&[u8]]) {
        let (server, scope, database) = (self.server, self.scope, self.database);
        flush_expired(server, scope, database, &mut self.guard);
        let watched = !self.guard.watched.is_empty();
        let guard = &mut self.guard;
        propagate_write(
            server,
            scope,
            database,
            args,
            Changed::KeysOfCommand,
            watched,
            |key| guard.watched.touch(key),
        );
    }

    pub fn database(&self) -> usize {
        self.database
    }

    /// Emits a keyspace notification for `key` of this shard's database (see `crate::notify`).
    pub fn notify(&self, class: crate::notify::EventClass, event: &str, key: &[u8]) {
        self.server.notify(class, event, self.database, key);
    }

    /// Emits `event` for `key`, then `del` when the key is gone (the command emptied it).
    pub fn notify_removal(
        &self,
        class: crate::notify::EventClass,
        event: &str,
        key: &[u8],
        now_ms: u64,
    ) {
        self.server
            .notify_removal(class, event, self.database, &self.guard, key, now_ms);
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
        if self.guard.blocked.has_ready() || self.guard.has_expired() {
            settle(self.server, self.scope, self.database, &mut self.guard);
        }
    }
}

/// Several locked shards.
pub struct LockedMany<'s> {
    guards: SmallVec<[((usize, usize), ShardGuard<'s>); 4]>,
    server: &'s Server,
    scope: Option<&'s (dyn HeldScope + 's)>,
}

impl<'s> LockedMany<'s> {
    /// Locks the shards of `(database, key)` pairs outside any command (background tasks).
    pub fn lock_pairs<'k>(
        server: &'s Server,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
    ) -> Self {
        let mut ids: SmallVec<[(usize, usize); 8]> = keys
            .into_iter()
            .map(|(database, key)| (database, shard_index(key)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let guards = ids
            .into_iter()
            .map(|(database, index)| {
                let guard = server.keyspace.database(database).lock_shard(index);
                ((database, index), ShardGuard::Owned(guard))
            })
            .collect();
        LockedMany {
            guards,
            server,
            scope: None,
        }
    }

    /// The locked shard of `key` in `database`.
    pub fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        let position = find_guard(&self.guards, database, shard_index(key))
            .expect("the key's shard was locked with the others");
        &mut self.guards[position].1
    }

    /// Every locked shard with its database and index.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, usize, &mut Shard)> + use<'_, 's> {
        self.guards
            .iter_mut()
            .map(|((database, index), guard)| (*database, *index, &mut **guard))
    }

    /// Propagates a write of `database` made under these locks (and records the change of its
    /// keys for WATCH).
    pub fn propagate(&mut self, database: usize, args: &[&[u8]]) {
        self.propagate_changing(database, args, Changed::KeysOfCommand);
    }

    /// Records `writes` changes of `key` that are not propagated because nothing consumes them
    /// (see `Propagation::is_active`): WATCH and tracking still see the key change.
    pub fn changed_unpropagated(&mut self, database: usize, key: &[u8], writes: u64) {
        if writes == 0 {
            return;
        }
        let keys = [key];
        let (server, scope) = (self.server, self.scope);
        debug_assert!(scope.is_none(), "a scope captures every write");
        let guards = &mut self.guards;
        let watched = guards.iter().any(|(_, guard)| !guard.watched.is_empty());
        let tracking = server.tracking.active();
        for key in keys {
            if watched {
                if let Some(position) = find_guard(guards, database, shard_index(key)) {
                    guards[position].1.watched.touch(key);
                }
            }
            if tracking {
                server.tracking.invalidate(key);
            }
        }
        server.propagation.count_unpropagated(writes);
    }

    /// Propagates a write that changed only some of the keys it names.
    pub fn propagate_changing(&mut self, database: usize, args: &[&[u8]], changed: Changed<'_>) {
        let watched = self
            .guards
            .iter()
            .any(|(_, guard)| !guard.watched.is_empty());
        let (server, scope) = (self.server, self.scope);
        let guards = &mut self.guards;
        propagate_write(server, scope, database, args, changed, watched, |key| {
            if let Some(position) = find_guard(guards, database, shard_index(key)) {
                guards[position].1.watched.touch(key);
            }
        });
    }

    /// Propagates a write that concerns whole databases (FLUSHDB, FLUSHALL, SWAPDB).
    pub fn propagate_global(&mut self, database: usize, args: &[&[u8]]) {
        let (server, scope) = (self.server, self.scope);
        for ((guard_database, _), guard) in self.guards.iter_mut() {
            flush_expired(server, scope, *guard_database, guard);
        }
        match self.scope {
            Some(scope) => scope.capture(database, args),
            None => self.server.propagation.append(database, args),
        }
    }
}

impl Drop for LockedMany<'_> {
    fn drop(&mut self) {
        let server = self.server;
        let scope = self.scope;
        for ((database, _), guard) in self.guards.iter_mut() {
            if guard.blocked.has_ready() || guard.has_expired() {
                settle(server, scope, *database, guard);
            }
        }
    }
}
