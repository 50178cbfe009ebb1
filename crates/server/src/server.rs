//! The server's shared state: keyspace, configuration, command table, clients, propagation
//! stream, statistics. One `Server` lives behind an `Arc` for the life of the process; every
//! connection task holds a reference.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use store::{Keyspace, Shard, SmallBytes};
use tokio::sync::Notify;

use crate::blocking::BlockedClients;
use crate::client::ClientRegistry;
use crate::command::CommandTable;
use crate::config::Config;
use crate::context::{Locked, LockedMany};
use crate::notify::{EventClass, Notifications};
use crate::propagation::Propagation;
use crate::pubsub::{BufferLimit, PubSub};

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Stats {
    pub commands_processed: AtomicU64,
    pub expired_keys: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub active_expire_cycles: AtomicU64,
}

/// How the server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    Default,
    Save,
    NoSave,
}

pub struct Server {
    pub keyspace: Keyspace,
    pub config: Config,
    pub commands: CommandTable,
    pub clients: ClientRegistry,
    pub propagation: Propagation,
    pub blocked: BlockedClients,
    pub pubsub: PubSub,
    pub notifications: Notifications,
    pub stats: Stats,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    /// The TCP port actually listened on.
    pub port: AtomicU64,
    pub shutting_down: AtomicBool,
    pub shutdown: Notify,
    pub worker_threads: usize,
}

/// Unix time in milliseconds.
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl Server {
    pub fn new(config: Config, commands: CommandTable, worker_threads: usize) -> Self {
        let databases = config.get_i64("databases") as usize;
        let run_id: String = (0..40)
            .map(|_| {
                let digit = rand::random::<u8>() % 16;
                char::from_digit(digit as u32, 16).unwrap_or('0')
            })
            .collect();
        Server {
            keyspace: Keyspace::new(databases),
            config,
            commands,
            clients: ClientRegistry::default(),
            propagation: Propagation::default(),
            blocked: BlockedClients::default(),
            pubsub: PubSub::default(),
            notifications: Notifications::default(),
            stats: Stats::default(),
            started: Instant::now(),
            started_unix_ms: unix_time_ms(),
            run_id,
            port: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            shutdown: Notify::new(),
            worker_threads,
        }
    }

    /// Locks shard `index` of `database` (background tasks; commands lock through `Context`).
    pub fn lock_shard(&self, database: usize, index: usize) -> Locked<'_> {
        Locked::lock_shard(self, database, index)
    }

    /// Locks the shards of several `(database, key)` pairs in the global order (background
    /// tasks; commands lock through `Context`).
    pub fn lock_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
    ) -> LockedMany<'_> {
        LockedMany::lock_pairs(self, keys)
    }

    /// Propagates `DEL` for every key that expired in `shard` and counts them.
    pub fn propagate_expired(&self, database: usize, shard: &mut Shard) {
        let expired: Vec<SmallBytes> = shard.take_expired();
        self.stats
            .expired_keys
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        for key in &expired {
            shard.watched.touch(key);
            self.propagation.append(database, &[b"DEL", key]);
            self.notify(EventClass::Expired, "expired", database, key);
        }
    }

    /// Recomputes state derived from configuration (at start-up and after CONFIG SET).
    pub fn refresh_derived_config(&self) {
        let events = self.config.get("notify-keyspace-events");
        self.notifications
            .set_flags(crate::notify::parse_flags(&events).unwrap_or(0));
        let limits = self.config.get("client-output-buffer-limit");
        let words: Vec<&str> = limits.split_whitespace().collect();
        for class in words.chunks(4) {
            if let [name, hard, soft, seconds] = class {
                if *name == "pubsub" {
                    let parse =
                        |text: &str| crate::config::parse_memory(text).unwrap_or(0).max(0) as usize;
                    *self.pubsub.limit.lock() = BufferLimit {
                        hard_bytes: parse(hard),
                        soft_bytes: parse(soft),
                        soft_seconds: seconds.parse().unwrap_or(0),
                    };
                }
            }
        }
    }

    /// Asks every connection and the listener to stop.
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        for client in self.clients.all() {
            client.kill();
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Seconds since start-up.
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
