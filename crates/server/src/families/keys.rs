//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RANDOMKEY, RENAME, RENAMENX,
//! COPY, MOVE, TOUCH, OBJECT, the EXPIRE family, TTL and its relatives, PERSIST, SWAPDB.
//!
//! Locking. Commands over several keys lock them together (`lock_keys`, `lock_pairs` across
//! databases for COPY and MOVE); KEYS, RANDOMKEY and SWAPDB lock every shard of their databases
//! in the global order (`lock_databases`), which makes them atomic barriers. SCAN is not atomic
//! (as in Redis): it locks one shard at a time, through a key that lives in that shard, so that
//! inside EXEC it borrows the transaction's locks like every other command.
//!
//! SCAN's cursor is the index of the next shard to visit (0 starts, and 0 again means the
//! iteration is complete). A call returns every wanted key of each shard it visits, visiting
//! shards in order until it has looked at COUNT keys or reached the last shard. Each shard is
//! read whole under its lock, so however its hash table grows or shrinks between calls, a key
//! present for the whole iteration is returned exactly once. The price is that a call returns
//! at least one whole shard (a database's keys spread over 256 shards, so about 1/256 of them;
//! more when many keys share one hash tag). A cursor beyond the last shard ends the iteration.
//!
//! Propagation follows Redis 7.2: DEL, UNLINK, RENAME(NX), COPY, MOVE, PERSIST and SWAPDB
//! propagate as received when they changed something; the EXPIRE family propagates as
//! `PEXPIREAT key <absolute ms> [flags]`, or as `DEL key` (`UNLINK` with
//! `lazyfree-lazy-expire yes`) when the time is already past. Keys found expired while a command
//! runs are propagated as `DEL` before the command's own write. Keyspace notifications follow
//! Redis's events (`del`, `expire`, `rename_from`/`rename_to`, `copy_to`, `move_from`/`move_to`,
//! `persist`); SWAPDB, like FLUSHDB, marks the watched keys it changes and wakes clients blocked
//! on keys that now exist.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use resp::ReplyWriter;
use store::glob::Pattern;
use store::keyspace::shard_index;
use store::{Entry, EntryMut, Shard, SmallBytes, StringValue, Value, SHARD_COUNT};

use crate::arguments::{integer, is};
use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("del", del);
    table.handle("unlink", unlink);
    table.handle("exists", exists);
    table.handle("type", type_);
    table.handle("keys", keys);
    table.handle("scan", scan);
    table.handle("randomkey", randomkey);
    table.handle("rename", rename);
    table.handle("renamenx", renamenx);
    table.handle("copy", copy);
    table.handle("move", move_);
    table.handle("touch", touch);
    table.handle("object|encoding", object_encoding);
    table.handle("object|refcount", object_refcount);
    table.handle("object|idletime", object_idletime);
    table.handle("object|freq", object_freq);
    table.handle("object|help", object_help);
    table.handle("expire", expire);
    table.handle("pexpire", pexpire);
    table.handle("expireat", expireat);
    table.handle("pexpireat", pexpireat);
    table.handle("ttl", ttl);
    table.handle("pttl", pttl);
    table.handle("expiretime", expiretime);
    table.handle("pexpiretime", pexpiretime);
    table.handle("persist", persist);
    table.handle("swapdb", swapdb);
}

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// OBJECT REFCOUNT of a shared object (Redis's `OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Integers below this are shared objects in Redis (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10000;

/// Propagates the deletion of the keys that expired in `shard` so far, so that it precedes the
/// command's own write in the stream (Redis propagates it as soon as a lookup finds the key
/// expired; the guards would only do it when they unlock, after the write). Inside EXEC the
/// deletions are captured with the transaction, as the guards do.
fn settle_expired(context: &Context, database: usize, shard: &mut Shard) {
    crate::context::flush_expired(context.server, context.scope, database, shard);
}

/// For each shard index, a key that lives in that shard (SCAN locks shard `index` by locking
/// `shard_probe_keys()[index]`).
fn shard_probe_keys() -> &'static [Vec<u8>] {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<Option<Vec<u8>>> = vec![None; SHARD_COUNT];
        let mut missing = SHARD_COUNT;
        let mut candidate = 0u64;
        while missing > 0 {
            let key = candidate.to_string().into_bytes();
            let slot = &mut keys[shard_index(&key)];
            if slot.is_none() {
                *slot = Some(key);
                missing -= 1;
            }
            candidate += 1;
        }
        keys.into_iter().flatten().collect()
    })
}

/// Looks `key` up as a command's access: counts as an access (idle time, frequency) unless the
/// client is in CLIENT NO-TOUCH mode.
fn access<'s>(context: &Context, shard: &'s mut Shard, key: &[u8]) -> Option<EntryMut<'s>> {
    if context.client.shared.no_touch.load(Ordering::Relaxed) {
        shard.lookup_untouched(key, context.now_ms)
    } else {
        shard.lookup(key, context.now_ms)
    }
}

