//! The server's shared state: keyspace, configuration, command table, clients, propagation
//! stream, statistics. One `Server` lives behind an `Arc` for the life of the process; every
//! connection task holds a reference.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
use crate::stats::StripedCounter;

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Stats {
    pub commands_processed: StripedCounter,
    pub expired_keys: StripedCounter,
    pub keyspace_hits: StripedCounter,
    pub keyspace_misses: StripedCounter,
    pub error_replies: StripedCounter,
    pub unexpected_error_replies: StripedCounter,
    pub net_input_bytes: StripedCounter,
    pub net_output_bytes: StripedCounter,
    pub active_expire_cycles: StripedCounter,
    pub evicted_keys: StripedCounter,
    pub reads_processed: StripedCounter,
    pub writes_processed: StripedCounter,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`): INFO errorstats.
    pub errors: Mutex<BTreeMap<Vec<u8>, u64>>,
    pub event_loop: crate::stats::EventLoopStats,
}

/// Distinct error codes counted before further new codes are counted as
/// `ERRORSTATS_OVERFLOW` (Redis's limit).
const ERROR_CODES_MAX: usize = 128;

impl Stats {
    /// Counts one error reply: in the total and under its code, the text before the first
    /// space (within the first 32 bytes; `ERR` when there is none).
    pub fn count_error(&self, message: &[u8]) {
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let head = &message[..message.len().min(32)];
        let code = match head.iter().position(|&byte| byte == b' ') {
            Some(end) if end > 0 => &message[..end],
            _ => b"ERR".as_slice(),
        };
        let mut errors = self.errors.lock();
        if let Some(count) = errors.get_mut(code) {
            *count += 1;
        } else if errors.len() >= ERROR_CODES_MAX {
            *errors.entry(b"ERRORSTATS_OVERFLOW".to_vec()).or_insert(0) += 1;
        } else {
            errors.insert(code.to_vec(), 1);
        }
    }

    /// CONFIG RESETSTAT: zeroes every counter.
    pub fn reset(&self) {
        for counter in [
            &self.commands_processed,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.error_replies,
            &self.unexpected_error_replies,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.active_expire_cycles,
            &self.evicted_keys,
            &self.reads_processed,
            &self.writes_processed,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for counter in [
            &crate::stats::QUERY_BUFFER_LIMIT_DISCONNECTIONS,
            &crate::stats::OUTPUT_BUFFER_LIMIT_DISCONNECTIONS,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.errors.lock().clear();
        self.event_loop.reset();
    }
}

/// How many samples the instantaneous metrics average (Redis's `STATS_METRIC_SAMPLES`).
const METRIC_SAMPLES: usize = 16;

/// One instantaneous metric (ops/sec, bytes/sec): the rate between successive samples of a
/// counter, averaged over the last samples.
#[derive(Default)]
struct Metric {
    last_value: u64,
    last_time_ms: u64,
    rates: [u64; METRIC_SAMPLES],
    next: usize,
}

impl Metric {
    fn sample(&mut self, value: u64, now_ms: u64) {
        if self.last_time_ms != 0 && now_ms > self.last_time_ms {
            let elapsed_ms = now_ms - self.last_time_ms;
            let delta = value.saturating_sub(self.last_value);
            self.rates[self.next] = delta * 1000 / elapsed_ms;
            self.next = (self.next + 1) % METRIC_SAMPLES;
        }
        self.last_value = value;
        self.last_time_ms = now_ms;
    }

    fn average(&self) -> u64 {
        self.rates.iter().sum::<u64>() / METRIC_SAMPLES as u64
    }
}

/// One instantaneous ratio (µs per event loop cycle): the quotient of the growth of two
/// counters between successive samples, averaged over the last samples.
#[derive(Default)]
struct RatioMetric {
    last: (u64, u64),
    ratios: [u64; METRIC_SAMPLES],
    next: usize,
}

impl RatioMetric {
    fn sample(&mut self, numerator: u64, denominator: u64) {
        let (last_numerator, last_denominator) = self.last;
        let delta = denominator.saturating_sub(last_denominator);
        self.ratios[self.next] = if delta == 0 {
            0
        } else {
            numerator.saturating_sub(last_numerator) / delta
        };
        self.next = (self.next + 1) % METRIC_SAMPLES;
        self.last = (numerator, denominator);
    }

    fn average(&self) -> u64 {
        self.ratios.iter().sum::<u64>() / METRIC_SAMPLES as u64
    }
}

/// Rates INFO reports, sampled by [`cron`].
#[derive(Default)]
pub struct Metrics {
    commands: Metric,
    input_bytes: Metric,
    output_bytes: Metric,
    event_loop_cycles: Metric,
    event_loop_duration: RatioMetric,
}

impl Metrics {
    pub fn event_loop_cycles_per_second(&self) -> u64 {
        self.event_loop_cycles.average()
    }

    pub fn event_loop_duration_us(&self) -> u64 {
        self.event_loop_duration.average()
    }

    pub fn commands_per_second(&self) -> u64 {
        self.commands.average()
    }

    pub fn input_bytes_per_second(&self) -> u64 {
        self.input_bytes.average()
    }

    pub fn output_bytes_per_second(&self) -> u64 {
        self.output_bytes.average()
    }
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
    /// Users and their permissions (`crate::acl`).
    pub acl: crate::acl::Acl,
    pub clients: ClientRegistry,
    pub propagation: Propagation,
    pub aof: crate::aof::Aof,
    pub blocked: BlockedClients,
    pub pubsub: PubSub,
    /// Ordinary commands share it, scripts hold it alone (see `crate::barrier`).
    pub barrier: crate::barrier::Barrier,
    pub scripting: crate::scripting::Scripting,
    pub notifications: Notifications,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: crate::tracking::Tracking,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    pub stats: Stats,
    /// `maxmemory` eviction (candidate pool, background task).
    pub eviction: crate::eviction::Eviction,
    pub slowlog: crate::slowlog::SlowLog,
    /// The latency monitor (LATENCY LATEST, HISTORY, ...).
    pub latency: crate::latency::LatencyMonitor,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    /// The TCP port actually listened on.
    pub port: AtomicU64,
    pub shutting_down: AtomicBool,
    pub shutdown: Notify,
    pub worker_threads: usize,
    /// Whether the active expiry task runs (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire_enabled: AtomicBool,
    /// DEBUG PAUSE-CRON: the periodic tasks (housekeeping, active expiry) skip their rounds.
    pub cron_paused: AtomicBool,
    /// Values freed in the background (UNLINK, FLUSHALL ASYNC).
    pub lazyfree: crate::lazyfree::LazyFree,
    /// The start-up load in progress (commands answer LOADING meanwhile).
    pub loading: crate::loading::Loading,
    /// Replication IDs (INFO replication; DEBUG CHANGE-REPL-ID makes new ones).
    pub replication_ids: Mutex<(String, String)>,
    /// Replicas fed by this server (`crate::replication`).
    pub replication: crate::replication::ReplicationState,
    /// This server's link to its master when it is a replica (`crate::replica`).
    pub replica_link: crate::replica::ReplicaLink,
    pub metrics: Mutex<Metrics>,
    /// Highest `used_memory` seen (INFO `used_memory_peak`).
    pub peak_memory_bytes: AtomicU64,
    /// Path of the executable (INFO `executable`).
    pub executable: String,
    /// Bytes allocated when the server was created (INFO `used_memory_startup`).
    pub startup_memory_bytes: u64,
    /// Generation of the listening sockets: bumped when CONFIG SET port or bind replaces them,
    /// which stops the accept loops of the previous generation.
    pub listener_generation: tokio::sync::watch::Sender<u64>,
    /// RDB persistence state (INFO persistence, LASTSAVE, save points).
    pub rdb: crate::rdb::RdbState,
    /// The server's own `Arc`, for spawning tasks from code that only has `&Server`.
    self_reference: std::sync::OnceLock<std::sync::Weak<Server>>,
}

/// 40 random hexadecimal digits (run IDs, replication IDs).
pub fn random_hex_id() -> String {
    (0..40)
        .map(|_| {
            let digit = rand::random::<u8>() % 16;
            char::from_digit(digit as u32, 16).unwrap_or('0')
        })
        .collect()
}

/// Background housekeeping, ten times a second: samples the instantaneous metrics, tracks the
/// memory peak and closes idle clients (`timeout`).
pub async fn cron(server: Arc<Server>) {
    let period = Duration::from_millis(100);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = server.shutdown.notified() => return,
        }
        if server.is_shutting_down() {
            return;
        }
        if server.cron_paused.load(Ordering::Relaxed) {
            continue;
        }
        ticks += 1;
        let tick_started_us = unix_time_us();
        let now_ms = tick_started_us / 1000;
        {
            let stats = &server.stats;
            let mut metrics = server.metrics.lock();
            metrics
                .commands
                .sample(stats.commands_processed.load(Ordering::Relaxed), now_ms);
            metrics
                .input_bytes
                .sample(stats.net_input_bytes.load(Ordering::Relaxed), now_ms);
            metrics
                .output_bytes
                .sample(stats.net_output_bytes.load(Ordering::Relaxed), now_ms);
            let cycles = stats.event_loop.cycles.load(Ordering::Relaxed);
            metrics.event_loop_cycles.sample(cycles, now_ms);
            metrics
                .event_loop_duration
                .sample(stats.event_loop.duration_us.load(Ordering::Relaxed), cycles);
        }
        crate::rdb::check_save_points(&server);
        crate::aof::cron(&server);
        // A lowered `tracking-table-max-keys` takes effect here too, not only at the next command.
        if server.tracking.active() {
            server.tracking.enforce_limit();
        }
        crate::client_eviction::cron(&server);
        if ticks % 10 == 0 {
            server.update_peak_memory();
            crate::connection::close_idle_clients(&server, now_ms);
        }
        server
            .stats
            .event_loop
            .record_cron(unix_time_us().saturating_sub(tick_started_us).max(1));
    }
}

/// Unix time in milliseconds.
pub fn unix_time_ms() -> u64 {
    unix_time_us() / 1000
}

/// Microseconds since the Unix epoch: one `clock_gettime` through the vDSO, without the
/// checked arithmetic of `SystemTime` (commands read it twice each: start and duration).
#[inline]
pub fn unix_time_us() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec and CLOCK_REALTIME always exists.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    debug_assert_eq!(status, 0);
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1000
}

impl Server {
    pub fn new(config: Config, commands: CommandTable, worker_threads: usize) -> Self {
        let databases = config.get_i64("databases") as usize;
        let run_id = random_hex_id();
        let executable = std::env::current_exe()
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        let rule_context = crate::acl::RuleContext {
            commands: &commands,
            all_channels_by_default: config.get("acl-pubsub-default") == "allchannels",
        };
        let acl = crate::acl::Acl::new(&rule_context);
        let requirepass = config.get("requirepass");
        if !requirepass.is_empty() {
            acl.set_default_password(requirepass.as_bytes(), &rule_context);
        }
        Server {
            keyspace: Keyspace::new(databases),
            config,
            commands,
            acl,
            clients: ClientRegistry::default(),
            propagation: Propagation::default(),
            aof: crate::aof::Aof::default(),
            blocked: BlockedClients::default(),
            pubsub: PubSub::default(),
            barrier: Default::default(),
            scripting: Default::default(),
            notifications: Notifications::default(),
            tracking: Default::default(),
            monitors: Default::default(),
            pause: Default::default(),
            stats: Stats::default(),
            eviction: Default::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            started: Instant::now(),
            started_unix_ms: unix_time_ms(),
            run_id,
            port: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            shutdown: Notify::new(),
            worker_threads,
            active_expire_enabled: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            lazyfree: Default::default(),
            loading: Default::default(),
            replication_ids: Mutex::new((random_hex_id(), "0".repeat(40))),
            replication: Default::default(),
            replica_link: Default::default(),
            metrics: Mutex::new(Metrics::default()),
            peak_memory_bytes: AtomicU64::new(0),
            executable,
            startup_memory_bytes: crate::allocator::used_memory_bytes(),
            listener_generation: tokio::sync::watch::Sender::new(0),
            rdb: crate::rdb::RdbState::new(unix_time_ms() / 1000),
            self_reference: std::sync::OnceLock::new(),
        }
    }

    /// What ACL rules need: the command table and `acl-pubsub-default`.
    pub fn rule_context(&self) -> crate::acl::RuleContext<'_> {
        crate::acl::RuleContext {
            commands: &self.commands,
            all_channels_by_default: self.config.get("acl-pubsub-default") == "allchannels",
        }
    }

    /// Records the `Arc` this server lives in (once, right after creating it).
    pub fn set_self_reference(&self, reference: std::sync::Weak<Server>) {
        let _ = self.self_reference.set(reference);
    }

    /// The `Arc` this server lives in (None in in-process tests that do not make one).
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.self_reference.get().and_then(std::sync::Weak::upgrade)
    }

    /// Starts accepting connections on `listeners`, replacing the previous listeners.
    pub fn start_accepting(&self, listeners: Vec<tokio::net::TcpListener>) {
        let Some(server) = self.self_reference.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        self.listener_generation
            .send_modify(|generation| *generation += 1);
        for listener in listeners {
            let generation = self.listener_generation.subscribe();
            tokio::spawn(crate::connection::accept_loop(
                server.clone(),
                listener,
                generation,
            ));
        }
    }

    /// Does what a configuration change needs beyond storing it (listening on a new port or
    /// addresses, changing directory). On failure returns the option and the reason; the caller
    /// rolls the change back.
    pub fn apply_config_changes(
        &self,
        changed: &crate::config::PreviousValues,
    ) -> Result<(), (&'static str, String)> {
        let port = self.config.get_i64("port") as u16;
        let rebind = changed.iter().find(|(name, old)| {
            (*name == "port" || *name == "bind") && *old != self.config.get(name)
        });
        if let Some((name, _)) = rebind {
            let listeners = crate::startup::bind_listeners(&self.config.get("bind"), port)
                .map_err(|error| {
                    tracing::warn!("{error}");
                    let reason = if *name == "port" {
                        "Unable to listen on this port. Check server logs."
                    } else {
                        "Failed to bind to specified addresses."
                    };
                    (*name, reason.to_string())
                })?;
            self.start_accepting(listeners);
            self.port.store(port as u64, Ordering::Relaxed);
        }
        crate::aof::apply_config(self, changed);
        if changed
            .iter()
            .any(|(name, _)| *name == "maxmemory-clients" || *name == "maxmemory")
        {
            crate::client_eviction::apply_config(self);
        }
        for (name, _) in changed {
            if *name == "dir" {
                let directory = self.config.get("dir");
                std::env::set_current_dir(&directory).map_err(|error| {
                    let reason = error.to_string();
                    let reason = reason.split(" (os error").next().unwrap_or(&reason);
                    ("dir", reason.to_string())
                })?;
                if let Ok(absolute) = std::env::current_dir() {
                    let _ = self.config.set_many(
                        &[("dir".into(), vec![absolute.display().to_string()])],
                        crate::config::ConfigSource::Startup,
                    );
                }
            }
        }
        Ok(())
    }

    /// Bytes allocated now, and the peak updated with it.
    pub fn update_peak_memory(&self) -> u64 {
        let used = crate::allocator::used_memory_bytes();
        self.peak_memory_bytes.fetch_max(used, Ordering::Relaxed);
        used
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
    /// How an expired key's deletion is propagated: UNLINK under `lazyfree-lazy-expire yes`,
    /// DEL otherwise (Redis 7.2's `propagateDeletion`).
    pub fn expired_deletion(&self) -> &'static [u8] {
        if self.config.hot.lazyfree_lazy_expire.load(Ordering::Relaxed) {
            b"UNLINK"
        } else {
            b"DEL"
        }
    }

    pub fn propagate_expired(&self, database: usize, shard: &mut Shard) {
        let expired: Vec<SmallBytes> = shard.take_expired();
        self.stats
            .expired_keys
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        for key in &expired {
            shard.watched.touch(key);
            self.tracking.invalidate_expired(key);
            self.propagation
                .append(database, &[self.expired_deletion(), key]);
            self.notify(EventClass::Expired, "expired", database, key);
        }
    }

    /// Recomputes state derived from configuration (at start-up and after CONFIG SET).
    pub fn refresh_derived_config(&self) {
        store::set_frequency_parameters(
            self.config
                .get_i64("lfu-log-factor")
                .clamp(0, u32::MAX as i64) as u32,
            self.config
                .get_i64("lfu-decay-time")
                .clamp(0, u32::MAX as i64) as u32,
        );
        self.tracking.keys_max.store(
            self.config.get_i64("tracking-table-max-keys").max(0) as usize,
            std::sync::atomic::Ordering::Relaxed,
        );
        let events = self.config.get("notify-keyspace-events");
        self.notifications
            .set_flags(crate::notify::parse_flags(&events).unwrap_or(0));
        let limits = self.config.get("client-output-buffer-limit");
        let words: Vec<&str> = limits.split_whitespace().collect();
        for class in words.chunks(4) {
            if let [name, hard, soft, seconds] = class {
                let parse =
                    |text: &str| crate::config::parse_memory(text).unwrap_or(0).max(0) as usize;
                let limit = BufferLimit {
                    hard_bytes: parse(hard),
                    soft_bytes: parse(soft),
                    soft_seconds: seconds.parse().unwrap_or(0),
                };
                match *name {
                    "pubsub" => self.pubsub.limit.store(limit),
                    "normal" => self.clients.normal_output_limit.store(limit),
                    "replica" | "slave" => *self.replication.limit.lock() = limit,
                    _ => {}
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
