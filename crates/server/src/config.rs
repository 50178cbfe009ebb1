//! Configuration: the table of options, redis.conf parsing, the command line, CONFIG GET, SET
//! and REWRITE.
//!
//! Model. Every option Redis 7.2 knows is a row of [`OPTIONS`]: its name, aliases, kind (which
//! fixes how a value is parsed, validated and printed back), default and flags. [`Config`]
//! keeps each option's value in canonical text (what CONFIG GET prints) and mirrors the options
//! read on hot paths into [`HotConfig`] atomics. A change (file, command line, CONFIG SET) goes
//! through [`Config::set_many`], which checks every name, then validates every value, before
//! applying any, so CONFIG SET is atomic; it returns the previous values so that a change the
//! server then fails to apply (binding a port) can be rolled back with [`Config::restore`].
//! Options flagged `NO_EFFECT` are accepted for compatibility and logged once when set.
//!
//! To add an option: add a row to `OPTIONS`; if code reads it on a hot path, add an atomic to
//! `HotConfig` and fill it in `HotConfig::refresh`; if changing it at run time must do
//! something (rebind a port), handle it in `Server::apply_config_changes`.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use hashbrown::{HashMap, HashSet};
use parking_lot::{Mutex, RwLock};

use store::glob::Pattern;

/// The Redis version Cinnabar speaks as.
pub const REDIS_VERSION: &str = "7.2.4";

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    /// A byte count that accepts units (`1gb`, `512mb`, `64k`).
    Memory {
        min: i64,
        max: i64,
    },
    /// A byte count or a percentage of `maxmemory` (`maxmemory-clients`).
    MemoryOrPercent,
    /// An octal number (`unixsocketperm`).
    Octal {
        min: i64,
        max: i64,
    },
    Enum(&'static [&'static str]),
    /// Several words of an enumeration that combine (`nosave now`).
    Flags(&'static [&'static str]),
    Text,
    /// `save`: pairs of seconds and changes, or "".
    Save,
    /// `bind`: one to sixteen addresses.
    Addresses,
    /// `client-output-buffer-limit`: class, hard limit, soft limit, soft seconds, repeated.
    OutputBufferLimit,
    /// `oom-score-adj-values`: three scores.
    OomScoreValues,
    /// `notify-keyspace-events`: event class characters.
    KeyspaceEvents,
    /// `replicaof`: host and port, or `no one`.
    ReplicaOf,
    /// `latency-tracking-info-percentiles`: percentiles between 0 and 100.
    Percentiles,
    /// `dir`: the working directory.
    Directory,
}

impl Kind {
    /// Whether the option takes several arguments on a configuration line.
    fn takes_several_arguments(self) -> bool {
        matches!(
            self,
            Kind::Flags(_)
                | Kind::Save
                | Kind::Addresses
                | Kind::OutputBufferLimit
                | Kind::OomScoreValues
                | Kind::ReplicaOf
                | Kind::Percentiles
        )
    }
}

pub mod option_flags {
    /// Set at start-up only.
    pub const IMMUTABLE: u8 = 1;
    /// Accepted for compatibility; has no effect here.
    pub const NO_EFFECT: u8 = 2;
    /// A secret (kept out of logs).
    pub const SENSITIVE: u8 = 4;
    /// Matched by CONFIG GET only by its exact name, never by a pattern.
    pub const HIDDEN: u8 = 8;
    /// Settable at run time only where `enable-protected-configs` allows.
    pub const PROTECTED: u8 = 16;
    /// Not settable while a dataset loads.
    pub const DENY_LOADING: u8 = 32;
}

use option_flags::{DENY_LOADING, HIDDEN, IMMUTABLE, NO_EFFECT, PROTECTED, SENSITIVE};

pub struct OptionSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: &'static str,
    pub flags: u8,
}

