//! Streams: append-only logs of field/value entries keyed by 128-bit IDs, with consumer groups.
//!
//! Layout. Entries live in packed blocks (`Block`): one byte buffer holding many entries, each
//! encoded relative to the block's first ("master") entry, as Redis's listpacks do: the master's
//! field names are written once in the block's header, and an entry with the same field names
//! only stores its values; its ID is stored as the difference in milliseconds from the block's
//! key plus its sequence number, both as varints. A block is closed when it reaches
//! `stream-node-max-entries` entries or `stream-node-max-bytes` bytes. Blocks are indexed by
//! their first ID in a `BTreeMap`, so appends are O(1) amortised and seeks by ID O(log n).
//! Deleted entries are flagged in place (Redis's tombstones); a block whose entries are all
//! deleted is dropped.
//!
//! Consumer groups keep their last-delivered ID, their logical read counter (`entries_read`,
//! Redis 7), a pending entries list (PEL) ordered by ID, and their consumers, each with its own
//! set of pending IDs and its seen/active times (Redis 7.2).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::small_bytes::SmallBytes;

/// An entry ID: milliseconds and sequence number, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The smallest ID greater than this one.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The greatest ID smaller than this one.
    pub fn previous(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// Parses `ms` or `ms-seq` (strict unsigned decimals). A missing sequence is `missing_seq`.
    pub fn parse(text: &[u8], missing_seq: u64) -> Option<StreamId> {
        match text.iter().position(|&byte| byte == b'-') {
            None => Some(StreamId::new(parse_u64(text)?, missing_seq)),
            Some(dash) => Some(StreamId::new(
                parse_u64(&text[..dash])?,
                parse_u64(&text[dash + 1..])?,
            )),
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        let mut text = IdText::default();
        text.format(self).to_vec()
    }
}

/// Room to format a stream ID (`<ms>-<seq>`, at most 41 bytes) without allocating.
pub struct IdText {
    buffer: [u8; 41],
}

impl Default for IdText {
    fn default() -> Self {
        IdText { buffer: [0; 41] }
    }
}

impl IdText {
    /// The text of `id`, in this buffer.
    pub fn format(&mut self, id: StreamId) -> &[u8] {
        let mut number = itoa::Buffer::new();
        let ms = number.format(id.ms).as_bytes();
        self.buffer[..ms.len()].copy_from_slice(ms);
        let mut length = ms.len();
        self.buffer[length] = b'-';
        length += 1;
        let seq = number.format(id.seq).as_bytes();
        self.buffer[length..length + seq.len()].copy_from_slice(seq);
        length += seq.len();
        &self.buffer[..length]
    }
}

#[cfg(test)]
mod id_text_tests {
    use super::*;

    #[test]
    fn formats_as_display_does() {
        for id in [
            StreamId::new(0, 0),
            StreamId::new(1, 2),
            StreamId::new(u64::MAX, u64::MAX),
        ] {
            assert_eq!(IdText::default().format(id), id.to_string().as_bytes());
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.ms, self.seq)
    }
}

/// A strict unsigned decimal (no sign, no spaces), as Redis's `string2ull`.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// An entry read out of a stream: its ID and its fields and values, interleaved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<Vec<u8>>,
}

/// Block size limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 is unlimited).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

const FLAG_DELETED: u8 = 1;
const FLAG_SAME_FIELDS: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(data: &[u8], position: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = data[*position];
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
        shift += 7;
    }
}

fn get_bytes<'a>(data: &'a [u8], position: &mut usize) -> &'a [u8] {
    let length = get_varint(data, position) as usize;
    let bytes = &data[*position..*position + length];
    *position += length;
    bytes
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One decoded entry of a block, borrowing its bytes.
struct RawEntry<'a> {
    id: StreamId,
    deleted: bool,
    flag_offset: usize,
    fields: Vec<&'a [u8]>,
}

impl RawEntry<'_> {
    fn to_entry(&self) -> StreamEntry {
        StreamEntry {
            id: self.id,
            fields: self.fields.iter().map(|field| field.to_vec()).collect(),
        }
    }
}

/// A packed run of consecutive entries.
#[derive(Clone, Debug)]
struct Block {
    /// Header (master field names), then the entries.
    data: Vec<u8>,
    /// Entries written, deleted included.
    total: u16,
    /// Entries not deleted.
    live: u16,
}

