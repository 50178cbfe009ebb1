//! String commands: GET, SET and the rest of Redis's string family.
//!
//! Values keep the encodings Redis reports (`StringValue`): SET-like commands store what
//! `StringValue::from_bytes` chooses (int, embstr, raw), INCR-like commands store integers,
//! INCRBYFLOAT stores text (embstr or raw, never int), APPEND and SETRANGE change values in place
//! as raw. Writes propagate the deterministic forms Redis 7.2 propagates: relative expiries
//! become `PXAT`/`PEXPIREAT`, INCRBYFLOAT becomes `SET key result KEEPTTL`, GETDEL becomes `DEL`,
//! a write that changes nothing propagates nothing (see [`set_propagation`]).

use std::sync::atomic::Ordering;

use resp::ReplyWriter;
use smallvec::SmallVec;
use store::number::{increment_by_float, LongDoubleError};
use store::value::EMBEDDED_STRING_BYTES_MAX;
use store::{Shard, SmallBytes, StringValue, Value};

use crate::arguments;
use crate::command::CommandTable;
use crate::context::{errors, wrong_arity, CommandError, CommandResult, Context};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("get", get);
    table.handle("set", set);
    table.handle("setnx", setnx);
    table.handle("setex", setex);
    table.handle("psetex", psetex);
    table.handle("getset", getset);
    table.handle("getdel", getdel);
    table.handle("getex", getex);
    table.handle("mget", mget);
    table.handle("mset", mset);
    table.handle("msetnx", msetnx);
    table.handle("incr", incr);
    table.handle("decr", decr);
    table.handle("incrby", incrby);
    table.handle("decrby", decrby);
    table.handle("incrbyfloat", incrbyfloat);
    table.handle("append", append);
    table.handle("strlen", strlen);
    table.handle("getrange", getrange);
    table.handle("substr", getrange);
    table.handle("setrange", setrange);
    table.handle("lcs", lcs);
}

const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
const NOT_FINITE: &str = "ERR increment would produce NaN or Infinity";
const LCS_WRONG_TYPE: &str = "ERR The specified keys must contain string values";
const LCS_LEN_AND_IDX: &str = "ERR If you want both the length and indexes, please just use IDX.";
const LCS_TOO_LONG: &str = "ERR String too long for LCS";
const LCS_OVER_LIMIT: &str =
    "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
const LCS_ALLOCATION_FAILED: &str =
    "ERR Insufficient memory, failed allocating transient memory for LCS";

/// The string a value holds, or WRONGTYPE.
fn string_of(value: &Value) -> Result<&StringValue, CommandError> {
    value.as_string().ok_or_else(|| errors::WRONG_TYPE.into())
}

fn string_of_mut(value: &mut Value) -> Result<&mut StringValue, CommandError> {
    value
        .as_string_mut()
        .ok_or_else(|| errors::WRONG_TYPE.into())
}

fn reply_string(reply: &mut ReplyWriter, string: &StringValue) {
    let mut scratch = itoa::Buffer::new();
    reply.bulk(string.as_bytes(&mut scratch));
}

/// A string created as Redis's `createStringObject` does: embstr when short, raw otherwise,
/// never int (INCRBYFLOAT's results).
fn text_value(bytes: &[u8]) -> StringValue {
    if bytes.len() <= EMBEDDED_STRING_BYTES_MAX {
        StringValue::Embedded(SmallBytes::new(bytes))
    } else {
        StringValue::Whole(bytes.into())
    }
}

fn proto_max_bulk_len(context: &Context) -> i64 {
    context
        .server
        .config
        .hot
        .proto_max_bulk_len
        .load(Ordering::Relaxed)
}

/// Redis's `checkStringLength`: whether a string of `length + added` bytes is allowed.
fn check_string_length(context: &Context, length: u64, added: u64) -> CommandResult {
    let limit = proto_max_bulk_len(context);
    match length.checked_add(added) {
        Some(total) if total <= limit.max(0) as u64 => Ok(()),
        _ => Err(STRING_TOO_LONG.into()),
    }
}

/// How Redis replicates the deletion of a key whose new expiry is already past.
fn expired_deletion_command(context: &Context) -> &'static [u8] {
    if context
        .server
        .config
        .hot
        .lazyfree_lazy_expire
        .load(Ordering::Relaxed)
    {
        b"UNLINK"
    } else {
        b"DEL"
    }
}

/// GET key
fn get(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    match shard.lookup(args[1], context.now_ms) {
        None => context.reply.null(),
        Some(entry) => reply_string(&mut context.reply, string_of(entry.value())?),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SET and its relatives.

/// The expiry option of SET or GETEX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    /// No option: SET removes any expiry, GETEX keeps it.
    Unspecified,
    /// EX seconds
    Seconds,
    /// PX milliseconds
    Milliseconds,
    /// EXAT unix-time-seconds
    UnixSeconds,
    /// PXAT unix-time-milliseconds
    UnixMilliseconds,
    /// KEEPTTL (SET)
    KeepTtl,
    /// PERSIST (GETEX)
    Persist,
}

impl Timing {
    fn takes_value(self) -> bool {
        matches!(
            self,
            Timing::Seconds | Timing::Milliseconds | Timing::UnixSeconds | Timing::UnixMilliseconds
        )
    }

    fn is_relative(self) -> bool {
        matches!(self, Timing::Seconds | Timing::Milliseconds)
    }

    fn is_in_seconds(self) -> bool {
        matches!(self, Timing::Seconds | Timing::UnixSeconds)
    }
}

/// SET's NX / XX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    Always,
    /// NX
    IfMissing,
    /// XX
    IfExists,
}

