//! Stream commands: XADD, XRANGE, XREAD, consumer groups (XGROUP, XREADGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM), XINFO and the rest of Redis's stream family, with blocking reads.
//!
//! Propagation follows Redis 7.2: XADD with a generated ID is propagated with the ID it got, an
//! approximate trim (`~`) as the exact trim it did (`=` and the resulting length or first ID);
//! reads by a group propagate as `XCLAIM ... FORCE JUSTID LASTID` per delivered entry (and
//! `XGROUP SETID` when no XCLAIM carried the group's new last ID), consumers XREADGROUP NOACK
//! creates as `XGROUP CREATECONSUMER`; XCLAIM and XAUTOCLAIM propagate the resulting state as
//! XCLAIMs.

use std::sync::atomic::Ordering;

use resp::ReplyWriter;
use store::stream::{
    NodeLimits, PendingEntry, Stream, StreamEntry, StreamId, TrimStrategy, ENTRIES_READ_UNKNOWN,
};
use store::{Shard, Value};

use crate::arguments::{self, is};
use crate::blocking::{self, BlockedOperation, ServeOutcome};
use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::notify::EventClass;
use crate::server::Server;

pub fn register(table: &mut CommandTable) {
    table.handle("xadd", xadd);
    table.handle("xlen", xlen);
    table.handle("xrange", xrange);
    table.handle("xrevrange", xrevrange);
    table.handle("xdel", xdel);
    table.handle("xtrim", xtrim);
    table.handle("xsetid", xsetid);
    table.handle("xread", xread);
    table.handle("xreadgroup", xreadgroup);
    table.handle("xgroup|create", xgroup_create);
    table.handle("xgroup|setid", xgroup_setid);
    table.handle("xgroup|destroy", xgroup_destroy);
    table.handle("xgroup|createconsumer", xgroup_createconsumer);
    table.handle("xgroup|delconsumer", xgroup_delconsumer);
    table.handle("xgroup|help", xgroup_help);
    table.handle("xack", xack);
    table.handle("xpending", xpending);
    table.handle("xclaim", xclaim);
    table.handle("xautoclaim", xautoclaim);
    table.handle("xinfo|stream", xinfo_stream);
    table.handle("xinfo|groups", xinfo_groups);
    table.handle("xinfo|consumers", xinfo_consumers);
    table.handle("xinfo|help", xinfo_help);
}

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const INVALID_START: &str = "ERR invalid start ID for the interval";
const INVALID_END: &str = "ERR invalid end ID for the interval";

// ---------------------------------------------------------------------------------------------
// Argument parsing.

/// `ms` or `ms-seq`, nothing special allowed.
fn strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CommandError> {
    StreamId::parse(arg, missing_seq).ok_or_else(|| INVALID_ID.into())
}

/// A range bound: `-`, `+`, an ID, or `(ID` (exclusive). Returns the ID and whether exclusive.
fn bound_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CommandError> {
    match arg {
        b"-" => Ok((StreamId::MIN, false)),
        b"+" => Ok((StreamId::MAX, false)),
        [b'(', rest @ ..] => Ok((strict_id(rest, missing_seq)?, true)),
        _ => Ok((strict_id(arg, missing_seq)?, false)),
    }
}

/// The inclusive start of an interval.
fn interval_start(arg: &[u8]) -> Result<StreamId, CommandError> {
    let (id, exclusive) = bound_id(arg, 0)?;
    if exclusive {
        return id.next().ok_or_else(|| INVALID_START.into());
    }
    Ok(id)
}

/// The inclusive end of an interval.
fn interval_end(arg: &[u8]) -> Result<StreamId, CommandError> {
    let (id, exclusive) = bound_id(arg, u64::MAX)?;
    if exclusive {
        return id.previous().ok_or_else(|| INVALID_END.into());
    }
    Ok(id)
}

fn id_bytes(id: StreamId) -> Vec<u8> {
    id.to_bytes()
}

fn text(arg: &[u8]) -> String {
    arguments::text(arg)
}

// ---------------------------------------------------------------------------------------------
// Store access and replies.

/// The stream at `key`, `None` if missing, WRONGTYPE for other types.
fn stream_at<'s>(
    shard: &'s mut Shard,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut Stream>, CommandError> {
    match shard.lookup(key, now_ms) {
        None => Ok(None),
        Some(entry) => match entry.into_value_mut() {
            Value::Stream(stream) => Ok(Some(stream)),
            #[allow(unreachable_patterns)]
            _ => Err(errors::WRONG_TYPE.into()),
        },
    }
}

fn reply_id(reply: &mut ReplyWriter, id: StreamId) {
    reply.bulk(store::stream::IdText::default().format(id));
}

fn reply_entry(reply: &mut ReplyWriter, entry: &StreamEntry) {
    reply.array(2);
    reply_id(reply, entry.id);
    reply.array(entry.fields.len());
    for field in &entry.fields {
        reply.bulk(field);
    }
}

fn reply_entries(reply: &mut ReplyWriter, entries: &[StreamEntry]) {
    reply.array(entries.len());
    for entry in entries {
        reply_entry(reply, entry);
    }
}

fn node_limits(server: &Server) -> NodeLimits {
    let hot = &server.config.hot;
    NodeLimits {
        max_bytes: hot.stream_node_max_bytes.load(Ordering::Relaxed).max(0) as usize,
        max_entries: hot.stream_node_max_entries.load(Ordering::Relaxed).max(0) as usize,
    }
}

// ---------------------------------------------------------------------------------------------
// XADD, XTRIM.

struct TrimArguments {
    strategy: Option<TrimStrategy>,
    approximate: bool,
    limit: u64,
    /// Index of the `~`/`=` (if any) and of the threshold, for the propagated form.
    operator_index: Option<usize>,
    threshold_index: usize,
}

enum AddId {
    Auto,
    Explicit(StreamId),
    /// `ms-*`.
    Sequence(u64),
}

/// Parses trimming options (and XADD's NOMKSTREAM and ID) from `args[2..]`. Returns the index
/// after the ID for XADD.
fn parse_trim(
    context: &Context,
    args: &[&[u8]],
    xadd: bool,
) -> Result<(TrimArguments, bool, AddId, usize), CommandError> {
    let mut trim = TrimArguments {
        strategy: None,
        approximate: false,
        limit: 0,
        operator_index: None,
        threshold_index: 0,
    };
    let mut no_make_stream = false;
    let mut limit_given = false;
    let mut id = AddId::Auto;
    let mut index = 2;
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = args[index];
        if xadd && option == b"*" {
            break;
        } else if (is(option, "maxlen") || is(option, "minid")) && more > 0 {
            let maxlen = is(option, "maxlen");
            let next = args[index + 1];
            if more >= 2 && (next == b"~" || next == b"=") {
                trim.approximate = next == b"~";
                trim.operator_index = Some(index + 1);
                index += 1;
            } else {
                trim.approximate = false;
                trim.operator_index = None;
            }
            let threshold = args[index + 1];
            if maxlen {
                let length = arguments::integer(threshold)?;
                if length < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                trim.strategy = Some(TrimStrategy::MaxLen(length as u64));
            } else {
                trim.strategy = Some(TrimStrategy::MinId(strict_id(threshold, 0)?));
            }
            index += 1;
            trim.threshold_index = index;
        } else if is(option, "limit") && more > 0 {
            let limit = arguments::integer(args[index + 1])?;
            if limit < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            trim.limit = limit as u64;
            limit_given = true;
            index += 1;
        } else if xadd && is(option, "nomkstream") {
            no_make_stream = true;
        } else if xadd {
            id = match option.strip_suffix(b"-*") {
                Some(ms) => AddId::Sequence(
                    StreamId::parse(ms, 0)
                        .filter(|_| !ms.contains(&b'-'))
                        .ok_or_else(|| CommandError::from(INVALID_ID))?
                        .ms,
                ),
                None => AddId::Explicit(strict_id(option, 0)?),
            };
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if limit_given && trim.limit != 0 && trim.strategy.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && trim.strategy.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if context.client.must_obey() {
        // The AOF holds the exact threshold the trim reached (`~` rewritten to `=`); a LIMIT
        // given with it is ignored, as Redis does for its master and AOF.
        trim.limit = 0;
    } else if limit_given {
        if !trim.approximate {
            return Err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
            );
        }
    } else if trim.approximate {
        let entries = context
            .server
            .config
            .hot
            .stream_node_max_entries
            .load(Ordering::Relaxed);
        let limit = entries.saturating_mul(100);
        trim.limit = if limit <= 0 || limit > 1_000_000 {
            10_000
        } else {
            limit as u64
        };
    } else {
        trim.limit = 0;
    }
    Ok((trim, no_make_stream, id, index + 1))
}

