//! Configuration: the table of options, redis.conf parsing, the command line, CONFIG GET/SET.
//!
//! Model. Every option is a row of [`OPTIONS`]: its name, aliases, kind (which fixes how a
//! value is parsed and printed back), default and flags. [`Config`] keeps each option's value in
//! canonical text (what CONFIG GET prints) and mirrors the options read on hot paths into
//! [`HotConfig`] atomics. A change (file, command line, CONFIG SET) goes through
//! [`Config::set_many`], which validates every pair before applying any, so CONFIG SET is
//! atomic.
//!
//! To add an option: add a row to `OPTIONS`; if code reads it on a hot path, add an atomic to
//! `HotConfig` and fill it in `HotConfig::refresh`; if changing it at run time must do
//! something (rebind a port), handle it where the server watches config changes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use hashbrown::HashMap;
use parking_lot::RwLock;

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
    Enum(&'static [&'static str]),
    /// Enum flags that combine (`"a b"`).
    Text,
    /// `save`: pairs of seconds and changes, or "".
    Save,
    /// `bind`: one or more addresses.
    Addresses,
}

pub mod option_flags {
    pub const IMMUTABLE: u8 = 1;
    /// Accepted for compatibility; has no effect here.
    pub const NO_EFFECT: u8 = 2;
    /// Hidden from glob patterns in CONFIG GET (sensitive or alias-only).
    pub const SENSITIVE: u8 = 4;
}

pub struct OptionSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: &'static str,
    pub flags: u8,
}

const fn option(name: &'static str, kind: Kind, default: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        kind,
        default,
        flags: 0,
    }
}

const fn immutable(name: &'static str, kind: Kind, default: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        kind,
        default,
        flags: option_flags::IMMUTABLE,
    }
}

const fn no_effect(name: &'static str, kind: Kind, default: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        kind,
        default,
        flags: option_flags::NO_EFFECT,
    }
}

const fn aliased(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        aliases,
        kind,
        default,
        flags: 0,
    }
}

const INT: Kind = Kind::Integer {
    min: i64::MIN,
    max: i64::MAX,
};
const NON_NEGATIVE: Kind = Kind::Integer {
    min: 0,
    max: i64::MAX,
};
const MEMORY: Kind = Kind::Memory {
    min: 0,
    max: i64::MAX,
};
const BOOL: Kind = Kind::Bool;
const TEXT: Kind = Kind::Text;
const LOG_LEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];
const EVICTION_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const APPEND_FSYNC: &[&str] = &["always", "everysec", "no"];

