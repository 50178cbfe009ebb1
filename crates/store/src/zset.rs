//! Sorted sets: members (byte strings) ordered by (score, member bytes), each member once.
//!
//! Two encodings, named as OBJECT ENCODING names Redis's:
//!
//! * `listpack` ([`Packed`]): small sets are one byte buffer of entries in order, each entry the
//!   score (8 bytes, little endian), the member's length (LEB128) and the member's bytes. Every
//!   operation is a linear scan, which is what small means. A set is small while it has at most
//!   `zset-max-listpack-entries` members of at most `zset-max-listpack-value` bytes each.
//! * `skiplist` ([`Indexed`]): bigger sets keep three structures over one record per member:
//!   - [`Records`]: a slab of 32-byte records (score, hash-chain link, member inline up to 19
//!     bytes; longer members live in their own block, referenced from the record), addressed by
//!     `u32` ids and allocated in chunks of 1024, so growing never copies the set;
//!   - [`Index`]: the member → record map, a chained hash table whose buckets are `u32` heads
//!     and whose chains run through the records' links. It resizes incrementally (a bucket per
//!     write, as Redis's dict does) and supports Redis's reverse-binary SCAN cursor, so ZSCAN
//!     keeps Redis's guarantees across resizes;
//!   - [`Tree`]: an order-statistic B+tree of record ids ordered by (score, member): leaves of
//!     up to 128 ids (one 512-byte block), branches of up to 64 children that keep each child's
//!     element count and first id. Insert, delete, rank, select by rank, and the bounds of a
//!     score or lex range are O(log n); iterating a range costs O(log n + k).
//!
//!   Why not a skip list: a skip-list node needs a score, a member pointer, a back pointer and
//!   on average 1.33 levels of (forward pointer, span): about 56 bytes before the member and the
//!   hash entry. Here a member costs its 32-byte record, about 5.7 bytes of tree (4-byte ids in
//!   leaves about 70% full) and 4–8 bytes of buckets (load factor 1 to 0.5): about 42–46 bytes
//!   for members up to 19 bytes (longer members add their own block plus 16 bytes). Measured
//!   with 1,000,000 `ZADD zset <n*7 mod 1000003> member:<n>`: the server's RSS grows by 47 MB,
//!   where redis-server's grows by 114 MB (its used_memory by 110 MB).
//!
//! Conversions follow Redis 7.2: a set is created `skiplist` when the command's size hint or
//! first member already exceed the limits, converts when an addition would exceed them, and
//! never converts back, except the destinations of ZRANGESTORE / ZUNIONSTORE / ZINTERSTORE /
//! ZDIFFSTORE, which are built in whichever encoding their final content calls for.
//!
//! Scores are never NaN. Comparisons are IEEE (`-0` equals `0`; ties order by member bytes); a
//! listpack stores `-0` as `0`, as Redis's does (it stores integral scores as integers).
//!
//! This module also holds the number syntax sorted-set commands use ([`parse_score`],
//! [`parse_score_bound`], [`parse_lex_bound`]) and the two ways Redis prints scores
//! ([`format_score`], [`format_score_17g`]).

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::ops::Range;

/// The encoding limits (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub listpack_entries: usize,
    pub listpack_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            listpack_entries: 128,
            listpack_value: 64,
        }
    }
}

