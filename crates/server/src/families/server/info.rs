//! INFO: the server's state as Redis 7.2 reports it, section by section (`# Server`,
//! `field:value` lines, `\r\n` line ends, one blank line between sections).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::allocator::{resident_set_bytes, total_system_memory_bytes, AllocatorStats};
use crate::command::Command;
use crate::config::REDIS_VERSION;
use crate::context::{CommandResult, Context};
use crate::server::{unix_time_ms, Server};

/// Every section, in the order INFO prints them.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "debug",
];

/// The sections of a plain INFO (and of `default`).
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// INFO [section [section ...]]
pub fn info(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let counts = if context.in_transaction() {
        // Inside EXEC the transaction holds the shards: count through it.
        let mut counts = vec![(0, 0); context.server.keyspace.database_count()];
        let mut locked = context.lock_everything();
        for (database, _, shard) in locked.iter_mut() {
            counts[database].0 += shard.len();
            counts[database].1 += shard.volatile_len();
        }
        Some(counts)
    } else {
        None
    };
    let text = info_text_with_counts(context.server, &args[1..], counts.as_deref());
    context.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// Which sections a list of INFO arguments asks for (lower-case names), and whether it asked
/// for all of them.
fn requested_sections(args: &[&[u8]]) -> (Vec<String>, bool) {
    let mut wanted: Vec<String> = Vec::new();
    let mut all = false;
    if args.is_empty() {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|name| name.to_string()));
        return (wanted, false);
    }
    for arg in args {
        let name = String::from_utf8_lossy(arg).to_ascii_lowercase();
        match name.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|name| name.to_string())),
            "all" | "everything" => all = true,
            _ => wanted.push(name),
        }
    }
    (wanted, all)
}

/// The whole INFO text for the given arguments.
pub fn info_text(server: &Server, args: &[&[u8]]) -> String {
    info_text_with_counts(server, args, None)
}

/// The INFO text, with keyspace counts given by the caller (or read shard by shard).
fn info_text_with_counts(
    server: &Server,
    args: &[&[u8]],
    counts: Option<&[(usize, usize)]>,
) -> String {
    let (wanted, all) = requested_sections(args);
    let mut text = String::new();
    for section in SECTIONS {
        // `debug` shows only when asked for by name, not in `all` or `everything`.
        let included = (all && *section != "debug")
            || wanted.iter().any(|name| name == section)
            || (*section == "modules" && wanted.iter().any(|name| name == "module_list"));
        if !included {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        write_section(server, section, counts, &mut text);
    }
    text
}

/// Appends `name:value\r\n`.
macro_rules! field {
    ($text:expr, $name:expr, $value:expr) => {
        let _ = write!($text, "{}:{}\r\n", $name, $value);
    };
}

fn write_section(
    server: &Server,
    section: &str,
    counts: Option<&[(usize, usize)]>,
    text: &mut String,
) {
    match section {
        "server" => server_section(server, text),
        "clients" => clients_section(server, text),
        "memory" => memory_section(server, text),
        "persistence" => persistence_section(server, text),
        "stats" => stats_section(server, text),
        "debug" => debug_section(server, text),
        "replication" => replication_section(server, text),
        "cpu" => cpu_section(text),
        "modules" => text.push_str("# Modules\r\n"),
        "commandstats" => commandstats_section(server, text),
        "errorstats" => errorstats_section(server, text),
        "latencystats" => latencystats_section(server, text),
        "cluster" => {
            text.push_str("# Cluster\r\n");
            let enabled = i64::from(server.config.get_bool("cluster-enabled"));
            field!(text, "cluster_enabled", enabled);
        }
        "keyspace" => keyspace_section(server, counts, text),
        _ => unreachable!("unknown INFO section {section}"),
    }
}

/// `uname` as "sysname release machine".
fn operating_system() -> String {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated strings.
    unsafe {
        let mut name: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut name) != 0 {
            return String::from("unknown");
        }
        let field = |chars: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(chars.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&name.sysname),
            field(&name.release),
            field(&name.machine)
        )
    }
}

/// The LRU clock: seconds, 24 bits (Redis's `LRU_CLOCK_MAX`).
pub fn lru_clock(now_ms: u64) -> u64 {
    (now_ms / 1000) & ((1 << 24) - 1)
}

