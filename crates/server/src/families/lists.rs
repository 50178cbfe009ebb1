//! List commands: LPUSH, RPUSH, LPOP, LRANGE and the rest of Redis's list family, and the
//! blocking pops and moves (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH).
//!
//! The pops and the move are shared functions ([`pop_elements`], [`pop_one`],
//! [`move_element`]) that work on locked shards and leave replying and propagating to their
//! caller, so the blocking commands can call them once a key becomes non-empty. They delete a
//! list that becomes empty, as every list write does.

use std::sync::atomic::Ordering;

use resp::ReplyWriter;
use store::list::{Element, End, Item, Limits, List, Position};
use store::{Shard, Value};

use crate::arguments::{self, is};
use crate::blocking::{self, BlockedOperation, ServeOutcome};
use crate::command::CommandTable;
use crate::context::{errors, wrong_arity, CommandError, CommandResult, Context, LockedMany};
use crate::notify::EventClass;
use crate::server::Server;

pub fn register(table: &mut CommandTable) {
    table.handle("lpush", lpush);
    table.handle("rpush", rpush);
    table.handle("lpushx", lpushx);
    table.handle("rpushx", rpushx);
    table.handle("linsert", linsert);
    table.handle("lpop", lpop);
    table.handle("rpop", rpop);
    table.handle("lrange", lrange);
    table.handle("lindex", lindex);
    table.handle("llen", llen);
    table.handle("lset", lset);
    table.handle("lrem", lrem);
    table.handle("ltrim", ltrim);
    table.handle("lpos", lpos);
    table.handle("lmove", lmove);
    table.handle("rpoplpush", rpoplpush);
    table.handle("lmpop", lmpop);
    table.handle("blpop", blpop);
    table.handle("brpop", brpop);
    table.handle("blmpop", blmpop);
    table.handle("blmove", blmove);
    table.handle("brpoplpush", brpoplpush);
}

/// "value is out of range, value must between ..." for a range of -LONG_MAX..=LONG_MAX.
const NOT_IN_LONG_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

/// The encoding thresholds in force.
pub fn limits(server: &Server) -> Limits {
    Limits {
        max_listpack_size: server
            .config
            .hot
            .list_max_listpack_size
            .load(Ordering::Relaxed),
        compress_depth: server
            .config
            .hot
            .list_compress_depth
            .load(Ordering::Relaxed),
    }
}

/// Replies with one element as a bulk string.
pub fn reply_item(reply: &mut ReplyWriter, item: Item) {
    match item {
        Item::Integer(integer) => reply.bulk_integer(integer),
        Item::Bytes(bytes) => reply.bulk(bytes),
    }
}

