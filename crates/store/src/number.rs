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

/// Formats a double as Redis's `ld2string` does in human mode (the double widened to Redis's
/// `long double`, see [`LongDouble::format_human`]).
pub fn format_f64_human(value: f64) -> String {
    LongDouble::from_f64(value).format_human()
}

/// Formats an integer.
pub fn format_i64(value: i64) -> String {
    itoa::Buffer::new().format(value).to_string()
}

// -----------------------------------------------------------------------------------------------
// Redis's `long double`.
//
// INCRBYFLOAT (and HINCRBYFLOAT) compute in C's `long double`, which on x86-64 is the x87 80-bit
// extended format: a 64-bit mantissa and a 15-bit exponent. Their replies show it: `SET k 0.1`
// then `INCRBYFLOAT k 0.2` gives "0.3", `1e308 + 1e308` is finite, and `%.17Lf` shows 17
// decimals. To give the same replies, values are read as `strtold` reads them (correctly
// rounded, hexadecimal included), added with one correct rounding, and printed exactly as glibc's
// `%.17Lf` prints them, with exact big-integer arithmetic. These paths are not hot.

/// Mantissa bits of the x87 extended format.
const LONG_DOUBLE_MANTISSA_BITS: i64 = 64;
/// Exponent of the lowest bit of the smallest subnormal long double (2^-16445).
const LONG_DOUBLE_LOWEST_BIT_EXPONENT: i64 = -16445;
/// Every finite long double is below 2^16384.
const LONG_DOUBLE_MAGNITUDE_BITS_MAX: i64 = 16384;
/// Digits after the point in Redis's human format (`%.17Lf`).
const HUMAN_DECIMALS: usize = 17;
/// Longest text Redis reads as a long double: its buffer holds `MAX_LONG_DOUBLE_CHARS` bytes,
/// the terminating NUL included.
const LONG_DOUBLE_TEXT_BYTES_MAX: usize = FLOAT_TEXT_BYTES_MAX - 1;

/// A value of Redis's `long double`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LongDouble {
    /// `±mantissa × 2^exponent`; normalized (top mantissa bit set) unless subnormal or zero.
    Finite {
        negative: bool,
        mantissa: u64,
        exponent: i32,
    },
    Infinite {
        negative: bool,
    },
    NotANumber,
}

/// Why INCRBYFLOAT-style arithmetic failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongDoubleError {
    /// An operand is not a valid float ("value is not a valid float").
    NotAFloat,
    /// The result is NaN or infinite ("increment would produce NaN or Infinity").
    NotFinite,
}

/// Reads `current` (absent reads as 0) and `increment` as Redis's `long double`s, adds them and
/// formats the sum as INCRBYFLOAT stores and replies it.
pub fn increment_by_float(
    current: Option<&[u8]>,
    increment: &[u8],
) -> Result<String, LongDoubleError> {
    let current = match current {
        Some(text) => parse_long_double(text).ok_or(LongDoubleError::NotAFloat)?,
        None => LongDouble::ZERO,
    };
    let increment = parse_long_double(increment).ok_or(LongDoubleError::NotAFloat)?;
    let sum = current + increment;
    if !sum.is_finite() {
        return Err(LongDoubleError::NotFinite);
    }
    Ok(sum.format_human())
}

