//! Blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP today; BZPOPMIN, BZPOPMAX, BZMPOP,
//! XREAD / XREADGROUP BLOCK plug in the same way.
//!
//! Model. A blocking command first tries to serve itself like its non-blocking form. When it
//! cannot, it calls [`block`] while still holding the locks of all its keys: a [`Waiter`] is
//! queued (FIFO) on each key in the key's shard (`Shard::blocked`), so no write can slip between
//! the check and the registration. The connection then waits (`wait`) for one of: being served,
//! a retry request, the timeout, CLIENT UNBLOCK, or its own disconnection.
//!
//! Serving is done by the writer, as in Redis: a write that makes a key a client waits on
//! non-empty marks the key ready under the shard lock (`Shard::blocked.signal`; `Shard::insert`
//! does it for every new key), and the shard guard, before unlocking, calls [`serve_ready`]. It
//! walks the key's waiters oldest first; for each, it *claims* the waiter (an atomic flag: a
//! waiter blocked on keys of several shards can be reached by several writers, only one may
//! serve it) and lets the waiter's [`BlockedOperation`] pop what it needs from the still-locked
//! shard, write the reply, and propagate the pop (not the blocking command). The element thus
//! changes hands atomically with the write that produced it: no other command can take it, and
//! no element is delivered twice. An operation that needs a shard the writer does not hold
//! (BLMOVE to a key of another shard) asks for a retry instead: the waiter's connection runs the
//! command again with all its locks.
//!
//! To add a blocking command: implement [`BlockedOperation`] for its operation (serve from a
//! locked shard, and its timeout reply), make its handler try the non-blocking path first and
//! then call [`block`], and make every write that can satisfy it call `shard.blocked.signal(key)`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;
use resp::{Protocol, ReplyWriter};
use store::blocked::WaiterToken;
use store::{Shard, SmallBytes};
use tokio::sync::Notify;

use crate::context::{CommandError, Context, LockedMany};
use crate::server::Server;

/// Most rounds of serving one shard's ready keys after one write (serving can make other keys
/// ready, e.g. BLMOVE into a key someone waits on).
const SERVE_ROUNDS_MAX: usize = 1024;

/// Room reserved for a served waiter's reply (a popped element fits without regrowing).
const SERVED_REPLY_BYTES: usize = 128;

/// What a blocked client does once a key it waits on is ready.
pub trait BlockedOperation: Send + Sync {
    /// Serves the waiter from `key` of the locked `shard` of `database`: pops what it needs,
    /// writes the reply, propagates. Must change nothing when it returns anything but `Served`.
    fn serve(
        &self,
        server: &Server,
        database: usize,
        shard: &mut Shard,
        key: &[u8],
        now_ms: u64,
        reply: &mut ReplyWriter,
    ) -> ServeOutcome;

    /// The reply when the timeout expires (a null array for pops, a null bulk for moves).
    fn timeout_reply(&self, reply: &mut ReplyWriter);