/// Largest listpack Redis builds (`LISTPACK_MAX_SAFETY_SIZE`): beyond it a set converts.
const LISTPACK_BYTES_MAX: usize = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Numbers.

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtod` made of the start of a text.
struct Strtod {
    value: f64,
    /// Bytes consumed (leading white space included).
    consumed: usize,
    /// `errno == ERANGE`: the number overflowed to infinity or underflowed to zero.
    range_error: bool,
}

/// glibc's `strtod` in the C locale: leading white space, a sign, then a decimal or hexadecimal
/// number, `inf`/`infinity` or `nan`/`nan(...)`, any case. `None` when nothing converts.
fn strtod(text: &[u8]) -> Option<Strtod> {
    let mut index = 0;
    while index < text.len() && is_c_space(text[index]) {
        index += 1;
    }
    let number_start = index;
    let negative = match text.get(index) {
        Some(b'-') => {
            index += 1;
            true
        }
        Some(b'+') => {
            index += 1;
            false
        }
        _ => false,
    };
    let rest = &text[index..];
    let starts_with =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    let signed = |value: f64| if negative { -value } else { value };
    if starts_with(b"infinity") {
        return Some(Strtod {
            value: signed(f64::INFINITY),
            consumed: index + 8,
            range_error: false,
        });
    }
    if starts_with(b"inf") {
        return Some(Strtod {
            value: signed(f64::INFINITY),
            consumed: index + 3,
            range_error: false,
        });
    }
    if starts_with(b"nan") {
        let mut consumed = index + 3;
        if text.get(consumed) == Some(&b'(') {
            let mut end = consumed + 1;
            while end < text.len() && (text[end].is_ascii_alphanumeric() || text[end] == b'_') {
                end += 1;
            }
            if text.get(end) == Some(&b')') {
                consumed = end + 1;
            }
        }
        return Some(Strtod {
            value: f64::NAN,
            consumed,
            range_error: false,
        });
    }
    let is_hex_digit_at = |position: usize| text.get(position).is_some_and(u8::is_ascii_hexdigit);
    if starts_with(b"0x")
        && (is_hex_digit_at(index + 2)
            || (text.get(index + 2) == Some(&b'.') && is_hex_digit_at(index + 3)))
    {
        let (magnitude, consumed, nonzero) = parse_hex_float(text, index + 2);
        let range_error = magnitude.is_infinite() || (magnitude == 0.0 && nonzero);
        return Some(Strtod {
            value: signed(magnitude),
            consumed,
            range_error,
        });
    }
    // Decimal: digits, an optional fraction, an optional exponent with at least one digit.
    let mut position = index;
    let mut digits = 0;
    let mut nonzero = false;
    while position < text.len() && text[position].is_ascii_digit() {
        nonzero |= text[position] != b'0';
        position += 1;
        digits += 1;
    }
    if text.get(position) == Some(&b'.') {
        let mut after = position + 1;
        let mut fraction_digits = 0;
        while after < text.len() && text[after].is_ascii_digit() {
            nonzero |= text[after] != b'0';
            after += 1;
            fraction_digits += 1;
        }
        if digits + fraction_digits > 0 {
            position = after;
            digits += fraction_digits;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(text.get(position), Some(b'e' | b'E')) {
        let mut after = position + 1;
        if matches!(text.get(after), Some(b'+' | b'-')) {
            after += 1;
        }
        if text.get(after).is_some_and(u8::is_ascii_digit) {
            while after < text.len() && text[after].is_ascii_digit() {
                after += 1;
            }
            position = after;
        }
    }
    let literal = std::str::from_utf8(&text[number_start..position]).ok()?;
    let value: f64 = literal.parse().ok()?;
    let range_error = value.is_infinite() || (value == 0.0 && nonzero);
    Some(Strtod {
        value,
        consumed: position,
        range_error,
    })
}

/// The magnitude of a hexadecimal float whose digits start at `start` (after `0x`): the value,
/// the end of what was consumed, and whether any mantissa digit was non-zero.
fn parse_hex_float(text: &[u8], start: usize) -> (f64, usize, bool) {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut sticky = false;
    let mut nonzero = false;
    let mut position = start;
    let mut add_digit = |digit: u64, fractional: bool, mantissa: &mut u64, exponent: &mut i64| {
        if *mantissa >> 59 == 0 {
            *mantissa = *mantissa << 4 | digit;
            if fractional {
                *exponent -= 4;
            }
        } else {
            sticky |= digit != 0;
            if !fractional {
                *exponent += 4;
            }
        }
    };
    while let Some(digit) = text
        .get(position)
        .and_then(|byte| (*byte as char).to_digit(16))
    {
        nonzero |= digit != 0;
        add_digit(digit as u64, false, &mut mantissa, &mut exponent);
        position += 1;
    }
    if text.get(position) == Some(&b'.') {
        position += 1;
        while let Some(digit) = text
            .get(position)
            .and_then(|byte| (*byte as char).to_digit(16))
        {
            nonzero |= digit != 0;
            add_digit(digit as u64, true, &mut mantissa, &mut exponent);
            position += 1;
        }
    }
    if matches!(text.get(position), Some(b'p' | b'P')) {
        let mut after = position + 1;
        let negative = match text.get(after) {
            Some(b'-') => {
                after += 1;
                true
            }
            Some(b'+') => {
                after += 1;
                false
            }
            _ => false,
        };
        if text.get(after).is_some_and(u8::is_ascii_digit) {
            let mut binary_exponent: i64 = 0;
            while let Some(byte) = text.get(after).filter(|byte| byte.is_ascii_digit()) {
                binary_exponent = (binary_exponent * 10 + (byte - b'0') as i64).min(1 << 20);
                after += 1;
            }
            exponent += if negative {
                -binary_exponent
            } else {
                binary_exponent
            };
            position = after;
        }
    }
    if sticky {
        mantissa |= 1;
    }
    let mut value = mantissa as f64;
    // Scale in steps that stay exact until the result itself overflows or underflows.
    let mut remaining = exponent;
    while remaining != 0 && value != 0.0 && value.is_finite() {
        let step = remaining.clamp(-1000, 1000);
        value *= 2f64.powi(step as i32);
        remaining -= step;
    }
    (value, position, nonzero)
}

/// A score argument as Redis reads it (`string2d`: ZADD, ZINCRBY, WEIGHTS): the whole text is
/// one number in `strtod`'s syntax (decimal or hexadecimal, `inf`, `infinity`), without leading
/// white space, not NaN, and neither overflowing to infinity nor underflowing to zero.
pub fn parse_score(text: &[u8]) -> Option<f64> {
    if text.is_empty() || is_c_space(text[0]) {
        return None;
    }
    let parsed = strtod(text)?;
    if parsed.consumed != text.len()
        || parsed.value.is_nan()
        || (parsed.range_error && (parsed.value.is_infinite() || parsed.value == 0.0))
    {
        return None;
    }
    Some(parsed.value)
}

/// A score range bound as Redis reads it (ZRANGEBYSCORE, ZCOUNT ...): an optional `(` for an
/// exclusive bound, then `strtod`'s syntax up to the end of the text (or a NUL byte), leading
/// white space allowed and an empty text reading as 0. Returns (value, exclusive).
pub fn parse_score_bound(text: &[u8]) -> Option<(f64, bool)> {
    let text = match text.iter().position(|&byte| byte == 0) {
        Some(end) => &text[..end],
        None => text,
    };
    let (number, exclusive) = match text.first() {
        Some(b'(') => (&text[1..], true),
        _ => (text, false),
    };
    let value = match strtod(number) {
        Some(parsed) if parsed.consumed == number.len() => parsed.value,
        Some(_) => return None,
        None if number.is_empty() => 0.0,
        None => return None,
    };
    if value.is_nan() {
        return None;
    }
    Some((value, exclusive))
}

/// Whether `value` is an integer Redis prints and stores as one (`double2ll`).
fn as_exact_integer(value: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&value) {
        return None;
    }
    let integer = value as i64;
    (integer as f64 == value).then_some(integer)
}

/// The shortest digits that read back as `value` (positive, finite, non-zero) and the decimal
/// exponent of the first digit.
fn shortest_digits(value: f64) -> (String, i32) {
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("scientific formatting has an exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exponent.parse().expect("exponent is an integer"))
}

/// A score as Redis 7.2 replies with it and stores it in a listpack (`d2string`): `inf`, `-inf`,
/// `-0`, integers up to 2^62 in plain digits, other values with the shortest digits that read
/// back exactly, laid out as Redis's `fpconv_dtoa` does (`0.00001`, `1.5e-7`, `1e+20`).
pub fn format_score(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if let Some(integer) = as_exact_integer(value) {
        return itoa::Buffer::new().format(integer).to_string();
    }
    let (digits, first_exponent) = shortest_digits(value);
    let count = digits.len() as i32;
    // value = digits × 10^k
    let k = first_exponent - (count - 1);
    let exponent_magnitude = first_exponent.abs();
    let mut text = String::with_capacity(26);
    if value < 0.0 {
        text.push('-');
    }
    if k >= 0 && exponent_magnitude < count + 7 {
        text.push_str(&digits);
        text.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || exponent_magnitude < 4) {
        let integer_digits = count + k;
        if integer_digits <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-integer_digits) as usize));
            text.push_str(&digits);
        } else {
            text.push_str(&digits[..integer_digits as usize]);
            text.push('.');
            text.push_str(&digits[integer_digits as usize..]);
        }
    } else {
        text.push_str(&digits[..1]);
        if count > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        text.push('e');
        text.push(if first_exponent < 0 { '-' } else { '+' });
        text.push_str(&exponent_magnitude.to_string());
    }
    text
}

/// A score as ZSCAN prints the scores of a `skiplist` set (C's `%.17Lg`): 17 significant
/// digits, trailing zeros removed, exponent form below 1e-4 and from 1e17.
pub fn format_score_17g(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{:.16e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("scientific formatting has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut text = String::with_capacity(26);
    if value < 0.0 {
        text.push('-');
    }
    let trim = |text: &mut String| {
        if text.contains('.') {
            while text.ends_with('0') {
                text.pop();
            }
            if text.ends_with('.') {
                text.pop();
            }
        }
    };
    if (-4..17).contains(&exponent) {
        if exponent < 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            text.push_str(&digits);
        } else {
            let integer_digits = exponent as usize + 1;
            text.push_str(&digits[..integer_digits]);
            text.push('.');
            text.push_str(&digits[integer_digits..]);
        }
        trim(&mut text);
    } else {
        text.push_str(&digits[..1]);
        text.push('.');
        text.push_str(&digits[1..]);
        trim(&mut text);
        text.push('e');
        text.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            text.push('0');
        }
        text.push_str(&magnitude.to_string());
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Ranges.

/// A score interval, each end inclusive or exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// Reads `min` and `max` as Redis's range arguments; `None` is "min or max is not a float".
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_exclusive) = parse_score_bound(min)?;
        let (max, max_exclusive) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            max,
            min_exclusive,
            max_exclusive,
        })
    }

    pub fn above_min(&self, score: f64) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    pub fn below_max(&self, score: f64) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lex range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    /// `[member`.
    Inclusive(Vec<u8>),
    /// `(member`.
    Exclusive(Vec<u8>),
}

/// One end of a lex range as Redis reads it: `-`, `+`, `[member` or `(member`.
pub fn parse_lex_bound(text: &[u8]) -> Option<LexBound> {
    // Redis reads the item as a C string for `+` and `-`.
    let alone = text.get(1).is_none_or(|&byte| byte == 0);
    match text.first() {
        Some(b'+') if alone => Some(LexBound::Highest),
        Some(b'-') if alone => Some(LexBound::Lowest),
        Some(b'[') => Some(LexBound::Inclusive(text[1..].to_vec())),
        Some(b'(') => Some(LexBound::Exclusive(text[1..].to_vec())),
        _ => None,
    }
}

/// A member interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    /// Reads `min` and `max`; `None` is "min or max not valid string range item".
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: parse_lex_bound(min)?,
            max: parse_lex_bound(max)?,
        })
    }

    pub fn above_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Lowest => true,
            LexBound::Highest => false,
            LexBound::Inclusive(bound) => member >= bound.as_slice(),
            LexBound::Exclusive(bound) => member > bound.as_slice(),
        }
    }

    pub fn below_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(bound) => member <= bound.as_slice(),
            LexBound::Exclusive(bound) => member < bound.as_slice(),
        }
    }
}

/// Orders (score, member) keys: by score, then by member bytes.
#[inline]
fn compare_keys(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    if score < other_score {
        Ordering::Less
    } else if score > other_score {
        Ordering::Greater
    } else {
        member.cmp(other_member)
    }
}

// ---------------------------------------------------------------------------------------------
// The listpack encoding.

/// A small sorted set: entries (score, member length, member) in order in one buffer.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    bytes: Vec<u8>,
    len: u32,
}

fn push_length(out: &mut Vec<u8>, mut length: usize) {
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn encoded_entry(score: f64, member: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(8 + 5 + member.len());
    // A listpack stores integral scores as integers: -0 reads back as 0.
    let score = if score == 0.0 { 0.0 } else { score };
    entry.extend_from_slice(&score.to_le_bytes());
    push_length(&mut entry, member.len());
    entry.extend_from_slice(member);
    entry
}

/// One entry of a packed buffer: where it starts and ends, its score and member.
#[derive(Clone, Copy, Debug)]
struct PackedEntry<'a> {
    start: usize,
    end: usize,
    score: f64,
    member: &'a [u8],
}

struct PackedIter<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = PackedEntry<'a>;

    fn next(&mut self) -> Option<PackedEntry<'a>> {
        if self.offset >= self.bytes.len() {
            return None;
        }
        let start = self.offset;
        let score_bytes: [u8; 8] = self.bytes[start..start + 8]
            .try_into()
            .expect("eight score bytes");
        let mut position = start + 8;
        let mut length = 0usize;
        let mut shift = 0;
        loop {
            let byte = self.bytes[position];
            position += 1;
            length |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = position + length;
        self.offset = end;
        Some(PackedEntry {
            start,
            end,
            score: f64::from_le_bytes(score_bytes),
            member: &self.bytes[position..end],
        })
    }
}

impl Packed {
    fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            bytes: &self.bytes,
            offset: 0,
        }
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn find(&self, member: &[u8]) -> Option<(usize, PackedEntry<'_>)> {
        self.iter()
            .enumerate()
            .find(|(_, entry)| entry.member == member)
    }

    fn insert(&mut self, score: f64, member: &[u8]) {
        let offset = self
            .iter()
            .find(|entry| {
                compare_keys(entry.score, entry.member, score, member) == Ordering::Greater
            })
            .map_or(self.bytes.len(), |entry| entry.start);
        let entry = encoded_entry(score, member);
        self.bytes.reserve_exact(entry.len());
        self.bytes.splice(offset..offset, entry);
        self.len += 1;
    }

    /// Removes the entries of ranks `ranks`.
    fn remove_ranks(&mut self, ranks: Range<usize>) {
        if ranks.is_empty() {
            return;
        }
        let mut start = self.bytes.len();
        let mut end = self.bytes.len();
        for (rank, entry) in self.iter().enumerate() {
            if rank == ranks.start {
                start = entry.start;
            }
            if rank == ranks.end {
                end = entry.start;
                break;
            }
        }
        self.bytes.drain(start..end);
        self.len -= ranks.len() as u32;
        if self.bytes.capacity() > self.bytes.len() * 2 {
            self.bytes.shrink_to_fit();
        }
    }

    fn remove_bytes(&mut self, start: usize, end: usize) {
        self.bytes.drain(start..end);
        self.len -= 1;
        if self.bytes.capacity() > self.bytes.len() * 2 + 64 {
            self.bytes.shrink_to_fit();
        }
    }

    fn bytes_len(&self) -> usize {
        self.bytes.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Records: the members of an indexed set.

const NONE: u32 = u32::MAX;
const CHUNK_RECORDS: usize = 1024;
const INLINE_BYTES: usize = 19;
/// `Record::length` of a record whose member lives in `Records::long`.
const LONG_MEMBER: u8 = u8::MAX;
/// `Record::length` of a free record.
const FREE_RECORD: u8 = u8::MAX - 1;

/// One member: 32 bytes.
#[derive(Clone, Copy)]
struct Record {
    score: f64,
    /// The next record in the member's hash chain, or the next free record.
    next: u32,
    /// The inline member's length, or `LONG_MEMBER`, or `FREE_RECORD`.
    length: u8,
    /// The member (inline), or the index of its block in `Records::long` (4 bytes, LE).
    data: [u8; INLINE_BYTES],
}

const _: () = assert!(std::mem::size_of::<Record>() == 32);

const FREE: Record = Record {
    score: 0.0,
    next: NONE,
    length: FREE_RECORD,
    data: [0; INLINE_BYTES],
};

/// A slab of records in fixed chunks, with a free list.
#[derive(Default)]
struct Records {
    chunks: Vec<Box<[Record]>>,
    /// Records handed out at least once (ids below are in use or free).
    used: u32,
    free_head: u32,
    live: usize,
    long: Vec<Box<[u8]>>,
    long_free: Vec<u32>,
    long_bytes: usize,
}

impl Records {
    fn new() -> Self {
        Records {
            free_head: NONE,
            ..Default::default()
        }
    }

    #[inline]
    fn get(&self, id: u32) -> &Record {
        let id = id as usize;
        &self.chunks[id / CHUNK_RECORDS][id % CHUNK_RECORDS]
    }

    #[inline]
    fn get_mut(&mut self, id: u32) -> &mut Record {
        let id = id as usize;
        &mut self.chunks[id / CHUNK_RECORDS][id % CHUNK_RECORDS]
    }

    #[inline]
    fn score(&self, id: u32) -> f64 {
        self.get(id).score
    }

    #[inline]
    fn member(&self, id: u32) -> &[u8] {
        let record = self.get(id);
        debug_assert!(record.length != FREE_RECORD, "reading a free record");
        if record.length == LONG_MEMBER {
            let index = u32::from_le_bytes(record.data[..4].try_into().expect("four bytes"));
            &self.long[index as usize]
        } else {
            &record.data[..record.length as usize]
        }
    }

    #[inline]
    fn key(&self, id: u32) -> (f64, &[u8]) {
        (self.score(id), self.member(id))
    }

    fn alloc(&mut self, score: f64, member: &[u8]) -> u32 {
        let mut record = Record {
            score,
            next: NONE,
            length: 0,
            data: [0; INLINE_BYTES],
        };
        if member.len() <= INLINE_BYTES {
            record.length = member.len() as u8;
            record.data[..member.len()].copy_from_slice(member);
        } else {
            let block: Box<[u8]> = member.into();
            let index = match self.long_free.pop() {
                Some(index) => {
                    self.long[index as usize] = block;
                    index
                }
                None => {
                    self.long.push(block);
                    u32::try_from(self.long.len() - 1).expect("fewer than 2^32 long members")
                }
            };
            record.length = LONG_MEMBER;
            record.data[..4].copy_from_slice(&index.to_le_bytes());
            self.long_bytes += member.len();
        }
        self.live += 1;
        if self.free_head != NONE {
            let id = self.free_head;
            self.free_head = self.get(id).next;
            *self.get_mut(id) = record;
            return id;
        }
        assert!(
            self.used < NONE,
            "a sorted set holds fewer than 2^32 - 1 members"
        );
        let id = self.used;
        if id as usize == self.chunks.len() * CHUNK_RECORDS {
            self.chunks
                .push(vec![FREE; CHUNK_RECORDS].into_boxed_slice());
        }
        self.used += 1;
        *self.get_mut(id) = record;
        id
    }

    fn free(&mut self, id: u32) {
        let record = *self.get(id);
        debug_assert!(record.length != FREE_RECORD, "freeing a free record");
        if record.length == LONG_MEMBER {
            let index = u32::from_le_bytes(record.data[..4].try_into().expect("four bytes"));
            let block = std::mem::take(&mut self.long[index as usize]);
            self.long_bytes -= block.len();
            self.long_free.push(index);
        }
        let head = self.free_head;
        *self.get_mut(id) = Record { next: head, ..FREE };
        self.free_head = id;
        self.live -= 1;
    }

    fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK_RECORDS
    }

    fn heap_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<Record>()
            + self.chunks.capacity() * std::mem::size_of::<Box<[Record]>>()
            + self.long.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.long_free.capacity() * 4
            + self.long_bytes
    }
}

// ---------------------------------------------------------------------------------------------
// Index: member → record id.

const INITIAL_BUCKETS: usize = 4;
/// Empty buckets a rehash step may skip before it stops (Redis's `empty_visits` ratio).
const REHASH_EMPTY_VISITS: usize = 10;

/// A chained hash table over the records' `next` links, resized incrementally.
struct Index {
    /// `tables[0]` is the table; during a resize `tables[1]` is the new one and buckets of
    /// `tables[0]` below `rehash_position` have moved.
    tables: [Vec<u32>; 2],
    rehash_position: usize,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl Index {
    fn with_capacity(capacity: usize) -> Self {
        let buckets = capacity.max(INITIAL_BUCKETS).next_power_of_two();
        Index {
            tables: [vec![NONE; buckets], Vec::new()],
            rehash_position: 0,
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    #[inline]
    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn is_rehashing(&self) -> bool {
        !self.tables[1].is_empty()
    }

    fn find(&self, records: &Records, member: &[u8]) -> Option<u32> {
        let hash = self.hash(member);
        for table in &self.tables {
            if table.is_empty() {
                continue;
            }
            let mut id = table[hash as usize & (table.len() - 1)];
            while id != NONE {
                if records.member(id) == member {
                    return Some(id);
                }
                id = records.get(id).next;
            }
        }
        None
    }

    /// Adds record `id`, whose member is not in the index.
    fn insert(&mut self, records: &mut Records, id: u32) {
        if !self.is_rehashing() && self.len >= self.tables[0].len() {
            self.start_resize(self.len + 1);
        }
        let hash = self.hash(records.member(id));
        let table = &mut self.tables[usize::from(self.is_rehashing())];
        let bucket = hash as usize & (table.len() - 1);
        records.get_mut(id).next = table[bucket];
        table[bucket] = id;
        self.len += 1;
        self.rehash_step(records);
    }

    /// Unlinks record `id` (whose member is `member`) from its chain.
    fn remove(&mut self, records: &mut Records, id: u32) {
        let hash = self.hash(records.member(id));
        let mut found = false;
        for table in &mut self.tables {
            if table.is_empty() {
                continue;
            }
            let bucket = hash as usize & (table.len() - 1);
            let mut previous = NONE;
            let mut current = table[bucket];
            while current != NONE {
                let next = records.get(current).next;
                if current == id {
                    if previous == NONE {
                        table[bucket] = next;
                    } else {
                        records.get_mut(previous).next = next;
                    }
                    found = true;
                    break;
                }
                previous = current;
                current = next;
            }
            if found {
                break;
            }
        }
        assert!(found, "a member being removed is in the index");
        self.len -= 1;
        if !self.is_rehashing()
            && self.tables[0].len() > INITIAL_BUCKETS
            && self.len * 100 / self.tables[0].len() < 10
        {
            self.start_resize(self.len);
        }
        self.rehash_step(records);
    }

    fn start_resize(&mut self, capacity: usize) {
        let buckets = capacity.max(INITIAL_BUCKETS).next_power_of_two();
        if buckets == self.tables[0].len() {
            return;
        }
        self.tables[1] = vec![NONE; buckets];
        self.rehash_position = 0;
    }

    /// Moves one bucket (skipping at most a few empty ones) to the new table.
    fn rehash_step(&mut self, records: &mut Records) {
        if !self.is_rehashing() {
            return;
        }
        let mut empty_visits = REHASH_EMPTY_VISITS;
        while self.rehash_position < self.tables[0].len()
            && self.tables[0][self.rehash_position] == NONE
        {
            self.rehash_position += 1;
            empty_visits -= 1;
            if empty_visits == 0 {
                break;
            }
        }
        if self.rehash_position < self.tables[0].len() {
            let mut id = std::mem::replace(&mut self.tables[0][self.rehash_position], NONE);
            let mask = self.tables[1].len() - 1;
            while id != NONE {
                let next = records.get(id).next;
                let bucket = self.hash(records.member(id)) as usize & mask;
                records.get_mut(id).next = self.tables[1][bucket];
                self.tables[1][bucket] = id;
                id = next;
            }
            self.rehash_position += 1;
        }
        if self.rehash_position >= self.tables[0].len() {
            self.tables[0] = std::mem::take(&mut self.tables[1]);
            self.rehash_position = 0;
        }
    }

    fn visit_chain(records: &Records, mut id: u32, visit: &mut dyn FnMut(u32)) {
        while id != NONE {
            visit(id);
            id = records.get(id).next;
        }
    }

    /// One step of a SCAN (Redis's reverse-binary cursor): visits the bucket(s) `cursor` names
    /// and returns the next cursor, 0 when the scan is complete.
    fn scan(&self, records: &Records, cursor: u64, visit: &mut dyn FnMut(u32)) -> u64 {
        let mut cursor = cursor;
        if !self.is_rehashing() {
            let table = &self.tables[0];
            let mask = (table.len() - 1) as u64;
            Self::visit_chain(records, table[(cursor & mask) as usize], visit);
            cursor |= !mask;
            cursor = cursor.reverse_bits().wrapping_add(1).reverse_bits();
            return cursor;
        }
        let (small, large) = if self.tables[0].len() <= self.tables[1].len() {
            (&self.tables[0], &self.tables[1])
        } else {
            (&self.tables[1], &self.tables[0])
        };
        let small_mask = (small.len() - 1) as u64;
        let large_mask = (large.len() - 1) as u64;
        Self::visit_chain(records, small[(cursor & small_mask) as usize], visit);
        loop {
            Self::visit_chain(records, large[(cursor & large_mask) as usize], visit);
            cursor |= !large_mask;
            cursor = cursor.reverse_bits().wrapping_add(1).reverse_bits();
            if cursor & (small_mask ^ large_mask) == 0 {
                break;
            }
        }
        cursor
    }

    fn heap_bytes(&self) -> usize {
        (self.tables[0].capacity() + self.tables[1].capacity()) * 4
    }
}

// ---------------------------------------------------------------------------------------------
// Tree: record ids ordered by (score, member), with ranks.

const LEAF_MAX: usize = 128;
const LEAF_MIN: usize = LEAF_MAX / 4;
const BRANCH_MAX: usize = 64;
const BRANCH_MIN: usize = BRANCH_MAX / 4;

enum Node {
    Leaf(Vec<u32>),
    Branch(Vec<Child>),
}

struct Child {
    node: Node,
    /// Elements in the subtree.
    count: usize,
    /// The subtree's smallest element.
    first: u32,
}

impl Child {
    fn new(node: Node) -> Child {
        Child {
            count: node.len(),
            first: node.first(),
            node,
        }
    }
}

fn new_leaf() -> Vec<u32> {
    Vec::with_capacity(LEAF_MAX)
}

fn new_branch() -> Vec<Child> {
    Vec::with_capacity(BRANCH_MAX + 1)
}

impl Node {
    fn first(&self) -> u32 {
        match self {
            Node::Leaf(ids) => ids[0],
            Node::Branch(children) => children[0].first,
        }
    }

    fn len(&self) -> usize {
        match self {
            Node::Leaf(ids) => ids.len(),
            Node::Branch(children) => children.iter().map(|child| child.count).sum(),
        }
    }

    fn is_underfull(&self) -> bool {
        match self {
            Node::Leaf(ids) => ids.len() < LEAF_MIN,
            Node::Branch(children) => children.len() < BRANCH_MIN,
        }
    }
}

/// A key to look for: a (score, member) pair.
#[derive(Clone, Copy)]
struct Key<'k> {
    score: f64,
    member: &'k [u8],
}

#[inline]
fn id_is_less(records: &Records, id: u32, key: Key) -> bool {
    let (score, member) = records.key(id);
    compare_keys(score, member, key.score, key.member) == Ordering::Less
}

#[inline]
fn id_is_greater(records: &Records, id: u32, key: Key) -> bool {
    let (score, member) = records.key(id);
    compare_keys(score, member, key.score, key.member) == Ordering::Greater
}

/// The child whose range holds `key`: the last one whose first element is not above it.
fn child_for_key(children: &[Child], records: &Records, key: Key) -> usize {
    children
        .partition_point(|child| !id_is_greater(records, child.first, key))
        .saturating_sub(1)
}

#[derive(Clone, Copy)]
enum Target<'k> {
    Key(Key<'k>),
    Rank(usize),
}

struct Tree {
    root: Node,
    len: usize,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            root: Node::Leaf(new_leaf()),
            len: 0,
        }
    }

    /// A tree of `ids`, already in order, with full nodes.
    fn build(ids: &[u32]) -> Tree {
        if ids.is_empty() {
            return Tree::new();
        }
        let mut level: Vec<Child> = even_chunks(ids.len(), LEAF_MAX)
            .map(|range| {
                let mut leaf = new_leaf();
                leaf.extend_from_slice(&ids[range]);
                Child::new(Node::Leaf(leaf))
            })
            .collect();
        while level.len() > 1 {
            let mut children = level.into_iter();
            let count = children.len();
            level = even_chunks(count, BRANCH_MAX)
                .map(|range| {
                    let mut branch = new_branch();
                    branch.extend(children.by_ref().take(range.len()));
                    Child::new(Node::Branch(branch))
                })
                .collect();
        }
        let root = level.pop().expect("one root").node;
        Tree {
            root,
            len: ids.len(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, records: &Records, id: u32) {
        let (score, member) = records.key(id);
        let key = Key { score, member };
        if let Some(right) = insert_into(&mut self.root, records, id, key, true, true) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut children = new_branch();
            children.push(Child::new(left));
            children.push(Child::new(right));
            self.root = Node::Branch(children);
        }
        self.len += 1;
    }

    /// Removes the element `target` names (it must exist) and returns its id.
    fn remove(&mut self, records: &Records, target: Target) -> u32 {
        let removed = remove_from(&mut self.root, records, target);
        self.len -= 1;
        loop {
            match &mut self.root {
                Node::Branch(children) if children.len() == 1 => {
                    let only = children.pop().expect("one child").node;
                    self.root = only;
                }
                Node::Branch(children) if children.is_empty() => {
                    self.root = Node::Leaf(new_leaf());
                }
                _ => break,
            }
        }
        removed
    }

    /// The element of rank `rank`.
    fn get(&self, rank: usize) -> Option<u32> {
        if rank >= self.len {
            return None;
        }
        let mut node = &self.root;
        let mut rank = rank;
        loop {
            match node {
                Node::Leaf(ids) => return Some(ids[rank]),
                Node::Branch(children) => {
                    let mut index = 0;
                    while rank >= children[index].count {
                        rank -= children[index].count;
                        index += 1;
                    }
                    node = &children[index].node;
                }
            }
        }
    }

    /// How many elements, from the first, satisfy `predicate` (true on a prefix of the order).
    fn count_while(&self, predicate: impl Fn(u32) -> bool) -> usize {
        let mut node = &self.root;
        let mut before = 0;
        loop {
            match node {
                Node::Leaf(ids) => return before + ids.partition_point(|&id| predicate(id)),
                Node::Branch(children) => {
                    let satisfied = children.partition_point(|child| predicate(child.first));
                    if satisfied == 0 {
                        return before;
                    }
                    before += children[..satisfied - 1]
                        .iter()
                        .map(|child| child.count)
                        .sum::<usize>();
                    node = &children[satisfied - 1].node;
                }
            }
        }
    }

    /// Iterates ranks `ranks` forward, or backward from `ranks.end - 1` when `reverse`.
    fn iter(&self, ranks: Range<usize>, reverse: bool) -> TreeIter<'_> {
        let ranks = ranks.start..ranks.end.min(self.len);
        let mut iter = TreeIter {
            stack: Vec::new(),
            leaf: &[],
            position: 0,
            remaining: ranks.len(),
            reverse,
        };
        if ranks.is_empty() {
            return iter;
        }
        let mut rank = if reverse { ranks.end - 1 } else { ranks.start };
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(ids) => {
                    iter.leaf = ids;
                    iter.position = rank;
                    return iter;
                }
                Node::Branch(children) => {
                    let mut index = 0;
                    while rank >= children[index].count {
                        rank -= children[index].count;
                        index += 1;
                    }
                    iter.stack.push((children.as_slice(), index));
                    node = &children[index].node;
                }
            }
        }
    }

    /// Every id, in order.
    fn ids(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.len);
        ids.extend(self.iter(0..self.len, false));
        ids
    }

    fn heap_bytes(&self) -> usize {
        fn node_bytes(node: &Node) -> usize {
            match node {
                Node::Leaf(ids) => ids.capacity() * 4,
                Node::Branch(children) => {
                    children.capacity() * std::mem::size_of::<Child>()
                        + children
                            .iter()
                            .map(|child| node_bytes(&child.node))
                            .sum::<usize>()
                }
            }
        }
        node_bytes(&self.root)
    }

    /// Checks the structure's invariants (tests).
    #[cfg(test)]
    fn check(&self, records: &Records) {
        fn check_node(
            node: &Node,
            records: &Records,
            depth: usize,
            leaf_depth: &mut Option<usize>,
        ) -> usize {
            match node {
                Node::Leaf(ids) => {
                    assert!(ids.len() <= LEAF_MAX);
                    for pair in ids.windows(2) {
                        let (a, b) = (records.key(pair[0]), records.key(pair[1]));
                        assert_eq!(compare_keys(a.0, a.1, b.0, b.1), Ordering::Less);
                    }
                    match leaf_depth {
                        Some(expected) => assert_eq!(*expected, depth, "leaves at one depth"),
                        None => *leaf_depth = Some(depth),
                    }
                    ids.len()
                }
                Node::Branch(children) => {
                    assert!(!children.is_empty() && children.len() <= BRANCH_MAX);
                    let mut total = 0;
                    for child in children {
                        let count = check_node(&child.node, records, depth + 1, leaf_depth);
                        assert!(count > 0);
                        assert_eq!(count, child.count);
                        assert_eq!(child.first, child.node.first());
                        total += count;
                    }
                    total
                }
            }
        }
        let mut leaf_depth = None;
        assert_eq!(
            check_node(&self.root, records, 0, &mut leaf_depth),
            self.len
        );
        let ids = self.ids();
        for pair in ids.windows(2) {
            let (a, b) = (records.key(pair[0]), records.key(pair[1]));
            assert_eq!(compare_keys(a.0, a.1, b.0, b.1), Ordering::Less);
        }
    }
}

/// `count` items in chunks of at most `max`, as even as possible.
fn even_chunks(count: usize, max: usize) -> impl Iterator<Item = Range<usize>> {
    let chunks = count.div_ceil(max).max(1);
    let base = count / chunks;
    let extra = count % chunks;
    let mut start = 0;
    (0..chunks).map(move |index| {
        let size = base + usize::from(index < extra);
        let range = start..start + size;
        start += size;
        range
    })
}

/// Inserts `id` under `node`; returns the new right sibling when `node` split. `leftmost` and
/// `rightmost` say whether `node` is on the tree's left or right edge: appending at the right
/// edge (or prepending at the left) splits off only the new element, so sequential inserts
/// leave full nodes behind.
fn insert_into(
    node: &mut Node,
    records: &Records,
    id: u32,
    key: Key,
    leftmost: bool,
    rightmost: bool,
) -> Option<Node> {
    match node {
        Node::Leaf(ids) => {
            let position = ids.partition_point(|&other| id_is_less(records, other, key));
            if ids.len() < LEAF_MAX {
                ids.insert(position, id);
                return None;
            }
            let mut right = new_leaf();
            if position == ids.len() && rightmost {
                right.push(id);
            } else if position == 0 && leftmost {
                right.append(ids);
                ids.push(id);
            } else {
                let middle = ids.len() / 2;
                right.extend(ids.drain(middle..));
                if position <= middle {
                    ids.insert(position, id);
                } else {
                    right.insert(position - middle, id);
                }
            }
            Some(Node::Leaf(right))
        }
        Node::Branch(children) => {
            let index = child_for_key(children, records, key);
            let last = children.len() - 1;
            let split = insert_into(
                &mut children[index].node,
                records,
                id,
                key,
                leftmost && index == 0,
                rightmost && index == last,
            );
            let child = &mut children[index];
            child.count += 1;
            child.first = child.node.first();
            let right = Child::new(split?);
            children[index].count -= right.count;
            children.insert(index + 1, right);
            if children.len() <= BRANCH_MAX {
                return None;
            }
            let mut others = new_branch();
            if rightmost && index + 2 == children.len() {
                others.push(children.pop().expect("a new last child"));
            } else if leftmost && index == 0 {
                others.extend(children.drain(1..));
            } else {
                let middle = children.len() / 2;
                others.extend(children.drain(middle..));
            }
            Some(Node::Branch(others))
        }
    }
}

fn remove_from(node: &mut Node, records: &Records, target: Target) -> u32 {
    match node {
        Node::Leaf(ids) => {
            let position = match target {
                Target::Key(key) => ids.partition_point(|&other| id_is_less(records, other, key)),
                Target::Rank(rank) => rank,
            };
            ids.remove(position)
        }
        Node::Branch(children) => {
            let (index, inner) = match target {
                Target::Key(key) => (child_for_key(children, records, key), target),
                Target::Rank(mut rank) => {
                    let mut index = 0;
                    while rank >= children[index].count {
                        rank -= children[index].count;
                        index += 1;
                    }
                    (index, Target::Rank(rank))
                }
            };
            let removed = remove_from(&mut children[index].node, records, inner);
            let child = &mut children[index];
            child.count -= 1;
            if child.count == 0 {
                children.remove(index);
            } else {
                child.first = child.node.first();
                if child.node.is_underfull() {
                    rebalance(children, index);
                }
            }
            removed
        }
    }
}

/// Merges the underfull child `index` with a neighbour, or evens them out when both together
/// would not fit one node.
fn rebalance(children: &mut Vec<Child>, index: usize) {
    if children.len() < 2 {
        return;
    }
    let left_index = if index + 1 < children.len() {
        index
    } else {
        index - 1
    };
    let (head, tail) = children.split_at_mut(left_index + 1);
    let left = &mut head[left_index];
    let right = &mut tail[0];
    let merged = match (&mut left.node, &mut right.node) {
        (Node::Leaf(a), Node::Leaf(b)) => even_out(a, b, LEAF_MAX),
        (Node::Branch(a), Node::Branch(b)) => even_out(a, b, BRANCH_MAX),
        _ => unreachable!("siblings are at the same depth"),
    };
    if merged {
        left.count += right.count;
        children.remove(left_index + 1);
    } else {
        for child in [left, right] {
            child.count = child.node.len();
            child.first = child.node.first();
        }
    }
}

/// Moves everything into `left` when it fits `max` (returns true), else balances the two.
fn even_out<T>(left: &mut Vec<T>, right: &mut Vec<T>, max: usize) -> bool {
    let total = left.len() + right.len();
    if total <= max {
        left.append(right);
        return true;
    }
    let left_target = total / 2;
    if left.len() < left_target {
        let moved = left_target - left.len();
        left.extend(right.drain(..moved));
    } else {
        let moved: Vec<T> = left.drain(left_target..).collect();
        right.splice(0..0, moved);
    }
    false
}

/// Iterates a rank range of a tree.
struct TreeIter<'a> {
    stack: Vec<(&'a [Child], usize)>,
    leaf: &'a [u32],
    position: usize,
    remaining: usize,
    reverse: bool,
}

impl TreeIter<'_> {
    /// Moves to the next (or previous) leaf.
    fn step_leaf(&mut self) {
        while let Some(&mut (children, ref mut index)) = self.stack.last_mut() {
            let moved = if self.reverse {
                (*index > 0).then(|| *index - 1)
            } else {
                (*index + 1 < children.len()).then_some(*index + 1)
            };
            let Some(next) = moved else {
                self.stack.pop();
                continue;
            };
            *index = next;
            let mut node = &children[next].node;
            loop {
                match node {
                    Node::Leaf(ids) => {
                        self.leaf = ids;
                        self.position = if self.reverse { ids.len() - 1 } else { 0 };
                        return;
                    }
                    Node::Branch(inner) => {
                        let start = if self.reverse { inner.len() - 1 } else { 0 };
                        self.stack.push((inner.as_slice(), start));
                        node = &inner[start].node;
                    }
                }
            }
        }
        unreachable!("a rank range never runs past the tree");
    }
}

impl Iterator for TreeIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.remaining == 0 {
            return None;
        }
        let id = self.leaf[self.position];
        self.remaining -= 1;
        if self.remaining > 0 {
            if self.reverse {
                if self.position == 0 {
                    self.step_leaf();
                } else {
                    self.position -= 1;
                }
            } else if self.position + 1 == self.leaf.len() {
                self.step_leaf();
            } else {
                self.position += 1;
            }
        }
        Some(id)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for TreeIter<'_> {}

// ---------------------------------------------------------------------------------------------
// The skiplist encoding.

/// A big sorted set: records, the member index and the ordered tree.
struct Indexed {
    records: Records,
    index: Index,
    tree: Tree,
}

impl Indexed {
    fn with_capacity(capacity: usize) -> Self {
        Indexed {
            records: Records::new(),
            index: Index::with_capacity(capacity),
            tree: Tree::new(),
        }
    }

    /// A set of `entries`, unique and already in order.
    fn from_sorted<'a>(
        entries: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
        capacity: usize,
    ) -> Self {
        let mut set = Indexed::with_capacity(capacity.max(entries.len()));
        let mut ids = Vec::with_capacity(entries.len());
        for (member, score) in entries {
            let id = set.records.alloc(score, member);
            set.index.insert(&mut set.records, id);
            ids.push(id);
        }
        set.tree = Tree::build(&ids);
        set
    }

    fn len(&self) -> usize {
        self.tree.len()
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        self.index.find(&self.records, member)
    }

    fn insert_new(&mut self, score: f64, member: &[u8]) {
        let id = self.records.alloc(score, member);
        self.index.insert(&mut self.records, id);
        self.tree.insert(&self.records, id);
    }

    fn set_score(&mut self, id: u32, score: f64) {
        let (old_score, member) = self.records.key(id);
        let removed = self.tree.remove(
            &self.records,
            Target::Key(Key {
                score: old_score,
                member,
            }),
        );
        debug_assert_eq!(removed, id);
        self.records.get_mut(id).score = score;
        self.tree.insert(&self.records, id);
    }

    fn remove_id(&mut self, id: u32) {
        let (score, member) = self.records.key(id);
        let removed = self
            .tree
            .remove(&self.records, Target::Key(Key { score, member }));
        debug_assert_eq!(removed, id);
        self.index.remove(&mut self.records, id);
        self.records.free(id);
    }

    fn rank(&self, id: u32) -> usize {
        let (score, member) = self.records.key(id);
        let key = Key { score, member };
        self.tree
            .count_while(|other| id_is_less(&self.records, other, key))
    }

    /// Removes the elements of ranks `ranks`.
    fn remove_ranks(&mut self, ranks: Range<usize>) {
        let count = ranks.len();
        if count == 0 {
            return;
        }
        let len = self.len();
        let log = usize::BITS - len.leading_zeros();
        if count.saturating_mul(log as usize * 4) < len {
            for _ in 0..count {
                let id = self.tree.remove(&self.records, Target::Rank(ranks.start));
                self.index.remove(&mut self.records, id);
                self.records.free(id);
            }
        } else {
            let mut ids = self.tree.ids();
            for id in ids.drain(ranks) {
                self.index.remove(&mut self.records, id);
                self.records.free(id);
            }
            self.tree = Tree::build(&ids);
        }
        self.compact_if_sparse();
    }

    /// Rebuilds the records densely when most of them are free.
    fn compact_if_sparse(&mut self) {
        let capacity = self.records.capacity();
        if capacity <= 4 * CHUNK_RECORDS || self.records.live * 4 >= capacity {
            return;
        }
        let mut compacted = Indexed::with_capacity(self.len());
        // The same hash function keeps every member in its bucket: a ZSCAN in progress keeps
        // its guarantees.
        compacted.index.hasher = self.index.hasher;
        let mut ids = Vec::with_capacity(self.len());
        for id in self.tree.iter(0..self.tree.len(), false) {
            let new_id = compacted
                .records
                .alloc(self.records.score(id), self.records.member(id));
            compacted.index.insert(&mut compacted.records, new_id);
            ids.push(new_id);
        }
        compacted.tree = Tree::build(&ids);
        *self = compacted;
    }

    fn heap_bytes(&self) -> usize {
        self.records.heap_bytes() + self.index.heap_bytes() + self.tree.heap_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// The sorted set.

enum Repr {
    Packed(Packed),
    Indexed(Box<Indexed>),
}

/// A sorted set in the encoding Redis would have chosen.
pub struct SortedSet {
    repr: Repr,
}

/// ZADD's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// The score is an increment.
    pub incr: bool,
}

/// What an addition did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AddOutcome {
    /// A new member, with this score.
    Added(f64),
    /// An existing member's score changed to this.
    Updated(f64),
    /// An existing member already had this score.
    Unchanged(f64),
    /// NX, XX, GT or LT ruled the change out.
    Skipped,
    /// The increment made the score NaN; nothing changed.
    NotANumber,
}

/// Which end of the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Min,
    Max,
}

impl std::fmt::Debug for SortedSet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SortedSet")
            .field("encoding", &self.encoding_name())
            .field("len", &self.len())
            .finish()
    }
}

impl Clone for SortedSet {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Packed(packed) => SortedSet {
                repr: Repr::Packed(packed.clone()),
            },
            Repr::Indexed(_) => SortedSet {
                repr: Repr::Indexed(Box::new(Indexed::from_sorted(self.iter(), 0))),
            },
        }
    }
}

impl SortedSet {
    /// An empty set for about `size_hint` members, the first `value_length_hint` bytes long
    /// (Redis's `zsetTypeCreate`).
    pub fn new(size_hint: usize, value_length_hint: usize, limits: &Limits) -> Self {
        let repr =
            if size_hint <= limits.listpack_entries && value_length_hint <= limits.listpack_value {
                Repr::Packed(Packed::default())
            } else {
                Repr::Indexed(Box::new(Indexed::with_capacity(size_hint)))
            };
        SortedSet { repr }
    }

    /// A set of unique members, in the encoding their number and lengths call for (the
    /// destinations of ZRANGESTORE, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE).
    pub fn from_unique(mut entries: Vec<(Vec<u8>, f64)>, limits: &Limits) -> Self {
        entries.sort_by(|a, b| compare_keys(a.1, &a.0, b.1, &b.0));
        debug_assert!(entries.windows(2).all(|pair| pair[0].0 != pair[1].0));
        let longest = entries
            .iter()
            .map(|(member, _)| member.len())
            .max()
            .unwrap_or(0);
        let total: usize = entries.iter().map(|(member, _)| member.len()).sum();
        let repr = if entries.len() <= limits.listpack_entries
            && longest <= limits.listpack_value
            && total < LISTPACK_BYTES_MAX
        {
            let mut packed = Packed::default();
            let mut bytes = Vec::new();
            for (member, score) in &entries {
                bytes.extend_from_slice(&encoded_entry(*score, member));
            }
            bytes.shrink_to_fit();
            packed.bytes = bytes;
            packed.len = entries.len() as u32;
            Repr::Packed(packed)
        } else {
            Repr::Indexed(Box::new(Indexed::from_sorted(
                entries
                    .iter()
                    .map(|(member, score)| (member.as_slice(), *score)),
                0,
            )))
        };
        SortedSet { repr }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.len(),
            Repr::Indexed(indexed) => indexed.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Indexed(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Heap bytes owned beyond the value's own size.
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.bytes.capacity(),
            Repr::Indexed(indexed) => std::mem::size_of::<Indexed>() + indexed.heap_bytes(),
        }
    }

    fn convert_to_indexed(&mut self, capacity: usize) {
        if let Repr::Packed(packed) = &self.repr {
            let entries: Vec<(&[u8], f64)> = packed
                .iter()
                .map(|entry| (entry.member, entry.score))
                .collect();
            let indexed = Indexed::from_sorted(entries.into_iter(), capacity);
            self.repr = Repr::Indexed(Box::new(indexed));
        }
    }

    /// Converts to `skiplist` ahead of adding `size_hint` members when they cannot fit a
    /// listpack (Redis's `zsetTypeMaybeConvert`).
    pub fn reserve(&mut self, size_hint: usize, limits: &Limits) {
        if self.is_listpack() && size_hint > limits.listpack_entries {
            self.convert_to_indexed(size_hint);
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(packed) => packed.find(member).map(|(_, entry)| entry.score),
            Repr::Indexed(indexed) => indexed.find(member).map(|id| indexed.records.score(id)),
        }
    }

    /// Adds `member` or updates its score, as ZADD with `flags` does (Redis's `zsetAdd`).
    pub fn add(
        &mut self,
        score: f64,
        member: &[u8],
        flags: AddFlags,
        limits: &Limits,
    ) -> AddOutcome {
        debug_assert!(!score.is_nan());
        if let Some(current) = self.score(member) {
            if flags.nx {
                return AddOutcome::Skipped;
            }
            let mut score = score;
            if flags.incr {
                score += current;
                if score.is_nan() {
                    return AddOutcome::NotANumber;
                }
            }
            if (flags.lt && score >= current) || (flags.gt && score <= current) {
                return AddOutcome::Skipped;
            }
            if score == current {
                return AddOutcome::Unchanged(score);
            }
            match &mut self.repr {
                Repr::Packed(packed) => {
                    let (_, entry) = packed.find(member).expect("the member exists");
                    let (start, end) = (entry.start, entry.end);
                    packed.remove_bytes(start, end);
                    packed.insert(score, member);
                }
                Repr::Indexed(indexed) => {
                    let id = indexed.find(member).expect("the member exists");
                    indexed.set_score(id, score);
                }
            }
            return AddOutcome::Updated(score);
        }
        if flags.xx {
            return AddOutcome::Skipped;
        }
        if let Repr::Packed(packed) = &self.repr {
            if packed.len() + 1 > limits.listpack_entries
                || member.len() > limits.listpack_value
                || packed.bytes_len() + member.len() + 16 > LISTPACK_BYTES_MAX
            {
                self.convert_to_indexed(packed.len() + 1);
            }
        }
        match &mut self.repr {
            Repr::Packed(packed) => packed.insert(score, member),
            Repr::Indexed(indexed) => indexed.insert_new(score, member),
        }
        AddOutcome::Added(score)
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(packed) => match packed.find(member) {
                Some((_, entry)) => {
                    let (start, end) = (entry.start, entry.end);
                    packed.remove_bytes(start, end);
                    true
                }
                None => false,
            },
            Repr::Indexed(indexed) => match indexed.find(member) {
                Some(id) => {
                    indexed.remove_id(id);
                    indexed.compact_if_sparse();
                    true
                }
                None => false,
            },
        }
    }

    /// The rank (from the lowest score) and score of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Packed(packed) => packed.find(member).map(|(rank, entry)| (rank, entry.score)),
            Repr::Indexed(indexed) => indexed
                .find(member)
                .map(|id| (indexed.rank(id), indexed.records.score(id))),
        }
    }

    /// The member of rank `rank` and its score.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Packed(packed) => packed
                .iter()
                .nth(rank)
                .map(|entry| (entry.member, entry.score)),
            Repr::Indexed(indexed) => indexed.tree.get(rank).map(|id| {
                let (score, member) = indexed.records.key(id);
                (member, score)
            }),
        }
    }

    /// The ranks of the members whose scores are in `range`.
    pub fn score_ranks(&self, range: &ScoreRange) -> Range<usize> {
        let (start, end) = match &self.repr {
            Repr::Packed(packed) => {
                let start = packed
                    .iter()
                    .take_while(|entry| !range.above_min(entry.score))
                    .count();
                let end = packed
                    .iter()
                    .take_while(|entry| range.below_max(entry.score))
                    .count();
                (start, end)
            }
            Repr::Indexed(indexed) => {
                let records = &indexed.records;
                let start = indexed
                    .tree
                    .count_while(|id| !range.above_min(records.score(id)));
                let end = indexed
                    .tree
                    .count_while(|id| range.below_max(records.score(id)));
                (start, end)
            }
        };
        start..end.max(start)
    }

    /// The members of `range` with their scores, in order: one search for the first, then a walk
    /// that stops at the first score past the maximum (no second search for the end's rank).
    pub fn score_range<'s>(
        &'s self,
        range: &'s ScoreRange,
    ) -> impl Iterator<Item = (&'s [u8], f64)> + 's {
        let start = match &self.repr {
            Repr::Packed(packed) => packed
                .iter()
                .take_while(|entry| !range.above_min(entry.score))
                .count(),
            Repr::Indexed(indexed) => {
                let records = &indexed.records;
                indexed
                    .tree
                    .count_while(|id| !range.above_min(records.score(id)))
            }
        };
        self.range(start..self.len(), false)
            .take_while(|(_, score)| range.below_max(*score))
    }

    /// The ranks of the members in `range` (meaningful when all scores are equal).
    pub fn lex_ranks(&self, range: &LexRange) -> Range<usize> {
        match &self.repr {
            Repr::Packed(packed) => {
                // As Redis's listpack walk: the first member at or above the minimum, then the
                // members that follow while they stay at or below the maximum.
                let mut entries = packed.iter();
                let start = entries
                    .by_ref()
                    .position(|entry| range.above_min(entry.member));
                match start {
                    None => packed.len()..packed.len(),
                    Some(start) => {
                        if !range.below_max(packed.iter().nth(start).expect("found").member) {
                            return start..start;
                        }
                        let following = entries
                            .take_while(|entry| range.below_max(entry.member))
                            .count();
                        start..start + 1 + following
                    }
                }
            }
            Repr::Indexed(indexed) => {
                let records = &indexed.records;
                let start = indexed
                    .tree
                    .count_while(|id| !range.above_min(records.member(id)));
                let end = indexed
                    .tree
                    .count_while(|id| range.below_max(records.member(id)));
                start..end.max(start)
            }
        }
    }

    /// The members of ranks `ranks` with their scores, in order, or in reverse order.
    pub fn range(&self, ranks: Range<usize>, reverse: bool) -> RangeIter<'_> {
        let ranks = ranks.start.min(self.len())..ranks.end.min(self.len());
        match &self.repr {
            Repr::Packed(packed) => {
                let mut entries: Vec<(&[u8], f64)> = packed
                    .iter()
                    .skip(ranks.start)
                    .take(ranks.len())
                    .map(|entry| (entry.member, entry.score))
                    .collect();
                if reverse {
                    entries.reverse();
                }
                RangeIter(RangeSource::Packed(entries.into_iter()))
            }
            Repr::Indexed(indexed) => RangeIter(RangeSource::Tree {
                ids: indexed.tree.iter(ranks, reverse),
                records: &indexed.records,
            }),
        }
    }

    /// Every member with its score, in order.
    pub fn iter(&self) -> RangeIter<'_> {
        self.range(0..self.len(), false)
    }

    /// Removes the members of ranks `ranks`.
    pub fn remove_ranks(&mut self, ranks: Range<usize>) {
        let ranks = ranks.start.min(self.len())..ranks.end.min(self.len());
        match &mut self.repr {
            Repr::Packed(packed) => packed.remove_ranks(ranks),
            Repr::Indexed(indexed) => indexed.remove_ranks(ranks),
        }
    }

    /// Removes and returns up to `count` members from one end, in the order they leave.
    pub fn pop(&mut self, end: End, count: usize) -> Vec<(Vec<u8>, f64)> {
        let count = count.min(self.len());
        let ranks = match end {
            End::Min => 0..count,
            End::Max => self.len() - count..self.len(),
        };
        let popped = self
            .range(ranks.clone(), end == End::Max)
            .map(|(member, score)| (member.to_vec(), score))
            .collect();
        self.remove_ranks(ranks);
        popped
    }

    /// One step of ZSCAN: visits some members from `cursor` and returns the next cursor (0:
    /// done). A listpack is visited whole in one step.
    pub fn scan(&self, cursor: u64, visit: &mut dyn FnMut(&[u8], f64)) -> u64 {
        match &self.repr {
            Repr::Packed(packed) => {
                for entry in packed.iter() {
                    visit(entry.member, entry.score);
                }
                0
            }
            Repr::Indexed(indexed) => {
                let records = &indexed.records;
                indexed.index.scan(records, cursor, &mut |id| {
                    visit(records.member(id), records.score(id))
                })
            }
        }
    }

    /// Checks every invariant (tests).
    #[cfg(test)]
    fn check(&self) {
        match &self.repr {
            Repr::Packed(packed) => {
                let entries: Vec<_> = packed.iter().collect();
                assert_eq!(entries.len(), packed.len());
                for pair in entries.windows(2) {
                    assert_eq!(
                        compare_keys(pair[0].score, pair[0].member, pair[1].score, pair[1].member),
                        Ordering::Less
                    );
                }
            }
            Repr::Indexed(indexed) => {
                indexed.tree.check(&indexed.records);
                assert_eq!(indexed.index.len, indexed.len());
                assert_eq!(indexed.records.live, indexed.len());
                for id in indexed.tree.ids() {
                    assert_eq!(indexed.find(indexed.records.member(id)), Some(id));
                }
            }
        }
    }
}

/// Members with their scores, from [`SortedSet::range`].
pub struct RangeIter<'a>(RangeSource<'a>);

enum RangeSource<'a> {
    Packed(std::vec::IntoIter<(&'a [u8], f64)>),
    Tree {
        ids: TreeIter<'a>,
        records: &'a Records,
    },
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match &mut self.0 {
            RangeSource::Packed(entries) => entries.next(),
            RangeSource::Tree { ids, records } => {
                let id = ids.next()?;
                let (score, member) = records.key(id);
                Some((member, score))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            RangeSource::Packed(entries) => entries.size_hint(),
            RangeSource::Tree { ids, .. } => ids.size_hint(),
        }
    }
}

impl ExactSizeIterator for RangeIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    /// A small deterministic generator (xorshift64*).
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound.max(1) as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// The model: member → score, ordered on demand.
    #[derive(Default)]
    struct Model(BTreeMap<Vec<u8>, f64>);

    impl Model {
        fn sorted(&self) -> Vec<(Vec<u8>, f64)> {
            let mut entries: Vec<_> = self.0.iter().map(|(m, s)| (m.clone(), *s)).collect();
            entries.sort_by(|a, b| compare_keys(a.1, &a.0, b.1, &b.0));
            entries
        }
    }

    fn contents(set: &SortedSet) -> Vec<(Vec<u8>, f64)> {
        set.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    fn member(random: &mut Random, universe: usize, long: bool) -> Vec<u8> {
        let number = random.below(universe);
        if long && number % 7 == 0 {
            format!("a-rather-long-member-name-{number:08}").into_bytes()
        } else {
            format!("m{number}").into_bytes()
        }
    }

    fn score(random: &mut Random) -> f64 {
        match random.below(20) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => -0.0,
            3..=9 => (random.below(10) as f64) - 5.0,
            _ => (random.below(2000) as f64) / 8.0 - 100.0,
        }
    }

    fn check_against(set: &SortedSet, model: &Model, limits: &Limits) {
        set.check();
        let expected = model.sorted();
        let actual = contents(set);
        assert_eq!(actual.len(), expected.len());
        for ((member, score), (expected_member, expected_score)) in actual.iter().zip(&expected) {
            assert_eq!(member, expected_member);
            assert!(score == expected_score, "{score} vs {expected_score}");
        }
        assert_eq!(set.len(), model.0.len());
        let longest = model.0.keys().map(Vec::len).max().unwrap_or(0);
        if set.is_listpack() {
            assert!(set.len() <= limits.listpack_entries && longest <= limits.listpack_value);
        }
    }

    fn exercise(seed: u64, rounds: usize, universe: usize, limits: Limits) {
        let mut random = Random(seed);
        let mut set = SortedSet::new(0, 0, &limits);
        let mut model = Model::default();
        for round in 0..rounds {
            let operation = random.below(100);
            if operation < 50 {
                let member = member(&mut random, universe, true);
                let mut flags = AddFlags::default();
                match random.below(8) {
                    0 => flags.nx = true,
                    1 => flags.xx = true,
                    2 => flags.gt = true,
                    3 => flags.lt = true,
                    4 => flags.incr = true,
                    _ => {}
                }
                let score = score(&mut random);
                let outcome = set.add(score, &member, flags, &limits);
                let current = model.0.get(&member).copied();
                let expected = match current {
                    Some(_) if flags.nx => AddOutcome::Skipped,
                    Some(current) => {
                        let new = if flags.incr { score + current } else { score };
                        if new.is_nan() {
                            AddOutcome::NotANumber
                        } else if (flags.lt && new >= current) || (flags.gt && new <= current) {
                            AddOutcome::Skipped
                        } else if new == current {
                            AddOutcome::Unchanged(new)
                        } else {
                            model.0.insert(member.clone(), new);
                            AddOutcome::Updated(new)
                        }
                    }
                    None if flags.xx => AddOutcome::Skipped,
                    None => {
                        model
                            .0
                            .insert(member.clone(), if score == 0.0 { 0.0 } else { score });
                        AddOutcome::Added(score)
                    }
                };
                assert_eq!(outcome, expected, "round {round}");
            } else if operation < 70 {
                let member = member(&mut random, universe, true);
                assert_eq!(set.remove(&member), model.0.remove(&member).is_some());
            } else if operation < 75 {
                let len = set.len();
                let start = random.below(len + 1);
                let span = if random.chance(80) {
                    random.below(4)
                } else {
                    random.below(len + 1)
                };
                let end = (start + span).min(len);
                set.remove_ranks(start..end);
                for (member, _) in &model.sorted()[start..end] {
                    model.0.remove(member);
                }
            } else if operation < 80 {
                let end = if random.chance(50) {
                    End::Min
                } else {
                    End::Max
                };
                let count = random.below(5);
                let mut expected = model.sorted();
                if end == End::Max {
                    expected.reverse();
                }
                expected.truncate(count);
                let popped = set.pop(end, count);
                assert_eq!(popped.len(), expected.len());
                for ((member, _), (expected_member, _)) in popped.iter().zip(&expected) {
                    assert_eq!(member, expected_member);
                    model.0.remove(member);
                }
            } else {
                // Queries.
                let sorted = model.sorted();
                let member = member(&mut random, universe, true);
                let expected_rank = sorted.iter().position(|(m, _)| *m == member);
                match set.rank(&member) {
                    Some((rank, score)) => {
                        assert_eq!(Some(rank), expected_rank);
                        assert!(score == sorted[rank].1);
                        assert_eq!(set.score(&member), Some(score));
                    }
                    None => {
                        assert_eq!(expected_rank, None);
                        assert_eq!(set.score(&member), None);
                    }
                }
                if !sorted.is_empty() {
                    let rank = random.below(sorted.len());
                    let (got_member, got_score) = set.get(rank).expect("rank in range");
                    assert_eq!(got_member, sorted[rank].0.as_slice());
                    assert!(got_score == sorted[rank].1);
                }
                assert!(set.get(sorted.len()).is_none());
                let (a, b) = (score(&mut random), score(&mut random));
                let range = ScoreRange {
                    min: a.min(b),
                    max: if random.chance(10) {
                        a.min(b) - 1.0
                    } else {
                        a.max(b)
                    },
                    min_exclusive: random.chance(50),
                    max_exclusive: random.chance(50),
                };
                let expected: Vec<&(Vec<u8>, f64)> = sorted
                    .iter()
                    .filter(|(_, s)| range.above_min(*s) && range.below_max(*s))
                    .collect();
                let ranks = set.score_ranks(&range);
                assert_eq!(ranks.len(), expected.len(), "{range:?}");
                let walked: Vec<(Vec<u8>, f64)> = set
                    .score_range(&range)
                    .map(|(m, s)| (m.to_vec(), s))
                    .collect();
                assert_eq!(walked.len(), expected.len(), "{range:?}");
                for ((m, _), (em, _)) in walked.iter().zip(&expected) {
                    assert_eq!(m, em);
                }
                let reverse = random.chance(50);
                let mut got: Vec<(Vec<u8>, f64)> = set
                    .range(ranks.clone(), reverse)
                    .map(|(m, s)| (m.to_vec(), s))
                    .collect();
                if reverse {
                    got.reverse();
                }
                for ((m, _), (em, _)) in got.iter().zip(&expected) {
                    assert_eq!(m, em);
                }
                let offset = random.below(sorted.len() + 1);
                let count = random.below(sorted.len() + 2);
                let window: Vec<Vec<u8>> = set
                    .range(offset..offset + count, false)
                    .map(|(m, _)| m.to_vec())
                    .collect();
                let expected_window: Vec<Vec<u8>> = sorted
                    .iter()
                    .skip(offset)
                    .take(count)
                    .map(|(m, _)| m.clone())
                    .collect();
                assert_eq!(window, expected_window);
            }
            if round % 97 == 0 || set.len() < 8 {
                check_against(&set, &model, &limits);
            }
        }
        check_against(&set, &model, &limits);
        let copy = set.clone();
        check_against(&copy, &model, &limits);
        assert_eq!(copy.encoding_name(), set.encoding_name());
    }

    #[test]
    fn randomized_small_sets_against_a_model() {
        for seed in 1..=20 {
            exercise(seed, 3000, 150, Limits::default());
        }
    }

    #[test]
    fn randomized_big_sets_against_a_model() {
        exercise(77, 60_000, 20_000, Limits::default());
        exercise(
            78,
            30_000,
            3_000,
            Limits {
                listpack_entries: 0,
                listpack_value: 0,
            },
        );
    }

    #[test]
    fn sequential_growth_and_shrinking_keep_the_tree_valid() {
        let limits = Limits::default();
        let mut set = SortedSet::new(0, 0, &limits);
        for number in 0..50_000u32 {
            set.add(
                number as f64,
                format!("m{number}").as_bytes(),
                AddFlags::default(),
                &limits,
            );
        }
        set.check();
        assert_eq!(set.encoding_name(), "skiplist");
        for number in (0..50_000u32).rev() {
            set.add(
                -(number as f64),
                format!("n{number}").as_bytes(),
                AddFlags::default(),
                &limits,
            );
        }
        set.check();
        assert_eq!(set.len(), 100_000);
        // "n0" scores -0, equal to "m0"'s 0, and sorts after it.
        assert_eq!(set.rank(b"m0"), Some((49_999, 0.0)));
        // Consume from the front, as a delayed queue does.
        for _ in 0..90_000 {
            let popped = set.pop(End::Min, 1);
            assert_eq!(popped.len(), 1);
        }
        set.check();
        assert_eq!(set.len(), 10_000);
        assert_eq!(set.get(0), Some((&b"m40000"[..], 40_000.0)));
        set.remove_ranks(10..9_990);
        set.check();
        assert_eq!(set.len(), 20);
    }

    #[test]
    fn encodings_convert_as_redis() {
        let limits = Limits::default();
        let mut set = SortedSet::new(1, 1, &limits);
        for number in 0..128 {
            set.add(
                number as f64,
                format!("{number}").as_bytes(),
                AddFlags::default(),
                &limits,
            );
        }
        assert_eq!(set.encoding_name(), "listpack");
        set.add(1.0, b"1", AddFlags::default(), &limits);
        assert_eq!(set.encoding_name(), "listpack");
        set.add(1000.0, b"new", AddFlags::default(), &limits);
        assert_eq!(set.encoding_name(), "skiplist");
        // Never back, even when small again.
        set.remove_ranks(0..128);
        assert_eq!(set.len(), 1);
        assert_eq!(set.encoding_name(), "skiplist");

        let mut set = SortedSet::new(1, 1, &limits);
        set.add(1.0, &[b'x'; 64], AddFlags::default(), &limits);
        assert_eq!(set.encoding_name(), "listpack");
        set.add(1.0, &[b'x'; 65], AddFlags::default(), &limits);
        assert_eq!(set.encoding_name(), "skiplist");
        assert_eq!(SortedSet::new(129, 1, &limits).encoding_name(), "skiplist");
        assert_eq!(SortedSet::new(2, 65, &limits).encoding_name(), "skiplist");
        let mut set = SortedSet::new(1, 1, &limits);
        set.reserve(129, &limits);
        assert_eq!(set.encoding_name(), "skiplist");

        let entries: Vec<(Vec<u8>, f64)> = (0..128)
            .map(|n| (format!("{n}").into_bytes(), n as f64))
            .collect();
        assert_eq!(
            SortedSet::from_unique(entries.clone(), &limits).encoding_name(),
            "listpack"
        );
        let mut more = entries.clone();
        more.push((b"x".to_vec(), 0.0));
        assert_eq!(
            SortedSet::from_unique(more, &limits).encoding_name(),
            "skiplist"
        );
        let mut long = entries;
        long[3].0 = vec![b'y'; 65];
        let set = SortedSet::from_unique(long, &limits);
        assert_eq!(set.encoding_name(), "skiplist");
        set.check();
    }

    #[test]
    fn listpack_stores_negative_zero_as_zero() {
        let limits = Limits::default();
        let mut packed = SortedSet::new(1, 1, &limits);
        packed.add(-0.0, b"a", AddFlags::default(), &limits);
        assert!(packed.score(b"a").unwrap().is_sign_positive());
        let mut indexed = SortedSet::new(1000, 1, &limits);
        indexed.add(-0.0, b"a", AddFlags::default(), &limits);
        assert!(indexed.score(b"a").unwrap().is_sign_negative());
    }

    #[test]
    fn scan_visits_every_member_across_resizes() {
        let limits = Limits::default();
        let mut random = Random(5);
        let mut set = SortedSet::new(0, 0, &limits);
        for number in 0..2000 {
            set.add(
                number as f64,
                format!("m{number}").as_bytes(),
                AddFlags::default(),
                &limits,
            );
        }
        // Members present for the whole scan are returned, while the set grows and shrinks.
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = set.scan(cursor, &mut |member, _| {
                seen.insert(member.to_vec());
            });
            steps += 1;
            if steps % 3 == 0 {
                for _ in 0..40 {
                    let number = 2000 + random.below(100_000);
                    set.add(
                        0.5,
                        format!("m{number}").as_bytes(),
                        AddFlags::default(),
                        &limits,
                    );
                }
            }
            if steps > 600 {
                // Shrink: removes the added members and some of the originals' neighbours.
                set.remove_ranks(0..set.len().saturating_sub(1500).min(200));
            }
            if cursor == 0 {
                break;
            }
            assert!(steps < 1_000_000);
        }
        let remaining: HashSet<Vec<u8>> = set.iter().map(|(m, _)| m.to_vec()).collect();
        for number in 0..2000 {
            let member = format!("m{number}").into_bytes();
            if remaining.contains(&member) {
                assert!(seen.contains(&member), "{number} missed");
            }
        }
    }

    #[test]
    fn lex_ranges() {
        let limits = Limits::default();
        for size_hint in [1, 1000] {
            let mut set = SortedSet::new(size_hint, 1, &limits);
            for member in ["a", "b", "c", "d", "e", "ff", "g"] {
                set.add(0.0, member.as_bytes(), AddFlags::default(), &limits);
            }
            let ranks = |min: &str, max: &str| {
                set.lex_ranks(&LexRange::parse(min.as_bytes(), max.as_bytes()).unwrap())
            };
            assert_eq!(ranks("-", "+"), 0..7);
            assert_eq!(ranks("[b", "(e"), 1..4);
            assert_eq!(ranks("(b", "[e"), 2..5);
            assert_eq!(ranks("[f", "+"), 5..7);
            assert_eq!(ranks("+", "-").len(), 0);
            assert_eq!(ranks("[e", "[b").len(), 0);
            assert_eq!(ranks("(a", "(b").len(), 0);
            assert_eq!(ranks("-", "[a"), 0..1);
        }
        assert_eq!(parse_lex_bound(b"+"), Some(LexBound::Highest));
        assert_eq!(parse_lex_bound(b"-"), Some(LexBound::Lowest));
        assert_eq!(parse_lex_bound(b"("), Some(LexBound::Exclusive(vec![])));
        assert_eq!(parse_lex_bound(b"+a"), None);
        assert_eq!(parse_lex_bound(b"a"), None);
        assert_eq!(parse_lex_bound(b""), None);
    }

    #[test]
    fn scores_parse_as_redis() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x20"), Some(32.0));
        assert_eq!(parse_score(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_score(b"0x1.8"), Some(1.5));
        assert_eq!(parse_score(b"1e-310"), Some(1e-310));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"-nan",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1e",
            b"0x",
            b".",
            b"+",
            b"inf1",
            b"1\0",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"2\0junk"), Some((2.0, false)));
        for bad in [&b"1 "[..], b"  ", b"nan", b"(nan", b"((1", b"x", b"[1"] {
            assert_eq!(
                parse_score_bound(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn scores_format_as_redis() {
        let cases = [
            (1.5, "1.5"),
            (10.0, "10"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e17, "100000000000000000"),
            (1e19, "1e+19"),
            (1.5e20, "1.5e+20"),
            (0.00001, "0.00001"),
            (1.5e-5, "0.000015"),
            (1.25e-6, "1.25e-6"),
            (1e-7, "1e-7"),
            (123.456, "123.456"),
            (3e-300, "3e-300"),
            (1e-310, "1e-310"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, text) in cases {
            assert_eq!(format_score(value), text, "{value:e}");
        }
        let cases = [
            (1.1, "1.1000000000000001"),
            (3.0, "3"),
            (0.5, "0.5"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1e-310, "9.9999999999999694e-311"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
        ];
        for (value, text) in cases {
            assert_eq!(format_score_17g(value), text, "{value:e}");
        }
    }

    #[test]
    fn memory_per_member_stays_small() {
        let limits = Limits::default();
        let mut set = SortedSet::new(0, 0, &limits);
        for number in 0..200_000u64 {
            let score = (number * 7 % 1_000_003) as f64;
            set.add(
                score,
                format!("member:{number}").as_bytes(),
                AddFlags::default(),
                &limits,
            );
        }
        let per_member = set.heap_bytes() as f64 / set.len() as f64;
        eprintln!("{per_member:.1} bytes per member");
        assert!(per_member < 50.0, "{per_member} bytes per member");
    }
}
