//! MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP.

use std::sync::atomic::Ordering;

use crate::allocator::{resident_set_bytes, AllocatorStats};
use crate::arguments::is;
use crate::context::{errors, CommandResult, Context};

/// MEMORY USAGE key [SAMPLES count]
pub fn memory_usage(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "SAMPLES") && index + 1 < args.len() {
            let samples = store::number::parse_i64(args[index + 1])
                .ok_or(crate::context::CommandError::from(errors::NOT_INTEGER))?;
            if samples < 0 {
                return Err(errors::SYNTAX.into());
            }
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let key = args[2];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let usage = shard.peek(key, now_ms).map(|entry| entry.memory_usage());
    drop(shard);
    match usage {
        Some(bytes) => context.reply.integer(bytes as i64),
        None => context.reply.null(),
    }
    Ok(())
}

/// `a / b` as a float (0 when `b` is 0).
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// MEMORY STATS
pub fn memory_stats(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let allocator = AllocatorStats::read();
    let used = crate::allocator::used_memory_bytes();
    let peak = server
        .peak_memory_bytes
        .fetch_max(used, Ordering::Relaxed)
        .max(used);
    let startup = server.startup_memory_bytes.min(used);
    let rss = resident_set_bytes();
    let counts: Vec<(usize, usize)> = if context.in_transaction() {
        let mut counts = vec![(0, 0); server.keyspace.database_count()];
        let mut locked = context.lock_everything();
        for (database, _, shard) in locked.iter_mut() {
            counts[database].0 += shard.len();
            counts[database].1 += shard.volatile_len();
        }
        counts
    } else {
        (0..server.keyspace.database_count())
            .map(|database| server.keyspace.database(database).counts())
            .collect()
    };
    // The shards' tables: one pointer and one control byte per slot.
    let slot_bytes = std::mem::size_of::<usize>() as u64 + 1;
    let databases: Vec<(usize, u64, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .map(|(database, (keys, volatile))| {
            (
                database,
                *keys as u64 * slot_bytes,
                *volatile as u64 * slot_bytes,
            )
        })
        .collect();
    let tables: u64 = databases
        .iter()
        .map(|(_, main, expires)| main + expires)
        .sum();
    let overhead = startup + tables;
    let keys: u64 = counts.iter().map(|(keys, _)| *keys as u64).sum();
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup);
    let reply = &mut context.reply;
    reply.map(30 + databases.len());
    let integer = |reply: &mut resp::ReplyWriter, name: &str, value: i64| {
        reply.bulk(name.as_bytes());
        reply.integer(value);
    };
    integer(reply, "peak.allocated", peak as i64);
    integer(reply, "total.allocated", used as i64);
    integer(reply, "startup.allocated", startup as i64);
    for name in [
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        integer(reply, name, 0);
    }
    for (database, main, expires) in &databases {
        reply.bulk(format!("db.{database}").as_bytes());
        reply.map(2);
        integer(reply, "overhead.hashtable.main", *main as i64);
        integer(reply, "overhead.hashtable.expires", *expires as i64);
    }
    integer(reply, "overhead.db.hashtable.lut", tables as i64);
    integer(reply, "overhead.db.hashtable.rehashing", 0);
    integer(reply, "overhead.total", overhead as i64);
    integer(reply, "db.dict.rehashing.count", 0);
    integer(reply, "keys.count", keys as i64);
    integer(
        reply,
        "keys.bytes-per-key",
        net.checked_div(keys).unwrap_or(0) as i64,
    );
    integer(reply, "dataset.bytes", dataset as i64);
    let double = |reply: &mut resp::ReplyWriter, name: &str, value: f64| {
        reply.bulk(name.as_bytes());
        reply.double(value);
    };
    double(
        reply,
        "dataset.percentage",
        ratio(dataset * 100, net.max(1)),
    );
    double(reply, "peak.percentage", ratio(used * 100, peak.max(1)));
    integer(reply, "allocator.allocated", allocator.allocated as i64);
    integer(reply, "allocator.active", allocator.active as i64);
    integer(reply, "allocator.resident", allocator.resident as i64);
    double(
        reply,
        "allocator-fragmentation.ratio",
        ratio(allocator.active, allocator.allocated),
    );
    integer(
        reply,
        "allocator-fragmentation.bytes",
        allocator.active as i64 - allocator.allocated as i64,
    );
    double(
        reply,
        "allocator-rss.ratio",
        ratio(allocator.resident, allocator.active),
    );
    integer(
        reply,
        "allocator-rss.bytes",
        allocator.resident as i64 - allocator.active as i64,
    );
    double(reply, "rss-overhead.ratio", ratio(rss, allocator.resident));
    integer(
        reply,
        "rss-overhead.bytes",
        rss as i64 - allocator.resident as i64,
    );
    double(reply, "fragmentation", ratio(rss, used));
    integer(reply, "fragmentation.bytes", rss as i64 - used as i64);
    Ok(())
}

/// MEMORY DOCTOR
pub fn memory_doctor(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let used = crate::allocator::used_memory_bytes();
    let text = if used < 5 * 1024 * 1024 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting."
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
    };
    context.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// Appends jemalloc's report text to the `String` behind `opaque`.
extern "C" fn collect_report(opaque: *mut libc::c_void, text: *const libc::c_char) {
    if opaque.is_null() || text.is_null() {
        return;
    }
    // SAFETY: `opaque` is the `&mut String` passed to malloc_stats_print below, alive for the
    // call; `text` is a NUL-terminated string jemalloc owns for the duration of this callback.
    unsafe {
        let report = &mut *(opaque as *mut String);
        report.push_str(&std::ffi::CStr::from_ptr(text).to_string_lossy());
    }
}

/// MEMORY MALLOC-STATS
pub fn memory_malloc_stats(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let mut report = String::new();
    // SAFETY: the callback only writes to `report`, which outlives the call; no options.
    unsafe {
        tikv_jemalloc_sys::malloc_stats_print(
            Some(collect_report),
            &mut report as *mut String as *mut libc::c_void,
            std::ptr::null(),
        );
    }
    context.reply.verbatim(b"txt", report.as_bytes());
    Ok(())
}

/// MEMORY PURGE
pub fn memory_purge(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena returns its dirty pages.
    // SAFETY: the name is NUL-terminated; purge takes no input and gives no output.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    context.reply.ok();
    Ok(())
}

/// MEMORY HELP
pub fn memory_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    super::reply_help(
        context,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}