fn server_section(server: &Server, text: &mut String) {
    let now_ms = unix_time_ms();
    let uptime_s = server.uptime_seconds();
    let config = &server.config;
    let hz = config.get_i64("hz");
    let config_file = config
        .file
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let build_id = &server.run_id[..16];
    text.push_str("# Server\r\n");
    field!(text, "redis_version", REDIS_VERSION);
    field!(text, "redis_git_sha1", "00000000");
    field!(text, "redis_git_dirty", 0);
    field!(text, "redis_build_id", build_id);
    let mode = if config.get_bool("cluster-enabled") {
        "cluster"
    } else {
        "standalone"
    };
    field!(text, "redis_mode", mode);
    field!(text, "os", operating_system());
    field!(text, "arch_bits", 64);
    field!(text, "monotonic_clock", "POSIX clock_gettime");
    field!(text, "multiplexing_api", "epoll");
    field!(text, "atomicvar_api", "c11-builtin");
    field!(text, "gcc_version", "0.0.0");
    field!(text, "process_id", std::process::id());
    field!(text, "process_supervised", "no");
    field!(text, "run_id", server.run_id);
    field!(text, "tcp_port", server.port.load(Ordering::Relaxed));
    field!(text, "server_time_usec", now_ms * 1000);
    field!(text, "uptime_in_seconds", uptime_s);
    field!(text, "uptime_in_days", uptime_s / 86_400);
    field!(text, "hz", hz);
    field!(text, "configured_hz", hz);
    field!(text, "lru_clock", lru_clock(now_ms));
    field!(text, "executable", server.executable);
    field!(text, "config_file", config_file);
    field!(text, "io_threads_active", 0);
    let mut listener = String::from("name=tcp");
    for address in config.get("bind").split_whitespace() {
        let _ = write!(listener, ",bind={address}");
    }
    let _ = write!(listener, ",port={}", server.port.load(Ordering::Relaxed));
    field!(text, "listener0", listener);
}

fn clients_section(server: &Server, text: &mut String) {
    let clients = server.clients.all();
    let count = |predicate: &dyn Fn(&crate::client::ClientShared) -> bool| {
        clients.iter().filter(|client| predicate(client)).count()
    };
    let blocked = count(&|client| client.blocked.load(Ordering::Relaxed));
    let pubsub = count(&|client| client.is_pubsub());
    let watching = count(&|client| client.watched_keys.load(Ordering::Relaxed) > 0);
    let watched_keys: usize = clients
        .iter()
        .map(|client| client.watched_keys.load(Ordering::Relaxed))
        .sum();
    let max_input = clients
        .iter()
        .map(|client| client.query_buffer_bytes.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let max_output = clients
        .iter()
        .map(|client| client.output_bytes.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    text.push_str("# Clients\r\n");
    // A killed client is gone for Redis (freed before its next command runs); here its task
    // may still be closing the socket.
    let connected = count(&|client| !client.is_killed());
    field!(text, "connected_clients", connected);
    field!(text, "cluster_connections", 0);
    field!(text, "maxclients", server.config.get_i64("maxclients"));
    field!(text, "client_recent_max_input_buffer", max_input);
    field!(text, "client_recent_max_output_buffer", max_output);
    field!(text, "blocked_clients", blocked);
    field!(text, "tracking_clients", server.tracking.clients());
    field!(text, "pubsub_clients", pubsub);
    field!(text, "watching_clients", watching);
    field!(text, "clients_in_timeout_table", 0);
    field!(text, "total_watched_keys", watched_keys);
    let (blocking_keys, blocking_keys_on_deletion) = server.blocked.key_counts();
    field!(text, "total_blocking_keys", blocking_keys);
    field!(
        text,
        "total_blocking_keys_on_nokey",
        blocking_keys_on_deletion
    );
}

/// Redis's human-readable byte counts: `100B`, `1.50K`, `2.00M`, `3.00G`, ...
pub fn bytes_to_human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 10, "K"),
        (1 << 20, "M"),
        (1 << 30, "G"),
        (1 << 40, "T"),
        (1 << 50, "P"),
    ];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    for (index, (unit, suffix)) in UNITS.iter().enumerate() {
        let next = UNITS
            .get(index + 1)
            .map(|(next, _)| *next)
            .unwrap_or(1 << 60);
        if bytes < next {
            return format!("{:.2}{suffix}", bytes as f64 / *unit as f64);
        }
    }
    format!("{bytes}B")
}

