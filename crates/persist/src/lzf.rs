//! LZF compression as Redis uses it for strings in RDB files (`rdbcompression yes`).
//!
//! The format: a control byte `c`; `c < 32` starts a literal run of `c + 1` bytes; otherwise
//! `c >> 5` is a back-reference length (7 means "add the next byte"), to which 2 is added, and
//! the offset is `((c & 31) << 8 | next byte) + 1` bytes back. The compressor follows liblzf's
//! greedy strategy (16-bit hash of three bytes, the newest position per slot, a match is
//! extended as far as possible, positions inside a match are re-hashed only at its end) so
//! its output equals Redis's for the same input, which keeps DUMP payloads byte-identical.

const LITERAL_RUN_MAX: usize = 32;
const OFFSET_MAX: usize = 1 << 13;
const REFERENCE_MAX: usize = (1 << 8) + (1 << 3);
const HASH_BITS: u32 = 16;
const HASH_SIZE: usize = 1 << HASH_BITS;

fn slot(value: u32) -> usize {
    ((value >> (24 - HASH_BITS)).wrapping_sub(value.wrapping_mul(5)) as usize) & (HASH_SIZE - 1)
}

/// Compresses `input`; `None` when the result would not be shorter than `output_max` bytes.
pub fn compress(input: &[u8], output_max: usize) -> Option<Vec<u8>> {
    let length = input.len();
    if length < 3 {
        return None;
    }
    TABLE.with(|table| compress_with(input, output_max, &mut table.borrow_mut()))
}

/// The hash table, reused between calls: a slot holds (generation, position) and counts as
/// empty when its generation is not the current call's, so no call clears 64 K slots.
struct Table {
    generation: u32,
    slots: Vec<(u32, u32)>,
}

impl Table {
    fn get(&self, index: usize) -> usize {
        let (generation, position) = self.slots[index];
        if generation == self.generation {
            position as usize
        } else {
            0
        }
    }

    fn set(&mut self, index: usize, position: usize) {
        self.slots[index] = (self.generation, position as u32);
    }
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = std::cell::RefCell::new(Table {
        generation: 0,
        slots: vec![(0, 0); HASH_SIZE],
    });
}

fn compress_with(input: &[u8], output_max: usize, table: &mut Table) -> Option<Vec<u8>> {
    let length = input.len();
    if length > u32::MAX as usize {
        return None;
    }
    table.generation = table.generation.wrapping_add(1);
    if table.generation == 0 {
        table.slots.iter_mut().for_each(|slot| *slot = (0, 0));
        table.generation = 1;
    }
    let mut out: Vec<u8> = Vec::with_capacity(output_max.min(length + length / 16 + 8));
    // `run_start` is the index of the current literal run's control byte; `literals` its count.
    let mut literals = 0usize;
    out.push(0);
    let mut run_start = 0usize;
    let mut position = 0usize;
    let first = |at: usize| ((input[at] as u32) << 8) | input[at + 1] as u32;
    let mut hash = first(0);
    while position + 2 < length {
        hash = (hash << 8) | input[position + 2] as u32;
        let index = slot(hash);
        let reference = table.get(index);
        table.set(index, position);
        let matched = reference < position
            && reference > 0
            && position - reference - 1 < OFFSET_MAX
            && input[reference..reference + 3] == input[position..position + 3];
        if matched {
            let offset = position - reference - 1;
            let longest = (length - position - 2).min(REFERENCE_MAX);
            if out.len() + 4 >= output_max
                && out.len() - usize::from(literals == 0) + 4 >= output_max
            {
                return None;
            }
            // Close the literal run (drop its control byte when empty).
            if literals == 0 {
                out.pop();
            } else {
                out[run_start] = (literals - 1) as u8;
            }
            let mut matched_length = 2;
            loop {
                matched_length += 1;
                if matched_length >= longest
                    || input[reference + matched_length] != input[position + matched_length]
                {
                    break;
                }
            }
            let encoded = matched_length - 2;
            if encoded < 7 {
                out.push(((offset >> 8) + (encoded << 5)) as u8);
            } else {
                out.push(((offset >> 8) + (7 << 5)) as u8);
                out.push((encoded - 7) as u8);
            }
            out.push(offset as u8);
            literals = 0;
            run_start = out.len();
            out.push(0);
            position += encoded + 2;
            if position + 2 >= length {
                break;
            }
            // Hash the last two positions of the match.
            position -= 2;
            hash = first(position);
            hash = (hash << 8) | input[position + 2] as u32;
            table.set(slot(hash), position);
            position += 1;
            hash = (hash << 8) | input[position + 2] as u32;
            table.set(slot(hash), position);
            position += 1;
        } else {
            if out.len() >= output_max {
                return None;
            }
            literals += 1;
            out.push(input[position]);
            position += 1;
            if literals == LITERAL_RUN_MAX {
                out[run_start] = (literals - 1) as u8;
                literals = 0;
                run_start = out.len();
                out.push(0);
            }
        }
    }
    if out.len() + 3 > output_max {
        return None;
    }
    while position < length {
        literals += 1;
        out.push(input[position]);
        position += 1;
        if literals == LITERAL_RUN_MAX {
            out[run_start] = (literals - 1) as u8;
            literals = 0;
            run_start = out.len();
            out.push(0);
        }
    }
    if literals == 0 {
        out.pop();
    } else {
        out[run_start] = (literals - 1) as u8;
    }
    (out.len() <= output_max).then_some(out)
}

/// Decompresses `input` into exactly `length` bytes; `None` when the input is malformed.
pub fn decompress(input: &[u8], length: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(length);
    let mut position = 0;
    while position < input.len() {
        let control = input[position] as usize;
        position += 1;
        if control < 32 {
            let run = control + 1;
            let bytes = input.get(position..position + run)?;
            if out.len() + run > length {
                return None;
            }
            out.extend_from_slice(bytes);
            position += run;
        } else {
            let mut run = control >> 5;
            if run == 7 {
                run += *input.get(position)? as usize;
                position += 1;
            }
            run += 2;
            let back = ((control & 31) << 8) + *input.get(position)? as usize + 1;
            position += 1;
            if back > out.len() || out.len() + run > length {
                return None;
            }
            let start = out.len() - back;
            for index in 0..run {
                let byte = out[start + index];
                out.push(byte);
            }
        }
    }
    (out.len() == length).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) {
        let compressed = compress(input, usize::MAX).expect("compressible");
        assert_eq!(decompress(&compressed, input.len()).as_deref(), Some(input));
    }

    #[test]
    fn round_trips() {
        round_trip(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        round_trip(b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcxyzxyz");
        let mut varied = Vec::new();
        for index in 0..20_000u32 {
            varied.extend_from_slice(format!("{} ", index % 977).as_bytes());
        }
        round_trip(&varied);
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        round_trip(&noise);
    }

    #[test]
    fn matches_redis_output() {
        // DUMP of SET k <"a" x 50> in Redis 7.0 carries this LZF body.
        let input = [b'a'; 50];
        let compressed = compress(&input, 46).expect("compressible");
        assert_eq!(
            compressed,
            vec![0x01, b'a', b'a', 0xe0, 0x25, 0x00, 0x01, b'a', b'a']
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(decompress(&[5, b'a'], 6), None);
        assert_eq!(decompress(&[0xe0, 0x20, 0x00], 50), None);
        assert_eq!(decompress(&[0, b'a'], 2), None);
        assert_eq!(compress(b"ab", 10), None);
    }
}