/// Which command's options are parsed: SET's (NX, XX, GET, KEEPTTL) or GETEX's (PERSIST); both
/// take EX, PX, EXAT, PXAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OptionsOf {
    Set,
    Getex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StringOptions<'a> {
    condition: Condition,
    get: bool,
    timing: Timing,
    /// The argument of EX, PX, EXAT or PXAT.
    expire: Option<&'a [u8]>,
}

impl Default for StringOptions<'_> {
    fn default() -> Self {
        StringOptions {
            condition: Condition::Always,
            get: false,
            timing: Timing::Unspecified,
            expire: None,
        }
    }
}

/// Parses SET's or GETEX's options as Redis does: the same option may repeat (the last value
/// wins), two different expiry options or NX with XX are a syntax error, as is an expiry option
/// without its value.
fn parse_options<'a>(
    options_of: OptionsOf,
    args: &[&'a [u8]],
) -> Result<StringOptions<'a>, CommandError> {
    let mut options = StringOptions::default();
    let mut index = 0;
    while index < args.len() {
        let option = args[index];
        let for_set = options_of == OptionsOf::Set;
        let timing = if arguments::is(option, "EX") {
            Some(Timing::Seconds)
        } else if arguments::is(option, "PX") {
            Some(Timing::Milliseconds)
        } else if arguments::is(option, "EXAT") {
            Some(Timing::UnixSeconds)
        } else if arguments::is(option, "PXAT") {
            Some(Timing::UnixMilliseconds)
        } else if for_set && arguments::is(option, "KEEPTTL") {
            Some(Timing::KeepTtl)
        } else if !for_set && arguments::is(option, "PERSIST") {
            Some(Timing::Persist)
        } else {
            None
        };
        if let Some(timing) = timing {
            if options.timing != Timing::Unspecified && options.timing != timing {
                return Err(errors::SYNTAX.into());
            }
            if timing.takes_value() {
                let value = args
                    .get(index + 1)
                    .ok_or_else(|| CommandError::from(errors::SYNTAX))?;
                options.expire = Some(value);
                index += 1;
            }
            options.timing = timing;
        } else if for_set && arguments::is(option, "NX") {
            if options.condition == Condition::IfExists {
                return Err(errors::SYNTAX.into());
            }
            options.condition = Condition::IfMissing;
        } else if for_set && arguments::is(option, "XX") {
            if options.condition == Condition::IfMissing {
                return Err(errors::SYNTAX.into());
            }
            options.condition = Condition::IfExists;
        } else if for_set && arguments::is(option, "GET") {
            options.get = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    Ok(options)
}

fn invalid_expire(context: &Context) -> CommandError {
    CommandError::new(errors::INVALID_EXPIRE.replace("%s", &context.command.full_name))
}

/// The absolute expiry (Unix ms) an EX/PX/EXAT/PXAT argument asks for, with Redis's errors.
fn expire_at_ms(context: &Context, timing: Timing, argument: &[u8]) -> Result<u64, CommandError> {
    debug_assert!(timing.takes_value());
    let value = arguments::integer(argument)?;
    if value <= 0 || (timing.is_in_seconds() && value > i64::MAX / 1000) {
        return Err(invalid_expire(context));
    }
    let milliseconds = if timing.is_in_seconds() {
        value * 1000
    } else {
        value
    };
    let absolute = if timing.is_relative() {
        milliseconds
            .checked_add(context.now_ms as i64)
            .ok_or_else(|| invalid_expire(context))?
    } else {
        milliseconds
    };
    Ok(absolute as u64)
}

/// The SET-family command being run (for its reply and its propagated form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetCommand {
    /// SET key value [options]: replies OK or null.
    Set,
    /// SETNX key value: replies 1 or 0.
    SetNx,
    /// SETEX key seconds value
    SetEx,
    /// PSETEX key milliseconds value
    PSetEx,
}

/// The deterministic form of a SET-family command that stored its value, as Redis 7.2
/// propagates it: an EX/PX/EXAT expiry (SET, SETEX, PSETEX) becomes `SET key value PXAT ms`
/// (other options dropped), a PXAT one is already absolute and goes as it is, and without an
/// expiry SET goes without its GET options; SETNX and the rest go unchanged.
fn set_propagation<'a>(
    command: SetCommand,
    args: &[&'a [u8]],
    timing: Timing,
    expire_at_text: &'a [u8],
) -> SmallVec<[&'a [u8]; 8]> {
    match command {
        SetCommand::SetEx | SetCommand::PSetEx => {
            SmallVec::from_slice(&[b"SET", args[1], args[3], b"PXAT", expire_at_text])
        }
        SetCommand::SetNx => SmallVec::from_slice(args),
        SetCommand::Set => match timing {
            Timing::Seconds | Timing::Milliseconds | Timing::UnixSeconds => {
                SmallVec::from_slice(&[b"SET", args[1], args[2], b"PXAT", expire_at_text])
            }
            Timing::UnixMilliseconds => SmallVec::from_slice(args),
            Timing::Unspecified | Timing::KeepTtl | Timing::Persist => args
                .iter()
                .enumerate()
                .filter(|(index, arg)| *index < 3 || !arguments::is(arg, "GET"))
                .map(|(_, arg)| *arg)
                .collect(),
        },
    }
}

/// What a SET-family command did to the keyspace.
enum SetOutcome {
    /// NX or XX stopped it.
    Aborted,
    /// The value was stored.
    Stored,
    /// The expiry was already past: the existing key was deleted.
    DeletedExisting,
    /// The expiry was already past and there was no key: nothing happened.
    Nothing,
}