/// `a / b` as Redis prints ratios (0 when `b` is 0).
fn ratio(numerator: u64, denominator: u64) -> String {
    if denominator == 0 {
        return "0.00".into();
    }
    format!("{:.2}", numerator as f64 / denominator as f64)
}

fn memory_section(server: &Server, text: &mut String) {
    let allocator = AllocatorStats::read();
    let used = crate::allocator::used_memory_bytes();
    let peak = server
        .peak_memory_bytes
        .fetch_max(used, Ordering::Relaxed)
        .max(used);
    let rss = resident_set_bytes();
    let startup = server.startup_memory_bytes.min(used);
    let dataset = used - startup;
    let total_system = total_system_memory_bytes();
    let maxmemory = server.config.get_i64("maxmemory").max(0) as u64;
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            "0.00%".to_string()
        } else {
            format!("{:.2}%", part as f64 * 100.0 / whole as f64)
        }
    };
    let signed = |a: u64, b: u64| a as i64 - b as i64;
    text.push_str("# Memory\r\n");
    field!(text, "used_memory", used);
    field!(text, "used_memory_human", bytes_to_human(used));
    field!(text, "used_memory_rss", rss);
    field!(text, "used_memory_rss_human", bytes_to_human(rss));
    field!(text, "used_memory_peak", peak);
    field!(text, "used_memory_peak_human", bytes_to_human(peak));
    field!(text, "used_memory_peak_perc", percent(used, peak));
    field!(text, "used_memory_overhead", startup);
    field!(text, "used_memory_startup", startup);
    field!(text, "used_memory_dataset", dataset);
    field!(text, "used_memory_dataset_perc", percent(dataset, used));
    field!(text, "allocator_allocated", allocator.allocated);
    field!(text, "allocator_active", allocator.active);
    field!(text, "allocator_resident", allocator.resident);
    field!(text, "total_system_memory", total_system);
    field!(
        text,
        "total_system_memory_human",
        bytes_to_human(total_system)
    );
    for name in ["used_memory_lua", "used_memory_vm_eval"] {
        field!(text, name, 0);
    }
    field!(text, "used_memory_lua_human", "0B");
    let scripting = &server.scripting;
    field!(text, "used_memory_scripts_eval", 0);
    field!(
        text,
        "number_of_cached_scripts",
        scripting.script_count.load(Ordering::Relaxed)
    );
    field!(
        text,
        "number_of_functions",
        scripting.function_count.load(Ordering::Relaxed)
    );
    field!(
        text,
        "number_of_libraries",
        scripting.library_count.load(Ordering::Relaxed)
    );
    field!(text, "used_memory_vm_functions", 0);
    field!(text, "used_memory_vm_total", 0);
    field!(text, "used_memory_vm_total_human", "0B");
    field!(text, "used_memory_functions", 0);
    field!(text, "used_memory_scripts", 0);
    field!(text, "used_memory_scripts_human", "0B");
    field!(text, "maxmemory", maxmemory);
    field!(text, "maxmemory_human", bytes_to_human(maxmemory));
    field!(
        text,
        "maxmemory_policy",
        server.config.get("maxmemory-policy")
    );
    field!(
        text,
        "allocator_frag_ratio",
        ratio(allocator.active, allocator.allocated)
    );
    field!(
        text,
        "allocator_frag_bytes",
        signed(allocator.active, allocator.allocated)
    );
    field!(
        text,
        "allocator_rss_ratio",
        ratio(allocator.resident, allocator.active)
    );
    field!(
        text,
        "allocator_rss_bytes",
        signed(allocator.resident, allocator.active)
    );
    field!(text, "rss_overhead_ratio", ratio(rss, allocator.resident));
    field!(text, "rss_overhead_bytes", signed(rss, allocator.resident));
    field!(text, "mem_fragmentation_ratio", ratio(rss, used));
    field!(text, "mem_fragmentation_bytes", signed(rss, used));
    // Clients' buffers, live clients only (a killed one is on its way out), as CLIENT LIST
    // counts them in `tot-mem`.
    let (mut replicas_bytes, mut normal_bytes) = (0usize, 0usize);
    for client in server.clients.all() {
        if client.is_killed() {
            continue;
        }
        let output = client.output_allocated_bytes.load(Ordering::Relaxed);
        if client.replica.load(Ordering::Relaxed) {
            replicas_bytes += output;
        } else {
            normal_bytes += client.memory_bytes();
        }
    }
    let not_counted = crate::pubsub::replica_output_allocated_bytes();
    field!(text, "mem_not_counted_for_evict", not_counted);
    field!(text, "mem_replication_backlog", 0);
    field!(text, "mem_total_replication_buffers", replicas_bytes);
    field!(text, "mem_clients_slaves", replicas_bytes);
    field!(text, "mem_clients_normal", normal_bytes);
    for name in ["mem_cluster_links", "mem_aof_buffer"] {
        field!(text, name, 0);
    }
    // A keyspace table grows in one step (no table is ever half rehashed).
    field!(text, "mem_overhead_db_hashtable_rehashing", 0);
    field!(text, "mem_allocator", "jemalloc-5.3.0");
    field!(text, "active_defrag_running", 0);
    field!(text, "lazyfree_pending_objects", server.lazyfree.pending());
    field!(text, "lazyfreed_objects", server.lazyfree.freed());
}

