//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, CONFIG, SHUTDOWN, TIME, INFO, COMMAND, DEBUG,
//! MEMORY, SLOWLOG, LATENCY.
//!
//! INFO lives in `server/info.rs`, COMMAND in `server/introspection.rs`, DEBUG in
//! `server/debug.rs`, MEMORY in `server/memory.rs`, SLOWLOG and LATENCY in `server/latency.rs`;
//! the rest is here.

mod debug;
mod info;
mod introspection;
mod latency;
mod memory;

use crate::arguments::{is, text};
use crate::command::CommandTable;
use crate::config::ConfigSource;
use crate::context::{errors, CommandResult, Context};

pub use info::{bytes_to_human, info_text};

pub fn register(table: &mut CommandTable) {
    table.handle("dbsize", dbsize);
    table.handle("flushdb", flushdb);
    table.handle("flushall", flushall);
    table.handle("config|get", config_get);
    table.handle("config|set", config_set);
    table.handle("config|resetstat", config_resetstat);
    table.handle("config|rewrite", config_rewrite);
    table.handle("config|help", config_help);
    table.handle("shutdown", shutdown);
    table.handle("time", time);
    table.handle("info", info::info);
    table.handle("command", introspection::command);
    table.handle("command|count", introspection::command_count);
    table.handle("command|info", introspection::command_info);
    table.handle("command|docs", introspection::command_docs);
    table.handle("command|getkeys", introspection::command_getkeys);
    table.handle(
        "command|getkeysandflags",
        introspection::command_getkeysandflags,
    );
    table.handle("command|list", introspection::command_list);
    table.handle("command|help", introspection::command_help);
    // DEBUG runs alone, as on Redis's single thread: DEBUG SLEEP stops everyone, DEBUG LOADAOF
    // replays the AOF with nothing else running.
    table.handle_exclusive("debug", debug::debug);
    table.handle("memory|usage", memory::memory_usage);
    table.handle("memory|stats", memory::memory_stats);
    table.handle("memory|doctor", memory::memory_doctor);
    table.handle("memory|malloc-stats", memory::memory_malloc_stats);
    table.handle("memory|purge", memory::memory_purge);
    table.handle("memory|help", memory::memory_help);
    table.handle("slowlog|get", latency::slowlog_get);
    table.handle("slowlog|len", latency::slowlog_len);
    table.handle("slowlog|reset", latency::slowlog_reset);
    table.handle("slowlog|help", latency::slowlog_help);
    table.handle("latency|latest", latency::latency_latest);
    table.handle("latency|history", latency::latency_history);
    table.handle("latency|reset", latency::latency_reset);
    table.handle("latency|graph", latency::latency_graph);
    table.handle("latency|doctor", latency::latency_doctor);
    table.handle("latency|histogram", latency::latency_histogram);
    table.handle("latency|help", latency::latency_help);
}