/// A database index argument, read as Redis's `getIntFromObjectOrReply` then `selectDb` do.
fn database_argument(arg: &[u8], database_count: usize) -> Result<usize, CommandError> {
    let index = integer(arg)?;
    if index < i32::MIN as i64 || index > i32::MAX as i64 {
        return Err(format!(
            "ERR value is out of range, value must between {} and {}",
            i32::MIN,
            i32::MAX
        )
        .into());
    }
    if index < 0 || index as usize >= database_count {
        return Err(errors::DB_INDEX_OUT_OF_RANGE.into());
    }
    Ok(index as usize)
}

fn cluster_enabled(context: &Context) -> bool {
    context.server.config.get_bool("cluster-enabled")
}

/// DEL key [key ...]
fn del(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let removal = if context
        .server
        .config
        .hot
        .lazyfree_lazy_user_del
        .load(Ordering::Relaxed)
    {
        Removal::Unlink
    } else {
        Removal::Delete
    };
    remove_keys(context, args, removal)
}

/// UNLINK key [key ...]
fn unlink(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    remove_keys(context, args, Removal::Unlink)
}

/// How removed values are freed.
enum Removal {
    /// Now, by the command (after its locks are released).
    Delete,
    /// In the background when that takes long (see `crate::lazyfree`).
    Unlink,
}

/// DEL and UNLINK: removes the keys, propagates the command as received if any existed.
fn remove_keys(context: &mut Context, args: &[&[u8]], removal: Removal) -> CommandResult {
    let database = context.database();
    let keys = &args[1..];
    let mut removed: Vec<Box<Entry>> = Vec::new();
    let mut locked = context.lock_keys(keys.iter().copied());
    for key in keys {
        if let Some(entry) = locked.shard(database, key).remove(key, context.now_ms) {
            removed.push(entry);
            context.notify(EventClass::Generic, "del", key);
        }
    }
    if !removed.is_empty() {
        for (database, _, shard) in locked.iter_mut() {
            settle_expired(context, database, shard);
        }
        locked.propagate(database, args);
    }
    drop(locked);
    context.reply.integer(removed.len() as i64);
    match removal {
        Removal::Delete => drop(removed),
        Removal::Unlink => {
            for entry in removed {
                context.server.lazyfree.free(entry);
            }
        }
    }
    Ok(())
}

/// EXISTS key [key ...]
fn exists(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let mut found = 0;
    for key in &args[1..] {
        if locked.shard(database, key).contains(key, context.now_ms) {
            found += 1;
        }
    }
    drop(locked);
    context.reply.integer(found);
    Ok(())
}

/// TOUCH key [key ...]
fn touch(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let mut found = 0;
    for key in &args[1..] {
        if locked
            .shard(database, key)
            .lookup(key, context.now_ms)
            .is_some()
        {
            found += 1;
        }
    }
    drop(locked);
    context.reply.integer(found);
    Ok(())
}

/// TYPE key
fn type_(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let name = shard
        .peek(args[1], context.now_ms)
        .map_or("none", |entry| entry.value.type_name());
    drop(shard);
    context.reply.simple(name.as_bytes());
    Ok(())
}

