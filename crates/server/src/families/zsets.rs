//! Sorted set commands: ZADD, ZRANGE and the rest of Redis's sorted set family, and the
//! blocking pops BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! The structure lives in `store::zset`; this file parses arguments with Redis's errors, locks,
//! calls the structure, propagates and replies. Scores are printed as Redis 7.2 prints them
//! ([`zset::format_score`]; RESP3 doubles), WITHSCORES replies are flat in RESP2 and pairs in
//! RESP3. Writes propagate verbatim, except pops that a client did not name as such: ZMPOP,
//! BZPOPMIN, BZPOPMAX and BZMPOP propagate as `ZPOPMIN|ZPOPMAX key [count]`. A write that
//! changes nothing propagates nothing; a set left empty is deleted.
//!
//! The pops are functions over a locked shard ([`pop_from_shard`]), shared by the non-blocking
//! commands and by [`ZsetPop`], the blocked clients' operation.

use hashbrown::HashMap;
use rand::Rng;
use resp::ReplyWriter;
use store::zset::{self, AddFlags, AddOutcome, End, LexRange, Limits, ScoreRange};
use store::{Shard, SortedSet, Value};

use crate::arguments::{integer, is};
use crate::blocking::{self, BlockedOperation, ServeOutcome};
use crate::command::CommandTable;
use crate::context::{errors, wrong_arity, CommandError, CommandResult, Context, LockedMany};
use crate::notify::EventClass;
use crate::server::Server;

pub fn register(table: &mut CommandTable) {
    table.handle("zadd", zadd);
    table.handle("zincrby", zincrby);
    table.handle("zrem", zrem);
    table.handle("zcard", zcard);
    table.handle("zscore", zscore);
    table.handle("zmscore", zmscore);
    table.handle("zrank", zrank);
    table.handle("zrevrank", zrevrank);
    table.handle("zcount", zcount);
    table.handle("zlexcount", zlexcount);
    table.handle("zrange", zrange);
    table.handle("zrangestore", zrangestore);
    table.handle("zrangebyscore", zrangebyscore);
    table.handle("zrevrangebyscore", zrevrangebyscore);
    table.handle("zrangebylex", zrangebylex);
    table.handle("zrevrangebylex", zrevrangebylex);
    table.handle("zrevrange", zrevrange);
    table.handle("zremrangebyrank", zremrangebyrank);
    table.handle("zremrangebyscore", zremrangebyscore);
    table.handle("zremrangebylex", zremrangebylex);
    table.handle("zunion", zunion);
    table.handle("zinter", zinter);
    table.handle("zdiff", zdiff);
    table.handle("zunionstore", zunionstore);
    table.handle("zinterstore", zinterstore);
    table.handle("zdiffstore", zdiffstore);
    table.handle("zintercard", zintercard);
    table.handle("zrandmember", zrandmember);
    table.handle("zpopmin", zpopmin);
    table.handle("zpopmax", zpopmax);
    table.handle("zmpop", zmpop);
    table.handle("bzpopmin", bzpopmin);
    table.handle("bzpopmax", bzpopmax);
    table.handle("bzmpop", bzmpop);
    table.handle("zscan", zscan);
}

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// The encoding limits, from the hot configuration.
pub(crate) fn limits(context: &Context) -> Limits {
    let hot = &context.server.config.hot;
    Limits {
        listpack_entries: hot
            .zset_max_listpack_entries
            .load(std::sync::atomic::Ordering::Relaxed) as usize,
        listpack_value: hot
            .zset_max_listpack_value
            .load(std::sync::atomic::Ordering::Relaxed) as usize,
    }
}

/// The sorted set at `key`: `None` when the key does not exist, WRONGTYPE for other types.
fn sorted_set<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut SortedSet>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.into_value_mut() {
            Value::SortedSet(set) => Ok(Some(set)),
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

/// A score argument (ZADD, ZINCRBY): "value is not a valid float".
fn score_argument(arg: &[u8]) -> Result<f64, CommandError> {
    zset::parse_score(arg).ok_or_else(|| errors::NOT_FLOAT.into())
}

/// A score as Redis 7.2 replies with it: a bulk string in RESP2, a double in RESP3.
fn reply_score(reply: &mut ReplyWriter, score: f64) {
    let text = zset::format_score(score);
    if reply.is_resp3() {
        let out = reply.buffer();
        out.push(b',');
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        reply.bulk(text.as_bytes());
    }
}

/// Members, with their scores when `with_scores`: flat in RESP2, [member, score] pairs in RESP3.
fn reply_members<'a>(
    reply: &mut ReplyWriter,
    members: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    with_scores: bool,
) {
    let count = members.len();
    let nested = with_scores && reply.is_resp3();
    reply.array(if with_scores && !nested {
        count * 2
    } else {
        count
    });
    for (member, score) in members {
        if nested {
            reply.array(2);
        }
        reply.bulk(member);
        if with_scores {
            reply_score(reply, score);
        }
    }
}

/// Deletes `key` when its sorted set is empty.
fn delete_if_empty(shard: &mut Shard, key: &[u8], now_ms: u64) {
    let empty = matches!(
        shard.peek(key, now_ms).map(|entry| &entry.value),
        Some(Value::SortedSet(set)) if set.is_empty()
    );
    if empty {
        shard.remove(key, now_ms);
    }
}

// ---------------------------------------------------------------------------------------------
// ZADD, ZINCRBY.

#[derive(Clone, Copy, PartialEq, Eq)]
enum AddCommand {
    Zadd,
    Zincrby,
}

/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
pub(crate) fn zadd(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    add_generic(context, args, AddCommand::Zadd)
}

/// ZINCRBY key increment member
fn zincrby(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    add_generic(context, args, AddCommand::Zincrby)
}

