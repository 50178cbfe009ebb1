//! Lists: a memory-compact sequence of byte strings with O(1) push and pop at both ends.
//!
//! # Encodings (as OBJECT ENCODING names them)
//!
//! * `listpack`: a small list is one packed buffer ([`Repr::Packed`]).
//! * `quicklist`: a bigger list is a chain of packed nodes ([`Chain`]), kept in a `VecDeque`
//!   so both ends are O(1) and index access skips whole nodes by their entry counts.
//!
//! The thresholds are Redis 7.2's, passed in as [`Limits`] (`list-max-listpack-size` and
//! `list-compress-depth`): a list is converted to a chain when a write would make its single
//! buffer exceed the node limit, and back to one buffer when, after a removal, the chain is a
//! single packed node at most half the limit (the hysteresis keeps a list at the border from
//! converting on every write). A chain keeps the fill and compression depth it was created
//! with, as Redis's quicklist does.
//!
//! # Packed format
//!
//! A packed buffer is a sequence of entries, each `header, payload, back-length`:
//!
//! | first byte    | entry                                    | header bytes |
//! | ------------- | ---------------------------------------- | ------------ |
//! | `0xxxxxxx`    | integer 0..=127                          | 1            |
//! | `10LLLLLL`    | string of up to 63 bytes                 | 1            |
//! | `110xxxxx` +1 | integer in 13 bits (two's complement)    | 2            |
//! | `1110LLLL` +1 | string of up to 4095 bytes               | 2            |
//! | `0xF0` +4     | string, 32-bit length                    | 5            |
//! | `0xF1` +2     | 16-bit integer                           | 3            |
//! | `0xF2` +3     | 24-bit integer                           | 4            |
//! | `0xF3` +4     | 32-bit integer                           | 5            |
//! | `0xF4` +8     | 64-bit integer                           | 9            |
//!
//! Multi-byte numbers are little-endian. The back-length holds `header + payload` in 7-bit
//! groups read from the entry's last byte backwards (high bit: another group precedes), so an
//! entry can be stepped over in both directions. A value is stored as an integer when its text
//! is the canonical form of a 64-bit integer (Redis's strict syntax), so its text comes back
//! byte for byte. Entry sizes equal those of Redis's listpack, and a buffer's size for the
//! limits is counted as Redis counts a listpack's (`bytes + 7` for its header and terminator,
//! which are not stored here: the count lives beside the buffer), so conversions happen at
//! exactly the same points as in Redis.
//!
//! Buffers grow and shrink by whole allocator size classes (jemalloc's), so they are
//! reallocated only when they cross a class and waste nothing beyond what the allocator would
//! round up anyway: a full node of a size limited list is one 8 KB block.
//!
//! # Chain nodes
//!
//! A node is packed (many entries) or plain (one element too large for a packed node, stored
//! raw). Nodes further than `compress_depth` nodes from both ends are kept compressed with
//! LZ4 ([`lz4_flex`]'s block format: pure Rust, no dependencies, fast to decompress; chosen
//! over an LZF port because it is maintained, fuzzed and as compact on this kind of data). A
//! node is compressed only when it is at least 48 bytes and compression saves at least 8
//! bytes, as Redis does; a node that did not compress is not retried until it changes.
//! Readers decompress a compressed node into a scratch buffer; writers decompress it in place
//! and the node is recompressed if it is still in the compressed zone.
//!
//! Elements of at least the packed threshold (a test knob, DEBUG QUICKLIST-PACKED-THRESHOLD,
//! see [`set_packed_threshold`]) or larger than the node limit go in plain nodes.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::number::parse_i64;

/// One end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LPUSH, LPOP, index 0).
    Left,
    /// The tail (RPUSH, RPOP, index -1).
    Right,
}

impl End {
    /// The keyword Redis uses for this end (`LEFT` / `RIGHT`).
    pub fn keyword(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }
}

/// The direction of a walk over a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From head to tail.
    Forward,
    /// From tail to head.
    Backward,
}

/// Where LINSERT puts a value relative to its pivot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Before,
    After,
}

/// The encoding thresholds: `list-max-listpack-size` and `list-compress-depth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Negative: node size limit (-1..-5 = 4, 8, 16, 32, 64 KB); positive: entries per node.
    pub max_listpack_size: i64,
    /// Nodes further than this from both ends are compressed; 0 disables compression.
    pub compress_depth: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_listpack_size: -2,
            compress_depth: 0,
        }
    }
}

/// Node size limits for negative fills.
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// With a count limit, a multi-entry node never grows past this many bytes.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// What an insertion is assumed to add beyond the element's bytes.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// Bytes Redis counts for a listpack's header and terminator.
const PACK_OVERHEAD: usize = 7;
/// Largest count fill a chain keeps, and smallest size fill.
const FILL_MAX: i64 = (1 << 15) - 1;
const FILL_MIN: i64 = -5;
/// Nodes smaller than this are not compressed.
const COMPRESS_MIN_BYTES: usize = 48;
/// Compression must save at least this much to be kept.
const COMPRESS_MIN_SAVING: usize = 8;

static PACKED_THRESHOLD: AtomicUsize = AtomicUsize::new(0);

/// Sets the size from which elements go in plain nodes (0: the default, derived from the
/// fill). A test knob (DEBUG QUICKLIST-PACKED-THRESHOLD). Refuses sizes near or above 4 GB.
pub fn set_packed_threshold(bytes: u64) -> bool {
    if bytes > (1u64 << 32) - (1 << 20) {
        return false;
    }
    PACKED_THRESHOLD.store(bytes as usize, Ordering::Relaxed);
    true
}

/// (size limit, count limit) of a node for `fill`; `usize::MAX` where there is none.
fn node_limit(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (
            usize::MAX,
            if fill == 0 {
                1
            } else {
                fill.min(u32::MAX as i64) as usize
            },
        )
    } else {
        let level = ((-(fill as i128)) - 1).min(SIZE_LEVELS.len() as i128 - 1) as usize;
        (SIZE_LEVELS[level], usize::MAX)
    }
}

/// Whether a node of `bytes` (counted as Redis counts a listpack) and `count` entries is over
/// the limit for `fill`.
fn exceeds_limit(fill: i64, bytes: usize, count: usize) -> bool {
    let (size_limit, count_limit) = node_limit(fill);
    if size_limit != usize::MAX {
        bytes > size_limit
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > count_limit
    }
}

/// Whether an element of `length` bytes goes in a plain node of its own.
fn is_large(length: usize, fill: i64) -> bool {
    let threshold = PACKED_THRESHOLD.load(Ordering::Relaxed);
    if threshold != 0 {
        return length >= threshold;
    }
    if fill >= 0 {
        length > SIZE_SAFETY_LIMIT
    } else {
        length > node_limit(fill).0
    }
}

// ---------------------------------------------------------------------------------------------
// Values in and out.

/// An element as stored: an integer, or bytes borrowed from the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Integer(i64),
    Bytes(&'a [u8]),
}

impl<'a> Item<'a> {
    /// How a value is stored: as an integer when its text is an integer's canonical form.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        match parse_i64(bytes) {
            Some(integer) => Item::Integer(integer),
            None => Item::Bytes(bytes),
        }
    }

    /// Calls `f` with the element's text.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Item::Integer(integer) => f(itoa::Buffer::new().format(integer).as_bytes()),
            Item::Bytes(bytes) => f(bytes),
        }
    }

    /// The length of the element's text.
    pub fn text_len(self) -> usize {
        match self {
            Item::Integer(integer) => itoa::Buffer::new().format(integer).len(),
            Item::Bytes(bytes) => bytes.len(),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }

    pub fn to_element(self) -> Element {
        match self {
            Item::Integer(integer) => Element::Integer(integer),
            Item::Bytes(bytes) => Element::Bytes(bytes.to_vec()),
        }
    }
}

/// An element taken out of a list (popped or read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    Integer(i64),
    Bytes(Vec<u8>),
}

impl Element {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Item::from_bytes(bytes).to_element()
    }

    pub fn as_item(&self) -> Item<'_> {
        match self {
            Element::Integer(integer) => Item::Integer(*integer),
            Element::Bytes(bytes) => Item::Bytes(bytes),
        }
    }

    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        self.as_item().with_bytes(f)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_item().to_vec()
    }

    /// Bytes Redis counts for this value when deciding a conversion: integers, which Redis
    /// holds as integer objects, count none.
    fn growth_bytes(&self) -> usize {
        match self {
            Element::Integer(_) => 0,
            Element::Bytes(bytes) => bytes.len(),
        }
    }
}

