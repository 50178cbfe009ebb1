//! The `struct` library (Roberto Ierusalimschy's, as Redis ships it): `pack`, `unpack`,
//! `size` with formats `<` `>` `!` `=` `x` `b` `B` `h` `H` `l` `L` `T` `i[n]` `I[n]` `f` `d`
//! `c[n]` `s` and spaces.

use mlua::{Lua, MultiValue, Table, Value};

fn error(message: String) -> mlua::Error {
    mlua::Error::RuntimeError(message)
}

struct Format<'a> {
    text: &'a [u8],
    position: usize,
    little: bool,
    align: usize,
}

enum Item {
    Padding,
    Integer { size: usize, signed: bool },
    Float,
    Double,
    Chars(Option<usize>),
    ZeroTerminated,
}

impl Format<'_> {
    fn number(&mut self) -> Option<usize> {
        let start = self.position;
        while self.text.get(self.position).is_some_and(u8::is_ascii_digit) {
            self.position += 1;
        }
        std::str::from_utf8(&self.text[start..self.position])
            .ok()?
            .parse()
            .ok()
    }

    /// The next item and its size, or None at the end.
    fn next(&mut self) -> mlua::Result<Option<(Item, usize)>> {
        loop {
            let Some(&option) = self.text.get(self.position) else {
                return Ok(None);
            };
            self.position += 1;
            let item = match option {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    self.align = self.number().unwrap_or(8);
                    continue;
                }
                b'x' => (Item::Padding, 1),
                b'b' => (
                    Item::Integer {
                        size: 1,
                        signed: true,
                    },
                    1,
                ),
                b'B' => (
                    Item::Integer {
                        size: 1,
                        signed: false,
                    },
                    1,
                ),
                b'h' => (
                    Item::Integer {
                        size: 2,
                        signed: true,
                    },
                    2,
                ),
                b'H' => (
                    Item::Integer {
                        size: 2,
                        signed: false,
                    },
                    2,
                ),
                b'l' => (
                    Item::Integer {
                        size: 8,
                        signed: true,
                    },
                    8,
                ),
                b'L' | b'T' => (
                    Item::Integer {
                        size: 8,
                        signed: false,
                    },
                    8,
                ),
                b'i' | b'I' => {
                    let size = self.number().unwrap_or(4);
                    if !(1..=8).contains(&size) {
                        return Err(error(format!(
                            "integral size {size} is larger than limit of 8"
                        )));
                    }
                    (
                        Item::Integer {
                            size,
                            signed: option == b'i',
                        },
                        size,
                    )
                }
                b'f' => (Item::Float, 4),
                b'd' => (Item::Double, 8),
                b'c' => {
                    let count = self.number();
                    (Item::Chars(count), count.unwrap_or(1))
                }
                b's' => (Item::ZeroTerminated, 0),
                _ => return Err(error(format!("invalid format option '{}'", option as char))),
            };
            return Ok(Some(item));
        }
    }

    fn padding(&self, item: &Item, size: usize, total: usize) -> usize {
        let alignment = match item {
            Item::Integer { .. } | Item::Float | Item::Double => size.min(self.align),
            _ => 1,
        };
        if alignment <= 1 || !alignment.is_power_of_two() {
            return 0;
        }
        (alignment - (total & (alignment - 1))) & (alignment - 1)
    }
}

fn new_format(text: &[u8]) -> Format<'_> {
    Format {
        text,
        position: 0,
        little: cfg!(target_endian = "little"),
        align: 1,
    }
}

fn number(value: Option<&Value>, index: usize) -> mlua::Result<f64> {
    match value {
        Some(Value::Integer(value)) => Ok(*value as f64),
        Some(Value::Number(value)) => Ok(*value),
        Some(Value::String(text)) => std::str::from_utf8(&text.as_bytes())
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                error(format!(
                    "bad argument #{index} to 'pack' (number expected, got string)"
                ))
            }),
        _ => Err(error(format!(
            "bad argument #{index} to 'pack' (number expected, got no value)"
        ))),
    }
}