impl OptionSpec {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

const fn row(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    flags: u8,
) -> OptionSpec {
    OptionSpec {
        name,
        aliases,
        kind,
        default,
        flags,
    }
}

const I32_MIN: i64 = i32::MIN as i64;
const I32_MAX: i64 = i32::MAX as i64;
const U32_MAX: i64 = u32::MAX as i64;
const BOOL: Kind = Kind::Bool;
const TEXT: Kind = Kind::Text;
const LOG_LEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];
/// The `maxmemory-policy` choices (the hot configuration keeps the index in this list).
pub const EVICTION_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const APPEND_FSYNC: &[&str] = &["everysec", "always", "no"];
const ACL_PUBSUB_DEFAULTS: &[&str] = &["allchannels", "resetchannels"];
const ENDPOINT_TYPES: &[&str] = &["ip", "hostname", "unknown-endpoint"];
const OOM_SCORE_ADJ: &[&str] = &["no", "yes", "relative", "absolute"];
const PROPAGATION_ERROR_BEHAVIORS: &[&str] = &["ignore", "panic", "panic-on-replicas"];
const DISKLESS_LOAD: &[&str] = &["disabled", "on-empty-db", "swapdb"];
const SANITIZE_DUMP_PAYLOAD: &[&str] = &["no", "yes", "clients"];
const SHUTDOWN_ON_SIGNAL: &[&str] = &["default", "save", "nosave", "now", "force"];
const SUPERVISED: &[&str] = &["upstart", "systemd", "auto", "no"];
const SYSLOG_FACILITIES: &[&str] = &[
    "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const TLS_AUTH_CLIENTS: &[&str] = &["no", "yes", "optional"];
const LOG_FORMATS: &[&str] = &["legacy", "logfmt"];
const LOG_TIMESTAMP_FORMATS: &[&str] = &["legacy", "iso8601", "milliseconds"];

/// Every option the server knows: Redis 7.2's, under Redis's names (Valkey's renames are
/// aliases; Valkey-only options are hidden), plus Cinnabar's hidden `worker-threads` (0: one per
/// core).
#[rustfmt::skip]
pub static OPTIONS: &[OptionSpec] = &[
    row("acl-pubsub-default", &[], Kind::Enum(ACL_PUBSUB_DEFAULTS), "resetchannels", 0),
    row("aclfile", &[], TEXT, "", IMMUTABLE),
    row("acllog-max-len", &[], Kind::Integer { min: 0, max: i64::MAX }, "128", 0),
    row("active-defrag-cycle-max", &[], Kind::Integer { min: 1, max: 99 }, "25", NO_EFFECT),
    row("active-defrag-cycle-min", &[], Kind::Integer { min: 1, max: 99 }, "1", NO_EFFECT),
    row("active-defrag-ignore-bytes", &[], Kind::Memory { min: 1, max: i64::MAX }, "104857600", NO_EFFECT),
    row("active-defrag-max-scan-fields", &[], Kind::Integer { min: 1, max: i64::MAX }, "1000", NO_EFFECT),
    row("active-defrag-threshold-lower", &[], Kind::Integer { min: 0, max: 1000 }, "10", NO_EFFECT),
    row("active-defrag-threshold-upper", &[], Kind::Integer { min: 0, max: 1000 }, "100", NO_EFFECT),
    row("active-expire-effort", &[], Kind::Integer { min: 1, max: 10 }, "1", 0),
    row("activedefrag", &[], BOOL, "no", NO_EFFECT),
    row("activerehashing", &[], BOOL, "yes", NO_EFFECT),
    row("always-show-logo", &[], BOOL, "no", IMMUTABLE | NO_EFFECT),
    row("aof-disable-auto-gc", &[], BOOL, "no", HIDDEN | NO_EFFECT),
    row("aof-load-truncated", &[], BOOL, "yes", 0),
    row("aof-rewrite-incremental-fsync", &[], BOOL, "yes", NO_EFFECT),
    row("aof-timestamp-enabled", &[], BOOL, "no", 0),
    row("aof-use-rdb-preamble", &[], BOOL, "yes", NO_EFFECT),
    row("aof_rewrite_cpulist", &["aof-rewrite-cpulist"], TEXT, "", IMMUTABLE | NO_EFFECT),
    row("appenddirname", &[], TEXT, "appendonlydir", IMMUTABLE),
    row("appendfilename", &[], TEXT, "appendonly.aof", IMMUTABLE),
    row("appendfsync", &[], Kind::Enum(APPEND_FSYNC), "everysec", 0),
    row("appendonly", &[], BOOL, "no", DENY_LOADING),
    row("auto-aof-rewrite-min-size", &[], Kind::Memory { min: 0, max: i64::MAX }, "67108864", 0),
    row("auto-aof-rewrite-percentage", &[], Kind::Integer { min: 0, max: I32_MAX }, "100", 0),
    row("availability-zone", &[], TEXT, "", HIDDEN | NO_EFFECT),
    row("bgsave_cpulist", &["bgsave-cpulist"], TEXT, "", IMMUTABLE | NO_EFFECT),
    row("bind", &[], Kind::Addresses, "* -::*", 0),
    row("bind-source-addr", &[], TEXT, "", NO_EFFECT),
    row("bio_cpulist", &["bio-cpulist"], TEXT, "", IMMUTABLE | NO_EFFECT),
    row("busy-reply-threshold", &["lua-time-limit"], Kind::Integer { min: 0, max: i64::MAX }, "5000", 0),
    row("client-default-resp", &[], Kind::Integer { min: 2, max: 3 }, "2", IMMUTABLE | HIDDEN | NO_EFFECT),
    row("client-output-buffer-limit", &[], Kind::OutputBufferLimit, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", 0),
    row("client-query-buffer-limit", &[], Kind::Memory { min: 1048576, max: i64::MAX }, "1073741824", 0),
    row("cluster-allow-pubsubshard-when-down", &[], BOOL, "yes", NO_EFFECT),
    row("cluster-allow-reads-when-down", &[], BOOL, "no", NO_EFFECT),
    row("cluster-allow-replica-migration", &[], BOOL, "yes", NO_EFFECT),
    row("cluster-announce-bus-port", &[], Kind::Integer { min: 0, max: 65535 }, "0", NO_EFFECT),
    row("cluster-announce-client-ipv4", &[], TEXT, "", HIDDEN | NO_EFFECT),
    row("cluster-announce-client-ipv6", &[], TEXT, "", HIDDEN | NO_EFFECT),
    row("cluster-announce-hostname", &[], TEXT, "", NO_EFFECT),
    row("cluster-announce-human-nodename", &[], TEXT, "", NO_EFFECT),
    row("cluster-announce-ip", &[], TEXT, "", NO_EFFECT),
    row("cluster-announce-port", &[], Kind::Integer { min: 0, max: 65535 }, "0", NO_EFFECT),
    row("cluster-announce-tls-port", &[], Kind::Integer { min: 0, max: 65535 }, "0", NO_EFFECT),
    row("cluster-blacklist-ttl", &[], Kind::Integer { min: 0, max: i64::MAX }, "60", HIDDEN | NO_EFFECT),
    row("cluster-config-file", &[], TEXT, "nodes.conf", IMMUTABLE | NO_EFFECT),
    row("cluster-enabled", &[], BOOL, "no", IMMUTABLE),
    row("cluster-link-sendbuf-limit", &[], Kind::Memory { min: 0, max: i64::MAX }, "0", NO_EFFECT),
    row("cluster-migration-barrier", &[], Kind::Integer { min: 0, max: I32_MAX }, "1", NO_EFFECT),
    row("cluster-node-timeout", &[], Kind::Integer { min: 0, max: i64::MAX }, "15000", NO_EFFECT),
    row("cluster-ping-interval", &[], Kind::Integer { min: 0, max: i64::MAX }, "0", HIDDEN | NO_EFFECT),
    row("cluster-port", &[], Kind::Integer { min: 0, max: 65535 }, "0", IMMUTABLE | NO_EFFECT),
    row("cluster-preferred-endpoint-type", &[], Kind::Enum(ENDPOINT_TYPES), "ip", NO_EFFECT),
    row("cluster-replica-no-failover", &["cluster-slave-no-failover"], BOOL, "no", NO_EFFECT),
    row("cluster-replica-validity-factor", &["cluster-slave-validity-factor"], Kind::Integer { min: 0, max: I32_MAX }, "10", NO_EFFECT),
    row("cluster-require-full-coverage", &[], BOOL, "yes", NO_EFFECT),
    row("cluster-slot-stats-enabled", &[], BOOL, "no", HIDDEN | NO_EFFECT),
    row("crash-log-enabled", &[], BOOL, "yes", NO_EFFECT),
    row("crash-memcheck-enabled", &[], BOOL, "yes", NO_EFFECT),
    row("daemonize", &[], BOOL, "no", IMMUTABLE | NO_EFFECT),
    row("databases", &[], Kind::Integer { min: 1, max: I32_MAX }, "16", IMMUTABLE),
    row("dbfilename", &[], TEXT, "dump.rdb", PROTECTED),
    row("debug-context", &[], TEXT, "", HIDDEN | NO_EFFECT),
    row("dir", &[], Kind::Directory, "", PROTECTED | DENY_LOADING),
    row("disable-thp", &[], BOOL, "yes", IMMUTABLE | NO_EFFECT),
    row("dual-channel-replication-enabled", &[], BOOL, "no", HIDDEN | NO_EFFECT),
    row("dynamic-hz", &[], BOOL, "yes", NO_EFFECT),
    row("enable-debug-assert", &[], BOOL, "no", IMMUTABLE | HIDDEN | NO_EFFECT),
    row("enable-debug-command", &[], Kind::Enum(YES_NO_LOCAL), "no", IMMUTABLE),
    row("enable-module-command", &[], Kind::Enum(YES_NO_LOCAL), "no", IMMUTABLE),
    row("enable-protected-configs", &[], Kind::Enum(YES_NO_LOCAL), "no", IMMUTABLE),
    row("events-per-io-thread", &[], Kind::Integer { min: 0, max: I32_MAX }, "2", HIDDEN | NO_EFFECT),
    row("extended-redis-compatibility", &[], BOOL, "no", HIDDEN | NO_EFFECT),
    row("hash-max-listpack-entries", &["hash-max-ziplist-entries"], Kind::Integer { min: 0, max: i64::MAX }, "128", 0),
    row("hash-max-listpack-value", &["hash-max-ziplist-value"], Kind::Memory { min: 0, max: i64::MAX }, "64", 0),
    row("hide-user-data-from-log", &[], BOOL, "yes", HIDDEN | NO_EFFECT),
    row("hll-sparse-max-bytes", &[], Kind::Memory { min: 0, max: i64::MAX }, "3000", NO_EFFECT),
    row("hz", &[], Kind::Integer { min: 0, max: I32_MAX }, "10", 0),
    row("ignore-warnings", &[], TEXT, "", NO_EFFECT),
    row("io-threads", &[], Kind::Integer { min: 1, max: 128 }, "1", IMMUTABLE),
    row("io-threads-do-reads", &[], BOOL, "no", IMMUTABLE | HIDDEN | NO_EFFECT),
    row("jemalloc-bg-thread", &[], BOOL, "yes", NO_EFFECT),
    row("key-load-delay", &[], Kind::Integer { min: I32_MIN, max: I32_MAX }, "0", HIDDEN),
    row("latency-monitor-threshold", &[], Kind::Integer { min: 0, max: i64::MAX }, "0", 0),
    row("latency-tracking", &[], BOOL, "yes", 0),
    row("latency-tracking-info-percentiles", &[], Kind::Percentiles, "50 99 99.9", 0),
    row("lazyfree-lazy-eviction", &[], BOOL, "no", 0),
    row("lazyfree-lazy-expire", &[], BOOL, "no", 0),
    row("lazyfree-lazy-server-del", &[], BOOL, "no", 0),
    row("lazyfree-lazy-user-del", &[], BOOL, "no", 0),
    row("lazyfree-lazy-user-flush", &[], BOOL, "no", 0),
    row("lfu-decay-time", &[], Kind::Integer { min: 0, max: I32_MAX }, "1", 0),
    row("lfu-log-factor", &[], Kind::Integer { min: 0, max: I32_MAX }, "10", 0),
    row("list-compress-depth", &[], Kind::Integer { min: 0, max: I32_MAX }, "0", 0),
    row("list-max-listpack-size", &["list-max-ziplist-size"], Kind::Integer { min: I32_MIN, max: I32_MAX }, "-2", 0),
    row("loading-process-events-interval-bytes", &[], Kind::Integer { min: 1024, max: I32_MAX }, "2097152", HIDDEN | NO_EFFECT),
    row("locale-collate", &[], TEXT, "", NO_EFFECT),
    row("log-format", &[], Kind::Enum(LOG_FORMATS), "legacy", HIDDEN | NO_EFFECT),
    row("log-timestamp-format", &[], Kind::Enum(LOG_TIMESTAMP_FORMATS), "legacy", HIDDEN | NO_EFFECT),
    row("logfile", &[], TEXT, "", IMMUTABLE),
    row("loglevel", &[], Kind::Enum(LOG_LEVELS), "notice", 0),
    row("masterauth", &["primaryauth"], TEXT, "", SENSITIVE),
    row("masteruser", &["primaryuser"], TEXT, "", SENSITIVE),
    row("max-new-connections-per-cycle", &[], Kind::Integer { min: 1, max: 1000 }, "10", HIDDEN | NO_EFFECT),
    row("max-new-tls-connections-per-cycle", &[], Kind::Integer { min: 1, max: 1000 }, "1", HIDDEN | NO_EFFECT),
    row("maxclients", &[], Kind::Integer { min: 1, max: U32_MAX }, "10000", 0),
    row("maxmemory", &[], Kind::Memory { min: 0, max: i64::MAX }, "0", 0),
    row("maxmemory-clients", &[], Kind::MemoryOrPercent, "0", 0),
    row("maxmemory-eviction-tenacity", &[], Kind::Integer { min: 0, max: 100 }, "10", 0),
    row("maxmemory-policy", &[], Kind::Enum(EVICTION_POLICIES), "noeviction", 0),
    row("maxmemory-samples", &[], Kind::Integer { min: 1, max: 64 }, "5", 0),
    row("min-replicas-max-lag", &["min-slaves-max-lag"], Kind::Integer { min: 0, max: I32_MAX }, "10", 0),
    row("min-replicas-to-write", &["min-slaves-to-write"], Kind::Integer { min: 0, max: I32_MAX }, "0", 0),
    row("no-appendfsync-on-rewrite", &[], BOOL, "no", NO_EFFECT),
    row("notify-keyspace-events", &[], Kind::KeyspaceEvents, "", 0),
    row("oom-score-adj", &[], Kind::Enum(OOM_SCORE_ADJ), "no", NO_EFFECT),
    row("oom-score-adj-values", &[], Kind::OomScoreValues, "0 200 800", NO_EFFECT),
    row("pidfile", &[], TEXT, "", IMMUTABLE),
    row("port", &[], Kind::Integer { min: 0, max: 65535 }, "6379", 0),
    row("prefetch-batch-max-size", &[], Kind::Integer { min: 0, max: 128 }, "16", HIDDEN | NO_EFFECT),
    row("proc-title-template", &[], TEXT, "{title} {listen-addr} {server-mode}", NO_EFFECT),
    row("propagation-error-behavior", &[], Kind::Enum(PROPAGATION_ERROR_BEHAVIORS), "ignore", NO_EFFECT),
    row("protected-mode", &[], BOOL, "yes", 0),
    row("proto-max-bulk-len", &[], Kind::Memory { min: 1048576, max: i64::MAX }, "536870912", 0),
    row("rdb-del-sync-files", &[], BOOL, "no", NO_EFFECT),
    row("rdb-key-save-delay", &[], Kind::Integer { min: I32_MIN, max: I32_MAX }, "0", HIDDEN),
    row("rdb-save-incremental-fsync", &[], BOOL, "yes", NO_EFFECT),
    row("rdbchecksum", &[], BOOL, "yes", IMMUTABLE | NO_EFFECT),
    row("rdbcompression", &[], BOOL, "yes", NO_EFFECT),
    row("repl-backlog-size", &[], Kind::Memory { min: 1, max: i64::MAX }, "1048576", 0),
    row("repl-backlog-ttl", &[], Kind::Integer { min: 0, max: i64::MAX }, "3600", NO_EFFECT),
    row("repl-disable-tcp-nodelay", &[], BOOL, "no", NO_EFFECT),
    row("repl-diskless-load", &[], Kind::Enum(DISKLESS_LOAD), "disabled", DENY_LOADING | NO_EFFECT),
    row("repl-diskless-sync", &[], BOOL, "yes", NO_EFFECT),
    row("repl-diskless-sync-delay", &[], Kind::Integer { min: 0, max: I32_MAX }, "5", NO_EFFECT),
    row("repl-diskless-sync-max-replicas", &[], Kind::Integer { min: 0, max: I32_MAX }, "0", NO_EFFECT),
    row("repl-ping-replica-period", &["repl-ping-slave-period"], Kind::Integer { min: 1, max: I32_MAX }, "10", NO_EFFECT),
    row("repl-timeout", &[], Kind::Integer { min: 1, max: I32_MAX }, "60", NO_EFFECT),
    row("replica-announce-ip", &["slave-announce-ip"], TEXT, "", NO_EFFECT),
    row("replica-announce-port", &["slave-announce-port"], Kind::Integer { min: 0, max: 65535 }, "0", NO_EFFECT),
    row("replica-announced", &[], BOOL, "yes", NO_EFFECT),
    row("replica-ignore-disk-write-errors", &[], BOOL, "no", NO_EFFECT),
    row("replica-ignore-maxmemory", &["slave-ignore-maxmemory"], BOOL, "yes", NO_EFFECT),
    row("replica-lazy-flush", &["slave-lazy-flush"], BOOL, "no", NO_EFFECT),
    row("replica-priority", &["slave-priority"], Kind::Integer { min: 0, max: I32_MAX }, "100", 0),
    row("replica-read-only", &["slave-read-only"], BOOL, "yes", 0),
    row("replica-serve-stale-data", &["slave-serve-stale-data"], BOOL, "yes", 0),
    row("replicaof", &["slaveof"], Kind::ReplicaOf, "", IMMUTABLE),
    row("req-res-logfile", &[], TEXT, "", IMMUTABLE | HIDDEN | NO_EFFECT),
    row("requirepass", &[], TEXT, "", SENSITIVE),
    row("sanitize-dump-payload", &[], Kind::Enum(SANITIZE_DUMP_PAYLOAD), "no", NO_EFFECT),
    row("save", &[], Kind::Save, "3600 1 300 100 60 10000", 0),
    row("server_cpulist", &["server-cpulist"], TEXT, "", IMMUTABLE | NO_EFFECT),
    row("set-max-intset-entries", &[], Kind::Integer { min: 0, max: i64::MAX }, "512", 0),
    row("set-max-listpack-entries", &[], Kind::Integer { min: 0, max: i64::MAX }, "128", 0),
    row("set-max-listpack-value", &[], Kind::Integer { min: 0, max: i64::MAX }, "64", 0),
    row("set-proc-title", &[], BOOL, "yes", IMMUTABLE | NO_EFFECT),
    row("shutdown-on-sigint", &[], Kind::Flags(SHUTDOWN_ON_SIGNAL), "default", 0),
    row("shutdown-on-sigterm", &[], Kind::Flags(SHUTDOWN_ON_SIGNAL), "default", 0),
    row("shutdown-timeout", &[], Kind::Integer { min: 0, max: I32_MAX }, "10", 0),
    row("slowlog-log-slower-than", &[], Kind::Integer { min: -1, max: i64::MAX }, "10000", 0),
    row("slowlog-max-len", &[], Kind::Integer { min: 0, max: i64::MAX }, "128", 0),
    row("socket-mark-id", &[], Kind::Integer { min: 0, max: U32_MAX }, "0", IMMUTABLE | NO_EFFECT),
    row("stop-writes-on-bgsave-error", &[], BOOL, "yes", 0),
    row("stream-node-max-bytes", &[], Kind::Memory { min: 0, max: i64::MAX }, "4096", 0),
    row("stream-node-max-entries", &[], Kind::Integer { min: 0, max: i64::MAX }, "100", 0),
    row("supervised", &[], Kind::Enum(SUPERVISED), "no", IMMUTABLE | NO_EFFECT),
    row("syslog-enabled", &[], BOOL, "no", IMMUTABLE | NO_EFFECT),
    row("syslog-facility", &[], Kind::Enum(SYSLOG_FACILITIES), "local0", IMMUTABLE | NO_EFFECT),
    row("syslog-ident", &[], TEXT, "redis", IMMUTABLE | NO_EFFECT),
    row("tcp-backlog", &[], Kind::Integer { min: 0, max: I32_MAX }, "511", IMMUTABLE | NO_EFFECT),
    row("tcp-keepalive", &[], Kind::Integer { min: 0, max: I32_MAX }, "300", NO_EFFECT),
    row("timeout", &[], Kind::Integer { min: 0, max: I32_MAX }, "0", 0),
    row("tls-auth-clients", &[], Kind::Enum(TLS_AUTH_CLIENTS), "yes", NO_EFFECT),
    row("tls-ca-cert-dir", &[], TEXT, "", NO_EFFECT),
    row("tls-ca-cert-file", &[], TEXT, "", NO_EFFECT),
    row("tls-cert-file", &[], TEXT, "", NO_EFFECT),
    row("tls-ciphers", &[], TEXT, "", NO_EFFECT),
    row("tls-ciphersuites", &[], TEXT, "", NO_EFFECT),
    row("tls-client-cert-file", &[], TEXT, "", NO_EFFECT),
    row("tls-client-key-file", &[], TEXT, "", NO_EFFECT),
    row("tls-client-key-file-pass", &[], TEXT, "", SENSITIVE | NO_EFFECT),
    row("tls-cluster", &[], BOOL, "no", NO_EFFECT),
    row("tls-dh-params-file", &[], TEXT, "", NO_EFFECT),
    row("tls-key-file", &[], TEXT, "", NO_EFFECT),
    row("tls-key-file-pass", &[], TEXT, "", SENSITIVE | NO_EFFECT),
    row("tls-port", &[], Kind::Integer { min: 0, max: 65535 }, "0", NO_EFFECT),
    row("tls-prefer-server-ciphers", &[], BOOL, "no", NO_EFFECT),
    row("tls-protocols", &[], TEXT, "", NO_EFFECT),
    row("tls-replication", &[], BOOL, "no", NO_EFFECT),
    row("tls-session-cache-size", &[], Kind::Integer { min: 0, max: I32_MAX }, "20480", NO_EFFECT),
    row("tls-session-cache-timeout", &[], Kind::Integer { min: 0, max: I32_MAX }, "300", NO_EFFECT),
    row("tls-session-caching", &[], BOOL, "yes", NO_EFFECT),
    row("tracking-table-max-keys", &[], Kind::Integer { min: 0, max: i64::MAX }, "1000000", 0),
    row("unixsocket", &[], TEXT, "", IMMUTABLE),
    row("unixsocketgroup", &[], TEXT, "", IMMUTABLE | HIDDEN | NO_EFFECT),
    row("unixsocketperm", &[], Kind::Octal { min: 0, max: 0o777 }, "0", IMMUTABLE),
    row("use-exit-on-panic", &[], BOOL, "no", HIDDEN | NO_EFFECT),
    row("watchdog-period", &[], Kind::Integer { min: 0, max: I32_MAX }, "0", HIDDEN | NO_EFFECT),
    row("worker-threads", &[], Kind::Integer { min: 0, max: 1024 }, "0", IMMUTABLE | HIDDEN),
    row("zset-max-listpack-entries", &["zset-max-ziplist-entries"], Kind::Integer { min: 0, max: i64::MAX }, "128", 0),
    row("zset-max-listpack-value", &["zset-max-ziplist-value"], Kind::Memory { min: 0, max: i64::MAX }, "64", 0),
];

/// Options Redis 7.2 still accepts in a configuration file and ignores.
const DEPRECATED_OPTIONS: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// An option by name or alias, any case.
/// Whether CONFIG SET of `name` waits until the dataset is loaded (`dir`, `appendonly`: the
/// load reads them), answering LOADING meanwhile.
pub fn denied_while_loading(name: &str) -> bool {
    find_option(name).is_some_and(|spec| spec.has(DENY_LOADING))
}

pub fn find_option(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|spec| {
        spec.name.eq_ignore_ascii_case(name)
            || spec
                .aliases
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(name))
    })
}