/// Every option the server knows.
pub static OPTIONS: &[OptionSpec] = &[
    // Network.
    option("port", Kind::Integer { min: 0, max: 65535 }, "6379"),
    option("bind", Kind::Addresses, "127.0.0.1 -::1"),
    option("protected-mode", BOOL, "yes"),
    option("tcp-backlog", INT, "511"),
    option("timeout", NON_NEGATIVE, "0"),
    option("tcp-keepalive", NON_NEGATIVE, "300"),
    immutable("unixsocket", TEXT, ""),
    immutable("unixsocketperm", TEXT, "0"),
    option(
        "maxclients",
        Kind::Integer {
            min: 1,
            max: u32::MAX as i64,
        },
        "10000",
    ),
    option(
        "proto-max-bulk-len",
        Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX,
        },
        "536870912",
    ),
    option(
        "client-query-buffer-limit",
        Kind::Memory {
            min: 1024 * 1024,
            max: i64::MAX,
        },
        "1073741824",
    ),
    // General.
    immutable("daemonize", BOOL, "no"),
    immutable(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    ),
    immutable("pidfile", TEXT, ""),
    option("loglevel", Kind::Enum(LOG_LEVELS), "notice"),
    immutable("logfile", TEXT, ""),
    immutable("syslog-enabled", BOOL, "no"),
    immutable("syslog-ident", TEXT, "redis"),
    immutable("syslog-facility", TEXT, "local0"),
    immutable(
        "databases",
        Kind::Integer {
            min: 1,
            max: i32::MAX as i64,
        },
        "16",
    ),
    no_effect("always-show-logo", BOOL, "no"),
    no_effect("set-proc-title", BOOL, "yes"),
    no_effect(
        "proc-title-template",
        TEXT,
        "{title} {listen-addr} {server-mode}",
    ),
    option(
        "hz",
        Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        "10",
    ),
    no_effect("dynamic-hz", BOOL, "yes"),
    immutable("io-threads", Kind::Integer { min: 0, max: 1024 }, "0"),
    no_effect("io-threads-do-reads", BOOL, "no"),
    immutable("enable-debug-command", Kind::Enum(YES_NO_LOCAL), "no"),
    immutable("enable-protected-configs", Kind::Enum(YES_NO_LOCAL), "no"),
    immutable("enable-module-command", Kind::Enum(YES_NO_LOCAL), "no"),
    option("crash-log-enabled", BOOL, "yes"),
    option("crash-memcheck-enabled", BOOL, "yes"),
    // Cinnabar's own: worker threads (0: one per core).
    immutable("worker-threads", Kind::Integer { min: 0, max: 1024 }, "0"),
    // Security.
    OptionSpec {
        name: "requirepass",
        aliases: &[],
        kind: TEXT,
        default: "",
        flags: option_flags::SENSITIVE,
    },
    // Persistence.
    option("save", Kind::Save, "3600 1 300 100 60 10000"),
    option("dbfilename", TEXT, "dump.rdb"),
    option("dir", TEXT, ""),
    option("rdbcompression", BOOL, "yes"),
    option("rdbchecksum", BOOL, "yes"),
    option("stop-writes-on-bgsave-error", BOOL, "yes"),
    option("rdb-del-sync-files", BOOL, "no"),
    option("appendonly", BOOL, "no"),
    immutable("appendfilename", TEXT, "appendonly.aof"),
    immutable("appenddirname", TEXT, "appendonlydir"),
    option("appendfsync", Kind::Enum(APPEND_FSYNC), "everysec"),
    option("no-appendfsync-on-rewrite", BOOL, "no"),
    option("auto-aof-rewrite-percentage", NON_NEGATIVE, "100"),
    option("auto-aof-rewrite-min-size", MEMORY, "67108864"),
    option("aof-load-truncated", BOOL, "yes"),
    option("aof-use-rdb-preamble", BOOL, "yes"),
    option("aof-timestamp-enabled", BOOL, "no"),
    option(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
    ),
    // Memory.
    option("maxmemory", MEMORY, "0"),
    option(
        "maxmemory-policy",
        Kind::Enum(EVICTION_POLICIES),
        "noeviction",
    ),
    option("maxmemory-samples", Kind::Integer { min: 1, max: 64 }, "5"),
    option(
        "maxmemory-eviction-tenacity",
        Kind::Integer { min: 0, max: 100 },
        "10",
    ),
    option("lfu-log-factor", NON_NEGATIVE, "10"),
    option("lfu-decay-time", NON_NEGATIVE, "1"),
    option("lazyfree-lazy-eviction", BOOL, "no"),
    option("lazyfree-lazy-expire", BOOL, "no"),
    option("lazyfree-lazy-server-del", BOOL, "no"),
    option("lazyfree-lazy-user-del", BOOL, "no"),
    option("lazyfree-lazy-user-flush", BOOL, "no"),
    option("replica-lazy-flush", BOOL, "no"),
    no_effect("activerehashing", BOOL, "yes"),
    no_effect("activedefrag", BOOL, "no"),
    no_effect("jemalloc-bg-thread", BOOL, "yes"),
    // Encodings.
    aliased(
        "hash-max-listpack-entries",
        &["hash-max-ziplist-entries"],
        NON_NEGATIVE,
        "128",
    ),
    aliased(
        "hash-max-listpack-value",
        &["hash-max-ziplist-value"],
        NON_NEGATIVE,
        "64",
    ),
    option("list-max-listpack-size", INT, "-2"),
    option("list-compress-depth", NON_NEGATIVE, "0"),
    option("set-max-intset-entries", NON_NEGATIVE, "512"),
    option("set-max-listpack-entries", NON_NEGATIVE, "128"),
    option("set-max-listpack-value", NON_NEGATIVE, "64"),
    aliased(
        "zset-max-listpack-entries",
        &["zset-max-ziplist-entries"],
        NON_NEGATIVE,
        "128",
    ),
    aliased(
        "zset-max-listpack-value",
        &["zset-max-ziplist-value"],
        NON_NEGATIVE,
        "64",
    ),
    option("hll-sparse-max-bytes", NON_NEGATIVE, "3000"),
    option("stream-node-max-bytes", MEMORY, "4096"),
    option("stream-node-max-entries", NON_NEGATIVE, "100"),
    // Events and clients.
    option("notify-keyspace-events", TEXT, ""),
    option("slowlog-log-slower-than", INT, "10000"),
    option("slowlog-max-len", NON_NEGATIVE, "128"),
    option("latency-monitor-threshold", NON_NEGATIVE, "0"),
    option("latency-tracking", BOOL, "yes"),
    option("latency-tracking-info-percentiles", TEXT, "50 99 99.9"),
    option(
        "client-output-buffer-limit",
        TEXT,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    option("busy-reply-threshold", NON_NEGATIVE, "5000"),
    option("tracking-table-max-keys", NON_NEGATIVE, "1000000"),
    option(
        "active-expire-effort",
        Kind::Integer { min: 1, max: 10 },
        "1",
    ),
    option("lua-time-limit", NON_NEGATIVE, "5000"),
    // Replication and cluster (accepted now; used by their issues).
    option("replica-read-only", BOOL, "yes"),
    option("replica-serve-stale-data", BOOL, "yes"),
    option("repl-diskless-sync", BOOL, "yes"),
    option("repl-diskless-sync-delay", NON_NEGATIVE, "5"),
    option("repl-backlog-size", MEMORY, "1048576"),
    immutable("cluster-enabled", BOOL, "no"),
    immutable("cluster-config-file", TEXT, "nodes.conf"),
    option("cluster-node-timeout", NON_NEGATIVE, "15000"),
];