/// SET, SETNX, SETEX and PSETEX: `key` gets `value` under `options`.
fn set_generic(
    context: &mut Context,
    args: &[&[u8]],
    command: SetCommand,
    key: &[u8],
    value: &[u8],
    options: StringOptions,
) -> CommandResult {
    let now_ms = context.now_ms;
    let expire_at = match options.expire {
        Some(argument) => Some(expire_at_ms(context, options.timing, argument)?),
        None => None,
    };
    let already_expired = expire_at.is_some_and(|at| at <= now_ms);
    let mut shard = context.lock(key);
    let outcome = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            if options.get {
                reply_string(&mut context.reply, string_of(entry.value())?);
            }
            if options.condition == Condition::IfMissing {
                SetOutcome::Aborted
            } else if already_expired {
                SetOutcome::DeletedExisting
            } else {
                *entry.value_mut() = Value::String(StringValue::from_bytes(value));
                if options.timing != Timing::KeepTtl {
                    entry.set_expire_at_ms(expire_at);
                }
                SetOutcome::Stored
            }
        }
        None => {
            if options.get {
                context.reply.null();
            }
            if options.condition == Condition::IfExists {
                SetOutcome::Aborted
            } else if already_expired {
                SetOutcome::Nothing
            } else {
                let string = Value::String(StringValue::from_bytes(value));
                shard.insert(key, string, expire_at, now_ms);
                SetOutcome::Stored
            }
        }
    };
    match outcome {
        SetOutcome::Stored => {
            // A value replaced in place may be one a blocked client waits on (another type).
            shard.blocked.signal(key);
            let mut scratch = itoa::Buffer::new();
            let expire_at_text = scratch.format(expire_at.unwrap_or(0)).as_bytes();
            shard.propagate(&set_propagation(
                command,
                args,
                options.timing,
                expire_at_text,
            ));
            context.notify(EventClass::String, "set", key);
            if expire_at.is_some() {
                context.notify(EventClass::Generic, "expire", key);
            }
        }
        SetOutcome::DeletedExisting => {
            shard.remove(key, now_ms);
            shard.propagate(&[expired_deletion_command(context), key]);
            context.notify(EventClass::Generic, "del", key);
        }
        SetOutcome::Aborted | SetOutcome::Nothing => {}
    }
    drop(shard);
    if !options.get {
        match (command, outcome) {
            (SetCommand::SetNx, SetOutcome::Aborted) => context.reply.integer(0),
            (SetCommand::SetNx, _) => context.reply.integer(1),
            (_, SetOutcome::Aborted) => context.reply.null(),
            _ => context.reply.ok(),
        }
    }
    Ok(())
}

/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
fn set(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = if args.len() > 3 {
        parse_options(OptionsOf::Set, &args[3..])?
    } else {
        StringOptions::default()
    };
    set_generic(context, args, SetCommand::Set, args[1], args[2], options)
}

/// SETNX key value
fn setnx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = StringOptions {
        condition: Condition::IfMissing,
        ..StringOptions::default()
    };
    set_generic(context, args, SetCommand::SetNx, args[1], args[2], options)
}

/// SETEX key seconds value
fn setex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = StringOptions {
        timing: Timing::Seconds,
        expire: Some(args[2]),
        ..StringOptions::default()
    };
    set_generic(context, args, SetCommand::SetEx, args[1], args[3], options)
}

/// PSETEX key milliseconds value
fn psetex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = StringOptions {
        timing: Timing::Milliseconds,
        expire: Some(args[2]),
        ..StringOptions::default()
    };
    set_generic(context, args, SetCommand::PSetEx, args[1], args[3], options)
}

/// GETSET key value
fn getset(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, value) = (args[1], args[2]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            reply_string(&mut context.reply, string_of(entry.value())?);
            *entry.value_mut() = Value::String(StringValue::from_bytes(value));
            entry.set_expire_at_ms(None);
        }
        None => {
            context.reply.null();
            let string = Value::String(StringValue::from_bytes(value));
            shard.insert(key, string, None, now_ms);
        }
    }
    shard.blocked.signal(key);
    shard.propagate(&[b"SET", key, value]);
    context.notify(EventClass::String, "set", key);
    Ok(())
}

/// GETDEL key
fn getdel(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    match shard.lookup(key, now_ms) {
        None => {
            context.reply.null();
            return Ok(());
        }
        Some(entry) => reply_string(&mut context.reply, string_of(entry.value())?),
    }
    shard.remove(key, now_ms);
    shard.propagate(&[b"DEL", key]);
    context.notify(EventClass::Generic, "del", key);
    Ok(())
}

/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]
fn getex(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = parse_options(OptionsOf::Getex, &args[2..])?;
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(mut entry) = shard.lookup(key, now_ms) else {
        context.reply.null();
        return Ok(());
    };
    string_of(entry.value())?;
    let expire_at = match options.expire {
        Some(argument) => Some(expire_at_ms(context, options.timing, argument)?),
        None => None,
    };
    reply_string(&mut context.reply, string_of(entry.value())?);
    match expire_at {
        Some(at) if at <= now_ms && !options.timing.is_relative() => {
            shard.remove(key, now_ms);
            shard.propagate(&[expired_deletion_command(context), key]);
            context.notify(EventClass::Generic, "del", key);
        }
        Some(at) => {
            entry.set_expire_at_ms(Some(at));
            let mut scratch = itoa::Buffer::new();
            shard.propagate(&[b"PEXPIREAT", key, scratch.format(at).as_bytes()]);
            context.notify(EventClass::Generic, "expire", key);
        }
        None if options.timing == Timing::Persist && entry.expire_at_ms().is_some() => {
            entry.set_expire_at_ms(None);
            shard.propagate(&[b"PERSIST", key]);
            context.notify(EventClass::Generic, "persist", key);
        }
        None => {}
    }
    Ok(())
}

