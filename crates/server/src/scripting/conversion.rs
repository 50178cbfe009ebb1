//! Conversions between RESP replies and Lua values, as Redis does them.
//!
//! Reply → Lua (what `redis.call` returns): integer → number; bulk → string; RESP2 null bulk
//! or null array → false; status → `{ok=...}`; error → `{err=...}`; array → table. With
//! `redis.setresp(3)` also: map → `{map={...}}`, set → `{set={member=true}}`, null → nil,
//! boolean → boolean, double → `{double=n}`, big number → `{big_number="..."}`, verbatim →
//! `{verbatim_string={format=..., string=...}}`.
//!
//! Lua → reply (what a script returns), in the caller's protocol: number → integer (truncated);
//! string → bulk; true → `:1` / `#t`; false → null / `#f`; nil → null; a table with `err` →
//! error, `ok` → status, `double`, `big_number`, `map`, `set`, `verbatim_string` → those types
//! (flattened for RESP2); any other table → array up to its first nil.

use mlua::{Lua, Table, Value};
use resp::{ReplyValue, ReplyWriter};

/// Nesting deeper than this is returned as an error (Redis's protection against loops).
pub const DEPTH_MAX: usize = 1000;

/// A parsed reply as a Lua value.
pub fn reply_to_lua(lua: &Lua, reply: &ReplyValue) -> mlua::Result<Value> {
    Ok(match reply {
        ReplyValue::Integer(value) => Value::Number(*value as f64),
        ReplyValue::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        ReplyValue::Simple(text) => {
            let table = lua.create_table()?;
            table.raw_set("ok", lua.create_string(text)?)?;
            Value::Table(table)
        }
        ReplyValue::Error(text) => {
            let table = lua.create_table()?;
            table.raw_set("err", lua.create_string(text)?)?;
            table.raw_set(ERROR_COUNTED_FIELD, true)?;
            Value::Table(table)
        }
        ReplyValue::Nil => Value::Boolean(false),
        ReplyValue::Array(items) | ReplyValue::Push(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, reply_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        ReplyValue::Map(pairs) => {
            let inner = lua.create_table()?;
            for (key, value) in pairs {
                inner.raw_set(reply_to_lua(lua, key)?, reply_to_lua(lua, value)?)?;
            }
            let table = lua.create_table()?;
            table.raw_set("map", inner)?;
            Value::Table(table)
        }
        ReplyValue::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.raw_set(reply_to_lua(lua, item)?, true)?;
            }
            let table = lua.create_table()?;
            table.raw_set("set", inner)?;
            Value::Table(table)
        }
        ReplyValue::Double(value) => {
            let table = lua.create_table()?;
            table.raw_set("double", *value)?;
            Value::Table(table)
        }
        ReplyValue::Boolean(value) => Value::Boolean(*value),
        ReplyValue::BigNumber(text) => {
            let table = lua.create_table()?;
            table.raw_set("big_number", lua.create_string(text)?)?;
            Value::Table(table)
        }
        ReplyValue::Verbatim(format, text) => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            let table = lua.create_table()?;
            table.raw_set("verbatim_string", inner)?;
            Value::Table(table)
        }
    })
}

/// The RESP3-only null of a parsed RESP3 reply is nil, not false.
pub fn reply_to_lua_resp3_aware(lua: &Lua, reply: &ReplyValue, resp3: bool) -> mlua::Result<Value> {
    if resp3 && *reply == ReplyValue::Nil {
        return Ok(Value::Nil);
    }
    reply_to_lua(lua, reply)
}

/// The field an error table made from a command's error reply carries (as in Redis): that
/// error was counted in INFO errorstats when the command ran, not again when a script
/// returns or raises it.
pub const ERROR_COUNTED_FIELD: &str = "ignore_error_stats_update";

/// Whether an error table says its error was counted already.
pub fn error_already_counted(table: &Table) -> bool {
    matches!(field(table, ERROR_COUNTED_FIELD), Value::Boolean(true))
}

/// When a script's return value is an error table: the error as replied (its first word
/// decides its INFO errorstats line), and whether it was counted already.
pub fn top_level_error(value: &Value) -> Option<(Vec<u8>, bool)> {
    let Value::Table(table) = value else {
        return None;
    };
    let Value::String(text) = field(table, "err") else {
        return None;
    };
    let mut message = single_line(&text.as_bytes());
    if message.is_empty() {
        message = b"ERR".to_vec();
    }
    Some((message, error_already_counted(table)))
}

