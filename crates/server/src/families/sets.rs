//! Set commands: SADD, SREM, SPOP and the rest of Redis 7.2's set family.
//!
//! Multi-key commands (SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD) lock every key at
//! once, then take the source entries out of their shards for the duration of the command (so
//! that several sets can be read together even when they share a shard) and put them back,
//! untouched, before writing any destination.

use std::sync::atomic::Ordering;

use hashbrown::HashMap;
use rand::Rng;
use resp::ReplyWriter;
use store::set::Member;
use store::{Entry, Set, SetLimits, Value};

use crate::arguments::{self, is};
use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context, Locked, LockedMany};
use crate::families::hashes::{
    parse_scan_cursor, parse_scan_options, reply_element, reply_scan, ScanKind,
};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("sadd", sadd);
    table.handle("srem", srem);
    table.handle("scard", scard);
    table.handle("sismember", sismember);
    table.handle("smismember", smismember);
    table.handle("smembers", smembers);
    table.handle("srandmember", srandmember);
    table.handle("spop", spop);
    table.handle("smove", smove);
    table.handle("sinter", sinter);
    table.handle("sintercard", sintercard);
    table.handle("sinterstore", sinterstore);
    table.handle("sunion", sunion);
    table.handle("sunionstore", sunionstore);
    table.handle("sdiff", sdiff);
    table.handle("sdiffstore", sdiffstore);
    table.handle("sscan", sscan);
}

/// Most members one propagated SREM carries (Redis batches SPOP's SREMs by 1024).
const SREM_BATCH: usize = 1024;

/// The set encoding limits, from the hot configuration.
fn set_limits(context: &Context) -> SetLimits {
    let hot = &context.server.config.hot;
    SetLimits {
        intset_entries: hot.set_max_intset_entries.load(Ordering::Relaxed) as usize,
        listpack_entries: hot.set_max_listpack_entries.load(Ordering::Relaxed) as usize,
        listpack_value: hot.set_max_listpack_value.load(Ordering::Relaxed) as usize,
    }
}

fn reply_member(reply: &mut ReplyWriter, member: Member<'_>) {
    reply_element(reply, member);
}

/// Runs `read` on the set at `key`. `Ok(None)` when missing.
fn read_set<R>(
    shard: &mut Locked<'_>,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(&Set) -> R,
) -> Result<Option<R>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.value() {
            Value::Set(set) => Ok(Some(read(set))),
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

/// Runs `change` on the set at `key` (`Ok(None)` when missing); deletes the key when the set
/// ends up empty.
fn update_set<R>(
    shard: &mut Locked<'_>,
    key: &[u8],
    now_ms: u64,
    change: impl FnOnce(&mut Set) -> R,
) -> Result<Option<R>, CommandError> {
    let (result, emptied) = {
        let Some(mut entry) = shard.lookup(key, now_ms) else {
            return Ok(None);
        };
        let Value::Set(set) = entry.value_mut() else {
            return Err(errors::WRONG_TYPE.into());
        };
        let result = change(set);
        (result, set.is_empty())
    };
    if emptied {
        shard.remove(key, now_ms);
    }
    Ok(Some(result))
}

/// SADD key member [member ...]
fn sadd(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let limits = set_limits(context);
    let key = args[1];
    let members = &args[2..];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let added = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let Value::Set(set) = entry.value_mut() else {
                return Err(errors::WRONG_TYPE.into());
            };
            set.maybe_convert(members.len(), &limits);
            members
                .iter()
                .filter(|member| set.add(member, &limits))
                .count()
        }
        None => {
            let mut set = Set::create_for(members[0], members.len(), &limits);
            let added = members
                .iter()
                .filter(|member| set.add(member, &limits))
                .count();
            shard.insert(key, Value::Set(Box::new(set)), None, now_ms);
            added
        }
    };
    if added > 0 {
        shard.propagate(args);
        context.notify(EventClass::Set, "sadd", key);
    }
    drop(shard);
    context.reply.integer(added as i64);
    Ok(())
}

/// SREM key member [member ...]
fn srem(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let removed = update_set(&mut shard, args[1], context.now_ms, |set| {
        let mut removed = 0;
        for member in &args[2..] {
            if set.remove(member) {
                removed += 1;
                if set.is_empty() {
                    break;
                }
            }
        }
        removed
    })?
    .unwrap_or(0);
    if removed > 0 {
        shard.propagate(args);
        context.notify_removal(EventClass::Set, "srem", &shard, args[1]);
    }
    drop(shard);
    context.reply.integer(removed);
    Ok(())
}

