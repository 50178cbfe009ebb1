//! Redis's packed blobs as they appear inside RDB values: listpack (read and write), ziplist
//! and zipmap (read only: Redis stopped writing them), intset (read and write).
//!
//! Readers validate every header, length and terminator against the blob's size and return
//! `Err` with a message on the first inconsistency.

use crate::Error;

/// An element of a packed blob: bytes or an integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    Bytes(Vec<u8>),
    Integer(i64),
}

impl Element {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Element::Bytes(bytes) => bytes,
            Element::Integer(value) => itoa::Buffer::new().format(value).as_bytes().to_vec(),
        }
    }
}

fn corrupt(what: &str) -> Error {
    Error::new(format!("corrupt {what}"))
}

fn read_le(bytes: &[u8], at: usize, width: usize, what: &str) -> Result<u64, Error> {
    let slice = bytes.get(at..at + width).ok_or_else(|| corrupt(what))?;
    Ok(slice
        .iter()
        .rev()
        .fold(0u64, |value, &byte| (value << 8) | byte as u64))
}

fn sign_extend(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

// ---------------------------------------------------------------------------------------------
// Listpack.

/// Reads every element of a listpack.
pub fn listpack_elements(blob: &[u8]) -> Result<Vec<Element>, Error> {
    const WHAT: &str = "listpack";
    if blob.len() < 7 {
        return Err(corrupt(WHAT));
    }
    let total = read_le(blob, 0, 4, WHAT)? as usize;
    if total != blob.len() || blob[total - 1] != 0xFF {
        return Err(corrupt(WHAT));
    }
    let declared = read_le(blob, 4, 2, WHAT)? as usize;
    let end = total - 1;
    let mut position = 6;
    let mut elements = Vec::new();
    while position < end {
        let start = position;
        let first = blob[position];
        let (element, body) = if first & 0x80 == 0 {
            (Element::Integer((first & 0x7F) as i64), 1)
        } else if first & 0xC0 == 0x80 {
            let length = (first & 0x3F) as usize;
            let bytes = blob
                .get(position + 1..position + 1 + length)
                .ok_or_else(|| corrupt(WHAT))?;
            (Element::Bytes(bytes.to_vec()), 1 + length)
        } else if first & 0xE0 == 0xC0 {
            let value = (((first & 0x1F) as u64) << 8) | read_le(blob, position + 1, 1, WHAT)?;
            (Element::Integer(sign_extend(value, 13)), 2)
        } else if first & 0xF0 == 0xE0 {
            let length =
                (((first & 0x0F) as usize) << 8) | read_le(blob, position + 1, 1, WHAT)? as usize;
            let bytes = blob
                .get(position + 2..position + 2 + length)
                .ok_or_else(|| corrupt(WHAT))?;
            (Element::Bytes(bytes.to_vec()), 2 + length)
        } else {
            match first {
                0xF0 => {
                    let length = read_le(blob, position + 1, 4, WHAT)? as usize;
                    let bytes = blob
                        .get(position + 5..position.saturating_add(5).saturating_add(length))
                        .ok_or_else(|| corrupt(WHAT))?;
                    (Element::Bytes(bytes.to_vec()), 5 + length)
                }
                0xF1 => (
                    Element::Integer(sign_extend(read_le(blob, position + 1, 2, WHAT)?, 16)),
                    3,
                ),
                0xF2 => (
                    Element::Integer(sign_extend(read_le(blob, position + 1, 3, WHAT)?, 24)),
                    4,
                ),
                0xF3 => (
                    Element::Integer(sign_extend(read_le(blob, position + 1, 4, WHAT)?, 32)),
                    5,
                ),
                0xF4 => (
                    Element::Integer(read_le(blob, position + 1, 8, WHAT)? as i64),
                    9,
                ),
                _ => return Err(corrupt(WHAT)),
            }
        };
        position = start + body;
        let back_length = back_length_size(body);
        if position + back_length > end {
            return Err(corrupt(WHAT));
        }
        let mut encoded = [0u8; 5];
        write_back_length(body, &mut encoded);
        if blob[position..position + back_length] != encoded[..back_length] {
            return Err(corrupt(WHAT));
        }
        position += back_length;
        elements.push(element);
    }
    if declared != 0xFFFF && declared != elements.len() {
        return Err(corrupt(WHAT));
    }
    Ok(elements)
}

fn back_length_size(length: usize) -> usize {
    match length {
        0..=127 => 1,
        128..=16383 => 2,
        16384..=2097151 => 3,
        2097152..=268435455 => 4,
        _ => 5,
    }
}

/// Writes the back-length of an entry of `length` bytes; returns how many bytes it took.
fn write_back_length(length: usize, out: &mut [u8; 5]) -> usize {
    let size = back_length_size(length);
    for index in 0..size {
        let shift = 7 * (size - 1 - index);
        let group = ((length >> shift) & 0x7F) as u8;
        out[index] = if index == 0 { group } else { group | 0x80 };
    }
    size
}

/// Builds a listpack, element by element, as Redis's `lpAppend` encodes them.
#[derive(Default)]
pub struct ListpackWriter {
    body: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the finished listpack would take.
    pub fn total_bytes(&self) -> usize {
        self.body.len() + 7
    }

    /// Appends a string (stored as an integer when it is one's canonical text).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if bytes.len() <= 20 {
            if let Some(value) = store::number::parse_i64(bytes) {
                return self.push_integer(value);
            }
        }
        let start = self.body.len();
        let length = bytes.len();
        if length < 64 {
            self.body.push(0x80 | length as u8);
        } else if length < 4096 {
            self.body.push(0xE0 | (length >> 8) as u8);
            self.body.push(length as u8);
        } else {
            self.body.push(0xF0);
            self.body.extend_from_slice(&(length as u32).to_le_bytes());
        }
        self.body.extend_from_slice(bytes);
        self.finish_entry(start);
    }

    pub fn push_integer(&mut self, value: i64) {
        let start = self.body.len();
        match value {
            0..=127 => self.body.push(value as u8),
            -4096..=4095 => {
                let unsigned = (value as u64) & 0x1FFF;
                self.body.push(0xC0 | (unsigned >> 8) as u8);
                self.body.push(unsigned as u8);
            }
            -32768..=32767 => {
                self.body.push(0xF1);
                self.body.extend_from_slice(&(value as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                self.body.push(0xF2);
                self.body
                    .extend_from_slice(&(value as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                self.body.push(0xF3);
                self.body.extend_from_slice(&(value as i32).to_le_bytes());
            }
            _ => {
                self.body.push(0xF4);
                self.body.extend_from_slice(&value.to_le_bytes());
            }
        }
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let mut encoded = [0u8; 5];
        let size = write_back_length(self.body.len() - start, &mut encoded);
        self.body.extend_from_slice(&encoded[..size]);
        self.count += 1;
    }

    /// The complete listpack.
    pub fn finish(self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(self.body.len() + 7);
        blob.extend_from_slice(&((self.body.len() + 7) as u32).to_le_bytes());
        let count = if self.count < 0xFFFF {
            self.count
        } else {
            0xFFFF
        };
        blob.extend_from_slice(&(count as u16).to_le_bytes());
        blob.extend_from_slice(&self.body);
        blob.push(0xFF);
        blob
    }
}

// ---------------------------------------------------------------------------------------------
// Ziplist (read only).

pub fn ziplist_elements(blob: &[u8]) -> Result<Vec<Element>, Error> {
    const WHAT: &str = "ziplist";
    if blob.len() < 11 {
        return Err(corrupt(WHAT));
    }
    let total = read_le(blob, 0, 4, WHAT)? as usize;
    let tail = read_le(blob, 4, 4, WHAT)? as usize;
    let declared = read_le(blob, 8, 2, WHAT)? as usize;
    if total != blob.len() || blob[total - 1] != 0xFF || tail >= total {
        return Err(corrupt(WHAT));
    }
    let end = total - 1;
    let mut position = 10;
    let mut previous_length = 0usize;
    let mut last_start = 10;
    let mut elements = Vec::new();
    while position < end {
        let start = position;
        let stored_previous = if blob[position] < 254 {
            position += 1;
            blob[start] as usize
        } else if blob[position] == 254 {
            position += 5;
            read_le(blob, start + 1, 4, WHAT)? as usize
        } else {
            return Err(corrupt(WHAT));
        };
        if stored_previous != previous_length {
            return Err(corrupt(WHAT));
        }
        let header = *blob.get(position).ok_or_else(|| corrupt(WHAT))?;
        let (element, size) = match header >> 6 {
            0 => {
                let length = (header & 0x3F) as usize;
                (None, 1 + length)
            }
            1 => {
                let length = (((header & 0x3F) as usize) << 8)
                    | *blob.get(position + 1).ok_or_else(|| corrupt(WHAT))? as usize;
                (None, 2 + length)
            }
            2 => {
                if header != 0x80 {
                    return Err(corrupt(WHAT));
                }
                let slice = blob
                    .get(position + 1..position + 5)
                    .ok_or_else(|| corrupt(WHAT))?;
                let length = u32::from_be_bytes(slice.try_into().expect("4 bytes")) as usize;
                (None, 5usize.saturating_add(length))
            }
            _ => match header {
                0xC0 => (
                    Some(sign_extend(read_le(blob, position + 1, 2, WHAT)?, 16)),
                    3,
                ),
                0xD0 => (
                    Some(sign_extend(read_le(blob, position + 1, 4, WHAT)?, 32)),
                    5,
                ),
                0xE0 => (Some(read_le(blob, position + 1, 8, WHAT)? as i64), 9),
                0xF0 => (
                    Some(sign_extend(read_le(blob, position + 1, 3, WHAT)?, 24)),
                    4,
                ),
                0xFE => (
                    Some(sign_extend(read_le(blob, position + 1, 1, WHAT)?, 8)),
                    2,
                ),
                0xF1..=0xFD => (Some((header & 0x0F) as i64 - 1), 1),
                _ => return Err(corrupt(WHAT)),
            },
        };
        let entry_end = position.saturating_add(size);
        if entry_end > end {
            return Err(corrupt(WHAT));
        }
        let element = match element {
            Some(value) => Element::Integer(value),
            None => {
                let header_bytes = match header >> 6 {
                    0 => 1,
                    1 => 2,
                    _ => 5,
                };
                Element::Bytes(blob[position + header_bytes..entry_end].to_vec())
            }
        };
        elements.push(element);
        previous_length = entry_end - start;
        last_start = start;
        position = entry_end;
    }
    if (!elements.is_empty() && last_start != tail)
        || (declared != 0xFFFF && declared != elements.len())
    {
        return Err(corrupt(WHAT));
    }
    Ok(elements)
}

// ---------------------------------------------------------------------------------------------
// Zipmap (read only): pairs.

pub fn zipmap_pairs(blob: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Error> {
    const WHAT: &str = "zipmap";
    let mut position = 1;
    if blob.is_empty() {
        return Err(corrupt(WHAT));
    }
    let read_length = |position: &mut usize| -> Result<Option<usize>, Error> {
        let first = *blob.get(*position).ok_or_else(|| corrupt(WHAT))?;
        match first {
            0..=253 => {
                *position += 1;
                Ok(Some(first as usize))
            }
            254 => {
                let length = read_le(blob, *position + 1, 4, WHAT)? as usize;
                *position += 5;
                Ok(Some(length))
            }
            255 => Ok(None),
        }
    };
    let mut pairs = Vec::new();
    loop {
        let Some(key_length) = read_length(&mut position)? else {
            break;
        };
        let key = blob
            .get(position..position.saturating_add(key_length))
            .ok_or_else(|| corrupt(WHAT))?
            .to_vec();
        position += key_length;
        let value_length = read_length(&mut position)?.ok_or_else(|| corrupt(WHAT))?;
        let free = *blob.get(position).ok_or_else(|| corrupt(WHAT))? as usize;
        position += 1;
        let value = blob
            .get(position..position.saturating_add(value_length))
            .ok_or_else(|| corrupt(WHAT))?
            .to_vec();
        position += value_length + free;
        pairs.push((key, value));
    }
    if position + 1 != blob.len() {
        return Err(corrupt(WHAT));
    }
    Ok(pairs)
}

// ---------------------------------------------------------------------------------------------
// Intset.

/// Reads an intset's integers (strictly ascending, or an error).
pub fn intset_values(blob: &[u8]) -> Result<Vec<i64>, Error> {
    const WHAT: &str = "intset";
    let width = read_le(blob, 0, 4, WHAT)? as usize;
    let count = read_le(blob, 4, 4, WHAT)? as usize;
    if !matches!(width, 2 | 4 | 8)
        || count.checked_mul(width).map(|bytes| bytes + 8) != Some(blob.len())
    {
        return Err(corrupt(WHAT));
    }
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        let raw = read_le(blob, 8 + index * width, width, WHAT)?;
        let value = sign_extend(raw, (width * 8) as u32);
        if values.last().is_some_and(|&last| last >= value) {
            return Err(corrupt(WHAT));
        }
        values.push(value);
    }
    Ok(values)
}

/// Encodes ascending integers as an intset of the smallest width that holds them all.
pub fn intset_blob(values: &[i64]) -> Vec<u8> {
    let width = values
        .iter()
        .map(|&value| {
            if i16::try_from(value).is_ok() {
                2
            } else if i32::try_from(value).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let mut blob = Vec::with_capacity(8 + values.len() * width);
    blob.extend_from_slice(&(width as u32).to_le_bytes());
    blob.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &value in values {
        blob.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip_matches_redis() {
        let mut writer = ListpackWriter::new();
        for item in [&b"a"[..], b"1", b"-5", b"300"] {
            writer.push_bytes(item);
        }
        let blob = writer.finish();
        // From Redis 7.0's DUMP of RPUSH l a 1 -5 300.
        assert_eq!(
            blob,
            b"\x12\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xdf\xfb\x02\xc1,\x02\xff"
        );
        assert_eq!(
            listpack_elements(&blob).unwrap(),
            vec![
                Element::Bytes(b"a".to_vec()),
                Element::Integer(1),
                Element::Integer(-5),
                Element::Integer(300)
            ]
        );
        let mut big = ListpackWriter::new();
        for value in [i64::MIN, -1_000_000, 70_000, 5_000_000_000] {
            big.push_integer(value);
        }
        big.push_bytes(&[b'x'; 5000]);
        big.push_bytes(&[b'y'; 100]);
        let elements = listpack_elements(&big.finish()).unwrap();
        assert_eq!(elements[0], Element::Integer(i64::MIN));
        assert_eq!(elements[3], Element::Integer(5_000_000_000));
        assert_eq!(elements[4], Element::Bytes(vec![b'x'; 5000]));
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        assert!(listpack_elements(b"").is_err());
        assert!(listpack_elements(b"\x07\x00\x00\x00\x01\x00\xff").is_err());
        assert!(listpack_elements(b"\x09\x00\x00\x00\x01\x00\x85\x01\xff").is_err());
        assert!(ziplist_elements(b"\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff").is_ok());
        assert!(intset_values(b"\x03\x00\x00\x00\x00\x00\x00\x00").is_err());
        assert!(intset_values(&intset_blob(&[1, 2, 70000])).is_ok());
        assert_eq!(
            intset_values(&intset_blob(&[-3, 2, 70000])).unwrap(),
            vec![-3, 2, 70000]
        );
        assert!(zipmap_pairs(b"\x01\x01a\x01\x00b").is_err());
        assert_eq!(
            zipmap_pairs(b"\x01\x01a\x01\x00b\xff").unwrap(),
            vec![(b"a".to_vec(), b"b".to_vec())]
        );
    }
}
