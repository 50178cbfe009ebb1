//! Point-in-time snapshots of the whole keyspace without fork, with little extra memory.
//!
//! A snapshot has a *moment*: [`Snapshot::begin`] runs while the caller holds every shard
//! (so no command straddles it) and installs the snapshot as the keyspace's shard observer.
//! From then on the first lock of each shard — by the walker ([`Snapshot::walk`]) that visits
//! the shards one by one, or by any command, expiry or background task that gets there first —
//! hands the shard's entries to the [`SnapshotVisitor`] before the locker can change anything
//! (copy-on-write at shard granularity: the copy is the serialized output itself). Each shard
//! is claimed once with an atomic flag, under its lock. When the walker has visited every
//! shard the observer is removed; the visitor then holds exactly the keyspace as it was at the
//! moment. While no snapshot runs, a shard lock costs one extra atomic load.
//!
//! The visitor sees shards in any order and from any thread (always one at a time): it must
//! not assume databases arrive together. RDB saving and the AOF rewrite's base file are
//! visitors. One snapshot runs at a time ([`Snapshot::begin`] refuses a second one).
//!
//! A look that changes nothing (counting keys, the expiry cycle finding nothing to expire)
//! locks with `lock_shard_unobserved`, so that it does not make its thread copy the shard.
//! `rdb-key-save-delay` (a test knob) makes the walker sleep per key it visited, after
//! unlocking the shard, so that a save takes long without holding anyone up.
//!
//! A snapshot can be cancelled ([`Snapshot::cancel`]: FLUSHALL and BGSAVE CANCEL end a
//! BGSAVE as Redis kills its child): the walker stops at its next shard (or within
//! [`CANCEL_CHECK_INTERVAL`] of a delay), the observer copies nothing more, and the walk
//! hands the visitor back with the error so that its temporary file is removed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use store::{Shard, ShardObserver, Value, SHARD_COUNT};

use crate::server::Server;

