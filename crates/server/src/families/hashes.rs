//! Hash commands: HSET, HGET and the rest of Redis 7.2's hash family, plus Redis 7.4's field
//! expiry (HEXPIRE, HTTL, HPERSIST and their variants).
//!
//! Field expiry follows Redis 7.4 command by command. A field whose time passed reads as gone;
//! commands that look one field up (HGET, HMGET, HEXISTS, HSTRLEN, HSETNX, HINCRBY,
//! HINCRBYFLOAT) delete it when they meet it ([`expire_field_if_due`]: `HDEL key field` is
//! propagated, and the key goes with its last field); HRANDFIELD first removes every due field
//! ([`expire_hash_fields`]); HGETALL, HKEYS, HVALS and HSCAN skip expired fields without
//! deleting them; HLEN counts them; HSET, HDEL and the HEXPIRE family see them as present. The
//! active expiry cycle removes due fields through [`expire_hash_fields_in_shard`].
//!
//! Also home of what HSCAN and SSCAN share: cursor and option parsing.

use std::sync::atomic::Ordering;

use rand::Rng;
use resp::ReplyWriter;
use store::glob::Pattern;
use store::hash::{is_field_expired, Element, ExpireCondition, FieldExpiry, FieldTtl};
use store::number::parse_i64;
use store::{Hash, HashLimits, Value};

// The HEXPIRE family reads its time argument as the EXPIRE family does.
use super::keys::ExpireTime;
use crate::arguments::{self, is};
use crate::command::CommandTable;
use crate::context::{errors, wrong_arity, CommandError, CommandResult, Context, Locked};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("hset", hset);
    table.handle("hmset", hset);
    table.handle("hsetnx", hsetnx);
    table.handle("hget", hget);
    table.handle("hmget", hmget);
    table.handle("hdel", hdel);
    table.handle("hexists", hexists);
    table.handle("hlen", hlen);
    table.handle("hstrlen", hstrlen);
    table.handle("hkeys", hkeys);
    table.handle("hvals", hvals);
    table.handle("hgetall", hgetall);
    table.handle("hincrby", hincrby);
    table.handle("hincrbyfloat", hincrbyfloat);
    table.handle("hrandfield", hrandfield);
    table.handle("hscan", hscan);
    table.handle("hexpire", hexpire);
    table.handle("hpexpire", hpexpire);
    table.handle("hexpireat", hexpireat);
    table.handle("hpexpireat", hpexpireat);
    table.handle("httl", httl);
    table.handle("hpttl", hpttl);
    table.handle("hexpiretime", hexpiretime);
    table.handle("hpexpiretime", hpexpiretime);
    table.handle("hpersist", hpersist);
}

/// Latest field expiry the HEXPIRE family accepts, in Unix milliseconds (Redis 7.4's
/// `HFE_MAX_ABS_TIME_MSEC`: 2^48 - 1 shifted right by 2).
const FIELD_EXPIRY_MAX_MS: i64 = ((1i64 << 48) - 1) >> 2;

/// The hash encoding limits, from the hot configuration.
pub(crate) fn hash_limits(context: &Context) -> HashLimits {
    let hot = &context.server.config.hot;
    HashLimits {
        listpack_entries: hot.hash_max_listpack_entries.load(Ordering::Relaxed) as usize,
        listpack_value: hot.hash_max_listpack_value.load(Ordering::Relaxed) as usize,
    }
}

/// Removes up to `limit` due fields of the hash at `key` (lazy and active field expiry):
/// propagates `HDEL key field` for each and deletes the key when the hash empties. Returns how
/// many fields were removed. Does nothing for a missing key or another type.
pub fn expire_hash_fields(shard: &mut Locked<'_>, key: &[u8], now_ms: u64, limit: usize) -> usize {
    let (removed, emptied) = {
        let Some(mut entry) = shard.lookup(key, now_ms) else {
            return 0;
        };
        let Value::Hash(hash) = entry.value_mut() else {
            return 0;
        };
        if hash
            .next_field_expiry_ms()
            .is_none_or(|expire_at_ms| expire_at_ms > now_ms)
        {
            return 0;
        }
        let removed = hash.remove_expired_fields(now_ms, limit);
        (removed, hash.is_empty())
    };
    for field in &removed {
        shard.propagate(&[b"HDEL", key, field]);
    }
    if emptied {
        shard.remove(key, now_ms);
    }
    if !removed.is_empty() {
        shard.notify_removal(EventClass::Hash, "hexpired", key, now_ms);
    }
    removed.len()
}

/// Writes an element (a field, a value, a member) as a bulk string.
pub(crate) fn reply_element(reply: &mut ReplyWriter, element: Element<'_>) {
    match element {
        Element::Bytes(bytes) => reply.bulk(bytes),
        Element::Integer(value) => reply.bulk_integer(value),
    }
}

