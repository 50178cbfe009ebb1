//! The `cmsgpack` library as Redis ships it (lua-cmsgpack 0.4): `pack`, `unpack`,
//! `unpack_one`, `unpack_limit`.

use mlua::{Lua, MultiValue, Table, Value};

/// Tables nested deeper than this are packed as nil (lua-cmsgpack's limit).
const NESTING_MAX: usize = 16;

fn error(message: &str) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

fn pack_number(out: &mut Vec<u8>, value: f64) {
    if value.fract() == 0.0
        && value.is_finite()
        && value >= i64::MIN as f64
        && value < 9.223372036854776e18
    {
        pack_integer(out, value as i64);
    } else if (value as f32) as f64 == value {
        out.push(0xca);
        out.extend_from_slice(&(value as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn pack_integer(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        if value <= 127 {
            out.push(value as u8);
        } else if value <= 0xff {
            out.extend_from_slice(&[0xcc, value as u8]);
        } else if value <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        } else if value <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(value as u64).to_be_bytes());
        }
    } else if value >= -32 {
        out.push(value as i8 as u8);
    } else if value >= -128 {
        out.extend_from_slice(&[0xd0, value as i8 as u8]);
    } else if value >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(value as i16).to_be_bytes());
    } else if value >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn pack_header(out: &mut Vec<u8>, length: usize, fix: u8, fix_max: usize, short: u8, long: u8) {
    if length < fix_max {
        out.push(fix | length as u8);
    } else if length <= 0xffff {
        out.push(short);
        out.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        out.push(long);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    }
}

/// The array length of a table whose keys are exactly 1..n, or None.
fn array_length(table: &Table) -> mlua::Result<Option<usize>> {
    let mut count = 0usize;
    let mut max = 0usize;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair?;
        let number = match key {
            Value::Integer(value) => value as f64,
            Value::Number(value) => value,
            _ => return Ok(None),
        };
        if number <= 0.0 || number.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(number as usize);
        count += 1;
    }
    Ok((max == count).then_some(max))
}