/// SCARD key
fn scard(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let length = read_set(&mut shard, args[1], context.now_ms, Set::len)?.unwrap_or(0);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// SISMEMBER key member
fn sismember(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let found = read_set(&mut shard, args[1], context.now_ms, |set| {
        set.contains(args[2])
    })?
    .unwrap_or(false);
    drop(shard);
    context.reply.integer(found as i64);
    Ok(())
}

/// SMISMEMBER key member [member ...]
fn smismember(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let members = &args[2..];
    let found = read_set(&mut shard, args[1], context.now_ms, |set| {
        members
            .iter()
            .map(|member| set.contains(member))
            .collect::<Vec<bool>>()
    })?
    .unwrap_or_else(|| vec![false; members.len()]);
    drop(shard);
    context.reply.array(found.len());
    for found in found {
        context.reply.integer(found as i64);
    }
    Ok(())
}

/// SMEMBERS key
fn smembers(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    let found = read_set(&mut shard, args[1], context.now_ms, |set| {
        reply.set(set.len());
        for member in set.iter() {
            reply_member(reply, member);
        }
    })?;
    if found.is_none() {
        reply.set(0);
    }
    Ok(())
}

/// SRANDMEMBER key [count]
fn srandmember(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let Some(count_arg) = args.get(2) else {
        let mut shard = context.lock(args[1]);
        let reply = &mut context.reply;
        let found = read_set(&mut shard, args[1], context.now_ms, |set| {
            let sampler = set.sampler();
            let index = rand::rng().random_range(0..sampler.len());
            reply_member(reply, sampler.get(index));
        })?;
        if found.is_none() {
            reply.null();
        }
        return Ok(());
    };
    let count = arguments::integer(count_arg)?;
    if count == i64::MIN {
        return Err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                .into(),
        );
    }
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    let found = read_set(&mut shard, args[1], context.now_ms, |set| {
        let wanted = count.unsigned_abs() as usize;
        let mut rng = rand::rng();
        if wanted == 0 {
            reply.array(0);
            return;
        }
        let sampler = set.sampler();
        let size = sampler.len();
        if count < 0 || wanted == 1 {
            reply.array(wanted);
            for _ in 0..wanted {
                reply_member(reply, sampler.get(rng.random_range(0..size)));
            }
            return;
        }
        if wanted >= size {
            reply.array(size);
            for member in set.iter() {
                reply_member(reply, member);
            }
            return;
        }
        let members = set.random_distinct(wanted, &mut rng);
        reply.array(members.len());
        for member in members {
            reply_member(reply, member);
        }
    })?;
    if found.is_none() {
        reply.array(0);
    }
    Ok(())
}

/// SPOP key [count]
fn spop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let key = args[1];
    let now_ms = context.now_ms;
    let Some(count_arg) = args.get(2) else {
        let mut shard = context.lock(key);
        let popped = update_set(&mut shard, key, now_ms, |set| {
            set.pop_random(&mut rand::rng())
        })?;
        match popped {
            None => {
                drop(shard);
                context.reply.null();
            }
            Some(member) => {
                shard.propagate(&[b"SREM", key, &member]);
                context.notify_removal(EventClass::Set, "spop", &shard, key);
                drop(shard);
                context.reply.bulk(&member);
            }
        }
        return Ok(());
    };
    let count = arguments::integer(count_arg)
        .ok()
        .filter(|&count| count >= 0)
        .ok_or_else(|| CommandError::from(errors::NOT_POSITIVE))? as usize;
    let limits = set_limits(context);
    let lazy_delete = context
        .server
        .config
        .hot
        .lazyfree_lazy_server_del
        .load(Ordering::Relaxed);
    let mut shard = context.lock(key);
    let size = read_set(&mut shard, key, now_ms, Set::len)?;
    let Some(size) = size else {
        drop(shard);
        context.reply.set(0);
        return Ok(());
    };
    if count == 0 {
        drop(shard);
        context.reply.set(0);
        return Ok(());
    }
    if count >= size {
        // The whole set goes: reply with it, delete the key, propagate DEL (UNLINK with
        // lazyfree-lazy-server-del).
        let entry = shard.remove(key, now_ms).expect("the set exists");
        let Value::Set(set) = &entry.value else {
            unreachable!("checked to be a set");
        };
        context.reply.set(set.len());
        for member in set.iter() {
            reply_member(&mut context.reply, member);
        }
        let command: &[u8] = if lazy_delete { b"UNLINK" } else { b"DEL" };
        shard.propagate(&[command, key]);
        context.notify_removal(EventClass::Set, "spop", &shard, key);
        return Ok(());
    }
    let popped = update_set(&mut shard, key, now_ms, |set| {
        set.pop_random_many(count, &mut rand::rng(), &limits)
    })?
    .expect("the set exists");
    for batch in popped.chunks(SREM_BATCH) {
        let mut propagated: Vec<&[u8]> = Vec::with_capacity(batch.len() + 2);
        propagated.push(b"SREM");
        propagated.push(key);
        propagated.extend(batch.iter().map(Vec::as_slice));
        shard.propagate(&propagated);
    }
    context.notify_removal(EventClass::Set, "spop", &shard, key);
    drop(shard);
    context.reply.set(popped.len());
    for member in &popped {
        context.reply.bulk(member);
    }
    Ok(())
}