/// The list stored at `key` for reading or changing: `None` when there is no key, WRONGTYPE
/// when the key holds another type.
pub fn list_at<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut List>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.into_value_mut() {
            Value::List(list) => Ok(Some(list)),
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

/// The keyspace event of a push at `end`.
pub fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// The keyspace event of a pop from `end`.
pub fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// The events of a move, in Redis's order: the push on `destination`, then the pop on
/// `source` (and its `del` when emptied). `source_shard` holds `source`.
#[allow(clippy::too_many_arguments)]
pub fn notify_moved(
    server: &Server,
    database: usize,
    source_shard: &Shard,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    now_ms: u64,
) {
    server.notify(EventClass::List, push_event(to), database, destination);
    server.notify_removal(
        EventClass::List,
        pop_event(from),
        database,
        source_shard,
        source,
        now_ms,
    );
}

/// Removes `key` if its list is now empty.
fn delete_if_empty(shard: &mut Shard, key: &[u8], now_ms: u64) {
    let empty = matches!(
        shard.lookup(key, now_ms).map(|entry| entry.into_value_mut()),
        Some(Value::List(list)) if list.is_empty()
    );
    if empty {
        shard.remove(key, now_ms);
    }
}

/// Pops up to `count` elements from `end` of the list at `key`, calling `f` with each in
/// popping order; deletes the key if the list becomes empty. `Ok(None)` when there is no such
/// key, otherwise how many were popped (0 only when `count` is 0).
pub fn pop_elements(
    shard: &mut Shard,
    key: &[u8],
    end: End,
    count: usize,
    limits: &Limits,
    now_ms: u64,
    f: impl FnMut(Item),
) -> Result<Option<usize>, CommandError> {
    let Some(list) = list_at(shard, key, now_ms)? else {
        return Ok(None);
    };
    let popped = if count == 1 {
        list.pop_with(end, limits, f).map_or(0, |()| 1)
    } else {
        list.pop_many(end, count, limits, f)
    };
    if list.is_empty() {
        shard.remove(key, now_ms);
    }
    Ok(Some(popped))
}

/// Pops one element from `end` of the list at `key`, deleting the key if the list becomes
/// empty. `Ok(None)` when there is no such key.
pub fn pop_one(
    shard: &mut Shard,
    key: &[u8],
    end: End,
    limits: &Limits,
    now_ms: u64,
) -> Result<Option<Element>, CommandError> {
    let Some(list) = list_at(shard, key, now_ms)? else {
        return Ok(None);
    };
    let element = list.pop(end, limits);
    if list.is_empty() {
        shard.remove(key, now_ms);
    }
    Ok(element)
}

/// Moves one element from `from` of the list at `source` to `to` of the list at
/// `destination` (created if absent), as LMOVE does. Both keys' shards must be locked in
/// `locked`. `Ok(None)` when `source` does not exist (nothing changes); WRONGTYPE when either
/// key holds another type (nothing changes).
#[allow(clippy::too_many_arguments)]
pub fn move_element(
    locked: &mut LockedMany,
    database: usize,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    limits: &Limits,
    now_ms: u64,
) -> Result<Option<Element>, CommandError> {
    match list_at(locked.shard(database, source), source, now_ms)? {
        None => return Ok(None),
        Some(list) if list.is_empty() => return Ok(None),
        Some(_) => {}
    }
    if source == destination {
        let shard = locked.shard(database, source);
        let list = list_at(shard, source, now_ms)?.expect("source list seen above");
        return Ok(list.rotate(from, to, limits));
    }
    list_at(locked.shard(database, destination), destination, now_ms)?;
    let source_shard = locked.shard(database, source);
    let list = list_at(source_shard, source, now_ms)?.expect("source list seen above");
    let element = list.pop(from, limits).expect("source list is not empty");
    let emptied = list.is_empty();
    if emptied {
        source_shard.remove(source, now_ms);
    }
    let destination_shard = locked.shard(database, destination);
    match list_at(destination_shard, destination, now_ms)? {
        Some(list) => list.push_element(to, &element, limits),
        None => {
            let mut list = List::new();
            list.push_element(to, &element, limits);
            destination_shard.insert(destination, Value::List(Box::new(list)), None, now_ms);
        }
    }
    Ok(Some(element))
}

/// Whether pushes create the key or need it to exist (LPUSHX, RPUSHX).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existence {
    Any,
    MustExist,
}

fn push(context: &mut Context, args: &[&[u8]], end: End, existence: Existence) -> CommandResult {
    let key = args[1];
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let length = match list_at(&mut shard, key, now_ms)? {
        Some(list) => {
            list.push_values(end, &args[2..], &limits);
            list.len()
        }
        None if existence == Existence::MustExist => {
            drop(shard);
            context.reply.integer(0);
            return Ok(());
        }
        None => {
            let mut list = List::new();
            list.push_values(end, &args[2..], &limits);
            let length = list.len();
            shard.insert(key, Value::List(Box::new(list)), None, now_ms);
            length
        }
    };
    shard.propagate(args);
    context.notify(EventClass::List, push_event(end), key);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// LPUSH key element [element ...]
fn lpush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    push(context, args, End::Left, Existence::Any)
}

/// RPUSH key element [element ...]
fn rpush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    push(context, args, End::Right, Existence::Any)
}

/// LPUSHX key element [element ...]
fn lpushx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    push(context, args, End::Left, Existence::MustExist)
}

/// RPUSHX key element [element ...]
fn rpushx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    push(context, args, End::Right, Existence::MustExist)
}