/// Reads a long double as Redis's `string2ld`: `strtold` syntax (decimal, hexadecimal with an
/// optional binary exponent, `inf`/`infinity`), the whole text consumed, no leading space, at
/// most 5119 bytes; NaN, overflow and underflow to zero are refused.
pub fn parse_long_double(text: &[u8]) -> Option<LongDouble> {
    if text.is_empty() || text.len() > LONG_DOUBLE_TEXT_BYTES_MAX {
        return None;
    }
    if matches!(text[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (negative, body) = match text[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::Infinite { negative });
    }
    match body {
        [b'0', b'x' | b'X', rest @ ..] => parse_hexadecimal(negative, rest),
        _ => parse_decimal(negative, body),
    }
}

/// Reads the digits of `text` from `start` in `radix`, feeding each digit; returns the end.
fn scan_digits(text: &[u8], start: usize, radix: u32, mut feed: impl FnMut(u32)) -> usize {
    let mut index = start;
    while let Some(digit) = text
        .get(index)
        .and_then(|byte| (*byte as char).to_digit(radix))
    {
        feed(digit);
        index += 1;
    }
    index
}

/// Reads an exponent (`[+-]digits`) from `start`; returns it (saturated) and the end, or None
/// when there is no digit.
fn scan_exponent(text: &[u8], start: usize) -> Option<(i64, usize)> {
    let (negative, start) = match text.get(start) {
        Some(b'-') => (true, start + 1),
        Some(b'+') => (false, start + 1),
        _ => (false, start),
    };
    let mut magnitude: i64 = 0;
    let end = scan_digits(text, start, 10, |digit| {
        magnitude = (magnitude * 10 + digit as i64).min(1 << 40);
    });
    if end == start {
        return None;
    }
    Some((if negative { -magnitude } else { magnitude }, end))
}

/// Accumulates significant digits in chunks (one big multiplication per chunk).
struct DigitAccumulator {
    value: Natural,
    radix: u32,
    chunk: u32,
    chunk_scale: u32,
    significant_digits: i64,
}

impl DigitAccumulator {
    fn new(radix: u32) -> Self {
        DigitAccumulator {
            value: Natural::default(),
            radix,
            chunk: 0,
            chunk_scale: 1,
            significant_digits: 0,
        }
    }

    fn push(&mut self, digit: u32) {
        if self.significant_digits == 0 && digit == 0 {
            return;
        }
        self.significant_digits += 1;
        self.chunk = self.chunk * self.radix + digit;
        self.chunk_scale *= self.radix;
        if self.chunk_scale >= 100_000_000 {
            self.flush();
        }
    }

    fn finish(mut self) -> (Natural, i64) {
        self.flush();
        (self.value, self.significant_digits)
    }

    fn flush(&mut self) {
        if self.chunk_scale > 1 {
            self.value.multiply_add(self.chunk_scale, self.chunk);
            self.chunk = 0;
            self.chunk_scale = 1;
        }
    }
}

fn parse_decimal(negative: bool, text: &[u8]) -> Option<LongDouble> {
    let mut digits = DigitAccumulator::new(10);
    let mut any_digit = false;
    let mut index = scan_digits(text, 0, 10, |digit| {
        any_digit = true;
        digits.push(digit);
    });
    let mut fraction_digits = 0i64;
    if text.get(index) == Some(&b'.') {
        index = scan_digits(text, index + 1, 10, |digit| {
            any_digit = true;
            fraction_digits += 1;
            digits.push(digit);
        });
    }
    if !any_digit {
        return None;
    }
    let mut exponent = -fraction_digits;
    if matches!(text.get(index), Some(b'e' | b'E')) {
        let (written, end) = scan_exponent(text, index + 1)?;
        exponent += written;
        index = end;
    }
    if index != text.len() {
        return None;
    }
    let (mut value, significant_digits) = digits.finish();
    if value.is_zero() {
        return Some(LongDouble::zero(negative));
    }
    // The value lies in [10^(order - 1), 10^order).
    let order = exponent + significant_digits;
    if order - 1 > 4932 || order <= -4951 {
        // At least 1e4933 (beyond the largest, about 1.19e4932), or below 1e-4951 (under half
        // the smallest subnormal, about 3.65e-4951): out of range.
        return None;
    }
    let rounded = if exponent >= 0 {
        value.multiply_power_of_ten(exponent as u32);
        LongDouble::round_natural(negative, &value, 0)
    } else {
        let mut denominator = Natural::from_u128(1);
        denominator.multiply_power_of_ten((-exponent) as u32);
        LongDouble::round_ratio(negative, &value, &denominator, 0)
    };
    in_range(rounded)
}

/// A nonzero value read: refused when it overflowed or underflowed to zero (`ERANGE`).
fn in_range(value: LongDouble) -> Option<LongDouble> {
    match value {
        LongDouble::Finite { mantissa, .. } if mantissa != 0 => Some(value),
        _ => None,
    }
}

fn parse_hexadecimal(negative: bool, text: &[u8]) -> Option<LongDouble> {
    let mut digits = DigitAccumulator::new(16);
    let mut any_digit = false;
    let mut index = scan_digits(text, 0, 16, |digit| {
        any_digit = true;
        digits.push(digit);
    });
    let mut fraction_digits = 0i64;
    if text.get(index) == Some(&b'.') {
        index = scan_digits(text, index + 1, 16, |digit| {
            any_digit = true;
            fraction_digits += 1;
            digits.push(digit);
        });
    }
    if !any_digit {
        return None;
    }
    let mut exponent = -4 * fraction_digits;
    if matches!(text.get(index), Some(b'p' | b'P')) {
        let (written, end) = scan_exponent(text, index + 1)?;
        exponent += written;
        index = end;
    }
    if index != text.len() {
        return None;
    }
    let (value, _) = digits.finish();
    if value.is_zero() {
        return Some(LongDouble::zero(negative));
    }
    // The value lies in [2^(order - 1), 2^order).
    let order = value.bit_length() as i64 + exponent;
    if !(LONG_DOUBLE_LOWEST_BIT_EXPONENT..=LONG_DOUBLE_MAGNITUDE_BITS_MAX).contains(&order) {
        return None;
    }
    in_range(LongDouble::round_natural(negative, &value, exponent))
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble::Finite {
        negative: false,
        mantissa: 0,
        exponent: 0,
    };

    fn zero(negative: bool) -> LongDouble {
        LongDouble::Finite {
            negative,
            mantissa: 0,
            exponent: 0,
        }
    }

    /// `±mantissa × 2^exponent`, normalized; the caller guarantees it is in range.
    fn finite(negative: bool, mantissa: u64, exponent: i64) -> LongDouble {
        if mantissa == 0 {
            return LongDouble::zero(negative);
        }
        let shift =
            (mantissa.leading_zeros() as i64).min(exponent - LONG_DOUBLE_LOWEST_BIT_EXPONENT);
        let shift = shift.max(0);
        LongDouble::Finite {
            negative,
            mantissa: mantissa << shift,
            exponent: (exponent - shift) as i32,
        }
    }

    /// An integer, exactly (64 mantissa bits hold every i64).
    pub fn from_i64(value: i64) -> LongDouble {
        LongDouble::finite(value < 0, value.unsigned_abs(), 0)
    }

    /// A double, exactly.
    pub fn from_f64(value: f64) -> LongDouble {
        if value.is_nan() {
            return LongDouble::NotANumber;
        }
        let negative = value.is_sign_negative();
        if value.is_infinite() {
            return LongDouble::Infinite { negative };
        }
        let bits = value.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1 << 52) - 1);
        let (mantissa, exponent) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), biased - 1075)
        };
        LongDouble::finite(negative, mantissa, exponent)
    }

    pub fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// The nearest double (values beyond its range become infinite or zero).
    pub fn to_f64(&self) -> f64 {
        match *self {
            LongDouble::NotANumber => f64::NAN,
            LongDouble::Infinite { negative: true } => f64::NEG_INFINITY,
            LongDouble::Infinite { negative: false } => f64::INFINITY,
            LongDouble::Finite {
                negative,
                mantissa,
                exponent,
            } => {
                // Scaled in two steps so that neither power of two overflows on its own.
                let half = exponent / 2;
                let magnitude = mantissa as f64 * 2f64.powi(half) * 2f64.powi(exponent - half);
                if negative {
                    -magnitude
                } else {
                    magnitude
                }
            }
        }
    }

    /// The sum, rounded once to nearest (ties to even), as the x87 unit computes it.
    fn sum(self, other: LongDouble) -> LongDouble {
        use LongDouble::*;
        match (self, other) {
            (NotANumber, _) | (_, NotANumber) => NotANumber,
            (Infinite { negative: a }, Infinite { negative: b }) if a != b => NotANumber,
            (Infinite { negative }, _) | (_, Infinite { negative }) => Infinite { negative },
            (
                Finite {
                    negative: a_negative,
                    mantissa: a_mantissa,
                    exponent: a_exponent,
                },
                Finite {
                    negative: b_negative,
                    mantissa: b_mantissa,
                    exponent: b_exponent,
                },
            ) => {
                if a_mantissa == 0 && b_mantissa == 0 {
                    return LongDouble::zero(a_negative && b_negative);
                }
                if a_mantissa == 0 {
                    return other;
                }
                if b_mantissa == 0 {
                    return self;
                }
                let lowest = a_exponent.min(b_exponent) as i64;
                let a = Natural::from_u128(a_mantissa as u128)
                    .shifted_left((a_exponent as i64 - lowest) as u64);
                let b = Natural::from_u128(b_mantissa as u128)
                    .shifted_left((b_exponent as i64 - lowest) as u64);
                if a_negative == b_negative {
                    LongDouble::round_natural(a_negative, &a.plus(&b), lowest)
                } else {
                    match a.compare(&b) {
                        std::cmp::Ordering::Equal => LongDouble::ZERO,
                        std::cmp::Ordering::Greater => {
                            let mut difference = a;
                            difference.subtract(&b);
                            LongDouble::round_natural(a_negative, &difference, lowest)
                        }
                        std::cmp::Ordering::Less => {
                            let mut difference = b;
                            difference.subtract(&a);
                            LongDouble::round_natural(b_negative, &difference, lowest)
                        }
                    }
                }
            }
        }
    }

    /// Rounds `±value × 2^exponent`.
    fn round_natural(negative: bool, value: &Natural, exponent: i64) -> LongDouble {
        let bits = value.bit_length();
        if bits <= 128 {
            return LongDouble::round_bits(negative, value.low_u128(), false, exponent);
        }
        let dropped = bits - 128;
        LongDouble::round_bits(
            negative,
            value.shifted_right(dropped).low_u128(),
            value.any_bit_below(dropped),
            exponent + dropped as i64,
        )
    }

    /// Rounds `±numerator / denominator × 2^exponent`.
    fn round_ratio(
        negative: bool,
        numerator: &Natural,
        denominator: &Natural,
        exponent: i64,
    ) -> LongDouble {
        // numerator / denominator lies in [2^(t - 1), 2^(t + 1)): scale it so that the integer
        // quotient has 67 or 68 bits, enough for the mantissa, a rounding bit and more.
        let t = numerator.bit_length() as i64 - denominator.bit_length() as i64;
        let shift = 67 - t;
        let (numerator, denominator) = if shift >= 0 {
            (numerator.shifted_left(shift as u64), denominator.clone())
        } else {
            (numerator.clone(), denominator.shifted_left((-shift) as u64))
        };
        let (quotient, inexact) = numerator.divide_to_u128(&denominator, 69);
        LongDouble::round_bits(negative, quotient, inexact, exponent - shift)
    }

    /// Rounds `±(top + sticky) × 2^exponent` to the long double format, where `sticky` stands
    /// for a nonzero fraction below `top`'s lowest bit (then `top` has at least 66 bits).
    fn round_bits(negative: bool, top: u128, sticky: bool, exponent: i64) -> LongDouble {
        if top == 0 {
            debug_assert!(!sticky);
            return LongDouble::zero(negative);
        }
        let bits = 128 - top.leading_zeros() as i64;
        debug_assert!(!sticky || bits >= LONG_DOUBLE_MANTISSA_BITS + 2);
        let mut dropped = (bits - LONG_DOUBLE_MANTISSA_BITS).max(0);
        if exponent + dropped < LONG_DOUBLE_LOWEST_BIT_EXPONENT {
            dropped = LONG_DOUBLE_LOWEST_BIT_EXPONENT - exponent;
        }
        let (mut mantissa, half, rest) = match dropped {
            0 => (top, false, sticky),
            1..=127 => (
                top >> dropped,
                (top >> (dropped - 1)) & 1 == 1,
                top & ((1u128 << (dropped - 1)) - 1) != 0 || sticky,
            ),
            128 => (0, top >> 127 == 1, top & (u128::MAX >> 1) != 0 || sticky),
            _ => (0, false, true),
        };
        let mut exponent = exponent + dropped;
        if half && (rest || mantissa & 1 == 1) {
            mantissa += 1;
            if mantissa >> LONG_DOUBLE_MANTISSA_BITS != 0 {
                mantissa >>= 1;
                exponent += 1;
            }
        }
        let mantissa = mantissa as u64;
        if mantissa == 0 {
            return LongDouble::zero(negative);
        }
        if (64 - mantissa.leading_zeros() as i64) + exponent > LONG_DOUBLE_MAGNITUDE_BITS_MAX {
            return LongDouble::Infinite { negative };
        }
        LongDouble::finite(negative, mantissa, exponent)
    }

    /// The text Redis's `ld2string` gives in human mode: `%.17Lf` (glibc: exact value, rounded
    /// half to even), trailing zeros and point removed, "-0" written "0"; `inf`, `-inf`; NaN
    /// gives "".
    pub fn format_human(&self) -> String {
        let (negative, mantissa, exponent) = match *self {
            LongDouble::Finite {
                negative,
                mantissa,
                exponent,
            } => (negative, mantissa, exponent as i64),
            LongDouble::Infinite { negative } => {
                return if negative { "-inf" } else { "inf" }.to_string();
            }
            LongDouble::NotANumber => return String::new(),
        };
        // The value times 10^17, rounded to an integer.
        let mut scaled = Natural::from_u128(mantissa as u128);
        scaled.multiply_power_of_ten(HUMAN_DECIMALS as u32);
        let scaled = if exponent >= 0 {
            scaled.shifted_left(exponent as u64)
        } else {
            let dropped = (-exponent) as u64;
            let mut rounded = scaled.shifted_right(dropped);
            let half = scaled.bit(dropped - 1);
            let rest = dropped >= 2 && scaled.any_bit_below(dropped - 1);
            if half && (rest || rounded.bit(0)) {
                rounded.multiply_add(1, 1);
            }
            rounded
        };
        let mut digits = scaled.to_decimal();
        if digits.len() <= HUMAN_DECIMALS {
            digits = format!("{}{digits}", "0".repeat(HUMAN_DECIMALS + 1 - digits.len()));
        }
        let point = digits.len() - HUMAN_DECIMALS;
        let fraction = digits[point..].trim_end_matches('0');
        let mut text = String::with_capacity(digits.len() + 2);
        if negative {
            text.push('-');
        }
        text.push_str(&digits[..point]);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(fraction);
        }
        if text == "-0" {
            text.remove(0);
        }
        text
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// Rounded once to nearest (ties to even), as the x87 unit adds.
    fn add(self, other: LongDouble) -> LongDouble {
        self.sum(other)
    }
}

