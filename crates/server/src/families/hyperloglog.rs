//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! A HyperLogLog is a string value holding Redis's exact representation (`store::hyperloglog`),
//! stored "raw". Values that fail Redis's checks (magic, encoding, dense length) are
//! `WRONGTYPE Key is not a valid HyperLogLog string value.`; registers that cannot be decoded
//! are `INVALIDOBJ Corrupted HLL object detected`. Propagation is verbatim, as Redis: PFADD when
//! a register changed (or the key was created), PFMERGE always, PFCOUNT of one key when it
//! refreshed the cached cardinality, PFDEBUG GETREG/TODENSE when they converted to dense.

use std::sync::atomic::Ordering;

use store::hyperloglog::{self, Corrupt, REGISTERS};
use store::{StringValue, Value};

use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("pfadd", pfadd);
    table.handle("pfcount", pfcount);
    table.handle("pfmerge", pfmerge);
    table.handle("pfdebug", pfdebug);
    table.handle("pfselftest", pfselftest);
}

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn corrupt(_: Corrupt) -> CommandError {
    CORRUPT.into()
}

fn sparse_bytes_max(context: &Context) -> usize {
    context
        .server
        .config
        .hot
        .hll_sparse_max_bytes
        .load(Ordering::Relaxed) as usize
}

/// The bytes of a value that passes Redis's HyperLogLog checks.
fn hll_of(value: &Value) -> Result<&[u8], CommandError> {
    let string = value
        .as_string()
        .ok_or(CommandError::from(errors::WRONG_TYPE))?;
    let bytes: &[u8] = match string {
        StringValue::Integer(_) => return Err(NOT_HLL.into()),
        StringValue::Embedded(bytes) => bytes,
        StringValue::Whole(bytes) => bytes,
        StringValue::Raw(bytes) => bytes,
    };
    if !hyperloglog::is_valid(bytes) {
        return Err(NOT_HLL.into());
    }
    Ok(bytes)
}

/// A valid HyperLogLog's bytes, made raw for changes in place.
fn hll_of_mut(value: &mut Value) -> Result<&mut Vec<u8>, CommandError> {
    hll_of(value)?;
    Ok(value
        .as_string_mut()
        .expect("checked as a string")
        .make_raw())
}

/// PFADD key [element [element ...]]
fn pfadd(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let now_ms = context.now_ms;
    let limit = sparse_bytes_max(context);
    let mut shard = context.lock(key);
    let mut updated = false;
    if shard.lookup(key, now_ms).is_none() {
        let value = Value::String(StringValue::Raw(Box::new(hyperloglog::new_sparse())));
        shard.insert(key, value, None, now_ms);
        updated = true;
    }
    let mut entry = shard.lookup(key, now_ms).expect("found or created");
    let bytes = hll_of_mut(entry.value_mut())?;
    for element in &args[2..] {
        updated |= hyperloglog::add(bytes, element, limit).map_err(corrupt)?;
    }
    if updated {
        hyperloglog::invalidate_cache(bytes);
        shard.propagate(args);
        drop(shard);
        context.notify(EventClass::String, "pfadd", key);
    } else {
        drop(shard);
    }
    context.reply.integer(updated as i64);
    Ok(())
}