/// Replies with a HELP text as Redis does: a title line, the given lines, then HELP's own
/// entry, each as a status reply.
pub fn reply_help(context: &mut Context, command: &str, lines: &[&str]) {
    context.reply.array(lines.len() + 3);
    context.reply.simple(
        format!("{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes(),
    );
    for line in lines {
        context.reply.simple(line.as_bytes());
    }
    context.reply.simple(b"HELP");
    context.reply.simple(b"    Prints this help.");
}

/// DBSIZE
fn dbsize(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let mut locked = context.lock_databases(&[context.database()]);
    let keys: usize = locked.iter_mut().map(|(_, _, shard)| shard.len()).sum();
    drop(locked);
    context.reply.integer(keys as i64);
    Ok(())
}

/// Checks the optional ASYNC | SYNC argument of FLUSHDB and FLUSHALL.
fn check_flush_mode(args: &[&[u8]]) -> CommandResult {
    match args {
        [_] => Ok(()),
        [_, mode] if is(mode, "ASYNC") || is(mode, "SYNC") => Ok(()),
        _ => Err(errors::SYNTAX.into()),
    }
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    flush(context, args, Flush::Database)
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    flush(context, args, Flush::Everything)
}

enum Flush {
    Database,
    Everything,
}

fn flush(context: &mut Context, args: &[&[u8]], what: Flush) -> CommandResult {
    check_flush_mode(args)?;
    // ASYNC, or no mode with `lazyfree-lazy-user-flush yes`: the keys are freed in the
    // background.
    let in_background = match args.get(1) {
        Some(mode) => is(mode, "ASYNC"),
        None => context.server.config.get_bool("lazyfree-lazy-user-flush"),
    };
    let mut locked = match what {
        Flush::Database => context.lock_databases(&[context.database()]),
        Flush::Everything => context.lock_everything(),
    };
    let now_ms = context.now_ms;
    for (_, _, shard) in locked.iter_mut() {
        // Watched keys that existed are changed by the flush; absent ones are not.
        if !shard.watched.is_empty() {
            let existing: Vec<store::SmallBytes> = shard
                .watched
                .keys()
                .into_iter()
                .filter(|key| shard.peek(key, now_ms).is_some())
                .collect();
            shard
                .watched
                .touch_where(|key| existing.iter().any(|existing| &**existing == key));
        }
        if in_background {
            let (content, count) = shard.take_content();
            context.server.lazyfree.free_content(content, count);
        } else {
            shard.clear();
        }
    }
    let name: &[u8] = match what {
        Flush::Database => b"FLUSHDB",
        Flush::Everything => b"FLUSHALL",
    };
    if let Flush::Everything = what {
        // As Redis: a running BGSAVE is cancelled (its snapshot is of data just removed), and
        // with save points the now empty dataset is saved at once.
        crate::rdb::cancel_background_save(context.server);
        if crate::rdb::has_save_points(context.server) {
            // A failed save is logged and shown in INFO; FLUSHALL itself succeeded.
            let _ = crate::rdb::save_locked(context.server, &mut locked);
        }
    }
    locked.propagate_global(context.database(), &[name]);
    context.server.tracking.invalidate_all();
    drop(locked);
    context.reply.ok();
    Ok(())
}

/// CONFIG GET parameter [parameter ...]
fn config_get(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let found = context.server.config.get_matching(&args[2..]);
    context.reply.map(found.len());
    for (name, value) in found {
        context.reply.bulk(name.as_bytes());
        context.reply.bulk(value.as_bytes());
    }
    Ok(())
}

/// CONFIG SET parameter value [parameter value ...]
fn config_set(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() % 2 != 0 {
        return Err(crate::context::wrong_arity("config|set"));
    }
    let pairs: Vec<(String, Vec<String>)> = args[2..]
        .chunks(2)
        .map(|pair| (text(pair[0]), vec![text(pair[1])]))
        .collect();
    let source = ConfigSource::Command {
        local: context.client.shared.address.ip().is_loopback(),
    };
    let server = context.server;
    // Options the load reads are refused until it ends; unknown names keep their own error.
    if server.loading.is_active()
        && pairs
            .iter()
            .all(|(name, _)| crate::config::find_option(name).is_some())
        && pairs
            .iter()
            .any(|(name, _)| crate::config::denied_while_loading(name))
    {
        return Err(crate::loading::LOADING_ERROR.into());
    }
    let previous = server
        .config
        .set_many(&pairs, source)
        .map_err(|message| format!("ERR {message}"))?;
    if let Err((name, reason)) = server.apply_config_changes(&previous) {
        tracing::warn!(
            "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
        );
        server.config.restore(&previous);
        let _ = server.apply_config_changes(&previous);
        return Err(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        )
        .into());
    }
    server.refresh_derived_config();
    let changed = |option: &str| previous.iter().any(|(name, _)| *name == option);
    if changed("maxmemory") || changed("maxmemory-policy") {
        crate::eviction::limit_changed(server);
    }
    if changed("requirepass") {
        let password = server.config.get("requirepass");
        server
            .acl
            .set_default_password(password.as_bytes(), &server.rule_context());
    }
    if changed("slowlog-max-len") {
        server
            .slowlog
            .trim(server.config.get_i64("slowlog-max-len").max(0) as usize);
    }
    context.reply.ok();
    Ok(())
}