/// SMOVE source destination member
fn smove(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (source, destination, member) = (args[1], args[2], args[3]);
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys([source, destination]);
    let source_is_set = match locked.shard(database, source).lookup(source, now_ms) {
        None => {
            drop(locked);
            context.reply.integer(0);
            return Ok(());
        }
        Some(entry) => matches!(entry.value(), Value::Set(_)),
    };
    let destination_is_set = locked
        .shard(database, destination)
        .lookup(destination, now_ms)
        .map(|entry| matches!(entry.value(), Value::Set(_)));
    if !source_is_set || destination_is_set == Some(false) {
        return Err(errors::WRONG_TYPE.into());
    }
    if source == destination {
        let shard = locked.shard(database, source);
        let found = shard
            .lookup(source, now_ms)
            .and_then(|entry| entry.value().as_set().map(|set| set.contains(member)))
            .unwrap_or(false);
        drop(locked);
        context.reply.integer(found as i64);
        return Ok(());
    }
    let (removed, emptied) = {
        let shard = locked.shard(database, source);
        let mut entry = shard.lookup(source, now_ms).expect("checked above");
        let set = entry.value_mut().as_set_mut().expect("checked to be a set");
        let removed = set.remove(member);
        (removed, set.is_empty())
    };
    if !removed {
        drop(locked);
        context.reply.integer(0);
        return Ok(());
    }
    if emptied {
        locked.shard(database, source).remove(source, now_ms);
    }
    // Redis's order: the source's events, then the destination's (`new` included).
    context.server.notify_removal(
        EventClass::Set,
        "srem",
        database,
        locked.shard(database, source),
        source,
        now_ms,
    );
    // The destination changes (its watchers and `sadd` event) only when the member is new to it.
    let shard = locked.shard(database, destination);
    let already_there = shard.lookup(destination, now_ms).map(|entry| {
        entry
            .value()
            .as_set()
            .is_some_and(|set| set.contains(member))
    });
    match already_there {
        Some(true) => {}
        Some(false) => {
            let mut entry = shard.lookup(destination, now_ms).expect("found above");
            let set = entry.value_mut().as_set_mut().expect("checked to be a set");
            set.add(member, &limits);
        }
        None => {
            let mut set = Set::create_for(member, 1, &limits);
            set.add(member, &limits);
            shard.insert(destination, Value::Set(Box::new(set)), None, now_ms);
        }
    }
    if already_there == Some(true) {
        let changed = [source];
        locked.propagate_changing(database, args, crate::context::Changed::Only(&changed));
    } else {
        locked.propagate(database, args);
        context.notify(EventClass::Set, "sadd", destination);
    }
    drop(locked);
    context.reply.integer(1);
    Ok(())
}

/// One source set of a multi-key command; `id` tells repeated keys apart from equal sets.
struct Source<'a> {
    id: usize,
    set: &'a Set,
}

