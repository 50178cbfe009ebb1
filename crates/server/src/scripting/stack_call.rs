//! `redis.call` / `redis.pcall` on the Lua C API: the arguments are read straight off the Lua
//! stack and the reply is built straight from its RESP bytes, with no intermediate values (no
//! per-argument copies, no parsed reply tree, no mlua value references).
//!
//! Model. A call runs in three phases, so that a Lua error (a `longjmp`, which skips Rust
//! destructors) never crosses a Rust frame that owns something:
//!
//! 1. [`run_from_stack`] reads the arguments (with Lua API functions that cannot raise) and
//!    runs the command; plain Rust, it returns the reply's RESP bytes.
//! 2. [`convert`] runs under `lua_cpcall` (protected) and turns those bytes into a Lua value
//!    ([`push_reply`], whose frames own nothing: they walk the bytes), which it leaves in a
//!    registry slot. A memory error there is caught and comes back as a status.
//! 3. Once the bytes are dropped, [`call`] pushes `(ok, value)` from the slot.
//!
//! The conversion rules are [`super::conversion`]'s (`reply_to_lua`), which stay for the other
//! conversions; a reply type added there must be added in [`push_reply`] too.

use std::borrow::Cow;
use std::os::raw::{c_int, c_void};

use mlua::ffi;
use smallvec::SmallVec;

use super::conversion::{DEPTH_MAX, ERROR_COUNTED_FIELD};
use super::engine::{call_command, lua_number_text, with_state};

/// The registry key (its address, as a light userdata) of the converted reply.
static REPLY_SLOT: u8 = 0;

/// What [`convert`] reads: the reply and how to convert its top-level null.
struct Conversion {
    bytes: *const u8,
    length: usize,
    /// RESP3 (redis.setresp(3)): a top-level null is nil rather than false.
    resp3: bool,
}

/// Runs the command whose arguments are on the stack; leaves `(ok, value)` on top of it: the
/// reply converted, or false and an error table.
///
/// # Safety
/// `state` is the calling Lua state, inside a C function call made while a script runs.
pub unsafe fn call(state: *mut ffi::lua_State) {
    // SAFETY: the Lua C API on the calling state, by the phases above: what this block owns
    // is dropped before anything below may raise.
    unsafe {
        let (ok, status) = {
            let (reply, resp3) = run_from_stack(state);
            let conversion = Conversion {
                bytes: reply.as_ptr(),
                length: reply.len(),
                resp3,
            };
            let status = ffi::lua_cpcall(
                state,
                convert,
                &conversion as *const Conversion as *mut c_void,
            );
            (reply.first() != Some(&b'-'), status)
        };
        if status != 0 {
            // A memory error while converting: the script fails with it.
            ffi::lua_error(state);
        }
        ffi::lua_pushboolean(state, ok as c_int);
        ffi::lua_pushlightuserdata(state, reply_slot());
        ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
        // Clearing an existing key allocates nothing.
        ffi::lua_pushlightuserdata(state, reply_slot());
        ffi::lua_pushnil(state);
        ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
    }
}

fn reply_slot() -> *mut c_void {
    &REPLY_SLOT as *const u8 as *mut c_void
}