fn add_generic(context: &mut Context, args: &[&[u8]], command: AddCommand) -> CommandResult {
    let mut flags = AddFlags {
        incr: command == AddCommand::Zincrby,
        ..AddFlags::default()
    };
    let mut report_changed = false;
    // Like Redis, ZINCRBY goes through ZADD's option parser too.
    let mut first_pair = 2;
    while let Some(option) = args.get(first_pair) {
        if is(option, "NX") {
            flags.nx = true;
        } else if is(option, "XX") {
            flags.xx = true;
        } else if is(option, "CH") {
            report_changed = true;
        } else if is(option, "INCR") {
            flags.incr = true;
        } else if is(option, "GT") {
            flags.gt = true;
        } else if is(option, "LT") {
            flags.lt = true;
        } else {
            break;
        }
        first_pair += 1;
    }
    let pairs = &args[first_pair..];
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return Err(errors::SYNTAX.into());
    }
    if flags.nx && flags.xx {
        return Err("ERR XX and NX options at the same time are not compatible".into());
    }
    if (flags.gt && flags.nx) || (flags.lt && flags.nx) || (flags.gt && flags.lt) {
        return Err("ERR GT, LT, and/or NX options at the same time are not compatible".into());
    }
    if flags.incr && pairs.len() > 2 {
        return Err("ERR INCR option supports a single increment-element pair".into());
    }
    let scores = pairs
        .chunks(2)
        .map(|pair| score_argument(pair[0]))
        .collect::<Result<smallvec::SmallVec<[f64; 8]>, _>>()?;
    let limits = limits(context);
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let existed = sorted_set(&mut shard, key, now_ms)?.is_some();
    if !existed {
        if flags.xx {
            drop(shard);
            if flags.incr {
                context.reply.null();
            } else {
                context.reply.integer(0);
            }
            return Ok(());
        }
        let set = SortedSet::new(scores.len(), pairs[1].len(), &limits);
        shard.insert(key, Value::SortedSet(Box::new(set)), None, now_ms);
    }
    let set = sorted_set(&mut shard, key, now_ms)?.expect("the sorted set exists");
    if existed {
        set.reserve(scores.len(), &limits);
    }
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    let mut not_a_number = false;
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        match set.add(score, pair[1], flags, &limits) {
            AddOutcome::Added(score) => {
                added += 1;
                processed += 1;
                last_score = score;
            }
            AddOutcome::Updated(score) => {
                updated += 1;
                processed += 1;
                last_score = score;
            }
            AddOutcome::Unchanged(score) => {
                processed += 1;
                last_score = score;
            }
            AddOutcome::Skipped => {}
            AddOutcome::NotANumber => {
                not_a_number = true;
                break;
            }
        }
    }
    if added + updated > 0 {
        shard.blocked.signal(key);
        shard.propagate(args);
        context.notify(
            EventClass::SortedSet,
            if flags.incr { "zincr" } else { "zadd" },
            key,
        );
    }
    drop(shard);
    if not_a_number {
        return Err("ERR resulting score is not a number (NaN)".into());
    }
    if flags.incr {
        if processed > 0 {
            reply_score(&mut context.reply, last_score);
        } else {
            context.reply.null();
        }
    } else {
        context.reply.integer(if report_changed {
            added + updated
        } else {
            added
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT.

/// ZREM key member [member ...]
fn zrem(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let mut removed = 0;
    if let Some(set) = sorted_set(&mut shard, key, now_ms)? {
        for member in &args[2..] {
            if set.remove(member) {
                removed += 1;
            }
            if set.is_empty() {
                break;
            }
        }
        delete_if_empty(&mut shard, key, now_ms);
        if removed > 0 {
            shard.propagate(args);
            context.notify_removal(EventClass::SortedSet, "zrem", &shard, key);
        }
    }
    drop(shard);
    context.reply.integer(removed);
    Ok(())
}

/// ZCARD key
fn zcard(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let len = sorted_set(&mut shard, args[1], now_ms)?.map_or(0, |set| set.len());
    drop(shard);
    context.reply.integer(len as i64);
    Ok(())
}

/// ZSCORE key member
fn zscore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let score = sorted_set(&mut shard, args[1], now_ms)?.and_then(|set| set.score(args[2]));
    drop(shard);
    match score {
        Some(score) => reply_score(&mut context.reply, score),
        None => context.reply.null(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...]
fn zmscore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let set = sorted_set(&mut shard, args[1], now_ms)?;
    let scores: Vec<Option<f64>> = args[2..]
        .iter()
        .map(|member| set.as_ref().and_then(|set| set.score(member)))
        .collect();
    drop(shard);
    context.reply.array(scores.len());
    for score in scores {
        match score {
            Some(score) => reply_score(&mut context.reply, score),
            None => context.reply.null(),
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
}

/// ZRANK key member [WITHSCORE]
fn zrank(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    rank_generic(context, args, Order::Ascending)
}

/// ZREVRANK key member [WITHSCORE]
fn zrevrank(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    rank_generic(context, args, Order::Descending)
}

fn rank_generic(context: &mut Context, args: &[&[u8]], order: Order) -> CommandResult {
    if args.len() > 4 {
        return Err(wrong_arity(&context.command.full_name));
    }
    let with_score = match args.get(3) {
        None => false,
        Some(option) if is(option, "WITHSCORE") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
    };
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let found = sorted_set(&mut shard, args[1], now_ms)?.and_then(|set| {
        let (rank, score) = set.rank(args[2])?;
        let rank = match order {
            Order::Ascending => rank,
            Order::Descending => set.len() - 1 - rank,
        };
        Some((rank, score))
    });
    drop(shard);
    match found {
        Some((rank, score)) => {
            if with_score {
                context.reply.array(2);
                context.reply.integer(rank as i64);
                reply_score(&mut context.reply, score);
            } else {
                context.reply.integer(rank as i64);
            }
        }
        None if with_score => context.reply.null_array(),
        None => context.reply.null(),
    }
    Ok(())
}

/// ZCOUNT key min max
fn zcount(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let range = ScoreRange::parse(args[2], args[3]).ok_or(NOT_FLOAT_RANGE)?;
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let count =
        sorted_set(&mut shard, args[1], now_ms)?.map_or(0, |set| set.score_ranks(&range).len());
    drop(shard);
    context.reply.integer(count as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
fn zlexcount(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let range = LexRange::parse(args[2], args[3]).ok_or(NOT_LEX_RANGE)?;
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let count =
        sorted_set(&mut shard, args[1], now_ms)?.map_or(0, |set| set.lex_ranks(&range).len());
    drop(shard);
    context.reply.integer(count as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZRANGE and its relatives.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RangeKind {
    /// ZRANGE / ZRANGESTORE: chosen by BYSCORE / BYLEX, by rank otherwise.
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    /// ZRANGE / ZRANGESTORE: reversed by REV.
    Auto,
    Forward,
    Reverse,
}

/// Where a range's result goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RangeOutput {
    Reply,
    /// ZRANGESTORE: into the key at `args[1]`.
    Store,
}

/// A parsed range request.
enum RangeSpec {
    Rank { start: i64, stop: i64 },
    Score(ScoreRange),
    Lex(LexRange),
}

/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
fn zrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Auto,
        Direction::Auto,
        RangeOutput::Reply,
    )
}

/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
fn zrangestore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Auto,
        Direction::Auto,
        RangeOutput::Store,
    )
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
fn zrangebyscore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Score,
        Direction::Forward,
        RangeOutput::Reply,
    )
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
fn zrevrangebyscore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Score,
        Direction::Reverse,
        RangeOutput::Reply,
    )
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
fn zrangebylex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Lex,
        Direction::Forward,
        RangeOutput::Reply,
    )
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
fn zrevrangebylex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Lex,
        Direction::Reverse,
        RangeOutput::Reply,
    )
}