/// MGET key [key ...]
fn mget(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let now_ms = context.now_ms;
    let keys = &args[1..];
    let mut locked = context.lock_keys(keys.iter().copied());
    context.reply.array(keys.len());
    for key in keys {
        match locked.shard(database, key).lookup(key, now_ms) {
            Some(entry) => match entry.value().as_string() {
                Some(string) => reply_string(&mut context.reply, string),
                None => context.reply.null(),
            },
            None => context.reply.null(),
        }
    }
    Ok(())
}

/// Stores a string under `key` with no expiry, in place when the key exists.
fn store_string(shard: &mut Shard, key: &[u8], value: &[u8], now_ms: u64) {
    match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            *entry.value_mut() = Value::String(StringValue::from_bytes(value));
            entry.set_expire_at_ms(None);
        }
        None => {
            shard.insert(
                key,
                Value::String(StringValue::from_bytes(value)),
                None,
                now_ms,
            );
        }
    }
    shard.blocked.signal(key);
}

/// MSET and MSETNX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MultiSet {
    Always,
    /// MSETNX: only when none of the keys exists.
    IfNoneExists,
}

fn mset_generic(context: &mut Context, args: &[&[u8]], mode: MultiSet) -> CommandResult {
    if args.len().is_multiple_of(2) {
        return Err(wrong_arity(&context.command.full_name));
    }
    let database = context.database();
    let now_ms = context.now_ms;
    let pairs = args[1..].chunks_exact(2);
    let mut locked = context.lock_keys(pairs.clone().map(|pair| pair[0]));
    if mode == MultiSet::IfNoneExists
        && pairs
            .clone()
            .any(|pair| locked.shard(database, pair[0]).contains(pair[0], now_ms))
    {
        drop(locked);
        context.reply.integer(0);
        return Ok(());
    }
    for pair in pairs {
        store_string(locked.shard(database, pair[0]), pair[0], pair[1], now_ms);
        context.notify(EventClass::String, "set", pair[0]);
    }
    locked.propagate(database, args);
    drop(locked);
    match mode {
        MultiSet::Always => context.reply.ok(),
        MultiSet::IfNoneExists => context.reply.integer(1),
    }
    Ok(())
}

/// MSET key value [key value ...]
fn mset(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    mset_generic(context, args, MultiSet::Always)
}

/// MSETNX key value [key value ...]
fn msetnx(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    mset_generic(context, args, MultiSet::IfNoneExists)
}

// ---------------------------------------------------------------------------------------------
// Counters.

/// INCR, DECR, INCRBY, DECRBY: adds `increment` to the integer at `args[1]` (0 when missing),
/// keeping its expiry; the result is int-encoded.
fn increment_generic(context: &mut Context, args: &[&[u8]], increment: i64) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let result = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let string = string_of_mut(entry.value_mut())?;
            let current = string
                .as_integer()
                .ok_or_else(|| CommandError::from(errors::NOT_INTEGER))?;
            let result = current
                .checked_add(increment)
                .ok_or_else(|| CommandError::from(errors::OVERFLOW))?;
            *string = StringValue::Integer(result);
            result
        }
        None => {
            let value = Value::String(StringValue::Integer(increment));
            shard.insert(key, value, None, now_ms);
            increment
        }
    };
    shard.propagate(args);
    context.notify(EventClass::String, "incrby", key);
    drop(shard);
    context.reply.integer(result);
    Ok(())
}

/// INCR key
fn incr(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    increment_generic(context, args, 1)
}

/// DECR key
fn decr(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    increment_generic(context, args, -1)
}

/// INCRBY key increment
fn incrby(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let increment = arguments::integer(args[2])?;
    increment_generic(context, args, increment)
}

/// DECRBY key decrement
fn decrby(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let decrement = arguments::integer(args[2])?;
    if decrement == i64::MIN {
        return Err(DECREMENT_OVERFLOW.into());
    }
    increment_generic(context, args, -decrement)
}

fn float_error(error: LongDoubleError) -> CommandError {
    match error {
        LongDoubleError::NotAFloat => errors::NOT_FLOAT.into(),
        LongDoubleError::NotFinite => NOT_FINITE.into(),
    }
}

/// INCRBYFLOAT key increment
fn incrbyfloat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, increment) = (args[1], args[2]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let result = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let string = string_of_mut(entry.value_mut())?;
            let mut scratch = itoa::Buffer::new();
            let result = increment_by_float(Some(string.as_bytes(&mut scratch)), increment)
                .map_err(float_error)?;
            *string = text_value(result.as_bytes());
            result
        }
        None => {
            let result = increment_by_float(None, increment).map_err(float_error)?;
            shard.insert(
                key,
                Value::String(text_value(result.as_bytes())),
                None,
                now_ms,
            );
            result
        }
    };
    shard.propagate(&[b"SET", key, result.as_bytes(), b"KEEPTTL"]);
    context.notify(EventClass::String, "incrbyfloat", key);
    drop(shard);
    context.reply.bulk(result.as_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Substrings.

/// APPEND key value
fn append(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, value) = (args[1], args[2]);
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let length = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let string = string_of_mut(entry.value_mut())?;
            check_string_length(context, string.len() as u64, value.len() as u64)?;
            let bytes = string.make_raw();
            bytes.extend_from_slice(value);
            bytes.len()
        }
        None => {
            let string = Value::String(StringValue::from_bytes(value));
            shard.insert(key, string, None, now_ms);
            value.len()
        }
    };
    shard.propagate(args);
    context.notify(EventClass::String, "append", key);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// STRLEN key