/// Lua number → Redis integer (C's truncating cast).
pub fn number_to_integer(value: f64) -> i64 {
    if value.is_nan() {
        i64::MIN
    } else {
        value as i64
    }
}

fn field(table: &Table, name: &str) -> Value {
    table.get::<Value>(name).unwrap_or(Value::Nil)
}

/// Error and status texts cannot hold line breaks.
fn single_line(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&byte| {
            if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            }
        })
        .collect()
}

/// Writes a script's return value (or an element of it). `script_resp3` is the protocol the
/// script chose with redis.setresp: as in Redis, a boolean is written as such (`#t`/`#f`,
/// `:1`/`:0` to a RESP2 client) when the script speaks RESP3, while under RESP2 true is `:1`
/// and false is null.
pub fn lua_to_reply(value: &Value, writer: &mut ReplyWriter, script_resp3: bool) {
    write_value(value, writer, 0, script_resp3);
}

fn write_value(value: &Value, writer: &mut ReplyWriter, depth: usize, script_resp3: bool) {
    if depth > DEPTH_MAX {
        writer.error(b"ERR reached lua stack limit");
        return;
    }
    match value {
        Value::String(text) => writer.bulk(&text.as_bytes()),
        Value::Boolean(true) if !script_resp3 => writer.integer(1),
        Value::Boolean(false) if !script_resp3 => writer.null(),
        Value::Boolean(value) => writer.boolean(*value),
        Value::Integer(value) => writer.integer(*value as i64),
        Value::Number(value) => writer.integer(number_to_integer(*value)),
        Value::Table(table) => write_table(table, writer, depth, script_resp3),
        _ => writer.null(),
    }
}

fn write_table(table: &Table, writer: &mut ReplyWriter, depth: usize, script_resp3: bool) {
    if let Value::String(text) = field(table, "err") {
        let message = single_line(&text.as_bytes());
        if message.is_empty() {
            writer.error(b"ERR");
        } else {
            writer.error(&message);
        }
        return;
    }
    if let Value::String(text) = field(table, "ok") {
        writer.simple(&single_line(&text.as_bytes()));
        return;
    }
    match field(table, "double") {
        Value::Number(value) => return writer.double(value),
        Value::Integer(value) => return writer.double(value as f64),
        _ => {}
    }
    if let Value::String(text) = field(table, "big_number") {
        let text = single_line(&text.as_bytes());
        if writer.is_resp3() {
            let buffer = writer.buffer();
            buffer.push(b'(');
            buffer.extend_from_slice(&text);
            buffer.extend_from_slice(b"\r\n");
        } else {
            writer.bulk(&text);
        }
        return;
    }
    if let Value::Table(map) = field(table, "map") {
        let pairs: Vec<(Value, Value)> =
            map.pairs::<Value, Value>().filter_map(Result::ok).collect();
        if writer.is_resp3() {
            writer.map(pairs.len());
        } else {
            writer.array(pairs.len() * 2);
        }
        for (key, value) in &pairs {
            write_value(key, writer, depth + 1, script_resp3);
            write_value(value, writer, depth + 1, script_resp3);
        }
        return;
    }
    if let Value::Table(set) = field(table, "set") {
        let members: Vec<Value> = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(key, _)| key)
            .collect();
        if writer.is_resp3() {
            writer.set(members.len());
        } else {
            writer.array(members.len());
        }
        for member in &members {
            write_value(member, writer, depth + 1, script_resp3);
        }
        return;
    }
    if let Value::Table(verbatim) = field(table, "verbatim_string") {
        if let (Value::String(format), Value::String(text)) =
            (field(&verbatim, "format"), field(&verbatim, "string"))
        {
            let format = format.as_bytes();
            if format.len() == 3 {
                writer.verbatim(&[format[0], format[1], format[2]], &text.as_bytes());
                return;
            }
        }
    }
    let mut length = 0;
    while !matches!(table.raw_get::<Value>(length + 1), Ok(Value::Nil) | Err(_)) {
        length += 1;
    }
    writer.array(length);
    for index in 1..=length {
        let item = table.raw_get::<Value>(index).unwrap_or(Value::Nil);
        write_value(&item, writer, depth + 1, script_resp3);
    }
}
