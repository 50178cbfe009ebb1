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