fn persistence_section(server: &Server, text: &mut String) {
    text.push_str("# Persistence\r\n");
    let loading = server.loading.is_active();
    field!(text, "loading", i64::from(loading));
    field!(text, "async_loading", 0);
    for name in [
        "current_cow_peak",
        "current_cow_size",
        "current_cow_size_age",
    ] {
        field!(text, name, 0);
    }
    // A BGSAVE's progress (Redis reports its fork child's; here the snapshot's walk).
    let (processed, total) = crate::rdb::background_save_progress(server).unwrap_or((0, 0));
    let percent = if total == 0 {
        0.0
    } else {
        processed as f64 * 100.0 / total as f64
    };
    field!(text, "current_fork_perc", format!("{percent:.2}"));
    field!(text, "current_save_keys_processed", processed);
    field!(text, "current_save_keys_total", total);
    let rdb = &server.rdb;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    field!(
        text,
        "rdb_changes_since_last_save",
        crate::rdb::changes_since_last_save(server)
    );
    let in_progress = rdb.bgsave_in_progress.load(Ordering::Relaxed);
    field!(text, "rdb_bgsave_in_progress", i64::from(in_progress));
    field!(text, "rdb_last_save_time", load(&rdb.last_save_unix_s));
    field!(
        text,
        "rdb_last_bgsave_status",
        if rdb.last_bgsave_ok.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    );
    field!(
        text,
        "rdb_last_bgsave_time_sec",
        rdb.last_bgsave_seconds.load(Ordering::Relaxed)
    );
    let current = if in_progress {
        (crate::server::unix_time_ms().saturating_sub(load(&rdb.bgsave_started_unix_ms)) / 1000)
            as i64
    } else {
        -1
    };
    field!(text, "rdb_current_bgsave_time_sec", current);
    field!(text, "rdb_saves", load(&rdb.saves));
    field!(text, "rdb_last_cow_size", 0);
    field!(
        text,
        "rdb_last_load_keys_expired",
        load(&rdb.last_load_keys_expired)
    );
    field!(
        text,
        "rdb_last_load_keys_loaded",
        load(&rdb.last_load_keys_loaded)
    );
    crate::aof::info_fields(server, text);
    if loading {
        let view = server.loading.view();
        field!(text, "loading_start_time", view.started_unix_s);
        field!(text, "loading_total_bytes", view.total_bytes);
        field!(text, "loading_rdb_used_mem", view.rdb_used_memory_bytes);
        field!(text, "loading_loaded_bytes", view.loaded_bytes);
        field!(
            text,
            "loading_loaded_perc",
            format!("{:.2}", view.loaded_percent)
        );
        field!(text, "loading_eta_seconds", view.eta_seconds);
    }
}