/// Trims `stream`; returns the number removed. Rewrites `~` and the threshold in `rewritten`
/// so the propagated form trims exactly the same.
fn apply_trim(stream: &mut Stream, trim: &TrimArguments, rewritten: &mut [Vec<u8>]) -> u64 {
    let Some(strategy) = trim.strategy else {
        return 0;
    };
    let removed = stream.trim(strategy, trim.approximate, trim.limit);
    if trim.approximate {
        if let Some(operator) = trim.operator_index {
            rewritten[operator] = b"=".to_vec();
        }
        rewritten[trim.threshold_index] = match strategy {
            TrimStrategy::MaxLen(_) => stream.len().to_string().into_bytes(),
            TrimStrategy::MinId(_) => id_bytes(stream.first_id()),
        };
    }
    removed
}

/// XADD key [NOMKSTREAM] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]] <* | id> field value [field value ...]
fn xadd(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (trim, no_make_stream, id, field_index) = parse_trim(context, args, true)?;
    let field_count = args.len().saturating_sub(field_index);
    if field_count < 2 || field_count % 2 == 1 {
        return Err(crate::context::wrong_arity("xadd"));
    }
    if let AddId::Explicit(id) = id {
        if id.is_zero() {
            return Err("ERR The ID specified in XADD must be greater than 0-0".into());
        }
    }
    let key = args[1];
    let now_ms = context.now_ms;
    let limits = node_limits(context.server);
    let mut shard = context.lock(key);
    let exists = stream_at(&mut shard, key, now_ms)?.is_some();
    if !exists {
        if no_make_stream {
            context.reply.null();
            return Ok(());
        }
        shard.insert(key, Value::Stream(Box::default()), None, now_ms);
    }
    let stream = stream_at(&mut shard, key, now_ms)?.expect("just checked or created");
    if stream.last_id() == StreamId::MAX {
        return Err(
            "ERR The stream has exhausted the last possible ID, unable to add more items".into(),
        );
    }
    let last = stream.last_id();
    const TOO_SMALL: &str =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    let new_id = match id {
        AddId::Auto => stream.next_id(now_ms).expect("not exhausted"),
        AddId::Explicit(id) => {
            if id <= last {
                return Err(TOO_SMALL.into());
            }
            id
        }
        AddId::Sequence(ms) => {
            if ms < last.ms || (ms == last.ms && last.seq == u64::MAX) {
                return Err(TOO_SMALL.into());
            }
            if ms == last.ms {
                StreamId::new(ms, last.seq + 1)
            } else {
                StreamId::new(ms, 0)
            }
        }
    };
    stream.append(new_id, &args[field_index..], limits);
    let mut rewritten: Vec<Vec<u8>> = args.iter().map(|arg| arg.to_vec()).collect();
    if !matches!(id, AddId::Explicit(_)) {
        rewritten[field_index - 1] = id_bytes(new_id);
    }
    let removed = apply_trim(stream, &trim, &mut rewritten);
    shard.blocked.signal(key);
    let propagated: Vec<&[u8]> = rewritten.iter().map(Vec::as_slice).collect();
    shard.propagate(&propagated);
    drop(shard);
    context.notify(EventClass::Stream, "xadd", key);
    if removed > 0 {
        context.notify(EventClass::Stream, "xtrim", key);
    }
    reply_id(&mut context.reply, new_id);
    Ok(())
}

/// XTRIM key <MAXLEN | MINID> [= | ~] threshold [LIMIT count]
fn xtrim(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (trim, _, _, _) = parse_trim(context, args, false)?;
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        context.reply.integer(0);
        return Ok(());
    };
    let mut rewritten: Vec<Vec<u8>> = args.iter().map(|arg| arg.to_vec()).collect();
    let removed = apply_trim(stream, &trim, &mut rewritten);
    if removed > 0 {
        let propagated: Vec<&[u8]> = rewritten.iter().map(Vec::as_slice).collect();
        shard.propagate(&propagated);
        drop(shard);
        context.notify(EventClass::Stream, "xtrim", key);
    }
    context.reply.integer(removed as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XLEN, XRANGE, XREVRANGE, XDEL, XSETID.

/// XLEN key
fn xlen(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let length = stream_at(&mut shard, args[1], now_ms)?.map_or(0, |stream| stream.len());
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// XRANGE key start end [COUNT count]
fn xrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range(context, args, Direction::Forward)
}

/// XREVRANGE key end start [COUNT count]
fn xrevrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    range(context, args, Direction::Reverse)
}