/// ZREVRANGE key start stop [WITHSCORES]
fn zrevrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range_generic(
        context,
        args,
        RangeKind::Rank,
        Direction::Reverse,
        RangeOutput::Reply,
    )
}

/// The ranks a rank range (negative from the end) selects, as Redis sanitises them.
fn rank_window(start: i64, stop: i64, len: usize) -> std::ops::Range<usize> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return 0..0;
    }
    if stop >= len {
        stop = len - 1;
    }
    start as usize..stop as usize + 1
}

/// The ranks of a score or lex range after LIMIT: `matching` in order, skipping `offset` from
/// the start (or from the end when reversed), at most `count` (negative: all).
fn limit_window(
    matching: std::ops::Range<usize>,
    offset: i64,
    count: i64,
    direction: Direction,
    len: usize,
) -> std::ops::Range<usize> {
    // Redis walks `offset` elements first: a negative offset walks off the end.
    if offset < 0 || (offset > 0 && offset as u64 >= len as u64) {
        return 0..0;
    }
    let available = matching.len().saturating_sub(offset as usize);
    let taken = if count < 0 {
        available
    } else {
        available.min(count as usize)
    };
    match direction {
        Direction::Reverse => {
            let end = matching.end - (offset as usize).min(matching.len());
            end - taken..end
        }
        _ => {
            let start = matching.start + (offset as usize).min(matching.len());
            start..start + taken
        }
    }
}

fn range_generic(
    context: &mut Context,
    args: &[&[u8]],
    mut kind: RangeKind,
    mut direction: Direction,
    output: RangeOutput,
) -> CommandResult {
    let source_index = if output == RangeOutput::Store { 2 } else { 1 };
    let mut min_index = source_index + 1;
    let mut max_index = source_index + 2;
    let mut with_scores = false;
    let mut offset = 0;
    let mut count = -1;
    let mut index = source_index + 3;
    while index < args.len() {
        let remaining = args.len() - index - 1;
        let option = args[index];
        if output == RangeOutput::Reply && is(option, "WITHSCORES") {
            with_scores = true;
        } else if is(option, "LIMIT") && remaining >= 2 {
            offset = integer(args[index + 1])?;
            count = integer(args[index + 2])?;
            index += 2;
        } else if direction == Direction::Auto && is(option, "REV") {
            direction = Direction::Reverse;
        } else if kind == RangeKind::Auto && is(option, "BYLEX") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(option, "BYSCORE") {
            kind = RangeKind::Score;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if direction == Direction::Auto {
        direction = Direction::Forward;
    }
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if count != -1 && kind == RangeKind::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
                .into(),
        );
    }
    if with_scores && kind == RangeKind::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX".into());
    }
    if direction == Direction::Reverse && kind != RangeKind::Rank {
        std::mem::swap(&mut min_index, &mut max_index);
    }
    let spec = match kind {
        RangeKind::Score => RangeSpec::Score(
            ScoreRange::parse(args[min_index], args[max_index]).ok_or(NOT_FLOAT_RANGE)?,
        ),
        RangeKind::Lex => {
            RangeSpec::Lex(LexRange::parse(args[min_index], args[max_index]).ok_or(NOT_LEX_RANGE)?)
        }
        _ => RangeSpec::Rank {
            start: integer(args[min_index])?,
            stop: integer(args[max_index])?,
        },
    };
    // The ranks of the result within the set, and whether to walk them backwards.
    let window = |set: &SortedSet| -> std::ops::Range<usize> {
        match &spec {
            RangeSpec::Rank { start, stop } => {
                let window = rank_window(*start, *stop, set.len());
                if direction == Direction::Reverse {
                    set.len() - window.end..set.len() - window.start
                } else {
                    window
                }
            }
            RangeSpec::Score(range) => {
                limit_window(set.score_ranks(range), offset, count, direction, set.len())
            }
            RangeSpec::Lex(range) => {
                limit_window(set.lex_ranks(range), offset, count, direction, set.len())
            }
        }
    };
    let reverse = direction == Direction::Reverse;
    let source = args[source_index];
    let now_ms = context.now_ms;
    match output {
        RangeOutput::Reply => {
            let mut shard = context.lock(source);
            match sorted_set(&mut shard, source, now_ms)? {
                None => context.reply.array(0),
                Some(set) => {
                    let ranks = window(set);
                    reply_members(&mut context.reply, set.range(ranks, reverse), with_scores);
                }
            }
        }
        RangeOutput::Store => {
            let destination = args[1];
            let limits = limits(context);
            let database = context.database();
            let mut locked = context.lock_keys([destination, source]);
            let entries: Vec<(Vec<u8>, f64)> =
                match sorted_set(locked.shard(database, source), source, now_ms)? {
                    None => Vec::new(),
                    Some(set) => set
                        .range(window(set), reverse)
                        .map(|(member, score)| (member.to_vec(), score))
                        .collect(),
                };
            let stored = store_result(
                context.server,
                "zrangestore",
                &mut locked,
                database,
                destination,
                entries,
                &limits,
                args,
                now_ms,
            );
            drop(locked);
            context.reply.integer(stored as i64);
        }
    }
    Ok(())
}

/// Stores `entries` (unique members) at `destination`, replacing any value, or deletes it when
/// there are none; propagates `args` when something changed. Returns how many were stored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_result(
    server: &Server,
    event: &str,
    locked: &mut LockedMany,
    database: usize,
    destination: &[u8],
    entries: Vec<(Vec<u8>, f64)>,
    limits: &Limits,
    args: &[&[u8]],
    now_ms: u64,
) -> usize {
    let count = entries.len();
    let shard = locked.shard(database, destination);
    let changed = if count == 0 {
        shard.remove(destination, now_ms).is_some()
    } else {
        let set = SortedSet::from_unique(entries, limits);
        shard.insert(destination, Value::SortedSet(Box::new(set)), None, now_ms);
        true
    };
    if changed {
        locked.propagate(database, args);
        if count > 0 {
            server.notify(EventClass::SortedSet, event, database, destination);
        } else {
            server.notify(EventClass::Generic, "del", database, destination);
        }
    }
    count
}