/// A value searched for (LREM, LPOS, LINSERT), compared as Redis compares list entries.
#[derive(Clone, Copy, Debug)]
pub struct Needle<'a> {
    bytes: &'a [u8],
    integer: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Needle {
            bytes,
            integer: parse_i64(bytes),
        }
    }

    #[inline]
    fn matches(&self, item: Item) -> bool {
        match item {
            Item::Integer(integer) => self.integer == Some(integer),
            Item::Bytes(bytes) => bytes == self.bytes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry encoding.

mod entry {
    use super::Item;

    const STRING_32: u8 = 0xF0;
    const INT_16: u8 = 0xF1;
    const INT_24: u8 = 0xF2;
    const INT_32: u8 = 0xF3;
    const INT_64: u8 = 0xF4;

    /// Bytes of the back-length for an entry of `length` header+payload bytes.
    #[inline]
    fn back_len_size(length: usize) -> usize {
        match length {
            0..=127 => 1,
            128..=16383 => 2,
            16384..=2097151 => 3,
            2097152..=268435455 => 4,
            _ => 5,
        }
    }

    /// Header+payload bytes of `item`.
    #[inline]
    fn body_len(item: Item) -> usize {
        match item {
            Item::Integer(value) => match value {
                0..=127 => 1,
                -4096..=4095 => 2,
                -32768..=32767 => 3,
                -8388608..=8388607 => 4,
                -2147483648..=2147483647 => 5,
                _ => 9,
            },
            Item::Bytes(bytes) => {
                bytes.len()
                    + match bytes.len() {
                        0..=63 => 1,
                        64..=4095 => 2,
                        _ => 5,
                    }
            }
        }
    }

    /// Total encoded size of `item`.
    #[inline]
    pub fn encoded_len(item: Item) -> usize {
        let body = body_len(item);
        body + back_len_size(body)
    }

    /// Writes `item` into `out`, which is exactly `encoded_len(item)` long.
    pub fn write(item: Item, out: &mut [u8]) {
        let body = body_len(item);
        match item {
            Item::Integer(value) => match body {
                1 => out[0] = value as u8,
                2 => {
                    let bits = (value as u16) & 0x1FFF;
                    out[0] = 0xC0 | (bits >> 8) as u8;
                    out[1] = bits as u8;
                }
                3 => {
                    out[0] = INT_16;
                    out[1..3].copy_from_slice(&(value as i16).to_le_bytes());
                }
                4 => {
                    out[0] = INT_24;
                    out[1..4].copy_from_slice(&(value as i32).to_le_bytes()[..3]);
                }
                5 => {
                    out[0] = INT_32;
                    out[1..5].copy_from_slice(&(value as i32).to_le_bytes());
                }
                _ => {
                    out[0] = INT_64;
                    out[1..9].copy_from_slice(&value.to_le_bytes());
                }
            },
            Item::Bytes(bytes) => {
                let length = bytes.len();
                let header = match length {
                    0..=63 => {
                        out[0] = 0x80 | length as u8;
                        1
                    }
                    64..=4095 => {
                        out[0] = 0xE0 | (length >> 8) as u8;
                        out[1] = length as u8;
                        2
                    }
                    _ => {
                        out[0] = STRING_32;
                        out[1..5].copy_from_slice(&(length as u32).to_le_bytes());
                        5
                    }
                };
                out[header..header + length].copy_from_slice(bytes);
            }
        }
        let size = back_len_size(body);
        for index in 0..size {
            let shift = 7 * (size - 1 - index);
            let continued = if index > 0 { 0x80 } else { 0 };
            out[body + index] = ((body >> shift) & 0x7F) as u8 | continued;
        }
    }

    /// Appends `item` to `out`.
    pub fn push(item: Item, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + encoded_len(item), 0);
        write(item, &mut out[start..]);
    }

    /// The entry at `offset`: its value and total size.
    #[inline]
    pub fn decode(buffer: &[u8], offset: usize) -> (Item<'_>, usize) {
        let first = buffer[offset];
        let (item, body) = match first {
            0x00..=0x7F => (Item::Integer(first as i64), 1),
            0x80..=0xBF => {
                let length = (first & 0x3F) as usize;
                (
                    Item::Bytes(&buffer[offset + 1..offset + 1 + length]),
                    1 + length,
                )
            }
            0xC0..=0xDF => {
                let bits = (((first & 0x1F) as u16) << 8) | buffer[offset + 1] as u16;
                // Sign-extend 13 bits.
                let value = ((bits << 3) as i16 >> 3) as i64;
                (Item::Integer(value), 2)
            }
            0xE0..=0xEF => {
                let length = (((first & 0x0F) as usize) << 8) | buffer[offset + 1] as usize;
                (
                    Item::Bytes(&buffer[offset + 2..offset + 2 + length]),
                    2 + length,
                )
            }
            STRING_32 => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(&buffer[offset + 1..offset + 5]);
                let length = u32::from_le_bytes(raw) as usize;
                (
                    Item::Bytes(&buffer[offset + 5..offset + 5 + length]),
                    5 + length,
                )
            }
            INT_16 => {
                let mut raw = [0u8; 2];
                raw.copy_from_slice(&buffer[offset + 1..offset + 3]);
                (Item::Integer(i16::from_le_bytes(raw) as i64), 3)
            }
            INT_24 => {
                let raw = [
                    0,
                    buffer[offset + 1],
                    buffer[offset + 2],
                    buffer[offset + 3],
                ];
                (Item::Integer((i32::from_le_bytes(raw) >> 8) as i64), 4)
            }
            INT_32 => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(&buffer[offset + 1..offset + 5]);
                (Item::Integer(i32::from_le_bytes(raw) as i64), 5)
            }
            INT_64 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buffer[offset + 1..offset + 9]);
                (Item::Integer(i64::from_le_bytes(raw)), 9)
            }
            other => panic!("corrupt list entry header {other:#x}"),
        };
        (item, body + back_len_size(body))
    }

    /// Total size of the entry at `offset`.
    #[inline]
    pub fn size_at(buffer: &[u8], offset: usize) -> usize {
        decode(buffer, offset).1
    }

    /// Start of the entry that ends at `end`.
    #[inline]
    pub fn start_before(buffer: &[u8], end: usize) -> usize {
        let mut position = end - 1;
        let mut byte = buffer[position];
        let mut body = (byte & 0x7F) as usize;
        let mut shift = 7;
        while byte & 0x80 != 0 {
            position -= 1;
            byte = buffer[position];
            body |= ((byte & 0x7F) as usize) << shift;
            shift += 7;
        }
        position - body
    }
}

// ---------------------------------------------------------------------------------------------
// Packed buffers.

/// Offset of entry `index` of a packed buffer of `count` entries (`count` gives the end).
fn offset_of(buffer: &[u8], count: usize, index: usize) -> usize {
    debug_assert!(index <= count);
    if index <= count / 2 {
        let mut offset = 0;
        for _ in 0..index {
            offset += entry::size_at(buffer, offset);
        }
        offset
    } else {
        let mut offset = buffer.len();
        for _ in index..count {
            offset = entry::start_before(buffer, offset);
        }
        offset
    }
}

/// The allocation size the allocator would use for `needed` bytes (jemalloc's size classes:
/// multiples of 16 up to 128, then four classes per doubling), so a buffer grown to it wastes
/// nothing and is reallocated only when it crosses a class.
fn allocation_size(needed: usize) -> usize {
    if needed <= 8 {
        return needed.max(1).next_power_of_two();
    }
    if needed <= 128 {
        return (needed + 15) & !15;
    }
    let floor_log = usize::BITS - 1 - (needed - 1).leading_zeros();
    let step = 1usize << (floor_log - 2);
    (needed + step - 1) & !(step - 1)
}

/// Makes room for `additional` more bytes, growing to a whole size class.
fn reserve(buffer: &mut Vec<u8>, additional: usize) {
    let needed = buffer.len() + additional;
    if needed > buffer.capacity() {
        buffer.reserve_exact(allocation_size(needed) - buffer.len());
    }
}

/// Gives back memory once a buffer is at most half full.
fn trim_capacity(buffer: &mut Vec<u8>) {
    if buffer.len() <= buffer.capacity() / 2 {
        buffer.shrink_to(allocation_size(buffer.len()));
    }
}

/// Replaces `range` of `buffer` with `replacement`.
fn splice(buffer: &mut Vec<u8>, range: std::ops::Range<usize>, replacement: &[u8]) {
    let removed = range.end - range.start;
    if replacement.len() > removed {
        let grow = replacement.len() - removed;
        reserve(buffer, grow);
        let old_len = buffer.len();
        buffer.resize(old_len + grow, 0);
        buffer.copy_within(range.end..old_len, range.end + grow);
    } else if replacement.len() < removed {
        let shrink = removed - replacement.len();
        buffer.copy_within(range.end.., range.end - shrink);
        buffer.truncate(buffer.len() - shrink);
        trim_capacity(buffer);
    }
    buffer[range.start..range.start + replacement.len()].copy_from_slice(replacement);
}

/// Inserts the encoding of `item` at `offset` of `buffer`.
fn insert_item(buffer: &mut Vec<u8>, offset: usize, item: Item) {
    let size = entry::encoded_len(item);
    reserve(buffer, size);
    let old_len = buffer.len();
    buffer.resize(old_len + size, 0);
    buffer.copy_within(offset..old_len, offset + size);
    entry::write(item, &mut buffer[offset..offset + size]);
}

/// Replaces the entry at `offset` with `item`.
fn replace_item(buffer: &mut Vec<u8>, offset: usize, item: Item) {
    let old = entry::size_at(buffer, offset);
    let mut encoded = Vec::with_capacity(entry::encoded_len(item));
    entry::push(item, &mut encoded);
    splice(buffer, offset..offset + old, &encoded);
}

/// Removes the entry at `end` of a non-empty packed buffer, passing it to `f` first.
fn pop_packed<R>(data: &mut Vec<u8>, end: End, f: impl FnOnce(Item) -> R) -> R {
    let (start, size) = match end {
        End::Left => (0, entry::size_at(data, 0)),
        End::Right => {
            let start = entry::start_before(data, data.len());
            (start, data.len() - start)
        }
    };
    let result = f(entry::decode(data, start).0);
    splice(data, start..start + size, &[]);
    result
}

/// `bytes` with a capacity of one size class.
fn fitted(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.capacity() > allocation_size(bytes.len()) {
        bytes.shrink_to(allocation_size(bytes.len()));
    }
    bytes
}