impl Block {
    fn new(fields: &[&[u8]]) -> Self {
        let mut data = Vec::with_capacity(64);
        put_varint(&mut data, (fields.len() / 2) as u64);
        for pair in fields.chunks(2) {
            put_bytes(&mut data, pair[0]);
        }
        Block {
            data,
            total: 0,
            live: 0,
        }
    }

    fn master_fields(&self) -> (Vec<&[u8]>, usize) {
        let mut position = 0;
        let count = get_varint(&self.data, &mut position) as usize;
        let fields = (0..count)
            .map(|_| get_bytes(&self.data, &mut position))
            .collect();
        (fields, position)
    }

    /// Encodes an entry into `out` (without appending it).
    fn encode(&self, master: StreamId, id: StreamId, fields: &[&[u8]], out: &mut Vec<u8>) {
        let (master_fields, _) = self.master_fields();
        let same = master_fields.len() * 2 == fields.len()
            && master_fields
                .iter()
                .zip(fields.chunks(2))
                .all(|(master_field, pair)| *master_field == pair[0]);
        out.push(if same { FLAG_SAME_FIELDS } else { 0 });
        put_varint(out, id.ms - master.ms);
        put_varint(out, id.seq);
        if same {
            for pair in fields.chunks(2) {
                put_bytes(out, pair[1]);
            }
        } else {
            put_varint(out, (fields.len() / 2) as u64);
            for field in fields {
                put_bytes(out, field);
            }
        }
    }

    fn decode(&self, master: StreamId) -> Vec<RawEntry<'_>> {
        let mut entries = Vec::with_capacity(self.total as usize);
        entries.extend(self.entries(master));
        entries
    }

    /// The block's entries in order, decoded one at a time (a range read that needs the first
    /// few decodes only those).
    fn entries(&self, master: StreamId) -> impl Iterator<Item = RawEntry<'_>> {
        let (master_fields, mut position) = self.master_fields();
        let data = &self.data;
        std::iter::from_fn(move || {
            if position >= data.len() {
                return None;
            }
            let flag_offset = position;
            let flags = data[position];
            position += 1;
            let ms = master.ms + get_varint(data, &mut position);
            let seq = get_varint(data, &mut position);
            let fields = if flags & FLAG_SAME_FIELDS != 0 {
                let mut fields = Vec::with_capacity(master_fields.len() * 2);
                for master_field in &master_fields {
                    fields.push(*master_field);
                    fields.push(get_bytes(data, &mut position));
                }
                fields
            } else {
                let count = get_varint(data, &mut position) as usize;
                let mut fields = Vec::with_capacity(count.min(MAX_PREALLOCATED_FIELDS) * 2);
                for _ in 0..count * 2 {
                    fields.push(get_bytes(data, &mut position));
                }
                fields
            };
            Some(RawEntry {
                id: StreamId::new(ms, seq),
                deleted: flags & FLAG_DELETED != 0,
                flag_offset,
                fields,
            })
        })
    }

    fn last_id(&self, master: StreamId) -> StreamId {
        self.decode(master).last().map_or(master, |entry| entry.id)
    }
}

/// Fields reserved up front for an entry whose own field count is read from the block.
const MAX_PREALLOCATED_FIELDS: usize = 64;

/// How XADD / XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    MaxLen(u64),
    MinId(StreamId),
}

/// An entry delivered to a consumer and not acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    pub consumer: SmallBytes,
    pub delivery_time_ms: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    /// Last attempted interaction (read, claim).
    pub seen_time_ms: u64,
    /// Last successful interaction; `None` if never.
    pub active_time_ms: Option<u64>,
    pub pending: BTreeSet<StreamId>,
}

/// Redis's `SCG_INVALID_ENTRIES_READ`: the read counter is unknown.
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Logical read counter, or [`ENTRIES_READ_UNKNOWN`].
    pub entries_read: i64,
    pub pending: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<SmallBytes, Consumer>,
}

impl ConsumerGroup {
    fn new(last_id: StreamId, entries_read: i64) -> Self {
        ConsumerGroup {
            last_id,
            entries_read,
            pending: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer, created if missing (returns whether it was created).
    pub fn consumer_mut(&mut self, name: &[u8], now_ms: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let consumer = self
            .consumers
            .entry(SmallBytes::new(name))
            .or_insert_with(|| Consumer {
                seen_time_ms: now_ms,
                active_time_ms: None,
                pending: BTreeSet::new(),
            });
        (consumer, created)
    }

    /// Creates a consumer; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        self.consumer_mut(name, now_ms).1
    }

    /// Deletes a consumer and its pending entries; the number of pending entries it had, or
    /// `None` if it did not exist.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pending.remove(id);
        }
        Some(consumer.pending.len())
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn acknowledge(&mut self, id: StreamId) -> bool {
        let Some(entry) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(consumer) = self.consumers.get_mut(&*entry.consumer) {
            consumer.pending.remove(&id);
        }
        true
    }