fn stats_section(server: &Server, text: &mut String) {
    let stats = &server.stats;
    let load = |counter: &crate::stats::StripedCounter| counter.load(Ordering::Relaxed);
    let (ops, input_rate, output_rate) = {
        let metrics = server.metrics.lock();
        (
            metrics.commands_per_second(),
            metrics.input_bytes_per_second(),
            metrics.output_bytes_per_second(),
        )
    };
    let kbps = |bytes_per_second: u64| format!("{:.2}", bytes_per_second as f64 / 1024.0);
    let pubsub_channels = 0;
    text.push_str("# Stats\r\n");
    field!(
        text,
        "total_connections_received",
        server.clients.total_connections.load(Ordering::Relaxed)
    );
    field!(
        text,
        "total_commands_processed",
        load(&stats.commands_processed)
    );
    field!(text, "instantaneous_ops_per_sec", ops);
    field!(text, "total_net_input_bytes", load(&stats.net_input_bytes));
    field!(
        text,
        "total_net_output_bytes",
        load(&stats.net_output_bytes)
    );
    field!(text, "total_net_repl_input_bytes", 0);
    field!(text, "total_net_repl_output_bytes", 0);
    field!(text, "instantaneous_input_kbps", kbps(input_rate));
    field!(text, "instantaneous_output_kbps", kbps(output_rate));
    field!(text, "instantaneous_input_repl_kbps", "0.00");
    field!(text, "instantaneous_output_repl_kbps", "0.00");
    field!(
        text,
        "rejected_connections",
        server.clients.rejected_connections.load(Ordering::Relaxed)
    );
    field!(text, "sync_full", 0);
    field!(text, "sync_partial_ok", 0);
    field!(text, "sync_partial_err", 0);
    field!(text, "expired_keys", load(&stats.expired_keys));
    field!(text, "expired_stale_perc", "0.00");
    field!(text, "expired_time_cap_reached_count", 0);
    field!(text, "expire_cycle_cpu_milliseconds", 0);
    field!(text, "evicted_keys", load(&stats.evicted_keys));
    field!(
        text,
        "evicted_clients",
        crate::client_eviction::evicted_clients()
    );
    field!(text, "total_eviction_exceeded_time", 0);
    field!(text, "current_eviction_exceeded_time", 0);
    field!(text, "keyspace_hits", load(&stats.keyspace_hits));
    field!(text, "keyspace_misses", load(&stats.keyspace_misses));
    field!(text, "pubsub_channels", pubsub_channels);
    field!(text, "pubsub_patterns", 0);
    field!(text, "pubsubshard_channels", 0);
    for name in [
        "latest_fork_usec",
        "total_forks",
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
    ] {
        field!(text, name, 0);
    }
    let (tracked_keys, tracked_items, tracked_prefixes) = server.tracking.totals();
    field!(text, "tracking_total_keys", tracked_keys);
    field!(text, "tracking_total_items", tracked_items);
    field!(text, "tracking_total_prefixes", tracked_prefixes);
    field!(
        text,
        "unexpected_error_replies",
        load(&stats.unexpected_error_replies)
    );
    field!(text, "total_error_replies", load(&stats.error_replies));
    field!(text, "dump_payload_sanitizations", 0);
    field!(text, "total_reads_processed", load(&stats.reads_processed));
    field!(
        text,
        "client_query_buffer_limit_disconnections",
        crate::stats::QUERY_BUFFER_LIMIT_DISCONNECTIONS.load(Ordering::Relaxed)
    );
    field!(
        text,
        "client_output_buffer_limit_disconnections",
        crate::stats::OUTPUT_BUFFER_LIMIT_DISCONNECTIONS.load(Ordering::Relaxed)
    );
    field!(
        text,
        "total_writes_processed",
        load(&stats.writes_processed)
    );
    for name in [
        "io_threaded_reads_processed",
        "io_threaded_writes_processed",
        "reply_buffer_shrinks",
        "reply_buffer_expands",
    ] {
        field!(text, name, 0);
    }
    let event_loop = &stats.event_loop;
    field!(text, "eventloop_cycles", load(&event_loop.cycles));
    field!(
        text,
        "eventloop_duration_sum",
        load(&event_loop.duration_us)
    );
    field!(
        text,
        "eventloop_duration_cmd_sum",
        load(&event_loop.command_us)
    );
    let (cycles_per_second, cycle_us) = {
        let metrics = server.metrics.lock();
        (
            metrics.event_loop_cycles_per_second(),
            metrics.event_loop_duration_us(),
        )
    };
    field!(
        text,
        "instantaneous_eventloop_cycles_per_sec",
        cycles_per_second
    );
    field!(text, "instantaneous_eventloop_duration_usec", cycle_us);
    let denials = &server.acl.denials;
    for (name, counter) in [
        ("acl_access_denied_auth", &denials.auth),
        ("acl_access_denied_cmd", &denials.command),
        ("acl_access_denied_key", &denials.key),
        ("acl_access_denied_channel", &denials.channel),
    ] {
        field!(text, name, counter.load(Ordering::Relaxed));
    }
}

