//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, CONFIG, SHUTDOWN, TIME, INFO, COMMAND, DEBUG.

use crate::arguments::{is, text};
use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};
use crate::server::unix_time_ms;

pub fn register(table: &mut CommandTable) {
    table.handle("dbsize", dbsize);
    table.handle("flushdb", flushdb);
    table.handle("flushall", flushall);
    table.handle("config|get", config_get);
    table.handle("config|set", config_set);
    table.handle("shutdown", shutdown);
    table.handle("time", time);
    table.handle("function|flush", function_flush);
}

/// FUNCTION FLUSH [ASYNC | SYNC]
///
/// No function libraries exist until scripting lands, so there is nothing to flush.
fn function_flush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    match args.get(2) {
        None => {}
        Some(mode) if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        Some(_) => return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into()),
    }
    context.reply.ok();
    Ok(())
}

/// DBSIZE
fn dbsize(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let (keys, _) = context
        .server
        .keyspace
        .database(context.database())
        .counts();
    context.reply.integer(keys as i64);
    Ok(())
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
    match args.get(1) {
        None => {}
        Some(mode) if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        Some(_) => return Err(errors::SYNTAX.into()),
    }
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
        shard.clear();
    }
    let name: &[u8] = match what {
        Flush::Database => b"FLUSHDB",
        Flush::Everything => b"FLUSHALL",
    };
    locked.propagate_global(context.database(), &[name]);
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
    context
        .server
        .config
        .set_many(&pairs, false)
        .map_err(|message| format!("ERR {message}"))?;
    context.server.refresh_derived_config();
    context.reply.ok();
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
fn shutdown(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    tracing::warn!("User requested shutdown...");
    context.server.request_shutdown();
    context.client.close_after_reply = true;
    Ok(())
}

/// TIME
fn time(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = unix_time_ms();
    context.reply.array(2);
    context.reply.bulk_integer(now.as_secs() as i64);
    context.reply.bulk_integer(now.subsec_micros() as i64);
    Ok(())
}