/// Phase 1: the command's RESP reply (an error reply for bad arguments), and whether the
/// script speaks RESP3. Raises nothing.
unsafe fn run_from_stack(state: *mut ffi::lua_State) -> (Vec<u8>, bool) {
    // SAFETY: only non-raising API functions: gettop, type, tolstring on strings (no
    // conversion), tonumber. The strings stay on the stack, hence valid, during the call.
    unsafe {
        let count = ffi::lua_gettop(state);
        if count == 0 {
            return (
                error_reply("ERR Please specify at least one argument for this redis lib call"),
                false,
            );
        }
        let mut arguments: SmallVec<[Cow<'_, [u8]>; 16]> = SmallVec::new();
        for index in 1..=count {
            match ffi::lua_type(state, index) {
                ffi::LUA_TSTRING => {
                    let mut length = 0usize;
                    let pointer = ffi::lua_tolstring(state, index, &mut length);
                    arguments.push(Cow::Borrowed(std::slice::from_raw_parts(
                        pointer as *const u8,
                        length,
                    )));
                }
                ffi::LUA_TNUMBER => {
                    arguments.push(Cow::Owned(number_argument(ffi::lua_tonumber(state, index))))
                }
                _ => {
                    return (
                        error_reply("ERR Command arguments must be strings or integers"),
                        false,
                    )
                }
            }
        }
        let argv: SmallVec<[&[u8]; 16]> = arguments.iter().map(|argument| &**argument).collect();
        let ran = with_state(|call_state| {
            let resp3 = call_state.speaks_resp3();
            (call_command(call_state, &argv), resp3)
        });
        ran.unwrap_or_else(|| {
            (
                error_reply("ERR redis.call can not be used while loading a library"),
                false,
            )
        })
    }
}

/// A number argument as text: an integral value as an integer, anything else as Lua prints
/// numbers (`%.14g`).
fn number_argument(value: f64) -> Vec<u8> {
    let integral = value as i64;
    if integral as f64 == value && (integral as f64).to_bits() == value.to_bits() {
        integral.to_string().into_bytes()
    } else {
        lua_number_text(value).into_bytes()
    }
}

fn error_reply(message: &str) -> Vec<u8> {
    let mut reply = Vec::with_capacity(message.len() + 3);
    reply.push(b'-');
    reply.extend_from_slice(message.as_bytes());
    reply.extend_from_slice(b"\r\n");
    reply
}

/// Phase 2, protected: converts the reply and stores it in the registry slot.
unsafe extern "C-unwind" fn convert(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `lua_cpcall` passes the `Conversion` of `call`, alive for this call; nothing
    // here owns memory, so a raised error skips no destructor.
    unsafe {
        let conversion = &*(ffi::lua_touserdata(state, 1) as *const Conversion);
        let bytes = std::slice::from_raw_parts(conversion.bytes, conversion.length);
        ffi::lua_settop(state, 0);
        ffi::lua_pushlightuserdata(state, reply_slot());
        let top_level_null = conversion.resp3 && is_null(bytes);
        if top_level_null {
            ffi::lua_pushnil(state);
        } else if push_reply(state, bytes, 0, 0).is_none() {
            ffi::lua_settop(state, 1);
            push_field_table(state, c"err", b"ERR the command's reply could not be read");
        }
        ffi::lua_rawset(state, ffi::LUA_REGISTRYINDEX);
        0
    }
}

/// Whether a reply is a null (RESP2 null bulk or array, RESP3 null).
fn is_null(bytes: &[u8]) -> bool {
    bytes.starts_with(b"$-1\r\n") || bytes.starts_with(b"*-1\r\n") || bytes.starts_with(b"_\r\n")
}

/// The line starting at `start` (without its CRLF) and the position after it.
fn line(bytes: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = bytes.get(start..)?;
    let end = rest.windows(2).position(|pair| pair == b"\r\n")?;
    Some((&rest[..end], start + end + 2))
}

fn parse_integer(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" => Some(f64::NAN),
        _ => std::str::from_utf8(text).ok()?.parse().ok(),
    }
}

/// Pushes `{name = text}` (with room for one more field).
unsafe fn push_field_table(state: *mut ffi::lua_State, name: &std::ffi::CStr, text: &[u8]) {
    // SAFETY: see `convert`.
    unsafe {
        ffi::lua_createtable(state, 0, 2);
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_pushlstring(state, text.as_ptr() as *const _, text.len());
        ffi::lua_rawset(state, -3);
    }
}

/// Wraps the value on top of the stack as `{name = value}`.
unsafe fn wrap_in_field(state: *mut ffi::lua_State, name: &std::ffi::CStr) {
    // SAFETY: see `convert`.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_insert(state, -2);
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_insert(state, -2);
        ffi::lua_rawset(state, -3);
    }
}