/// INFO debug (only when asked for by name): the event loop figures Redis keeps for debugging.
fn debug_section(server: &Server, text: &mut String) {
    text.push_str("# Debug\r\n");
    let event_loop = &server.stats.event_loop;
    let load = |counter: &crate::stats::StripedCounter| counter.load(Ordering::Relaxed);
    field!(
        text,
        "eventloop_duration_aof_sum",
        crate::stats::AOF_WRITE_US.load(Ordering::Relaxed)
    );
    field!(
        text,
        "eventloop_duration_cron_sum",
        load(&event_loop.cron_us)
    );
    field!(
        text,
        "eventloop_duration_max",
        event_loop.duration_max_us.load(Ordering::Relaxed)
    );
    field!(
        text,
        "eventloop_cmd_per_cycle_max",
        event_loop.commands_per_cycle_max.load(Ordering::Relaxed)
    );
}

fn replication_section(server: &Server, text: &mut String) {
    let (replication_id, replication_id2) = server.replication_ids.lock().clone();
    text.push_str("# Replication\r\n");
    let link = &server.replica_link;
    let now_ms = crate::server::unix_time_ms();
    let mut offset = server.replication.offset.load(Ordering::Relaxed);
    let mut replication_id = replication_id;
    match link.master().filter(|_| link.is_active()) {
        Some((host, port)) => {
            let state = link.state();
            let up = state == crate::replica::LinkState::Connected;
            offset = link.offset.load(Ordering::Relaxed);
            if up {
                replication_id = link.master_replication_id();
            }
            field!(text, "role", "slave");
            field!(text, "master_host", host);
            field!(text, "master_port", port);
            field!(text, "master_link_status", if up { "up" } else { "down" });
            let last_io = if link.last_io_ms() == 0 {
                -1
            } else {
                ((now_ms - link.last_io_ms().min(now_ms)) / 1000) as i64
            };
            field!(text, "master_last_io_seconds_ago", last_io);
            field!(
                text,
                "master_sync_in_progress",
                u8::from(state == crate::replica::LinkState::Sync)
            );
            field!(text, "slave_read_repl_offset", offset);
            field!(text, "slave_repl_offset", offset);
            if !up {
                let since = link.down_since_ms();
                let seconds = if since == 0 {
                    -1
                } else {
                    ((now_ms - since.min(now_ms)) / 1000) as i64
                };
                field!(text, "master_link_down_since_seconds", seconds);
            }
            field!(
                text,
                "slave_priority",
                server.config.get_i64("replica-priority")
            );
            field!(
                text,
                "slave_read_only",
                u8::from(server.config.get_bool("replica-read-only"))
            );
            field!(text, "replica_announced", 1);
        }
        None => {
            field!(text, "role", "master");
        }
    }
    let views = server.replication.views(now_ms);
    field!(text, "connected_slaves", views.len());
    for (index, view) in views.iter().enumerate() {
        let address = server
            .clients
            .get(view.client_id)
            .map(|client| client.address.ip().to_string())
            .unwrap_or_default();
        text.push_str(&format!(
            "slave{index}:ip={address},port={},state=online,offset={},lag={}\r\n",
            view.listening_port, view.offset, view.lag_s
        ));
    }
    field!(text, "master_failover_state", "no-failover");
    field!(text, "master_replid", replication_id);
    field!(text, "master_replid2", replication_id2);
    field!(text, "master_repl_offset", offset);
    field!(text, "second_repl_offset", -1);
    field!(text, "repl_backlog_active", 0);
    field!(
        text,
        "repl_backlog_size",
        server.config.get_i64("repl-backlog-size")
    );
    field!(text, "repl_backlog_first_byte_offset", 0);
    field!(text, "repl_backlog_histlen", 0);
}

/// getrusage as (system, user) seconds with microseconds, `%ld.%06ld`.
fn cpu_times(who: libc::c_int) -> (String, String) {
    // SAFETY: rusage is plain data that getrusage fills.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let format = |time: libc::timeval| format!("{}.{:06}", time.tv_sec, time.tv_usec);
    (format(usage.ru_stime), format(usage.ru_utime))
}

