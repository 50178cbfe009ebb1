//! The `bit` library (LuaBitOp): 32-bit operations on Lua numbers.

use mlua::{Lua, MultiValue, Table, Value};

/// LuaBitOp's number → 32-bit integer: rounds (ties to even) and keeps the low 32 bits.
pub fn to_bit(value: f64) -> i32 {
    (value + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn argument(args: &MultiValue, index: usize, name: &str) -> mlua::Result<i32> {
    match args.get(index) {
        Some(Value::Integer(value)) => Ok(to_bit(*value as f64)),
        Some(Value::Number(value)) => Ok(to_bit(*value)),
        Some(Value::String(text)) => std::str::from_utf8(&text.as_bytes())
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .map(to_bit)
            .ok_or_else(|| bad_argument(index, name)),
        _ => Err(bad_argument(index, name)),
    }
}

fn bad_argument(index: usize, name: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!(
        "bad argument #{} to '{name}' (number expected, got no value)",
        index + 1
    ))
}

fn fold(
    lua: &Lua,
    name: &'static str,
    operation: fn(i32, i32) -> i32,
) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, args: MultiValue| {
        let mut result = argument(&args, 0, name)?;
        for index in 1..args.len() {
            result = operation(result, argument(&args, index, name)?);
        }
        Ok(result as f64)
    })
}

fn shift(
    lua: &Lua,
    name: &'static str,
    operation: fn(i32, u32) -> i32,
) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, args: MultiValue| {
        let value = argument(&args, 0, name)?;
        let count = argument(&args, 1, name)? as u32 & 31;
        Ok(operation(value, count) as f64)
    })
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "tobit",
        lua.create_function(|_, args: MultiValue| Ok(argument(&args, 0, "tobit")? as f64))?,
    )?;
    table.set(
        "bnot",
        lua.create_function(|_, args: MultiValue| Ok(!argument(&args, 0, "bnot")? as f64))?,
    )?;
    table.set("band", fold(lua, "band", |a, b| a & b)?)?;
    table.set("bor", fold(lua, "bor", |a, b| a | b)?)?;
    table.set("bxor", fold(lua, "bxor", |a, b| a ^ b)?)?;
    table.set(
        "lshift",
        shift(lua, "lshift", |a, n| ((a as u32) << n) as i32)?,
    )?;
    table.set(
        "rshift",
        shift(lua, "rshift", |a, n| ((a as u32) >> n) as i32)?,
    )?;
    table.set("arshift", shift(lua, "arshift", |a, n| a >> n)?)?;
    table.set(
        "rol",
        shift(lua, "rol", |a, n| (a as u32).rotate_left(n) as i32)?,
    )?;
    table.set(
        "ror",
        shift(lua, "ror", |a, n| (a as u32).rotate_right(n) as i32)?,
    )?;
    table.set(
        "bswap",
        lua.create_function(|_, args: MultiValue| {
            Ok(argument(&args, 0, "bswap")?.swap_bytes() as f64)
        })?,
    )?;
    table.set(
        "tohex",
        lua.create_function(|_, args: MultiValue| {
            let value = argument(&args, 0, "tohex")? as u32;
            let digits = match args.get(1) {
                None | Some(Value::Nil) => 8,
                _ => argument(&args, 1, "tohex")? as i64,
            };
            let upper = digits < 0;
            let digits = digits.abs().clamp(1, 8) as usize;
            let masked = if digits == 8 {
                value
            } else {
                value & ((1u32 << (4 * digits)) - 1)
            };
            Ok(if upper {
                format!("{masked:0digits$X}")
            } else {
                format!("{masked:0digits$x}")
            })
        })?,
    )?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tobit_wraps_and_rounds() {
        assert_eq!(super::to_bit(4294967295.0), -1);
        assert_eq!(super::to_bit(4294967296.0 + 5.0), 5);
        assert_eq!(super::to_bit(-1.0), -1);
        assert_eq!(super::to_bit(2.5), 2);
    }
}
