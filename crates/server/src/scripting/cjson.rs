//! The `cjson` library as Redis ships it (lua-cjson 2.1): `encode`, `decode`, `null` and the
//! configuration functions. Numbers are written with `%.14g`; an empty table is `{}`; object
//! keys come in Lua's table order.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// `printf("%.<precision>g", value)`.
pub fn format_g(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return if value.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        }
        .into();
    }
    if value.is_infinite() {
        return if value < 0.0 { "-inf" } else { "inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        strip_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// The library's settings (`cjson.encode_max_depth` ...).
pub struct Settings {
    encode_max_depth: usize,
    decode_max_depth: usize,
    encode_invalid_numbers: InvalidNumbers,
    decode_invalid_numbers: bool,
    precision: usize,
    sparse_convert: bool,
    sparse_ratio: usize,
    sparse_safe: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum InvalidNumbers {
    Refuse,
    Allow,
    Null,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: InvalidNumbers::Refuse,
            decode_invalid_numbers: true,
            precision: 14,
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
        }
    }
}

fn error(message: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) => "lightuserdata",
        _ => "userdata",
    }
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

fn encode_number(out: &mut Vec<u8>, value: f64, settings: &Settings) -> mlua::Result<()> {
    if value.is_nan() || value.is_infinite() {
        match settings.encode_invalid_numbers {
            InvalidNumbers::Refuse => {
                return Err(error("Cannot serialise number: must not be NaN or Inf"))
            }
            InvalidNumbers::Null => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            InvalidNumbers::Allow => {}
        }
    }
    out.extend_from_slice(format_g(value, settings.precision).as_bytes());
    Ok(())
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(value) => Some(*value as f64),
        Value::Number(value) => Some(*value),
        _ => None,
    }
}