    /// Whether the deletion of a key wakes the waiter (XREADGROUP: Redis's "blocking keys on
    /// nokey").
    fn wakes_on_deletion(&self) -> bool {
        false
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ServeOutcome {
    Served,
    /// Nothing to take (empty, or another type now).
    NotReady,
    /// The operation needs locks the writer does not hold: run the command again.
    Retry,
}

/// How a wait ended.
#[derive(Debug)]
pub enum WaitOutcome {
    /// The reply to send.
    Reply(Vec<u8>),
    /// Run the command again.
    Retry,
    /// The connection is closing.
    Closed,
}

#[derive(Debug)]
enum State {
    Waiting,
    Served(Vec<u8>),
    Retry,
    TimedOut,
    Unblocked(Option<String>),
}

/// A client blocked on keys.
pub struct Waiter {
    pub client_id: u64,
    pub database: usize,
    pub keys: Vec<SmallBytes>,
    pub protocol: Protocol,
    /// Unix milliseconds; 0 blocks forever.
    pub deadline_ms: u64,
    /// The ACL generation the command was checked at: after a change of users the command
    /// runs again (and is checked again) instead of being served.
    acl_generation: u64,
    operation: Box<dyn BlockedOperation>,
    claimed: AtomicBool,
    state: Mutex<State>,
    notify: Notify,
}

impl Waiter {
    fn try_claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn release_claim(&self) {
        self.claimed.store(false, Ordering::Release);
        self.notify.notify_one();
    }

    fn finish(&self, state: State) {
        *self.state.lock() = state;
        self.notify.notify_one();
    }
}

/// Every blocked client, by client id (CLIENT UNBLOCK, INFO blocked_clients).
#[derive(Default)]
pub struct BlockedClients {
    by_client: Mutex<HashMap<u64, Arc<Waiter>>>,
}

impl BlockedClients {
    pub fn len(&self) -> usize {
        self.by_client.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct keys clients are blocked on, and those of them whose deletion wakes a client
    /// (INFO `total_blocking_keys`, `total_blocking_keys_on_nokey`).
    pub fn key_counts(&self) -> (usize, usize) {
        let waiters: Vec<Arc<Waiter>> = self.by_client.lock().values().cloned().collect();
        let mut keys: hashbrown::HashSet<(usize, SmallBytes)> = hashbrown::HashSet::new();
        let mut on_deletion: hashbrown::HashSet<(usize, SmallBytes)> = hashbrown::HashSet::new();
        for waiter in waiters {
            for key in &waiter.keys {
                keys.insert((waiter.database, key.clone()));
                if waiter.operation.wakes_on_deletion() {
                    on_deletion.insert((waiter.database, key.clone()));
                }
            }
        }
        (keys.len(), on_deletion.len())
    }

    pub fn is_blocked(&self, client_id: u64) -> bool {
        self.by_client.lock().contains_key(&client_id)
    }

    /// Ends every wait (with `error`, or the timeout reply): the server became a replica.
    pub fn unblock_all(&self, error: Option<String>) {
        let waiters: Vec<Arc<Waiter>> = self.by_client.lock().values().cloned().collect();
        for waiter in waiters {
            if waiter.try_claim() {
                waiter.finish(State::Unblocked(error.clone()));
            }
        }
    }

    /// CLIENT UNBLOCK: ends the wait of `client_id` with its timeout reply, or with `error`.
    /// Returns whether the client was blocked.
    pub fn unblock(&self, client_id: u64, error: Option<String>) -> bool {
        let Some(waiter) = self.by_client.lock().get(&client_id).cloned() else {
            return false;
        };
        if !waiter.try_claim() {
            return false;
        }
        waiter.finish(State::Unblocked(error));
        true
    }
}

/// Parses a blocking timeout in seconds (decimals allowed) into an absolute deadline in Unix
/// milliseconds, 0 meaning forever, with Redis's errors.
pub fn parse_timeout_seconds(arg: &[u8], now_ms: u64) -> Result<u64, CommandError> {
    // `strtold` syntax, as Redis reads it (hexadecimal included).
    let seconds = store::number::parse_long_double(arg)
        .map(|seconds| seconds.to_f64())
        .ok_or_else(|| CommandError::from("ERR timeout is not a float or out of range"))?;
    let milliseconds = (seconds * 1000.0).ceil();
    if milliseconds > i64::MAX as f64 {
        return Err("ERR timeout is out of range".into());
    }
    if milliseconds < 0.0 {
        return Err("ERR timeout is negative".into());
    }
    let milliseconds = milliseconds as u64;
    if milliseconds == 0 {
        return Ok(0);
    }
    if milliseconds > i64::MAX as u64 - now_ms {
        return Err("ERR timeout is out of range".into());
    }
    Ok(now_ms + milliseconds)
}

/// Blocks the context's client on `keys` (whose shards `locked` holds). The connection waits
/// after the handler returns.
pub fn block(
    context: &mut Context,
    locked: &mut LockedMany,
    keys: &[&[u8]],
    deadline_ms: u64,
    operation: Box<dyn BlockedOperation>,
) {
    // Inside a transaction a blocking command behaves as its non-blocking form.
    if context.in_transaction() {
        operation.timeout_reply(&mut context.reply);
        return;
    }
    let database = context.database();
    let waiter = Arc::new(Waiter {
        client_id: context.client.id,
        database,
        keys: keys.iter().map(|key| SmallBytes::new(key)).collect(),
        protocol: context.client.protocol,
        deadline_ms,
        acl_generation: context.client.user_generation,
        operation,
        claimed: AtomicBool::new(false),
        state: Mutex::new(State::Waiting),
        notify: Notify::new(),
    });
    let token: WaiterToken = waiter.clone();
    for key in keys {
        let shard = locked.shard(database, key);
        // A key given twice is queued once.
        if !shard
            .blocked
            .waiters(key)
            .any(|queued| Arc::ptr_eq(queued, &token))
        {
            shard
                .blocked
                .block(key, token.clone(), waiter.operation.wakes_on_deletion());
        }
    }
    context
        .server
        .blocked
        .by_client
        .lock()
        .insert(waiter.client_id, waiter.clone());
    context.client.blocked = Some(waiter);
}

/// Serves the waiters of the keys that became ready in `shard` (locked by the caller).
pub fn serve_ready(server: &Server, database: usize, shard: &mut Shard, now_ms: u64) {
    for _ in 0..SERVE_ROUNDS_MAX {
        if !shard.blocked.has_ready() {
            return;
        }
        for key in shard.blocked.take_ready() {
            // Walk the queue in place: a served waiter leaves it (the position stays), one that
            // cannot be served stays (the position moves on).
            let mut position = 0;
            let mut key_live = shard.is_live(&key, now_ms);
            loop {
                // Once the key is gone only waiters woken by its deletion can be served.
                if !key_live && shard.blocked.deletion_waiter_count(&key) == 0 {
                    break;
                }
                let Some(token) = shard.blocked.waiter_at(&key, position) else {
                    break;
                };
                let Ok(waiter) = token.clone().downcast::<Waiter>() else {
                    position += 1;
                    continue;
                };
                let skip = waiter.database != database
                    || (!key_live && !waiter.operation.wakes_on_deletion());
                if skip || !waiter.try_claim() {
                    position += 1;
                    continue;
                }
                if waiter.acl_generation != server.acl.generation() {
                    shard.blocked.unblock_at(&key, position, &token);
                    waiter.finish(State::Retry);
                    continue;
                }
                let mut reply = Vec::with_capacity(SERVED_REPLY_BYTES);
                let mut writer = ReplyWriter::new(&mut reply, waiter.protocol);
                match waiter
                    .operation
                    .serve(server, database, shard, &key, now_ms, &mut writer)
                {
                    ServeOutcome::Served => {
                        shard.blocked.unblock_at(&key, position, &token);
                        waiter.finish(State::Served(reply));
                        key_live = shard.is_live(&key, now_ms);
                    }
                    ServeOutcome::Retry => {
                        shard.blocked.unblock_at(&key, position, &token);
                        waiter.finish(State::Retry);
                    }
                    ServeOutcome::NotReady => {
                        // Another waiter of the key may want something else (a stream reader
                        // after a list pop): keep going down the queue.
                        waiter.release_claim();
                        position += 1;
                    }
                }
            }
        }
    }
    tracing::warn!("serving blocked clients did not settle after {SERVE_ROUNDS_MAX} rounds");
}

/// Propagates the write a served waiter made (its pop or move, not the blocking command) from
/// the writer's locked `shard`, which holds every key the write names: watchers of those keys
/// see the change and tracking clients get their invalidations, as for any other write.
pub fn propagate_served(server: &Server, database: usize, shard: &mut Shard, args: &[&[u8]]) {
    let tracking = server.tracking.active();
    if let Some(command) = server.commands.get(args[0]) {
        for position in command.key_positions(args) {
            shard.watched.touch(args[position]);
            if tracking {
                server.tracking.invalidate(args[position]);
            }
        }
    }
    server.propagation.append(database, args);
}

/// Removes the waiter from every queue it is in and from the registry.
fn cleanup(server: &Server, waiter: &Arc<Waiter>) {
    let token: WaiterToken = waiter.clone();
    let database = waiter.database;
    let mut locked = server.lock_keys(waiter.keys.iter().map(|key| (database, &key[..])));
    for key in &waiter.keys {
        locked.shard(database, key).blocked.unblock(key, &token);
    }
    drop(locked);
    server.blocked.by_client.lock().remove(&waiter.client_id);
}

/// Waits until the blocked client is served, times out, is unblocked or must close (`kill`,
/// or `disconnected` resolving: the peer went away).
pub async fn wait(
    server: &Server,
    waiter: Arc<Waiter>,
    kill: &Notify,
    disconnected: impl std::future::Future<Output = ()>,
) -> WaitOutcome {
    tokio::pin!(disconnected);
    let mut peer_gone = false;
    let outcome = loop {
        {
            let mut state = waiter.state.lock();
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Waiting => {}
                State::Served(reply) => break WaitOutcome::Reply(reply),
                State::Retry => break WaitOutcome::Retry,
                State::TimedOut => break timeout_outcome(server, &waiter, None),
                State::Unblocked(error) => break timeout_outcome(server, &waiter, error),
            }
        }
        let sleep = async {
            if waiter.deadline_ms == 0 {
                std::future::pending::<()>().await;
            }
            let now = crate::server::unix_time_ms();
            let remaining = waiter.deadline_ms.saturating_sub(now);
            tokio::time::sleep(Duration::from_millis(remaining)).await;
        };
        tokio::select! {
            _ = waiter.notify.notified() => {}
            _ = sleep => {
                if waiter.try_claim() {
                    *waiter.state.lock() = State::TimedOut;
                }
            }
            _ = kill.notified() => {
                if waiter.try_claim() {
                    break WaitOutcome::Closed;
                }
                // Being served right now: take the reply, then close.
                kill.notify_one();
            }
            _ = &mut disconnected, if !peer_gone => {
                peer_gone = true;
                if waiter.try_claim() {
                    break WaitOutcome::Closed;
                }
                // Being served right now: let that finish, then close.
                kill.notify_one();
            }
        }
    };
    cleanup(server, &waiter);
    outcome
}

/// The reply of a wait that ended without being served: the command's timeout reply, or the
/// error of CLIENT UNBLOCK ... ERROR (counted in INFO errorstats, as every error reply).
fn timeout_outcome(server: &Server, waiter: &Waiter, error: Option<String>) -> WaitOutcome {
    let mut reply = Vec::new();
    let mut writer = ReplyWriter::new(&mut reply, waiter.protocol);
    match error {
        Some(message) => {
            server.stats.count_error(message.as_bytes());
            writer.error(message.as_bytes());
        }
        None => waiter.operation.timeout_reply(&mut writer),
    }
    WaitOutcome::Reply(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout_seconds(b"0", 1000), Ok(0));
        assert_eq!(parse_timeout_seconds(b"1.5", 1000), Ok(2500));
        assert_eq!(parse_timeout_seconds(b"0.0001", 1000), Ok(1001));
        assert_eq!(
            parse_timeout_seconds(b"-1", 1000),
            Err("ERR timeout is negative".into())
        );
        assert_eq!(
            parse_timeout_seconds(b"abc", 1000),
            Err("ERR timeout is not a float or out of range".into())
        );
        assert_eq!(
            parse_timeout_seconds(b"1e300", 1000),
            Err("ERR timeout is out of range".into())
        );
        assert_eq!(parse_timeout_seconds(b"0x10", 1000), Ok(17_000));
        assert_eq!(
            parse_timeout_seconds(b"0x7FFFFFFFFFFFFF", 1000),
            Err("ERR timeout is out of range".into())
        );
        assert_eq!(
            parse_timeout_seconds(b"inf", 1000),
            Err("ERR timeout is out of range".into())
        );
    }
}
