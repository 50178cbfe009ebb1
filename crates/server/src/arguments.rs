//! Reading command arguments: numbers and keywords, with Redis's errors.

use crate::context::{errors, CommandError};

/// An integer argument, or "value is not an integer or out of range".
pub fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    store::number::parse_i64(arg).ok_or_else(|| errors::NOT_INTEGER.into())
}

/// A float argument, or "value is not a valid float".
pub fn float(arg: &[u8]) -> Result<f64, CommandError> {
    store::number::parse_f64(arg).ok_or_else(|| errors::NOT_FLOAT.into())
}

/// Whether `arg` is `keyword`, ignoring case.
#[inline]
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// A database index argument: an integer, then within range.
pub fn database_index(arg: &[u8], database_count: usize) -> Result<usize, CommandError> {
    let index =
        store::number::parse_i64(arg).ok_or_else(|| CommandError::from(errors::NOT_INTEGER))?;
    if index < 0 || index as usize >= database_count {
        return Err(errors::DB_INDEX_OUT_OF_RANGE.into());
    }
    Ok(index as usize)
}

/// Text of an argument for an error message.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Reads a SCAN cursor as Redis does (`strtoul`: an optional sign, decimal digits; an empty
/// cursor is 0; leading spaces, other characters and overflow are errors).
pub fn scan_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    const INVALID: &str = "ERR invalid cursor";
    let text = match arg.iter().position(|&byte| byte == 0) {
        Some(end) => &arg[..end],
        None => arg,
    };
    let Some(&first) = text.first() else {
        return Ok(0);
    };
    if first.is_ascii_whitespace() || first == 0x0b {
        return Err(INVALID.into());
    }
    let (negative, digits) = match first {
        b'+' => (false, &text[1..]),
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(INVALID.into());
    }
    let mut value: u64 = 0;
    for digit in digits {
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add((digit - b'0') as u64))
            .ok_or(CommandError::from(INVALID))?;
    }
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}