/// Parses a byte count with Redis's units: `k` 1000, `kb` 1024, `m`, `mb`, `g`, `gb`.
pub fn parse_memory(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, i64); 7] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
        ("b", 1),
    ];
    for (suffix, multiplier) in units {
        if let Some(number) = lower.strip_suffix(suffix) {
            let value: i64 = store::number::parse_i64(number.as_bytes())?;
            return value.checked_mul(multiplier);
        }
    }
    store::number::parse_i64(lower.as_bytes())
}

/// A byte count as CONFIG REWRITE writes it: with the largest exact binary unit.
fn format_memory(bytes: i64) -> String {
    const GB: i64 = 1 << 30;
    const MB: i64 = 1 << 20;
    const KB: i64 = 1 << 10;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

/// Where a change comes from: the configuration file and command line, or CONFIG SET from a
/// client (local when it connected through the loopback interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    Startup,
    Command { local: bool },
}

/// Keyspace event classes, in the order CONFIG GET prints them.
const KEYSPACE_EVENT_CLASSES: &str = "g$lshzxetd";

/// Canonical `notify-keyspace-events` text, or None for an unknown class character.
fn keyspace_events(text: &str) -> Option<String> {
    let mut classes = HashSet::new();
    for character in text.chars() {
        match character {
            'A' => classes.extend(KEYSPACE_EVENT_CLASSES.chars()),
            'g' | '$' | 'l' | 's' | 'h' | 'z' | 'x' | 'e' | 'K' | 'E' | 't' | 'm' | 'd' | 'n' => {
                classes.insert(character);
            }
            _ => return None,
        }
    }
    let mut canonical = String::new();
    if KEYSPACE_EVENT_CLASSES
        .chars()
        .all(|class| classes.contains(&class))
    {
        canonical.push('A');
    } else {
        canonical.extend(
            KEYSPACE_EVENT_CLASSES
                .chars()
                .filter(|class| classes.contains(class)),
        );
    }
    canonical.extend("KEmn".chars().filter(|class| classes.contains(class)));
    Some(canonical)
}

