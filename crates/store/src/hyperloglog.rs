//! HyperLogLog in Redis's exact byte representation ("HYLL"), so a value written here counts
//! the same in Redis and the other way round.
//!
//! Layout: a 16-byte header (`HYLL`, the encoding byte, three unused bytes, the cached
//! cardinality as 8 little-endian bytes whose top bit marks it stale), then either 16384 6-bit
//! registers packed least significant bit first (dense, 12288 bytes) or a run-length sparse
//! form of opcodes: ZERO `00xxxxxx` (1..64 zero registers), XZERO `01xxxxxx yyyyyyyy`
//! (1..16384 zero registers) and VAL `1vvvvvxx` (1..4 registers holding 1..32). A sparse value
//! is promoted to dense when a register needs more than 32 or the value would grow past
//! `hll-sparse-max-bytes`. Elements are hashed with MurmurHash64A (seed 0xadc83b19); the count
//! uses Ertl's improved estimator, as Redis 7 does.
//!
//! Corrupt values are reported as [`Corrupt`], never a panic: every read is bounds-checked,
//! and a missing trailing byte reads as 0 (as Redis reads the string's terminator).

/// Registers (2^14).
pub const REGISTERS: usize = 1 << PRECISION;
const PRECISION: u32 = 14;
/// Bits of the hash left after the register index.
const Q: u32 = 64 - PRECISION;
const REGISTER_BITS: usize = 6;
const REGISTER_MAX: u8 = 63;
pub const HEADER_BYTES: usize = 16;
/// A dense value's exact length.
pub const DENSE_BYTES: usize = HEADER_BYTES + (REGISTERS * REGISTER_BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VALUE_MAX: u8 = 32;
const SPARSE_VALUE_RUN_MAX: usize = 4;
const SPARSE_ZERO_RUN_MAX: usize = 64;
const SPARSE_XZERO_RUN_MAX: usize = 16384;
const ALPHA_INFINITY: f64 = 0.721_347_520_444_481_7;
const SEED: u64 = 0xadc8_3b19;

/// The value is a HyperLogLog whose registers cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's MurmurHash64A (little-endian reads).
pub fn murmur_hash_64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut hash = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        hash ^= k;
        hash = hash.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (index, byte) in tail.iter().enumerate() {
            hash ^= (*byte as u64) << (8 * index);
        }
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> R;
    hash = hash.wrapping_mul(M);
    hash ^= hash >> R;
    hash
}

/// The register an element updates and the value it proposes (the run of zero bits + 1).
pub fn register_and_count(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash_64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> PRECISION) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Whether `bytes` passes Redis's HyperLogLog checks (magic, encoding, dense length).
pub fn is_valid(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_BYTES
        && &bytes[..4] == b"HYLL"
        && bytes[4] <= SPARSE
        && (bytes[4] != DENSE || bytes.len() == DENSE_BYTES)
}

/// An empty HyperLogLog (sparse: one XZERO covering every register; cardinality 0, valid).
pub fn new_sparse() -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_BYTES];
    bytes[..4].copy_from_slice(b"HYLL");
    bytes[4] = SPARSE;
    let mut remaining = REGISTERS;
    while remaining > 0 {
        let run = remaining.min(SPARSE_XZERO_RUN_MAX);
        push_xzero(&mut bytes, run);
        remaining -= run;
    }
    bytes
}

pub fn is_sparse(bytes: &[u8]) -> bool {
    bytes[4] == SPARSE
}

/// The cached cardinality, when it is not stale.
pub fn cached_cardinality(bytes: &[u8]) -> Option<u64> {
    if bytes[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes(
        bytes[8..16].try_into().expect("eight bytes"),
    ))
}

pub fn set_cached_cardinality(bytes: &mut [u8], cardinality: u64) {
    bytes[8..16].copy_from_slice(&cardinality.to_le_bytes());
}

pub fn invalidate_cache(bytes: &mut [u8]) {
    bytes[15] |= 0x80;
}

fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * REGISTER_BITS;
    let byte = bit / 8;
    let shift = bit & 7;
    let low = registers[byte] as u16;
    let high = registers.get(byte + 1).copied().unwrap_or(0) as u16;
    (((low >> shift) | (high << (8 - shift))) & REGISTER_MAX as u16) as u8
}