/// Pushes the reply starting at `start` as a Lua value; returns the position after it, or
/// None (nothing pushed) when the bytes are not a reply.
unsafe fn push_reply(
    state: *mut ffi::lua_State,
    bytes: &[u8],
    start: usize,
    depth: usize,
) -> Option<usize> {
    if depth > DEPTH_MAX {
        return None;
    }
    // SAFETY: see `convert`; every push is preceded by room on the stack.
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            return None;
        }
        let kind = *bytes.get(start)?;
        let (text, next) = line(bytes, start + 1)?;
        match kind {
            b':' => {
                ffi::lua_pushnumber(state, parse_integer(text)? as f64);
                Some(next)
            }
            b'$' | b'=' => {
                let length = parse_integer(text)?;
                if length < 0 {
                    ffi::lua_pushboolean(state, 0);
                    return Some(next);
                }
                let end = next.checked_add(length as usize)?;
                let payload = bytes.get(next..end)?;
                if bytes.get(end..end + 2)? != b"\r\n" {
                    return None;
                }
                if kind == b'$' {
                    ffi::lua_pushlstring(state, payload.as_ptr() as *const _, payload.len());
                } else {
                    // Verbatim: `fmt:text` → {verbatim_string = {format = fmt, string = text}}.
                    if payload.len() < 4 || payload[3] != b':' {
                        return None;
                    }
                    ffi::lua_createtable(state, 0, 2);
                    ffi::lua_pushstring(state, c"format".as_ptr());
                    ffi::lua_pushlstring(state, payload.as_ptr() as *const _, 3);
                    ffi::lua_rawset(state, -3);
                    ffi::lua_pushstring(state, c"string".as_ptr());
                    ffi::lua_pushlstring(
                        state,
                        payload[4..].as_ptr() as *const _,
                        payload.len() - 4,
                    );
                    ffi::lua_rawset(state, -3);
                    wrap_in_field(state, c"verbatim_string");
                }
                Some(end + 2)
            }
            b'+' => {
                push_field_table(state, c"ok", text);
                Some(next)
            }
            b'-' => {
                push_field_table(state, c"err", text);
                // Counted when the command ran (see `conversion::ERROR_COUNTED_FIELD`).
                ffi::lua_pushlstring(
                    state,
                    ERROR_COUNTED_FIELD.as_ptr() as *const _,
                    ERROR_COUNTED_FIELD.len(),
                );
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
                Some(next)
            }
            b'(' => {
                push_field_table(state, c"big_number", text);
                Some(next)
            }
            b',' => {
                ffi::lua_pushnumber(state, parse_double(text)?);
                wrap_in_field(state, c"double");
                Some(next)
            }
            b'#' => {
                match text {
                    b"t" => ffi::lua_pushboolean(state, 1),
                    b"f" => ffi::lua_pushboolean(state, 0),
                    _ => return None,
                }
                Some(next)
            }
            b'_' => {
                ffi::lua_pushboolean(state, 0);
                Some(next)
            }
            b'*' | b'>' => {
                let count = parse_integer(text)?;
                if count < 0 {
                    ffi::lua_pushboolean(state, 0);
                    return Some(next);
                }
                ffi::lua_createtable(state, count.min(1 << 16) as c_int, 0);
                let mut position = next;
                for index in 1..=count {
                    let Some(after) = push_reply(state, bytes, position, depth + 1) else {
                        ffi::lua_pop(state, 1);
                        return None;
                    };
                    ffi::lua_rawseti(state, -2, index as _);
                    position = after;
                }
                Some(position)
            }
            b'%' | b'~' => {
                let count = parse_integer(text)?;
                if count < 0 {
                    return None;
                }
                ffi::lua_createtable(state, 0, count.min(1 << 16) as c_int);
                let mut position = next;
                for _ in 0..count {
                    // A map's key then value; a set's member, then true.
                    let Some(after) = push_reply(state, bytes, position, depth + 1) else {
                        ffi::lua_pop(state, 1);
                        return None;
                    };
                    position = after;
                    if kind == b'%' {
                        let Some(after) = push_reply(state, bytes, position, depth + 1) else {
                            ffi::lua_pop(state, 2);
                            return None;
                        };
                        position = after;
                    } else {
                        ffi::lua_pushboolean(state, 1);
                    }
                    ffi::lua_rawset(state, -3);
                }
                wrap_in_field(state, if kind == b'%' { c"map" } else { c"set" });
                Some(position)
            }
            b'|' => {
                // Attributes annotate the reply that follows: skipped, as the reply parser
                // skips them.
                let count = parse_integer(text)?;
                let mut position = next;
                for _ in 0..count.max(0).saturating_mul(2) {
                    position = push_reply(state, bytes, position, depth + 1)?;
                    ffi::lua_pop(state, 1);
                }
                push_reply(state, bytes, position, depth)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_as_integers_or_like_lua() {
        assert_eq!(number_argument(3.0), b"3");
        assert_eq!(number_argument(-12.0), b"-12");
        assert_eq!(number_argument(0.5), b"0.5");
        assert_eq!(number_argument(-0.0), b"-0");
        assert_eq!(number_argument(1e20), b"1e+20");
    }

    #[test]
    fn nulls_and_lines() {
        assert!(is_null(b"$-1\r\n"));
        assert!(is_null(b"*-1\r\n"));
        assert!(is_null(b"_\r\n"));
        assert!(!is_null(b"$0\r\n\r\n"));
        assert_eq!(line(b":12\r\nrest", 1), Some((&b"12"[..], 5)));
        assert_eq!(line(b":12", 1), None);
    }
}
