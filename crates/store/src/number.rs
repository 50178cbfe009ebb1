//! Numbers as Redis reads and writes them.

/// Longest input accepted as a long double (Redis's `MAX_LONG_DOUBLE_CHARS`).
pub const FLOAT_TEXT_BYTES_MAX: usize = 5 * 1024;

/// Parses a signed 64-bit integer strictly, as Redis's `string2ll`: optional `-`, digits, no
/// `+`, no leading zeros, no spaces, no overflow.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add((digit - b'0') as u64)?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            None
        } else {
            Some((magnitude as i64).wrapping_neg())
        }
    } else if magnitude > i64::MAX as u64 {
        None
    } else {
        Some(magnitude as i64)
    }
}

/// Parses a double as Redis's `strtod`-based readers do: no leading space, the whole input
/// consumed, `inf`/`-inf` allowed, NaN refused.
pub fn parse_f64(text: &[u8]) -> Option<f64> {
    if text.is_empty() || text.len() > FLOAT_TEXT_BYTES_MAX || text[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let lowered = text.to_ascii_lowercase();
    let value: f64 = match lowered.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "inf"/"nan" spellings handled above; refuse anything else alphabetic
            // that is not an exponent, and hexadecimal floats which Rust does not read.
            if lowered.contains("nan") || lowered.contains("inf") {
                return None;
            }
            text.parse().ok()?
        }
    };
    if value.is_nan() {
        return None;
    }
    Some(value)
}

/// Formats a double as INCRBYFLOAT replies: plain decimal, no exponent, no trailing zeros
/// (Redis's `ld2string` in human mode), with the shortest digits that round-trip.
pub fn format_f64_human(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let text = format!("{value}");
    text
}

/// Formats an integer.
pub fn format_i64(value: i64) -> String {
    itoa::Buffer::new().format(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [
            &b"-0"[..],
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1a",
            b"0x1",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1 "), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(format_f64_human(10.5), "10.5");
        assert_eq!(format_f64_human(3.0), "3");
        assert_eq!(format_f64_human(1e20), "100000000000000000000");
        assert_eq!(format_f64_human(-0.0), "0");
    }
}