/// LINSERT key <BEFORE | AFTER> pivot element
fn linsert(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let position = if is(args[2], "AFTER") {
        Position::After
    } else if is(args[2], "BEFORE") {
        Position::Before
    } else {
        return Err(errors::SYNTAX.into());
    };
    let key = args[1];
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let reply = match list_at(&mut shard, key, now_ms)? {
        None => 0,
        Some(list) => {
            if list.insert(position, args[3], args[4], &limits) {
                let length = list.len() as i64;
                shard.propagate(args);
                context.notify(EventClass::List, "linsert", key);
                length
            } else {
                -1
            }
        }
    };
    drop(shard);
    context.reply.integer(reply);
    Ok(())
}

/// The optional count of LPOP / RPOP.
fn pop_count(args: &[&[u8]], name: &str) -> Result<Option<usize>, CommandError> {
    match args.len() {
        2 => Ok(None),
        3 => match store::number::parse_i64(args[2]) {
            Some(count) if count >= 0 => Ok(Some(count as usize)),
            _ => Err(errors::NOT_POSITIVE.into()),
        },
        _ => Err(wrong_arity(name)),
    }
}

fn pop(context: &mut Context, args: &[&[u8]], end: End, name: &str) -> CommandResult {
    let count = pop_count(args, name)?;
    let key = args[1];
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let reply = &mut context.reply;
    match count {
        None => {
            let popped = pop_elements(&mut shard, key, end, 1, &limits, now_ms, |item| {
                reply_item(reply, item)
            })?;
            match popped {
                None => reply.null(),
                Some(_) => {
                    shard.propagate(args);
                    context.notify_removal(EventClass::List, pop_event(end), &shard, key);
                }
            }
        }
        Some(count) => {
            let Some(list) = list_at(&mut shard, key, now_ms)? else {
                reply.null_array();
                return Ok(());
            };
            let popping = count.min(list.len());
            reply.array(popping);
            if popping == 0 {
                return Ok(());
            }
            pop_elements(&mut shard, key, end, count, &limits, now_ms, |item| {
                reply_item(reply, item)
            })?;
            shard.propagate(args);
            context.notify_removal(EventClass::List, pop_event(end), &shard, key);
        }
    }
    Ok(())
}

/// LPOP key [count]
fn lpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    pop(context, args, End::Left, "lpop")
}

/// RPOP key [count]
fn rpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    pop(context, args, End::Right, "rpop")
}

/// LRANGE key start stop
fn lrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let start = arguments::integer(args[2])?;
    let stop = arguments::integer(args[3])?;
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let reply = &mut context.reply;
    match list_at(&mut shard, args[1], now_ms)? {
        None => reply.array(0),
        Some(list) => match store::list::normalize_range(start, stop, list.len()) {
            None => reply.array(0),
            Some((first, count)) => {
                reply.array(count);
                list.for_each_in(first, count, |item| reply_item(reply, item));
            }
        },
    }
    Ok(())
}

/// LINDEX key index
fn lindex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let Some(list) = list_at(&mut shard, args[1], now_ms)? else {
        drop(shard);
        context.reply.null();
        return Ok(());
    };
    let index = arguments::integer(args[2])?;
    match list.get(index) {
        None => context.reply.null(),
        Some(element) => reply_item(&mut context.reply, element.as_item()),
    }
    Ok(())
}