/// Receives a snapshot's entries, shard by shard.
pub trait SnapshotVisitor: Send + 'static {
    /// One key as it was at the snapshot's moment.
    fn entry(
        &mut self,
        database: usize,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()>;

    /// The concrete visitor back, once the snapshot is complete.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

thread_local! {
    /// Whether this thread is a snapshot's walker (`rdb-key-save-delay` slows only the walker:
    /// a command that gets to a shard first must not wait, as Redis's parent never waits for
    /// its child).
    static WALKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Keys the walker visited in the shard it just locked (it sleeps for them unlocked).
    static WALKED_KEYS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A running snapshot.
pub struct Snapshot {
    /// `rdb-key-save-delay` when the snapshot began: microseconds per key (nanoseconds when
    /// negative), a test knob that makes a background save or rewrite take long.
    key_save_delay: i64,
    visited: Box<[AtomicBool]>,
    visitor: Mutex<Box<dyn SnapshotVisitor>>,
    error: Mutex<Option<std::io::Error>>,
    cancelled: AtomicBool,
    /// Keys at the moment, and keys handed to the visitor so far (INFO's
    /// `current_save_keys_*`).
    keys_total: u64,
    keys_written: AtomicU64,
}

/// How often a walker sleeping for `rdb-key-save-delay` looks whether it was cancelled.
const CANCEL_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Why a walk ended without a complete snapshot, with the visitor (to abandon).
pub struct WalkFailure {
    pub error: std::io::Error,
    /// The snapshot was cancelled (not a write error).
    pub cancelled: bool,
    pub visitor: Box<dyn SnapshotVisitor>,
}

impl Snapshot {
    /// Takes the snapshot's moment. The caller must hold every shard of every database (for
    /// example through `Context::lock_everything`) and release them afterwards. One snapshot
    /// runs at a time: while another one walks, this gives the visitor back.
    pub fn begin(
        server: &Server,
        visitor: Box<dyn SnapshotVisitor>,
        keys_total: u64,
    ) -> Result<Arc<Snapshot>, Box<dyn SnapshotVisitor>> {
        if server.keyspace.has_observer() {
            return Err(visitor);
        }
        let shards = server.keyspace.database_count() * SHARD_COUNT;
        let snapshot = Arc::new(Snapshot {
            key_save_delay: server.config.get_i64("rdb-key-save-delay"),
            visited: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            visitor: Mutex::new(visitor),
            error: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            keys_total,
            keys_written: AtomicU64::new(0),
        });
        server
            .keyspace
            .set_observer(Some(snapshot.clone() as Arc<dyn ShardObserver>));
        Ok(snapshot)
    }

    /// Visits every shard not visited yet, then removes the observer and returns the visitor
    /// (or the first write error, or the cancellation, with the visitor).
    pub fn walk(self: Arc<Self>, server: &Server) -> Result<Box<dyn SnapshotVisitor>, WalkFailure> {
        WALKER.with(|walker| walker.set(true));
        'walk: for database in 0..server.keyspace.database_count() {
            for index in 0..SHARD_COUNT {
                if self.is_cancelled() {
                    break 'walk;
                }
                // Locking shows the shard to the observer (this snapshot) if nobody did yet.
                drop(server.keyspace.database(database).lock_shard(index));
                let keys = WALKED_KEYS.with(|walked| walked.replace(0));
                if let Some(delay) = self.key_save_delay(keys) {
                    self.sleep_unless_cancelled(delay);
                }
            }
        }
        WALKER.with(|walker| walker.set(false));
        server.keyspace.set_observer(None);
        let placeholder: Box<dyn SnapshotVisitor> = Box::new(Discard);
        let visitor = std::mem::replace(&mut *self.visitor.lock(), placeholder);
        if self.is_cancelled() {
            let error = std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled");
            return Err(WalkFailure {
                error,
                cancelled: true,
                visitor,
            });
        }
        if let Some(error) = self.error.lock().take() {
            return Err(WalkFailure {
                error,
                cancelled: false,
                visitor,
            });
        }
        Ok(visitor)
    }

    /// (keys handed to the visitor, keys at the moment).
    pub fn progress(&self) -> (u64, u64) {
        (self.keys_written.load(Ordering::Relaxed), self.keys_total)
    }

    /// Ends the snapshot early: the walker stops soon and its walk fails as cancelled.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn sleep_unless_cancelled(&self, delay: std::time::Duration) {
        let deadline = std::time::Instant::now() + delay;
        loop {
            let now = std::time::Instant::now();
            if now >= deadline || self.is_cancelled() {
                return;
            }
            std::thread::sleep((deadline - now).min(CANCEL_CHECK_INTERVAL));
        }
    }
}

impl Snapshot {
    /// How long `rdb-key-save-delay` makes the walker wait after visiting `keys` keys.
    fn key_save_delay(&self, keys: usize) -> Option<std::time::Duration> {
        let keys = keys as u32;
        match self.key_save_delay {
            0 => None,
            _ if keys == 0 => None,
            microseconds @ 1.. => {
                Some(std::time::Duration::from_micros(microseconds as u64) * keys)
            }
            nanoseconds => Some(std::time::Duration::from_nanos(nanoseconds.unsigned_abs()) * keys),
        }
    }
}

struct Discard;

impl SnapshotVisitor for Discard {
    fn entry(&mut self, _: usize, _: &[u8], _: &Value, _: Option<u64>) -> std::io::Result<()> {
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl ShardObserver for Snapshot {
    fn observe(&self, database: usize, index: usize, shard: &mut Shard) {
        let Some(flag) = self.visited.get(database * SHARD_COUNT + index) else {
            return;
        };
        if flag.swap(true, Ordering::AcqRel) || shard.is_empty() || self.is_cancelled() {
            return;
        }
        let mut visitor = self.visitor.lock();
        if WALKER.with(std::cell::Cell::get) {
            WALKED_KEYS.with(|walked| walked.set(shard.len()));
        }
        for entry in shard.iter() {
            if let Err(error) =
                visitor.entry(database, entry.key(), &entry.value, entry.expire_at_ms())
            {
                self.error.lock().get_or_insert(error);
                return;
            }
            self.keys_written.fetch_add(1, Ordering::Relaxed);
        }
    }
}