/// Active field expiry over one locked shard: visits the keys the shard records as hashes with
/// field expiries (`Shard::track_field_expiry`), removes their due fields with
/// [`expire_hash_fields`], at most `limit` fields in all, and forgets the keys that no longer
/// hold such a hash. Returns how many fields were removed.
pub fn expire_hash_fields_in_shard(shard: &mut Locked<'_>, now_ms: u64, limit: usize) -> usize {
    let mut removed = 0;
    for key in shard.field_expiry_keys() {
        if removed >= limit {
            break;
        }
        let next_expiry_ms = shard
            .peek(&key, now_ms)
            .and_then(|entry| entry.value.as_hash().and_then(Hash::next_field_expiry_ms));
        match next_expiry_ms {
            None => shard.untrack_field_expiry(&key),
            Some(expire_at_ms) if expire_at_ms <= now_ms => {
                removed += expire_hash_fields(shard, &key, now_ms, limit - removed);
            }
            Some(_) => {}
        }
    }
    removed
}

/// What lazy expiry did to one field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LazyExpiry {
    /// The field is live (or absent, or the key is not a hash).
    Kept,
    /// The field had expired and was deleted.
    FieldDeleted,
    /// The field had expired and was the last one: the key was deleted.
    KeyDeleted,
}

/// Redis 7.4's lazy expiry of one looked-up field: deletes `field` of the hash at `key` if its
/// time passed, propagating `HDEL key field`, and deletes the key when it empties.
fn expire_field_if_due(
    shard: &mut Locked<'_>,
    key: &[u8],
    field: &[u8],
    now_ms: u64,
) -> LazyExpiry {
    let emptied = {
        let Some(mut entry) = shard.lookup(key, now_ms) else {
            return LazyExpiry::Kept;
        };
        let Value::Hash(hash) = entry.value_mut() else {
            return LazyExpiry::Kept;
        };
        if !hash
            .next_field_expiry_ms()
            .is_some_and(|expire_at_ms| is_field_expired(expire_at_ms, now_ms))
        {
            return LazyExpiry::Kept;
        }
        match hash.field_expiry(field) {
            FieldExpiry::At(expire_at_ms) if is_field_expired(expire_at_ms, now_ms) => {}
            _ => return LazyExpiry::Kept,
        }
        hash.remove(field);
        hash.is_empty()
    };
    shard.propagate(&[b"HDEL", key, field]);
    if emptied {
        shard.remove(key, now_ms);
    }
    shard.notify_removal(EventClass::Hash, "hexpired", key, now_ms);
    if emptied {
        LazyExpiry::KeyDeleted
    } else {
        LazyExpiry::FieldDeleted
    }
}

/// What to do when the key of a write is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Start from an empty hash (stored only if the change leaves it non-empty).
    Create,
    /// Do nothing.
    Skip,
}

/// Runs `change` on the hash at `key`; deletes the key when the hash ends up empty. `Ok(None)` when the key is missing and `missing` is `Skip`.
fn update_hash<R>(
    shard: &mut Locked<'_>,
    key: &[u8],
    now_ms: u64,
    missing: Missing,
    change: impl FnOnce(&mut Hash) -> R,
) -> Result<Option<R>, CommandError> {
    let (result, emptied) = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let Value::Hash(hash) = entry.value_mut() else {
                return Err(errors::WRONG_TYPE.into());
            };
            let result = change(hash);
            (result, hash.is_empty())
        }
        None => {
            if missing == Missing::Skip {
                return Ok(None);
            }
            let mut hash = Box::new(Hash::new());
            let result = change(&mut hash);
            if !hash.is_empty() {
                shard.insert(key, Value::Hash(hash), None, now_ms);
            }
            return Ok(Some(result));
        }
    };
    if emptied {
        shard.remove(key, now_ms);
    }
    Ok(Some(result))
}

/// Runs `read` on the hash at `key`. `Ok(None)` when missing.
fn read_hash<R>(
    shard: &mut Locked<'_>,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(&Hash) -> R,
) -> Result<Option<R>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.value() {
            Value::Hash(hash) => Ok(Some(read(hash))),
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

/// Which of HSET's two replies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// HSET: how many fields were created.
    Created,
    /// HMSET: OK.
    Ok,
}

/// HSET key field value [field value ...]
fn hset(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let reply = if is(args[0], "hmset") {
        SetReply::Ok
    } else {
        SetReply::Created
    };
    if args.len() % 2 == 1 {
        return Err(wrong_arity(&context.command.full_name));
    }
    let limits = hash_limits(context);
    let key = args[1];
    let mut shard = context.lock(key);
    let created = update_hash(&mut shard, key, context.now_ms, Missing::Create, |hash| {
        hash.prepare_for_pairs(&args[2..], &limits);
        args[2..]
            .chunks_exact(2)
            .filter(|pair| hash.set(pair[0], pair[1], FieldTtl::Clear, &limits))
            .count()
    })?
    .unwrap_or(0);
    shard.propagate(args);
    context.notify(EventClass::Hash, "hset", key);
    drop(shard);
    match reply {
        SetReply::Created => context.reply.integer(created as i64),
        SetReply::Ok => context.reply.ok(),
    }
    Ok(())
}