/// LLEN key
fn llen(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let length = list_at(&mut shard, args[1], now_ms)?.map_or(0, |list| list.len());
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// LSET key index element
fn lset(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let Some(list) = list_at(&mut shard, args[1], now_ms)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    let index = arguments::integer(args[2])?;
    if !list.set(index, args[3], &limits) {
        return Err("ERR index out of range".into());
    }
    shard.propagate(args);
    context.notify(EventClass::List, "lset", args[1]);
    drop(shard);
    context.reply.ok();
    Ok(())
}

/// LREM key count element
fn lrem(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let count = arguments::integer(args[2])?;
    if count == i64::MIN {
        return Err(NOT_IN_LONG_RANGE.into());
    }
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let removed = match list_at(&mut shard, args[1], now_ms)? {
        None => 0,
        Some(list) => list.remove(args[3], count, &limits),
    };
    if removed > 0 {
        delete_if_empty(&mut shard, args[1], now_ms);
        shard.propagate(args);
        context.notify_removal(EventClass::List, "lrem", &shard, args[1]);
    }
    drop(shard);
    context.reply.integer(removed as i64);
    Ok(())
}

/// LTRIM key start stop
fn ltrim(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let start = arguments::integer(args[2])?;
    let stop = arguments::integer(args[3])?;
    let limits = limits(context.server);
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let removed = match list_at(&mut shard, args[1], now_ms)? {
        None => None,
        Some(list) => Some(list.trim(start, stop, &limits)),
    };
    if removed > Some(0) {
        delete_if_empty(&mut shard, args[1], now_ms);
        shard.propagate(args);
    }
    if removed.is_some() {
        // Redis announces the trim even when it removed nothing.
        context.notify_removal(EventClass::List, "ltrim", &shard, args[1]);
    }
    drop(shard);
    context.reply.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut index = 3;
    while index < args.len() {
        let option = args[index];
        let value = args.get(index + 1);
        match value {
            Some(value) if is(option, "RANK") => {
                rank = arguments::integer(value)?;
                if rank == i64::MIN {
                    return Err(NOT_IN_LONG_RANGE.into());
                }
                if rank == 0 {
                    return Err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list".into());
                }
            }
            Some(value) if is(option, "COUNT") => {
                count = Some(non_negative(value, "ERR COUNT can't be negative")?);
            }
            Some(value) if is(option, "MAXLEN") => {
                maxlen = non_negative(value, "ERR MAXLEN can't be negative")?;
            }
            _ => return Err(errors::SYNTAX.into()),
        }
        index += 2;
    }
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let positions = match list_at(&mut shard, args[1], now_ms)? {
        None => Vec::new(),
        Some(list) => list.positions(args[2], rank, count.unwrap_or(1), maxlen),
    };
    drop(shard);
    let reply = &mut context.reply;
    match count {
        Some(_) => {
            reply.array(positions.len());
            for position in positions {
                reply.integer(position as i64);
            }
        }
        None => match positions.first() {
            Some(position) => reply.integer(*position as i64),
            None => reply.null(),
        },
    }
    Ok(())
}

/// A non-negative integer argument, or `message` (also for a non-integer).
fn non_negative(arg: &[u8], message: &'static str) -> Result<usize, CommandError> {
    match store::number::parse_i64(arg) {
        Some(value) if value >= 0 => Ok(value as usize),
        _ => Err(message.into()),
    }
}

/// LEFT or RIGHT, or a syntax error.
fn end_argument(arg: &[u8]) -> Result<End, CommandError> {
    if is(arg, "LEFT") {
        Ok(End::Left)
    } else if is(arg, "RIGHT") {
        Ok(End::Right)
    } else {
        Err(errors::SYNTAX.into())
    }
}

fn move_command(context: &mut Context, args: &[&[u8]], from: End, to: End) -> CommandResult {
    let (source, destination) = (args[1], args[2]);
    let limits = limits(context.server);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys([source, destination]);
    let moved = move_element(
        &mut locked,
        database,
        source,
        destination,
        from,
        to,
        &limits,
        now_ms,
    )?;
    match moved {
        None => {
            drop(locked);
            context.reply.null();
        }
        Some(element) => {
            locked.propagate(database, args);
            let source_shard = locked.shard(database, source);
            notify_moved(
                context.server,
                database,
                source_shard,
                source,
                destination,
                from,
                to,
                now_ms,
            );
            drop(locked);
            reply_item(&mut context.reply, element.as_item());
        }
    }
    Ok(())
}

/// LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>
fn lmove(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let from = end_argument(args[3])?;
    let to = end_argument(args[4])?;
    move_command(context, args, from, to)
}

/// RPOPLPUSH source destination
fn rpoplpush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    move_command(context, args, End::Right, End::Left)
}