// ---------------------------------------------------------------------------------------------
// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.

/// ZREMRANGEBYRANK key start stop
fn zremrangebyrank(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let spec = RangeSpec::Rank {
        start: integer(args[2])?,
        stop: integer(args[3])?,
    };
    remove_range_generic(context, args, spec)
}

/// ZREMRANGEBYSCORE key min max
fn zremrangebyscore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let range = ScoreRange::parse(args[2], args[3]).ok_or(NOT_FLOAT_RANGE)?;
    remove_range_generic(context, args, RangeSpec::Score(range))
}

/// ZREMRANGEBYLEX key min max
fn zremrangebylex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let range = LexRange::parse(args[2], args[3]).ok_or(NOT_LEX_RANGE)?;
    remove_range_generic(context, args, RangeSpec::Lex(range))
}

fn remove_range_generic(context: &mut Context, args: &[&[u8]], spec: RangeSpec) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let mut removed = 0;
    if let Some(set) = sorted_set(&mut shard, key, now_ms)? {
        let ranks = match &spec {
            RangeSpec::Rank { start, stop } => rank_window(*start, *stop, set.len()),
            RangeSpec::Score(range) => set.score_ranks(range),
            RangeSpec::Lex(range) => set.lex_ranks(range),
        };
        removed = ranks.len();
        set.remove_ranks(ranks);
        delete_if_empty(&mut shard, key, now_ms);
        if removed > 0 {
            shard.propagate(args);
            let event = match spec {
                RangeSpec::Rank { .. } => "zremrangebyrank",
                RangeSpec::Score(_) => "zremrangebyscore",
                RangeSpec::Lex(_) => "zremrangebylex",
            };
            context.notify_removal(EventClass::SortedSet, event, &shard, key);
        }
    }
    drop(shard);
    context.reply.integer(removed as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SetOperation {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SetOutput {
    /// ZUNION, ZINTER, ZDIFF: the members (WITHSCORES allowed).
    Reply,
    /// The STORE forms: into the key at `args[1]`.
    Store,
    /// ZINTERCARD: the count (LIMIT allowed).
    Cardinality,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                // inf + -inf: Redis's convention is 0.
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// An input of a set operation: a sorted set, or a plain set whose members score 1.
///
/// Plain sets (`Value::Set`) are being added by another family; once they exist they become a
/// second variant here (length, membership and iteration with score 1.0), and [`input_of`]
/// maps `Value::Set` to it.
enum Input<'a> {
    Sorted(&'a SortedSet),
    /// A plain set: every member scores 1.
    Plain(&'a store::Set),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::Sorted(set) => set.len(),
            Input::Plain(set) => set.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Input::Sorted(set) => set.score(member),
            Input::Plain(set) => set.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut visit: impl FnMut(&[u8], f64)) {
        match self {
            Input::Sorted(set) => {
                for (member, score) in set.iter() {
                    visit(member, score);
                }
            }
            Input::Plain(set) => {
                for member in set.iter() {
                    member.with_bytes(|bytes| visit(bytes, 1.0));
                }
            }
        }
    }
}

/// The input at `key` (`None`: no such key), WRONGTYPE unless a sorted set or a set.
fn input_of<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<Input<'s>>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.into_value_mut() {
            Value::SortedSet(set) => Ok(Some(Input::Sorted(set))),
            Value::Set(set) => Ok(Some(Input::Plain(set))),
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]
fn zunion(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Union, SetOutput::Reply)
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]
fn zinter(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Inter, SetOutput::Reply)
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
fn zdiff(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Diff, SetOutput::Reply)
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
fn zunionstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Union, SetOutput::Store)
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
fn zinterstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Inter, SetOutput::Store)
}

/// ZDIFFSTORE destination numkeys key [key ...]
fn zdiffstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Diff, SetOutput::Store)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
fn zintercard(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    set_operation_generic(context, args, SetOperation::Inter, SetOutput::Cardinality)
}