fn range(context: &mut Context, args: &[&[u8]], direction: Direction) -> CommandResult {
    let (start_arg, end_arg) = match direction {
        Direction::Forward => (args[2], args[3]),
        Direction::Reverse => (args[3], args[2]),
    };
    let start = interval_start(start_arg)?;
    let end = interval_end(end_arg)?;
    let mut count: Option<usize> = None;
    let mut index = 4;
    while index < args.len() {
        if is(args[index], "count") && index + 1 < args.len() {
            count = Some(arguments::integer(args[index + 1])?.max(0) as usize);
            index += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let now_ms = context.now_ms;
    let mut shard = context.lock(args[1]);
    let Some(stream) = stream_at(&mut shard, args[1], now_ms)? else {
        drop(shard);
        context.reply.array(0);
        return Ok(());
    };
    if count == Some(0) {
        drop(shard);
        context.reply.null_array();
        return Ok(());
    }
    let entries = stream.range(start, end, count, direction == Direction::Reverse);
    drop(shard);
    reply_entries(&mut context.reply, &entries);
    Ok(())
}

/// XDEL key id [id ...]
fn xdel(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let ids = args[2..]
        .iter()
        .map(|arg| strict_id(arg, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        drop(shard);
        context.reply.integer(0);
        return Ok(());
    };
    let deleted = ids.iter().filter(|id| stream.delete(**id)).count();
    if deleted > 0 {
        shard.propagate(args);
        drop(shard);
        context.notify(EventClass::Stream, "xdel", key);
    }
    context.reply.integer(deleted as i64);
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let id = strict_id(args[2], 0)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted: Option<StreamId> = None;
    let mut index = 3;
    while index < args.len() {
        let more = index + 1 < args.len();
        if is(args[index], "entriesadded") && more {
            let value = arguments::integer(args[index + 1])?;
            if value < 0 {
                return Err("ERR entries_added must be positive".into());
            }
            entries_added = Some(value as u64);
        } else if is(args[index], "maxdeletedid") && more {
            let value = strict_id(args[index + 1], 0)?;
            if id < value {
                return Err(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
                        .into(),
                );
            }
            max_deleted = Some(value);
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 2;
    }
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    if id < stream.max_deleted_id() {
        return Err(
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id".into(),
        );
    }
    if !stream.is_empty() {
        if id < stream.last_entry_id() {
            return Err(
                "ERR The ID specified in XSETID is smaller than the target stream top item".into(),
            );
        }
        if entries_added.is_some_and(|added| added < stream.len()) {
            return Err(
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
                    .into(),
            );
        }
    }
    stream.set_metadata(id, entries_added, max_deleted.filter(|id| !id.is_zero()));
    shard.propagate(args);
    drop(shard);
    context.notify(EventClass::Stream, "xsetid", key);
    context.reply.ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XREAD, XREADGROUP (and their blocking forms).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadFrom {
    /// Entries after this ID (XREAD, or XREADGROUP's history).
    After(StreamId),
    /// `>`: entries never delivered to the group.
    New,
    /// `$` (XREAD only), resolved once the key is locked.
    Last,
    /// `+` (XREAD only, as Redis 7.4): the last entry; on an empty stream it waits as `$`.
    LastEntry,
}

#[derive(Clone)]
struct ReadRequest {
    group: Option<(Vec<u8>, Vec<u8>)>,
    no_ack: bool,
    count: Option<usize>,
    keys: Vec<Vec<u8>>,
    from: Vec<ReadFrom>,
}

/// An entry as delivered: `None` fields for history entries deleted since.
struct Delivered {
    id: StreamId,
    fields: Option<Vec<Vec<u8>>>,
}

fn reply_delivered(reply: &mut ReplyWriter, entries: &[Delivered]) {
    reply.array(entries.len());
    for entry in entries {
        reply.array(2);
        reply_id(reply, entry.id);
        match &entry.fields {
            None => reply.null_array(),
            Some(fields) => {
                reply.array(fields.len());
                for field in fields {
                    reply.bulk(field);
                }
            }
        }
    }
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last` for a PEL entry.
fn xclaim_form(
    key: &[u8],
    group_name: &[u8],
    id: StreamId,
    pending: &PendingEntry,
    group_last_id: StreamId,
) -> Vec<Vec<u8>> {
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group_name.to_vec(),
        pending.consumer.to_vec(),
        b"0".to_vec(),
        id_bytes(id),
        b"TIME".to_vec(),
        pending.delivery_time_ms.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        pending.delivery_count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        id_bytes(group_last_id),
    ]
}

/// `XGROUP SETID key group last ENTRIESREAD n`.
fn setid_form(key: &[u8], group_name: &[u8], last_id: StreamId, entries_read: i64) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group_name.to_vec(),
        id_bytes(last_id),
        b"ENTRIESREAD".to_vec(),
        entries_read.to_string().into_bytes(),
    ]
}

fn createconsumer_form(key: &[u8], group_name: &[u8], consumer: &[u8]) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"CREATECONSUMER".to_vec(),
        key.to_vec(),
        group_name.to_vec(),
        consumer.to_vec(),
    ]
}

/// The writes a stream read or claim propagates. Its XCLAIM and XGROUP SETID forms are built
/// only when something consumes the propagation stream (the AOF, a replica, a transaction or
/// script capturing its writes); otherwise they are only counted (the "dirty" counter). A
/// consumer's implicit creation is always recorded (its keyspace event needs it).
struct Effects {
    forms: Vec<Vec<Vec<u8>>>,
    record: bool,
    skipped: u64,
}

impl Effects {
    fn new(record: bool) -> Effects {
        Effects {
            forms: Vec::new(),
            record,
            skipped: 0,
        }
    }

    /// Whether `context`'s writes reach anyone.
    fn for_context(context: &Context) -> Effects {
        Effects::new(context.scope.is_some() || context.server.propagation.is_active())
    }

    fn push(&mut self, form: impl FnOnce() -> Vec<Vec<u8>>) {
        if self.record {
            self.forms.push(form());
        } else {
            self.skipped += 1;
        }
    }
}

/// Makes sure `consumer` exists in the group (propagating its creation) and marks it seen.
fn touch_consumer(
    stream: &mut Stream,
    key: &[u8],
    group_name: &[u8],
    consumer: &[u8],
    now_ms: u64,
    propagation: &mut Effects,
) {
    let group = stream.group_mut(group_name).expect("the group exists");
    let (entry, created) = group.consumer_mut(consumer, now_ms);
    entry.seen_time_ms = now_ms;
    if created {
        propagation
            .forms
            .push(createconsumer_form(key, group_name, consumer));
    }
}

/// The forms to propagate: a consumer's implicit creation only when asked (XREADGROUP with
/// NOACK, where no XCLAIM would create it on the replica), as Redis does.
fn propagated_forms(
    propagation: &Effects,
    consumer_creation: bool,
) -> impl Iterator<Item = Vec<&[u8]>> {
    propagation
        .forms
        .iter()
        .filter(move |form| consumer_creation || !(form.len() == 5 && form[1] == b"CREATECONSUMER"))
        .map(|form| form.iter().map(Vec::as_slice).collect())
}

/// Keyspace notifications for consumers that reads and claims created implicitly.
fn notify_created_consumers(context: &Context, propagation: &Effects) {
    for command in &propagation.forms {
        if command.len() == 5 && command[1] == b"CREATECONSUMER" {
            context.notify(EventClass::Stream, "xgroup-createconsumer", &command[2]);
        }
    }
}

/// Reads one stream for a request: `None` when there is nothing to serve (so the reader may
/// block). The group and consumer must exist.
fn read_one(
    stream: &mut Stream,
    key: &[u8],
    request: &ReadRequest,
    from: ReadFrom,
    now_ms: u64,
    propagation: &mut Effects,
) -> Option<Vec<Delivered>> {
    let Some((group_name, consumer)) = &request.group else {
        if from == ReadFrom::LastEntry {
            let last = stream.range(StreamId::MIN, StreamId::MAX, Some(1), true);
            if last.is_empty() {
                return None;
            }
            return Some(
                last.into_iter()
                    .map(|entry| Delivered {
                        id: entry.id,
                        fields: Some(entry.fields),
                    })
                    .collect(),
            );
        }
        let ReadFrom::After(after) = from else {
            unreachable!("XREAD resolves $ before reading")
        };
        if stream.is_empty() || stream.last_entry_id() <= after {
            return None;
        }
        let start = after.next()?;
        let entries = stream.range(start, StreamId::MAX, request.count, false);
        return Some(
            entries
                .into_iter()
                .map(|entry| Delivered {
                    id: entry.id,
                    fields: Some(entry.fields),
                })
                .collect(),
        );
    };
    match from {
        ReadFrom::After(after) => {
            // History: the consumer's own pending entries after `after`.
            let group = stream.group(group_name).expect("the group exists");
            let ids: Vec<StreamId> = match (group.consumers.get(&consumer[..]), after.next()) {
                (Some(state), Some(start)) => state
                    .pending
                    .range(start..)
                    .take(request.count.unwrap_or(usize::MAX))
                    .copied()
                    .collect(),
                _ => Vec::new(),
            };
            let mut delivered = Vec::with_capacity(ids.len());
            for id in ids {
                let fields = stream.get(id).map(|entry| entry.fields);
                let group = stream.group_mut(group_name).expect("the group exists");
                let last_id = group.last_id;
                let pending = group.deliver(id, consumer, now_ms);
                pending.delivery_count += 1;
                propagation.push(|| xclaim_form(key, group_name, id, pending, last_id));
                delivered.push(Delivered { id, fields });
            }
            Some(delivered)
        }
        ReadFrom::New | ReadFrom::Last | ReadFrom::LastEntry => {
            let last_delivered = stream.group(group_name).expect("the group exists").last_id;
            if stream.is_empty() || stream.last_entry_id() <= last_delivered {
                return None;
            }
            let start = last_delivered.next()?;
            let entries = stream.range(start, StreamId::MAX, request.count, false);
            let mut delivered = Vec::with_capacity(entries.len());
            for entry in entries {
                stream.advance_group(group_name, entry.id);
                let group = stream.group_mut(group_name).expect("the group exists");
                if !request.no_ack {
                    let last_id = group.last_id;
                    let pending = group.deliver(entry.id, consumer, now_ms);
                    pending.delivery_count = 1;
                    propagation.push(|| xclaim_form(key, group_name, entry.id, pending, last_id));
                }
                delivered.push(Delivered {
                    id: entry.id,
                    fields: Some(entry.fields),
                });
            }
            let group = stream.group_mut(group_name).expect("the group exists");
            if !delivered.is_empty() {
                if let Some(state) = group.consumers.get_mut(&consumer[..]) {
                    state.active_time_ms = Some(now_ms);
                }
                // Redis 7.2 propagates the group's position unconditionally (the XCLAIMs do
                // not carry entries-read).
                {
                    propagation
                        .push(|| setid_form(key, group_name, group.last_id, group.entries_read));
                }
            }
            Some(delivered)
        }
    }
}

fn parse_read(
    args: &[&[u8]],
    group_read: bool,
) -> Result<(ReadRequest, Option<u64>, usize), CommandError> {
    let mut request = ReadRequest {
        group: None,
        no_ack: false,
        count: None,
        keys: Vec::new(),
        from: Vec::new(),
    };
    let mut block_ms: Option<u64> = None;
    let mut streams_index = 0;
    let mut index = 1;
    let command_name = if group_read { "xreadgroup" } else { "xread" };
    while index < args.len() {
        let more = args.len() - index - 1;
        let option = args[index];
        if is(option, "block") && more > 0 {
            index += 1;
            let timeout = store::number::parse_i64(args[index]).ok_or_else(|| {
                CommandError::from("ERR timeout is not an integer or out of range")
            })?;
            if timeout < 0 {
                return Err("ERR timeout is negative".into());
            }
            block_ms = Some(timeout as u64);
        } else if is(option, "count") && more > 0 {
            index += 1;
            let count = arguments::integer(args[index])?;
            request.count = if count <= 0 {
                None
            } else {
                Some(count as usize)
            };
        } else if is(option, "streams") && more > 0 {
            streams_index = index + 1;
            let remaining = args.len() - streams_index;
            if !remaining.is_multiple_of(2) {
                let symbol = if group_read { '>' } else { '$' };
                return Err(format!(
                    "ERR Unbalanced '{command_name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                )
                .into());
            }
            break;
        } else if is(option, "group") && more >= 2 {
            if !group_read {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            request.group = Some((args[index + 1].to_vec(), args[index + 2].to_vec()));
            index += 2;
        } else if is(option, "noack") {
            if !group_read {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            request.no_ack = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if streams_index == 0 {
        return Err(errors::SYNTAX.into());
    }
    if group_read && request.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    let count = (args.len() - streams_index) / 2;
    for position in 0..count {
        request.keys.push(args[streams_index + position].to_vec());
        let id = args[streams_index + count + position];
        request.from.push(match id {
            b"$" => {
                if group_read {
                    return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
                }
                ReadFrom::Last
            }
            b"+" if !group_read => ReadFrom::LastEntry,
            b">" => {
                if !group_read {
                    return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
                }
                ReadFrom::New
            }
            _ => ReadFrom::After(strict_id(id, 0)?),
        });
    }
    Ok((request, block_ms, streams_index))
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
fn xread(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    read(context, args, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
fn xreadgroup(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    read(context, args, true)
}

fn read(context: &mut Context, args: &[&[u8]], group_read: bool) -> CommandResult {
    let (mut request, block_ms, streams_index) = parse_read(args, group_read)?;
    let database = context.database();
    let now_ms = context.now_ms;
    let keys: Vec<&[u8]> = args[streams_index..streams_index + request.keys.len()].to_vec();
    let mut locked = context.lock_keys(keys.iter().copied());
    // Validate every key first (types, groups), resolving `$`.
    for (position, key) in keys.iter().enumerate() {
        let stream = stream_at(locked.shard(database, key), key, now_ms)?;
        if let Some((group_name, _)) = &request.group {
            if stream.as_ref().and_then(|s| s.group(group_name)).is_none() {
                return Err(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    text(key),
                    text(group_name)
                )
                .into());
            }
        }
        let has_entries = stream.as_ref().is_some_and(|stream| !stream.is_empty());
        let resolve_as_last = request.from[position] == ReadFrom::Last
            || (request.from[position] == ReadFrom::LastEntry && !has_entries);
        if resolve_as_last {
            let last = stream.map_or(StreamId::MIN, |stream| stream.last_id());
            request.from[position] = ReadFrom::After(last);
        }
    }
    let mut served: Vec<(usize, Vec<Delivered>)> = Vec::new();
    let mut propagation = Effects::for_context(context);
    let mut unrecorded: Vec<(&[u8], u64)> = Vec::new();
    for (position, key) in keys.iter().enumerate() {
        let Some(stream) = stream_at(locked.shard(database, key), key, now_ms)? else {
            continue;
        };
        let skipped_before = propagation.skipped;
        if let Some((group_name, consumer)) = &request.group {
            touch_consumer(stream, key, group_name, consumer, now_ms, &mut propagation);
        }
        let from = request.from[position];
        if let Some(delivered) = read_one(stream, key, &request, from, now_ms, &mut propagation) {
            served.push((position, delivered));
        }
        if propagation.skipped > skipped_before {
            unrecorded.push((key, propagation.skipped - skipped_before));
        }
    }
    for command in propagated_forms(&propagation, request.no_ack) {
        locked.propagate(database, &command);
    }
    for (key, writes) in unrecorded {
        locked.changed_unpropagated(database, key, writes);
    }
    if !served.is_empty() {
        drop(locked);
        notify_created_consumers(context, &propagation);
        write_read_reply(&mut context.reply, &keys, &served);
        return Ok(());
    }
    match block_ms {
        Some(timeout_ms) if !context.in_transaction() => {
            let deadline_ms = if timeout_ms == 0 {
                0
            } else {
                now_ms.saturating_add(timeout_ms)
            };
            blocking::block(
                context,
                &mut locked,
                &keys,
                deadline_ms,
                Box::new(BlockedRead { request }),
            );
            drop(locked);
        }
        _ => {
            drop(locked);
            context.reply.null_array();
        }
    }
    notify_created_consumers(context, &propagation);
    Ok(())
}

fn write_read_reply(reply: &mut ReplyWriter, keys: &[&[u8]], served: &[(usize, Vec<Delivered>)]) {
    if reply.is_resp3() {
        reply.map(served.len());
        for (position, delivered) in served {
            reply.bulk(keys[*position]);
            reply_delivered(reply, delivered);
        }
    } else {
        reply.array(served.len());
        for (position, delivered) in served {
            reply.array(2);
            reply.bulk(keys[*position]);
            reply_delivered(reply, delivered);
        }
    }
}

/// A blocked XREAD / XREADGROUP.
struct BlockedRead {
    request: ReadRequest,
}

impl BlockedOperation for BlockedRead {
    fn serve(
        &self,
        server: &Server,
        database: usize,
        shard: &mut Shard,
        key: &[u8],
        now_ms: u64,
        reply: &mut ReplyWriter,
    ) -> ServeOutcome {
        let Some(position) = self.request.keys.iter().position(|k| k == key) else {
            return ServeOutcome::NotReady;
        };
        // As Redis 7.2 re-executes the command when the key is gone, changed type or lost the
        // group, a retry gives the same errors (NOGROUP, WRONGTYPE).
        let stream = match shard.lookup(key, now_ms) {
            Some(entry) => match entry.into_value_mut() {
                Value::Stream(stream) => stream,
                // A group reader re-runs (WRONGTYPE); a plain reader keeps waiting, as Redis.
                _ if self.request.group.is_some() => return ServeOutcome::Retry,
                _ => return ServeOutcome::NotReady,
            },
            None if self.request.group.is_some() => return ServeOutcome::Retry,
            None => return ServeOutcome::NotReady,
        };
        let mut propagation = Effects::new(server.propagation.is_active());
        if let Some((group_name, consumer)) = &self.request.group {
            if stream.group(group_name).is_none() {
                return ServeOutcome::Retry;
            }
            let last_delivered = stream.group(group_name).expect("checked").last_id;
            if stream.is_empty() || stream.last_entry_id() <= last_delivered {
                return ServeOutcome::NotReady;
            }
            touch_consumer(stream, key, group_name, consumer, now_ms, &mut propagation);
        }
        let from = self.request.from[position];
        let Some(delivered) = read_one(stream, key, &self.request, from, now_ms, &mut propagation)
        else {
            return ServeOutcome::NotReady;
        };
        if delivered.is_empty() {
            return ServeOutcome::NotReady;
        }
        for command in propagated_forms(&propagation, self.request.no_ack) {
            crate::blocking::propagate_served(server, database, shard, &command);
        }
        if propagation.skipped > 0 {
            shard.watched.touch(key);
            if server.tracking.active() {
                server.tracking.invalidate(key);
            }
            server.propagation.count_unpropagated(propagation.skipped);
        }
        write_read_reply(reply, &[key], &[(0, delivered)]);
        ServeOutcome::Served
    }

    fn timeout_reply(&self, reply: &mut ReplyWriter) {
        reply.null_array();
    }

    fn wakes_on_deletion(&self) -> bool {
        self.request.group.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// XGROUP.

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CommandError {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    )
    .into()
}

const XGROUP_NEEDS_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

fn subcommand_syntax_error(args: &[&[u8]]) -> CommandError {
    crate::context::subcommand_syntax_error("XGROUP", args[1])
}

/// Options of CREATE / SETID after the ID: MKSTREAM (CREATE only), ENTRIESREAD.
fn parse_group_options(args: &[&[u8]], create: bool) -> Result<(bool, Option<i64>), CommandError> {
    let mut make_stream = false;
    let mut entries_read = None;
    let mut index = 5;
    while index < args.len() {
        if create && is(args[index], "mkstream") {
            make_stream = true;
            index += 1;
        } else if is(args[index], "entriesread") && index + 1 < args.len() {
            let value = arguments::integer(args[index + 1])?;
            if value < 0 && value != ENTRIES_READ_UNKNOWN {
                return Err("ERR value for ENTRIESREAD must be positive or -1".into());
            }
            entries_read = Some(value);
            index += 2;
        } else {
            return Err(subcommand_syntax_error(args));
        }
    }
    Ok((make_stream, entries_read))
}

/// XGROUP CREATE key group <id | $> [MKSTREAM] [ENTRIESREAD entries-read]
fn xgroup_create(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (make_stream, entries_read) = parse_group_options(args, true)?;
    if args.len() > 8 {
        return Err(subcommand_syntax_error(args));
    }
    let (key, group) = (args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let exists = stream_at(&mut shard, key, now_ms)?.is_some();
    if !exists && !make_stream {
        return Err(XGROUP_NEEDS_KEY.into());
    }
    let explicit = if args[4] == b"$" {
        None
    } else {
        Some(strict_id(args[4], 0)?)
    };
    if !exists {
        shard.insert(key, Value::Stream(Box::default()), None, now_ms);
    }
    let stream = stream_at(&mut shard, key, now_ms)?.expect("exists");
    let id = explicit.unwrap_or(stream.last_id());
    let entries_read = entries_read.unwrap_or(ENTRIES_READ_UNKNOWN);
    if !stream.create_group(group, id, entries_read) {
        return Err("BUSYGROUP Consumer Group name already exists".into());
    }
    shard.propagate(args);
    drop(shard);
    context.notify(EventClass::Stream, "xgroup-create", key);
    context.reply.ok();
    Ok(())
}

/// XGROUP SETID key group <id | $> [ENTRIESREAD entries-read]
fn xgroup_setid(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (_, entries_read) = parse_group_options(args, false)?;
    if args.len() != 5 && args.len() != 7 {
        return Err(subcommand_syntax_error(args));
    }
    let (key, group) = (args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(XGROUP_NEEDS_KEY.into());
    };
    if stream.group(group).is_none() {
        return Err(nogroup_for_key(group, key));
    }
    let id = match args[4] {
        b"$" => stream.last_id(),
        b"-" => StreamId::MIN,
        b"+" => StreamId::MAX,
        id => strict_id(id, 0)?,
    };
    let entries_read = entries_read.unwrap_or(ENTRIES_READ_UNKNOWN);
    let state = stream.group_mut(group).expect("checked");
    state.last_id = id;
    state.entries_read = entries_read;
    shard.propagate(args);
    drop(shard);
    context.notify(EventClass::Stream, "xgroup-setid", key);
    context.reply.ok();
    Ok(())
}

/// XGROUP DESTROY key group
fn xgroup_destroy(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, group) = (args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(XGROUP_NEEDS_KEY.into());
    };
    let destroyed = stream.destroy_group(group);
    if destroyed {
        shard.propagate(args);
        // Readers blocked on the group get NOGROUP.
        shard.blocked.signal(key);
        drop(shard);
        context.notify(EventClass::Stream, "xgroup-destroy", key);
    }
    context.reply.integer(i64::from(destroyed));
    Ok(())
}

/// XGROUP CREATECONSUMER key group consumer
fn xgroup_createconsumer(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, group, consumer) = (args[2], args[3], args[4]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(XGROUP_NEEDS_KEY.into());
    };
    let Some(state) = stream.group_mut(group) else {
        return Err(nogroup_for_key(group, key));
    };
    let created = state.create_consumer(consumer, now_ms);
    if created {
        shard.propagate(args);
        drop(shard);
        context.notify(EventClass::Stream, "xgroup-createconsumer", key);
    }
    context.reply.integer(i64::from(created));
    Ok(())
}

/// XGROUP DELCONSUMER key group consumer
fn xgroup_delconsumer(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, group, consumer) = (args[2], args[3], args[4]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(XGROUP_NEEDS_KEY.into());
    };
    let Some(state) = stream.group_mut(group) else {
        return Err(nogroup_for_key(group, key));
    };
    let pending = state.delete_consumer(consumer);
    if pending.is_some() {
        shard.propagate(args);
        drop(shard);
        context.notify(EventClass::Stream, "xgroup-delconsumer", key);
    }
    context.reply.integer(pending.unwrap_or(0) as i64);
    Ok(())
}

fn reply_help(reply: &mut ReplyWriter, lines: &[&str]) {
    reply.array(lines.len());
    for line in lines {
        reply.simple(line.as_bytes());
    }
}

/// XGROUP HELP
fn xgroup_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    reply_help(
        &mut context.reply,
        &[
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XACK, XPENDING, XCLAIM, XAUTOCLAIM.

/// XACK key group id [id ...]
fn xack(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let ids = args[3..]
        .iter()
        .map(|arg| strict_id(arg, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let (key, group) = (args[1], args[2]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let acknowledged = match stream_at(&mut shard, key, now_ms)?.and_then(|s| s.group_mut(group)) {
        None => 0,
        Some(state) => ids.iter().filter(|id| state.acknowledge(**id)).count(),
    };
    if acknowledged > 0 {
        shard.propagate(args);
    }
    drop(shard);
    context.reply.integer(acknowledged as i64);
    Ok(())
}

fn nogroup(key: &[u8], group: &[u8]) -> CommandError {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    )
    .into()
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
fn xpending(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let summary = args.len() == 3;
    if args.len() != 3 && (args.len() < 6 || args.len() > 9) {
        return Err(errors::SYNTAX.into());
    }
    let mut min_idle_ms: i64 = 0;
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count = 0usize;
    let mut consumer: Option<&[u8]> = None;
    if !summary {
        let mut start_index = 3;
        if is(args[3], "idle") {
            min_idle_ms = arguments::integer(args[4])?;
            if args.len() < 8 {
                return Err(errors::SYNTAX.into());
            }
            start_index += 2;
        }
        count = arguments::integer(args[start_index + 2])?.max(0) as usize;
        start = interval_start(args[start_index])?;
        end = interval_end(args[start_index + 1])?;
        if start_index + 3 < args.len() {
            consumer = Some(args[start_index + 3]);
        }
        if start_index + 4 < args.len() {
            return Err(errors::SYNTAX.into());
        }
    }
    let (key, group) = (args[1], args[2]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let stream = stream_at(&mut shard, key, now_ms)?;
    let Some(state) = stream.and_then(|s| s.group(group)) else {
        return Err(nogroup(key, group));
    };
    let reply = &mut context.reply;
    if summary {
        reply.array(4);
        reply.integer(state.pending.len() as i64);
        let (Some((first, _)), Some((last, _))) = (
            state.pending.first_key_value(),
            state.pending.last_key_value(),
        ) else {
            reply.null();
            reply.null();
            reply.null_array();
            return Ok(());
        };
        reply_id(reply, *first);
        reply_id(reply, *last);
        let owners: Vec<(&[u8], usize)> = state
            .consumers
            .iter()
            .filter(|(_, consumer)| !consumer.pending.is_empty())
            .map(|(name, consumer)| (&name[..], consumer.pending.len()))
            .collect();
        reply.array(owners.len());
        for (name, pending) in owners {
            reply.array(2);
            reply.bulk(name);
            reply.bulk_integer(pending as i64);
        }
        return Ok(());
    }
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match state.consumers.get(name) {
            None => {
                reply.array(0);
                return Ok(());
            }
            Some(consumer) if start <= end => {
                consumer.pending.range(start..=end).copied().collect()
            }
            Some(_) => Vec::new(),
        },
        None if start <= end => state
            .pending
            .range(start..=end)
            .map(|(id, _)| *id)
            .collect(),
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() >= count {
            break;
        }
        let pending = &state.pending[&id];
        let idle = now_ms.saturating_sub(pending.delivery_time_ms) as i64;
        if min_idle_ms > 0 && idle < min_idle_ms {
            continue;
        }
        rows.push((id, pending, idle));
    }
    reply.array(rows.len());
    for (id, pending, idle) in rows {
        reply.array(4);
        reply_id(reply, id);
        reply.bulk(&pending.consumer);
        reply.integer(idle);
        reply.integer(pending.delivery_count as i64);
    }
    Ok(())
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
fn xclaim(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, group_name, consumer) = (args[1], args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let stream = stream_at(&mut shard, key, now_ms)?;
    let Some(stream) = stream.filter(|stream| stream.group(group_name).is_some()) else {
        return Err(nogroup(key, group_name));
    };
    let min_idle_ms = store::number::parse_i64(args[4])
        .ok_or_else(|| CommandError::from("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut index = 5;
    while index < args.len() {
        match StreamId::parse(args[index], 0) {
            Some(id) => ids.push(id),
            None => break,
        }
        index += 1;
    }
    let mut force = false;
    let mut just_id = false;
    let mut delivery_time: Option<i64> = None;
    let mut retry_count: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while index < args.len() {
        let more = index + 1 < args.len();
        let option = args[index];
        let integer_option = |arg: &[u8], name: &str| {
            store::number::parse_i64(arg).ok_or_else(|| {
                CommandError::from(format!("ERR Invalid {name} option argument for XCLAIM"))
            })
        };
        if is(option, "force") {
            force = true;
        } else if is(option, "justid") {
            just_id = true;
        } else if is(option, "idle") && more {
            index += 1;
            delivery_time = Some(now_ms as i64 - integer_option(args[index], "IDLE")?);
        } else if is(option, "time") && more {
            index += 1;
            delivery_time = Some(integer_option(args[index], "TIME")?);
        } else if is(option, "retrycount") && more {
            index += 1;
            retry_count = Some(integer_option(args[index], "RETRYCOUNT")?);
        } else if is(option, "lastid") && more {
            index += 1;
            last_id = strict_id(args[index], 0)?;
        } else {
            return Err(format!("ERR Unrecognized XCLAIM option '{}'", text(option)).into());
        }
        index += 1;
    }
    let delivery_time_ms = match delivery_time {
        Some(time) if time >= 0 && time <= now_ms as i64 => time as u64,
        _ => now_ms,
    };
    let mut propagation = Effects::new(true);
    let mut propagate_last_id = false;
    {
        let group = stream.group_mut(group_name).expect("checked");
        if last_id > group.last_id {
            group.last_id = last_id;
            propagate_last_id = true;
        }
    }
    touch_consumer(stream, key, group_name, consumer, now_ms, &mut propagation);
    let mut claimed: Vec<(StreamId, Option<StreamEntry>)> = Vec::new();
    for id in ids {
        let entry = if just_id {
            stream.contains(id).then_some(None)
        } else {
            stream.get(id).map(Some)
        };
        let group = stream.group_mut(group_name).expect("checked");
        let group_last_id = group.last_id;
        let Some(entry) = entry else {
            if let Some(pending) = group.pending.get(&id).cloned() {
                propagation.push(|| xclaim_form(key, group_name, id, &pending, group_last_id));
                propagate_last_id = false;
                group.acknowledge(id);
            }
            continue;
        };
        let existing = group
            .pending
            .get(&id)
            .map(|pending| pending.delivery_time_ms);
        match existing {
            None if !force => continue,
            Some(time) if min_idle_ms > 0 && (now_ms as i64 - time as i64) < min_idle_ms => {
                continue
            }
            _ => {}
        }
        let pending = group.deliver(id, consumer, delivery_time_ms);
        match retry_count {
            Some(count) if count >= 0 => pending.delivery_count = count as u64,
            _ if !just_id => pending.delivery_count += 1,
            _ => {}
        }
        propagation.push(|| xclaim_form(key, group_name, id, pending, group_last_id));
        propagate_last_id = false;
        if let Some(state) = group.consumers.get_mut(consumer) {
            state.active_time_ms = Some(now_ms);
        }
        claimed.push((id, entry));
    }
    if propagate_last_id {
        let group = stream.group(group_name).expect("checked");
        propagation.push(|| setid_form(key, group_name, group.last_id, group.entries_read));
    }
    for command in propagated_forms(&propagation, false) {
        shard.propagate(&command);
    }
    drop(shard);
    notify_created_consumers(context, &propagation);
    let reply = &mut context.reply;
    reply.array(claimed.len());
    for (id, entry) in &claimed {
        match entry {
            Some(entry) => reply_entry(reply, entry),
            None => reply_id(reply, *id),
        }
    }
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let min_idle_ms = store::number::parse_i64(args[4])
        .ok_or_else(|| CommandError::from("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = interval_start(args[5])?;
    let mut count: i64 = 100;
    let mut just_id = false;
    let mut index = 6;
    while index < args.len() {
        let more = index + 1 < args.len();
        if is(args[index], "count") && more {
            count = store::number::parse_i64(args[index + 1])
                .filter(|count| *count >= 1 && *count <= i64::MAX / 16)
                .ok_or_else(|| CommandError::from("ERR COUNT must be > 0"))?;
            index += 1;
        } else if is(args[index], "justid") {
            just_id = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let (key, group_name, consumer) = (args[1], args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let stream = stream_at(&mut shard, key, now_ms)?;
    let Some(stream) = stream.filter(|stream| stream.group(group_name).is_some()) else {
        return Err(nogroup(key, group_name));
    };
    let mut attempts = count.saturating_mul(10);
    let mut propagation = Effects::new(true);
    touch_consumer(stream, key, group_name, consumer, now_ms, &mut propagation);
    let mut claimed: Vec<(StreamId, Option<StreamEntry>)> = Vec::new();
    let mut deleted: Vec<StreamId> = Vec::new();
    let mut cursor = Some(start);
    let mut next_id = StreamId::MIN;
    while let Some(from) = cursor {
        let candidate = stream
            .group(group_name)
            .expect("checked")
            .pending
            .range(from..)
            .next()
            .map(|(id, pending)| (*id, pending.delivery_time_ms));
        if attempts == 0 || count == 0 {
            next_id = candidate.map_or(StreamId::MIN, |(id, _)| id);
            break;
        }
        let Some((id, delivery_time_ms)) = candidate else {
            break;
        };
        attempts -= 1;
        cursor = id.next();
        let entry = if just_id {
            stream.contains(id).then_some(None)
        } else {
            stream.get(id).map(Some)
        };
        let group = stream.group_mut(group_name).expect("checked");
        let group_last_id = group.last_id;
        let Some(entry) = entry else {
            let pending = group.pending[&id].clone();
            propagation.push(|| xclaim_form(key, group_name, id, &pending, group_last_id));
            group.acknowledge(id);
            deleted.push(id);
            count -= 1;
            continue;
        };
        if min_idle_ms > 0 && (now_ms as i64 - delivery_time_ms as i64) < min_idle_ms {
            continue;
        }
        let pending = group.deliver(id, consumer, now_ms);
        if !just_id {
            pending.delivery_count += 1;
        }
        propagation.push(|| xclaim_form(key, group_name, id, pending, group_last_id));
        if let Some(state) = group.consumers.get_mut(consumer) {
            state.active_time_ms = Some(now_ms);
        }
        claimed.push((id, entry));
        count -= 1;
    }
    for command in propagated_forms(&propagation, false) {
        shard.propagate(&command);
    }
    drop(shard);
    notify_created_consumers(context, &propagation);
    let reply = &mut context.reply;
    reply.array(3);
    reply_id(reply, next_id);
    reply.array(claimed.len());
    for (id, entry) in &claimed {
        match entry {
            Some(entry) => reply_entry(reply, entry),
            None => reply_id(reply, *id),
        }
    }
    reply.array(deleted.len());
    for id in deleted {
        reply_id(reply, id);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XINFO.

fn reply_optional_entry(reply: &mut ReplyWriter, entry: Option<StreamEntry>) {
    match entry {
        Some(entry) => reply_entry(reply, &entry),
        None => reply.null(),
    }
}

fn reply_entries_read(reply: &mut ReplyWriter, entries_read: i64) {
    if entries_read == ENTRIES_READ_UNKNOWN {
        reply.null();
    } else {
        reply.integer(entries_read);
    }
}

fn reply_lag(reply: &mut ReplyWriter, lag: Option<i64>) {
    match lag {
        Some(lag) => reply.integer(lag),
        None => reply.null(),
    }
}

/// XINFO STREAM key [FULL [COUNT count]]
fn xinfo_stream(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut full = false;
    let mut count: usize = 10;
    let syntax = || crate::context::subcommand_syntax_error("XINFO", args[1]);
    if args.len() > 3 {
        if !is(args[3], "full") {
            return Err(syntax());
        }
        full = true;
        if args.len() == 6 && is(args[4], "count") {
            count = arguments::integer(args[5])?.max(0) as usize;
        } else if args.len() != 4 {
            return Err(syntax());
        }
    }
    let key = args[2];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    let reply = &mut context.reply;
    reply.map(if full { 9 } else { 10 });
    reply.bulk(b"length");
    reply.integer(stream.len() as i64);
    reply.bulk(b"radix-tree-keys");
    reply.integer(stream.block_count() as i64);
    reply.bulk(b"radix-tree-nodes");
    reply.integer((stream.block_count() + 1) as i64);
    reply.bulk(b"last-generated-id");
    reply_id(reply, stream.last_id());
    reply.bulk(b"max-deleted-entry-id");
    reply_id(reply, stream.max_deleted_id());
    reply.bulk(b"entries-added");
    reply.integer(stream.entries_added() as i64);
    reply.bulk(b"recorded-first-entry-id");
    reply_id(reply, stream.first_id());
    if !full {
        reply.bulk(b"groups");
        reply.integer(stream.groups().len() as i64);
        reply.bulk(b"first-entry");
        let first = stream
            .range(StreamId::MIN, StreamId::MAX, Some(1), false)
            .pop();
        reply_optional_entry(reply, first);
        reply.bulk(b"last-entry");
        let last = stream
            .range(StreamId::MIN, StreamId::MAX, Some(1), true)
            .pop();
        reply_optional_entry(reply, last);
        return Ok(());
    }
    let limit = if count == 0 { None } else { Some(count) };
    reply.bulk(b"entries");
    reply_entries(
        reply,
        &stream.range(StreamId::MIN, StreamId::MAX, limit, false),
    );
    reply.bulk(b"groups");
    reply.array(stream.groups().len());
    for (name, group) in stream.groups() {
        reply.map(7);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"last-delivered-id");
        reply_id(reply, group.last_id);
        reply.bulk(b"entries-read");
        reply_entries_read(reply, group.entries_read);
        reply.bulk(b"lag");
        reply_lag(reply, stream.lag(group));
        reply.bulk(b"pel-count");
        reply.integer(group.pending.len() as i64);
        reply.bulk(b"pending");
        let pending: Vec<_> = group
            .pending
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        reply.array(pending.len());
        for (id, entry) in pending {
            reply.array(4);
            reply_id(reply, *id);
            reply.bulk(&entry.consumer);
            reply.integer(entry.delivery_time_ms as i64);
            reply.integer(entry.delivery_count as i64);
        }
        reply.bulk(b"consumers");
        reply.array(group.consumers.len());
        for (name, consumer) in &group.consumers {
            reply.map(5);
            reply.bulk(b"name");
            reply.bulk(name);
            reply.bulk(b"seen-time");
            reply.integer(consumer.seen_time_ms as i64);
            reply.bulk(b"active-time");
            reply.integer(consumer.active_time_ms.map_or(-1, |time| time as i64));
            reply.bulk(b"pel-count");
            reply.integer(consumer.pending.len() as i64);
            reply.bulk(b"pending");
            let pending: Vec<_> = consumer
                .pending
                .iter()
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            reply.array(pending.len());
            for id in pending {
                let entry = &group.pending[id];
                reply.array(3);
                reply_id(reply, *id);
                reply.integer(entry.delivery_time_ms as i64);
                reply.integer(entry.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XINFO GROUPS key
fn xinfo_groups(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[2];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    let reply = &mut context.reply;
    reply.array(stream.groups().len());
    for (name, group) in stream.groups() {
        reply.map(6);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"consumers");
        reply.integer(group.consumers.len() as i64);
        reply.bulk(b"pending");
        reply.integer(group.pending.len() as i64);
        reply.bulk(b"last-delivered-id");
        reply_id(reply, group.last_id);
        reply.bulk(b"entries-read");
        reply_entries_read(reply, group.entries_read);
        reply.bulk(b"lag");
        reply_lag(reply, stream.lag(group));
    }
    Ok(())
}

/// XINFO CONSUMERS key group
fn xinfo_consumers(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, group_name) = (args[2], args[3]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(stream) = stream_at(&mut shard, key, now_ms)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    let Some(group) = stream.group(group_name) else {
        return Err(nogroup_for_key(group_name, key));
    };
    let reply = &mut context.reply;
    reply.array(group.consumers.len());
    for (name, consumer) in &group.consumers {
        reply.map(4);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"pending");
        reply.integer(consumer.pending.len() as i64);
        reply.bulk(b"idle");
        reply.integer(now_ms.saturating_sub(consumer.seen_time_ms) as i64);
        reply.bulk(b"inactive");
        reply.integer(
            consumer
                .active_time_ms
                .map_or(-1, |time| now_ms.saturating_sub(time) as i64),
        );
    }
    Ok(())
}

/// XINFO HELP
fn xinfo_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    reply_help(
        &mut context.reply,
        &[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::client::{Client, ClientShared};
    use crate::command::CommandTable;
    use crate::config::Config;
    use crate::propagation::RecordingSink;
    use crate::server::Server;

    type Recorded = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

    fn harness() -> (Server, Client, Recorded) {
        let mut commands = CommandTable::from_specs();
        crate::families::register_all(&mut commands);
        commands.retain_implemented();
        let server = Server::new(Config::default(), commands, 1);
        let address = "127.0.0.1:1".parse().unwrap();
        let shared = Arc::new(ClientShared::new(1, address, address, -1, 0));
        let client = Client::new(shared, true, server.acl.default_user());
        let recorded: Recorded = Arc::new(Mutex::new(Vec::new()));
        server.propagation.attach(Box::new(RecordingSink {
            buffer: recorded.clone(),
            last_database: None,
            bytes_max: usize::MAX,
            bytes: 0,
        }));
        (server, client, recorded)
    }

    fn run(server: &Server, client: &mut Client, line: &str) -> String {
        let argv: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        let mut output = Vec::new();
        crate::connection::execute(server, client, &argv, &mut output);
        String::from_utf8_lossy(&output).into_owned()
    }

    /// The commands propagated since the last call, as text lines (SELECT left out).
    fn take(recorded: &Recorded) -> Vec<String> {
        std::mem::take(&mut *recorded.lock())
            .into_iter()
            .filter(|command| command[0] != b"SELECT")
            .map(|command| {
                command
                    .iter()
                    .map(|arg| String::from_utf8_lossy(arg).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn writes_propagate_deterministically() {
        let (server, mut client, recorded) = harness();
        let reply = run(&server, &mut client, "XADD s * a 1");
        let id = reply.lines().nth(1).unwrap().to_string();
        assert_eq!(take(&recorded), vec![format!("XADD s {id} a 1")]);
        run(&server, &mut client, "XADD s 99999999999999-* a 1");
        let last = run(&server, &mut client, "XADD s MAXLEN ~ 0 LIMIT 2 * a 2");
        let last = last.lines().nth(1).unwrap().to_string();
        let lines = take(&recorded);
        assert!(lines[0].starts_with("XADD s ") && !lines[0].contains('*'));
        // Approximate trimming is propagated as the exact trim it did.
        assert_eq!(lines[1], format!("XADD s MAXLEN = 3 LIMIT 2 {last} a 2"));
        run(&server, &mut client, "XTRIM s MAXLEN ~ 0 LIMIT 1");
        assert_eq!(take(&recorded), Vec::<String>::new(), "nothing trimmed");
        run(&server, &mut client, "XTRIM s MINID 0");
        assert_eq!(take(&recorded), Vec::<String>::new());
        run(&server, &mut client, "XGROUP CREATE s g 0");
        assert_eq!(take(&recorded), vec!["XGROUP CREATE s g 0"]);
        run(
            &server,
            &mut client,
            "XREADGROUP GROUP g alice COUNT 1 STREAMS s >",
        );
        let lines = take(&recorded);
        // The consumer's creation travels with the XCLAIM (not NOACK: no CREATECONSUMER).
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], format!("XGROUP SETID s g {id} ENTRIESREAD 1"));
        let fields: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(&fields[..6], &["XCLAIM", "s", "g", "alice", "0", &id]);
        assert_eq!(fields[6], "TIME");
        assert_eq!(
            &fields[8..],
            &["RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", &id]
        );
        run(
            &server,
            &mut client,
            "XREADGROUP GROUP g alice NOACK COUNT 1 STREAMS s >",
        );
        let lines = take(&recorded);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("XGROUP SETID s g 99999999999999-0 "));
        assert!(lines[0].ends_with(" ENTRIESREAD 2"));
        run(&server, &mut client, "XREADGROUP GROUP g alice STREAMS s >");
        take(&recorded);
        // Nothing new: nothing propagated.
        run(&server, &mut client, "XREADGROUP GROUP g alice STREAMS s >");
        assert_eq!(take(&recorded), Vec::<String>::new());
        run(
            &server,
            &mut client,
            &format!("XCLAIM s g bob 0 {id} JUSTID"),
        );
        let lines = take(&recorded);
        assert!(lines[0].starts_with(&format!("XCLAIM s g bob 0 {id} TIME ")));
        run(&server, &mut client, "XAUTOCLAIM s g carol 0 0 COUNT 1");
        let lines = take(&recorded);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(" RETRYCOUNT 2 "));
        run(&server, &mut client, &format!("XACK s g {id} {id}"));
        assert_eq!(take(&recorded), vec![format!("XACK s g {id} {id}")]);
        run(&server, &mut client, "XACK s g 1-1");
        assert_eq!(take(&recorded), Vec::<String>::new());
        run(&server, &mut client, "XDEL s 1-1");
        assert_eq!(take(&recorded), Vec::<String>::new());
    }
}