/// An option by name or alias, any case.
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
    let units: [(&str, i64); 6] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    for (suffix, multiplier) in units {
        if let Some(number) = lower.strip_suffix(suffix) {
            let value: i64 = store::number::parse_i64(number.as_bytes())?;
            return value.checked_mul(multiplier);
        }
    }
    store::number::parse_i64(lower.as_bytes())
}

/// Why a value was refused; the text Redis puts after `- ` in its error.
fn validate(spec: &OptionSpec, args: &[String]) -> Result<String, String> {
    let joined = args.join(" ");
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
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(value.to_string())
        }
        Kind::Memory { min, max } => {
            let value = parse_memory(&joined)
                .ok_or_else(|| "argument must be a memory value".to_string())?;
            if value < min || value > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(value.to_string())
        }
        Kind::Enum(choices) => {
            let lower = joined.to_ascii_lowercase();
            if choices.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                ))
            }
        }
        Kind::Text => Ok(joined),
        Kind::Save => {
            let words: Vec<&str> = joined.split_whitespace().collect();
            if words.len() % 2 != 0 {
                return Err("Invalid save parameters".into());
            }
            for word in &words {
                if store::number::parse_i64(word.as_bytes()).is_none_or(|value| value < 0) {
                    return Err("Invalid save parameters".into());
                }
            }
            Ok(words.join(" "))
        }
        Kind::Addresses => {
            let words: Vec<&str> = joined.split_whitespace().collect();
            if words.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(words.join(" "))
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
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    pub set_max_intset_entries: AtomicU64,
    pub set_max_listpack_entries: AtomicU64,
    pub set_max_listpack_value: AtomicU64,
}

pub struct Config {
    values: RwLock<HashMap<&'static str, String>>,
    pub hot: HotConfig,
    /// The configuration file the server started with, if any.
    pub file: Option<std::path::PathBuf>,
    /// Whether a `save` line was read already (later lines add to it).
    save_seen: AtomicBool,
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
        for (atomic, name) in [
            (&self.hash_max_listpack_entries, "hash-max-listpack-entries"),
            (&self.hash_max_listpack_value, "hash-max-listpack-value"),
            (&self.set_max_intset_entries, "set-max-intset-entries"),
            (&self.set_max_listpack_entries, "set-max-listpack-entries"),
            (&self.set_max_listpack_value, "set-max-listpack-value"),
        ] {
            atomic.store(int(name).max(0) as u64, Ordering::Relaxed);
        }
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