/// A packed buffer holding `items`.
fn pack<'a>(items: impl IntoIterator<Item = Item<'a>>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for item in items {
        entry::push(item, &mut bytes);
    }
    fitted(bytes)
}

/// Walks the entries of a packed buffer from entry `start`, calling `f` with each entry's
/// index and value until it breaks.
fn walk_packed(
    buffer: &[u8],
    count: usize,
    start: usize,
    direction: Direction,
    f: &mut dyn FnMut(usize, Item) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if start >= count {
        return ControlFlow::Continue(());
    }
    let mut offset = offset_of(buffer, count, start);
    match direction {
        Direction::Forward => {
            for index in start..count {
                let (item, size) = entry::decode(buffer, offset);
                f(index, item)?;
                offset += size;
            }
        }
        Direction::Backward => {
            let mut index = start;
            loop {
                let (item, _) = entry::decode(buffer, offset);
                f(index, item)?;
                if index == 0 {
                    break;
                }
                index -= 1;
                offset = entry::start_before(buffer, offset);
            }
        }
    }
    ControlFlow::Continue(())
}

/// Removes from a packed buffer the entries for which `remove` says so, returning how many
/// it removed; `None` when it removed none (the buffer is untouched).
fn filter_packed(
    buffer: &[u8],
    count: usize,
    remove: &mut dyn FnMut(usize, Item) -> bool,
) -> Option<(Vec<u8>, usize)> {
    let mut kept: Option<Vec<u8>> = None;
    let mut removed = 0;
    let mut offset = 0;
    for index in 0..count {
        let (item, size) = entry::decode(buffer, offset);
        if remove(index, item) {
            if kept.is_none() {
                let mut bytes = Vec::with_capacity(buffer.len() - size);
                bytes.extend_from_slice(&buffer[..offset]);
                kept = Some(bytes);
            }
            removed += 1;
        } else if let Some(bytes) = kept.as_mut() {
            bytes.extend_from_slice(&buffer[offset..offset + size]);
        }
        offset += size;
    }
    kept.map(|bytes| (fitted(bytes), removed))
}

// ---------------------------------------------------------------------------------------------
// Chain nodes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    /// Entries in the packed format.
    Packed,
    /// One element's raw bytes.
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
    Raw,
    /// Raw because compression did not pay; not retried until the node changes.
    Incompressible,
    /// `data` is the raw length (u32, little-endian) then an LZ4 block.
    Compressed,
}

#[derive(Clone, Debug)]
struct Node {
    data: Vec<u8>,
    count: u32,
    kind: NodeKind,
    state: NodeState,
}

impl Node {
    fn packed(data: Vec<u8>, count: usize) -> Self {
        Node {
            data,
            count: count as u32,
            kind: NodeKind::Packed,
            state: NodeState::Raw,
        }
    }

    fn plain(bytes: Vec<u8>) -> Self {
        Node {
            data: bytes,
            count: 1,
            kind: NodeKind::Plain,
            state: NodeState::Raw,
        }
    }

    fn is_plain(&self) -> bool {
        self.kind == NodeKind::Plain
    }

    fn is_compressed(&self) -> bool {
        self.state == NodeState::Compressed
    }

    fn raw_len(&self) -> usize {
        if self.is_compressed() {
            let mut raw = [0u8; 4];
            raw.copy_from_slice(&self.data[..4]);
            u32::from_le_bytes(raw) as usize
        } else {
            self.data.len()
        }
    }

    /// Size counted against the limits (as Redis counts a listpack).
    fn limit_bytes(&self) -> usize {
        self.raw_len() + PACK_OVERHEAD
    }