/// HSETNX key field value
fn hsetnx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let limits = hash_limits(context);
    let (key, field, value) = (args[1], args[2], args[3]);
    let mut shard = context.lock(key);
    expire_field_if_due(&mut shard, key, field, context.now_ms);
    let set = update_hash(&mut shard, key, context.now_ms, Missing::Create, |hash| {
        hash.prepare_for_pairs(&args[2..4], &limits);
        if hash.contains(field) {
            false
        } else {
            hash.set(field, value, FieldTtl::Clear, &limits);
            true
        }
    })?
    .unwrap_or(false);
    if set {
        shard.propagate(args);
        context.notify(EventClass::Hash, "hset", key);
    }
    drop(shard);
    context.reply.integer(set as i64);
    Ok(())
}

/// HGET key field
fn hget(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    expire_field_if_due(&mut shard, args[1], args[2], context.now_ms);
    let reply = &mut context.reply;
    let found = read_hash(&mut shard, args[1], context.now_ms, |hash| {
        match hash.get(args[2]) {
            Some(value) => reply_element(reply, value),
            None => reply.null(),
        }
    })?;
    if found.is_none() {
        reply.null();
    }
    Ok(())
}

/// HMGET key field [field ...]
fn hmget(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let fields = &args[2..];
    // The type first; then each field in turn, expiring it lazily (the key may go midway).
    read_hash(&mut shard, key, now_ms, |_| ())?;
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(fields.len());
    for field in fields {
        expire_field_if_due(&mut shard, key, field, now_ms);
        let value = read_hash(&mut shard, key, now_ms, |hash| {
            hash.get(field).map(|value| value.to_vec())
        })?
        .flatten();
        values.push(value);
    }
    drop(shard);
    context.reply.array(values.len());
    for value in values {
        match value {
            Some(value) => context.reply.bulk(&value),
            None => context.reply.null(),
        }
    }
    Ok(())
}

/// HDEL key field [field ...]
fn hdel(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let deleted = update_hash(&mut shard, args[1], context.now_ms, Missing::Skip, |hash| {
        let mut deleted = 0;
        for field in &args[2..] {
            if hash.remove(field) {
                deleted += 1;
                if hash.is_empty() {
                    break;
                }
            }
        }
        deleted
    })?
    .unwrap_or(0);
    if deleted > 0 {
        shard.propagate(args);
        context.notify_removal(EventClass::Hash, "hdel", &shard, args[1]);
    }
    drop(shard);
    context.reply.integer(deleted);
    Ok(())
}

/// HEXISTS key field
fn hexists(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    expire_field_if_due(&mut shard, args[1], args[2], context.now_ms);
    let exists = read_hash(&mut shard, args[1], context.now_ms, |hash| {
        hash.contains(args[2])
    })?
    .unwrap_or(false);
    drop(shard);
    context.reply.integer(exists as i64);
    Ok(())
}

/// HLEN key
fn hlen(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let length = read_hash(&mut shard, args[1], context.now_ms, Hash::len)?.unwrap_or(0);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// HSTRLEN key field
fn hstrlen(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    expire_field_if_due(&mut shard, args[1], args[2], context.now_ms);
    let length = read_hash(&mut shard, args[1], context.now_ms, |hash| {
        hash.get(args[2]).map_or(0, |value| value.len())
    })?
    .unwrap_or(0);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// What HKEYS, HVALS and HGETALL reply with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    Fields,
    Values,
    Both,
}

fn list_hash(context: &mut Context, args: &[&[u8]], listing: Listing) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    let now_ms = context.now_ms;
    let found = read_hash(&mut shard, args[1], now_ms, |hash| {
        // Expired fields not removed yet are skipped, not deleted (Redis 7.4).
        let live = || {
            hash.iter_with_expiry()
                .filter(|(_, _, expire_at_ms)| !is_field_expired(*expire_at_ms, now_ms))
                .map(|(field, value, _)| (field, value))
        };
        let length = if hash.has_field_expiries() {
            live().count()
        } else {
            hash.len()
        };
        match listing {
            Listing::Both => reply.map(length),
            Listing::Fields | Listing::Values => reply.array(length),
        }
        for (field, value) in live() {
            if listing != Listing::Values {
                reply_element(reply, field);
            }
            if listing != Listing::Fields {
                reply_element(reply, value);
            }
        }
    })?;
    if found.is_none() {
        match listing {
            Listing::Both => reply.map(0),
            Listing::Fields | Listing::Values => reply.array(0),
        }
    }
    Ok(())
}