/// The parsed arguments of LMPOP and BLMPOP (from the `numkeys` argument on).
pub struct MultiPop<'a> {
    pub keys: &'a [&'a [u8]],
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key [key ...] <LEFT | RIGHT> [COUNT count]`.
pub fn parse_multi_pop<'a>(args: &'a [&'a [u8]]) -> Result<MultiPop<'a>, CommandError> {
    let numkeys = match store::number::parse_i64(args[0]) {
        Some(numkeys) if numkeys >= 1 => numkeys as usize,
        _ => return Err("ERR numkeys should be greater than 0".into()),
    };
    let end_index = match numkeys.checked_add(1) {
        Some(index) if index < args.len() => index,
        _ => return Err(errors::SYNTAX.into()),
    };
    let end = end_argument(args[end_index])?;
    let mut count = None;
    let mut index = end_index + 1;
    while index < args.len() {
        match args.get(index + 1) {
            Some(value) if count.is_none() && is(args[index], "COUNT") => {
                count = Some(match store::number::parse_i64(value) {
                    Some(count) if count >= 1 => count as usize,
                    _ => return Err("ERR count should be greater than 0".into()),
                });
            }
            _ => return Err(errors::SYNTAX.into()),
        }
        index += 2;
    }
    Ok(MultiPop {
        keys: &args[1..end_index],
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first non-empty list of `request.keys`, replying `[key, [elements]]` and
/// propagating `LPOP|RPOP key count`. Returns whether it popped; replies nothing when not.
pub fn multi_pop(
    server: &Server,
    locked: &mut LockedMany,
    database: usize,
    request: &MultiPop,
    limits: &Limits,
    now_ms: u64,
    reply: &mut ReplyWriter,
) -> Result<bool, CommandError> {
    for key in request.keys {
        let shard = locked.shard(database, key);
        let length = match list_at(shard, key, now_ms)? {
            None => continue,
            Some(list) => list.len(),
        };
        if length == 0 {
            continue;
        }
        let popping = request.count.min(length);
        reply.array(2);
        reply.bulk(key);
        reply.array(popping);
        pop_elements(shard, key, request.end, popping, limits, now_ms, |item| {
            reply_item(reply, item)
        })?;
        let command: &[u8] = match request.end {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        };
        let mut count_text = itoa::Buffer::new();
        let count_text = count_text.format(popping).as_bytes();
        locked.propagate(database, &[command, key, count_text]);
        let shard = locked.shard(database, key);
        server.notify_removal(
            EventClass::List,
            pop_event(request.end),
            database,
            shard,
            key,
            now_ms,
        );
        return Ok(true);
    }
    Ok(false)
}

/// LMPOP numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
fn lmpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let request = parse_multi_pop(&args[1..])?;
    let limits = limits(context.server);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys(request.keys.iter().copied());
    let popped = multi_pop(
        context.server,
        &mut locked,
        database,
        &request,
        &limits,
        now_ms,
        &mut context.reply,
    );
    drop(locked);
    if !popped? {
        context.reply.null_array();
    }
    Ok(())
}

// Blocking commands. Each tries its non-blocking form first, with the locks of all its keys;
// when every key is empty it blocks (see `crate::blocking`) and is served later by the write
// that fills one of its keys, through its `BlockedOperation`.

/// Propagates a pop served to a blocked client (under the writer's lock of `shard`).
fn pop_command_name(end: End) -> &'static [u8] {
    match end {
        End::Left => b"LPOP",
        End::Right => b"RPOP",
    }
}

/// BLPOP / BRPOP (one element) and BLMPOP (up to `count` elements) waiting for a list.
struct BlockedPop {
    end: End,
    /// `None` for BLPOP / BRPOP; the COUNT of BLMPOP.
    count: Option<usize>,
}

impl BlockedOperation for BlockedPop {
    fn serve(
        &self,
        server: &Server,
        database: usize,
        shard: &mut Shard,
        key: &[u8],
        now_ms: u64,
        reply: &mut ReplyWriter,
    ) -> ServeOutcome {
        let length = match list_at(shard, key, now_ms) {
            Ok(Some(list)) if !list.is_empty() => list.len(),
            _ => return ServeOutcome::NotReady,
        };
        let limits = limits(server);
        match self.count {
            None => {
                let Ok(Some(element)) = pop_one(shard, key, self.end, &limits, now_ms) else {
                    unreachable!("the list was checked non-empty under the same lock");
                };
                reply.array(2);
                reply.bulk(key);
                reply_item(reply, element.as_item());
                blocking::propagate_served(
                    server,
                    database,
                    shard,
                    &[pop_command_name(self.end), key],
                );
                server.notify_removal(
                    EventClass::List,
                    pop_event(self.end),
                    database,
                    shard,
                    key,
                    now_ms,
                );
            }
            Some(count) => {
                let popping = count.min(length);
                reply.array(2);
                reply.bulk(key);
                reply.array(popping);
                let _ = pop_elements(shard, key, self.end, popping, &limits, now_ms, |item| {
                    reply_item(reply, item)
                });
                let mut count_text = itoa::Buffer::new();
                let count_text = count_text.format(popping).as_bytes();
                blocking::propagate_served(
                    server,
                    database,
                    shard,
                    &[pop_command_name(self.end), key, count_text],
                );
                server.notify_removal(
                    EventClass::List,
                    pop_event(self.end),
                    database,
                    shard,
                    key,
                    now_ms,
                );
            }
        }
        ServeOutcome::Served
    }

    fn timeout_reply(&self, reply: &mut ReplyWriter) {
        reply.null_array();
    }
}

fn blocking_pop(context: &mut Context, args: &[&[u8]], end: End) -> CommandResult {
    let deadline_ms = blocking::parse_timeout_seconds(args[args.len() - 1], context.now_ms)?;
    let keys = &args[1..args.len() - 1];
    let limits = limits(context.server);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys(keys.iter().copied());
    for key in keys {
        let shard = locked.shard(database, key);
        if let Some(element) = pop_one(shard, key, end, &limits, now_ms)? {
            locked.propagate(database, &[pop_command_name(end), key]);
            let shard = locked.shard(database, key);
            context.server.notify_removal(
                EventClass::List,
                pop_event(end),
                database,
                shard,
                key,
                now_ms,
            );
            drop(locked);
            context.reply.array(2);
            context.reply.bulk(key);
            reply_item(&mut context.reply, element.as_item());
            return Ok(());
        }
    }
    if context.in_transaction() {
        drop(locked);
        context.reply.null_array();
        return Ok(());
    }
    let operation = Box::new(BlockedPop { end, count: None });
    blocking::block(context, &mut locked, keys, deadline_ms, operation);
    Ok(())
}

/// BLPOP key [key ...] timeout
fn blpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    blocking_pop(context, args, End::Left)
}

/// BRPOP key [key ...] timeout
fn brpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    blocking_pop(context, args, End::Right)
}

/// BLMPOP timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
fn blmpop(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let deadline_ms = blocking::parse_timeout_seconds(args[1], context.now_ms)?;
    let request = parse_multi_pop(&args[2..])?;
    let limits = limits(context.server);
    let database = context.database();
    let now_ms = context.now_ms;
    let mut locked = context.lock_keys(request.keys.iter().copied());
    let popped = multi_pop(
        context.server,
        &mut locked,
        database,
        &request,
        &limits,
        now_ms,
        &mut context.reply,
    )?;
    if popped {
        return Ok(());
    }
    if context.in_transaction() {
        drop(locked);
        context.reply.null_array();
        return Ok(());
    }
    let operation = Box::new(BlockedPop {
        end: request.end,
        count: Some(request.count),
    });
    blocking::block(context, &mut locked, request.keys, deadline_ms, operation);
    Ok(())
}

/// How a move is propagated: BLMOVE as LMOVE with the two sides as the client wrote them (as
/// Redis rewrites the command), BRPOPLPUSH as RPOPLPUSH.
enum MoveForm {
    Lmove { from: Vec<u8>, to: Vec<u8> },
    Rpoplpush,
}

/// BLMOVE / BRPOPLPUSH waiting for the source list.
struct BlockedMove {
    destination: Vec<u8>,
    from: End,
    to: End,
    form: MoveForm,
}

impl BlockedMove {
    fn propagated<'a>(&'a self, source: &'a [u8], destination: &'a [u8]) -> Vec<&'a [u8]> {
        match &self.form {
            MoveForm::Rpoplpush => vec![b"RPOPLPUSH", source, destination],
            MoveForm::Lmove { from, to } => vec![b"LMOVE", source, destination, from, to],
        }
    }
}

impl BlockedOperation for BlockedMove {
    fn serve(
        &self,
        server: &Server,
        database: usize,
        shard: &mut Shard,
        key: &[u8],
        now_ms: u64,
        reply: &mut ReplyWriter,
    ) -> ServeOutcome {
        match list_at(shard, key, now_ms) {
            Ok(Some(list)) if !list.is_empty() => {}
            _ => return ServeOutcome::NotReady,
        }
        let destination = self.destination.as_slice();
        if store::keyspace::shard_index(destination) != store::keyspace::shard_index(key) {
            return ServeOutcome::Retry;
        }
        // A destination of another type fails the blocked command, leaving the source as is.
        if let Err(error) = list_at(shard, destination, now_ms) {
            reply.error(error.0.as_bytes());
            return ServeOutcome::Served;
        }
        let limits = limits(server);
        let element = if key == destination {
            let Ok(Some(list)) = list_at(shard, key, now_ms) else {
                unreachable!("the source was checked above");
            };
            list.rotate(self.from, self.to, &limits)
        } else {
            let Ok(Some(element)) = pop_one(shard, key, self.from, &limits, now_ms) else {
                unreachable!("the source was checked non-empty under the same lock");
            };
            match list_at(shard, destination, now_ms) {
                Ok(Some(list)) => list.push_element(self.to, &element, &limits),
                _ => {
                    let mut list = List::new();
                    list.push_element(self.to, &element, &limits);
                    shard.insert(destination, Value::List(Box::new(list)), None, now_ms);
                }
            }
            Some(element)
        };
        let Some(element) = element else {
            return ServeOutcome::NotReady;
        };
        reply_item(reply, element.as_item());
        shard.watched.touch(destination);
        blocking::propagate_served(server, database, shard, &self.propagated(key, destination));
        notify_moved(
            server,
            database,
            shard,
            key,
            destination,
            self.from,
            self.to,
            now_ms,
        );
        ServeOutcome::Served
    }

    fn timeout_reply(&self, reply: &mut ReplyWriter) {
        reply.null();
    }
}

fn blocking_move(
    context: &mut Context,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    timeout: &[u8],
    form: MoveForm,
) -> CommandResult {
    let deadline_ms = blocking::parse_timeout_seconds(timeout, context.now_ms)?;
    let limits = limits(context.server);
    let database = context.database();
    let now_ms = context.now_ms;
    let operation = BlockedMove {
        destination: destination.to_vec(),
        from,
        to,
        form,
    };
    let mut locked = context.lock_keys([source, destination]);
    let moved = move_element(
        &mut locked,
        database,
        source,
        destination,
        from,
        to,
        &limits,
        now_ms,
    )?;
    if let Some(element) = moved {
        locked.propagate(database, &operation.propagated(source, destination));
        let source_shard = locked.shard(database, source);
        notify_moved(
            context.server,
            database,
            source_shard,
            source,
            destination,
            from,
            to,
            now_ms,
        );
        drop(locked);
        reply_item(&mut context.reply, element.as_item());
        return Ok(());
    }
    if context.in_transaction() {
        drop(locked);
        context.reply.null();
        return Ok(());
    }
    blocking::block(
        context,
        &mut locked,
        &[source],
        deadline_ms,
        Box::new(operation),
    );
    Ok(())
}

/// BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout
fn blmove(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let from = end_argument(args[3])?;
    let to = end_argument(args[4])?;
    let form = MoveForm::Lmove {
        from: args[3].to_vec(),
        to: args[4].to_vec(),
    };
    blocking_move(context, args[1], args[2], from, to, args[5], form)
}

/// BRPOPLPUSH source destination timeout
fn brpoplpush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    blocking_move(
        context,
        args[1],
        args[2],
        End::Right,
        End::Left,
        args[3],
        MoveForm::Rpoplpush,
    )
}