/// `%f` with trailing zeros (and a trailing dot) removed, as Redis prints percentiles.
fn trimmed_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

const OUTPUT_BUFFER_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// The canonical `client-output-buffer-limit` after applying `args` to `current`.
fn output_buffer_limits(current: &str, args: &[&str]) -> Result<String, String> {
    if args.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits: Vec<[i64; 3]> = OUTPUT_BUFFER_CLASSES
        .iter()
        .map(|class| {
            let words: Vec<&str> = current.split_whitespace().collect();
            let position = words.iter().position(|word| word == class).unwrap_or(0);
            let number = |offset: usize| {
                words
                    .get(position + offset)
                    .and_then(|word| word.parse().ok())
                    .unwrap_or(0)
            };
            [number(1), number(2), number(3)]
        })
        .collect();
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let hard = parse_memory(group[1]).filter(|value| *value >= 0);
        let soft = parse_memory(group[2]).filter(|value| *value >= 0);
        let seconds = store::number::parse_i64(group[3].as_bytes()).filter(|value| *value >= 0);
        match (hard, soft, seconds) {
            (Some(hard), Some(soft), Some(seconds)) => limits[class] = [hard, soft, seconds],
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                )
            }
        }
    }
    Ok(OUTPUT_BUFFER_CLASSES
        .iter()
        .zip(&limits)
        .map(|(class, [hard, soft, seconds])| format!("{class} {hard} {soft} {seconds}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Why a value was refused (the text Redis puts after ` - ` in its error), or the value's
/// canonical text.
fn validate(spec: &OptionSpec, args: &[String], current: &str) -> Result<String, String> {
    let joined = args.join(" ");
    let words: Vec<&str> = args
        .iter()
        .flat_map(|arg| arg.split(' '))
        .filter(|word| !word.is_empty())
        .collect();
    let range_error =
        |min: i64, max: i64| format!("argument must be between {min} and {max} inclusive");
    match spec.kind {
        Kind::Bool => match joined.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Integer { min, max } => {
            let value = store::number::parse_i64(joined.as_bytes())
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            if value < min || value > max {
                return Err(range_error(min, max));
            }
            let value = if spec.name == "hz" {
                value.clamp(1, 500)
            } else {
                value
            };
            Ok(value.to_string())
        }
        Kind::Memory { min, max } => {
            let value = parse_memory(&joined)
                .ok_or_else(|| "argument must be a memory value".to_string())?;
            if value < min || value > max {
                return Err(range_error(min, max));
            }
            Ok(value.to_string())
        }
        Kind::MemoryOrPercent => {
            if let Some(value) = parse_memory(&joined) {
                if value < 0 {
                    return Err(range_error(-100, i64::MAX));
                }
                return Ok(value.to_string());
            }
            let percent = joined
                .strip_suffix('%')
                .and_then(|number| store::number::parse_i64(number.as_bytes()))
                .filter(|percent| *percent >= 0)
                .ok_or_else(|| "argument must be a memory or percent value".to_string())?;
            if percent > 100 {
                return Err("percentage argument must be less or equal to 100".into());
            }
            Ok(format!("{percent}%"))
        }
        Kind::Octal { min, max } => {
            let value = i64::from_str_radix(&joined, 8)
                .map_err(|_| "argument couldn't be parsed as an octal number".to_string())?;
            if value < min || value > max {
                return Err(format!(
                    "argument must be between {min:o} and {max:o} inclusive"
                ));
            }
            Ok(format!("{value:o}"))
        }
        Kind::Enum(choices) => {
            let lower = joined.to_ascii_lowercase();
            if words.len() == 1 && choices.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                ))
            }
        }
        Kind::Flags(choices) => {
            let lower: Vec<String> = words.iter().map(|word| word.to_ascii_lowercase()).collect();
            if lower.is_empty() || lower.iter().any(|word| !choices.contains(&word.as_str())) {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                ));
            }
            if lower.iter().any(|word| word == "save") && lower.iter().any(|word| word == "nosave")
            {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            let set: Vec<&str> = choices[1..]
                .iter()
                .filter(|choice| lower.iter().any(|word| word == *choice))
                .copied()
                .collect();
            Ok(if set.is_empty() {
                choices[0].to_string()
            } else {
                set.join(" ")
            })
        }
        Kind::Text => {
            if matches!(spec.name, "dbfilename" | "appendfilename" | "appenddirname") {
                if joined.is_empty() {
                    return Err(format!("{} can't be empty", spec.name));
                }
                if joined.contains('/') {
                    let what = if spec.name == "appenddirname" {
                        "dirname"
                    } else {
                        "filename"
                    };
                    return Err(format!("{} can't be a path, just a {what}", spec.name));
                }
            }
            Ok(joined)
        }
        Kind::Save => {
            if words.len() % 2 != 0 {
                return Err("Invalid save parameters".into());
            }
            for (index, word) in words.iter().enumerate() {
                let minimum = if index % 2 == 0 { 1 } else { 0 };
                if store::number::parse_i64(word.as_bytes()).is_none_or(|value| value < minimum) {
                    return Err("Invalid save parameters".into());
                }
            }
            Ok(words.join(" "))
        }
        Kind::Addresses => {
            if words.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(words.join(" "))
        }
        Kind::OutputBufferLimit => output_buffer_limits(current, &words),
        Kind::OomScoreValues => {
            if words.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            for word in &words {
                if store::number::parse_i64(word.as_bytes())
                    .is_none_or(|value| !(-2000..=2000).contains(&value))
                {
                    return Err(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                            .into(),
                    );
                }
            }
            Ok(words.join(" "))
        }
        Kind::KeyspaceEvents => keyspace_events(&joined)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()),
        Kind::ReplicaOf => {
            if words.len() != 2 {
                return Err("wrong number of arguments".into());
            }
            if words[0].eq_ignore_ascii_case("no") && words[1].eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            if store::number::parse_i64(words[1].as_bytes())
                .is_none_or(|port| !(0..=65535).contains(&port))
            {
                return Err("Invalid master port".into());
            }
            Ok(words.join(" "))
        }
        Kind::Percentiles => {
            let mut canonical = Vec::new();
            for word in &words {
                let value = store::number::parse_f64(word.as_bytes()).ok_or_else(|| {
                    "Invalid latency-tracking-info-percentiles parameters".to_string()
                })?;
                if !(0.0..=100.0).contains(&value) {
                    return Err(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                            .into(),
                    );
                }
                canonical.push(trimmed_float(value));
            }
            Ok(canonical.join(" "))
        }
        Kind::Directory => {
            if joined.is_empty() {
                return Err("dir can't be empty".into());
            }
            Ok(joined)
        }
    }
}