/// KEYS pattern
fn keys(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let pattern = Pattern::new(args[1], false);
    let now_ms = context.now_ms;
    let mut locked = context.lock_databases(&[context.database()]);
    let shards: Vec<&mut Shard> = locked.iter_mut().map(|(_, _, shard)| shard).collect();
    let found: Vec<&[u8]> = shards
        .iter()
        .flat_map(|shard| shard.iter())
        .filter(|entry| pattern.matches(entry.key()) && !entry.is_expired(now_ms))
        .map(|entry| entry.key())
        .collect();
    context.reply.array(found.len());
    for key in found {
        context.reply.bulk(key);
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let cursor = crate::arguments::scan_cursor(args[1])?;
    let mut count: i64 = 10;
    let mut pattern: Option<Pattern> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut index = 2;
    while index < args.len() {
        let has_value = args.len() - index >= 2;
        if is(args[index], "COUNT") && has_value {
            count = integer(args[index + 1])?;
            if count < 1 {
                return Err(errors::SYNTAX.into());
            }
        } else if is(args[index], "MATCH") && has_value {
            let matches_everything = args[index + 1] == b"*";
            pattern = (!matches_everything).then(|| Pattern::new(args[index + 1], false));
        } else if is(args[index], "TYPE") && has_value {
            type_name = Some(args[index + 1]);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    let wanted = |entry: &Entry| {
        pattern
            .as_ref()
            .is_none_or(|pattern| pattern.matches(entry.key()))
            && type_name
                .is_none_or(|name| name.eq_ignore_ascii_case(entry.value.type_name().as_bytes()))
    };
    let database = context.database();
    let mut found: Vec<SmallBytes> = Vec::new();
    let mut next = cursor;
    if cursor < SHARD_COUNT as u64 {
        let mut shard_index = cursor as usize;
        let mut visited = 0usize;
        while shard_index < SHARD_COUNT {
            let probe = shard_probe_keys()[shard_index].as_slice();
            let mut locked = context.lock_keys([probe]);
            let shard = locked.shard(database, probe);
            visited += shard.len();
            shard.collect_keys(context.now_ms, wanted, &mut found);
            drop(locked);
            shard_index += 1;
            if visited as u64 >= count as u64 {
                break;
            }
        }
        next = shard_index as u64;
    }
    if next >= SHARD_COUNT as u64 {
        next = 0;
    }
    context.reply.array(2);
    context.reply.bulk_integer(next as i64);
    context.reply.array(found.len());
    for key in &found {
        context.reply.bulk(key);
    }
    Ok(())
}

/// Random shards RANDOMKEY looks into before it weighs every shard (most shards empty).
const RANDOMKEY_SHARD_TRIES: usize = 8;

/// RANDOMKEY
fn randomkey(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    // A random key of a random shard, one lock: the key hash spreads keys evenly over the
    // shards, so this is near uniform (Redis's own pick is near uniform too).
    for _ in 0..RANDOMKEY_SHARD_TRIES {
        let mut locked = context.lock_shard_index(rand::random_range(0..SHARD_COUNT));
        if locked.is_empty() {
            continue;
        }
        let key = store::random_key(&mut [&mut *locked], context.now_ms, |bound| {
            rand::random_range(0..bound)
        });
        // Unlocking propagates the deletion of the expired keys met on the way.
        drop(locked);
        if let Some(key) = key {
            context.reply.bulk(&key);
            return Ok(());
        }
    }
    // Few keys: every shard, each weighted by its number of keys.
    let mut locked = context.lock_databases(&[context.database()]);
    let mut shards: Vec<&mut Shard> = locked.iter_mut().map(|(_, _, shard)| shard).collect();
    let key = store::random_key(&mut shards, context.now_ms, |bound| {
        rand::random_range(0..bound)
    });
    drop(shards);
    // Unlocking propagates the deletion of the expired keys met on the way.
    drop(locked);
    match key {
        Some(key) => context.reply.bulk(&key),
        None => context.reply.null(),
    }
    Ok(())
}

/// How RENAME treats an existing destination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rename {
    /// RENAME: overwrite it.
    Overwrite,
    /// RENAMENX: leave it and reply 0.
    KeepExisting,
}

/// RENAME key newkey
fn rename(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    rename_key(context, args, Rename::Overwrite)
}

/// RENAMENX key newkey
fn renamenx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    rename_key(context, args, Rename::KeepExisting)
}

fn rename_key(context: &mut Context, args: &[&[u8]], mode: Rename) -> CommandResult {
    let (source, target) = (args[1], args[2]);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys([source, target]);
    if access(context, locked.shard(database, source), source).is_none() {
        return Err(errors::NO_SUCH_KEY.into());
    }
    let reply_done = |reply: &mut ReplyWriter, done: bool| match (mode, done) {
        (Rename::Overwrite, _) => reply.ok(),
        (Rename::KeepExisting, done) => reply.integer(done as i64),
    };
    if source == target {
        drop(locked);
        reply_done(&mut context.reply, false);
        return Ok(());
    }
    if mode == Rename::KeepExisting
        && access(context, locked.shard(database, target), target).is_some()
    {
        drop(locked);
        reply_done(&mut context.reply, false);
        return Ok(());
    }
    let entry = locked
        .shard(database, source)
        .remove(source, now_ms)
        .expect("the source was found under the same lock");
    let replaced = locked
        .shard(database, target)
        .insert_entry(entry.renamed(target), now_ms);
    for (database, _, shard) in locked.iter_mut() {
        settle_expired(context, database, shard);
    }
    locked.propagate(database, args);
    context.notify(EventClass::Generic, "rename_from", source);
    context.notify(EventClass::Generic, "rename_to", target);
    drop(locked);
    drop(replaced);
    reply_done(&mut context.reply, true);
    Ok(())
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (source, target) = (args[1], args[2]);
    let source_database = context.database();
    let mut target_database = source_database;
    let mut replace = false;
    let mut index = 3;
    while index < args.len() {
        if is(args[index], "REPLACE") {
            replace = true;
        } else if is(args[index], "DB") && index + 1 < args.len() {
            target_database =
                database_argument(args[index + 1], context.server.keyspace.database_count())?;
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if cluster_enabled(context) && (source_database != 0 || target_database != 0) {
        return Err("ERR Copying to another database is not allowed in cluster mode".into());
    }
    if source_database == target_database && source == target {
        return Err(SAME_OBJECT.into());
    }
    let now_ms = context.now_ms;
    let mut locked = context.lock_pairs([(source_database, source), (target_database, target)]);
    if access(context, locked.shard(source_database, source), source).is_none() {
        drop(locked);
        context.reply.integer(0);
        return Ok(());
    }
    if !replace && access(context, locked.shard(target_database, target), target).is_some() {
        drop(locked);
        context.reply.integer(0);
        return Ok(());
    }
    let duplicate = locked
        .shard(source_database, source)
        .peek(source, now_ms)
        .expect("the source was found under the same lock")
        .duplicate(target, now_ms);
    let replaced = locked
        .shard(target_database, target)
        .insert_entry(duplicate, now_ms);
    for (database, _, shard) in locked.iter_mut() {
        settle_expired(context, database, shard);
    }
    locked.propagate(source_database, args);
    if target_database != source_database {
        // Propagating marks the keys of the source database for WATCH.
        locked.shard(target_database, target).watched.touch(target);
    }
    context
        .server
        .notify(EventClass::Generic, "copy_to", target_database, target);
    drop(locked);
    drop(replaced);
    context.reply.integer(1);
    Ok(())
}

/// MOVE key db
fn move_(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if cluster_enabled(context) {
        return Err("ERR MOVE is not allowed in cluster mode".into());
    }
    let key = args[1];
    let source_database = context.database();
    let target_database = database_argument(args[2], context.server.keyspace.database_count())?;
    if source_database == target_database {
        return Err(SAME_OBJECT.into());
    }
    let now_ms = context.now_ms;
    let mut locked = context.lock_pairs([(source_database, key), (target_database, key)]);
    let moved = access(context, locked.shard(source_database, key), key).is_some()
        && access(context, locked.shard(target_database, key), key).is_none();
    if moved {
        let entry = locked
            .shard(source_database, key)
            .remove(key, now_ms)
            .expect("the key was found under the same lock");
        let replaced = locked
            .shard(target_database, key)
            .insert_entry(entry, now_ms);
        debug_assert!(replaced.is_none());
        for (database, _, shard) in locked.iter_mut() {
            settle_expired(context, database, shard);
        }
        locked.propagate(source_database, args);
        // Propagating marks the key of the source database for WATCH.
        locked.shard(target_database, key).watched.touch(key);
        let server = context.server;
        // The key was created in the target database (`new` goes there).
        server.notify_created(target_database);
        server.notify(EventClass::Generic, "move_from", source_database, key);
        server.notify(EventClass::Generic, "move_to", target_database, key);
    }
    drop(locked);
    context.reply.integer(moved as i64);
    Ok(())
}

/// Runs `read` on the entry of `key` without touching it (OBJECT's lookup); replies null when
/// the key does not exist.
fn object_inspect<T>(
    context: &mut Context,
    key: &[u8],
    read: impl FnOnce(&Entry, u64) -> T,
) -> Option<T> {
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let result = shard.peek(key, now_ms).map(|entry| read(entry, now_ms));
    drop(shard);
    if result.is_none() {
        context.reply.null();
    }
    result
}

/// Whether the configured eviction policy is an LFU one.
fn lfu_policy(context: &Context) -> bool {
    context
        .server
        .config
        .get("maxmemory-policy")
        .contains("lfu")
}

/// OBJECT ENCODING key
fn object_encoding(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if let Some(name) = object_inspect(context, args[2], |entry, _| entry.value.encoding_name()) {
        context.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// OBJECT REFCOUNT key
fn object_refcount(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let small_integer = |entry: &Entry, _| {
        matches!(entry.value, Value::String(StringValue::Integer(integer))
            if (0..SHARED_INTEGERS).contains(&integer))
    };
    let Some(small_integer) = object_inspect(context, args[2], small_integer) else {
        return Ok(());
    };
    // Redis shares small integers unless an LRU or LFU policy evicts under a memory limit.
    let config = &context.server.config;
    let policy = config.get("maxmemory-policy");
    let sharing =
        config.get_i64("maxmemory") == 0 || !(policy.contains("lru") || policy.contains("lfu"));
    let count = if small_integer && sharing {
        SHARED_REFCOUNT
    } else {
        1
    };
    context.reply.integer(count);
    Ok(())
}

/// OBJECT IDLETIME key
fn object_idletime(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let Some(idle_seconds) =
        object_inspect(context, args[2], |entry, now_ms| entry.idle_seconds(now_ms))
    else {
        return Ok(());
    };
    if lfu_policy(context) {
        return Err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into());
    }
    context.reply.integer(idle_seconds as i64);
    Ok(())
}

/// OBJECT FREQ key
fn object_freq(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let Some(frequency) = object_inspect(context, args[2], |entry, now_ms| entry.frequency(now_ms))
    else {
        return Ok(());
    };
    if !lfu_policy(context) {
        return Err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into());
    }
    context.reply.integer(frequency as i64);
    Ok(())
}

/// OBJECT HELP
fn object_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    ];
    context.reply.array(LINES.len());
    for line in LINES {
        context.reply.simple(line.as_bytes());
    }
    Ok(())
}

/// The EXPIRE family (and HEXPIRE's): how the time argument reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireTime {
    /// EXPIRE, HEXPIRE: seconds from now.
    Seconds,
    /// PEXPIRE, HPEXPIRE: milliseconds from now.
    Milliseconds,
    /// EXPIREAT, HEXPIREAT: a Unix time in seconds.
    UnixSeconds,
    /// PEXPIREAT, HPEXPIREAT: a Unix time in milliseconds.
    UnixMilliseconds,
}