fn pack_value(out: &mut Vec<u8>, value: &Value, level: usize) -> mlua::Result<()> {
    match value {
        Value::Boolean(true) => out.push(0xc3),
        Value::Boolean(false) => out.push(0xc2),
        Value::Integer(value) => pack_integer(out, *value as i64),
        Value::Number(value) => pack_number(out, *value),
        Value::String(text) => {
            let bytes = text.as_bytes();
            let length = bytes.len();
            if length < 32 {
                out.push(0xa0 | length as u8);
            } else if length <= 0xff {
                out.extend_from_slice(&[0xd9, length as u8]);
            } else if length <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(length as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(length as u32).to_be_bytes());
            }
            out.extend_from_slice(&bytes);
        }
        Value::Table(table) if level < NESTING_MAX => match array_length(table)? {
            Some(length) => {
                pack_header(out, length, 0x90, 16, 0xdc, 0xdd);
                for index in 1..=length {
                    let item: Value = table.raw_get(index)?;
                    pack_value(out, &item, level + 1)?;
                }
            }
            None => {
                // Count, then encode, without holding every pair at once (values live on Lua's
                // limited reference stack).
                let mut count = 0;
                for pair in table.clone().pairs::<Value, Value>() {
                    pair?;
                    count += 1;
                }
                pack_header(out, count, 0x80, 16, 0xde, 0xdf);
                for pair in table.clone().pairs::<Value, Value>() {
                    let (key, item) = pair?;
                    pack_value(out, &key, level + 1)?;
                    pack_value(out, &item, level + 1)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

struct Reader<'a> {
    lua: &'a Lua,
    input: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> mlua::Result<&[u8]> {
        let end = self
            .position
            .checked_add(count)
            .filter(|end| *end <= self.input.len());
        let end = end.ok_or_else(|| error("Missing bytes in input."))?;
        let bytes = &self.input[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn unsigned(&mut self, count: usize) -> mlua::Result<u64> {
        Ok(self
            .take(count)?
            .iter()
            .fold(0u64, |total, &byte| (total << 8) | byte as u64))
    }

    fn string(&mut self, length: usize) -> mlua::Result<Value> {
        let bytes = self.take(length)?.to_vec();
        Ok(Value::String(self.lua.create_string(bytes)?))
    }

    fn array(&mut self, length: usize) -> mlua::Result<Value> {
        let table = self.lua.create_table()?;
        for index in 1..=length {
            let value = self.value()?;
            table.raw_set(index, value)?;
        }
        Ok(Value::Table(table))
    }

    fn map(&mut self, length: usize) -> mlua::Result<Value> {
        let table = self.lua.create_table()?;
        for _ in 0..length {
            let key = self.value()?;
            let value = self.value()?;
            if key != Value::Nil {
                table.raw_set(key, value)?;
            }
        }
        Ok(Value::Table(table))
    }

    fn value(&mut self) -> mlua::Result<Value> {
        let kind = self.take(1)?[0];
        Ok(match kind {
            0x00..=0x7f => Value::Number(kind as f64),
            0x80..=0x8f => return self.map((kind & 0x0f) as usize),
            0x90..=0x9f => return self.array((kind & 0x0f) as usize),
            0xa0..=0xbf => return self.string((kind & 0x1f) as usize),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let length = self.unsigned(1)? as usize;
                return self.string(length);
            }
            0xc5 | 0xda => {
                let length = self.unsigned(2)? as usize;
                return self.string(length);
            }
            0xc6 | 0xdb => {
                let length = self.unsigned(4)? as usize;
                return self.string(length);
            }
            0xca => {
                let bits = self.unsigned(4)? as u32;
                Value::Number(f32::from_bits(bits) as f64)
            }
            0xcb => Value::Number(f64::from_bits(self.unsigned(8)?)),
            0xcc => Value::Number(self.unsigned(1)? as f64),
            0xcd => Value::Number(self.unsigned(2)? as f64),
            0xce => Value::Number(self.unsigned(4)? as f64),
            0xcf => Value::Number(self.unsigned(8)? as f64),
            0xd0 => Value::Number(self.unsigned(1)? as u8 as i8 as f64),
            0xd1 => Value::Number(self.unsigned(2)? as u16 as i16 as f64),
            0xd2 => Value::Number(self.unsigned(4)? as u32 as i32 as f64),
            0xd3 => Value::Number(self.unsigned(8)? as i64 as f64),
            0xdc => {
                let length = self.unsigned(2)? as usize;
                return self.array(length);
            }
            0xdd => {
                let length = self.unsigned(4)? as usize;
                return self.array(length);
            }
            0xde => {
                let length = self.unsigned(2)? as usize;
                return self.map(length);
            }
            0xdf => {
                let length = self.unsigned(4)? as usize;
                return self.map(length);
            }
            0xe0..=0xff => Value::Number(kind as i8 as f64),
            _ => return Err(error("Bad data format in input.")),
        })
    }
}

fn integer(value: Option<&Value>, default: i64) -> i64 {
    match value {
        Some(Value::Integer(value)) => *value as i64,
        Some(Value::Number(value)) => *value as i64,
        _ => default,
    }
}

/// Unpacks up to `limit` values (0: all) from `offset`; returns the next offset (-1 at the end)
/// and the values.
fn unpack(
    lua: &Lua,
    input: &[u8],
    limit: i64,
    offset: i64,
    with_offset: bool,
) -> mlua::Result<MultiValue> {
    if offset < 0 || limit < 0 {
        return Err(error(&format!(
            "Invalid request to unpack with offset of {offset} and limit of {limit}."
        )));
    }
    if offset as usize > input.len() {
        return Err(error("Start offset greater than input length."));
    }
    let mut reader = Reader {
        lua,
        input,
        position: offset as usize,
    };
    let mut values = Vec::new();
    while reader.position < input.len() && (limit == 0 || (values.len() as i64) < limit) {
        values.push(reader.value()?);
    }
    if with_offset {
        let next = if reader.position >= input.len() {
            -1.0
        } else {
            reader.position as f64
        };
        values.insert(0, Value::Number(next));
    }
    Ok(MultiValue::from_iter(values))
}

fn input_bytes(args: &MultiValue) -> mlua::Result<Vec<u8>> {
    match args.front() {
        Some(Value::String(text)) => Ok(text.as_bytes().to_vec()),
        _ => Err(error("bad argument #1 to 'unpack' (string expected)")),
    }
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(error("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for value in args.iter() {
                pack_value(&mut out, value, 0)?;
            }
            lua.create_string(out)
        })?,
    )?;
    table.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let input = input_bytes(&args)?;
            unpack(lua, &input, 0, 0, false)
        })?,
    )?;
    table.set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let input = input_bytes(&args)?;
            unpack(lua, &input, 1, integer(args.get(1), 0), true)
        })?,
    )?;
    table.set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let input = input_bytes(&args)?;
            unpack(
                lua,
                &input,
                integer(args.get(1), 0),
                integer(args.get(2), 0),
                true,
            )
        })?,
    )?;
    Ok(table)
}