    /// Records a delivery of `id` to `consumer` (which must exist) at `now_ms`: a new pending
    /// entry starts with a count of 0 (the caller sets it); an entry owned by another consumer
    /// changes hands.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now_ms: u64) -> &mut PendingEntry {
        let previous_owner = self
            .pending
            .get(&id)
            .filter(|entry| &*entry.consumer != consumer)
            .map(|entry| entry.consumer.clone());
        if let Some(owner) = previous_owner {
            if let Some(owner) = self.consumers.get_mut(&*owner) {
                owner.pending.remove(&id);
            }
        }
        self.consumers
            .get_mut(consumer)
            .expect("the consumer exists")
            .pending
            .insert(id);
        let entry = self.pending.entry(id).or_insert_with(|| PendingEntry {
            consumer: SmallBytes::new(consumer),
            delivery_time_ms: now_ms,
            delivery_count: 0,
        });
        if &*entry.consumer != consumer {
            entry.consumer = SmallBytes::new(consumer);
        }
        entry.delivery_time_ms = now_ms;
        entry
    }
}

/// A stream.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    blocks: BTreeMap<StreamId, Block>,
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted_id: StreamId,
    entries_added: u64,
    groups: BTreeMap<SmallBytes, ConsumerGroup>,
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The first entry's ID as recorded (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.first_id
    }

    pub fn max_deleted_id(&self) -> StreamId {
        self.max_deleted_id
    }

    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// Number of blocks (XINFO's radix-tree-keys).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// XSETID: sets the last ID and optionally the metadata (validated by the caller).
    pub fn set_metadata(
        &mut self,
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted_id: Option<StreamId>,
    ) {
        self.last_id = last_id;
        if let Some(entries_added) = entries_added {
            self.entries_added = entries_added;
        }
        if let Some(max_deleted_id) = max_deleted_id {
            self.max_deleted_id = max_deleted_id;
        }
    }

    /// The ID `*` generates at `now_ms`: the clock, or the last ID's successor if the clock
    /// went back. `None` when the stream's last ID is the greatest possible.
    pub fn next_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// The ID of the last entry present (0-0 when empty).
    pub fn last_entry_id(&self) -> StreamId {
        match self.blocks.last_key_value() {
            None => StreamId::MIN,
            Some((master, block)) => block
                .decode(*master)
                .iter()
                .rev()
                .find(|entry| !entry.deleted)
                .map_or(StreamId::MIN, |entry| entry.id),
        }
    }

    /// Appends an entry; `id` must be greater than the last ID (the caller checks).
    pub fn append(&mut self, id: StreamId, fields: &[&[u8]], limits: NodeLimits) {
        assert!(id > self.last_id, "stream IDs grow");
        assert!(fields.len().is_multiple_of(2) && !fields.is_empty());
        let mut encoded = Vec::new();
        let mut appended = false;
        if let Some((master, block)) = self.blocks.iter_mut().next_back() {
            let fits_entries =
                limits.max_entries == 0 || (block.total as usize) < limits.max_entries;
            if fits_entries && block.total < u16::MAX {
                block.encode(*master, id, fields, &mut encoded);
                let fits_bytes =
                    limits.max_bytes == 0 || block.data.len() + encoded.len() <= limits.max_bytes;
                if fits_bytes {
                    block.data.extend_from_slice(&encoded);
                    block.total += 1;
                    block.live += 1;
                    appended = true;
                }
            }
            if !appended {
                block.data.shrink_to_fit();
            }
        }
        if !appended {
            let mut block = Block::new(fields);
            encoded.clear();
            block.encode(id, id, fields, &mut encoded);
            block.data.extend_from_slice(&encoded);
            block.total = 1;
            block.live = 1;
            self.blocks.insert(id, block);
        }
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Entries with `start <= id <= end`, at most `count`, in order or reversed.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: Option<usize>,
        reverse: bool,
    ) -> Vec<StreamEntry> {
        let mut out = Vec::new();
        if start > end || count == Some(0) {
            return out;
        }
        let full = |out: &Vec<StreamEntry>| count.is_some_and(|count| out.len() >= count);
        if !reverse {
            let from = self
                .blocks
                .range(..=start)
                .next_back()
                .map_or(start, |(master, _)| *master);
            for (master, block) in self.blocks.range(from..) {
                if *master > end {
                    break;
                }
                for entry in block.entries(*master) {
                    if entry.deleted || entry.id < start {
                        continue;
                    }
                    if entry.id > end {
                        return out;
                    }
                    out.push(entry.to_entry());
                    if full(&out) {
                        return out;
                    }
                }
            }
        } else {
            for (master, block) in self.blocks.range(..=end).rev() {
                for entry in block.decode(*master).iter().rev() {
                    if entry.deleted || entry.id > end {
                        continue;
                    }
                    if entry.id < start {
                        return out;
                    }
                    out.push(entry.to_entry());
                    if full(&out) {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// The entry with `id`, if present.
    pub fn get(&self, id: StreamId) -> Option<StreamEntry> {
        self.range(id, id, Some(1), false).pop()
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let Some((master, block)) = self.blocks.range(..=id).next_back() else {
            return false;
        };
        block
            .decode(*master)
            .iter()
            .any(|entry| entry.id == id && !entry.deleted)
    }

    /// Deletes the entry `id`: true if it was present.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, block)) = self.blocks.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(offset) = block
            .decode(master)
            .iter()
            .find(|entry| entry.id == id && !entry.deleted)
            .map(|entry| entry.flag_offset)
        else {
            return false;
        };
        block.data[offset] |= FLAG_DELETED;
        block.live -= 1;
        if block.live == 0 {
            self.blocks.remove(&master);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self
            .blocks
            .iter()
            .find_map(|(master, block)| {
                block
                    .decode(*master)
                    .iter()
                    .find(|entry| !entry.deleted)
                    .map(|entry| entry.id)
            })
            .unwrap_or(StreamId::MIN);
    }

    /// Trims from the head. With `approximate`, only whole blocks go; `limit` (0: none) caps
    /// the entries removed. Returns how many entries were removed.
    pub fn trim(&mut self, strategy: TrimStrategy, approximate: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if let TrimStrategy::MaxLen(max) = strategy {
                if self.length <= max {
                    break;
                }
            }
            let Some((&master, block)) = self.blocks.first_key_value() else {
                break;
            };
            let live = u64::from(block.live);
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match strategy {
                TrimStrategy::MaxLen(max) => self.length - live >= max,
                TrimStrategy::MinId(min) => block.last_id(master) < min,
            };
            if whole {
                self.blocks.remove(&master);
                self.length -= live;
                removed += live;
                continue;
            }
            if approximate {
                break;
            }
            let block = self.blocks.get_mut(&master).expect("first block");
            let offsets: Vec<(StreamId, usize)> = block
                .decode(master)
                .iter()
                .filter(|entry| !entry.deleted)
                .map(|entry| (entry.id, entry.flag_offset))
                .collect();
            for (id, offset) in offsets {
                let done = match strategy {
                    TrimStrategy::MaxLen(max) => self.length <= max,
                    TrimStrategy::MinId(min) => id >= min,
                };
                if done {
                    break;
                }
                block.data[offset] |= FLAG_DELETED;
                block.live -= 1;
                self.length -= 1;
                removed += 1;
            }
            if block.live == 0 {
                self.blocks.remove(&master);
            }
            break;
        }
        if removed > 0 {
            self.refresh_first_id();
        }
        removed
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical counter of `id`, or
    /// [`ENTRIES_READ_UNKNOWN`].
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return (self.entries_added - self.length) as i64;
            }
            if id == self.first_id {
                return (self.entries_added - self.length + 1) as i64;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// Whether deleted entries may lie between `start` and the end.
    pub fn has_tombstones_after(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// A group's lag (Redis 7.2's `streamGetLag`), `None` when it cannot be known.
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_after(group.last_id) {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        let estimate = self.estimate_entries_read(group.last_id);
        if estimate == ENTRIES_READ_UNKNOWN {
            None
        } else {
            Some(self.entries_added as i64 - estimate)
        }
    }

    /// Advances a group past `id` as a read with `>` does.
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let entries_added = self.entries_added;
        let tombstones = self.has_tombstones_after(id);
        let estimate = self.estimate_entries_read(id);
        let group = self.groups.get_mut(name).expect("the group exists");
        if id <= group.last_id {
            return;
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !tombstones {
            group.entries_read += 1;
        } else if entries_added != 0 {
            group.entries_read = estimate;
        }
        group.last_id = id;
    }

    pub fn groups(&self) -> &BTreeMap<SmallBytes, ConsumerGroup> {
        &self.groups
    }

    pub fn group(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(name)
    }

    /// Creates a group; false if it exists.
    pub fn create_group(&mut self, name: &[u8], last_id: StreamId, entries_read: i64) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups.insert(
            SmallBytes::new(name),
            ConsumerGroup::new(last_id, entries_read),
        );
        true
    }

    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// Heap bytes owned (approximate, for MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.blocks
            .values()
            .map(|block| block.data.capacity() + 64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn small() -> NodeLimits {
        NodeLimits {
            max_bytes: 120,
            max_entries: 5,
        }
    }

    #[test]
    fn ids_parse_and_order() {
        assert_eq!(StreamId::parse(b"1-2", 0), Some(id(1, 2)));
        assert_eq!(StreamId::parse(b"7", 9), Some(id(7, 9)));
        assert_eq!(StreamId::parse(b"-1", 0), None);
        assert_eq!(StreamId::parse(b"1-", 0), None);
        assert_eq!(StreamId::parse(b"a", 0), None);
        assert_eq!(
            StreamId::parse(b"18446744073709551615-18446744073709551615", 0),
            Some(StreamId::MAX)
        );
        assert_eq!(StreamId::parse(b"18446744073709551616", 0), None);
        assert!(id(1, 5) < id(2, 0));
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(id(2, 0).previous(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
    }

    #[test]
    fn append_range_delete_trim() {
        let mut stream = Stream::new();
        for ms in 1..=20u64 {
            let value = ms.to_string();
            let fields: Vec<&[u8]> = if ms % 3 == 0 {
                vec![b"other", value.as_bytes()]
            } else {
                vec![b"field", value.as_bytes(), b"x", b"y"]
            };
            stream.append(id(ms, 0), &fields, small());
        }
        assert_eq!(stream.len(), 20);
        assert!(stream.block_count() >= 4);
        let all = stream.range(StreamId::MIN, StreamId::MAX, None, false);
        assert_eq!(all.len(), 20);
        assert_eq!(all[2].fields, vec![b"other".to_vec(), b"3".to_vec()]);
        assert_eq!(
            all[0].fields,
            vec![
                b"field".to_vec(),
                b"1".to_vec(),
                b"x".to_vec(),
                b"y".to_vec()
            ]
        );
        let reversed = stream.range(id(5, 0), id(9, 0), Some(3), true);
        assert_eq!(
            reversed.iter().map(|entry| entry.id.ms).collect::<Vec<_>>(),
            vec![9, 8, 7]
        );
        assert!(stream.delete(id(1, 0)));
        assert!(!stream.delete(id(1, 0)));
        assert_eq!(stream.first_id(), id(2, 0));
        assert_eq!(stream.max_deleted_id(), id(1, 0));
        assert_eq!(stream.trim(TrimStrategy::MaxLen(10), false, 0), 9);
        assert_eq!(stream.len(), 10);
        assert_eq!(stream.first_id(), id(11, 0));
        assert_eq!(stream.trim(TrimStrategy::MinId(id(15, 0)), false, 0), 4);
        assert_eq!(stream.first_id(), id(15, 0));
        assert_eq!(stream.entries_added(), 20);
    }

    #[test]
    fn approximate_trim_removes_whole_blocks_only() {
        let mut stream = Stream::new();
        for ms in 1..=100u64 {
            stream.append(id(ms, 0), &[b"f", b"v"], NodeLimits::default());
        }
        assert_eq!(stream.trim(TrimStrategy::MaxLen(50), true, 0), 0);
        for ms in 101..=250u64 {
            stream.append(id(ms, 0), &[b"f", b"v"], NodeLimits::default());
        }
        assert_eq!(stream.trim(TrimStrategy::MaxLen(120), true, 0), 100);
        assert_eq!(stream.len(), 150);
        assert_eq!(stream.trim(TrimStrategy::MaxLen(0), true, 99), 0);
    }

    /// A small deterministic generator (xorshift) so the test needs no dependency.
    struct Random(u64);
    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    #[test]
    fn randomized_against_btreemap_model() {
        for seed in 1..=20u64 {
            let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut stream = Stream::new();
            let mut model: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
            let limits = NodeLimits {
                max_bytes: 64 + random.below(300) as usize,
                max_entries: 1 + random.below(10) as usize,
            };
            let mut last = StreamId::MIN;
            for _ in 0..2000 {
                match random.below(10) {
                    0..=5 => {
                        let next = if random.below(2) == 0 {
                            last.next().unwrap()
                        } else {
                            id(last.ms + 1 + random.below(3), random.below(3))
                        };
                        let field_count = 1 + random.below(3) as usize;
                        let fields: Vec<Vec<u8>> = (0..field_count * 2)
                            .map(|index| {
                                if index % 2 == 0 {
                                    format!("f{}", random.below(3)).into_bytes()
                                } else {
                                    vec![b'v'; random.below(20) as usize]
                                }
                            })
                            .collect();
                        let slices: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                        stream.append(next, &slices, limits);
                        model.insert(next, fields);
                        last = next;
                    }
                    6 | 7 => {
                        let target = id(random.below(last.ms + 2), random.below(3));
                        assert_eq!(stream.delete(target), model.remove(&target).is_some());
                    }
                    8 => {
                        if random.below(4) == 0 {
                            let max = model.len().saturating_sub(random.below(5) as usize);
                            let removed = stream.trim(TrimStrategy::MaxLen(max as u64), false, 0);
                            assert_eq!(removed as usize, model.len() - max);
                            while model.len() > max {
                                model.pop_first();
                            }
                        } else {
                            let min = id(random.below(last.ms + 1) / 4, 0);
                            stream.trim(TrimStrategy::MinId(min), false, 0);
                            model.retain(|key, _| *key >= min);
                        }
                    }
                    _ => {
                        let a = id(random.below(last.ms + 2), random.below(3));
                        let b = id(random.below(last.ms + 2), random.below(3));
                        let count = random.below(20) as usize;
                        let reverse = random.below(2) == 0;
                        let got = stream.range(a, b, Some(count), reverse);
                        let expected: Vec<StreamEntry> = if a > b {
                            vec![]
                        } else if reverse {
                            model
                                .range(a..=b)
                                .rev()
                                .take(count)
                                .map(|(id, fields)| StreamEntry {
                                    id: *id,
                                    fields: fields.clone(),
                                })
                                .collect()
                        } else {
                            model
                                .range(a..=b)
                                .take(count)
                                .map(|(id, fields)| StreamEntry {
                                    id: *id,
                                    fields: fields.clone(),
                                })
                                .collect()
                        };
                        assert_eq!(got, expected);
                    }
                }
                assert_eq!(stream.len() as usize, model.len());
                assert_eq!(
                    stream.first_id(),
                    model.keys().next().copied().unwrap_or(StreamId::MIN)
                );
            }
            let all = stream.range(StreamId::MIN, StreamId::MAX, None, false);
            assert_eq!(all.len(), model.len());
        }
    }

    #[test]
    fn groups_track_pending_entries() {
        let mut stream = Stream::new();
        stream.append(id(1, 0), &[b"a", b"1"], NodeLimits::default());
        stream.append(id(2, 0), &[b"a", b"2"], NodeLimits::default());
        assert!(stream.create_group(b"g", StreamId::MIN, 0));
        assert!(!stream.create_group(b"g", StreamId::MIN, 0));
        let group = stream.group_mut(b"g").unwrap();
        group.consumer_mut(b"alice", 10);
        group.consumer_mut(b"bob", 10);
        group.deliver(id(1, 0), b"alice", 10).delivery_count += 1;
        group.deliver(id(2, 0), b"alice", 10).delivery_count += 1;
        group.deliver(id(2, 0), b"bob", 20).delivery_count += 1;
        assert_eq!(group.pending[&id(2, 0)].delivery_count, 2);
        assert_eq!(group.consumers[&b"alice"[..]].pending.len(), 1);
        assert!(group.acknowledge(id(1, 0)));
        assert!(!group.acknowledge(id(1, 0)));
        assert_eq!(group.delete_consumer(b"bob"), Some(1));
        assert!(group.pending.is_empty());
        stream.advance_group(b"g", id(1, 0));
        assert_eq!(stream.group(b"g").unwrap().entries_read, 1);
        assert_eq!(stream.lag(stream.group(b"g").unwrap()), Some(1i64));
    }
}