/// Options read on hot paths, mirrored as atomics.
#[derive(Default)]
pub struct HotConfig {
    pub proto_max_bulk_len: AtomicI64,
    pub client_query_buffer_limit: AtomicI64,
    pub maxclients: AtomicI64,
    pub protected_mode: AtomicBool,
    pub requirepass_set: AtomicBool,
    pub timeout_s: AtomicU64,
    pub hz: AtomicI64,
    pub active_expire_effort: AtomicI64,
    pub list_max_listpack_size: AtomicI64,
    pub list_compress_depth: AtomicI64,
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
    pub stream_node_max_bytes: AtomicI64,
    pub stream_node_max_entries: AtomicI64,
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    pub set_max_intset_entries: AtomicU64,
    pub set_max_listpack_entries: AtomicU64,
    pub set_max_listpack_value: AtomicU64,
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: AtomicU64,
    /// `maxmemory-clients`: bytes when positive, minus a percentage of `maxmemory` when
    /// negative, 0 for no limit (Redis's encoding).
    pub maxmemory_clients: AtomicI64,
    /// Index of `maxmemory-policy` in [`EVICTION_POLICIES`].
    pub maxmemory_policy: std::sync::atomic::AtomicUsize,
    pub maxmemory_samples: AtomicU64,
    pub maxmemory_eviction_tenacity: AtomicU64,
    pub lazyfree_lazy_eviction: AtomicBool,
    /// `lazyfree-lazy-expire`: expired keys are propagated as UNLINK rather than DEL.
    pub lazyfree_lazy_expire: AtomicBool,
    /// `lazyfree-lazy-user-del`: DEL frees as UNLINK does.
    pub lazyfree_lazy_user_del: AtomicBool,
    /// `lazyfree-lazy-server-del`: deletions the server makes itself (SPOP of a whole set,
    /// RENAME over a key ...) free lazily.
    pub lazyfree_lazy_server_del: AtomicBool,
    /// `hll-sparse-max-bytes`: the size past which a sparse HyperLogLog turns dense.
    pub hll_sparse_max_bytes: AtomicU64,
    /// `slowlog-log-slower-than` in microseconds (negative: disabled).
    pub slowlog_log_slower_than_us: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds (0: disabled).
    pub latency_monitor_threshold_ms: AtomicU64,
    pub latency_tracking: AtomicBool,
    /// `min-replicas-to-write` (0: writes never wait for replicas).
    pub min_replicas_to_write: AtomicU64,
    /// `min-replicas-max-lag` in seconds.
    pub min_replicas_max_lag_s: AtomicU64,
}

/// The values before a change, to roll it back.
pub type PreviousValues = Vec<(&'static str, String)>;

pub struct Config {
    values: RwLock<HashMap<&'static str, String>>,
    pub hot: HotConfig,
    /// The configuration file the server started with (absolute), if any.
    pub file: Option<std::path::PathBuf>,
    /// Whether a `save` line was read already (later lines add to it).
    save_seen: AtomicBool,
    /// Options without effect already reported in the log.
    reported_no_effect: Mutex<HashSet<&'static str>>,
    /// The `user <name> <rules...>` lines read, in order (applied by `crate::families::acl`).
    users: Mutex<Vec<Vec<Vec<u8>>>>,
    /// The `rename-command <command> <new name>` lines read, in order, each with the error to
    /// report if its command does not exist (applied by `crate::startup`).
    renames: Mutex<Vec<(String, String, ConfigFileError)>>,
    /// What reading the configuration had to say before logging was set up (whether it is a
    /// warning, the message); `None` once [`Config::flush_startup_notes`] logged them.
    startup_notes: Mutex<Option<Vec<(bool, String)>>>,
}

/// A problem in the configuration file or command line.
#[derive(Debug)]
pub struct ConfigFileError {
    pub line_number: usize,
    pub line: String,
    pub message: String,
}

impl ConfigFileError {
    /// The report Redis prints before exiting.
    pub fn report(&self) -> String {
        format!(
            "\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}\n",
            self.line_number, self.line, self.message
        )
    }
}

impl Default for Config {
    fn default() -> Self {
        let values = OPTIONS
            .iter()
            .map(|spec| (spec.name, spec.default.to_string()))
            .collect();
        let config = Config {
            values: RwLock::new(values),
            hot: HotConfig::default(),
            file: None,
            save_seen: AtomicBool::new(false),
            reported_no_effect: Mutex::new(HashSet::new()),
            users: Mutex::new(Vec::new()),
            renames: Mutex::new(Vec::new()),
            startup_notes: Mutex::new(Some(Vec::new())),
        };
        config.hot.refresh(&config);
        config
    }
}

impl HotConfig {
    fn refresh(&self, config: &Config) {
        let int = |name: &str| config.get_i64(name);
        self.proto_max_bulk_len
            .store(int("proto-max-bulk-len"), Ordering::Relaxed);
        self.client_query_buffer_limit
            .store(int("client-query-buffer-limit"), Ordering::Relaxed);
        self.maxclients.store(int("maxclients"), Ordering::Relaxed);
        self.protected_mode
            .store(config.get_bool("protected-mode"), Ordering::Relaxed);
        self.requirepass_set
            .store(!config.get("requirepass").is_empty(), Ordering::Relaxed);
        self.timeout_s
            .store(int("timeout") as u64, Ordering::Relaxed);
        self.hz.store(int("hz"), Ordering::Relaxed);
        self.active_expire_effort
            .store(int("active-expire-effort"), Ordering::Relaxed);
        self.list_max_listpack_size
            .store(int("list-max-listpack-size"), Ordering::Relaxed);
        self.list_compress_depth
            .store(int("list-compress-depth"), Ordering::Relaxed);
        self.zset_max_listpack_entries
            .store(int("zset-max-listpack-entries") as u64, Ordering::Relaxed);
        self.zset_max_listpack_value
            .store(int("zset-max-listpack-value") as u64, Ordering::Relaxed);
        self.stream_node_max_bytes
            .store(int("stream-node-max-bytes"), Ordering::Relaxed);
        self.stream_node_max_entries
            .store(int("stream-node-max-entries"), Ordering::Relaxed);
        for (atomic, name) in [
            (&self.hash_max_listpack_entries, "hash-max-listpack-entries"),
            (&self.hash_max_listpack_value, "hash-max-listpack-value"),
            (&self.set_max_intset_entries, "set-max-intset-entries"),
            (&self.set_max_listpack_entries, "set-max-listpack-entries"),
            (&self.set_max_listpack_value, "set-max-listpack-value"),
        ] {
            atomic.store(int(name).max(0) as u64, Ordering::Relaxed);
        }
        self.maxmemory
            .store(int("maxmemory").max(0) as u64, Ordering::Relaxed);
        let clients = config.get("maxmemory-clients");
        let clients = match clients.strip_suffix('%') {
            Some(percent) => -percent.parse::<i64>().unwrap_or(0),
            None => clients.parse::<i64>().unwrap_or(0),
        };
        self.maxmemory_clients.store(clients, Ordering::Relaxed);
        let policy = config.get("maxmemory-policy");
        let policy_index = EVICTION_POLICIES
            .iter()
            .position(|name| *name == policy)
            .unwrap_or(EVICTION_POLICIES.len() - 1);
        self.maxmemory_policy.store(policy_index, Ordering::Relaxed);
        for (atomic, name) in [
            (&self.maxmemory_samples, "maxmemory-samples"),
            (
                &self.maxmemory_eviction_tenacity,
                "maxmemory-eviction-tenacity",
            ),
            (&self.slowlog_max_len, "slowlog-max-len"),
            (&self.min_replicas_to_write, "min-replicas-to-write"),
            (&self.min_replicas_max_lag_s, "min-replicas-max-lag"),
            (
                &self.latency_monitor_threshold_ms,
                "latency-monitor-threshold",
            ),
        ] {
            atomic.store(int(name).max(0) as u64, Ordering::Relaxed);
        }
        self.lazyfree_lazy_eviction
            .store(config.get_bool("lazyfree-lazy-eviction"), Ordering::Relaxed);
        self.lazyfree_lazy_expire
            .store(config.get_bool("lazyfree-lazy-expire"), Ordering::Relaxed);
        self.lazyfree_lazy_user_del
            .store(config.get_bool("lazyfree-lazy-user-del"), Ordering::Relaxed);
        self.lazyfree_lazy_server_del.store(
            config.get_bool("lazyfree-lazy-server-del"),
            Ordering::Relaxed,
        );
        self.hll_sparse_max_bytes
            .store(int("hll-sparse-max-bytes").max(0) as u64, Ordering::Relaxed);
        self.slowlog_log_slower_than_us
            .store(int("slowlog-log-slower-than"), Ordering::Relaxed);
        self.latency_tracking
            .store(config.get_bool("latency-tracking"), Ordering::Relaxed);
    }
}

/// Text quoted as Redis's `sdscatrepr` does, for CONFIG REWRITE.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(byte as char),
            other => out.push_str(&format!("\\x{other:02x}")),
        }
    }
    out.push('"');
    out
}

/// The line that marks where CONFIG REWRITE started appending options.
const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// The state of a rewrite: the file's lines, and where each option appears in it.
struct Rewrite {
    lines: Vec<String>,
    option_lines: HashMap<String, std::collections::VecDeque<usize>>,
    processed: HashSet<String>,
    needs_signature: bool,
    force_all: bool,
}