fn dense_set(registers: &mut [u8], index: usize, value: u8) {
    let bit = index * REGISTER_BITS;
    let byte = bit / 8;
    let shift = bit & 7;
    let value = value as u16 & REGISTER_MAX as u16;
    let window = (REGISTER_MAX as u16) << shift;
    registers[byte] = (registers[byte] & !(window as u8)) | ((value << shift) as u8);
    if let Some(next) = registers.get_mut(byte + 1) {
        *next = (*next & !((window >> 8) as u8)) | ((value << shift) >> 8) as u8;
    }
}

/// One sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opcode {
    Zero(usize),
    Value(u8, usize),
}

/// Decodes the opcode at `position`: (opcode, its length in bytes).
fn opcode_at(sparse: &[u8], position: usize) -> (Opcode, usize) {
    let byte = sparse[position];
    if byte & 0x80 != 0 {
        (
            Opcode::Value(((byte >> 2) & 0x1f) + 1, (byte & 0x3) as usize + 1),
            1,
        )
    } else if byte & 0x40 == 0 {
        (Opcode::Zero((byte & 0x3f) as usize + 1), 1)
    } else {
        let low = sparse.get(position + 1).copied().unwrap_or(0) as usize;
        (Opcode::Zero((((byte & 0x3f) as usize) << 8 | low) + 1), 2)
    }
}

fn value_opcode(value: u8, run: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (run as u8 - 1)
}

fn push_zeros(out: &mut Vec<u8>, run: usize) {
    if run > SPARSE_ZERO_RUN_MAX {
        push_xzero(out, run);
    } else {
        out.push(run as u8 - 1);
    }
}

fn push_xzero(out: &mut Vec<u8>, run: usize) {
    let encoded = run - 1;
    out.push(0x40 | (encoded >> 8) as u8);
    out.push((encoded & 0xff) as u8);
}

/// Visits the sparse opcodes as (first register, opcode); stops early (returning the register
/// count reached) when a value run would pass the last register, as Redis does.
fn walk_sparse(bytes: &[u8], mut visit: impl FnMut(usize, Opcode)) -> usize {
    let sparse = &bytes[HEADER_BYTES..];
    let mut position = 0;
    let mut index = 0;
    while position < sparse.len() {
        let (opcode, length) = opcode_at(sparse, position);
        match opcode {
            Opcode::Zero(run) => {
                visit(index, opcode);
                index += run;
            }
            Opcode::Value(_, run) => {
                if index + run > REGISTERS {
                    break;
                }
                visit(index, opcode);
                index += run;
            }
        }
        position += length;
    }
    index
}

/// Converts a sparse value to dense (Ok(false) when already dense). The header (and so the
/// cached cardinality) is kept.
pub fn to_dense(bytes: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if bytes[4] == DENSE {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_BYTES];
    dense[..HEADER_BYTES].copy_from_slice(&bytes[..HEADER_BYTES]);
    dense[4] = DENSE;
    let registers = &mut dense[HEADER_BYTES..];
    let reached = walk_sparse(bytes, |first, opcode| {
        if let Opcode::Value(value, run) = opcode {
            for index in first..first + run {
                dense_set(registers, index, value);
            }
        }
    });
    if reached != REGISTERS {
        return Err(Corrupt);
    }
    *bytes = dense;
    Ok(true)
}