fn cpu_section(text: &mut String) {
    let (system, user) = cpu_times(libc::RUSAGE_SELF);
    let (children_system, children_user) = cpu_times(libc::RUSAGE_CHILDREN);
    let (thread_system, thread_user) = cpu_times(libc::RUSAGE_THREAD);
    text.push_str("# CPU\r\n");
    field!(text, "used_cpu_sys", system);
    field!(text, "used_cpu_user", user);
    field!(text, "used_cpu_sys_children", children_system);
    field!(text, "used_cpu_user_children", children_user);
    field!(text, "used_cpu_sys_main_thread", thread_system);
    field!(text, "used_cpu_user_main_thread", thread_user);
}

/// A name made safe for an INFO line (`#`, `:`, CR and LF become `_`).
fn safe_info_name(name: &[u8]) -> String {
    name.iter()
        .map(|&byte| match byte {
            b'#' | b':' | b'\r' | b'\n' => '_',
            other => other as char,
        })
        .collect()
}

/// Every command and subcommand of the table, sorted by full name.
pub fn all_commands(server: &Server) -> Vec<&Command> {
    let mut commands: Vec<&Command> = Vec::new();
    for command in server.commands.iter() {
        commands.push(command);
        commands.extend(command.subcommands.values().map(|sub| &**sub));
    }
    commands.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    commands
}

fn commandstats_section(server: &Server, text: &mut String) {
    text.push_str("# Commandstats\r\n");
    for command in all_commands(server) {
        let stats = &command.stats;
        let calls = stats.calls();
        let microseconds = stats.microseconds();
        let rejected = stats.rejected_calls();
        let failed = stats.failed_calls();
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let per_call = if calls == 0 {
            0.0
        } else {
            microseconds as f32 / calls as f32
        };
        let _ = write!(
            text,
            "cmdstat_{}:calls={calls},usec={microseconds},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            safe_info_name(command.full_name.as_bytes())
        );
    }
}

fn latencystats_section(server: &Server, text: &mut String) {
    text.push_str("# Latencystats\r\n");
    if !server.config.hot.latency_tracking.load(Ordering::Relaxed) {
        return;
    }
    let percentiles: Vec<(String, f64)> = server
        .config
        .get("latency-tracking-info-percentiles")
        .split_whitespace()
        .filter_map(|word| Some((word.to_string(), word.parse::<f64>().ok()?)))
        .collect();
    for command in all_commands(server) {
        let histogram = &command.stats.latency;
        if histogram.count() == 0 {
            continue;
        }
        let values: Vec<String> = percentiles
            .iter()
            .map(|(name, percentile)| {
                let nanoseconds = histogram.value_at_percentile(*percentile);
                format!("p{name}={:.3}", nanoseconds as f64 / 1000.0)
            })
            .collect();
        let _ = write!(
            text,
            "latency_percentiles_usec_{}:{}\r\n",
            safe_info_name(command.full_name.as_bytes()),
            values.join(",")
        );
    }
}

fn errorstats_section(server: &Server, text: &mut String) {
    text.push_str("# Errorstats\r\n");
    for (code, count) in server.stats.errors.lock().iter() {
        let _ = write!(text, "errorstat_{}:count={count}\r\n", safe_info_name(code));
    }
}

fn keyspace_section(server: &Server, counts: Option<&[(usize, usize)]>, text: &mut String) {
    text.push_str("# Keyspace\r\n");
    for index in 0..server.keyspace.database_count() {
        let (keys, expires) = match counts {
            Some(counts) => counts[index],
            None => server.keyspace.database(index).counts(),
        };
        if keys > 0 || expires > 0 {
            let _ = write!(
                text,
                "db{index}:keys={keys},expires={expires},avg_ttl=0\r\n"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_like_redis() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(916_848), "895.36K");
        assert_eq!(bytes_to_human(12_185_600), "11.62M");
        assert_eq!(bytes_to_human(25_276_510_208), "23.54G");
    }

    #[test]
    fn section_requests() {
        let (wanted, all) = requested_sections(&[]);
        assert!(!all && wanted.contains(&"server".to_string()));
        assert!(!wanted.contains(&"commandstats".to_string()));
        let (wanted, all) = requested_sections(&[b"CPU", b"everything"]);
        assert!(all && wanted == vec!["cpu".to_string()]);
    }
}