/// HKEYS key
fn hkeys(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    list_hash(context, args, Listing::Fields)
}

/// HVALS key
fn hvals(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    list_hash(context, args, Listing::Values)
}

/// HGETALL key
fn hgetall(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    list_hash(context, args, Listing::Both)
}

/// HINCRBY key field increment
fn hincrby(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let increment = arguments::integer(args[3])?;
    let limits = hash_limits(context);
    let (key, field) = (args[1], args[2]);
    let mut shard = context.lock(key);
    expire_field_if_due(&mut shard, key, field, context.now_ms);
    let result = update_hash(&mut shard, key, context.now_ms, Missing::Create, |hash| {
        let current = match hash.get(field) {
            None => 0,
            Some(value) => value
                .as_integer()
                .ok_or_else(|| CommandError::from("ERR hash value is not an integer"))?,
        };
        let updated = current
            .checked_add(increment)
            .ok_or_else(|| CommandError::from(errors::OVERFLOW))?;
        let text = itoa::Buffer::new().format(updated).as_bytes().to_vec();
        hash.set(field, &text, FieldTtl::Keep, &limits);
        Ok::<i64, CommandError>(updated)
    })?
    .expect("created when missing")?;
    shard.propagate(args);
    context.notify(EventClass::Hash, "hincrby", key);
    drop(shard);
    context.reply.integer(result);
    Ok(())
}

/// HINCRBYFLOAT key field increment
fn hincrbyfloat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let increment = arguments::float(args[3])?;
    if !increment.is_finite() {
        return Err("ERR value is NaN or Infinity".into());
    }
    let limits = hash_limits(context);
    let (key, field) = (args[1], args[2]);
    let mut shard = context.lock(key);
    expire_field_if_due(&mut shard, key, field, context.now_ms);
    let text = update_hash(&mut shard, key, context.now_ms, Missing::Create, |hash| {
        // Computed in Redis's long double arithmetic, formatted as Redis formats it.
        let current = hash.get(field).map(|value| value.to_vec());
        let text =
            store::number::increment_by_float(current.as_deref(), args[3]).map_err(|error| {
                match error {
                    store::number::LongDoubleError::NotAFloat => {
                        CommandError::from("ERR hash value is not a float")
                    }
                    store::number::LongDoubleError::NotFinite => {
                        CommandError::from("ERR increment would produce NaN or Infinity")
                    }
                }
            })?;
        hash.set(field, text.as_bytes(), FieldTtl::Keep, &limits);
        Ok::<String, CommandError>(text)
    })?
    .expect("created when missing")?;
    // Propagated as HSET with the result, so replicas and the AOF never round differently.
    shard.propagate(&[b"HSET", key, field, text.as_bytes()]);
    context.notify(EventClass::Hash, "hincrbyfloat", key);
    drop(shard);
    context.reply.bulk(text.as_bytes());
    Ok(())
}

/// Writes one field (and its value) of HRANDFIELD's reply.
fn reply_random_field(
    reply: &mut ReplyWriter,
    field: Element<'_>,
    value: Element<'_>,
    with_values: bool,
) {
    if with_values && reply.is_resp3() {
        reply.array(2);
    }
    reply_element(reply, field);
    if with_values {
        reply_element(reply, value);
    }
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() == 2 {
        let mut shard = context.lock(args[1]);
        read_hash(&mut shard, args[1], context.now_ms, |_| ())?;
        // Every due field goes first (Redis 7.4).
        expire_hash_fields(&mut shard, args[1], context.now_ms, usize::MAX);
        let reply = &mut context.reply;
        let found = read_hash(&mut shard, args[1], context.now_ms, |hash| {
            let sampler = hash.sampler();
            let index = rand::rng().random_range(0..sampler.len());
            reply_element(reply, sampler.get(index).0);
        })?;
        if found.is_none() {
            reply.null();
        }
        return Ok(());
    }
    let count = arguments::integer(args[2])?;
    if count == i64::MIN {
        return Err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                .into(),
        );
    }
    let with_values = match args.get(3) {
        None => false,
        Some(word) if args.len() == 4 && is(word, "withvalues") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
    };
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    let mut shard = context.lock(args[1]);
    read_hash(&mut shard, args[1], context.now_ms, |_| ())?;
    expire_hash_fields(&mut shard, args[1], context.now_ms, usize::MAX);
    let reply = &mut context.reply;
    let found = read_hash(&mut shard, args[1], context.now_ms, |hash| {
        let sampler = hash.sampler();
        let size = sampler.len();
        let mut rng = rand::rng();
        let wanted = count.unsigned_abs() as usize;
        if wanted == 0 {
            reply.array(0);
            return;
        }
        let flat_pairs = with_values && !reply.is_resp3();
        if count < 0 || wanted == 1 {
            // With repetitions (or just one): independent picks.
            reply.array(if flat_pairs { wanted * 2 } else { wanted });
            for _ in 0..wanted {
                let (field, value) = sampler.get(rng.random_range(0..size));
                reply_random_field(reply, field, value, with_values);
            }
            return;
        }
        let returned = wanted.min(size);
        reply.array(if flat_pairs { returned * 2 } else { returned });
        if wanted >= size {
            for (field, value) in hash.iter() {
                reply_random_field(reply, field, value, with_values);
            }
            return;
        }
        let mut indices = rand::seq::index::sample(&mut rng, size, wanted).into_vec();
        if sampler.is_ordered() {
            indices.sort_unstable();
        }
        for index in indices {
            let (field, value) = sampler.get(index);
            reply_random_field(reply, field, value, with_values);
        }
    })?;
    if found.is_none() {
        reply.array(0);
    }
    Ok(())
}