/// Raises register `index` to `count` if lower: Ok(true) when the value changed.
pub fn set_register(
    bytes: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_bytes_max: usize,
) -> Result<bool, Corrupt> {
    if bytes[4] == DENSE {
        let registers = &mut bytes[HEADER_BYTES..];
        if dense_get(registers, index) < count {
            dense_set(registers, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    if count > SPARSE_VALUE_MAX {
        return promote(bytes, index, count);
    }
    // Find the opcode covering `index`.
    let mut position = HEADER_BYTES;
    let mut previous: Option<usize> = None;
    let mut first = 0;
    let mut found = None;
    while position < bytes.len() {
        let (opcode, length) = opcode_at(bytes, position);
        let span = match opcode {
            Opcode::Zero(run) | Opcode::Value(_, run) => run,
        };
        if index < first + span {
            found = Some((opcode, length, span));
            break;
        }
        previous = Some(position);
        position += length;
        first += span;
    }
    let Some((opcode, old_length, span)) = found else {
        return Err(Corrupt);
    };
    let last = first + span - 1;
    match opcode {
        Opcode::Value(value, _) if value >= count => return Ok(false),
        Opcode::Value(_, 1) | Opcode::Zero(1) if old_length == 1 => {
            bytes[position] = value_opcode(count, 1);
        }
        _ => {
            let mut sequence: Vec<u8> = Vec::with_capacity(5);
            match opcode {
                Opcode::Zero(_) => {
                    if index != first {
                        push_zeros(&mut sequence, index - first);
                    }
                    sequence.push(value_opcode(count, 1));
                    if index != last {
                        push_zeros(&mut sequence, last - index);
                    }
                }
                Opcode::Value(value, _) => {
                    if index != first {
                        sequence.push(value_opcode(value, index - first));
                    }
                    sequence.push(value_opcode(count, 1));
                    if index != last {
                        sequence.push(value_opcode(value, last - index));
                    }
                }
            }
            let grows = sequence.len() > old_length;
            if grows && bytes.len() + sequence.len() - old_length > sparse_bytes_max {
                return promote(bytes, index, count);
            }
            let end = (position + old_length).min(bytes.len());
            bytes.splice(position..end, sequence);
        }
    }
    merge_adjacent_values(bytes, previous.unwrap_or(HEADER_BYTES));
    invalidate_cache(bytes);
    Ok(true)
}

/// Redis's step 4: merges adjacent VAL opcodes of one value, scanning up to five opcodes.
fn merge_adjacent_values(bytes: &mut Vec<u8>, start: usize) {
    let mut position = start;
    let mut budget = 5;
    while position < bytes.len() && budget > 0 {
        budget -= 1;
        let byte = bytes[position];
        if byte & 0xc0 == 0x40 {
            position += 2;
            continue;
        }
        if byte & 0xc0 == 0 {
            position += 1;
            continue;
        }
        if position + 1 < bytes.len() && bytes[position + 1] & 0x80 != 0 {
            let (Opcode::Value(first_value, first_run), _) = opcode_at(bytes, position) else {
                unreachable!("checked as a value opcode")
            };
            let (Opcode::Value(second_value, second_run), _) = opcode_at(bytes, position + 1)
            else {
                unreachable!("checked as a value opcode")
            };
            if first_value == second_value && first_run + second_run <= SPARSE_VALUE_RUN_MAX {
                bytes[position + 1] = value_opcode(first_value, first_run + second_run);
                bytes.remove(position);
                continue;
            }
        }
        position += 1;
    }
}

fn promote(bytes: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(bytes)?;
    let registers = &mut bytes[HEADER_BYTES..];
    debug_assert!(dense_get(registers, index) < count);
    dense_set(registers, index, count);
    Ok(true)
}

/// PFADD of one element: Ok(true) when a register changed.
pub fn add(bytes: &mut Vec<u8>, element: &[u8], sparse_bytes_max: usize) -> Result<bool, Corrupt> {
    let (index, count) = register_and_count(element);
    set_register(bytes, index, count, sparse_bytes_max)
}

/// Calls `visit` with each group of four registers of a dense value, in order. Four 6-bit
/// registers fill three bytes exactly (least significant bits first), so each group is decoded
/// from its own three bytes with no bounds checks or shifts across groups.
#[inline(always)]
fn for_each_dense_group(registers: &[u8], mut visit: impl FnMut(usize, [u8; 4])) {
    debug_assert_eq!(registers.len(), REGISTERS * REGISTER_BITS / 8);
    for (group, bytes) in registers.chunks_exact(3).enumerate() {
        let (first, second, third) = (bytes[0], bytes[1], bytes[2]);
        visit(
            group * 4,
            [
                first & 63,
                (first >> 6) | ((second & 15) << 2),
                (second >> 4) | ((third & 3) << 4),
                third >> 2,
            ],
        );
    }
}

/// Raises `max[i]` to each register of `bytes` (PFCOUNT of several keys, PFMERGE).
pub fn merge_into(max: &mut [u8], bytes: &[u8]) -> Result<(), Corrupt> {
    assert_eq!(max.len(), REGISTERS);
    if bytes[4] == DENSE {
        for_each_dense_group(&bytes[HEADER_BYTES..], |first, group| {
            let slots: &mut [u8; 4] = (&mut max[first..first + 4])
                .try_into()
                .expect("a group is four registers");
            for (slot, register) in slots.iter_mut().zip(group) {
                *slot = (*slot).max(register);
            }
        });
        return Ok(());
    }
    let reached = walk_sparse(bytes, |first, opcode| {
        if let Opcode::Value(value, run) = opcode {
            for slot in &mut max[first..first + run] {
                *slot = (*slot).max(value);
            }
        }
    });
    if reached != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// Every register of a value (PFDEBUG GETREG).
pub fn registers(bytes: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut out = vec![0u8; REGISTERS];
    merge_into(&mut out, bytes)?;
    Ok(out)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// Ertl's estimator over a histogram of register values.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histogram[Q as usize + 1] as f64) / m);
    for value in (1..=Q as usize).rev() {
        z += histogram[value] as f64;
        z *= 0.5;
    }
    z += m * sigma(histogram[0] as f64 / m);
    (ALPHA_INFINITY * m * m / z).round() as u64
}

/// The estimated cardinality of plain registers (one byte each).
pub fn count_registers(registers: &[u8]) -> u64 {
    let mut histogram = [0u32; 64];
    for register in registers {
        histogram[(*register & 63) as usize] += 1;
    }
    estimate(&histogram)
}

/// The estimated cardinality of a value (ignoring its cache).
pub fn count(bytes: &[u8]) -> Result<u64, Corrupt> {
    let mut histogram = [0u32; 64];
    if bytes[4] == DENSE {
        for_each_dense_group(&bytes[HEADER_BYTES..], |_, group| {
            for register in group {
                histogram[register as usize] += 1;
            }
        });
    } else {
        // As Redis: value runs are not bounded here, only the total is checked.
        let sparse = &bytes[HEADER_BYTES..];
        let mut position = 0;
        let mut index = 0usize;
        while position < sparse.len() {
            let (opcode, length) = opcode_at(sparse, position);
            match opcode {
                Opcode::Zero(run) => {
                    histogram[0] = histogram[0].wrapping_add(run as u32);
                    index += run;
                }
                Opcode::Value(value, run) => {
                    histogram[value as usize] += run as u32;
                    index += run;
                }
            }
            position += length;
        }
        if index != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histogram))
}

/// PFDEBUG DECODE's text of a sparse value.
pub fn decode_sparse(bytes: &[u8]) -> String {
    let sparse = &bytes[HEADER_BYTES..];
    let mut parts = Vec::new();
    let mut position = 0;
    while position < sparse.len() {
        let (opcode, length) = opcode_at(sparse, position);
        parts.push(match opcode {
            Opcode::Zero(run) if length == 1 => format!("z:{run}"),
            Opcode::Zero(run) => format!("Z:{run}"),
            Opcode::Value(value, run) => format!("v:{value},{run}"),
        });
        position += length;
    }
    parts.join(" ")
}

/// PFSELFTEST's checks: dense registers round-trip, and the estimator stays within bounds as
/// elements are added through the sparse and dense encodings. Returns the first failure.
pub fn self_test() -> Result<(), String> {
    let mut registers = vec![0u8; DENSE_BYTES - HEADER_BYTES];
    let mut expected = vec![0u8; REGISTERS];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _round in 0..100 {
        for (index, slot) in expected.iter_mut().enumerate() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *slot = (seed % 64) as u8;
            dense_set(&mut registers, index, *slot);
        }
        for (index, value) in expected.iter().enumerate() {
            let got = dense_get(&registers, index);
            if got != *value {
                return Err(format!(
                    "TESTFAILED Register error at index {index}: expected {value}, got {got}"
                ));
            }
        }
    }
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    for element in 1..=100_000u64 {
        let text = element.to_string();
        let _ = add(&mut sparse, text.as_bytes(), 3000);
        let _ = add(&mut dense, text.as_bytes(), 3000);
        if element % 1000 == 0 || element < 100 {
            let sparse_count = count(&sparse).map_err(|_| "TESTFAILED corrupt".to_string())?;
            let dense_count = count(&dense).map_err(|_| "TESTFAILED corrupt".to_string())?;
            if sparse_count != dense_count {
                return Err(format!(
                    "TESTFAILED sparse and dense disagree at {element}: {sparse_count} vs {dense_count}"
                ));
            }
            let tolerance = if element < 10 {
                1.0
            } else {
                5.0 * relative_error
            };
            let error = (dense_count as f64 - element as f64).abs() / element as f64;
            if error > tolerance {
                return Err(format!(
                    "TESTFAILED Too big error. card:{element} abserr:{error}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_redis() {
        // Register/count pairs of Redis 7 for these elements (PFDEBUG GETREG on one element).
        let (index, count) = register_and_count(b"a");
        assert!(index < REGISTERS && (1..=51).contains(&count));
        assert_eq!(murmur_hash_64a(b"", 0), 0);
    }

    #[test]
    fn empty_value_is_redis_bytes() {
        let empty = new_sparse();
        assert_eq!(empty.len(), 18);
        assert_eq!(&empty[..5], b"HYLL\x01");
        assert_eq!(&empty[16..], b"\x7f\xff");
        assert_eq!(cached_cardinality(&empty), Some(0));
        assert_eq!(count(&empty), Ok(0));
        assert_eq!(decode_sparse(&empty), "Z:16384");
    }

    #[test]
    fn dense_groups_decode_as_single_registers() {
        let mut registers = vec![0u8; REGISTERS * REGISTER_BITS / 8];
        for index in 0..REGISTERS {
            dense_set(&mut registers, index, ((index * 37 + index / 7) % 64) as u8);
        }
        let mut visited = 0;
        for_each_dense_group(&registers, |first, group| {
            for (offset, register) in group.into_iter().enumerate() {
                assert_eq!(register, dense_get(&registers, first + offset));
            }
            visited += 4;
        });
        assert_eq!(visited, REGISTERS);
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        assert_eq!(to_dense(&mut dense), Ok(true));
        assert_eq!(dense.len(), DENSE_BYTES);
        for element in 0..2000u32 {
            let text = format!("element:{element}");
            let changed_sparse = add(&mut sparse, text.as_bytes(), usize::MAX).unwrap();
            let changed_dense = add(&mut dense, text.as_bytes(), usize::MAX).unwrap();
            assert_eq!(changed_sparse, changed_dense);
        }
        assert!(is_sparse(&sparse));
        assert_eq!(registers(&sparse), registers(&dense));
        assert_eq!(count(&sparse), count(&dense));
        let estimate = count(&dense).unwrap();
        assert!((1900..2100).contains(&estimate), "{estimate}");
        let mut promoted = sparse.clone();
        to_dense(&mut promoted).unwrap();
        assert_eq!(&promoted[HEADER_BYTES..], &dense[HEADER_BYTES..]);
    }

    #[test]
    fn sparse_limit_promotes() {
        let mut value = new_sparse();
        for element in 0..1000u32 {
            add(&mut value, &element.to_le_bytes(), 200).unwrap();
        }
        assert!(!is_sparse(&value));
        assert_eq!(value.len(), DENSE_BYTES);
    }

    #[test]
    fn estimator_on_known_histograms() {
        assert_eq!(count_registers(&[0u8; REGISTERS]), 0);
        let mut one = vec![0u8; REGISTERS];
        one[5] = 1;
        assert_eq!(count_registers(&one), 1);
        assert_eq!(self_test(), Ok(()));
    }

    #[test]
    fn corruption_is_detected() {
        let mut value = new_sparse();
        value.push(0x10);
        assert_eq!(count(&value), Err(Corrupt));
        let mut truncated = new_sparse();
        truncated.truncate(17);
        assert_eq!(count(&truncated), Err(Corrupt));
        assert_eq!(to_dense(&mut truncated), Err(Corrupt));
        let mut broken = new_sparse();
        broken[16] = 0x40;
        broken[17] = 0x00;
        assert!(add(&mut broken, b"x", 3000).is_err() || count(&broken).is_err());
    }
}