    /// Validates every `(name, arguments)` pair, then applies them all, or none.
    pub fn set_many(
        &self,
        pairs: &[(String, Vec<String>)],
        at_startup: bool,
    ) -> Result<(), String> {
        let mut validated: Vec<(&'static OptionSpec, String)> = Vec::with_capacity(pairs.len());
        for (name, args) in pairs {
            let spec = find_option(name).ok_or_else(|| {
                format!("Unknown option or number of arguments for CONFIG SET - '{name}'")
            })?;
            if !at_startup && spec.flags & option_flags::IMMUTABLE != 0 {
                return Err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                ));
            }
            if !at_startup && validated.iter().any(|(seen, _)| seen.name == spec.name) {
                return Err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                ));
            }
            let value = validate(spec, args).map_err(|reason| {
                format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}")
            })?;
            validated.push((spec, value));
        }
        {
            let mut values = self.values.write();
            for (spec, value) in validated {
                values.insert(spec.name, value);
            }
        }
        self.hot.refresh(self);
        Ok(())
    }

    /// CONFIG GET: every option matching any pattern, once, as (name, value).
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut found: Vec<(String, String)> = Vec::new();
        for pattern in patterns {
            let lower = pattern.to_ascii_lowercase();
            let is_glob = lower.iter().any(|byte| matches!(byte, b'*' | b'?' | b'['));
            let compiled = Pattern::new(&lower, true);
            for spec in OPTIONS {
                let value = &values[spec.name];
                let mut names = vec![spec.name];
                if !is_glob {
                    names.extend(spec.aliases.iter().copied());
                }
                for name in names {
                    let wanted = if is_glob {
                        compiled.matches(name.as_bytes())
                    } else {
                        lower == name.as_bytes()
                    };
                    if wanted && !found.iter().any(|(seen, _)| seen == name) {
                        found.push((name.to_string(), value.clone()));
                    }
                }
            }
        }
        found
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
                let included = std::fs::read_to_string(values.join(" ")).map_err(|io| {
                    error(&format!(
                        "Fatal error, can't open config file '{}': {io}",
                        values.join(" ")
                    ))
                })?;
                self.load(&included)?;
                continue;
            }
            if matches!(
                name.as_str(),
                "rename-command" | "user" | "loadmodule" | "sentinel"
            ) {
                tracing::warn!("configuration directive '{name}' is not supported and was ignored");
                continue;
            }
            let Some(spec) = find_option(&name) else {
                return Err(error("Bad directive or wrong number of arguments"));
            };
            let multi_argument = matches!(spec.kind, Kind::Save | Kind::Addresses | Kind::Text);
            if values.is_empty() || (values.len() > 1 && !multi_argument) {
                return Err(error("Bad directive or wrong number of arguments"));
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
            if let Err(message) = self.set_many(&[(name.clone(), values)], true) {
                let reason = message.rsplit(" - ").next().unwrap_or(&message).to_string();
                return Err(error(&reason));
            }
            if spec.flags & option_flags::NO_EFFECT != 0 {
                tracing::debug!("option '{}' is accepted and has no effect", spec.name);
            }
        }
        Ok(())
    }
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
    let mut text = String::new();
    for arg in rest {
        if let Some(name) = arg.strip_prefix("--") {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
        } else {
            text.push(' ');
            text.push_str(&quote(arg));
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

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("10MB"), Some(10 << 20));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("x"), None);
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
                false,
            )
            .unwrap_err();
        assert!(error.contains("'port'"), "{error}");
        assert_eq!(config.get("maxmemory"), "0");
        config
            .set_many(&[("maxmemory".into(), vec!["10mb".into()])], false)
            .unwrap();
        assert_eq!(config.get("maxmemory"), "10485760");
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
    }

    #[test]
    fn get_with_patterns_and_aliases() {
        let config = Config::default();
        let found = config.get_matching(&[b"hash-max-*"]);
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            vec!["hash-max-listpack-entries", "hash-max-listpack-value"]
        );
        let found = config.get_matching(&[b"hash-max-ziplist-entries"]);
        assert_eq!(
            found,
            vec![("hash-max-ziplist-entries".to_string(), "128".to_string())]
        );
    }
}