/// PFCOUNT key [key ...]
fn pfcount(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let now_ms = context.now_ms;
    if args.len() > 2 {
        let database = context.database();
        let mut locked = context.lock_keys(args[1..].iter().copied());
        let mut max = [0u8; REGISTERS];
        for key in &args[1..] {
            if let Some(entry) = locked.shard(database, key).lookup(key, now_ms) {
                hyperloglog::merge_into(&mut max, hll_of(entry.value())?).map_err(corrupt)?;
            }
        }
        drop(locked);
        context
            .reply
            .integer(hyperloglog::count_registers(&max) as i64);
        return Ok(());
    }
    let key = args[1];
    let mut shard = context.lock(key);
    let Some(mut entry) = shard.lookup(key, now_ms) else {
        drop(shard);
        context.reply.integer(0);
        return Ok(());
    };
    let bytes = hll_of_mut(entry.value_mut())?;
    let cardinality = match hyperloglog::cached_cardinality(bytes) {
        Some(cached) => cached,
        None => {
            let counted = hyperloglog::count(bytes).map_err(corrupt)?;
            hyperloglog::set_cached_cardinality(bytes, counted);
            shard.propagate(args);
            counted
        }
    };
    drop(shard);
    context.reply.integer(cardinality as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey [sourcekey ...]]
fn pfmerge(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let destination = args[1];
    let now_ms = context.now_ms;
    let limit = sparse_bytes_max(context);
    let database = context.database();
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let mut max = [0u8; REGISTERS];
    let mut use_dense = false;
    for key in &args[1..] {
        if let Some(entry) = locked.shard(database, key).lookup(key, now_ms) {
            let bytes = hll_of(entry.value())?;
            use_dense |= !hyperloglog::is_sparse(bytes);
            hyperloglog::merge_into(&mut max, bytes).map_err(corrupt)?;
        }
    }
    let shard = locked.shard(database, destination);
    if shard.lookup(destination, now_ms).is_none() {
        let value = Value::String(StringValue::Raw(Box::new(hyperloglog::new_sparse())));
        shard.insert(destination, value, None, now_ms);
    }
    let mut entry = shard.lookup(destination, now_ms).expect("found or created");
    let bytes = hll_of_mut(entry.value_mut())?;
    if use_dense {
        hyperloglog::to_dense(bytes).map_err(corrupt)?;
    }
    for (index, value) in max.iter().enumerate() {
        if *value != 0 {
            // As Redis, a corrupt destination is left as the merge found it.
            let _ = hyperloglog::set_register(bytes, index, *value, limit);
        }
    }
    hyperloglog::invalidate_cache(bytes);
    locked.propagate(database, args);
    drop(locked);
    context.notify(EventClass::String, "pfadd", destination);
    context.reply.ok();
    Ok(())
}

/// PFDEBUG subcommand key
fn pfdebug(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    let key = args[2];
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    let Some(mut entry) = shard.lookup(key, now_ms) else {
        return Err("ERR The specified key does not exist".into());
    };
    let bytes = hll_of_mut(entry.value_mut())?;
    if subcommand.eq_ignore_ascii_case(b"GETREG") {
        let converted = hyperloglog::to_dense(bytes).map_err(corrupt)?;
        let registers = hyperloglog::registers(bytes).map_err(corrupt)?;
        if converted {
            shard.propagate(args);
        }
        drop(shard);
        context.reply.array(registers.len());
        for register in registers {
            context.reply.integer(register as i64);
        }
    } else if subcommand.eq_ignore_ascii_case(b"DECODE") {
        if !hyperloglog::is_sparse(bytes) {
            return Err("ERR HLL encoding is not sparse".into());
        }
        let decoded = hyperloglog::decode_sparse(bytes);
        drop(shard);
        context.reply.bulk(decoded.as_bytes());
    } else if subcommand.eq_ignore_ascii_case(b"ENCODING") {
        let name = if hyperloglog::is_sparse(bytes) {
            "sparse"
        } else {
            "dense"
        };
        drop(shard);
        context.reply.simple(name.as_bytes());
    } else if subcommand.eq_ignore_ascii_case(b"TODENSE") {
        let converted = hyperloglog::to_dense(bytes).map_err(corrupt)?;
        if converted {
            shard.propagate(args);
        }
        drop(shard);
        context.reply.integer(converted as i64);
    } else {
        return Err(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(subcommand)
        )
        .into());
    }
    Ok(())
}

/// PFSELFTEST
fn pfselftest(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    match hyperloglog::self_test() {
        Ok(()) => context.reply.ok(),
        Err(message) => context.reply.error(message.as_bytes()),
    }
    Ok(())
}