/// A SCAN cursor (shared with SSCAN).
pub(crate) fn parse_scan_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    arguments::scan_cursor(arg)
}

/// The options of HSCAN and SSCAN.
pub(crate) struct ScanOptions {
    pub count: usize,
    pub pattern: Option<Pattern>,
    /// HSCAN's NOVALUES (Redis 7.4).
    pub no_values: bool,
}

impl ScanOptions {
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|pattern| pattern.matches(item))
    }
}

/// Which scan parses its options (NOVALUES is HSCAN's only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanKind {
    Hash,
    Set,
}

/// Parses `[MATCH pattern] [COUNT count] [NOVALUES]` as Redis's `scanGenericCommand`.
pub(crate) fn parse_scan_options(
    options: &[&[u8]],
    kind: ScanKind,
) -> Result<ScanOptions, CommandError> {
    let mut parsed = ScanOptions {
        count: 10,
        pattern: None,
        no_values: false,
    };
    let mut index = 0;
    while index < options.len() {
        let remaining = options.len() - index;
        let option = options[index];
        if is(option, "count") && remaining >= 2 {
            let count = arguments::integer(options[index + 1])?;
            if count < 1 {
                return Err(errors::SYNTAX.into());
            }
            parsed.count = count as usize;
            index += 2;
        } else if is(option, "match") && remaining >= 2 {
            let pattern = options[index + 1];
            parsed.pattern = (pattern != b"*").then(|| Pattern::new(pattern, false));
            index += 2;
        } else if is(option, "novalues") && kind == ScanKind::Hash {
            parsed.no_values = true;
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    Ok(parsed)
}

/// Writes a scan reply: the next cursor, then the items.
pub(crate) fn reply_scan<'a>(
    reply: &mut ReplyWriter,
    cursor: u64,
    items: impl ExactSizeIterator<Item = Element<'a>>,
) {
    reply.array(2);
    let mut text = itoa::Buffer::new();
    reply.bulk(text.format(cursor).as_bytes());
    reply.array(items.len());
    for item in items {
        reply_element(reply, item);
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
fn hscan(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let cursor = parse_scan_cursor(args[2])?;
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    let now_ms = context.now_ms;
    let found = read_hash(&mut shard, args[1], now_ms, |hash| {
        let options = parse_scan_options(&args[3..], ScanKind::Hash)?;
        let (next, entries) = hash.scan(cursor, options.count);
        let mut items: Vec<Element> = Vec::with_capacity(entries.len() * 2);
        for (field, value, expire_at_ms) in entries {
            if !is_field_expired(expire_at_ms, now_ms)
                && field.with_bytes(|field| options.matches(field))
            {
                items.push(field);
                if !options.no_values {
                    items.push(value);
                }
            }
        }
        reply_scan(reply, next, items.into_iter());
        Ok::<(), CommandError>(())
    })?;
    match found {
        None => reply_scan(reply, 0, std::iter::empty()),
        Some(result) => result?,
    }
    Ok(())
}

// ---- Field expiry (Redis 7.4) ----

/// `FIELDS numfields field ...` starting at `args[at]`: the fields, or Redis 7.4's errors.
fn parse_fields<'a>(
    args: &'a [&'a [u8]],
    at: usize,
    count_error: &'static str,
) -> Result<&'a [&'a [u8]], CommandError> {
    if !args.get(at).is_some_and(|word| is(word, "fields")) {
        return Err("ERR Mandatory argument FIELDS is missing or not at the right position".into());
    }
    let count = args
        .get(at + 1)
        .and_then(|count| parse_i64(count))
        .filter(|&count| count >= 1)
        .ok_or_else(|| CommandError::from(count_error))?;
    let fields = &args[at + 2..];
    if count as u64 != fields.len() as u64 {
        return Err("ERR The `numfields` parameter must match the number of arguments".into());
    }
    Ok(fields)
}

/// HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
fn hexpire(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_fields(context, args, ExpireTime::Seconds)
}

/// HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
fn hpexpire(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_fields(context, args, ExpireTime::Milliseconds)
}

/// HEXPIREAT key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
fn hexpireat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_fields(context, args, ExpireTime::UnixSeconds)
}

/// HPEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
fn hpexpireat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    expire_fields(context, args, ExpireTime::UnixMilliseconds)
}

/// Checks the type of the key of a field-expiry command before its arguments (Redis 7.4's
/// order): WRONGTYPE for another type.
fn check_hash_type(shard: &mut Locked<'_>, key: &[u8], now_ms: u64) -> CommandResult {
    read_hash(shard, key, now_ms, |_| ())?;
    Ok(())
}

fn expire_fields(context: &mut Context, args: &[&[u8]], time: ExpireTime) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    check_hash_type(&mut shard, key, now_ms)?;
    let invalid_time = || {
        CommandError::from(format!(
            "ERR invalid expire time in '{}' command",
            context.command.full_name
        ))
    };
    let mut amount = arguments::integer(args[2])?;
    if amount < 0 {
        return Err("ERR invalid expire time, must be >= 0".into());
    }
    if matches!(time, ExpireTime::Seconds | ExpireTime::UnixSeconds) {
        if amount > FIELD_EXPIRY_MAX_MS / 1000 {
            return Err(invalid_time());
        }
        amount *= 1000;
    }
    let base_ms = match time {
        ExpireTime::Seconds | ExpireTime::Milliseconds => now_ms as i64,
        ExpireTime::UnixSeconds | ExpireTime::UnixMilliseconds => 0,
    };
    if amount > FIELD_EXPIRY_MAX_MS - base_ms {
        return Err(invalid_time());
    }
    let expire_at_ms = (amount + base_ms) as u64;
    let (condition, fields_at) = match args[3] {
        word if is(word, "nx") => (ExpireCondition::IfNone, 4),
        word if is(word, "xx") => (ExpireCondition::IfSome, 4),
        word if is(word, "gt") => (ExpireCondition::IfLater, 4),
        word if is(word, "lt") => (ExpireCondition::IfEarlier, 4),
        _ => (ExpireCondition::Always, 3),
    };
    let fields = parse_fields(
        args,
        fields_at,
        "ERR Parameter `numFields` should be greater than 0",
    )?;
    let outcomes = update_hash(&mut shard, key, now_ms, Missing::Skip, |hash| {
        hash.prepare_for_field_expiry();
        fields
            .iter()
            .map(|field| hash.expire_field(field, expire_at_ms.max(1), condition, now_ms))
            .collect::<Vec<_>>()
    })?;
    if outcomes.is_some() {
        shard.track_field_expiry(key);
    }
    let Some(outcomes) = outcomes else {
        drop(shard);
        context.reply.array(fields.len());
        for _ in fields {
            context.reply.integer(-2);
        }
        return Ok(());
    };
    // Deleted fields propagate as HDEL; the fields whose expiry was set as one HPEXPIREAT with
    // the absolute time (keeping the condition), as Redis 7.4 rewrites the command.
    let mut set_fields: Vec<&[u8]> = Vec::new();
    for (field, outcome) in fields.iter().zip(&outcomes) {
        match outcome {
            store::hash::ExpireOutcome::Deleted => shard.propagate(&[b"HDEL", key, field]),
            store::hash::ExpireOutcome::Set => set_fields.push(field),
            _ => {}
        }
    }
    if !set_fields.is_empty() {
        let time_text = itoa::Buffer::new().format(expire_at_ms).to_string();
        let count_text = itoa::Buffer::new().format(set_fields.len()).to_string();
        let mut propagated: Vec<&[u8]> = vec![b"HPEXPIREAT", key, time_text.as_bytes()];
        if condition != ExpireCondition::Always {
            propagated.push(args[3]);
        }
        propagated.push(b"FIELDS");
        propagated.push(count_text.as_bytes());
        propagated.extend(set_fields);
        shard.propagate(&propagated);
    }
    // Redis 7.4: one event for the command, `hdel` when it deleted fields (a time in the past),
    // then `del` when that emptied the hash.
    let deleted = outcomes
        .iter()
        .any(|outcome| *outcome == store::hash::ExpireOutcome::Deleted);
    if deleted {
        context.notify_removal(EventClass::Hash, "hdel", &shard, key);
    } else if outcomes
        .iter()
        .any(|outcome| *outcome == store::hash::ExpireOutcome::Set)
    {
        context.notify(EventClass::Hash, "hexpire", key);
    }
    drop(shard);
    context.reply.array(outcomes.len());
    for outcome in outcomes {
        context.reply.integer(outcome.code());
    }
    Ok(())
}