/// An unsigned big integer (little-endian 32-bit limbs, no high zero limb): just what exact
/// long double conversions need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Natural {
    limbs: Vec<u32>,
}

impl Natural {
    fn from_u128(mut value: u128) -> Natural {
        let mut limbs = Vec::new();
        while value != 0 {
            limbs.push(value as u32);
            value >>= 32;
        }
        Natural { limbs }
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_length(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(top) => self.limbs.len() as u64 * 32 - top.leading_zeros() as u64,
        }
    }

    fn bit(&self, index: u64) -> bool {
        self.limbs
            .get((index / 32) as usize)
            .is_some_and(|limb| (limb >> (index % 32)) & 1 == 1)
    }

    /// Whether any bit below `index` is set.
    fn any_bit_below(&self, index: u64) -> bool {
        let whole = ((index / 32) as usize).min(self.limbs.len());
        if self.limbs[..whole].iter().any(|limb| *limb != 0) {
            return true;
        }
        let partial = index % 32;
        partial != 0
            && self
                .limbs
                .get(whole)
                .is_some_and(|limb| limb & ((1u32 << partial) - 1) != 0)
    }

    /// The low 128 bits.
    fn low_u128(&self) -> u128 {
        self.limbs
            .iter()
            .take(4)
            .rev()
            .fold(0u128, |value, limb| (value << 32) | *limb as u128)
    }