fn strlen(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let length = match shard.lookup(args[1], context.now_ms) {
        Some(entry) => string_of(entry.value())?.len(),
        None => 0,
    };
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// The byte range GETRANGE returns for `start..=end` (negative indexes count from the end) of
/// a string of `length` bytes.
fn substring_range(length: usize, start: i64, end: i64) -> Option<std::ops::Range<usize>> {
    let length = length as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { length + start } else { start }.max(0);
    let end = if end < 0 { length + end } else { end }.max(0);
    let end = end.min(length - 1);
    if start > end || length == 0 {
        return None;
    }
    Some(start as usize..end as usize + 1)
}

/// GETRANGE key start end
fn getrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let start = arguments::integer(args[2])?;
    let end = arguments::integer(args[3])?;
    let mut shard = context.lock(args[1]);
    match shard.lookup(args[1], context.now_ms) {
        None => context.reply.bulk(b""),
        Some(entry) => {
            let string = string_of(entry.value())?;
            let mut scratch = itoa::Buffer::new();
            let bytes = string.as_bytes(&mut scratch);
            match substring_range(bytes.len(), start, end) {
                Some(range) => context.reply.bulk(&bytes[range]),
                None => context.reply.bulk(b""),
            }
        }
    }
    Ok(())
}

/// SETRANGE key offset value
fn setrange(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let (key, value) = (args[1], args[3]);
    let offset = arguments::integer(args[2])?;
    if offset < 0 {
        return Err(OFFSET_OUT_OF_RANGE.into());
    }
    let offset = offset as u64;
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let length = match shard.lookup(key, now_ms) {
        Some(mut entry) => {
            let string = string_of_mut(entry.value_mut())?;
            if value.is_empty() {
                let length = string.len();
                drop(shard);
                context.reply.integer(length as i64);
                return Ok(());
            }
            check_string_length(context, offset, value.len() as u64)?;
            let bytes = string.make_raw();
            overwrite_at(bytes, offset as usize, value);
            bytes.len()
        }
        None => {
            if value.is_empty() {
                drop(shard);
                context.reply.integer(0);
                return Ok(());
            }
            check_string_length(context, offset, value.len() as u64)?;
            let mut bytes = Vec::new();
            overwrite_at(&mut bytes, offset as usize, value);
            let length = bytes.len();
            let string = Value::String(StringValue::Raw(Box::new(bytes)));
            shard.insert(key, string, None, now_ms);
            length
        }
    };
    shard.propagate(args);
    context.notify(EventClass::String, "setrange", key);
    drop(shard);
    context.reply.integer(length as i64);
    Ok(())
}

/// Writes `value` at `offset`, padding with zero bytes.
fn overwrite_at(bytes: &mut Vec<u8>, offset: usize, value: &[u8]) {
    let end = offset + value.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(value);
}

// ---------------------------------------------------------------------------------------------
// LCS.

/// One run of matching bytes: `a[a_start..=a_end] == b[b_start..=b_end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LcsMatch {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

impl LcsMatch {
    fn length(&self) -> usize {
        self.a_end - self.a_start + 1
    }
}