/// What the HTTL family replies with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpiryQuery {
    /// HTTL: seconds left, rounded up.
    TtlSeconds,
    /// HPTTL: milliseconds left.
    TtlMilliseconds,
    /// HEXPIRETIME: Unix seconds, rounded up.
    UnixSeconds,
    /// HPEXPIRETIME: Unix milliseconds.
    UnixMilliseconds,
}

/// HTTL key FIELDS numfields field [field ...]
fn httl(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    query_field_expiry(context, args, ExpiryQuery::TtlSeconds)
}

/// HPTTL key FIELDS numfields field [field ...]
fn hpttl(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    query_field_expiry(context, args, ExpiryQuery::TtlMilliseconds)
}

/// HEXPIRETIME key FIELDS numfields field [field ...]
fn hexpiretime(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    query_field_expiry(context, args, ExpiryQuery::UnixSeconds)
}

/// HPEXPIRETIME key FIELDS numfields field [field ...]
fn hpexpiretime(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    query_field_expiry(context, args, ExpiryQuery::UnixMilliseconds)
}

const FIELD_COUNT_ERROR: &str = "ERR Number of fields must be a positive integer";

fn query_field_expiry(context: &mut Context, args: &[&[u8]], query: ExpiryQuery) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    check_hash_type(&mut shard, key, now_ms)?;
    let fields = parse_fields(args, 2, FIELD_COUNT_ERROR)?;
    let codes = read_hash(&mut shard, key, now_ms, |hash| {
        fields
            .iter()
            .map(|field| match hash.field_expiry(field) {
                FieldExpiry::NoField => -2,
                FieldExpiry::Persistent => -1,
                // Expired, not removed yet: gone (at its very millisecond already, for a
                // listpack, as in Redis 7.4).
                FieldExpiry::At(at)
                    if is_field_expired(at, now_ms) || (!hash.is_table() && at == now_ms) =>
                {
                    -2
                }
                FieldExpiry::At(at) => {
                    let at = at as i64;
                    let now = now_ms as i64;
                    match query {
                        ExpiryQuery::TtlSeconds => (at + 999 - now) / 1000,
                        ExpiryQuery::TtlMilliseconds => at - now,
                        ExpiryQuery::UnixSeconds => (at + 999) / 1000,
                        ExpiryQuery::UnixMilliseconds => at,
                    }
                }
            })
            .collect::<Vec<i64>>()
    })?
    .unwrap_or_else(|| vec![-2; fields.len()]);
    drop(shard);
    context.reply.array(codes.len());
    for code in codes {
        context.reply.integer(code);
    }
    Ok(())
}

/// HPERSIST key FIELDS numfields field [field ...]
fn hpersist(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    check_hash_type(&mut shard, key, now_ms)?;
    let fields = parse_fields(args, 2, FIELD_COUNT_ERROR)?;
    let outcomes = update_hash(&mut shard, key, now_ms, Missing::Skip, |hash| {
        fields
            .iter()
            .map(|field| match hash.field_expiry(field) {
                // Expired, not removed yet: as if absent (Redis 7.4).
                FieldExpiry::At(at) if is_field_expired(at, now_ms) => {
                    store::hash::PersistOutcome::NoField
                }
                _ => hash.persist_field(field),
            })
            .collect::<Vec<_>>()
    })?;
    let codes: Vec<i64> = match outcomes {
        None => vec![-2; fields.len()],
        Some(outcomes) => {
            if outcomes.contains(&store::hash::PersistOutcome::Persisted) {
                shard.propagate(args);
                context.notify(EventClass::Hash, "hpersist", key);
            }
            outcomes.iter().map(|outcome| outcome.code()).collect()
        }
    };
    drop(shard);
    context.reply.array(codes.len());
    for code in codes {
        context.reply.integer(code);
    }
    Ok(())
}

/// An in-process server whose propagation stream is recorded, to check what writes propagate.
#[cfg(test)]
mod tests {
    use crate::server::unix_time_ms;
    use crate::testing::Harness;

    #[test]
    fn writes_propagate_as_redis_propagates() {
        let mut harness = Harness::new();
        harness.run("HSET h a 1 b 2");
        harness.run("HSET h a 1");
        harness.run("HMSET h c 3");
        assert_eq!(
            harness.propagated(),
            ["HSET h a 1 b 2", "HSET h a 1", "HMSET h c 3"]
        );
        // Writes that change nothing propagate nothing.
        harness.run("HSETNX h a 9");
        harness.run("HDEL h nope");
        harness.run("HDEL nokey a");
        harness.run("HGET h a");
        harness.run("HPERSIST h FIELDS 1 a");
        harness.run("HEXPIRE h 100 XX FIELDS 1 a");
        harness.run("HEXPIRE nokey 100 FIELDS 1 a");
        assert!(harness.propagated().is_empty());
        harness.run("HSETNX h d 4");
        harness.run("HDEL h d nope");
        harness.run("HINCRBY h a 5");
        assert_eq!(
            harness.propagated(),
            ["HSETNX h d 4", "HDEL h d nope", "HINCRBY h a 5"]
        );
        // HINCRBYFLOAT propagates the result.
        assert_eq!(harness.run("HINCRBYFLOAT h f 1.5"), "$3\r\n1.5\r\n");
        harness.run("HINCRBYFLOAT h f 0.25");
        assert_eq!(harness.propagated(), ["HSET h f 1.5", "HSET h f 1.75"]);
    }

