//! Bit operations on string values, as Redis's bitmap commands see them: bit 0 is the most
//! significant bit of byte 0, bits past the end of a string read as 0.
//!
//! [`popcount`] counts a word at a time; [`count_in_range`] and [`position`] apply Redis's
//! index rules (negative indexes from the end, BYTE or BIT units); [`combine`] is BITOP; the
//! bit-field helpers read and write integers of 1 to 64 bits at any bit offset, with Redis's
//! overflow policies ([`Overflow`]).

/// The unit of BITCOUNT's and BITPOS's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Byte,
    Bit,
}

/// The bits set in `bytes`, four 64-bit words at a time. On x86-64 the CPU's POPCNT
/// instruction is used when it has one (the baseline target does not assume it, and the
/// portable bit-twiddling count is several times slower).
pub fn popcount(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports POPCNT, checked just above.
            return unsafe { popcount_popcnt(bytes) };
        }
    }
    popcount_words(bytes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn popcount_popcnt(bytes: &[u8]) -> u64 {
    popcount_words(bytes)
}

#[inline(always)]
fn popcount_words(bytes: &[u8]) -> u64 {
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
    let mut blocks = bytes.chunks_exact(32);
    // Four running counts, so consecutive words do not wait on one another's additions.
    let mut counts = [0u64; 4];
    for block in &mut blocks {
        for (count, chunk) in counts.iter_mut().zip(block.chunks_exact(8)) {
            *count += word(chunk).count_ones() as u64;
        }
    }
    let mut count: u64 = counts.iter().sum();
    let mut words = blocks.remainder().chunks_exact(8);
    for chunk in &mut words {
        count += word(chunk).count_ones() as u64;
    }
    for byte in words.remainder() {
        count += byte.count_ones() as u64;
    }
    count
}

/// The inclusive bit range `start..=end` (in `unit`s, negative from the end) resolved against a
/// string of `length` bytes as Redis resolves it, in bits; None when empty.
fn resolve_range(length: usize, start: i64, end: i64, unit: Unit) -> Option<(u64, u64)> {
    let mut total = length as i64;
    if unit == Unit::Bit {
        total <<= 3;
    }
    let mut start = if start < 0 {
        total.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        total.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    match unit {
        Unit::Bit => Some((start as u64, end as u64)),
        Unit::Byte => Some(((start as u64) << 3, ((end as u64) << 3) | 7)),
    }
}

/// The bits set in `bytes[first_bit..=last_bit]`.
fn count_bits(bytes: &[u8], first_bit: u64, last_bit: u64) -> u64 {
    let first_byte = (first_bit >> 3) as usize;
    let last_byte = (last_bit >> 3) as usize;
    let mut count = popcount(&bytes[first_byte..=last_byte]);
    let head_mask = !(0xffu8 >> (first_bit & 7));
    let tail_mask = (0xffu16 >> ((last_bit & 7) + 1)) as u8;
    count -= (bytes[first_byte] & head_mask).count_ones() as u64;
    count -= (bytes[last_byte] & tail_mask).count_ones() as u64;
    count
}

/// BITCOUNT's answer over `start..=end` in `unit`s (None: the whole string).
pub fn count_in_range(bytes: &[u8], range: Option<(i64, i64)>, unit: Unit) -> u64 {
    match range {
        None => popcount(bytes),
        Some((start, end)) => {
            if start < 0 && end < 0 && start > end {
                return 0;
            }
            match resolve_range(bytes.len(), start, end, unit) {
                None => 0,
                Some((first, last)) => count_bits(bytes, first, last),
            }
        }
    }
}

fn bit_at(bytes: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    byte < bytes.len() && bytes[byte] & (0x80 >> (offset & 7)) != 0
}

/// The first bit equal to `bit` in `bytes[first..=last]` (bit offsets), a word at a time.
fn find_bit(bytes: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let mut offset = first;
    // Single bits up to a byte boundary, whole bytes up to a word boundary, then words.
    while offset <= last && offset & 7 != 0 {
        if bit_at(bytes, offset) == bit {
            return Some(offset);
        }
        offset += 1;
    }
    let skip: u8 = if bit { 0 } else { 0xff };
    while offset + 7 <= last {
        let byte_index = (offset >> 3) as usize;
        if byte_index % 8 == 0 && offset + 63 <= last {
            let word = u64::from_be_bytes(
                bytes[byte_index..byte_index + 8]
                    .try_into()
                    .expect("eight bytes"),
            );
            let word = if bit { word } else { !word };
            if word == 0 {
                offset += 64;
                continue;
            }
            return Some(offset + word.leading_zeros() as u64);
        }
        let byte = bytes[byte_index];
        if byte != skip {
            let byte = if bit { byte } else { !byte };
            return Some(offset + byte.leading_zeros() as u64);
        }
        offset += 8;
    }
    while offset <= last {
        if bit_at(bytes, offset) == bit {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

/// BITPOS's answer: the first `bit` in the range (`start`, optional `end`, in `unit`s), -1 when
/// there is none; looking for a 0 without an explicit end finds the first bit past the string.
pub fn position(bytes: &[u8], bit: bool, start: Option<i64>, end: Option<i64>, unit: Unit) -> i64 {
    let (first, last) = match start {
        None => {
            if bytes.is_empty() {
                return -1;
            }
            (0, (bytes.len() as u64) * 8 - 1)
        }
        Some(start) => match resolve_range(bytes.len(), start, end.unwrap_or(-1), unit) {
            None => return -1,
            Some(range) => range,
        },
    };
    match find_bit(bytes, bit, first, last) {
        Some(found) => found as i64,
        None if !bit && end.is_none() => (last + 1) as i64,
        None => -1,
    }
}

/// BITOP's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOperation {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP's result over `sources` (missing keys are empty strings): as long as the longest
/// source, shorter ones padded with zero bytes.
pub fn combine(operation: BitOperation, sources: &[&[u8]]) -> Vec<u8> {
    let length = sources.iter().map(|source| source.len()).max().unwrap_or(0);
    if operation == BitOperation::Not {
        return sources
            .first()
            .map(|source| source.iter().map(|byte| !byte).collect())
            .unwrap_or_default();
    }
    let mut result = vec![0u8; length];
    let Some((first, rest)) = sources.split_first() else {
        return result;
    };
    result[..first.len()].copy_from_slice(first);
    if operation == BitOperation::And && rest.iter().any(|source| source.len() < length) {
        // Missing bytes are zero: clear the tails first.
        let shortest = sources.iter().map(|source| source.len()).min().unwrap_or(0);
        result[shortest..].fill(0);
    }
    for source in rest {
        let (target, _) = result.split_at_mut(source.len());
        match operation {
            BitOperation::And => {
                for (out, byte) in target.iter_mut().zip(source.iter()) {
                    *out &= byte;
                }
            }
            BitOperation::Or => {
                for (out, byte) in target.iter_mut().zip(source.iter()) {
                    *out |= byte;
                }
            }
            BitOperation::Xor => {
                for (out, byte) in target.iter_mut().zip(source.iter()) {
                    *out ^= byte;
                }
            }
            BitOperation::Not => unreachable!("handled above"),
        }
    }
    result
}

/// Reads the `bits`-bit unsigned integer at bit `offset` (bits past the end read as 0).
pub fn get_unsigned(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    debug_assert!((1..=64).contains(&bits));
    let mut value = 0u64;
    for index in 0..bits as u64 {
        value = (value << 1) | bit_at(bytes, offset + index) as u64;
    }
    value
}

/// Reads the `bits`-bit two's complement integer at bit `offset`.
pub fn get_signed(bytes: &[u8], offset: u64, bits: u32) -> i64 {
    let raw = get_unsigned(bytes, offset, bits);
    if bits == 64 {
        return raw as i64;
    }
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Writes the low `bits` bits of `value` at bit `offset`; the string must be long enough.
pub fn set_bits(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for index in 0..bits as u64 {
        let bit = (value >> (bits as u64 - 1 - index)) & 1;
        let position = offset + index;
        let byte = &mut bytes[(position >> 3) as usize];
        let mask = 0x80u8 >> (position & 7);
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// What BITFIELD does when SET or INCRBY leaves its type's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Saturate,
    Fail,
}

/// A bit-field type: `i1`..`i64` or `u1`..`u63`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

impl FieldType {
    /// Parses `i16`, `u8`... as Redis accepts them (u64 is not supported).
    pub fn parse(text: &[u8]) -> Option<FieldType> {
        let signed = match text.first()? {
            b'i' | b'I' => true,
            b'u' | b'U' => false,
            _ => return None,
        };
        let bits = crate::number::parse_i64(&text[1..])?;
        let max = if signed { 64 } else { 63 };
        if bits < 1 || bits > max {
            return None;
        }
        Some(FieldType {
            signed,
            bits: bits as u32,
        })
    }

    fn bounds(self) -> (i128, i128) {
        if self.signed {
            let max = (1i128 << (self.bits - 1)) - 1;
            (-max - 1, max)
        } else {
            (0, (1i128 << self.bits) - 1)
        }
    }

    /// `value` reduced to this type by keeping its low bits.
    fn wrap(self, value: i128) -> i128 {
        let low = (value as u128) & ((1u128 << self.bits) - 1);
        if self.signed && low >> (self.bits - 1) == 1 {
            low as i128 - (1i128 << self.bits)
        } else {
            low as i128
        }
    }

    /// The field at `offset`, as a wide integer.
    pub fn get(self, bytes: &[u8], offset: u64) -> i128 {
        if self.signed {
            get_signed(bytes, offset, self.bits) as i128
        } else {
            get_unsigned(bytes, offset, self.bits) as i128
        }
    }

    /// Writes `value` (within this type's range) at `offset`.
    pub fn set(self, bytes: &mut [u8], offset: u64, value: i128) {
        set_bits(bytes, offset, self.bits, value as u64);
    }

    /// The value `value` becomes under `overflow`, or None when FAIL refuses it.
    pub fn fit(self, value: i128, overflow: Overflow) -> Option<i128> {
        let (min, max) = self.bounds();
        if value >= min && value <= max {
            return Some(value);
        }
        match overflow {
            Overflow::Wrap => Some(self.wrap(value)),
            Overflow::Saturate => Some(if value > max { max } else { min }),
            Overflow::Fail => None,
        }
    }

    /// The value SET's argument stands for: unsigned types read it as a 64-bit unsigned
    /// number, as Redis does (so `-1` is past any unsigned type's range).
    pub fn set_argument(self, argument: i64) -> i128 {
        if self.signed {
            argument as i128
        } else {
            argument as u64 as i128
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popcount_counts_every_bit() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let expected: u64 = bytes.iter().map(|byte| byte.count_ones() as u64).sum();
        assert_eq!(popcount(&bytes), expected);
        assert_eq!(popcount(b""), 0);
        assert_eq!(popcount(b"foobar"), 26);
        // Every length around the block and word sizes, at every alignment, on both paths.
        let long: Vec<u8> = (0..200u32).map(|n| (n * 37 + n / 3) as u8).collect();
        for start in 0..8 {
            for length in 0..150 {
                let slice = &long[start..start + length];
                let naive: u64 = slice.iter().map(|byte| byte.count_ones() as u64).sum();
                assert_eq!(popcount(slice), naive, "{start} {length}");
                assert_eq!(popcount_words(slice), naive, "{start} {length}");
            }
        }
    }

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(count_in_range(b"foobar", Some((0, 0)), Unit::Byte), 4);
        assert_eq!(count_in_range(b"foobar", Some((1, 1)), Unit::Byte), 6);
        assert_eq!(count_in_range(b"foobar", Some((5, 30)), Unit::Bit), 17);
        assert_eq!(count_in_range(b"foobar", Some((-1, -2)), Unit::Byte), 0);
        assert_eq!(count_in_range(b"foobar", Some((-100, 100)), Unit::Byte), 26);
    }

    #[test]
    fn positions_follow_redis() {
        let bytes = [0xff, 0xf0, 0x00];
        assert_eq!(position(&bytes, false, None, None, Unit::Byte), 12);
        assert_eq!(position(&[0xff, 0xff], false, None, None, Unit::Byte), 16);
        assert_eq!(
            position(&[0xff, 0xff], false, Some(0), Some(-1), Unit::Byte),
            -1
        );
        assert_eq!(position(&[0, 0, 1], true, None, None, Unit::Byte), 23);
        assert_eq!(position(&[0, 0, 1], true, Some(2), Some(-1), Unit::Bit), 23);
        assert_eq!(
            position(&[0xff; 20], false, Some(7), Some(15), Unit::Bit),
            -1
        );
        let mut long = vec![0u8; 40];
        long[33] = 0x10;
        assert_eq!(position(&long, true, None, None, Unit::Byte), 33 * 8 + 3);
        assert_eq!(
            position(&long, true, Some(1), Some(-1), Unit::Byte),
            33 * 8 + 3
        );
        assert_eq!(position(b"", true, None, None, Unit::Byte), -1);
    }

    #[test]
    fn fields_wrap_and_saturate() {
        let mut bytes = vec![0u8; 4];
        let i8 = FieldType::parse(b"i8").unwrap();
        let u4 = FieldType::parse(b"u4").unwrap();
        assert_eq!(FieldType::parse(b"u64"), None);
        assert_eq!(FieldType::parse(b"i65"), None);
        assert_eq!(FieldType::parse(b"i0"), None);
        assert_eq!(i8.fit(128, Overflow::Wrap), Some(-128));
        assert_eq!(i8.fit(200, Overflow::Saturate), Some(127));
        assert_eq!(i8.fit(-200, Overflow::Saturate), Some(-128));
        assert_eq!(u4.fit(17, Overflow::Wrap), Some(1));
        assert_eq!(u4.fit(-1, Overflow::Fail), None);
        assert_eq!(u4.fit(u4.set_argument(-1), Overflow::Saturate), Some(15));
        i8.set(&mut bytes, 3, -2);
        assert_eq!(i8.get(&bytes, 3), -2);
        assert_eq!(u4.get(&bytes, 3), 15);
        assert_eq!(bytes[0], 0x1f);
    }

    #[test]
    fn bitop_pads_with_zeros() {
        let sources: [&[u8]; 2] = [b"\xff\xff", b"\x0f"];
        assert_eq!(combine(BitOperation::And, &sources), b"\x0f\x00");
        assert_eq!(combine(BitOperation::Or, &sources), b"\xff\xff");
        assert_eq!(combine(BitOperation::Xor, &sources), b"\xf0\xff");
        assert_eq!(combine(BitOperation::Not, &sources[1..]), b"\xf0");
    }
}