    /// `self = self × factor + addend`.
    fn multiply_add(&mut self, factor: u32, addend: u32) {
        let mut carry = addend as u64;
        for limb in &mut self.limbs {
            let product = *limb as u64 * factor as u64 + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    fn multiply_power_of_ten(&mut self, mut exponent: u32) {
        while exponent >= 9 {
            self.multiply_add(1_000_000_000, 0);
            exponent -= 9;
        }
        self.multiply_add(10u32.pow(exponent), 0);
    }

    fn shifted_left(&self, bits: u64) -> Natural {
        if self.is_zero() {
            return Natural::default();
        }
        let whole = (bits / 32) as usize;
        let partial = (bits % 32) as u32;
        let mut limbs = vec![0u32; whole];
        limbs.reserve(self.limbs.len() + 1);
        let mut carry = 0u32;
        for limb in &self.limbs {
            if partial == 0 {
                limbs.push(*limb);
            } else {
                limbs.push((limb << partial) | carry);
                carry = limb >> (32 - partial);
            }
        }
        if carry != 0 {
            limbs.push(carry);
        }
        Natural { limbs }
    }

    fn shifted_right(&self, bits: u64) -> Natural {
        let whole = (bits / 32) as usize;
        if whole >= self.limbs.len() {
            return Natural::default();
        }
        let partial = (bits % 32) as u32;
        let source = &self.limbs[whole..];
        let mut limbs = Vec::with_capacity(source.len());
        for (index, limb) in source.iter().enumerate() {
            if partial == 0 {
                limbs.push(*limb);
            } else {
                let high = source
                    .get(index + 1)
                    .map_or(0, |next| next << (32 - partial));
                limbs.push((limb >> partial) | high);
            }
        }
        let mut result = Natural { limbs };
        result.trim();
        result
    }

    fn compare(&self, other: &Natural) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    fn plus(&self, other: &Natural) -> Natural {
        let (long, short) = if self.limbs.len() >= other.limbs.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut limbs = Vec::with_capacity(long.limbs.len() + 1);
        let mut carry = 0u64;
        for (index, limb) in long.limbs.iter().enumerate() {
            let sum = *limb as u64 + short.limbs.get(index).copied().unwrap_or(0) as u64 + carry;
            limbs.push(sum as u32);
            carry = sum >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
        Natural { limbs }
    }

    /// `self -= other`; `other` must not be larger.
    fn subtract(&mut self, other: &Natural) {
        debug_assert!(self.compare(other) != std::cmp::Ordering::Less);
        let mut borrow = 0i64;
        for (index, limb) in self.limbs.iter_mut().enumerate() {
            let difference =
                *limb as i64 - other.limbs.get(index).copied().unwrap_or(0) as i64 - borrow;
            if difference < 0 {
                *limb = (difference + (1 << 32)) as u32;
                borrow = 1;
            } else {
                *limb = difference as u32;
                borrow = 0;
            }
            if borrow == 0 && index >= other.limbs.len() {
                break;
            }
        }
        self.trim();
    }

    /// The quotient `self / divisor` (which must be below 2^`quotient_bits`) and whether there
    /// is a remainder.
    fn divide_to_u128(&self, divisor: &Natural, quotient_bits: u32) -> (u128, bool) {
        debug_assert!(quotient_bits <= 127);
        let mut remainder = self.clone();
        let mut quotient = 0u128;
        for bit in (0..quotient_bits).rev() {
            let shifted = divisor.shifted_left(bit as u64);
            if remainder.compare(&shifted) != std::cmp::Ordering::Less {
                remainder.subtract(&shifted);
                quotient |= 1 << bit;
            }
        }
        debug_assert!(remainder.compare(divisor) == std::cmp::Ordering::Less);
        (quotient, !remainder.is_zero())
    }

    /// Divides in place by `divisor`; returns the remainder.
    fn divide_small(&mut self, divisor: u32) -> u32 {
        let mut remainder = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let current = (remainder << 32) | *limb as u64;
            *limb = (current / divisor as u64) as u32;
            remainder = current % divisor as u64;
        }
        self.trim();
        remainder as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut value = self.clone();
        let mut chunks = Vec::new();
        while !value.is_zero() {
            chunks.push(value.divide_small(1_000_000_000));
        }
        let mut text = chunks
            .pop()
            .map(|chunk| chunk.to_string())
            .unwrap_or_default();
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:09}"));
        }
        text
    }
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
    #[test]
    fn long_double_arithmetic_matches_redis() {
        use LongDoubleError::*;
        // (stored value, increment, INCRBYFLOAT's result) as redis-server 7 on x86-64 gives them.
        type Case<'a> = (Option<&'a [u8]>, &'a [u8], Result<&'a str, LongDoubleError>);
        let cases: &[Case] = &[
            (Some(b"0.1"), b"0.2", Ok("0.3")),
            (Some(b"10.5"), b"1.1", Ok("11.6")),
            (Some(b"11.6"), b"5.0e3", Ok("5011.60000000000000009")),
            (None, b"10.5", Ok("10.5")),
            (None, b"1e4933", Err(NotAFloat)),
            (None, b"1.18973149535723176508e4932", Err(NotAFloat)),
            (None, b"1e-4951", Err(NotAFloat)),
            (None, b"3.6e-4951", Ok("0")),
            (None, b"1e-5000", Err(NotAFloat)),
            (None, b"0x10", Ok("16")),
            (None, b"0x1.8p1", Ok("3")),
            (None, b"0X.8", Ok("0.5")),
            (None, b"0x", Err(NotAFloat)),
            (None, b"0x1p", Err(NotAFloat)),
            (None, b"1e", Err(NotAFloat)),
            (None, b".5", Ok("0.5")),
            (None, b"5.", Ok("5")),
            (None, b".", Err(NotAFloat)),
            (None, b"+.5", Ok("0.5")),
            (None, b"-", Err(NotAFloat)),
            (None, b"inf", Err(NotFinite)),
            (None, b"-inf", Err(NotFinite)),
            (None, b"+inf", Err(NotFinite)),
            (None, b"infinity", Err(NotFinite)),
            (None, b"INF", Err(NotFinite)),
            (None, b"nan", Err(NotAFloat)),
            (None, b"-nan", Err(NotAFloat)),
            (None, b"nan(1)", Err(NotAFloat)),
            (None, b"1e+", Err(NotAFloat)),
            (None, b"1e-2", Ok("0.01")),
            (None, b"1E2", Ok("100")),
            (Some(b"1"), b"-1.1", Ok("-0.1")),
            (None, b"0.024390243902439025", Ok("0.02439024390243902")),
            (
                Some(b"0.024390243902439025"),
                b"-0.024390243902439025",
                Ok("0"),
            ),
            (Some(b"17179869184"), b"1.5", Ok("17179869185.5")),
            (Some(b"17179869184"), b"17179869184", Ok("34359738368")),
            (None, b"1e-20", Ok("0")),
            (None, b"-1e-20", Ok("0")),
            (None, b"5e-18", Ok("0")),
            (None, b"-5e-18", Ok("0")),
            (None, b"0.000000000000000015", Ok("0.00000000000000002")),
            (None, b"0.000000000000000025", Ok("0.00000000000000002")),
            (None, b"0.000000000000000005", Ok("0")),
            (None, b"9223372036854775807", Ok("9223372036854775807")),
            (None, b"18446744073709551615", Ok("18446744073709551615")),
            (None, b"18446744073709551616", Ok("18446744073709551616")),
            (None, b"36893488147419103231", Ok("36893488147419103232")),
            (
                None,
                b"123456789012345678901234567890",
                Ok("123456789012345678899921813504"),
            ),
            (None, b"2.2250738585072014e-308", Ok("0")),
            (None, b"4.9e-324", Ok("0")),
            (None, b"0x1p-16445", Ok("0")),
            (None, b"0x1p-16446", Err(NotAFloat)),
            (None, b"0x1p-16447", Err(NotAFloat)),
            (None, b"0x1.8p-16446", Ok("0")),
            (None, b"0x1p16384", Err(NotAFloat)),
            (None, b"0x1.ffffffffffffffffp16383", Err(NotAFloat)),
            (None, b"-0", Ok("0")),
            (None, b"-0.0", Ok("0")),
            (Some(b"-0"), b"0", Ok("0")),
            (None, b"00012.5000", Ok("12.5")),
            (None, b"1_0", Err(NotAFloat)),
            (None, b"1,5", Err(NotAFloat)),
            (None, b"0x1.8P+1", Ok("3")),
            (None, b"1e00000000000000000000000005", Ok("100000")),
            (None, b"1e-00000000000000000000000005", Ok("0.00001")),
            (None, b"0e999999", Ok("0")),
            (None, b"0.0e-999999", Ok("0")),
            (Some(b"3.0"), b"0", Ok("3")),
            (Some(b"abc"), b"1", Err(NotAFloat)),
            (Some(b"1"), b"abc", Err(NotAFloat)),
            (Some(b""), b"1 1", Err(NotAFloat)),
            (Some(b"1"), b" 1", Err(NotAFloat)),
            (
                None,
                b"12345678901234567890.123456789",
                Ok("12345678901234567890"),
            ),
            (None, b"0.1", Ok("0.1")),
            (None, b"0.3", Ok("0.3")),
            (None, b"1.1", Ok("1.1")),
            (None, b"2.675", Ok("2.675")),
            (None, b"1.005", Ok("1.005")),
            (None, b"100.000000000000000005", Ok("100.00000000000000001")),
            (None, b"100.000000000000000015", Ok("100.00000000000000001")),
            (
                Some(b"810111.840"),
                b"-3960482443532127990e-36",
                Ok("810111.83999999999997499"),
            ),
            (
                Some(b"-30.564"),
                b"3658e40",
                Ok("36579999999999999999037537940520572756688896"),
            ),
            (
                Some(b"154205.89723499725"),
                b"8.37959",
                Ok("154214.27682499724998877"),
            ),
            (
                Some(b"9354e-1"),
                b"108062e34",
                Ok("1080619999999999999965750257084480356352"),
            ),
            (
                Some(b"601713882579e-32"),
                b"8328454e28",
                Ok("83284540000000000002545823074222080"),
            ),
            (
                Some(b"-407104716530737e-2"),
                b"269637315104.588",
                Ok("-3801409850202.78199982643127441"),
            ),
            (
                Some(b"-657788.782"),
                b"-50230911120e36",
                Ok("-50230911119999999998754821589226108701571547136"),
            ),
            (
                Some(b"643849.5732194297"),
                b"-1490376253.189203426030121",
                Ok("-1489732403.61598399630747736"),
            ),
            (
                Some(b"--882091.1613373791"),
                b"472631369829172138717059",
                Err(NotAFloat),
            ),
            (
                Some(b"-0x392a96fb1a14a0f9e7.8e8cdb305fp80"),
                b"-4062857518942e-21",
                Ok("-1274852568452062652601331039747303871061426176"),
            ),
            (
                Some(b"3822.7"),
                b"302720815",
                Ok("302724637.70000000001164153"),
            ),
            (
                Some(b"-396483003.21273393600"),
                b"900447.8993653168",
                Ok("-395582555.3133686191868037"),
            ),
        ];
        for (current, increment, expected) in cases {
            let result = increment_by_float(*current, increment);
            assert_eq!(
                result,
                expected.map(str::to_string),
                "{:?} + {:?}",
                current.map(String::from_utf8_lossy),
                String::from_utf8_lossy(increment)
            );
        }
    }

    #[test]
    fn long_double_range_is_beyond_double() {
        let sum = increment_by_float(Some(b"1e308"), b"1e308").expect("finite");
        assert_eq!(sum.len(), 309);
        assert!(sum.starts_with("19999999999999999999337175931169129132112019969483113441559"));
        let largest = increment_by_float(None, b"1.18973149535723176502e4932").expect("finite");
        assert_eq!(largest.len(), 4933);
        assert!(largest.starts_with("118973149535723176502126385303097020516906"));
        assert_eq!(
            increment_by_float(Some(largest.as_bytes()), largest.as_bytes()),
            Err(LongDoubleError::NotFinite)
        );
        // The longest text read is 5119 bytes.
        let long = format!("1.{}", "0".repeat(5117));
        assert_eq!(
            increment_by_float(None, long.as_bytes()),
            Ok("1".to_string())
        );
        let too_long = format!("1.{}", "0".repeat(5118));
        assert_eq!(
            increment_by_float(None, too_long.as_bytes()),
            Err(LongDoubleError::NotAFloat)
        );
    }

    #[test]
    fn long_double_conversions_are_exact() {
        assert_eq!(
            LongDouble::from_i64(i64::MIN).format_human(),
            "-9223372036854775808"
        );
        assert_eq!(
            LongDouble::from_i64(i64::MAX).format_human(),
            "9223372036854775807"
        );
        assert_eq!(LongDouble::from_i64(0), LongDouble::ZERO);
        assert_eq!(parse_long_double(b"12"), Some(LongDouble::from_i64(12)));
        assert_eq!(parse_long_double(b"0x.8p2"), parse_long_double(b"2"));
        assert_eq!(format_f64_human(0.1), "0.10000000000000001");
        assert_eq!(format_f64_human(f64::MIN_POSITIVE), "0");
        assert_eq!(format_f64_human(f64::INFINITY), "inf");
        assert_eq!(
            LongDouble::from_f64(0.5) + LongDouble::from_f64(-0.5),
            LongDouble::ZERO
        );
    }
}