fn pack(args: &MultiValue) -> mlua::Result<Vec<u8>> {
    let Some(Value::String(format_text)) = args.front() else {
        return Err(error(
            "bad argument #1 to 'pack' (string expected, got no value)".into(),
        ));
    };
    let format_bytes = format_text.as_bytes().to_vec();
    let mut format = new_format(&format_bytes);
    let mut out = Vec::new();
    let mut argument = 1;
    while let Some((item, size)) = format.next()? {
        let padding = format.padding(&item, size, out.len());
        out.extend(std::iter::repeat_n(0u8, padding));
        match item {
            Item::Padding => out.push(0),
            Item::Integer { size, .. } => {
                let value = number(args.get(argument), argument + 1)?;
                argument += 1;
                let integer = if value < 0.0 {
                    value as i64 as u64
                } else {
                    value as u64
                };
                let bytes = integer.to_le_bytes();
                if format.little {
                    out.extend_from_slice(&bytes[..size]);
                } else {
                    out.extend(bytes[..size].iter().rev());
                }
            }
            Item::Float => {
                let value = number(args.get(argument), argument + 1)? as f32;
                argument += 1;
                let bytes = if format.little {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                out.extend_from_slice(&bytes);
            }
            Item::Double => {
                let value = number(args.get(argument), argument + 1)?;
                argument += 1;
                let bytes = if format.little {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                out.extend_from_slice(&bytes);
            }
            Item::Chars(count) => {
                let text = match args.get(argument) {
                    Some(Value::String(text)) => text.as_bytes().to_vec(),
                    Some(Value::Integer(value)) => value.to_string().into_bytes(),
                    Some(Value::Number(value)) => super::cjson::format_g(*value, 14).into_bytes(),
                    _ => {
                        return Err(error(format!(
                            "bad argument #{} to 'pack' (string expected, got no value)",
                            argument + 1
                        )))
                    }
                };
                argument += 1;
                let length = count.unwrap_or(text.len());
                if text.len() < length {
                    return Err(error(format!(
                        "bad argument #{} to 'pack' (string too short)",
                        argument
                    )));
                }
                out.extend_from_slice(&text[..length]);
            }
            Item::ZeroTerminated => {
                let Some(Value::String(text)) = args.get(argument) else {
                    return Err(error(format!(
                        "bad argument #{} to 'pack' (string expected, got no value)",
                        argument + 1
                    )));
                };
                argument += 1;
                let bytes = text.as_bytes();
                if bytes.contains(&0) {
                    return Err(error(format!(
                        "bad argument #{} to 'pack' (string contains zeros)",
                        argument
                    )));
                }
                out.extend_from_slice(&bytes);
                out.push(0);
            }
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
    let (Some(Value::String(format_text)), Some(Value::String(data))) = (args.front(), args.get(1))
    else {
        return Err(error(
            "bad argument #2 to 'unpack' (string expected, got no value)".into(),
        ));
    };
    let format_bytes = format_text.as_bytes().to_vec();
    let data = data.as_bytes().to_vec();
    let mut position = match args.get(2) {
        Some(Value::Integer(value)) => (*value as i64 - 1).max(0) as usize,
        Some(Value::Number(value)) => (*value as i64 - 1).max(0) as usize,
        _ => 0,
    };
    let mut format = new_format(&format_bytes);
    let mut values = Vec::new();
    let too_short = || error("bad argument #2 to 'unpack' (data string too short)".into());
    let mut last_count: Option<f64> = None;
    while let Some((item, size)) = format.next()? {
        position += format.padding(&item, size, position);
        match item {
            Item::Padding => position += 1,
            Item::Integer { size, signed } => {
                let bytes = data.get(position..position + size).ok_or_else(too_short)?;
                let mut raw = 0u64;
                for index in 0..size {
                    let byte = if format.little {
                        bytes[size - 1 - index]
                    } else {
                        bytes[index]
                    };
                    raw = (raw << 8) | byte as u64;
                }
                let value = if signed && size < 8 && raw & (1 << (size * 8 - 1)) != 0 {
                    (raw as i64 - (1i64 << (size * 8))) as f64
                } else if signed {
                    raw as i64 as f64
                } else {
                    raw as f64
                };
                values.push(Value::Number(value));
                last_count = Some(value);
                position += size;
            }
            Item::Float => {
                let bytes: [u8; 4] = data
                    .get(position..position + 4)
                    .ok_or_else(too_short)?
                    .try_into()
                    .expect("4 bytes");
                let value = if format.little {
                    f32::from_le_bytes(bytes)
                } else {
                    f32::from_be_bytes(bytes)
                };
                values.push(Value::Number(value as f64));
                position += 4;
            }
            Item::Double => {
                let bytes: [u8; 8] = data
                    .get(position..position + 8)
                    .ok_or_else(too_short)?
                    .try_into()
                    .expect("8 bytes");
                let value = if format.little {
                    f64::from_le_bytes(bytes)
                } else {
                    f64::from_be_bytes(bytes)
                };
                values.push(Value::Number(value));
                position += 8;
            }
            Item::Chars(count) => {
                let length = match count {
                    Some(0) | None if last_count.is_some() => {
                        values.pop();
                        last_count.take().map(|value| value as usize).unwrap_or(0)
                    }
                    Some(count) => count,
                    None => 1,
                };
                let bytes = data
                    .get(position..position + length)
                    .ok_or_else(too_short)?;
                values.push(Value::String(lua.create_string(bytes)?));
                position += length;
            }
            Item::ZeroTerminated => {
                let rest = data.get(position..).unwrap_or(&[]);
                let end = rest
                    .iter()
                    .position(|&byte| byte == 0)
                    .ok_or_else(|| error("unfinished string in data".into()))?;
                values.push(Value::String(lua.create_string(&rest[..end])?));
                position += end + 1;
            }
        }
    }
    values.push(Value::Number((position + 1) as f64));
    Ok(MultiValue::from_iter(values))
}

fn size(args: &MultiValue) -> mlua::Result<f64> {
    let Some(Value::String(format_text)) = args.front() else {
        return Err(error(
            "bad argument #1 to 'size' (string expected, got no value)".into(),
        ));
    };
    let format_bytes = format_text.as_bytes().to_vec();
    let mut format = new_format(&format_bytes);
    let mut total = 0;
    while let Some((item, size)) = format.next()? {
        if matches!(item, Item::ZeroTerminated) || matches!(item, Item::Chars(Some(0))) {
            return Err(error("options 'c0' - 's' have undefined sizes".into()));
        }
        total += format.padding(&item, size, total) + size;
    }
    Ok(total as f64)
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| lua.create_string(pack(&args)?))?,
    )?;
    table.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| unpack(lua, &args))?,
    )?;
    table.set(
        "size",
        lua.create_function(|_, args: MultiValue| size(&args))?,
    )?;
    Ok(table)
}