    #[test]
    fn field_expiry_propagates_absolute_times_and_deletions() {
        let mut harness = Harness::new();
        harness.run("HSET h a 1 b 2 c 3");
        harness.propagated();
        let before = unix_time_ms();
        harness.run("HEXPIRE h 100 NX FIELDS 3 a nope b");
        let after = unix_time_ms();
        let propagated = harness.propagated();
        assert_eq!(propagated.len(), 1);
        let words: Vec<&str> = propagated[0].split(' ').collect();
        assert_eq!(words[..2], ["HPEXPIREAT", "h"]);
        let at: u64 = words[2].parse().unwrap();
        assert!((before + 100_000..=after + 100_000).contains(&at));
        assert_eq!(words[3..], ["NX", "FIELDS", "2", "a", "b"]);
        // Already due: HDEL, and no HPEXPIREAT when nothing else was set.
        harness.run("HPEXPIREAT h 1 FIELDS 2 a nope");
        assert_eq!(harness.propagated(), ["HDEL h a"]);
        harness.run("HPEXPIREAT h 4000000000000 FIELDS 1 c");
        assert_eq!(
            harness.propagated(),
            ["HPEXPIREAT h 4000000000000 FIELDS 1 c"]
        );
        harness.run("HPERSIST h FIELDS 2 c nope");
        assert_eq!(harness.propagated(), ["HPERSIST h FIELDS 2 c nope"]);
        // Fields found expired are deleted with HDEL; the key goes with its last field.
        harness.run("HPEXPIRE h 1 FIELDS 1 b");
        harness.propagated();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while harness.run("HEXISTS h b") != ":0\r\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "field b never expired"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(harness.propagated(), ["HDEL h b"]);
        harness.run("HPEXPIRE h 1 FIELDS 1 c");
        harness.propagated();
        while harness.run("HEXISTS h c") != ":0\r\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "field c never expired"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(harness.propagated(), ["HDEL h c"]);
        assert_eq!(harness.run("EXISTS h"), ":0\r\n");
    }

    #[test]
    fn active_field_expiry_removes_due_fields_and_empty_hashes() {
        let mut harness = Harness::new();
        harness.run("HSET h a 1 b 2");
        harness.run("HSET gone x 1");
        harness.run("HSET other a 1");
        let now = unix_time_ms();
        harness.run(&format!("HPEXPIREAT h {} FIELDS 1 a", now + 50));
        harness.run(&format!("HPEXPIREAT gone {} FIELDS 1 x", now + 50));
        harness.run(&format!("HPEXPIREAT other {} FIELDS 1 a", now + 100_000));
        harness.propagated();
        let later = now + 60;
        let mut removed = 0;
        for key in [&b"h"[..], b"gone", b"other"] {
            let mut shard = harness
                .server
                .lock_shard(0, store::keyspace::shard_index(key));
            removed += super::expire_hash_fields_in_shard(&mut shard, later, usize::MAX);
        }
        assert_eq!(removed, 2);
        let mut propagated = harness.propagated();
        propagated.sort();
        assert_eq!(propagated, ["HDEL gone x", "HDEL h a"]);
        assert_eq!(harness.run("HLEN h"), ":1\r\n");
        assert_eq!(harness.run("EXISTS gone"), ":0\r\n");
        assert_eq!(harness.run("HLEN other"), ":1\r\n");
        // The limit holds.
        harness.run("HSET many a 1 b 2 c 3");
        harness.run(&format!("HPEXPIREAT many {} FIELDS 3 a b c", now + 50));
        let mut shard = harness
            .server
            .lock_shard(0, store::keyspace::shard_index(b"many"));
        assert_eq!(super::expire_hash_fields_in_shard(&mut shard, later, 2), 2);
        drop(shard);
        assert_eq!(harness.run("HLEN many"), ":1\r\n");
        let mut shard = harness
            .server
            .lock_shard(0, store::keyspace::shard_index(b"many"));
        assert_eq!(super::expire_hash_fields_in_shard(&mut shard, later, 2), 1);
        drop(shard);
        assert_eq!(harness.run("EXISTS many"), ":0\r\n");
    }
}