fn set_operation_generic(
    context: &mut Context,
    args: &[&[u8]],
    operation: SetOperation,
    output: SetOutput,
) -> CommandResult {
    let numkeys_index = if output == SetOutput::Store { 2 } else { 1 };
    let key_count = integer(args[numkeys_index])?;
    if key_count < 1 {
        return Err(format!(
            "ERR at least 1 input key is needed for '{}' command",
            context.command.full_name
        )
        .into());
    }
    if key_count as u64 > (args.len() - numkeys_index - 1) as u64 {
        return Err(errors::SYNTAX.into());
    }
    let key_count = key_count as usize;
    let keys = &args[numkeys_index + 1..numkeys_index + 1 + key_count];
    let destination = (output == SetOutput::Store).then(|| args[1]);
    let now_ms = context.now_ms;
    let database = context.database();
    let limits = limits(context);
    let mut locked = context.lock_keys(keys.iter().copied().chain(destination));
    // Types first, then options, as Redis checks them.
    let mut lengths = Vec::with_capacity(key_count);
    for key in keys {
        let len =
            input_of(locked.shard(database, key), key, now_ms)?.map_or(0, |input| input.len());
        lengths.push(len);
    }
    let mut weights = vec![1.0; key_count];
    let mut aggregate = Aggregate::Sum;
    let mut with_scores = false;
    let mut limit = 0usize;
    let mut index = numkeys_index + 1 + key_count;
    while index < args.len() {
        let remaining = args.len() - index;
        let option = args[index];
        let weighted = operation != SetOperation::Diff && output != SetOutput::Cardinality;
        if weighted && remaining > key_count && is(option, "WEIGHTS") {
            for (offset, weight) in weights.iter_mut().enumerate() {
                *weight = zset::parse_score(args[index + 1 + offset])
                    .ok_or_else(|| CommandError::from("ERR weight value is not a float"))?;
            }
            index += 1 + key_count;
        } else if weighted && remaining >= 2 && is(option, "AGGREGATE") {
            let name = args[index + 1];
            aggregate = if is(name, "SUM") {
                Aggregate::Sum
            } else if is(name, "MIN") {
                Aggregate::Min
            } else if is(name, "MAX") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX.into());
            };
            index += 2;
        } else if output == SetOutput::Reply && is(option, "WITHSCORES") {
            with_scores = true;
            index += 1;
        } else if output == SetOutput::Cardinality && remaining >= 2 && is(option, "LIMIT") {
            let value = store::number::parse_i64(args[index + 1])
                .filter(|value| *value >= 0)
                .ok_or_else(|| CommandError::from("ERR LIMIT can't be negative"))?;
            limit = value as usize;
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    // Union and intersection visit the inputs from the smallest.
    let mut order: Vec<usize> = (0..key_count).collect();
    if operation != SetOperation::Diff {
        order.sort_by_key(|&position| lengths[position]);
    }
    let weighted = |position: usize, score: f64| {
        let value = weights[position] * score;
        if value.is_nan() {
            0.0
        } else {
            value
        }
    };
    let mut accumulator: HashMap<Vec<u8>, f64> = HashMap::new();
    match operation {
        SetOperation::Union => {
            accumulator.reserve(lengths.iter().copied().max().unwrap_or(0));
            for &position in &order {
                let key = keys[position];
                if let Some(input) = input_of(locked.shard(database, key), key, now_ms)? {
                    input.for_each(|member, score| {
                        let value = weighted(position, score);
                        match accumulator.get_mut(member) {
                            Some(total) => aggregate.apply(total, value),
                            None => {
                                accumulator.insert(member.to_vec(), value);
                            }
                        }
                    });
                }
            }
        }
        SetOperation::Inter => {
            if lengths[order[0]] > 0 {
                let first = order[0];
                let key = keys[first];
                if let Some(input) = input_of(locked.shard(database, key), key, now_ms)? {
                    accumulator.reserve(input.len());
                    input.for_each(|member, score| {
                        accumulator.insert(member.to_vec(), weighted(first, score));
                    });
                }
                for &position in &order[1..] {
                    if accumulator.is_empty() {
                        break;
                    }
                    let key = keys[position];
                    match input_of(locked.shard(database, key), key, now_ms)? {
                        None => accumulator.clear(),
                        Some(input) => {
                            accumulator.retain(|member, total| match input.score(member) {
                                Some(score) => {
                                    // Unlike the first input's, these products are aggregated
                                    // as they are, NaN included (SUM then makes it 0).
                                    aggregate.apply(total, weights[position] * score);
                                    true
                                }
                                None => false,
                            })
                        }
                    }
                }
            }
        }
        SetOperation::Diff => {
            let key = keys[0];
            if let Some(input) = input_of(locked.shard(database, key), key, now_ms)? {
                accumulator.reserve(input.len());
                input.for_each(|member, score| {
                    accumulator.insert(member.to_vec(), score);
                });
            }
            for key in &keys[1..] {
                if accumulator.is_empty() {
                    break;
                }
                if let Some(input) = input_of(locked.shard(database, key), key, now_ms)? {
                    if input.len() < accumulator.len() {
                        input.for_each(|member, _| {
                            accumulator.remove(member);
                        });
                    } else {
                        accumulator.retain(|member, _| input.score(member).is_none());
                    }
                }
            }
        }
    }
    match output {
        SetOutput::Cardinality => {
            drop(locked);
            let count = accumulator.len();
            let count = if limit > 0 { count.min(limit) } else { count };
            context.reply.integer(count as i64);
        }
        SetOutput::Store => {
            let destination = destination.expect("a STORE form has a destination");
            let entries: Vec<(Vec<u8>, f64)> = accumulator.into_iter().collect();
            let event = match operation {
                SetOperation::Union => "zunionstore",
                SetOperation::Inter => "zinterstore",
                SetOperation::Diff => "zdiffstore",
            };
            let stored = store_result(
                context.server,
                event,
                &mut locked,
                database,
                destination,
                entries,
                &limits,
                args,
                now_ms,
            );
            drop(locked);
            context.reply.integer(stored as i64);
        }
        SetOutput::Reply => {
            drop(locked);
            let mut entries: Vec<(Vec<u8>, f64)> = accumulator.into_iter().collect();
            entries.sort_by(|a, b| {
                a.1.partial_cmp(&b.1)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            });
            reply_members(
                &mut context.reply,
                entries
                    .iter()
                    .map(|(member, score)| (member.as_slice(), *score)),
                with_scores,
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZRANDMEMBER.

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    if args.len() < 3 {
        let mut shard = context.lock(args[1]);
        let picked = sorted_set(&mut shard, args[1], now_ms)?.map(|set| {
            let rank = rand::rng().random_range(0..set.len());
            set.get(rank).expect("rank in range").0.to_vec()
        });
        drop(shard);
        match picked {
            Some(member) => context.reply.bulk(&member),
            None => context.reply.null(),
        }
        return Ok(());
    }
    let count = integer(args[2])?;
    if count == i64::MIN {
        return Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )
        .into());
    }
    let with_scores = match args.get(3) {
        None => false,
        Some(option) if args.len() == 4 && is(option, "WITHSCORES") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
    };
    if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    let mut shard = context.lock(args[1]);
    let Some(set) = sorted_set(&mut shard, args[1], now_ms)? else {
        drop(shard);
        context.reply.array(0);
        return Ok(());
    };
    let set: &SortedSet = set;
    let reply = &mut context.reply;
    let nested = with_scores && reply.is_resp3();
    let write = |reply: &mut ReplyWriter, member: &[u8], score: f64| {
        if nested {
            reply.array(2);
        }
        reply.bulk(member);
        if with_scores {
            reply_score(reply, score);
        }
    };
    let header = |reply: &mut ReplyWriter, count: usize| {
        reply.array(if with_scores && !nested {
            count * 2
        } else {
            count
        });
    };
    let mut random = rand::rng();
    let len = set.len();
    if count == 0 {
        reply.array(0);
    } else if count < 0 || count == 1 {
        // With repetitions, in random order.
        let count = count.unsigned_abs() as usize;
        header(reply, count);
        if set.is_listpack() {
            let entries: Vec<(&[u8], f64)> = set.iter().collect();
            for _ in 0..count {
                let (member, score) = entries[random.random_range(0..len)];
                write(reply, member, score);
            }
        } else {
            for _ in 0..count {
                let (member, score) = set.get(random.random_range(0..len)).expect("rank in range");
                write(reply, member, score);
            }
        }
    } else if count as u64 >= len as u64 {
        // The whole set, from the highest score, as Redis's set-operation iterators walk it.
        header(reply, len);
        for (member, score) in set.range(0..len, true) {
            write(reply, member, score);
        }
    } else {
        // Distinct members.
        let count = count as usize;
        header(reply, count);
        if set.is_listpack() {
            // In the set's order, as Redis samples a listpack.
            let mut chosen = vec![false; len];
            for pick in rand::seq::index::sample(&mut random, len, count) {
                chosen[pick] = true;
            }
            for ((member, score), chosen) in set.iter().zip(chosen) {
                if chosen {
                    write(reply, member, score);
                }
            }
        } else {
            for rank in rand::seq::index::sample(&mut random, len, count) {
                let (member, score) = set.get(rank).expect("rank in range");
                write(reply, member, score);
            }
        }
    }
    drop(shard);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pops: ZPOPMIN, ZPOPMAX, ZMPOP and the blocking BZPOPMIN, BZPOPMAX, BZMPOP.

/// Pops up to `count` members from `end` of the sorted set at `key` of the locked `shard`,
/// deleting the key when it empties. `Ok(None)`: no such key. Does not propagate.
pub fn pop_from_shard(
    shard: &mut Shard,
    key: &[u8],
    end: End,
    count: usize,
    now_ms: u64,
) -> Result<Option<Vec<(Vec<u8>, f64)>>, CommandError> {
    let Some(set) = sorted_set(shard, key, now_ms)? else {
        return Ok(None);
    };
    let popped = set.pop(end, count);
    delete_if_empty(shard, key, now_ms);
    Ok(Some(popped))
}

/// The keyspace event of a pop from `end`.
fn pop_event(end: End) -> &'static str {
    match end {
        End::Min => "zpopmin",
        End::Max => "zpopmax",
    }
}

/// The name of the non-blocking pop from `end`, as pops propagate.
fn pop_command_name(end: End) -> &'static [u8] {
    match end {
        End::Min => b"ZPOPMIN",
        End::Max => b"ZPOPMAX",
    }
}