/// Runs `work` on the sets at `keys` (`None` for missing keys, in key order), or fails with
/// WRONGTYPE if any key holds another type. The entries are taken out of their locked shards
/// while `work` runs and put back untouched afterwards.
fn with_sets<R>(
    locked: &mut LockedMany<'_>,
    database: usize,
    keys: &[&[u8]],
    now_ms: u64,
    work: impl FnOnce(&[Option<Source<'_>>]) -> R,
) -> Result<R, CommandError> {
    let mut taken: Vec<(&[u8], Box<Entry>)> = Vec::new();
    let mut seen: HashMap<&[u8], Option<usize>> = HashMap::new();
    let mut ids: Vec<Option<usize>> = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(id) = seen.get(key) {
            ids.push(*id);
            continue;
        }
        let shard = locked.shard(database, key);
        let id = if shard.lookup(key, now_ms).is_some() {
            shard.remove(key, now_ms).map(|entry| {
                taken.push((key, entry));
                taken.len() - 1
            })
        } else {
            None
        };
        seen.insert(key, id);
        ids.push(id);
    }
    let result = {
        let sources: Option<Vec<Option<Source>>> = ids
            .iter()
            .map(|id| match id {
                None => Some(None),
                Some(id) => match &taken[*id].1.value {
                    Value::Set(set) => Some(Some(Source { id: *id, set })),
                    _ => None,
                },
            })
            .collect();
        match sources {
            Some(sources) => Ok(work(&sources)),
            None => Err(CommandError::from(errors::WRONG_TYPE)),
        }
    };
    for (key, entry) in taken {
        locked.shard(database, key).put_back(entry);
    }
    result
}

/// Which combination of sets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Union,
    Difference,
}

/// What an intersection produces.
enum Intersection<'a> {
    /// SINTER: the members.
    Members(Vec<Member<'a>>),
    /// SINTERCARD: how many, up to a limit (0: none).
    Count(usize),
    /// SINTERSTORE: a new set.
    Stored(Set),
}

/// What an intersection is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IntersectionOutput {
    Members,
    Count { limit: usize },
    Store,
}

/// Redis's `sinterGenericCommand` on taken sets.
fn intersect<'a>(
    sources: &[Option<Source<'a>>],
    output: IntersectionOutput,
    limits: &SetLimits,
) -> Intersection<'a> {
    let empty = || match output {
        IntersectionOutput::Members => Intersection::Members(Vec::new()),
        IntersectionOutput::Count { .. } => Intersection::Count(0),
        IntersectionOutput::Store => Intersection::Stored(Set::new_intset()),
    };
    let Some(mut sets) = sources
        .iter()
        .map(|source| source.as_ref().map(|source| (source.id, source.set)))
        .collect::<Option<Vec<(usize, &Set)>>>()
    else {
        return empty();
    };
    sets.sort_by_key(|(_, set)| set.len());
    let (first_id, first) = sets[0];
    let others: Vec<&Set> = sets[1..]
        .iter()
        .filter(|(id, _)| *id != first_id)
        .map(|(_, set)| *set)
        .collect();
    let in_all = |member: Member<'_>| others.iter().all(|set| set.contains_member(member));
    match output {
        IntersectionOutput::Members => {
            Intersection::Members(first.iter().filter(|member| in_all(*member)).collect())
        }
        IntersectionOutput::Count { limit } => {
            let mut count = 0;
            for member in first.iter() {
                if in_all(member) {
                    count += 1;
                    if limit != 0 && count >= limit {
                        break;
                    }
                }
            }
            Intersection::Count(count)
        }
        IntersectionOutput::Store => {
            let mut result = if first.is_intset() {
                Set::new_intset()
            } else {
                Set::new_listpack()
            };
            for member in first.iter() {
                if in_all(member) {
                    result.add_member(member, limits);
                }
            }
            result.convert_to_intset_if_integers(limits);
            Intersection::Stored(result)
        }
    }
}