/// The array length of a table if it is an array (keys 1..n, not too sparse), 0 for an empty
/// table (encoded as an object), or None for an object.
fn array_length(table: &Table, settings: &Settings) -> mlua::Result<Option<usize>> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair?;
        match number_of(&key) {
            Some(number) if number >= 1.0 && number.floor() == number => {
                max = max.max(number as usize);
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    if max == 0 {
        return Ok(None);
    }
    if settings.sparse_ratio > 0
        && max > settings.sparse_safe
        && max > items * settings.sparse_ratio
    {
        if !settings.sparse_convert {
            return Err(error("Cannot serialise table: excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max))
}

fn encode_value(
    out: &mut Vec<u8>,
    value: &Value,
    settings: &Settings,
    depth: usize,
) -> mlua::Result<()> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(data) if data.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Integer(value) => encode_number(out, *value as f64, settings)?,
        Value::Number(value) => encode_number(out, *value, settings)?,
        Value::String(text) => escape_into(out, &text.as_bytes()),
        Value::Table(table) => {
            let depth = depth + 1;
            if depth > settings.encode_max_depth {
                return Err(error(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            match array_length(table, settings)? {
                Some(length) => {
                    out.push(b'[');
                    for index in 1..=length {
                        if index > 1 {
                            out.push(b',');
                        }
                        let item: Value = table.raw_get(index)?;
                        encode_value(out, &item, settings, depth)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in table.clone().pairs::<Value, Value>() {
                        let (key, item) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &key {
                            Value::String(text) => escape_into(out, &text.as_bytes()),
                            other => match number_of(other) {
                                Some(number) => {
                                    out.push(b'"');
                                    encode_number(out, number, settings)?;
                                    out.push(b'"');
                                }
                                None => return Err(error(
                                    "Cannot serialise table: table key must be a number or string",
                                )),
                            },
                        }
                        out.push(b':');
                        encode_value(out, &item, settings, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(error(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            )))
        }
    }
    Ok(())
}

/// `cjson.encode(value)`.
pub fn encode(value: &Value, settings: &Settings) -> mlua::Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_value(&mut out, value, settings, 0)?;
    Ok(out)
}

struct Decoder<'a> {
    lua: &'a Lua,
    input: &'a [u8],
    position: usize,
    settings: &'a Settings,
    depth: usize,
}

impl Decoder<'_> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.position) {
            self.position += 1;
        }
    }

    fn token_name(&self) -> &'static str {
        match self.input.get(self.position) {
            None => "the end",
            Some(b'{') => "object start",
            Some(b'}') => "object end",
            Some(b'[') => "array start",
            Some(b']') => "array end",
            Some(b',') => "comma",
            Some(b':') => "colon",
            Some(b'"') => "string",
            Some(b'-' | b'0'..=b'9') => "number",
            Some(b't' | b'f') => "boolean",
            Some(b'n') => "null",
            _ => "invalid token",
        }
    }

    fn expected(&self, what: &str) -> mlua::Error {
        error(format!(
            "Expected {what} but found {} at character {}",
            self.token_name(),
            self.position + 1
        ))
    }

    fn value(&mut self) -> mlua::Result<Value> {
        self.skip_space();
        let Some(&byte) = self.input.get(self.position) else {
            return Err(self.expected("value"));
        };
        match byte {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => Ok(Value::String(self.lua.create_string(self.string()?)?)),
            b'-' | b'0'..=b'9' | b'i' | b'I' | b'N' => self.number(),
            b't' if self.input[self.position..].starts_with(b"true") => {
                self.position += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.input[self.position..].starts_with(b"false") => {
                self.position += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.input[self.position..].starts_with(b"null") => {
                self.position += 4;
                Ok(Value::LightUserData(LightUserData(std::ptr::null_mut())))
            }
            b'n' if self.input[self.position..].starts_with(b"nan") => self.number(),
            _ => Err(error(format!(
                "Expected value but found invalid token at character {}",
                self.position + 1
            ))),
        }
    }

    fn nest(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.settings.decode_max_depth {
            return Err(error(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                self.position + 1
            )));
        }
        Ok(())
    }

    fn object(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.position += 1;
        let table = self.lua.create_table()?;
        self.skip_space();
        if self.input.get(self.position) == Some(&b'}') {
            self.position += 1;
            self.depth -= 1;
            return Ok(Value::Table(table));
        }
        loop {
            self.skip_space();
            if self.input.get(self.position) != Some(&b'"') {
                return Err(self.expected("object key string"));
            }
            let key = self.string()?;
            self.skip_space();
            if self.input.get(self.position) != Some(&b':') {
                return Err(self.expected("colon"));
            }
            self.position += 1;
            let value = self.value()?;
            table.raw_set(self.lua.create_string(key)?, value)?;
            self.skip_space();
            match self.input.get(self.position) {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(table));
                }
                _ => return Err(self.expected("comma or object end")),
            }
        }
    }

    fn array(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.position += 1;
        let table = self.lua.create_table()?;
        self.skip_space();
        if self.input.get(self.position) == Some(&b']') {
            self.position += 1;
            self.depth -= 1;
            return Ok(Value::Table(table));
        }
        let mut index = 1;
        loop {
            let value = self.value()?;
            table.raw_set(index, value)?;
            index += 1;
            self.skip_space();
            match self.input.get(self.position) {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(table));
                }
                _ => return Err(self.expected("comma or array end")),
            }
        }
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        let start = self.position;
        self.position += 1;
        let mut out = Vec::new();
        loop {
            let Some(&byte) = self.input.get(self.position) else {
                return Err(error(format!(
                    "Expected value but found unexpected end of string at character {}",
                    start + 1
                )));
            };
            self.position += 1;
            match byte {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&escape) = self.input.get(self.position) else {
                        continue;
                    };
                    self.position += 1;
                    match escape {
                        b'"' | b'\\' | b'/' => out.push(escape),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4().ok_or_else(|| self.invalid_escape(start))?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.input.get(self.position..self.position + 2) == Some(b"\\u")
                            {
                                self.position += 2;
                                let low = self.hex4().ok_or_else(|| self.invalid_escape(start))?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.invalid_escape(start));
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let character =
                                char::from_u32(code).ok_or_else(|| self.invalid_escape(start))?;
                            let mut buffer = [0u8; 4];
                            out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                        }
                        _ => return Err(self.invalid_escape(start)),
                    }
                }
                _ => out.push(byte),
            }
        }
    }

    fn invalid_escape(&self, start: usize) -> mlua::Error {
        error(format!(
            "Expected value but found invalid unicode escape code at character {}",
            start + 1
        ))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.input.get(self.position..self.position + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        let code = u32::from_str_radix(text, 16).ok()?;
        self.position += 4;
        Some(code)
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.position;
        while let Some(&byte) = self.input.get(self.position) {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.') {
                self.position += 1;
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.input[start..self.position]).unwrap_or("");
        let lower = text.to_ascii_lowercase();
        let parsed = match lower.trim_start_matches('-') {
            "inf" | "infinity" if self.settings.decode_invalid_numbers => {
                Some(if lower.starts_with('-') {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            }
            "nan" if self.settings.decode_invalid_numbers => Some(f64::NAN),
            _ if lower.starts_with("0x") || lower.starts_with("-0x") => {
                let negative = lower.starts_with('-');
                let digits = lower.trim_start_matches('-').trim_start_matches("0x");
                i64::from_str_radix(digits, 16).ok().map(|value| {
                    if negative {
                        -(value as f64)
                    } else {
                        value as f64
                    }
                })
            }
            _ => text.parse::<f64>().ok(),
        };
        match parsed {
            Some(value) => Ok(Value::Number(value)),
            None => {
                self.position = start;
                Err(error(format!(
                    "Expected value but found invalid number at character {}",
                    start + 1
                )))
            }
        }
    }
}

/// `cjson.decode(text)`.
pub fn decode(lua: &Lua, input: &[u8], settings: &Settings) -> mlua::Result<Value> {
    let mut decoder = Decoder {
        lua,
        input,
        position: 0,
        settings,
        depth: 0,
    };
    let value = decoder.value()?;
    decoder.skip_space();
    if decoder.position < input.len() {
        return Err(decoder.expected("the end"));
    }
    Ok(value)
}

fn settings_mut(lua: &Lua) -> mlua::AppDataRefMut<'_, Settings> {
    if lua.app_data_ref::<Settings>().is_none() {
        lua.set_app_data(Settings::default());
    }
    lua.app_data_mut::<Settings>().expect("just set")
}

fn depth_setting(args: &MultiValue, name: &str) -> mlua::Result<Option<usize>> {
    match args.front() {
        None | Some(Value::Nil) => Ok(None),
        Some(value) => match number_of(value) {
            Some(number) if (1.0..=2147483647.0).contains(&number) => Ok(Some(number as usize)),
            _ => Err(error(format!(
                "bad argument #1 to '{name}' (expected integer between 1 and 2147483647)"
            ))),
        },
    }
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    lua.set_app_data(Settings::default());
    let table = lua.create_table()?;
    table.set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(error("bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let settings = settings_mut(lua);
            let bytes = encode(&args[0], &settings)?;
            drop(settings);
            lua.create_string(bytes)
        })?,
    )?;
    table.set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            let text = match args.front() {
                Some(Value::String(text)) if args.len() == 1 => text.as_bytes().to_vec(),
                Some(Value::Integer(value)) if args.len() == 1 => value.to_string().into_bytes(),
                Some(Value::Number(value)) if args.len() == 1 => format_g(*value, 14).into_bytes(),
                _ => return Err(error("bad argument #1 to 'decode' (expected 1 argument)")),
            };
            let settings = std::mem::take(&mut *settings_mut(lua));
            let result = decode(lua, &text, &settings);
            *settings_mut(lua) = settings;
            result
        })?,
    )?;
    table.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    table.set(
        "encode_max_depth",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            if let Some(depth) = depth_setting(&args, "encode_max_depth")? {
                settings.encode_max_depth = depth;
            }
            Ok(settings.encode_max_depth as f64)
        })?,
    )?;
    table.set(
        "decode_max_depth",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            if let Some(depth) = depth_setting(&args, "decode_max_depth")? {
                settings.decode_max_depth = depth;
            }
            Ok(settings.decode_max_depth as f64)
        })?,
    )?;
    table.set(
        "encode_number_precision",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            match args.front().and_then(number_of) {
                None => {}
                Some(number) if (1.0..=14.0).contains(&number) => settings.precision = number as usize,
                Some(_) => {
                    return Err(error(
                        "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
                    ))
                }
            }
            Ok(settings.precision as f64)
        })?,
    )?;
    table.set(
        "encode_invalid_numbers",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            match args.front() {
                Some(Value::Boolean(true)) => {
                    settings.encode_invalid_numbers = InvalidNumbers::Allow
                }
                Some(Value::Boolean(false)) => {
                    settings.encode_invalid_numbers = InvalidNumbers::Refuse
                }
                Some(Value::String(text)) if text.as_bytes() == b"null" => {
                    settings.encode_invalid_numbers = InvalidNumbers::Null
                }
                Some(Value::String(text)) if text.as_bytes() == b"on" => {
                    settings.encode_invalid_numbers = InvalidNumbers::Allow
                }
                Some(Value::String(text)) if text.as_bytes() == b"off" => {
                    settings.encode_invalid_numbers = InvalidNumbers::Refuse
                }
                None | Some(Value::Nil) => {}
                Some(_) => {
                    return Err(error(
                        "bad argument #1 to 'encode_invalid_numbers' (invalid option)",
                    ))
                }
            }
            Ok(match settings.encode_invalid_numbers {
                InvalidNumbers::Allow => Value::Boolean(true),
                InvalidNumbers::Refuse => Value::Boolean(false),
                InvalidNumbers::Null => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    table.set(
        "decode_invalid_numbers",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            match args.front() {
                Some(Value::Boolean(value)) => settings.decode_invalid_numbers = *value,
                None | Some(Value::Nil) => {}
                Some(_) => {
                    return Err(error(
                        "bad argument #1 to 'decode_invalid_numbers' (invalid option)",
                    ))
                }
            }
            Ok(settings.decode_invalid_numbers)
        })?,
    )?;
    table.set(
        "encode_keep_buffer",
        lua.create_function(|_, args: MultiValue| {
            Ok(!matches!(args.front(), Some(Value::Boolean(false))))
        })?,
    )?;
    table.set(
        "encode_sparse_array",
        lua.create_function(|lua, args: MultiValue| {
            let mut settings = settings_mut(lua);
            if let Some(Value::Boolean(convert)) = args.front() {
                settings.sparse_convert = *convert;
            }
            if let Some(ratio) = args.get(1).and_then(number_of) {
                settings.sparse_ratio = ratio.max(0.0) as usize;
            }
            if let Some(safe) = args.get(2).and_then(number_of) {
                settings.sparse_safe = safe.max(0.0) as usize;
            }
            Ok((
                settings.sparse_convert,
                settings.sparse_ratio as f64,
                settings.sparse_safe as f64,
            ))
        })?,
    )?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn percent_g() {
        assert_eq!(format_g(1.0, 14), "1");
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(1e15, 14), "1e+15");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(format_g(1e-5, 14), "1e-05");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(-2.5, 14), "-2.5");
        assert_eq!(format_g(std::f64::consts::PI, 14), "3.1415926535898");
        assert_eq!(format_g(100.0, 14), "100");
    }
}
