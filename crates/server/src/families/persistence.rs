//! Persistence commands: DUMP, RESTORE, SAVE, BGSAVE, LASTSAVE. The payload and file formats
//! are the `persist` crate's; files, snapshots and save points are `crate::rdb`'s.

use std::sync::atomic::Ordering;

use persist::rdb::{decode_payload, dump_payload, PayloadError};

use crate::arguments::{integer, is};
use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("dump", dump);
    table.handle("restore", restore);
    table.handle("save", save);
    table.handle("bgsave", bgsave);
    table.handle("lastsave", lastsave);
}

/// DUMP key
fn dump(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = crate::rdb::encode_options(context.server);
    let payload = {
        let mut shard = context.lock(args[1]);
        let Some(entry) = shard.lookup(args[1], context.now_ms) else {
            drop(shard);
            context.reply.null();
            return Ok(());
        };
        dump_payload(entry.value(), &options)
    };
    context.reply.bulk(&payload);
    Ok(())
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let mut replace = false;
    let mut absolute_ttl = false;
    let mut idle_seconds: Option<u64> = None;
    let mut frequency: Option<u8> = None;
    let mut index = 4;
    while index < args.len() {
        let arg = args[index];
        let has_value = index + 1 < args.len();
        if is(arg, "REPLACE") {
            replace = true;
        } else if is(arg, "ABSTTL") {
            absolute_ttl = true;
        } else if is(arg, "IDLETIME") && has_value && frequency.is_none() {
            let idle = integer(args[index + 1])?;
            if idle < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0".into());
            }
            idle_seconds = Some(idle as u64);
            index += 1;
        } else if is(arg, "FREQ") && has_value && idle_seconds.is_none() {
            let count = integer(args[index + 1])?;
            if !(0..=255).contains(&count) {
                return Err("ERR Invalid FREQ value, must be >= 0 and <= 255".into());
            }
            frequency = Some(count as u8);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    if !replace && shard.contains(key, now_ms) {
        return Err("BUSYKEY Target key name already exists.".into());
    }
    let ttl = integer(args[2])?;
    if ttl < 0 {
        return Err("ERR Invalid TTL value, must be >= 0".into());
    }
    let limits = crate::rdb::limits(context.server);
    let value = match decode_payload(args[3], &limits) {
        Ok(value) => value,
        Err(PayloadError::VersionOrChecksum) => {
            return Err("ERR DUMP payload version or checksum are wrong".into())
        }
        Err(PayloadError::BadFormat(_)) => return Err("ERR Bad data format".into()),
    };
    let deleted = replace && shard.remove(key, now_ms).is_some();
    let expire_at_ms = match ttl {
        0 => None,
        ttl if absolute_ttl => Some(ttl as u64),
        ttl => Some((ttl as u64).saturating_add(now_ms)),
    };
    if expire_at_ms.is_some_and(|at| at <= now_ms) {
        if deleted {
            // The deletion comes from REPLACE: propagated as the server deletes (Redis does not
            // count it as an expiry).
            let verb: &[u8] = if context.server.config.get_bool("lazyfree-lazy-server-del") {
                b"UNLINK"
            } else {
                b"DEL"
            };
            shard.propagate(&[verb, key]);
            drop(shard);
            context.notify(EventClass::Generic, "del", key);
        }
        context.reply.ok();
        return Ok(());
    }
    shard.insert(key, value, expire_at_ms, now_ms);
    if let Some(mut entry) = shard.lookup_untouched(key, now_ms) {
        if let Some(frequency) = frequency {
            entry.entry_mut().set_frequency(frequency, now_ms);
        }
        if let Some(idle_seconds) = idle_seconds {
            entry.entry_mut().set_idle_seconds(idle_seconds, now_ms);
        }
    }
    match expire_at_ms {
        Some(at) if !absolute_ttl => {
            let at_text = at.to_string();
            let mut rewritten: Vec<&[u8]> = args.to_vec();
            rewritten[2] = at_text.as_bytes();
            rewritten.push(b"ABSTTL");
            shard.propagate(&rewritten);
        }
        _ => shard.propagate(args),
    }
    drop(shard);
    context.notify(EventClass::Generic, "restore", key);
    context.reply.ok();
    Ok(())
}

/// SAVE
fn save(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    if context
        .server
        .rdb
        .bgsave_in_progress
        .load(Ordering::Acquire)
    {
        return Err("ERR Background save already in progress".into());
    }
    let mut locked = context.lock_everything();
    crate::rdb::save_locked(context.server, &mut locked).map_err(|_| "ERR")?;
    drop(locked);
    context.reply.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]
fn bgsave(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(args[1], "SCHEDULE") => true,
        _ => return Err(errors::SYNTAX.into()),
    };
    let state = &context.server.rdb;
    if state.bgsave_in_progress.load(Ordering::Acquire) {
        if schedule {
            state.bgsave_scheduled.store(true, Ordering::Relaxed);
            context.reply.simple(b"Background saving scheduled");
            return Ok(());
        }
        return Err("ERR Background save already in progress".into());
    }
    if context.server.aof.rewrite_in_progress() {
        // One snapshot at a time (Redis: one child process).
        if schedule {
            state.bgsave_scheduled.store(true, Ordering::Relaxed);
            context.reply.simple(b"Background saving scheduled");
            return Ok(());
        }
        return Err("ERR An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
    }
    let Some(server) = context.server.arc() else {
        return Err("ERR Background save unavailable".into());
    };
    let locked = context.lock_everything();
    let result = crate::rdb::start_background_save(&server);
    drop(locked);
    match result {
        Ok(()) => {
            context.reply.simple(b"Background saving started");
            Ok(())
        }
        Err(message) => Err(format!("ERR {message}").into()),
    }
}

/// LASTSAVE
fn lastsave(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let last = context.server.rdb.last_save_unix_s.load(Ordering::Relaxed);
    context.reply.integer(last as i64);
    Ok(())
}