impl Rewrite {
    fn read(text: &str, force_all: bool) -> Rewrite {
        let mut rewrite = Rewrite {
            lines: Vec::new(),
            option_lines: HashMap::new(),
            processed: HashSet::new(),
            needs_signature: true,
            force_all,
        };
        let mut raw_lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            raw_lines.pop();
        }
        for raw in raw_lines {
            let line = raw.trim_matches(|character| matches!(character, '\r' | '\n' | '\t' | ' '));
            if line.is_empty() || line.starts_with('#') {
                if rewrite.needs_signature && line == REWRITE_SIGNATURE {
                    rewrite.needs_signature = false;
                }
                rewrite.lines.push(line.to_string());
                continue;
            }
            let mut storage = Vec::new();
            let mut ranges = Vec::new();
            let parsed = resp::split_arguments(line.as_bytes(), &mut storage, &mut ranges).is_ok();
            let name = ranges.first().map(|&(start, end)| {
                String::from_utf8_lossy(&storage[start..end]).to_ascii_lowercase()
            });
            let known = name.as_deref().and_then(find_option);
            let directive = matches!(
                name.as_deref(),
                Some("include" | "rename-command" | "user" | "loadmodule" | "sentinel")
            ) || name
                .as_deref()
                .is_some_and(|name| DEPRECATED_OPTIONS.contains(&name));
            let Some(name) = name.filter(|_| parsed && (known.is_some() || directive)) else {
                rewrite.lines.push(format!("# ??? {line}"));
                continue;
            };
            let option = known.map(|spec| spec.name.to_string()).unwrap_or(name);
            rewrite
                .option_lines
                .entry(option)
                .or_default()
                .push_back(rewrite.lines.len());
            rewrite.lines.push(line.to_string());
        }
        rewrite
    }

    /// Puts `line` where the option appeared before, or appends it when `force`d.
    fn line(&mut self, option: &str, line: String, force: bool) {
        self.processed.insert(option.to_string());
        if let Some(positions) = self.option_lines.get_mut(option) {
            if let Some(position) = positions.pop_front() {
                self.lines[position] = line;
                return;
            }
        }
        if !force && !self.force_all {
            return;
        }
        if self.needs_signature {
            self.lines.push(REWRITE_SIGNATURE.to_string());
            self.needs_signature = false;
        }
        self.lines.push(line);
    }

    fn mark_processed(&mut self, option: &str) {
        self.processed.insert(option.to_string());
    }

    /// Blanks the lines of processed options that were not reused, and joins the lines,
    /// collapsing runs of empty lines.
    fn finish(mut self) -> String {
        for (option, positions) in &self.option_lines {
            if self.processed.contains(option) {
                for &position in positions {
                    self.lines[position].clear();
                }
            }
        }
        let mut content = String::new();
        let mut previous_empty = false;
        for line in &self.lines {
            if line.is_empty() {
                if previous_empty {
                    continue;
                }
                previous_empty = true;
            } else {
                previous_empty = false;
            }
            content.push_str(line);
            content.push('\n');
        }
        content
    }
}

impl Config {
    /// The canonical value of option `name` (no aliases).
    pub fn get(&self, name: &str) -> String {
        self.values
            .read()
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("unknown option {name}"))
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// Checks every `(name, arguments)` pair, then validates every value, then applies them
    /// all (or none). Returns the values they replaced.
    pub fn set_many(
        &self,
        pairs: &[(String, Vec<String>)],
        source: ConfigSource,
    ) -> Result<PreviousValues, String> {
        let mut specs: Vec<&'static OptionSpec> = Vec::with_capacity(pairs.len());
        let mut unknown: Option<&str> = None;
        let mut refused: Option<String> = None;
        for (name, _) in pairs {
            let Some(spec) = find_option(name) else {
                if unknown.is_none() && refused.is_none() {
                    unknown = Some(name);
                }
                continue;
            };
            if unknown.is_some() || refused.is_some() {
                continue;
            }
            if let ConfigSource::Command { local } = source {
                let reason = if spec.has(IMMUTABLE) {
                    Some("can't set immutable config")
                } else if spec.has(PROTECTED) && !self.protected_configs_allowed(local) {
                    Some("can't set protected config")
                } else if specs.iter().any(|seen| std::ptr::eq(*seen, spec)) {
                    Some("duplicate parameter")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    refused = Some(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                    ));
                    continue;
                }
            }
            specs.push(spec);
        }
        if let Some(name) = unknown {
            return Err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if let Some(message) = refused {
            return Err(message);
        }
        let mut validated: Vec<(&'static OptionSpec, String)> = Vec::with_capacity(pairs.len());
        for ((name, args), spec) in pairs.iter().zip(&specs) {
            let current = validated
                .iter()
                .rev()
                .find(|(seen, _)| std::ptr::eq(*seen, *spec))
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| self.get(spec.name));
            let value = validate(spec, args, &current).map_err(|reason| {
                format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}")
            })?;
            validated.push((spec, value));
        }
        let mut previous = Vec::with_capacity(validated.len());
        {
            let mut values = self.values.write();
            for (spec, value) in &validated {
                let old = values.insert(spec.name, value.clone()).unwrap_or_default();
                previous.push((spec.name, old));
            }
        }
        self.hot.refresh(self);
        for (spec, value) in validated {
            if spec.has(NO_EFFECT)
                && value != spec.default
                && self.reported_no_effect.lock().insert(spec.name)
            {
                self.note(
                    false,
                    format!(
                        "Option '{}' is accepted for compatibility and has no effect in this server",
                        spec.name
                    ),
                );
            }
        }
        Ok(previous)
    }

    /// Logs a message about the configuration, or keeps it for
    /// [`Config::flush_startup_notes`] while logging is not set up yet.
    fn note(&self, warning: bool, message: String) {
        if let Some(pending) = self.startup_notes.lock().as_mut() {
            pending.push((warning, message));
            return;
        }
        if warning {
            tracing::warn!("{message}");
        } else {
            tracing::info!("{message}");
        }
    }

    /// Logs what reading the configuration file and command line had to say (called once
    /// logging is set up); later notes are logged at once.
    pub fn flush_startup_notes(&self) {
        let pending = self.startup_notes.lock().take().unwrap_or_default();
        for (warning, message) in pending {
            if warning {
                tracing::warn!("{message}");
            } else {
                tracing::info!("{message}");
            }
        }
    }

    /// Puts back the values a change replaced.
    pub fn restore(&self, previous: &PreviousValues) {
        {
            let mut values = self.values.write();
            for (name, value) in previous.iter().rev() {
                values.insert(name, value.clone());
            }
        }
        self.hot.refresh(self);
    }

    fn protected_configs_allowed(&self, local: bool) -> bool {
        match self.get("enable-protected-configs").as_str() {
            "yes" => true,
            "local" => local,
            _ => false,
        }
    }

    /// CONFIG GET: every option matching any pattern, once, as (name, value). An exact name
    /// (no glob characters) finds hidden options and aliases and is echoed as given.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut found: Vec<(String, String)> = Vec::new();
        for pattern in patterns {
            let text = String::from_utf8_lossy(pattern).into_owned();
            let is_glob = pattern
                .iter()
                .any(|byte| matches!(byte, b'*' | b'?' | b'['));
            if !is_glob {
                if found.iter().any(|(seen, _)| *seen == text) {
                    continue;
                }
                if let Some(spec) = find_option(&text) {
                    found.push((text, values[spec.name].clone()));
                }
                continue;
            }
            let compiled = Pattern::new(pattern, true);
            for spec in OPTIONS.iter().filter(|spec| !spec.has(HIDDEN)) {
                for name in std::iter::once(&spec.name).chain(spec.aliases) {
                    if compiled.matches(name.as_bytes())
                        && !found.iter().any(|(seen, _)| seen == name)
                    {
                        found.push((name.to_string(), values[spec.name].clone()));
                    }
                }
            }
        }
        found
    }

    /// The `rename-command` directives read: (command, new name or empty to remove it, the
    /// error to report when the command does not exist).
    pub fn take_renames(&self) -> Vec<(String, String, ConfigFileError)> {
        std::mem::take(&mut *self.renames.lock())
    }

    /// The `user` directives read (name first, then its rules).
    pub fn user_directives(&self) -> Vec<Vec<Vec<u8>>> {
        self.users.lock().clone()
    }

    /// Reads redis.conf text followed by command-line options.
    pub fn load(&self, text: &str) -> Result<(), ConfigFileError> {
        for (index, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: &str| ConfigFileError {
                line_number: index + 1,
                line: line.to_string(),
                message: message.to_string(),
            };
            let mut storage = Vec::new();
            let mut ranges = Vec::new();
            if resp::split_arguments(line.as_bytes(), &mut storage, &mut ranges).is_err() {
                return Err(error("Unbalanced quotes in configuration line"));
            }
            let args: Vec<String> = ranges
                .iter()
                .map(|&(start, end)| String::from_utf8_lossy(&storage[start..end]).into_owned())
                .collect();
            let Some((name, values)) = args.split_first() else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if name == "include" {
                let path = values.join(" ");
                // A pattern (`conf.d/*.conf`) includes every match, in order, and nothing when
                // none matches; a plain path must open.
                let files = if path.contains(['*', '?', '[']) {
                    glob_paths(&path)
                } else {
                    vec![std::path::PathBuf::from(&path)]
                };
                for file in files {
                    let included = std::fs::read_to_string(&file).map_err(|io| {
                        error(&format!(
                            "Fatal error, can't open config file '{}': {io}",
                            file.display()
                        ))
                    })?;
                    self.load(&included)?;
                }
                continue;
            }
            if name == "user" {
                let words: Vec<Vec<u8>> = ranges
                    .iter()
                    .skip(1)
                    .map(|&(start, end)| storage[start..end].to_vec())
                    .collect();
                if words.is_empty() {
                    return Err(error("Bad directive or wrong number of arguments"));
                }
                if self.users.lock().iter().any(|known| known[0] == words[0]) {
                    return Err(error(
                        "Duplicate user found. A user can only be defined once in config files",
                    ));
                }
                self.users.lock().push(words);
                continue;
            }
            if name == "rename-command" {
                let [command, new_name] = values else {
                    return Err(error("Bad directive or wrong number of arguments"));
                };
                self.renames.lock().push((
                    command.to_ascii_lowercase(),
                    new_name.to_ascii_lowercase(),
                    error("No such command in rename-command"),
                ));
                continue;
            }
            if matches!(name.as_str(), "loadmodule" | "sentinel") {
                self.note(
                    true,
                    format!("configuration directive '{name}' is not supported and was ignored"),
                );
                continue;
            }
            if DEPRECATED_OPTIONS.contains(&name.as_str()) && values.len() == 1 {
                self.note(
                    true,
                    format!("Configuration option '{name}' is deprecated and has no effect"),
                );
                continue;
            }
            let Some(spec) = find_option(&name) else {
                return Err(error("Bad directive or wrong number of arguments"));
            };
            let several = spec.kind.takes_several_arguments();
            if values.is_empty() && !several {
                return Err(error("Bad directive or wrong number of arguments"));
            }
            if values.len() > 1 && !several {
                return Err(error(&format!(
                    "Bad directive or wrong number of arguments - '{name}' wrong number of arguments"
                )));
            }
            // Repeated `save` lines accumulate, as in Redis; an empty one clears.
            let mut values = values.to_vec();
            if spec.name == "save" && !values.iter().all(String::is_empty) {
                values.retain(|value| !value.is_empty());
                let previous = self.get("save");
                if self.save_seen.swap(true, Ordering::Relaxed) && !previous.is_empty() {
                    values.insert(0, previous);
                }
            }
            if let Err(message) = self.set_many(&[(name.clone(), values)], ConfigSource::Startup) {
                let reason = message.rsplit(" - ").next().unwrap_or(&message).to_string();
                return Err(error(&reason));
            }
        }
        Ok(())
    }

    /// CONFIG REWRITE: rewrites the configuration file with the current values, keeping its
    /// comments, layout and unknown directives, as Redis does. `force_all` writes every option
    /// (DEBUG CONFIG-REWRITE-FORCE-ALL).
    pub fn rewrite(&self, force_all: bool) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "The server is running without a config file",
            ));
        };
        let old = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error),
        };
        let mut rewrite = Rewrite::read(&old, force_all);
        let values = self.values.read().clone();
        for spec in OPTIONS {
            rewrite_option(&mut rewrite, spec, &values[spec.name]);
        }
        let content = rewrite.finish();
        let mut temporary = path.clone().into_os_string();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = std::path::PathBuf::from(temporary);
        let result = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(content.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

/// Writes one option's line(s) into a rewrite, as Redis formats each kind.
fn rewrite_option(rewrite: &mut Rewrite, spec: &OptionSpec, value: &str) {
    let name = spec.name;
    let force = value != spec.default;
    match spec.kind {
        Kind::Memory { .. } => {
            let bytes = value.parse().unwrap_or(0);
            rewrite.line(name, format!("{name} {}", format_memory(bytes)), force);
        }
        Kind::MemoryOrPercent => {
            let text = match value.parse::<i64>() {
                Ok(bytes) => format_memory(bytes),
                Err(_) => value.to_string(),
            };
            rewrite.line(name, format!("{name} {text}"), force);
        }
        Kind::Text | Kind::KeyspaceEvents => {
            if value.is_empty() && spec.default.is_empty() && spec.kind_is_text() {
                rewrite.mark_processed(name);
            } else {
                rewrite.line(name, format!("{name} {}", quoted(value)), force);
            }
        }
        Kind::Directory => {
            let directory = std::env::current_dir()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|_| value.to_string());
            rewrite.line(name, format!("{name} {}", quoted(&directory)), true);
        }
        Kind::Save => {
            if value.is_empty() {
                rewrite.line(name, "save \"\"".to_string(), true);
            } else {
                let words: Vec<&str> = value.split_whitespace().collect();
                for pair in words.chunks(2) {
                    rewrite.line(name, format!("save {}", pair.join(" ")), true);
                }
            }
        }
        Kind::Addresses | Kind::ReplicaOf => {
            if !force || value.is_empty() {
                rewrite.mark_processed(name);
            } else {
                rewrite.line(name, format!("{name} {value}"), true);
            }
        }
        Kind::OutputBufferLimit => {
            let words: Vec<&str> = value.split_whitespace().collect();
            let defaults: Vec<&str> = spec.default.split_whitespace().collect();
            for (group, default_group) in words.chunks(4).zip(defaults.chunks(4)) {
                let memory = |word: &str| format_memory(word.parse().unwrap_or(0));
                let line = format!(
                    "{name} {} {} {} {}",
                    group[0],
                    memory(group[1]),
                    memory(group[2]),
                    group[3]
                );
                rewrite.line(name, line, group != default_group);
            }
        }
        Kind::Percentiles => {
            let text = if value.is_empty() {
                "\"\"".to_string()
            } else {
                value.to_string()
            };
            rewrite.line(name, format!("{name} {text}"), force);
        }
        Kind::Bool
        | Kind::Integer { .. }
        | Kind::Octal { .. }
        | Kind::Enum(_)
        | Kind::Flags(_)
        | Kind::OomScoreValues => {
            rewrite.line(name, format!("{name} {value}"), force);
        }
    }
}