/// The shapes of pop replies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PopReply {
    /// ZPOPMIN/ZPOPMAX: flat [member, score, ...]; pairs in RESP3 when a count was given.
    Flat { nested: bool },
    /// BZPOPMIN/BZPOPMAX: [key, member, score].
    KeyFlat,
    /// ZMPOP/BZMPOP: [key, [[member, score], ...]].
    KeyNested,
}

fn reply_popped(reply: &mut ReplyWriter, shape: PopReply, key: &[u8], popped: &[(Vec<u8>, f64)]) {
    let pairs = popped
        .iter()
        .map(|(member, score)| (member.as_slice(), *score));
    match shape {
        PopReply::Flat { nested } => {
            reply.array(if nested {
                popped.len()
            } else {
                popped.len() * 2
            });
            for (member, score) in pairs {
                if nested {
                    reply.array(2);
                }
                reply.bulk(member);
                reply_score(reply, score);
            }
        }
        PopReply::KeyFlat => {
            reply.array(popped.len() * 2 + 1);
            reply.bulk(key);
            for (member, score) in pairs {
                reply.bulk(member);
                reply_score(reply, score);
            }
        }
        PopReply::KeyNested => {
            reply.array(2);
            reply.bulk(key);
            reply.array(popped.len());
            for (member, score) in pairs {
                reply.array(2);
                reply.bulk(member);
                reply_score(reply, score);
            }
        }
    }
}

/// ZPOPMIN key [count]
fn zpopmin(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    pop_generic(context, args, End::Min)
}

/// ZPOPMAX key [count]
fn zpopmax(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    pop_generic(context, args, End::Max)
}

fn pop_generic(context: &mut Context, args: &[&[u8]], end: End) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let count = match args.get(2) {
        None => None,
        Some(arg) => Some(
            store::number::parse_i64(arg)
                .filter(|count| *count >= 0)
                .ok_or_else(|| CommandError::from(errors::NOT_POSITIVE))? as usize,
        ),
    };
    let shape = PopReply::Flat {
        nested: context.reply.is_resp3() && count.is_some(),
    };
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    if count == Some(0) {
        // Redis checks the type, then answers an empty array.
        sorted_set(&mut shard, key, now_ms)?;
        drop(shard);
        context.reply.array(0);
        return Ok(());
    }
    let popped = pop_from_shard(&mut shard, key, end, count.unwrap_or(1), now_ms)?;
    if popped.is_some() {
        shard.propagate(args);
        context.notify_removal(EventClass::SortedSet, pop_event(end), &shard, key);
    }
    drop(shard);
    match popped {
        None => context.reply.array(0),
        Some(popped) => reply_popped(&mut context.reply, shape, key, &popped),
    }
    Ok(())
}

/// The parsed tail of ZMPOP / BZMPOP: `numkeys key [key ...] MIN | MAX [COUNT count]`.
struct MultiPop<'a> {
    keys: &'a [&'a [u8]],
    end: End,
    count: usize,
}