    /// The node's raw bytes, decompressed into `scratch` when needed.
    fn raw<'a>(&'a self, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        if self.is_compressed() {
            let raw_len = self.raw_len();
            scratch.clear();
            scratch.resize(raw_len, 0);
            let written = lz4_flex::block::decompress_into(&self.data[4..], scratch)
                .expect("list node decompresses");
            assert_eq!(written, raw_len, "list node decompressed size");
            scratch
        } else {
            &self.data
        }
    }

    fn decompress(&mut self) {
        if self.is_compressed() {
            let mut scratch = Vec::with_capacity(allocation_size(self.raw_len()));
            self.raw(&mut scratch);
            self.data = scratch;
        }
        self.state = NodeState::Raw;
    }

    /// Raw bytes for a change: decompressed in place, marked changed.
    fn raw_mut(&mut self) -> &mut Vec<u8> {
        self.decompress();
        &mut self.data
    }

    fn compress(&mut self) {
        if self.state != NodeState::Raw {
            return;
        }
        let raw_len = self.data.len();
        if raw_len < COMPRESS_MIN_BYTES || raw_len > u32::MAX as usize {
            self.state = NodeState::Incompressible;
            return;
        }
        let bound = lz4_flex::block::get_maximum_output_size(raw_len);
        let mut compressed = vec![0u8; 4 + bound];
        compressed[..4].copy_from_slice(&(raw_len as u32).to_le_bytes());
        match lz4_flex::block::compress_into(&self.data, &mut compressed[4..]) {
            Ok(size) if 4 + size + COMPRESS_MIN_SAVING <= raw_len => {
                compressed.truncate(4 + size);
                compressed.shrink_to_fit();
                self.data = compressed;
                self.state = NodeState::Compressed;
            }
            _ => self.state = NodeState::Incompressible,
        }
    }

    /// Walks this node's entries (see [`walk_packed`]).
    fn walk(
        &self,
        scratch: &mut Vec<u8>,
        start: usize,
        direction: Direction,
        f: &mut dyn FnMut(usize, Item) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let raw = self.raw(scratch);
        match self.kind {
            NodeKind::Plain => {
                if start == 0 {
                    f(0, Item::Bytes(raw))?;
                }
                ControlFlow::Continue(())
            }
            NodeKind::Packed => walk_packed(raw, self.count as usize, start, direction, f),
        }
    }

    fn get(&self, index: usize) -> Element {
        let mut scratch = Vec::new();
        let raw = self.raw(&mut scratch);
        match self.kind {
            NodeKind::Plain => Element::Bytes(raw.to_vec()),
            NodeKind::Packed => {
                let offset = offset_of(raw, self.count as usize, index);
                entry::decode(raw, offset).0.to_element()
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }
}

// ---------------------------------------------------------------------------------------------
// The chain (quicklist).

#[derive(Clone, Debug)]
struct Chain {
    nodes: VecDeque<Node>,
    len: usize,
    /// The fill this chain was created with, clamped as Redis clamps it.
    fill: i64,
    compress_depth: usize,
}

impl Chain {
    fn new(limits: &Limits) -> Self {
        Chain {
            nodes: VecDeque::new(),
            len: 0,
            fill: limits.max_listpack_size.clamp(FILL_MIN, FILL_MAX),
            compress_depth: limits.compress_depth.clamp(0, u16::MAX as i64) as usize,
        }
    }

    /// Whether a packed `node` may take one more element of `length` bytes.
    fn allows_insert(&self, node: &Node, length: usize) -> bool {
        if node.is_plain() || is_large(length, self.fill) {
            return false;
        }
        let new_bytes = node.limit_bytes() + length + SIZE_ESTIMATE_OVERHEAD;
        !exceeds_limit(self.fill, new_bytes, node.count as usize + 1)
    }

    /// Whether two packed nodes fit in one.
    fn allows_merge(&self, a: &Node, b: &Node) -> bool {
        if a.is_plain() || b.is_plain() {
            return false;
        }
        let bytes = a.raw_len() + b.raw_len() + PACK_OVERHEAD;
        !exceeds_limit(self.fill, bytes, (a.count + b.count) as usize)
    }

    /// The capacity to give a new node pushed at an end of a chain of at least two nodes, when
    /// the fill limits nodes by size: the whole node. A shorter chain (a list just past the
    /// listpack limit) keeps growing its nodes by size class, so small lists waste nothing.
    fn end_node_bytes_max(&self) -> Option<usize> {
        let (size_limit, _) = node_limit(self.fill);
        if self.nodes.len() < 2 || size_limit == usize::MAX {
            return None;
        }
        Some(allocation_size(size_limit - PACK_OVERHEAD))
    }

    /// Reserves node slots with a growth of a quarter, so the deque's slack stays small.
    fn reserve_node(&mut self) {
        if self.nodes.len() == self.nodes.capacity() {
            let grow = (self.nodes.len() / 4).max(4);
            self.nodes.reserve_exact(grow);
        }
    }

    fn insert_node(&mut self, index: usize, node: Node) {
        self.reserve_node();
        self.nodes.insert(index, node);
    }

    fn wants_compressed(&self, index: usize) -> bool {
        let depth = self.compress_depth;
        depth > 0 && index >= depth && index + depth < self.nodes.len()
    }

    fn settle_node(&mut self, index: usize) {
        let compressed = self.wants_compressed(index);
        let node = &mut self.nodes[index];
        if compressed {
            node.compress();
        } else if node.is_compressed() {
            node.decompress();
        }
    }

    /// Restores the compression invariant near both ends after nodes were added or removed
    /// (`added`: how many nodes the change inserted).
    fn settle(&mut self, added: usize) {
        if self.compress_depth == 0 {
            return;
        }
        let count = self.nodes.len();
        let window = (self.compress_depth + 1 + added).min(count);
        for index in 0..window {
            self.settle_node(index);
        }
        for index in count.saturating_sub(window).max(window)..count {
            self.settle_node(index);
        }
    }

    fn settle_all(&mut self) {
        if self.compress_depth == 0 {
            return;
        }
        for index in 0..self.nodes.len() {
            self.settle_node(index);
        }
    }

    fn push(&mut self, end: End, item: Item, length: usize) {
        let node_index = match end {
            End::Left => 0,
            End::Right => self.nodes.len().wrapping_sub(1),
        };
        let fits = self
            .nodes
            .get(node_index)
            .is_some_and(|node| self.allows_insert(node, length));
        if fits {
            let node = &mut self.nodes[node_index];
            let data = node.raw_mut();
            let offset = match end {
                End::Left => 0,
                End::Right => data.len(),
            };
            insert_item(data, offset, item);
            node.count += 1;
            self.len += 1;
            self.settle(0);
            return;
        }
        let node = if is_large(length, self.fill) {
            Node::plain(item.to_vec())
        } else if let Some(bytes_max) = self.end_node_bytes_max() {
            // A list growing at an end fills the new node: allocating the full node at once
            // spares the reallocations through every size class on the way (and the holes
            // they leave in the allocator's slabs).
            let mut data = Vec::with_capacity(bytes_max);
            entry::push(item, &mut data);
            Node::packed(data, 1)
        } else {
            Node::packed(pack([item]), 1)
        };
        self.reserve_node();
        match end {
            End::Left => self.nodes.push_front(node),
            End::Right => self.nodes.push_back(node),
        }
        self.len += 1;
        self.settle(1);
    }

    /// Removes the element at `end`, passing it to `f` first.
    fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Item) -> R) -> Option<R> {
        let node_index = match end {
            End::Left => 0,
            End::Right => self.nodes.len().checked_sub(1)?,
        };
        let node = self.nodes.get_mut(node_index)?;
        let result = if node.is_plain() || node.count == 1 {
            let mut node = match end {
                End::Left => self.nodes.pop_front(),
                End::Right => self.nodes.pop_back(),
            }
            .expect("node just seen");
            node.decompress();
            match node.kind {
                NodeKind::Plain => f(Item::Bytes(&node.data)),
                NodeKind::Packed => f(entry::decode(&node.data, 0).0),
            }
        } else {
            let result = pop_packed(node.raw_mut(), end, f);
            node.count -= 1;
            result
        };
        self.len -= 1;
        self.settle(0);
        Some(result)
    }

    /// (node, entry within node) of element `index`, walking from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        assert!(index < self.len, "list index in range");
        if index < self.len / 2 {
            let mut remaining = index;
            for (node_index, node) in self.nodes.iter().enumerate() {
                let count = node.count as usize;
                if remaining < count {
                    return (node_index, remaining);
                }
                remaining -= count;
            }
        } else {
            let mut remaining = self.len - 1 - index;
            for (node_index, node) in self.nodes.iter().enumerate().rev() {
                let count = node.count as usize;
                if remaining < count {
                    return (node_index, count - 1 - remaining);
                }
                remaining -= count;
            }
        }
        unreachable!("node counts add up to the length")
    }

    fn walk(
        &self,
        start: usize,
        direction: Direction,
        f: &mut dyn FnMut(usize, Item) -> ControlFlow<()>,
    ) {
        if start >= self.len {
            return;
        }
        let (mut node_index, mut entry_index) = self.locate(start);
        let mut scratch = Vec::new();
        let mut base = start - entry_index;
        loop {
            let node = &self.nodes[node_index];
            let mut shifted = |index: usize, item: Item| f(base + index, item);
            if node
                .walk(&mut scratch, entry_index, direction, &mut shifted)
                .is_break()
            {
                return;
            }
            match direction {
                Direction::Forward => {
                    base += node.count as usize;
                    node_index += 1;
                    if node_index == self.nodes.len() {
                        return;
                    }
                    entry_index = 0;
                }
                Direction::Backward => {
                    if node_index == 0 {
                        return;
                    }
                    node_index -= 1;
                    let count = self.nodes[node_index].count as usize;
                    base -= count;
                    entry_index = count - 1;
                }
            }
        }
    }

    /// Removes `count` elements from element `start`.
    fn delete_range(&mut self, start: usize, count: usize) {
        if count == 0 {
            return;
        }
        assert!(start + count <= self.len, "range within the list");
        let (mut node_index, mut entry_index) = self.locate(start);
        let mut remaining = count;
        let mut touched: [Option<usize>; 2] = [None, None];
        while remaining > 0 {
            let node = &mut self.nodes[node_index];
            let node_count = node.count as usize;
            if entry_index == 0 && remaining >= node_count {
                self.nodes.remove(node_index);
                remaining -= node_count;
                continue;
            }
            let take = remaining.min(node_count - entry_index);
            let data = node.raw_mut();
            let from = offset_of(data, node_count, entry_index);
            let mut to = from;
            for _ in 0..take {
                to += entry::size_at(data, to);
            }
            splice(data, from..to, &[]);
            node.count -= take as u32;
            remaining -= take;
            if touched[0].is_none() {
                touched[0] = Some(node_index);
            } else {
                touched[1] = Some(node_index);
            }
            node_index += 1;
            entry_index = 0;
        }
        self.len -= count;
        for index in touched.into_iter().flatten() {
            if index < self.nodes.len() {
                self.settle_node(index);
            }
        }
        self.settle(0);
    }

    /// Inserts `item` so that it becomes entry `entry_index` of node `node_index` (for a
    /// plain node: 0 before it, 1 after it).
    fn insert_at(&mut self, node_index: usize, entry_index: usize, item: Item) {
        let length = item.text_len();
        self.len += 1;
        let large = is_large(length, self.fill);
        if !large && self.allows_insert(&self.nodes[node_index], length) {
            let node = &mut self.nodes[node_index];
            let count = node.count as usize;
            let data = node.raw_mut();
            let offset = offset_of(data, count, entry_index);
            insert_item(data, offset, item);
            node.count += 1;
            self.settle_node(node_index);
            return;
        }
        let node_count = self.nodes[node_index].count as usize;
        if !large {
            // At a node's edge, a neighbour with room takes it.
            if entry_index == node_count
                && node_index + 1 < self.nodes.len()
                && self.allows_insert(&self.nodes[node_index + 1], length)
            {
                let next = &mut self.nodes[node_index + 1];
                insert_item(next.raw_mut(), 0, item);
                next.count += 1;
                self.settle_node(node_index + 1);
                return;
            }
            if entry_index == 0
                && node_index > 0
                && self.allows_insert(&self.nodes[node_index - 1], length)
            {
                let previous = &mut self.nodes[node_index - 1];
                let data = previous.raw_mut();
                let end = data.len();
                insert_item(data, end, item);
                previous.count += 1;
                self.settle_node(node_index - 1);
                return;
            }
        }
        let new_node = if large {
            Node::plain(item.to_vec())
        } else {
            Node::packed(pack([item]), 1)
        };
        if self.nodes[node_index].is_plain() || entry_index == 0 || entry_index == node_count {
            let at = if entry_index == 0 {
                node_index
            } else {
                node_index + 1
            };
            self.insert_node(at, new_node);
            // The new node and the one it was placed beside (which may have been changed).
            self.settle_node(node_index);
            self.settle_node(node_index + 1);
            self.settle(1);
            return;
        }
        // Split the packed node around the new element.
        let node = &mut self.nodes[node_index];
        let data = node.raw_mut();
        let offset = offset_of(data, node_count, entry_index);
        let right = Node::packed(fitted(data[offset..].to_vec()), node_count - entry_index);
        data.truncate(offset);
        trim_capacity(data);
        node.count = entry_index as u32;
        let mut added = 2;
        if !large && self.allows_insert(&self.nodes[node_index], length) {
            let node = &mut self.nodes[node_index];
            let data = node.raw_mut();
            let end = data.len();
            insert_item(data, end, item);
            node.count += 1;
            self.insert_node(node_index + 1, right);
            added = 1;
        } else if !large && self.allows_insert(&right, length) {
            let mut right = right;
            insert_item(right.raw_mut(), 0, item);
            right.count += 1;
            self.insert_node(node_index + 1, right);
            added = 1;
        } else {
            self.insert_node(node_index + 1, new_node);
            self.insert_node(node_index + 2, right);
        }
        for index in node_index..=node_index + added {
            self.settle_node(index);
        }
        self.settle(added);
    }

    /// Replaces element `index` with `item`.
    fn replace(&mut self, index: usize, item: Item) {
        let (node_index, entry_index) = self.locate(index);
        let length = item.text_len();
        let large = is_large(length, self.fill);
        let node = &mut self.nodes[node_index];
        if node.is_plain() {
            if large {
                *node = Node::plain(item.to_vec());
                self.settle_node(node_index);
                return;
            }
            // As Redis: the element goes after the plain node (at the head of the next node
            // when it has room), then the plain node goes.
            self.nodes.remove(node_index);
            let next_has_room = self
                .nodes
                .get(node_index)
                .is_some_and(|next| self.allows_insert(next, length));
            if next_has_room {
                let next = &mut self.nodes[node_index];
                insert_item(next.raw_mut(), 0, item);
                next.count += 1;
            } else {
                self.insert_node(node_index, Node::packed(pack([item]), 1));
            }
            self.settle_node(node_index);
            self.settle(0);
            return;
        }
        if large {
            // Remove the old entry, then insert the element as a plain node in its place.
            if node.count == 1 {
                *node = Node::plain(item.to_vec());
                self.settle_node(node_index);
                return;
            }
            let count = node.count as usize;
            let data = node.raw_mut();
            let offset = offset_of(data, count, entry_index);
            let size = entry::size_at(data, offset);
            splice(data, offset..offset + size, &[]);
            node.count -= 1;
            self.len -= 1;
            self.insert_at(node_index, entry_index, item);
            return;
        }
        let count = node.count as usize;
        let data = node.raw_mut();
        let offset = offset_of(data, count, entry_index);
        replace_item(data, offset, item);
        if exceeds_limit(self.fill, node.limit_bytes(), count) && count > 1 {
            self.split_to_fit(node_index);
        } else {
            self.settle_node(node_index);
        }
    }

    /// Splits an over-full packed node into nodes within the limit.
    fn split_to_fit(&mut self, node_index: usize) {
        let node = self.nodes.remove(node_index).expect("node exists");
        let mut scratch = Vec::new();
        let raw = node.raw(&mut scratch);
        let mut parts: Vec<Node> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        let mut current_count = 0;
        let mut offset = 0;
        for _ in 0..node.count {
            let size = entry::size_at(raw, offset);
            if current_count > 0
                && exceeds_limit(
                    self.fill,
                    current.len() + size + PACK_OVERHEAD,
                    current_count + 1,
                )
            {
                parts.push(Node::packed(
                    fitted(std::mem::take(&mut current)),
                    current_count,
                ));
                current_count = 0;
            }
            current.extend_from_slice(&raw[offset..offset + size]);
            current_count += 1;
            offset += size;
        }
        parts.push(Node::packed(fitted(current), current_count));
        let added = parts.len() - 1;
        for (position, part) in parts.into_iter().enumerate() {
            self.insert_node(node_index + position, part);
        }
        for index in node_index..=node_index + added {
            self.settle_node(index);
        }
        self.settle(added);
    }

    /// Removes up to `limit` (0: all) elements matching `needle`, walking in `direction`.
    fn remove_matching(&mut self, needle: &Needle, limit: usize, direction: Direction) -> usize {
        let mut removed_total = 0;
        let mut scratch = Vec::new();
        // Forward: the next node to visit; backward: one past it.
        let mut cursor = match direction {
            Direction::Forward => 0,
            Direction::Backward => self.nodes.len(),
        };
        loop {
            if limit != 0 && removed_total >= limit {
                break;
            }
            let node_index = match direction {
                Direction::Forward if cursor < self.nodes.len() => cursor,
                Direction::Backward if cursor > 0 => cursor - 1,
                _ => break,
            };
            let wanted = if limit == 0 {
                usize::MAX
            } else {
                limit - removed_total
            };
            let node = &self.nodes[node_index];
            let count = node.count as usize;
            let raw = node.raw(&mut scratch);
            let emptied = if node.is_plain() {
                let matched = needle.matches(Item::Bytes(raw));
                removed_total += matched as usize;
                matched
            } else {
                let mut matches: Vec<usize> = Vec::new();
                let start = match direction {
                    Direction::Forward => 0,
                    Direction::Backward => count - 1,
                };
                let _ = walk_packed(raw, count, start, direction, &mut |index, item| {
                    if needle.matches(item) {
                        matches.push(index);
                        if matches.len() == wanted {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
                matches.sort_unstable();
                match filter_packed(raw, count, &mut |index, _| {
                    matches.binary_search(&index).is_ok()
                }) {
                    None => false,
                    Some((data, removed)) => {
                        removed_total += removed;
                        let node = &mut self.nodes[node_index];
                        node.data = data;
                        node.count = (count - removed) as u32;
                        node.state = NodeState::Raw;
                        removed == count
                    }
                }
            };
            if emptied {
                self.nodes.remove(node_index);
                if direction == Direction::Backward {
                    cursor -= 1;
                }
            } else {
                match direction {
                    Direction::Forward => cursor += 1,
                    Direction::Backward => cursor -= 1,
                }
            }
        }
        self.len -= removed_total;
        if removed_total > 0 {
            self.merge_small_nodes();
            self.settle_all();
        }
        removed_total
    }

    /// Merges neighbouring packed nodes that fit together (after removals in the middle).
    fn merge_small_nodes(&mut self) {
        let mut index = 0;
        while index + 1 < self.nodes.len() {
            if self.allows_merge(&self.nodes[index], &self.nodes[index + 1]) {
                let next = self.nodes.remove(index + 1).expect("next node");
                let mut scratch = Vec::new();
                let next_raw = next.raw(&mut scratch);
                let node = &mut self.nodes[index];
                let end = node.raw_len();
                splice(node.raw_mut(), end..end, next_raw);
                node.count += next.count;
            } else {
                index += 1;
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Chain>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(Node::heap_bytes).sum::<usize>()
    }
}

// ---------------------------------------------------------------------------------------------
// The list.

#[derive(Clone, Debug)]
enum Repr {
    /// One packed buffer ("listpack").
    Packed { data: Vec<u8>, count: u32 },
    /// A chain of nodes ("quicklist").
    Chain(Box<Chain>),
}

/// A list value.
#[derive(Clone, Debug)]
pub struct List {
    repr: Repr,
}

impl Default for List {
    fn default() -> Self {
        Self::new()
    }
}

/// The inclusive range `start..=stop` (negative counting from the end) of a list of `len`
/// elements as LRANGE and LTRIM read it: `(first, count)`, or `None` when empty.
pub fn normalize_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let mut stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, (stop - start + 1) as usize))
}

impl List {
    /// An empty list, in the small encoding.
    pub fn new() -> Self {
        List {
            repr: Repr::Packed {
                data: Vec::new(),
                count: 0,
            },
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed { count, .. } => *count as usize,
            Repr::Chain(chain) => chain.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING replies with.
    /// For a quicklist: (nodes, fill, compress depth), as DEBUG OBJECT reports them
    /// (`ql_nodes`, `ql_listpack_max`, `ql_compressed`).
    pub fn quicklist_shape(&self) -> Option<(usize, i64, usize)> {
        match &self.repr {
            Repr::Packed { .. } => None,
            Repr::Chain(chain) => Some((chain.nodes.len(), chain.fill, chain.compress_depth)),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            Repr::Packed { .. } => "listpack",
            Repr::Chain(_) => "quicklist",
        }
    }

    /// Heap bytes owned beyond the boxed list itself.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<List>()
            + match &self.repr {
                Repr::Packed { data, .. } => data.capacity(),
                Repr::Chain(chain) => chain.heap_bytes(),
            }
    }

    /// Converts to a chain if adding `count` values of `bytes` would put the single buffer over
    /// the limit (Redis's conversion on growth).
    fn grow_check(&mut self, bytes: usize, count: usize, limits: &Limits) {
        if let Repr::Packed { data, count: len } = &mut self.repr {
            let new_bytes = data.len() + PACK_OVERHEAD + bytes;
            if exceeds_limit(limits.max_listpack_size, new_bytes, *len as usize + count) {
                let mut chain = Chain::new(limits);
                if *len > 0 {
                    chain.reserve_node();
                    chain
                        .nodes
                        .push_back(Node::packed(std::mem::take(data), *len as usize));
                    chain.len = *len as usize;
                }
                self.repr = Repr::Chain(Box::new(chain));
            }
        }
    }

    /// Converts a chain of one packed node at most half the limit back to a single buffer
    /// (Redis's conversion on shrinking).
    fn shrink_check(&mut self, limits: &Limits) {
        let Repr::Chain(chain) = &mut self.repr else {
            return;
        };
        if chain.nodes.len() != 1 || chain.nodes[0].is_plain() {
            return;
        }
        let (size_limit, count_limit) = node_limit(limits.max_listpack_size);
        let node = &chain.nodes[0];
        if node.limit_bytes() > size_limit / 2 || node.count as usize > count_limit / 2 {
            return;
        }
        let mut node = chain.nodes.pop_front().expect("one node");
        node.decompress();
        self.repr = Repr::Packed {
            data: node.data,
            count: node.count,
        };
    }

    /// Pushes `values` one after the other at `end` (LPUSH a b c leaves c first).
    pub fn push_values(&mut self, end: End, values: &[&[u8]], limits: &Limits) {
        let bytes = values.iter().map(|value| value.len()).sum();
        self.grow_check(bytes, values.len(), limits);
        for value in values {
            self.push_item(end, Item::from_bytes(value));
        }
    }

    /// Pushes one element taken from a list (LMOVE's destination).
    pub fn push_element(&mut self, end: End, element: &Element, limits: &Limits) {
        self.grow_check(element.growth_bytes(), 1, limits);
        self.push_item(end, element.as_item());
    }

    fn push_item(&mut self, end: End, item: Item) {
        match &mut self.repr {
            Repr::Packed { data, count } => {
                let offset = match end {
                    End::Left => 0,
                    End::Right => data.len(),
                };
                insert_item(data, offset, item);
                *count += 1;
            }
            Repr::Chain(chain) => chain.push(end, item, item.text_len()),
        }
    }

    /// Pops one element without any encoding conversion.
    fn pop_item_with<R>(&mut self, end: End, f: impl FnOnce(Item) -> R) -> Option<R> {
        match &mut self.repr {
            Repr::Packed { data, count } => {
                if *count == 0 {
                    return None;
                }
                *count -= 1;
                Some(pop_packed(data, end, f))
            }
            Repr::Chain(chain) => chain.pop_with(end, f),
        }
    }

    /// Pops one element from `end`, passing it to `f` (no copy is made).
    pub fn pop_with<R>(
        &mut self,
        end: End,
        limits: &Limits,
        f: impl FnOnce(Item) -> R,
    ) -> Option<R> {
        let result = self.pop_item_with(end, f)?;
        if !self.is_empty() {
            self.shrink_check(limits);
        }
        Some(result)
    }

    /// Pops one element from `end`.
    pub fn pop(&mut self, end: End, limits: &Limits) -> Option<Element> {
        self.pop_with(end, limits, |item| item.to_element())
    }

    /// Pops up to `count` elements from `end`, calling `f` with each in popping order.
    /// Returns how many it popped.
    pub fn pop_many(
        &mut self,
        end: End,
        count: usize,
        limits: &Limits,
        mut f: impl FnMut(Item),
    ) -> usize {
        let len = self.len();
        let taken = count.min(len);
        if taken == 0 {
            return 0;
        }
        let (start, direction) = match end {
            End::Left => (0, Direction::Forward),
            End::Right => (len - 1, Direction::Backward),
        };
        let mut seen = 0;
        self.walk(start, direction, |_, item| {
            f(item);
            seen += 1;
            if seen == taken {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let first = match end {
            End::Left => 0,
            End::Right => len - taken,
        };
        self.delete_range(first, taken);
        if !self.is_empty() {
            self.shrink_check(limits);
        }
        taken
    }

    /// Moves one element from `from` to `to` of this same list (LMOVE with one key).
    pub fn rotate(&mut self, from: End, to: End, limits: &Limits) -> Option<Element> {
        let element = self.pop_item_with(from, |item| item.to_element())?;
        self.push_element(to, &element, limits);
        self.shrink_check(limits);
        Some(element)
    }

    /// The element at `index` (negative: from the end).
    pub fn get(&self, index: i64) -> Option<Element> {
        let index = self.resolve(index)?;
        match &self.repr {
            Repr::Packed { data, count } => {
                let offset = offset_of(data, *count as usize, index);
                Some(entry::decode(data, offset).0.to_element())
            }
            Repr::Chain(chain) => {
                let (node_index, entry_index) = chain.locate(index);
                Some(chain.nodes[node_index].get(entry_index))
            }
        }
    }

    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let index = if index < 0 { index + len } else { index };
        (0..len).contains(&index).then_some(index as usize)
    }

    /// Replaces the element at `index` (negative: from the end). False when out of range.
    pub fn set(&mut self, index: i64, value: &[u8], limits: &Limits) -> bool {
        let Some(index) = self.resolve(index) else {
            return false;
        };
        self.grow_check(value.len(), 1, limits);
        let item = Item::from_bytes(value);
        match &mut self.repr {
            Repr::Packed { data, count } => {
                let offset = offset_of(data, *count as usize, index);
                replace_item(data, offset, item);
            }
            Repr::Chain(chain) => chain.replace(index, item),
        }
        self.shrink_check(limits);
        true
    }

    /// Inserts `value` before or after the first element equal to `pivot`. Returns whether
    /// the pivot was found. (Like Redis, the list may be converted even when it was not.)
    pub fn insert(
        &mut self,
        position: Position,
        pivot: &[u8],
        value: &[u8],
        limits: &Limits,
    ) -> bool {
        self.grow_check(value.len(), 1, limits);
        let needle = Needle::new(pivot);
        let item = Item::from_bytes(value);
        match &mut self.repr {
            Repr::Packed { data, count } => {
                let mut found = None;
                let mut offset = 0;
                for _ in 0..*count {
                    let (entry, size) = entry::decode(data, offset);
                    if needle.matches(entry) {
                        found = Some(match position {
                            Position::Before => offset,
                            Position::After => offset + size,
                        });
                        break;
                    }
                    offset += size;
                }
                let Some(at) = found else {
                    return false;
                };
                insert_item(data, at, item);
                *count += 1;
                true
            }
            Repr::Chain(chain) => {
                let mut found = None;
                chain.walk(0, Direction::Forward, &mut |index, entry| {
                    if needle.matches(entry) {
                        found = Some(index);
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                let Some(index) = found else {
                    return false;
                };
                let (node_index, entry_index) = chain.locate(index);
                let entry_index = match position {
                    Position::Before => entry_index,
                    Position::After => entry_index + 1,
                };
                chain.insert_at(node_index, entry_index, item);
                true
            }
        }
    }

    /// Walks the elements from `start` in `direction`, calling `f` with each element's index
    /// and value until it breaks.
    pub fn walk(
        &self,
        start: usize,
        direction: Direction,
        mut f: impl FnMut(usize, Item) -> ControlFlow<()>,
    ) {
        match &self.repr {
            Repr::Packed { data, count } => {
                let _ = walk_packed(data, *count as usize, start, direction, &mut f);
            }
            Repr::Chain(chain) => chain.walk(start, direction, &mut f),
        }
    }

    /// Calls `f` with the `count` elements from `start`, in order.
    pub fn for_each_in(&self, start: usize, count: usize, mut f: impl FnMut(Item)) {
        if count == 0 {
            return;
        }
        let mut seen = 0;
        self.walk(start, Direction::Forward, |_, item| {
            f(item);
            seen += 1;
            if seen == count {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }

    /// Every element, owned (tests, small lists).
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_in(0, self.len(), |item| out.push(item.to_vec()));
        out
    }

    /// Removes `count` elements from element `start`, without conversion.
    fn delete_range(&mut self, start: usize, count: usize) {
        if count == 0 {
            return;
        }
        match &mut self.repr {
            Repr::Packed { data, count: len } => {
                let from = offset_of(data, *len as usize, start);
                let mut to = from;
                for _ in 0..count {
                    to += entry::size_at(data, to);
                }
                splice(data, from..to, &[]);
                *len -= count as u32;
            }
            Repr::Chain(chain) => chain.delete_range(start, count),
        }
    }

    /// Keeps only `start..=stop` (LTRIM's indexes). Returns how many elements it removed.
    pub fn trim(&mut self, start: i64, stop: i64, limits: &Limits) -> usize {
        let len = self.len();
        let (left, right) = match normalize_range(start, stop, len) {
            None => (len, 0),
            Some((first, count)) => (first, len - first - count),
        };
        self.delete_range(len - right, right);
        self.delete_range(0, left);
        if !self.is_empty() {
            self.shrink_check(limits);
        }
        left + right
    }

    /// Removes elements equal to `value` (LREM): `count` > 0 the first `count` from the head,
    /// < 0 the first `-count` from the tail, 0 all. Returns how many it removed.
    pub fn remove(&mut self, value: &[u8], count: i64, limits: &Limits) -> usize {
        let needle = Needle::new(value);
        let direction = if count < 0 {
            Direction::Backward
        } else {
            Direction::Forward
        };
        let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let removed = match &mut self.repr {
            Repr::Packed { data, count: len } => {
                let total = *len as usize;
                let mut matched = 0usize;
                let removal: Vec<usize> = {
                    let mut indexes = Vec::new();
                    let start = match direction {
                        Direction::Forward => 0,
                        Direction::Backward => total.saturating_sub(1),
                    };
                    let _ = walk_packed(data, total, start, direction, &mut |index, item| {
                        if needle.matches(item) {
                            indexes.push(index);
                            matched += 1;
                            if limit != 0 && matched == limit {
                                return ControlFlow::Break(());
                            }
                        }
                        ControlFlow::Continue(())
                    });
                    indexes.sort_unstable();
                    indexes
                };
                if removal.is_empty() {
                    return 0;
                }
                let (kept, removed) = filter_packed(data, total, &mut |index, _| {
                    removal.binary_search(&index).is_ok()
                })
                .expect("matches are removed");
                *data = kept;
                *len -= removed as u32;
                removed
            }
            Repr::Chain(chain) => chain.remove_matching(&needle, limit, direction),
        };
        if removed > 0 && !self.is_empty() {
            self.shrink_check(limits);
        }
        removed
    }

    /// LPOS: indexes of elements equal to `value`. `rank` (non-zero) picks the first match to
    /// report (negative: searching from the tail); `count` how many to report (0: all);
    /// `maxlen` how many elements to compare at most (0: all).
    pub fn positions(&self, value: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        assert!(rank != 0, "LPOS rank is non-zero");
        let needle = Needle::new(value);
        let len = self.len();
        let (start, direction) = if rank > 0 {
            (0, Direction::Forward)
        } else {
            (len.saturating_sub(1), Direction::Backward)
        };
        let skip = rank.unsigned_abs() - 1;
        let mut matches: u64 = 0;
        let mut compared = 0usize;
        let mut found = Vec::new();
        self.walk(start, direction, |index, item| {
            if maxlen != 0 && compared == maxlen {
                return ControlFlow::Break(());
            }
            compared += 1;
            if needle.matches(item) {
                matches += 1;
                if matches > skip {
                    found.push(index);
                    if count != 0 && found.len() == count {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn limits(fill: i64, depth: i64) -> Limits {
        Limits {
            max_listpack_size: fill,
            compress_depth: depth,
        }
    }

    fn bytes_of(list: &List) -> Vec<Vec<u8>> {
        list.to_vec()
    }

    fn from(values: &[&str], limits: &Limits) -> List {
        let mut list = List::new();
        for value in values {
            list.push_values(End::Right, &[value.as_bytes()], limits);
        }
        list
    }

    fn strings(list: &List) -> Vec<String> {
        bytes_of(list)
            .into_iter()
            .map(|bytes| String::from_utf8(bytes).unwrap())
            .collect()
    }

    /// Checks the structure's invariants.
    fn check(list: &List) {
        match &list.repr {
            Repr::Packed { data, count } => {
                let mut offset = 0;
                for _ in 0..*count {
                    offset += entry::size_at(data, offset);
                }
                assert_eq!(offset, data.len());
            }
            Repr::Chain(chain) => {
                let mut total = 0;
                for (index, node) in chain.nodes.iter().enumerate() {
                    assert!(node.count > 0, "no empty nodes");
                    let mut scratch = Vec::new();
                    let raw = node.raw(&mut scratch);
                    if node.is_plain() {
                        assert_eq!(node.count, 1);
                    } else {
                        let mut offset = 0;
                        for _ in 0..node.count {
                            offset += entry::size_at(raw, offset);
                        }
                        assert_eq!(offset, raw.len());
                    }
                    if node.is_compressed() {
                        assert!(chain.wants_compressed(index), "compressed at {index}");
                    } else if chain.wants_compressed(index) {
                        assert!(
                            node.state == NodeState::Incompressible,
                            "node {index} of {} should be compressed",
                            chain.nodes.len()
                        );
                    }
                    total += node.count as usize;
                }
                assert_eq!(total, chain.len);
            }
        }
    }

    #[test]
    fn entries_round_trip_with_listpack_sizes() {
        let cases: &[(&[u8], usize)] = &[
            (b"0", 2),
            (b"127", 2),
            (b"128", 3),
            (b"-1", 3),
            (b"4095", 3),
            (b"-4096", 3),
            (b"4096", 4),
            (b"32767", 4),
            (b"-32768", 4),
            (b"32768", 5),
            (b"8388607", 5),
            (b"-8388608", 5),
            (b"8388608", 6),
            (b"2147483647", 6),
            (b"-2147483648", 6),
            (b"2147483648", 10),
            (b"9223372036854775807", 10),
            (b"-9223372036854775808", 10),
            (b"", 2),
            (b"a", 3),
            (b"01", 4),
            (b"-0", 4),
            (b"+1", 4),
            (b"9223372036854775808", 21),
        ];
        for (value, size) in cases {
            let item = Item::from_bytes(value);
            assert_eq!(entry::encoded_len(item), *size, "{:?}", value);
            let mut out = Vec::new();
            entry::push(item, &mut out);
            assert_eq!(out.len(), *size);
            let (decoded, total) = entry::decode(&out, 0);
            assert_eq!(total, *size);
            assert_eq!(decoded.to_vec(), *value);
            assert_eq!(entry::start_before(&out, out.len()), 0);
        }
        for length in [63usize, 64, 126, 127, 128, 4095, 4096, 16380, 16384, 70000] {
            let value = vec![b'x'; length];
            let mut out = vec![0u8; 3];
            entry::push(Item::Bytes(&value), &mut out);
            let (decoded, total) = entry::decode(&out, 3);
            assert_eq!(decoded, Item::Bytes(&value[..]));
            assert_eq!(total, out.len() - 3);
            assert_eq!(entry::start_before(&out, out.len()), 3, "{length}");
        }
    }

    #[test]
    fn push_pop_both_ends() {
        let limits = Limits::default();
        let mut list = List::new();
        list.push_values(End::Left, &[b"a", b"b", b"c"], &limits);
        assert_eq!(strings(&list), ["c", "b", "a"]);
        list.push_values(End::Right, &[b"1", b"2"], &limits);
        assert_eq!(strings(&list), ["c", "b", "a", "1", "2"]);
        assert_eq!(
            list.pop(End::Left, &limits),
            Some(Element::Bytes(b"c".to_vec()))
        );
        assert_eq!(list.pop(End::Right, &limits), Some(Element::Integer(2)));
        assert_eq!(list.len(), 3);
        assert_eq!(list.get(-1), Some(Element::Integer(1)));
        assert_eq!(list.get(3), None);
        assert_eq!(list.get(-4), None);
        assert_eq!(list.encoding_name(), "listpack");
    }

    #[test]
    fn converts_on_count_limit_and_back_below_half() {
        let limits = limits(4, 0);
        let mut list = from(&["a", "b", "c", "d"], &limits);
        assert_eq!(list.encoding_name(), "listpack");
        list.push_values(End::Right, &[b"e"], &limits);
        assert_eq!(list.encoding_name(), "quicklist");
        check(&list);
        // 5 elements over 2 nodes; down to one node of 4 is not at most half: stays.
        list.pop(End::Right, &limits);
        assert_eq!(list.encoding_name(), "quicklist");
        list.pop(End::Right, &limits);
        assert_eq!(list.encoding_name(), "quicklist");
        list.pop(End::Right, &limits);
        assert_eq!(list.encoding_name(), "listpack");
        assert_eq!(strings(&list), ["a", "b"]);
    }

    #[test]
    fn converts_on_size_limit() {
        let limits = limits(-1, 0);
        let big = "x".repeat(5000);
        let mut list = from(&["a", "b", "c"], &limits);
        list.push_values(End::Right, &[big.as_bytes()], &limits);
        assert_eq!(list.encoding_name(), "quicklist");
        check(&list);
        list.pop(End::Right, &limits);
        assert_eq!(list.encoding_name(), "listpack");

        // The Tcl suite's listpack -> quicklist cases.
        for (fill, large) in [(3, "hello".to_string()), (-1, "x".repeat(8192))] {
            let limits = Limits {
                max_listpack_size: fill,
                compress_depth: 0,
            };
            let mut list = from(&["a", "b", "c"], &limits);
            assert!(list.insert(Position::After, b"b", large.as_bytes(), &limits));
            assert_eq!(list.encoding_name(), "quicklist");
            let mut list = from(&["a", "b", "c"], &limits);
            assert!(list.set(0, large.as_bytes(), &limits));
            assert_eq!(list.encoding_name(), "quicklist");
            assert_eq!(list.get(0).unwrap().to_vec(), large.as_bytes());
        }
    }

    #[test]
    fn quicklist_to_listpack_on_removals() {
        let three = limits(3, 0);
        let mut list = from(&["a", "b", "c", "d"], &three);
        assert_eq!(list.encoding_name(), "quicklist");
        let mut popped = Vec::new();
        assert_eq!(
            list.pop_many(End::Right, 3, &three, |item| popped.push(item.to_vec())),
            3
        );
        assert_eq!(popped, [b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(list.encoding_name(), "listpack");

        let mut list = from(&["a", "a", "a", "d"], &three);
        assert_eq!(list.remove(b"a", 3, &three), 3);
        assert_eq!(list.encoding_name(), "listpack");
        assert_eq!(strings(&list), ["d"]);

        let mut list = from(&["a", "b", "c", "d"], &three);
        assert_eq!(list.trim(1, 1, &three), 3);
        assert_eq!(list.encoding_name(), "listpack");
        assert_eq!(strings(&list), ["b"]);

        let one_kb = limits(-1, 0);
        let large = "x".repeat(8192);
        let mut list = from(&["a", "b", "c", &large], &one_kb);
        assert_eq!(list.encoding_name(), "quicklist");
        list.pop(End::Right, &one_kb);
        assert_eq!(list.encoding_name(), "listpack");

        let mut list = from(&["a", &large], &one_kb);
        assert_eq!(list.remove(large.as_bytes(), 1, &one_kb), 1);
        assert_eq!(list.encoding_name(), "listpack");

        let mut list = from(&["a", "b", &large], &one_kb);
        list.trim(0, 1, &one_kb);
        assert_eq!(list.encoding_name(), "listpack");

        let mut list = from(&[&large, "a", "b"], &one_kb);
        list.pop_many(End::Right, 2, &one_kb, |_| {});
        assert_eq!(list.encoding_name(), "quicklist");
        assert!(list.set(-1, b"c", &one_kb));
        assert_eq!(list.encoding_name(), "listpack");
        assert_eq!(strings(&list), ["c"]);
    }

    #[test]
    fn plain_nodes_and_packed_threshold() {
        let limits = limits(-2, 0);
        let large = vec![b'z'; 9000];
        let mut list = from(&["a", "b"], &limits);
        list.push_values(End::Left, &[&large], &limits);
        assert_eq!(list.encoding_name(), "quicklist");
        if let Repr::Chain(chain) = &list.repr {
            assert!(chain.nodes[0].is_plain());
        }
        assert_eq!(list.get(0).unwrap().to_vec(), large);
        assert!(list.insert(Position::Before, b"b", &large, &limits));
        assert_eq!(list.len(), 4);
        assert_eq!(list.get(2).unwrap().to_vec(), large);
        assert!(list.set(2, b"small", &limits));
        assert!(list.set(1, &large, &limits));
        check(&list);
        let values = bytes_of(&list);
        assert_eq!(values[0], large);
        assert_eq!(values[1], large);
        assert_eq!(values[2], b"small");
        assert_eq!(values[3], b"b");
        assert_eq!(list.positions(&large, 1, 0, 0), vec![0, 1]);
        assert_eq!(list.remove(&large, 0, &limits), 2);
        assert_eq!(strings(&list), ["small", "b"]);
        assert_eq!(list.encoding_name(), "listpack");
    }

    #[test]
    fn compression_keeps_the_ends_raw() {
        let limits = limits(4, 1);
        let mut list = List::new();
        for index in 0..200 {
            let value = format!("value-{index:04}-{}", "p".repeat(40));
            list.push_values(End::Right, &[value.as_bytes()], &limits);
            check(&list);
        }
        if let Repr::Chain(chain) = &list.repr {
            assert!(!chain.nodes[0].is_compressed());
            assert!(!chain.nodes[chain.nodes.len() - 1].is_compressed());
            assert!(chain.nodes[1].is_compressed());
        } else {
            panic!("a chain");
        }
        let value = list.get(100).unwrap().to_vec();
        assert!(value.starts_with(b"value-0100-"));
        assert!(list.insert(Position::After, &value, b"inserted", &limits));
        check(&list);
        assert_eq!(list.get(101).unwrap().to_vec(), b"inserted");
        assert!(list.set(50, b"changed", &limits));
        check(&list);
        assert_eq!(list.trim(10, -10, &limits), 19);
        check(&list);
        assert_eq!(list.len(), 182);
    }

    /// The model's view of LPOS.
    fn model_positions(
        model: &VecDeque<Vec<u8>>,
        value: &[u8],
        rank: i64,
        count: usize,
        maxlen: usize,
    ) -> Vec<usize> {
        let indexes: Vec<usize> = if rank > 0 {
            (0..model.len()).collect()
        } else {
            (0..model.len()).rev().collect()
        };
        let limit = if maxlen == 0 {
            indexes.len()
        } else {
            maxlen.min(indexes.len())
        };
        let matching: Vec<usize> = indexes[..limit]
            .iter()
            .copied()
            .filter(|&index| model[index] == value)
            .skip(rank.unsigned_abs() as usize - 1)
            .collect();
        if count == 0 {
            matching
        } else {
            matching.into_iter().take(count).collect()
        }
    }

    fn random_value(rng: &mut SmallRng) -> Vec<u8> {
        match rng.random_range(0..10) {
            0 => rng.random_range(-200i64..200).to_string().into_bytes(),
            1 => rng.random::<i64>().to_string().into_bytes(),
            2 => vec![b'L'; rng.random_range(60..300)],
            3 => vec![b'H'; rng.random_range(4000..9000)],
            4 => format!("0{}", rng.random_range(0..10)).into_bytes(),
            _ => format!("v{}", rng.random_range(0..30)).into_bytes(),
        }
    }

    fn run_random(seed: u64, steps: usize, fills: &[i64], depths: &[i64]) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut list = List::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..steps {
            let limits = Limits {
                max_listpack_size: fills[rng.random_range(0..fills.len())],
                compress_depth: depths[rng.random_range(0..depths.len())],
            };
            let end = if rng.random_bool(0.5) {
                End::Left
            } else {
                End::Right
            };
            let operation = rng.random_range(0..14);
            match operation {
                0..=3 => {
                    let values: Vec<Vec<u8>> = (0..rng.random_range(1..8))
                        .map(|_| random_value(&mut rng))
                        .collect();
                    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                    list.push_values(end, &refs, &limits);
                    for value in values {
                        match end {
                            End::Left => model.push_front(value),
                            End::Right => model.push_back(value),
                        }
                    }
                }
                4 => {
                    let popped = list.pop(end, &limits).map(|element| element.to_vec());
                    let expected = match end {
                        End::Left => model.pop_front(),
                        End::Right => model.pop_back(),
                    };
                    assert_eq!(popped, expected, "step {step}");
                }
                5 => {
                    let count = rng.random_range(0..20);
                    let mut popped = Vec::new();
                    list.pop_many(end, count, &limits, |item| popped.push(item.to_vec()));
                    let mut expected = Vec::new();
                    for _ in 0..count {
                        let value = match end {
                            End::Left => model.pop_front(),
                            End::Right => model.pop_back(),
                        };
                        if let Some(value) = value {
                            expected.push(value);
                        }
                    }
                    assert_eq!(popped, expected, "step {step}");
                }
                6 => {
                    let index = rng.random_range(-(model.len() as i64) - 2..model.len() as i64 + 2);
                    let resolved = if index < 0 {
                        index + model.len() as i64
                    } else {
                        index
                    };
                    let expected = (0..model.len() as i64)
                        .contains(&resolved)
                        .then(|| model[resolved as usize].clone());
                    assert_eq!(list.get(index).map(|e| e.to_vec()), expected, "step {step}");
                }
                7 => {
                    let index = rng.random_range(-(model.len() as i64) - 2..model.len() as i64 + 2);
                    let resolved = if index < 0 {
                        index + model.len() as i64
                    } else {
                        index
                    };
                    let value = random_value(&mut rng);
                    let ok = list.set(index, &value, &limits);
                    let in_range = (0..model.len() as i64).contains(&resolved);
                    assert_eq!(ok, in_range);
                    if in_range {
                        model[resolved as usize] = value;
                    }
                }
                8 => {
                    let pivot = random_value(&mut rng);
                    let value = random_value(&mut rng);
                    let position = if rng.random_bool(0.5) {
                        Position::Before
                    } else {
                        Position::After
                    };
                    let found = list.insert(position, &pivot, &value, &limits);
                    let at = model.iter().position(|element| *element == pivot);
                    assert_eq!(found, at.is_some());
                    if let Some(at) = at {
                        let at = match position {
                            Position::Before => at,
                            Position::After => at + 1,
                        };
                        model.insert(at, value);
                    }
                }
                9 => {
                    let value = random_value(&mut rng);
                    let count = rng.random_range(-3i64..4);
                    let removed = list.remove(&value, count, &limits);
                    let mut expected = 0;
                    let limit = count.unsigned_abs() as usize;
                    if count >= 0 {
                        let mut index = 0;
                        while index < model.len() {
                            if model[index] == value && (limit == 0 || expected < limit) {
                                model.remove(index);
                                expected += 1;
                            } else {
                                index += 1;
                            }
                        }
                    } else {
                        let mut index = model.len();
                        while index > 0 {
                            index -= 1;
                            if model[index] == value && expected < limit {
                                model.remove(index);
                                expected += 1;
                            }
                        }
                    }
                    assert_eq!(removed, expected, "step {step}");
                }
                10 => {
                    let len = model.len() as i64;
                    let start = rng.random_range(-len - 3..len + 3);
                    let stop = rng.random_range(-len - 3..len + 3);
                    list.trim(start, stop, &limits);
                    match normalize_range(start, stop, model.len()) {
                        None => model.clear(),
                        Some((first, count)) => {
                            model.truncate(first + count);
                            model.drain(..first);
                        }
                    }
                }
                11 => {
                    let value = random_value(&mut rng);
                    let mut rank = rng.random_range(-3i64..4);
                    if rank == 0 {
                        rank = 1;
                    }
                    let count = rng.random_range(0..4);
                    let maxlen = rng.random_range(0..(model.len() + 2));
                    assert_eq!(
                        list.positions(&value, rank, count, maxlen),
                        model_positions(&model, &value, rank, count, maxlen),
                        "step {step}"
                    );
                }
                12 => {
                    let to = if rng.random_bool(0.5) {
                        End::Left
                    } else {
                        End::Right
                    };
                    let moved = list
                        .rotate(end, to, &limits)
                        .map(|element| element.to_vec());
                    let expected = match end {
                        End::Left => model.pop_front(),
                        End::Right => model.pop_back(),
                    };
                    if let Some(value) = &expected {
                        match to {
                            End::Left => model.push_front(value.clone()),
                            End::Right => model.push_back(value.clone()),
                        }
                    }
                    assert_eq!(moved, expected);
                }
                _ => {
                    let len = model.len() as i64;
                    let start = rng.random_range(-len - 3..len + 3);
                    let stop = rng.random_range(-len - 3..len + 3);
                    let mut got = Vec::new();
                    if let Some((first, count)) = normalize_range(start, stop, list.len()) {
                        list.for_each_in(first, count, |item| got.push(item.to_vec()));
                    }
                    let expected: Vec<Vec<u8>> = match normalize_range(start, stop, model.len()) {
                        None => Vec::new(),
                        Some((first, count)) => {
                            model.iter().skip(first).take(count).cloned().collect()
                        }
                    };
                    assert_eq!(got, expected, "step {step}");
                }
            }
            assert_eq!(list.len(), model.len(), "step {step}");
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&list)));
            assert!(
                checked.is_ok(),
                "seed {seed} step {step} operation {operation}"
            );
            if step % 64 == 0 {
                assert_eq!(bytes_of(&list), Vec::from(model.clone()), "step {step}");
                let mut backward = Vec::new();
                if !list.is_empty() {
                    list.walk(list.len() - 1, Direction::Backward, |_, item| {
                        backward.push(item.to_vec());
                        ControlFlow::Continue(())
                    });
                }
                backward.reverse();
                assert_eq!(backward, Vec::from(model.clone()), "step {step}");
            }
            if model.len() > 3000 {
                list = List::new();
                model.clear();
            }
        }
        assert_eq!(bytes_of(&list), Vec::from(model));
    }

    #[test]
    fn randomized_against_a_model() {
        let seeds: u64 = std::env::var("LIST_TEST_SEEDS")
            .ok()
            .and_then(|seeds| seeds.parse().ok())
            .unwrap_or(6);
        for seed in 0..seeds {
            run_random(seed, 4000, &[-2], &[0]);
            run_random(100_000 + seed, 3000, &[3, 5, -1], &[0, 1, 2]);
            run_random(200_000 + seed, 3000, &[1, 2, 128, -5], &[1]);
        }
    }

    #[test]
    fn big_list_memory_is_compact() {
        let limits = Limits::default();
        let mut list = List::new();
        let values: Vec<Vec<u8>> = (0..100_000)
            .map(|index| format!("item:{index:011}").into_bytes())
            .collect();
        for chunk in values.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            list.push_values(End::Right, &refs, &limits);
        }
        assert_eq!(list.len(), 100_000);
        // 18 bytes an entry as in Redis's listpack, plus per-node overhead.
        let per_element = list.heap_bytes() as f64 / 100_000.0;
        assert!(per_element < 18.3, "{per_element}");
        assert_eq!(list.get(54321).unwrap().to_vec(), b"item:00000054321");
        assert_eq!(list.positions(b"item:00000099999", -1, 1, 0), vec![99_999]);
    }
}