impl OptionSpec {
    fn kind_is_text(&self) -> bool {
        matches!(self.kind, Kind::Text)
    }
}

/// The paths matching a glob pattern (`*`, `?`, `[...]` in any component), sorted; names
/// starting with a dot match only a pattern component that starts with one, as glob(3) does.
fn glob_paths(pattern: &str) -> Vec<std::path::PathBuf> {
    let mut found = vec![if pattern.starts_with('/') {
        std::path::PathBuf::from("/")
    } else {
        std::path::PathBuf::new()
    }];
    for component in pattern.split('/').filter(|part| !part.is_empty()) {
        if !component.contains(['*', '?', '[']) {
            found = found.into_iter().map(|base| base.join(component)).collect();
            continue;
        }
        let compiled = Pattern::new(component.as_bytes(), false);
        let mut next = Vec::new();
        for base in &found {
            let directory = if base.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(directory) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str());
                if bytes.starts_with(b".") && !component.starts_with('.') {
                    continue;
                }
                if compiled.matches(bytes) {
                    next.push(base.join(&name));
                }
            }
        }
        next.sort();
        found = next;
    }
    found.retain(|path| path.exists());
    found
}

/// Turns `cinnabar-server [file] [--name value ...]` arguments into config text (file first).
pub fn command_line_to_text(args: &[String]) -> Result<(Option<String>, String), String> {
    let mut file = None;
    let mut rest = args;
    if let Some(first) = args.first() {
        if !first.starts_with("--") {
            file = Some(first.clone());
            rest = &args[1..];
        }
    }
    // As Redis 7.2: `--name` starts an option only once the previous option has a value, so
    // an option's first value may itself start with `--` (`--port --bla`); `--save` and
    // `--sentinel` followed by another option (or last) take no value (`--save` means "").
    let mut text = String::new();
    let mut last_has_value = true;
    for (index, arg) in rest.iter().enumerate() {
        let name = arg.strip_prefix("--").filter(|_| last_has_value);
        let Some(name) = name else {
            text.push(' ');
            text.push_str(&quote(arg));
            last_has_value = true;
            continue;
        };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name);
        // `--port 6380` as one argument carries its value.
        last_has_value = name.contains(|c: char| c.is_ascii_whitespace());
        let next_is_option = rest
            .get(index + 1)
            .is_none_or(|next| next.starts_with("--"));
        if !last_has_value && next_is_option {
            if name.eq_ignore_ascii_case("save") {
                text.push_str(" \"\"");
                last_has_value = true;
            } else if name.eq_ignore_ascii_case("sentinel") {
                last_has_value = true;
            }
        }
    }
    Ok((file, text))
}