/// CONFIG RESETSTAT
fn config_resetstat(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    server.stats.reset();
    server.clients.reset_stats();
    crate::client_eviction::reset_stats();
    server.lazyfree.reset_stats();
    server.acl.reset_stats();
    for command in info::all_commands(server) {
        command.stats.reset();
    }
    *server.metrics.lock() = Default::default();
    server.peak_memory_bytes.store(
        crate::allocator::used_memory_bytes(),
        std::sync::atomic::Ordering::Relaxed,
    );
    context.reply.ok();
    Ok(())
}

/// CONFIG REWRITE
fn config_rewrite(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let config = &context.server.config;
    if config.file.is_none() {
        return Err("ERR The server is running without a config file".into());
    }
    match config.rewrite(false) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            context.reply.ok();
            Ok(())
        }
        Err(error) => {
            tracing::warn!("CONFIG REWRITE failed: {error}");
            Err(format!("ERR Rewriting config file: {error}").into())
        }
    }
}

/// CONFIG HELP
fn config_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    reply_help(
        context,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

/// SHUTDOWN's options.
#[derive(Default)]
struct ShutdownOptions {
    save: bool,
    no_save: bool,
    now: bool,
    force: bool,
    abort: bool,
}

/// Writes the dataset to the RDB file for SHUTDOWN (blocking, every shard held).
fn save_snapshot(context: &Context) -> Result<(), String> {
    let mut locked = context.lock_everything();
    crate::rdb::save_locked(context.server, &mut locked)
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
fn shutdown(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut options = ShutdownOptions::default();
    for arg in &args[1..] {
        if is(arg, "NOSAVE") {
            options.no_save = true;
        } else if is(arg, "SAVE") {
            options.save = true;
        } else if is(arg, "NOW") {
            options.now = true;
        } else if is(arg, "FORCE") {
            options.force = true;
        } else if is(arg, "ABORT") {
            options.abort = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let other_flags = options.save || options.no_save || options.now || options.force;
    if (options.abort && other_flags) || (options.save && options.no_save) {
        return Err(errors::SYNTAX.into());
    }
    if options.abort {
        // A shutdown starts and finishes within the command that asks for it: there is never
        // one in progress to abort.
        return Err("ERR No shutdown in progress.".into());
    }
    tracing::warn!(
        "User requested shutdown... (user request from 'id={} addr={}')",
        context.client.id,
        context.client.shared.address_text()
    );
    let save_points = !context.server.config.get("save").is_empty();
    if options.save || (save_points && !options.no_save) {
        tracing::warn!("Saving the final RDB snapshot before exiting.");
        if let Err(error) = save_snapshot(context) {
            if options.force {
                tracing::warn!("Error trying to save the DB ({error}). Exit anyway.");
            } else {
                tracing::warn!("Error trying to save the DB ({error}), can't exit.");
                return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
            }
        }
    }
    context.server.request_shutdown();
    context.client.close_after_reply = true;
    Ok(())
}

/// TIME
fn time(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    // Inside a script or transaction, the time its commands all see (frozen at its start, as
    // Redis's cached time); otherwise the clock.
    let now_us = if context.scope.is_some() {
        context.now_ms * 1000
    } else {
        crate::server::unix_time_us()
    };
    context.reply.array(2);
    context.reply.bulk_integer((now_us / 1_000_000) as i64);
    context.reply.bulk_integer((now_us % 1_000_000) as i64);
    Ok(())
}