/// The longest common subsequence of `a` and `b`, and its runs of contiguous matches from the
/// end of the strings backwards, found by Redis's dynamic programming walk (so ties resolve as
/// Redis resolves them). `table` has `(a.len() + 1) * (b.len() + 1)` zeroed cells.
fn longest_common_subsequence(
    a: &[u8],
    b: &[u8],
    table: &mut [u32],
    with_string: bool,
) -> (usize, Vec<u8>, Vec<LcsMatch>) {
    let width = b.len() + 1;
    debug_assert_eq!(table.len(), (a.len() + 1) * width);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let length = table[a.len() * width + b.len()] as usize;
    if !with_string {
        return (length, Vec::new(), Vec::new());
    }
    let mut subsequence = vec![0u8; length];
    let mut remaining = length;
    let mut matches = Vec::new();
    let mut current: Option<LcsMatch> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            subsequence[remaining - 1] = a[i - 1];
            match &mut current {
                None => {
                    current = Some(LcsMatch {
                        a_start: i - 1,
                        a_end: i - 1,
                        b_start: j - 1,
                        b_end: j - 1,
                    })
                }
                Some(run) if run.a_start == i && run.b_start == j => {
                    run.a_start -= 1;
                    run.b_start -= 1;
                }
                Some(_) => emit = true,
            }
            if current.is_some_and(|run| run.a_start == 0 || run.b_start == 0) {
                emit = true;
            }
            remaining -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = current.is_some();
        }
        if emit {
            if let Some(run) = current.take() {
                matches.push(run);
            }
        }
    }
    (length, subsequence, matches)
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
fn lcs(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let now_ms = context.now_ms;
    let (a, b) = {
        let mut locked = context.lock_keys([args[1], args[2]]);
        let mut read = |key: &[u8]| -> Result<Vec<u8>, CommandError> {
            match locked.shard(database, key).lookup(key, now_ms) {
                None => Ok(Vec::new()),
                Some(entry) => match entry.value().as_string() {
                    Some(string) => Ok(string.to_vec()),
                    None => Err(LCS_WRONG_TYPE.into()),
                },
            }
        };
        let a = read(args[1]);
        let b = read(args[2]);
        (a?, b?)
    };
    let (mut want_length, mut want_indexes, mut with_match_length) = (false, false, false);
    let mut min_match_length: i64 = 0;
    let mut index = 3;
    while index < args.len() {
        let option = args[index];
        if arguments::is(option, "IDX") {
            want_indexes = true;
        } else if arguments::is(option, "LEN") {
            want_length = true;
        } else if arguments::is(option, "WITHMATCHLEN") {
            with_match_length = true;
        } else if arguments::is(option, "MINMATCHLEN") && index + 1 < args.len() {
            min_match_length = arguments::integer(args[index + 1])?.max(0);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if want_length && want_indexes {
        return Err(LCS_LEN_AND_IDX.into());
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(LCS_TOO_LONG.into());
    }
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    if cells * std::mem::size_of::<u32>() as u128 > proto_max_bulk_len(context).max(0) as u128 {
        return Err(LCS_OVER_LIMIT.into());
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        return Err(LCS_ALLOCATION_FAILED.into());
    }
    table.resize(cells as usize, 0);
    let with_string = want_indexes || !want_length;
    let (length, subsequence, matches) =
        longest_common_subsequence(&a, &b, &mut table, with_string);
    drop(table);
    let reply = &mut context.reply;
    if want_indexes {
        let kept: Vec<&LcsMatch> = matches
            .iter()
            .filter(|run| min_match_length == 0 || run.length() as i64 >= min_match_length)
            .collect();
        reply.map(2);
        reply.bulk(b"matches");
        reply.array(kept.len());
        for run in kept {
            reply.array(if with_match_length { 3 } else { 2 });
            reply.array(2);
            reply.integer(run.a_start as i64);
            reply.integer(run.a_end as i64);
            reply.array(2);
            reply.integer(run.b_start as i64);
            reply.integer(run.b_end as i64);
            if with_match_length {
                reply.integer(run.length() as i64);
            }
        }
        reply.bulk(b"len");
        reply.integer(length as i64);
    } else if want_length {
        reply.integer(length as i64);
    } else {
        reply.bulk(&subsequence);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::unix_time_ms;
    use crate::testing::Harness;

    fn encoding(harness: &Harness, key: &str) -> Option<&'static str> {
        let mut shard = harness
            .server
            .lock_shard(0, store::keyspace::shard_index(key.as_bytes()));
        shard
            .peek(key.as_bytes(), unix_time_ms())
            .map(|entry| entry.value.encoding_name())
    }

    fn expire_at_ms(harness: &Harness, key: &str) -> Option<u64> {
        let mut shard = harness
            .server
            .lock_shard(0, store::keyspace::shard_index(key.as_bytes()));
        shard
            .peek(key.as_bytes(), unix_time_ms())
            .and_then(|entry| entry.expire_at_ms())
    }

    /// Parses "SET k v PXAT <ms>" and checks the expiry lies within `[low, high]`.
    fn assert_pxat(propagated: &str, prefix: &str, low: u64, high: u64) {
        let at = propagated
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{propagated:?} does not start with {prefix:?}"));
        let at: u64 = at.parse().expect("an absolute expiry");
        assert!((low..=high).contains(&at), "{at} not in {low}..={high}");
    }

    #[test]
    fn set_propagation_forms() {
        let words = |line: &'static str| -> Vec<&'static [u8]> {
            line.split(' ').map(str::as_bytes).collect()
        };
        let joined = |args: SmallVec<[&[u8]; 8]>| -> String {
            args.iter()
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let cases: [(SetCommand, &str, Timing, &str); 9] = [
            (SetCommand::Set, "SET k v", Timing::Unspecified, "SET k v"),
            (
                SetCommand::Set,
                "SET k v NX GET get",
                Timing::Unspecified,
                "SET k v NX",
            ),
            (
                SetCommand::Set,
                "SET k v GET KEEPTTL XX",
                Timing::KeepTtl,
                "SET k v KEEPTTL XX",
            ),
            (
                SetCommand::Set,
                "SET k v EX 10 NX GET",
                Timing::Seconds,
                "SET k v PXAT 99",
            ),
            (
                SetCommand::Set,
                "SET k v px 10",
                Timing::Milliseconds,
                "SET k v PXAT 99",
            ),
            (
                SetCommand::Set,
                "SET k v EXAT 10 XX",
                Timing::UnixSeconds,
                "SET k v PXAT 99",
            ),
            (
                SetCommand::Set,
                "SET k v PXAT 99 GET",
                Timing::UnixMilliseconds,
                "SET k v PXAT 99 GET",
            ),
            (
                SetCommand::SetEx,
                "SETEX k 10 v",
                Timing::Seconds,
                "SET k v PXAT 99",
            ),
            (
                SetCommand::SetNx,
                "SETNX k v",
                Timing::Unspecified,
                "SETNX k v",
            ),
        ];
        for (command, line, timing, expected) in cases {
            let args = words(line);
            assert_eq!(
                joined(set_propagation(command, &args, timing, b"99")),
                expected,
                "{line}"
            );
        }
    }

    #[test]
    fn set_family_propagates_deterministic_forms() {
        let mut harness = Harness::new();
        assert_eq!(harness.run("SET k v"), "+OK\r\n");
        assert_eq!(harness.propagated(), ["SET k v"]);

        let before = unix_time_ms();
        assert_eq!(harness.run("SET k v EX 10 GET"), "$1\r\nv\r\n");
        let after = unix_time_ms();
        let stream = harness.propagated();
        assert_eq!(stream.len(), 1);
        assert_pxat(&stream[0], "SET k v PXAT ", before + 10_000, after + 10_000);
        assert_eq!(
            expire_at_ms(&harness, "k").map(|at| at.to_string()),
            stream[0].rsplit(' ').next().map(str::to_string)
        );

        harness.run("SET k v PX 1500 XX");
        assert_pxat(
            &harness.propagated()[0],
            "SET k v PXAT ",
            before + 1500,
            unix_time_ms() + 1500,
        );
        harness.run("SET k v EXAT 4000000000");
        assert_eq!(harness.propagated(), ["SET k v PXAT 4000000000000"]);
        harness.run("SET k v PXAT 4000000000123 GET");
        assert_eq!(harness.propagated(), ["SET k v PXAT 4000000000123 GET"]);
        harness.run("SET k w KEEPTTL GET");
        assert_eq!(harness.propagated(), ["SET k w KEEPTTL"]);
        assert_eq!(expire_at_ms(&harness, "k"), Some(4_000_000_000_123));

        // Nothing set, nothing propagated.
        assert_eq!(harness.run("SET k v NX"), "$-1\r\n");
        assert_eq!(harness.run("SET missing v XX GET"), "$-1\r\n");
        assert_eq!(
            harness.run("SET k v EX 0"),
            "-ERR invalid expire time in 'set' command\r\n"
        );
        assert_eq!(harness.run("SETNX k v"), ":0\r\n");
        assert!(harness.propagated().is_empty());

        // An expiry already past deletes the key (DEL, or UNLINK with lazyfree-lazy-expire).
        assert_eq!(harness.run("SET k v EXAT 1 GET"), "$1\r\nw\r\n");
        assert_eq!(harness.propagated(), ["DEL k"]);
        assert_eq!(encoding(&harness, "k"), None);
        assert_eq!(harness.run("SET k v PXAT 1"), "+OK\r\n");
        assert!(harness.propagated().is_empty());
        harness.run("SET k v");
        harness
            .server
            .config
            .set_many(
                &[("lazyfree-lazy-expire".into(), vec!["yes".into()])],
                crate::config::ConfigSource::Startup,
            )
            .expect("config set");
        harness.propagated();
        harness.run("SET k v PXAT 1");
        assert_eq!(harness.propagated(), ["UNLINK k"]);

        assert_eq!(harness.run("SETNX k v"), ":1\r\n");
        assert_eq!(harness.propagated(), ["SETNX k v"]);
        let before = unix_time_ms();
        harness.run("SETEX s 100 v");
        harness.run("PSETEX p 2500 v");
        let after = unix_time_ms();
        let stream = harness.propagated();
        assert_pxat(
            &stream[0],
            "SET s v PXAT ",
            before + 100_000,
            after + 100_000,
        );
        assert_pxat(&stream[1], "SET p v PXAT ", before + 2500, after + 2500);

        assert_eq!(harness.run("GETSET s x"), "$1\r\nv\r\n");
        assert_eq!(expire_at_ms(&harness, "s"), None);
        assert_eq!(harness.run("GETSET new x"), "$-1\r\n");
        assert_eq!(harness.propagated(), ["SET s x", "SET new x"]);
        assert_eq!(harness.run("MSET a 1 b 2"), "+OK\r\n");
        assert_eq!(harness.run("MSETNX a 1 c 2"), ":0\r\n");
        assert_eq!(harness.run("MSETNX c 1 d 2"), ":1\r\n");
        assert_eq!(harness.propagated(), ["MSET a 1 b 2", "MSETNX c 1 d 2"]);
    }

    #[test]
    fn get_commands_propagate_their_effects() {
        let mut harness = Harness::new();
        harness.run("SET k v");
        harness.propagated();
        assert_eq!(harness.run("GETEX k"), "$1\r\nv\r\n");
        assert_eq!(harness.run("GETEX k PERSIST"), "$1\r\nv\r\n");
        assert_eq!(harness.run("GETEX missing EX 10"), "$-1\r\n");
        assert!(harness.propagated().is_empty());

        let before = unix_time_ms();
        harness.run("GETEX k EX 10");
        let after = unix_time_ms();
        assert_pxat(
            &harness.propagated()[0],
            "PEXPIREAT k ",
            before + 10_000,
            after + 10_000,
        );
        harness.run("GETEX k PXAT 4000000000000");
        assert_eq!(harness.propagated(), ["PEXPIREAT k 4000000000000"]);
        harness.run("GETEX k EXAT 4000000001");
        assert_eq!(harness.propagated(), ["PEXPIREAT k 4000000001000"]);
        harness.run("GETEX k PERSIST");
        assert_eq!(harness.propagated(), ["PERSIST k"]);
        assert_eq!(expire_at_ms(&harness, "k"), None);
        assert_eq!(harness.run("GETEX k EXAT 1"), "$1\r\nv\r\n");
        assert_eq!(harness.propagated(), ["DEL k"]);
        assert_eq!(encoding(&harness, "k"), None);

        harness.run("SET k v");
        harness.propagated();
        assert_eq!(harness.run("GETDEL k"), "$1\r\nv\r\n");
        assert_eq!(harness.run("GETDEL k"), "$-1\r\n");
        assert_eq!(harness.propagated(), ["DEL k"]);
    }

    #[test]
    fn counters_and_substrings_propagate() {
        let mut harness = Harness::new();
        harness.run("SET k v PXAT 4000000000000");
        harness.run("SET f 10.5 PXAT 4000000000000");
        harness.propagated();
        assert_eq!(harness.run("INCRBYFLOAT f 1.1"), "$4\r\n11.6\r\n");
        assert_eq!(harness.run("INCRBYFLOAT n 2"), "$1\r\n2\r\n");
        assert_eq!(
            harness.run("INCRBYFLOAT k 1"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(
            harness.propagated(),
            ["SET f 11.6 KEEPTTL", "SET n 2 KEEPTTL"]
        );
        assert_eq!(expire_at_ms(&harness, "f"), Some(4_000_000_000_000));

        harness.run("INCR i");
        harness.run("DECRBY i 5");
        harness.run("INCR k");
        assert_eq!(harness.propagated(), ["INCR i", "DECRBY i 5"]);

        harness.run("APPEND k w");
        assert_eq!(harness.run("SETRANGE k 0 x"), ":2\r\n");
        assert_eq!(harness.run("SETRANGE k 5 "), ":2\r\n");
        assert_eq!(harness.run("SETRANGE missing 5 "), ":0\r\n");
        assert_eq!(harness.propagated(), ["APPEND k w", "SETRANGE k 0 x"]);
        assert_eq!(expire_at_ms(&harness, "k"), Some(4_000_000_000_000));
    }

    #[test]
    fn encodings_follow_redis() {
        let mut harness = Harness::new();
        harness.run("SET int 12345");
        harness.run("SET short abc");
        harness.run(&format!("SET long {}", "x".repeat(45)));
        harness.run("SET leadingzero 012");
        assert_eq!(encoding(&harness, "int"), Some("int"));
        assert_eq!(encoding(&harness, "short"), Some("embstr"));
        assert_eq!(encoding(&harness, "long"), Some("raw"));
        assert_eq!(encoding(&harness, "leadingzero"), Some("embstr"));

        // APPEND: a new key is encoded as SET would; changing a value makes it raw.
        harness.run("APPEND appended 12");
        assert_eq!(encoding(&harness, "appended"), Some("int"));
        harness.run("APPEND appended 3");
        assert_eq!(encoding(&harness, "appended"), Some("raw"));
        // INCR turns any number back into an integer.
        harness.run("INCR appended");
        assert_eq!(encoding(&harness, "appended"), Some("int"));
        // SETRANGE: raw, even on a new key; setting nothing changes nothing.
        // (a trailing space gives an empty last argument)
        harness.run("SETRANGE int 5 ");
        assert_eq!(encoding(&harness, "int"), Some("int"));
        harness.run("SETRANGE int 0 9");
        assert_eq!(encoding(&harness, "int"), Some("raw"));
        harness.run("SETRANGE fresh 0 1");
        assert_eq!(encoding(&harness, "fresh"), Some("raw"));
        // INCRBYFLOAT stores text, even when it reads as an integer.
        harness.run("INCRBYFLOAT float 3");
        assert_eq!(encoding(&harness, "float"), Some("embstr"));
        harness.run("INCRBYFLOAT float 1e40");
        assert_eq!(encoding(&harness, "float"), Some("embstr"));
        harness.run("INCRBYFLOAT float 1e50");
        assert_eq!(encoding(&harness, "float"), Some("raw"));
        // MSET, GETSET, SETEX encode as SET does.
        harness.run("MSET m1 7 m2 seven");
        harness.run("GETSET g 8");
        harness.run("SETEX e 100 9");
        assert_eq!(encoding(&harness, "m1"), Some("int"));
        assert_eq!(encoding(&harness, "m2"), Some("embstr"));
        assert_eq!(encoding(&harness, "g"), Some("int"));
        assert_eq!(encoding(&harness, "e"), Some("int"));
    }

    #[test]
    fn expiry_is_kept_or_cleared_as_redis_does() {
        let mut harness = Harness::new();
        let keep = [
            "INCR n",
            "INCRBYFLOAT n 1.5",
            "APPEND n 1",
            "SETRANGE n 0 7",
            "SET n 5 KEEPTTL",
        ];
        harness.run("SET n 1 PXAT 4000000000000");
        for command in keep {
            harness.run(command);
            assert_eq!(
                expire_at_ms(&harness, "n"),
                Some(4_000_000_000_000),
                "{command}"
            );
        }
        for command in ["SET n 1", "GETSET n 2", "MSET n 3"] {
            harness.run("SET n 1 PXAT 4000000000000");
            harness.run(command);
            assert_eq!(expire_at_ms(&harness, "n"), None, "{command}");
        }
    }

    #[test]
    fn substring_ranges() {
        assert_eq!(substring_range(11, 0, 3), Some(0..4));
        assert_eq!(substring_range(11, -4, -1), Some(7..11));
        assert_eq!(substring_range(11, 5, 3), None);
        assert_eq!(substring_range(11, -1, -5), None);
        assert_eq!(substring_range(11, -5000, 10000), Some(0..11));
        assert_eq!(substring_range(0, 0, -1), None);
        assert_eq!(substring_range(3, i64::MIN, i64::MAX), Some(0..3));
        assert_eq!(substring_range(3, 0, 4294967297), Some(0..3));
    }

    #[test]
    fn lcs_walks_back_like_redis() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let mut table = vec![0u32; (a.len() + 1) * (b.len() + 1)];
        let (length, subsequence, matches) = longest_common_subsequence(a, b, &mut table, true);
        assert_eq!(length, 6);
        assert_eq!(subsequence, b"mytext");
        let ranges: Vec<(usize, usize, usize, usize)> = matches
            .iter()
            .map(|run| (run.a_start, run.a_end, run.b_start, run.b_end))
            .collect();
        assert_eq!(ranges, [(4, 7, 5, 8), (2, 3, 0, 1)]);
    }
}