/// Redis's `sunionDiffGenericCommand` on taken sets: the result as a new set.
fn combine(sources: &[Option<Source<'_>>], operation: Combine, limits: &SetLimits) -> Set {
    let mut result = Set::new_intset();
    match operation {
        Combine::Union => {
            for source in sources.iter().flatten() {
                for member in source.set.iter() {
                    result.add_member(member, limits);
                }
            }
        }
        Combine::Difference => {
            let Some(Some(first)) = sources.first() else {
                return result;
            };
            let rest: Vec<&Source> = sources[1..].iter().flatten().collect();
            if rest.iter().any(|source| source.id == first.id) {
                // The first set minus itself.
                return result;
            }
            // Redis picks the cheaper of two algorithms (with a bias for the first).
            let first_work = first.set.len() * rest.len() / 2;
            let all_work: usize =
                first.set.len() + rest.iter().map(|source| source.set.len()).sum::<usize>();
            if first_work <= all_work {
                let mut rest = rest;
                rest.sort_by_key(|source| std::cmp::Reverse(source.set.len()));
                for member in first.set.iter() {
                    if !rest.iter().any(|source| source.set.contains_member(member)) {
                        result.add_member(member, limits);
                    }
                }
            } else {
                for member in first.set.iter() {
                    result.add_member(member, limits);
                }
                for source in rest {
                    for member in source.set.iter() {
                        member.with_bytes(|bytes| result.remove(bytes));
                    }
                    if result.is_empty() {
                        break;
                    }
                }
            }
        }
    }
    result
}

/// SINTER key [key ...]
fn sinter(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let keys = &args[1..];
    let mut locked = context.lock_keys(keys.iter().copied());
    let reply = &mut context.reply;
    with_sets(&mut locked, database, keys, now_ms, |sources| {
        let Intersection::Members(members) =
            intersect(sources, IntersectionOutput::Members, &limits)
        else {
            unreachable!("asked for members");
        };
        reply.set(members.len());
        for member in members {
            reply_member(reply, member);
        }
    })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key_count = arguments::integer(args[1])
        .ok()
        .filter(|&count| count >= 1)
        .ok_or_else(|| CommandError::from("ERR numkeys should be greater than 0"))?
        as u64;
    if key_count > (args.len() - 2) as u64 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let keys = &args[2..2 + key_count as usize];
    let mut limit = 0usize;
    let mut index = 2 + key_count as usize;
    while index < args.len() {
        if is(args[index], "limit") && index + 1 < args.len() {
            limit = arguments::integer(args[index + 1])
                .ok()
                .filter(|&limit| limit >= 0)
                .ok_or_else(|| CommandError::from("ERR LIMIT can't be negative"))?
                as usize;
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys(keys.iter().copied());
    let count = with_sets(
        &mut locked,
        database,
        keys,
        now_ms,
        |sources| match intersect(sources, IntersectionOutput::Count { limit }, &limits) {
            Intersection::Count(count) => count,
            _ => unreachable!("asked for a count"),
        },
    )?;
    drop(locked);
    context.reply.integer(count as i64);
    Ok(())
}

/// Stores `result` at `destination` (or deletes it when empty), propagates the command when
/// that changed something, and replies with the result's size.
fn store_result(
    context: &mut Context,
    locked: &mut LockedMany<'_>,
    args: &[&[u8]],
    result: Set,
    event: &str,
) -> CommandResult {
    let database = context.database();
    let destination = args[1];
    let now_ms = context.now_ms;
    let shard = locked.shard(database, destination);
    let size = result.len();
    let changed = if size > 0 {
        shard.insert(destination, Value::Set(Box::new(result)), None, now_ms);
        true
    } else {
        shard.remove(destination, now_ms).is_some()
    };
    if changed {
        locked.propagate(database, args);
        if size > 0 {
            context.notify(EventClass::Set, event, destination);
        } else {
            context.notify(EventClass::Generic, "del", destination);
        }
    }
    context.reply.integer(size as i64);
    Ok(())
}

/// SINTERSTORE destination key [key ...]
fn sinterstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let keys = &args[2..];
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let result = with_sets(
        &mut locked,
        database,
        keys,
        now_ms,
        |sources| match intersect(sources, IntersectionOutput::Store, &limits) {
            Intersection::Stored(set) => set,
            _ => unreachable!("asked for a set"),
        },
    )?;
    store_result(context, &mut locked, args, result, "sinterstore")
}

fn combine_command(context: &mut Context, args: &[&[u8]], operation: Combine) -> CommandResult {
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let keys = &args[1..];
    let mut locked = context.lock_keys(keys.iter().copied());
    let result = with_sets(&mut locked, database, keys, now_ms, |sources| {
        combine(sources, operation, &limits)
    })?;
    drop(locked);
    context.reply.set(result.len());
    for member in result.iter() {
        reply_member(&mut context.reply, member);
    }
    Ok(())
}

fn combine_store_command(
    context: &mut Context,
    args: &[&[u8]],
    operation: Combine,
) -> CommandResult {
    let limits = set_limits(context);
    let database = context.database();
    let now_ms = context.now_ms;
    let keys = &args[2..];
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let result = with_sets(&mut locked, database, keys, now_ms, |sources| {
        combine(sources, operation, &limits)
    })?;
    let event = match operation {
        Combine::Union => "sunionstore",
        Combine::Difference => "sdiffstore",
    };
    store_result(context, &mut locked, args, result, event)
}

/// SUNION key [key ...]
fn sunion(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    combine_command(context, args, Combine::Union)
}

/// SUNIONSTORE destination key [key ...]
fn sunionstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    combine_store_command(context, args, Combine::Union)
}

/// SDIFF key [key ...]
fn sdiff(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    combine_command(context, args, Combine::Difference)
}

/// SDIFFSTORE destination key [key ...]
fn sdiffstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    combine_store_command(context, args, Combine::Difference)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
fn sscan(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let cursor = parse_scan_cursor(args[2])?;
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    let found = read_set(&mut shard, args[1], context.now_ms, |set| {
        let options = parse_scan_options(&args[3..], ScanKind::Set)?;
        let (next, members) = set.scan(cursor, options.count);
        let items: Vec<Member> = members
            .into_iter()
            .filter(|member| member.with_bytes(|bytes| options.matches(bytes)))
            .collect();
        reply_scan(reply, next, items.into_iter());
        Ok::<(), CommandError>(())
    })?;
    match found {
        None => reply_scan(reply, 0, std::iter::empty()),
        Some(result) => result?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::Harness;

    #[test]
    fn writes_propagate_as_redis_propagates() {
        let mut harness = Harness::new();
        harness.run("SADD s a b");
        harness.run("SADD s a");
        harness.run("SREM s nope");
        harness.run("SREM nokey a");
        harness.run("SREM s b nope");
        assert_eq!(harness.propagated(), ["SADD s a b", "SREM s b nope"]);
        // SPOP propagates the members it popped as SREM.
        let reply = harness.run("SPOP s");
        assert_eq!(reply, "$1\r\na\r\n");
        assert_eq!(harness.propagated(), ["SREM s a"]);
        harness.run("SPOP s");
        harness.run("SPOP s 3");
        assert!(harness.propagated().is_empty());
        harness.run("SADD n 1 2 3 4 5 6 7 8 9 10");
        harness.propagated();
        let reply = harness.run("SPOP n 2");
        let popped: Vec<&str> = reply
            .split("\r\n")
            .filter(|line| !line.is_empty() && !line.starts_with(['*', '$']))
            .collect();
        assert_eq!(popped.len(), 2);
        assert_eq!(
            harness.propagated(),
            [format!("SREM n {} {}", popped[0], popped[1])]
        );
        // Popping everything deletes the key: DEL, or UNLINK with lazyfree-lazy-server-del.
        harness.run("SPOP n 100");
        assert_eq!(harness.propagated(), ["DEL n"]);
        harness.run("CONFIG SET lazyfree-lazy-server-del yes");
        harness.run("SADD n 1 2");
        harness.run("SPOP n 2");
        assert_eq!(harness.propagated(), ["SADD n 1 2", "UNLINK n"]);
        harness.run("CONFIG SET lazyfree-lazy-server-del no");
        // Big pops are batched by 1024 members.
        let members: Vec<String> = (0..3000).map(|index| format!("m{index}")).collect();
        harness.run(&format!("SADD big {}", members.join(" ")));
        harness.propagated();
        harness.run("SPOP big 2500");
        let batches: Vec<usize> = harness
            .propagated()
            .iter()
            .map(|command| {
                assert!(command.starts_with("SREM big m"));
                command.split(' ').count() - 2
            })
            .collect();
        assert_eq!(batches, [1024, 1024, 452]);
    }

    #[test]
    fn multi_key_writes_propagate_when_they_change_something() {
        let mut harness = Harness::new();
        harness.run("SADD a 1 2 3");
        harness.run("SADD b 2 3 4");
        harness.propagated();
        harness.run("SMOVE a b 9");
        harness.run("SMOVE nokey b 1");
        harness.run("SMOVE a a 1");
        harness.run("SINTERSTORE d a nokey");
        harness.run("SUNIONSTORE d nokey");
        harness.run("SDIFFSTORE d a a");
        harness.run("SINTER a b");
        harness.run("SINTERCARD 2 a b");
        assert!(harness.propagated().is_empty());
        harness.run("SMOVE a b 1");
        harness.run("SINTERSTORE d a b");
        harness.run("SUNIONSTORE u a b");
        // An empty result deletes the destination (a change) ...
        harness.run("SDIFFSTORE d a b");
        // ... once.
        harness.run("SDIFFSTORE d b b");
        assert_eq!(
            harness.propagated(),
            [
                "SMOVE a b 1",
                "SINTERSTORE d a b",
                "SUNIONSTORE u a b",
                "SDIFFSTORE d a b"
            ]
        );
    }
}