/// Quotes an argument for config text so that it splits back to itself.
fn quote(arg: &str) -> String {
    let mut quoted = String::from("\"");
    for character in arg.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            _ => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(config: &Config, name: &str, value: &str) -> Result<PreviousValues, String> {
        config.set_many(
            &[(name.into(), vec![value.into()])],
            ConfigSource::Command { local: true },
        )
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("10MB"), Some(10 << 20));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("1b"), Some(1));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(3 << 20), "3mb");
        assert_eq!(format_memory(2048), "2kb");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(format_memory(0), "0");
    }

    #[test]
    fn every_option_has_a_valid_default() {
        let mut names = HashSet::new();
        for spec in OPTIONS {
            assert!(names.insert(spec.name), "{} listed twice", spec.name);
            for alias in spec.aliases {
                assert!(names.insert(alias), "{alias} listed twice");
            }
            if matches!(spec.kind, Kind::Directory) {
                continue;
            }
            let args: Vec<String> = if spec.default.is_empty() {
                vec![]
            } else {
                vec![spec.default.to_string()]
            };
            match validate(spec, &args, spec.default) {
                Ok(canonical) => assert_eq!(canonical, spec.default, "{}", spec.name),
                Err(error) => {
                    assert!(args.is_empty(), "{}: {error}", spec.name);
                }
            }
        }
    }

    #[test]
    fn set_is_atomic() {
        let config = Config::default();
        let error = config
            .set_many(
                &[
                    ("maxmemory".into(), vec!["10mb".into()]),
                    ("port".into(), vec!["notanumber".into()]),
                ],
                ConfigSource::Command { local: true },
            )
            .unwrap_err();
        assert_eq!(
            error,
            "CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"
        );
        assert_eq!(config.get("maxmemory"), "0");
        let previous = set(&config, "maxmemory", "10mb").unwrap();
        assert_eq!(config.get("maxmemory"), "10485760");
        config.restore(&previous);
        assert_eq!(config.get("maxmemory"), "0");
    }

    #[test]
    fn set_errors_like_redis() {
        let config = Config::default();
        let cases = [
            ("nosuch", "1", "Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
            ("daemonize", "yes", "CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
            ("dir", "/tmp", "CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
            ("maxmemory", "abc", "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
            ("maxmemory-clients", "200%", "CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"),
            ("protected-mode", "maybe", "CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"),
            ("timeout", "-1", "CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"),
            ("save", "1 2 3", "CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
            ("notify-keyspace-events", "Q", "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
            ("maxmemory-policy", "foo", "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
        ];
        for (name, value, expected) in cases {
            assert_eq!(set(&config, name, value).unwrap_err(), expected);
        }
        let duplicate = config
            .set_many(
                &[
                    ("maxmemory".into(), vec!["1".into()]),
                    ("maxmemory".into(), vec!["2".into()]),
                ],
                ConfigSource::Command { local: true },
            )
            .unwrap_err();
        assert_eq!(
            duplicate,
            "CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"
        );
    }

    #[test]
    fn canonical_values() {
        let config = Config::default();
        set(&config, "hz", "1000").unwrap();
        assert_eq!(config.get("hz"), "500");
        set(&config, "hz", "0").unwrap();
        assert_eq!(config.get("hz"), "1");
        set(&config, "notify-keyspace-events", "KEA").unwrap();
        assert_eq!(config.get("notify-keyspace-events"), "AKE");
        set(&config, "notify-keyspace-events", "Ex$").unwrap();
        assert_eq!(config.get("notify-keyspace-events"), "$xE");
        set(
            &config,
            "latency-tracking-info-percentiles",
            "0.0 50.0 100.0",
        )
        .unwrap();
        assert_eq!(config.get("latency-tracking-info-percentiles"), "0 50 100");
        set(&config, "shutdown-on-sigint", "nosave force now").unwrap();
        assert_eq!(config.get("shutdown-on-sigint"), "nosave now force");
        set(&config, "maxmemory-clients", "10%").unwrap();
        assert_eq!(config.get("maxmemory-clients"), "10%");
        set(&config, "client-output-buffer-limit", "pubsub 64mb 16mb 30").unwrap();
        assert_eq!(
            config.get("client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 30"
        );
        set(&config, "hash-max-ziplist-entries", "100").unwrap();
        assert_eq!(config.get("hash-max-listpack-entries"), "100");
    }

    #[test]
    fn file_and_command_line() {
        let config = Config::default();
        let (file, text) =
            command_line_to_text(&["--port".into(), "7000".into(), "--save".into(), "".into()])
                .unwrap();
        assert!(file.is_none());
        config
            .load(&format!("# comment\nloglevel warning\n{text}"))
            .unwrap();
        assert_eq!(config.get("port"), "7000");
        assert_eq!(config.get("save"), "");
        assert_eq!(config.get("loglevel"), "warning");
        let error = config.load("\nfoo bar\n").unwrap_err();
        assert_eq!(error.line_number, 2);
        assert!(error
            .report()
            .contains("Bad directive or wrong number of arguments"));
        assert!(config.load("port 1 2").is_err());
        config
            .load("shutdown-on-sigterm nosave now\nbind 127.0.0.1 ::1\nsave 100 1\nsave 200 2\n")
            .unwrap();
        assert_eq!(config.get("shutdown-on-sigterm"), "nosave now");
        assert_eq!(config.get("save"), "100 1 200 2");
    }

    #[test]
    fn command_line_values_may_start_with_dashes() {
        let text = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
            command_line_to_text(&args).unwrap().1
        };
        assert_eq!(
            text(&["--port", "--loglevel", "verbose"]),
            "port \"--loglevel\" \"verbose\""
        );
        assert_eq!(
            text(&["--port", "--bla", "--loglevel", "verbose"]),
            "port \"--bla\"\nloglevel \"verbose\""
        );
        assert_eq!(text(&["--save", "--port", "1"]), "save \"\"\nport \"1\"");
        assert_eq!(text(&["--port", "1", "--save"]), "port \"1\"\nsave \"\"");
        assert_eq!(text(&["--port 7000", "--hz", "5"]), "port 7000\nhz \"5\"");
        assert_eq!(text(&["--shutdown-on-sigint"]), "shutdown-on-sigint");
        let config = Config::default();
        let error = config
            .load(&text(&["--port", "--loglevel", "verbose"]))
            .unwrap_err();
        assert_eq!(error.line, "port \"--loglevel\" \"verbose\"");
    }

    #[test]
    fn get_with_patterns_and_aliases() {
        let config = Config::default();
        let found = config.get_matching(&[b"hash-max-*"]);
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-value"
            ]
        );
        let found = config.get_matching(&[b"hash-max-ziplist-entries"]);
        assert_eq!(
            found,
            vec![("hash-max-ziplist-entries".to_string(), "128".to_string())]
        );
        assert_eq!(
            config.get_matching(&[b"MAXMEMORY"]),
            vec![("MAXMEMORY".to_string(), "0".to_string())]
        );
        let everything = config.get_matching(&[b"*"]);
        assert!(!everything.iter().any(|(name, _)| name == "key-load-delay"));
        assert_eq!(config.get_matching(&[b"key-load-delay"]).len(), 1);
    }

    #[test]
    fn include_reads_files_and_patterns() {
        let directory =
            std::env::temp_dir().join(format!("cinnabar-include-{}", std::process::id()));
        let fragments = directory.join("conf.d");
        std::fs::create_dir_all(&fragments).unwrap();
        std::fs::write(fragments.join("a.conf"), "maxclients 50\nhz 20\n").unwrap();
        std::fs::write(fragments.join("b.conf"), "hz 30\n").unwrap();
        std::fs::write(fragments.join(".hidden.conf"), "hz 40\n").unwrap();
        std::fs::write(fragments.join("c.txt"), "nonsense\n").unwrap();
        let config = Config::default();
        config
            .load(&format!("include {}/conf.d/*.conf\n", directory.display()))
            .unwrap();
        assert_eq!(config.get("maxclients"), "50");
        assert_eq!(config.get("hz"), "30");
        // A pattern that matches nothing includes nothing; a missing plain path is an error.
        config
            .load(&format!("include {}/none/*.conf\n", directory.display()))
            .unwrap();
        let error = config
            .load(&format!("include {}/missing.conf\n", directory.display()))
            .unwrap_err();
        assert!(
            error.message.contains("can't open config file"),
            "{}",
            error.message
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn deprecated_options_are_accepted_and_ignored() {
        let config = Config::default();
        config
            .load("list-max-ziplist-entries 512\nlist-max-ziplist-value 64\nlua-replicate-commands yes\n")
            .unwrap();
        assert!(config.load("list-max-ziplist-entries\n").is_err());
        assert!(config.load("list-max-ziplist-entries 1 2\n").is_err());
    }

    #[test]
    fn rewrite_keeps_layout() {
        let old = "# My config\nport 7000\n\n# memory\nmaxmemory 1gb\nsave 100 1\nsave 200 2\nunknown-thing 1\nrename-command FLUSHALL \"\"\nlist-max-ziplist-entries 512\n";
        let mut rewrite = Rewrite::read(old, false);
        let config = Config::default();
        config
            .load("port 7000\nmaxmemory 2gb\nsave 300 3\nmaxclients 50\n")
            .unwrap();
        let values = config.values.read().clone();
        for spec in OPTIONS
            .iter()
            .filter(|spec| !matches!(spec.kind, Kind::Directory))
        {
            rewrite_option(&mut rewrite, spec, &values[spec.name]);
        }
        assert_eq!(
            rewrite.finish(),
            "# My config\nport 7000\n\n# memory\nmaxmemory 2gb\nsave 300 3\n\n# ??? unknown-thing 1\nrename-command FLUSHALL \"\"\nlist-max-ziplist-entries 512\n# Generated by CONFIG REWRITE\nmaxclients 50\n"
        );
    }
}