/// EXPIRE key seconds [NX | XX | GT | LT]
fn expire(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_key(context, args, ExpireTime::Seconds)
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
fn pexpire(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_key(context, args, ExpireTime::Milliseconds)
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
fn expireat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_key(context, args, ExpireTime::UnixSeconds)
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
fn pexpireat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_key(context, args, ExpireTime::UnixMilliseconds)
}

/// The EXPIRE family's conditions.
#[derive(Default)]
struct ExpireConditions {
    /// NX: only when the key has no expiry.
    without_expiry: bool,
    /// XX: only when the key has an expiry.
    with_expiry: bool,
    /// GT: only when the new expiry is later (no expiry counts as infinite).
    later: bool,
    /// LT: only when the new expiry is earlier (no expiry counts as infinite).
    earlier: bool,
}

impl ExpireConditions {
    fn parse(args: &[&[u8]]) -> Result<Self, CommandError> {
        let mut conditions = ExpireConditions::default();
        for arg in args {
            if is(arg, "NX") {
                conditions.without_expiry = true;
            } else if is(arg, "XX") {
                conditions.with_expiry = true;
            } else if is(arg, "GT") {
                conditions.later = true;
            } else if is(arg, "LT") {
                conditions.earlier = true;
            } else {
                return Err(format!("ERR Unsupported option {}", c_string_text(arg)).into());
            }
        }
        if conditions.without_expiry
            && (conditions.with_expiry || conditions.later || conditions.earlier)
        {
            return Err(
                "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
            );
        }
        if conditions.later && conditions.earlier {
            return Err("ERR GT and LT options at the same time are not compatible".into());
        }
        Ok(conditions)
    }

    /// Whether a new expiry at `when_ms` may replace `current_ms`.
    fn allow(&self, current_ms: Option<u64>, when_ms: i64) -> bool {
        match current_ms {
            None => !(self.with_expiry || self.later),
            Some(current_ms) => {
                let current_ms = current_ms as i64;
                !(self.without_expiry
                    || (self.later && when_ms <= current_ms)
                    || (self.earlier && when_ms >= current_ms))
            }
        }
    }
}

/// An argument as Redis prints it with `%s` (up to the first NUL byte).
fn c_string_text(arg: &[u8]) -> String {
    let end = arg.iter().position(|&byte| byte == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

fn expire_key(context: &mut Context, args: &[&[u8]], time: ExpireTime) -> CommandResult {
    let conditions = ExpireConditions::parse(&args[3..])?;
    let invalid = || {
        CommandError::from(format!(
            "ERR invalid expire time in '{}' command",
            context.command.full_name
        ))
    };
    let mut when_ms = integer(args[2])?;
    if matches!(time, ExpireTime::Seconds | ExpireTime::UnixSeconds) {
        when_ms = when_ms.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base_ms = match time {
        ExpireTime::Seconds | ExpireTime::Milliseconds => context.now_ms as i64,
        ExpireTime::UnixSeconds | ExpireTime::UnixMilliseconds => 0,
    };
    when_ms = when_ms.checked_add(base_ms).ok_or_else(invalid)?;

    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(mut entry) = access(context, &mut shard, key) else {
        drop(shard);
        context.reply.integer(0);
        return Ok(());
    };
    if !conditions.allow(entry.expire_at_ms(), when_ms) {
        drop(shard);
        context.reply.integer(0);
        return Ok(());
    }
    if when_ms <= now_ms as i64 {
        let removed = shard.remove(key, now_ms);
        debug_assert!(removed.is_some());
        let command = context.server.expired_deletion();
        let database = shard.database();
        settle_expired(context, database, &mut shard);
        shard.propagate(&[command, key]);
        context.notify(EventClass::Generic, "del", key);
        drop(shard);
        drop(removed);
    } else {
        entry.set_expire_at_ms(Some(when_ms as u64));
        let mut when_text = itoa::Buffer::new();
        let mut propagated: Vec<&[u8]> = Vec::with_capacity(args.len());
        propagated.push(match time {
            ExpireTime::UnixMilliseconds => args[0],
            _ => b"PEXPIREAT",
        });
        propagated.push(key);
        propagated.push(when_text.format(when_ms).as_bytes());
        propagated.extend_from_slice(&args[3..]);
        let database = shard.database();
        settle_expired(context, database, &mut shard);
        shard.propagate(&propagated);
        context.notify(EventClass::Generic, "expire", key);
        drop(shard);
    }
    context.reply.integer(1);
    Ok(())
}

/// What TTL and its relatives reply with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TimeToLive {
    /// TTL: seconds left.
    Seconds,
    /// PTTL: milliseconds left.
    Milliseconds,
    /// EXPIRETIME: the Unix time of expiry, in seconds.
    UnixSeconds,
    /// PEXPIRETIME: the Unix time of expiry, in milliseconds.
    UnixMilliseconds,
}

/// TTL key
fn ttl(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    time_to_live(context, args, TimeToLive::Seconds)
}

/// PTTL key
fn pttl(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    time_to_live(context, args, TimeToLive::Milliseconds)
}

/// EXPIRETIME key
fn expiretime(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    time_to_live(context, args, TimeToLive::UnixSeconds)
}

/// PEXPIRETIME key
fn pexpiretime(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    time_to_live(context, args, TimeToLive::UnixMilliseconds)
}

fn time_to_live(context: &mut Context, args: &[&[u8]], output: TimeToLive) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let found = shard
        .peek(args[1], now_ms)
        .map(|entry| entry.expire_at_ms());
    drop(shard);
    let reply = match found {
        None => -2,
        Some(None) => -1,
        Some(Some(expire_at_ms)) => {
            let milliseconds = match output {
                TimeToLive::Seconds | TimeToLive::Milliseconds => {
                    expire_at_ms.saturating_sub(now_ms)
                }
                TimeToLive::UnixSeconds | TimeToLive::UnixMilliseconds => expire_at_ms,
            };
            match output {
                TimeToLive::Milliseconds | TimeToLive::UnixMilliseconds => milliseconds as i64,
                TimeToLive::Seconds | TimeToLive::UnixSeconds => {
                    ((milliseconds + 500) / 1000) as i64
                }
            }
        }
    };
    context.reply.integer(reply);
    Ok(())
}

/// PERSIST key
fn persist(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let removed = match access(context, &mut shard, args[1]) {
        Some(mut entry) if entry.expire_at_ms().is_some() => {
            entry.set_expire_at_ms(None);
            true
        }
        _ => false,
    };
    if removed {
        let database = shard.database();
        settle_expired(context, database, &mut shard);
        shard.propagate(args);
        context.notify(EventClass::Generic, "persist", args[1]);
    }
    drop(shard);
    context.reply.integer(removed as i64);
    Ok(())
}

/// Exchanges the content of the same shard of two databases. Watchers and blocked clients stay
/// with their database: a watched key changes when it exists on either side (as Redis's
/// `touchAllWatchedKeysInDb`), and clients blocked on keys that exist after the swap are woken.
fn swap_shards(first: &mut Shard, second: &mut Shard, now_ms: u64) {
    touch_swapped_watched_keys(first, second, now_ms);
    touch_swapped_watched_keys(second, first, now_ms);
    first.swap_content(second);
    for shard in [first, second] {
        if shard.blocked.is_empty() {
            continue;
        }
        let present: Vec<SmallBytes> = shard
            .iter()
            .filter(|entry| !entry.is_expired(now_ms))
            .map(|entry| SmallBytes::new(entry.key()))
            .collect();
        for key in present {
            shard.blocked.signal(&key);
        }
    }
}

/// Marks the keys watched in `watching` that exist in it or in `other` (before the swap).
fn touch_swapped_watched_keys(watching: &mut Shard, other: &Shard, now_ms: u64) {
    if watching.watched.is_empty() {
        return;
    }
    let changed: Vec<SmallBytes> = watching
        .watched
        .keys()
        .into_iter()
        .filter(|key| watching.is_live(key, now_ms) || other.is_live(key, now_ms))
        .collect();
    watching
        .watched
        .touch_where(|key| changed.iter().any(|changed| &**changed == key));
}

/// SWAPDB index1 index2
fn swapdb(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if cluster_enabled(context) {
        return Err("ERR SWAPDB is not allowed in cluster mode".into());
    }
    let index = |arg: &[u8], message: &'static str| {
        integer(arg)
            .ok()
            .filter(|index| (i32::MIN as i64..=i32::MAX as i64).contains(index))
            .ok_or(CommandError::from(message))
    };
    let first = index(args[1], "ERR invalid first DB index")?;
    let second = index(args[2], "ERR invalid second DB index")?;
    let database_count = context.server.keyspace.database_count() as i64;
    if !(0..database_count).contains(&first) || !(0..database_count).contains(&second) {
        return Err(errors::DB_INDEX_OUT_OF_RANGE.into());
    }
    let (first, second) = (first as usize, second as usize);
    let now_ms = context.now_ms;
    let mut locked = context.lock_databases(&[first, second]);
    if first != second {
        let mut lower: Vec<&mut Shard> = Vec::with_capacity(SHARD_COUNT);
        let mut higher: Vec<&mut Shard> = Vec::with_capacity(SHARD_COUNT);
        for (database, _, shard) in locked.iter_mut() {
            if database == first.min(second) {
                lower.push(shard);
            } else {
                higher.push(shard);
            }
        }
        for (lower, higher) in lower.into_iter().zip(higher) {
            swap_shards(lower, higher, now_ms);
        }
    }
    locked.propagate_global(context.database(), args);
    // Unlocking serves the clients blocked on keys that now exist.
    drop(locked);
    context.reply.ok();
    Ok(())
}

/// The propagation stream of these commands, observed in process.
#[cfg(test)]
mod tests {
    use store::{StringValue, Value};

    use super::shard_index;
    use crate::config::ConfigSource;
    use crate::server::unix_time_ms;
    use crate::testing::Harness;

    /// Stores a key whose expiry has passed, as if nobody had looked at it since.
    fn insert_expired(harness: &Harness, database: usize, key: &str) {
        let index = shard_index(key.as_bytes());
        harness.server.lock_shard(database, index).insert(
            key.as_bytes(),
            Value::String(StringValue::from_bytes(b"old")),
            Some(1),
            0,
        );
    }

    fn lines(expected: &[&str]) -> Vec<String> {
        expected.iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn expire_family_propagates_absolute_milliseconds() {
        let mut harness = Harness::with_selects();
        harness.run("SET k v");
        harness.propagated();
        let before = unix_time_ms();
        assert_eq!(harness.run("EXPIRE k 100"), ":1\r\n");
        assert_eq!(harness.run("PEXPIRE k 200000 GT"), ":1\r\n");
        assert_eq!(harness.run("expireat k 4000000000"), ":1\r\n");
        assert_eq!(harness.run("pexpireat k 4000000001000 xx"), ":1\r\n");
        let after = unix_time_ms();
        let stream = harness.propagated();
        assert_eq!(stream.len(), 4, "{stream:?}");
        let first: Vec<&str> = stream[0].split(' ').collect();
        assert_eq!(&first[..2], ["PEXPIREAT", "k"]);
        let at: u64 = first[2].parse().expect("absolute time");
        assert!((before + 100_000..=after + 100_000).contains(&at));
        let second: Vec<&str> = stream[1].split(' ').collect();
        assert_eq!(&second[..2], ["PEXPIREAT", "k"]);
        let at: u64 = second[2].parse().expect("absolute time");
        assert!((before + 200_000..=after + 200_000).contains(&at));
        assert_eq!(second[3], "GT");
        assert_eq!(stream[2], "PEXPIREAT k 4000000000000");
        assert_eq!(stream[3], "pexpireat k 4000000001000 xx");
        // Refused conditions and missing keys propagate nothing.
        assert_eq!(harness.run("EXPIRE k 10 NX"), ":0\r\n");
        assert_eq!(harness.run("EXPIRE nosuch 10"), ":0\r\n");
        assert_eq!(
            harness.run("EXPIRE k 10 FOO"),
            "-ERR Unsupported option FOO\r\n"
        );
        assert!(harness.propagated().is_empty());
    }

    #[test]
    fn expire_in_the_past_propagates_a_deletion() {
        let mut harness = Harness::with_selects();
        harness.run("SET k v");
        harness.run("SET l v");
        harness.propagated();
        assert_eq!(harness.run("EXPIRE k -1"), ":1\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL k"]));
        harness
            .server
            .config
            .set_many(
                &[("lazyfree-lazy-expire".into(), vec!["yes".into()])],
                ConfigSource::Startup,
            )
            .expect("config");
        assert_eq!(harness.run("PEXPIREAT l 1 LT"), ":1\r\n");
        assert_eq!(harness.propagated(), lines(&["UNLINK l"]));
    }

    #[test]
    fn expired_keys_propagate_as_del_and_do_not_resurrect() {
        let mut harness = Harness::with_selects();
        insert_expired(&harness, 0, "gone");
        assert_eq!(harness.run("EXPIRE gone 100"), ":0\r\n");
        assert_eq!(harness.propagated(), lines(&["SELECT 0", "DEL gone"]));
        insert_expired(&harness, 0, "gone");
        assert_eq!(harness.run("PERSIST gone"), ":0\r\n");
        assert_eq!(harness.run("TTL gone"), ":-2\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL gone"]));
    }

    #[test]
    fn persist_propagates_only_when_it_removed_an_expiry() {
        let mut harness = Harness::with_selects();
        harness.run("SET k v");
        assert_eq!(harness.run("PERSIST k"), ":0\r\n");
        assert_eq!(harness.run("PERSIST nosuch"), ":0\r\n");
        harness.propagated();
        harness.run("EXPIRE k 100");
        harness.propagated();
        assert_eq!(harness.run("PERSIST k"), ":1\r\n");
        assert_eq!(harness.propagated(), lines(&["PERSIST k"]));
    }

    #[test]
    fn del_and_unlink_propagate_as_received() {
        let mut harness = Harness::with_selects();
        harness.run("SET a 1");
        harness.run("SET b 1");
        harness.propagated();
        assert_eq!(harness.run("DEL a nosuch"), ":1\r\n");
        assert_eq!(harness.run("DEL a nosuch"), ":0\r\n");
        assert_eq!(harness.run("UNLINK b"), ":1\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL a nosuch", "UNLINK b"]));
        // A key found expired is deleted first.
        harness.run("SET c 1");
        insert_expired(&harness, 0, "d");
        harness.propagated();
        assert_eq!(harness.run("DEL c d"), ":1\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL d", "DEL c d"]));
    }

    #[test]
    fn rename_copy_move_propagate_after_expired_targets() {
        let mut harness = Harness::with_selects();
        harness.run("SET source v");
        insert_expired(&harness, 0, "target");
        harness.propagated();
        assert_eq!(harness.run("RENAME source target"), "+OK\r\n");
        assert_eq!(
            harness.propagated(),
            lines(&["DEL target", "RENAME source target"])
        );
        assert_eq!(harness.run("RENAME target target"), "+OK\r\n");
        assert_eq!(harness.run("RENAME nosuch x"), "-ERR no such key\r\n");
        assert_eq!(harness.run("RENAMENX target target"), ":0\r\n");
        assert!(harness.propagated().is_empty());

        insert_expired(&harness, 0, "copied");
        assert_eq!(harness.run("COPY target copied"), ":1\r\n");
        assert_eq!(
            harness.propagated(),
            lines(&["DEL copied", "COPY target copied"])
        );
        assert_eq!(harness.run("COPY target copied"), ":0\r\n");
        assert!(harness.propagated().is_empty());
        insert_expired(&harness, 3, "copied");
        assert_eq!(harness.run("COPY target copied DB 3"), ":1\r\n");
        assert_eq!(
            harness.propagated(),
            lines(&[
                "SELECT 3",
                "DEL copied",
                "SELECT 0",
                "COPY target copied DB 3"
            ])
        );

        insert_expired(&harness, 5, "target");
        assert_eq!(harness.run("MOVE target 5"), ":1\r\n");
        assert_eq!(
            harness.propagated(),
            lines(&["SELECT 5", "DEL target", "SELECT 0", "MOVE target 5"])
        );
        assert_eq!(harness.run("MOVE target 5"), ":0\r\n");
        assert!(harness.propagated().is_empty());
    }

    #[test]
    fn swapdb_propagates() {
        let mut harness = Harness::with_selects();
        assert_eq!(harness.run("SWAPDB 0 1"), "+OK\r\n");
        assert_eq!(harness.run("SWAPDB 2 2"), "+OK\r\n");
        assert_eq!(
            harness.run("SWAPDB 0 99"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            harness.propagated(),
            lines(&["SELECT 0", "SWAPDB 0 1", "SWAPDB 2 2"])
        );
    }

    #[test]
    fn reads_propagate_only_the_expired_keys_they_meet() {
        let mut harness = Harness::with_selects();
        harness.run("SET live v");
        harness.propagated();
        insert_expired(&harness, 0, "foo1");
        insert_expired(&harness, 0, "foo2");
        let reply = harness.run("SCAN 0 COUNT 1000");
        assert_eq!(reply, "*2\r\n$1\r\n0\r\n*1\r\n$4\r\nlive\r\n");
        let mut stream = harness.propagated();
        stream.sort();
        assert_eq!(stream, lines(&["DEL foo1", "DEL foo2"]));

        insert_expired(&harness, 0, "foo3");
        harness.run("DEL live");
        harness.propagated();
        assert_eq!(harness.run("RANDOMKEY"), "$-1\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL foo3"]));

        insert_expired(&harness, 0, "foo4");
        assert_eq!(harness.run("KEYS *"), "*0\r\n");
        assert_eq!(harness.run("EXISTS foo4"), ":0\r\n");
        assert_eq!(harness.propagated(), lines(&["DEL foo4"]));
        // Nothing else reads propagate.
        harness.run("SET live v");
        harness.propagated();
        for read in [
            "EXISTS live",
            "TYPE live",
            "TTL live",
            "TOUCH live",
            "KEYS *",
            "SCAN 0",
            "RANDOMKEY",
            "OBJECT ENCODING live",
        ] {
            harness.run(read);
        }
        assert!(harness.propagated().is_empty());
    }
}