fn parse_multi_pop<'a>(
    args: &'a [&'a [u8]],
    numkeys_index: usize,
) -> Result<MultiPop<'a>, CommandError> {
    let key_count = store::number::parse_i64(args[numkeys_index])
        .filter(|count| *count >= 1)
        .ok_or_else(|| CommandError::from("ERR numkeys should be greater than 0"))?;
    let end_index = (numkeys_index as u64 + 1).saturating_add(key_count as u64);
    if end_index >= args.len() as u64 {
        return Err(errors::SYNTAX.into());
    }
    let end_index = end_index as usize;
    let end = if is(args[end_index], "MIN") {
        End::Min
    } else if is(args[end_index], "MAX") {
        End::Max
    } else {
        return Err(errors::SYNTAX.into());
    };
    let mut count = None;
    let mut index = end_index + 1;
    while index < args.len() {
        if count.is_none() && is(args[index], "COUNT") && index + 1 < args.len() {
            let value = store::number::parse_i64(args[index + 1])
                .filter(|count| *count >= 1)
                .ok_or_else(|| CommandError::from("ERR count should be greater than 0"))?;
            count = Some(value as usize);
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    Ok(MultiPop {
        keys: &args[numkeys_index + 1..end_index],
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first of `keys` that exists, replying and propagating as `ZPOPMIN|ZPOPMAX key
/// count` (or `key` alone when `count` is `None`). Returns whether it popped.
fn pop_first_existing(
    context: &mut Context,
    locked: &mut LockedMany,
    keys: &[&[u8]],
    end: End,
    count: Option<usize>,
    shape: PopReply,
) -> Result<bool, CommandError> {
    let database = context.database();
    let now_ms = context.now_ms;
    for key in keys {
        let shard = locked.shard(database, key);
        let Some(popped) = pop_from_shard(shard, key, end, count.unwrap_or(1), now_ms)? else {
            continue;
        };
        let popped_count = itoa::Buffer::new().format(popped.len()).to_string();
        match count {
            Some(_) => locked.propagate(
                database,
                &[pop_command_name(end), key, popped_count.as_bytes()],
            ),
            None => locked.propagate(database, &[pop_command_name(end), key]),
        }
        let shard = locked.shard(database, key);
        context.server.notify_removal(
            EventClass::SortedSet,
            pop_event(end),
            database,
            shard,
            key,
            now_ms,
        );
        reply_popped(&mut context.reply, shape, key, &popped);
        return Ok(true);
    }
    Ok(false)
}

/// ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]
fn zmpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let request = parse_multi_pop(args, 1)?;
    let mut locked = context.lock_keys(request.keys.iter().copied());
    let popped = pop_first_existing(
        context,
        &mut locked,
        request.keys,
        request.end,
        Some(request.count),
        PopReply::KeyNested,
    )?;
    drop(locked);
    if !popped {
        context.reply.null_array();
    }
    Ok(())
}

/// BZPOPMIN key [key ...] timeout
fn bzpopmin(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    blocking_pop(context, args, End::Min)
}

/// BZPOPMAX key [key ...] timeout
fn bzpopmax(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    blocking_pop(context, args, End::Max)
}

fn blocking_pop(context: &mut Context, args: &[&[u8]], end: End) -> CommandResult {
    let deadline_ms = blocking::parse_timeout_seconds(args[args.len() - 1], context.now_ms)?;
    let keys = &args[1..args.len() - 1];
    block_or_pop(context, keys, end, None, PopReply::KeyFlat, deadline_ms)
}

/// BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]
fn bzmpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let request = parse_multi_pop(args, 2)?;
    let deadline_ms = blocking::parse_timeout_seconds(args[1], context.now_ms)?;
    block_or_pop(
        context,
        request.keys,
        request.end,
        Some(request.count),
        PopReply::KeyNested,
        deadline_ms,
    )
}

/// Pops like the non-blocking form when a key has members, else blocks on every key.
fn block_or_pop(
    context: &mut Context,
    keys: &[&[u8]],
    end: End,
    count: Option<usize>,
    shape: PopReply,
    deadline_ms: u64,
) -> CommandResult {
    let mut locked = context.lock_keys(keys.iter().copied());
    if pop_first_existing(context, &mut locked, keys, end, count, shape)? {
        return Ok(());
    }
    let operation = ZsetPop { end, count, shape };
    blocking::block(context, &mut locked, keys, deadline_ms, Box::new(operation));
    Ok(())
}

/// A client blocked in BZPOPMIN, BZPOPMAX or BZMPOP.
struct ZsetPop {
    end: End,
    /// BZMPOP's count; `None` for BZPOPMIN / BZPOPMAX.
    count: Option<usize>,
    shape: PopReply,
}

impl BlockedOperation for ZsetPop {
    fn serve(
        &self,
        server: &Server,
        database: usize,
        shard: &mut Shard,
        key: &[u8],
        now_ms: u64,
        reply: &mut ReplyWriter,
    ) -> ServeOutcome {
        let popped = match pop_from_shard(shard, key, self.end, self.count.unwrap_or(1), now_ms) {
            Ok(Some(popped)) if !popped.is_empty() => popped,
            _ => return ServeOutcome::NotReady,
        };
        let name = pop_command_name(self.end);
        match self.count {
            Some(_) => {
                let popped_count = itoa::Buffer::new().format(popped.len()).to_string();
                crate::blocking::propagate_served(
                    server,
                    database,
                    shard,
                    &[name, key, popped_count.as_bytes()],
                );
            }
            None => crate::blocking::propagate_served(server, database, shard, &[name, key]),
        }
        server.notify_removal(
            EventClass::SortedSet,
            pop_event(self.end),
            database,
            shard,
            key,
            now_ms,
        );
        reply_popped(reply, self.shape, key, &popped);
        ServeOutcome::Served
    }

    fn timeout_reply(&self, reply: &mut ReplyWriter) {
        reply.null_array();
    }
}

// ---------------------------------------------------------------------------------------------
// ZSCAN.

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
fn zscan(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let cursor = crate::arguments::scan_cursor(args[2])?;
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let Some(set) = sorted_set(&mut shard, args[1], now_ms)? else {
        drop(shard);
        context.reply.array(2);
        context.reply.bulk(b"0");
        context.reply.array(0);
        return Ok(());
    };
    let mut count: i64 = 10;
    let mut pattern = None;
    let mut index = 3;
    while index < args.len() {
        let remaining = args.len() - index;
        if is(args[index], "COUNT") && remaining >= 2 {
            count = integer(args[index + 1])?;
            if count < 1 {
                return Err(errors::SYNTAX.into());
            }
            index += 2;
        } else if is(args[index], "MATCH") && remaining >= 2 {
            pattern = (args[index + 1] != b"*")
                .then(|| store::glob::Pattern::new(args[index + 1], false));
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let listpack = set.is_listpack();
    let mut items: Vec<(Vec<u8>, String)> = Vec::new();
    let sampled = std::cell::Cell::new(0i64);
    let mut visit = |member: &[u8], score: f64| {
        sampled.set(sampled.get() + 1);
        if pattern
            .as_ref()
            .is_some_and(|pattern| !pattern.matches(member))
        {
            return;
        }
        // A listpack holds the score as Redis printed it; a skiplist formats it with %.17g.
        let text = if listpack {
            zset::format_score(score)
        } else {
            zset::format_score_17g(score)
        };
        items.push((member.to_vec(), text));
    };
    let mut cursor = cursor;
    let mut iterations_left = count.saturating_mul(10);
    loop {
        cursor = set.scan(cursor, &mut visit);
        let continue_scan = cursor != 0 && iterations_left > 0;
        iterations_left -= 1;
        if !continue_scan || sampled.get() >= count {
            break;
        }
    }
    drop(shard);
    context.reply.array(2);
    context
        .reply
        .bulk(itoa::Buffer::new().format(cursor).as_bytes());
    context.reply.array(items.len() * 2);
    for (member, score) in &items {
        context.reply.bulk(member);
        context.reply.bulk(score.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! What sorted-set writes propagate (the stream AOF and replicas consume).

    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::client::{Client, ClientShared};
    use crate::command::CommandTable;
    use crate::config::Config;
    use crate::connection::execute;
    use crate::propagation::RecordingSink;
    use crate::server::Server;

    struct Harness {
        server: Server,
        recorded: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
        next_client_id: u64,
    }

    impl Harness {
        fn new() -> Harness {
            let mut commands = CommandTable::from_specs();
            crate::families::register_all(&mut commands);
            commands.retain_implemented();
            let server = Server::new(Config::default(), commands, 1);
            let recorded = Arc::new(Mutex::new(Vec::new()));
            server.propagation.attach(Box::new(RecordingSink {
                buffer: recorded.clone(),
                last_database: None,
                bytes_max: usize::MAX,
                bytes: 0,
            }));
            Harness {
                server,
                recorded,
                next_client_id: 1,
            }
        }

        fn client(&mut self) -> Client {
            let address = "127.0.0.1:1".parse().expect("an address");
            self.next_client_id += 1;
            let shared = Arc::new(ClientShared::new(
                self.next_client_id,
                address,
                address,
                -1,
                0,
            ));
            Client::new(shared, true, self.server.acl.default_user())
        }

        /// Runs `line` (space-separated words) and returns the raw reply.
        fn run(&self, client: &mut Client, line: &str) -> String {
            let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            let mut output = Vec::new();
            execute(&self.server, client, &words, &mut output);
            String::from_utf8_lossy(&output).into_owned()
        }

        /// What was propagated since the last call, one command per line (SELECTs left out).
        fn propagated(&self) -> Vec<String> {
            let mut recorded = self.recorded.lock();
            let lines = recorded
                .iter()
                .filter(|args| args[0] != b"SELECT")
                .map(|args| {
                    args.iter()
                        .map(|arg| String::from_utf8_lossy(arg).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            recorded.clear();
            lines
        }
    }

    #[test]
    fn writes_propagate_verbatim_and_no_ops_not_at_all() {
        let mut harness = Harness::new();
        let mut client = harness.client();
        let cases: &[(&str, &[&str])] = &[
            ("ZADD z 1 a 2 b", &["ZADD z 1 a 2 b"]),
            ("ZADD z 1 a", &[]),
            ("ZADD z NX 5 a", &[]),
            ("ZADD z XX 5 nope", &[]),
            ("ZADD z GT 0 a", &[]),
            ("ZADD z GT CH 3 a", &["ZADD z GT CH 3 a"]),
            ("ZADD z INCR 1 a", &["ZADD z INCR 1 a"]),
            ("ZINCRBY z 0 a", &[]),
            ("ZINCRBY z 1.5 b", &["ZINCRBY z 1.5 b"]),
            ("ZADD z INCR -inf a", &["ZADD z INCR -inf a"]),
            ("ZADD z INCR +inf a", &[]),
            ("ZREM z nope", &[]),
            ("ZREM z a nope", &["ZREM z a nope"]),
            ("ZREMRANGEBYSCORE z 100 200", &[]),
            ("ZREMRANGEBYRANK z 5 10", &[]),
            ("ZREMRANGEBYLEX z [x [y", &[]),
            ("ZADD z 1 c 2 d 3 e", &["ZADD z 1 c 2 d 3 e"]),
            ("ZREMRANGEBYRANK z 0 0", &["ZREMRANGEBYRANK z 0 0"]),
            ("ZREMRANGEBYSCORE z (2 3", &["ZREMRANGEBYSCORE z (2 3"]),
            ("ZRANGE z 0 -1", &[]),
            ("ZUNIONSTORE dst 1 z", &["ZUNIONSTORE dst 1 z"]),
            (
                "ZINTERSTORE dst 2 z missing",
                &["ZINTERSTORE dst 2 z missing"],
            ),
            ("ZINTERSTORE dst 2 z missing", &[]),
            ("ZRANGESTORE dst z 0 0", &["ZRANGESTORE dst z 0 0"]),
            ("ZRANGESTORE dst z 10 20", &["ZRANGESTORE dst z 10 20"]),
            ("ZRANGESTORE dst z 10 20", &[]),
            ("ZDIFFSTORE dst 1 missing", &[]),
        ];
        for (command, expected) in cases {
            harness.run(&mut client, command);
            assert_eq!(harness.propagated(), *expected, "{command}");
        }
    }

    #[test]
    fn pops_propagate_as_zpopmin_or_zpopmax() {
        let mut harness = Harness::new();
        let mut client = harness.client();
        harness.run(&mut client, "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f");
        harness.propagated();
        let cases: &[(&str, &[&str])] = &[
            ("ZPOPMIN z", &["ZPOPMIN z"]),
            ("ZPOPMAX z 2", &["ZPOPMAX z 2"]),
            ("ZPOPMIN z 0", &[]),
            ("ZPOPMIN missing", &[]),
            ("ZMPOP 2 missing z MIN", &["ZPOPMIN z 1"]),
            ("ZMPOP 1 missing MIN", &[]),
            ("BZPOPMAX missing z 0", &["ZPOPMAX z"]),
            ("BZMPOP 0 1 z MIN COUNT 10", &["ZPOPMIN z 1"]),
            ("ZPOPMIN z 10", &[]),
        ];
        for (command, expected) in cases {
            harness.run(&mut client, command);
            assert_eq!(harness.propagated(), *expected, "{command}");
        }
        harness.run(&mut client, "ZADD y 1 a 2 b 3 c");
        harness.propagated();
        harness.run(&mut client, "ZMPOP 1 y MAX COUNT 10");
        assert_eq!(harness.propagated(), ["ZPOPMAX y 3"]);
    }

    #[test]
    fn a_served_waiter_propagates_its_pop_after_the_write() {
        let mut harness = Harness::new();
        let mut waiter = harness.client();
        let mut writer = harness.client();
        let mut multi_waiter = harness.client();
        assert_eq!(harness.run(&mut waiter, "BZPOPMIN q 0"), "");
        assert!(waiter.blocked.is_some());
        assert_eq!(
            harness.run(&mut multi_waiter, "BZMPOP 0 1 q MAX COUNT 5"),
            ""
        );
        assert!(multi_waiter.blocked.is_some());
        assert!(harness.propagated().is_empty());
        harness.run(&mut writer, "ZADD q 1 a 2 b 3 c");
        assert_eq!(
            harness.propagated(),
            ["ZADD q 1 a 2 b 3 c", "ZPOPMIN q", "ZPOPMAX q 2"]
        );
        assert_eq!(harness.run(&mut writer, "EXISTS q"), ":0\r\n");
    }
}
