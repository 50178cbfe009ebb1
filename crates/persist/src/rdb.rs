//! RDB files and DUMP payloads: the decoder ([`load`], [`decode_payload`]) and the encoder
//! ([`FileWriter`], [`dump_payload`]).
//!
//! Cinnabar writes RDB version 10 (Redis 7.0's), so Redis 7.0, 7.2 and 7.4 all load its files
//! and payloads: lists as quicklist 2 of listpacks, small hashes and sorted sets as listpacks,
//! integer sets as intsets, other sets as plain sets (version 10 has no listpack sets), streams
//! as listpacks version 2 (consumer groups with their read counters; version 10 has no consumer
//! active time, which loads as the seen time). The one exception: a hash with field expiries
//! needs Redis 7.4's `HASH_METADATA` type, so such a DUMP payload says version 12; a file always
//! says 10 (its header is written before its keys are known).

use std::collections::HashSet;
use std::io::Write;

use store::hash::{ExpireCondition, FieldTtl};
use store::list::End;
use store::stream::{Consumer, NodeLimits, PendingEntry, Stream, StreamId, ENTRIES_READ_UNKNOWN};
use store::{Hash, HashLimits, List, Set, SetLimits, SmallBytes, SortedSet, StringValue, Value};

use crate::packed::{self, Element, ListpackWriter};
use crate::{crc64, lzf, Error};

/// The newest version this decoder reads (Redis 7.4).
pub const VERSION_MAX: u16 = 12;
/// The version Cinnabar writes.
pub const VERSION_WRITTEN: u16 = 10;
/// The version of payloads holding hashes with field expiries.
const VERSION_FIELD_EXPIRY: u16 = 12;

/// Largest decompressed LZF string (Redis's `proto-max-bulk-len` maximum).
pub const STRING_BYTES_MAX: usize = 512 << 20;
/// LZF cannot expand more than this: a 2-byte back-reference yields at most 264 bytes.
const LZF_EXPANSION_MAX: usize = 133;
/// Databases a file may address.
pub const DATABASES_MAX: u64 = 1 << 20;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_MODULE_PRE_GA: u8 = 6;
pub const TYPE_MODULE_2: u8 = 7;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_SET_LISTPACK: u8 = 20;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;
pub const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
pub const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
pub const TYPE_HASH_METADATA: u8 = 24;
pub const TYPE_HASH_LISTPACK_EX: u8 = 25;

pub const OPCODE_FUNCTION2: u8 = 245;
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
pub const OPCODE_MODULE_AUX: u8 = 247;
pub const OPCODE_IDLE: u8 = 248;
pub const OPCODE_FREQ: u8 = 249;
pub const OPCODE_AUX: u8 = 250;
pub const OPCODE_RESIZEDB: u8 = 251;
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
pub const OPCODE_EXPIRETIME: u8 = 253;
pub const OPCODE_SELECTDB: u8 = 254;
pub const OPCODE_EOF: u8 = 255;

const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAME_FIELDS: i64 = 2;

/// The encoding thresholds in force (the configuration's `*-max-listpack-*` and friends).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub list: store::list::Limits,
    pub hash: HashLimits,
    pub set: SetLimits,
    pub zset: store::zset::Limits,
    pub stream: NodeLimits,
    /// Databases the server has; a file selecting another one is refused.
    pub databases: usize,
}

/// One key read from a file.
pub struct LoadedEntry {
    pub database: usize,
    pub key: Vec<u8>,
    pub value: Value,
    pub expire_at_ms: Option<u64>,
    pub idle_seconds: Option<u64>,
    pub frequency: Option<u8>,
}

/// Receives what a file holds, in file order.
pub trait Sink {
    fn entry(&mut self, entry: LoadedEntry) -> Result<(), Error>;
    fn aux(&mut self, _name: &[u8], _value: &[u8]) {}
    /// A function library's source (`FUNCTION2`), for the scripting engine.
    fn function(&mut self, _source: Vec<u8>) {}
    /// How far the load got: called after each key with the bytes read so far.
    fn progress(&mut self, _bytes_read: usize) {}
}

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub version: u16,
    /// Bytes the RDB took, up to and including its checksum (an AOF's RDB preamble is followed
    /// by commands).
    pub bytes_read: usize,
    pub keys: u64,
    pub empty_keys_skipped: u64,
    pub functions: u64,
}

// ---------------------------------------------------------------------------------------------
// Input.

struct Input<'a> {
    bytes: &'a [u8],
    position: usize,
}

enum Length {
    Plain(u64),
    Encoded(u8),
}

fn truncated() -> Error {
    Error::new("Unexpected EOF reading RDB file")
}

impl<'a> Input<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        if count > self.remaining() {
            return Err(truncated());
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u64_le(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn length_or_encoding(&mut self) -> Result<Length, Error> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Length::Plain((first & 0x3F) as u64),
            1 => Length::Plain((((first & 0x3F) as u64) << 8) | self.byte()? as u64),
            2 => match first {
                0x80 => {
                    Length::Plain(u32::from_be_bytes(self.take(4)?.try_into().expect("4")) as u64)
                }
                0x81 => Length::Plain(u64::from_be_bytes(self.take(8)?.try_into().expect("8"))),
                _ => {
                    return Err(Error::new(format!(
                        "Unknown length encoding {first} in rdbLoadLen()"
                    )))
                }
            },
            _ => Length::Encoded(first & 0x3F),
        })
    }

    fn length(&mut self) -> Result<u64, Error> {
        match self.length_or_encoding()? {
            Length::Plain(length) => Ok(length),
            Length::Encoded(_) => Err(Error::new("Unexpected encoded length")),
        }
    }

    /// A count of items that each take at least `item_bytes_min` input bytes: refused when the
    /// input cannot hold them, so callers may reserve it.
    fn count(&mut self, item_bytes_min: usize) -> Result<usize, Error> {
        let count = self.length()?;
        if count > (self.remaining() / item_bytes_min.max(1)) as u64 {
            return Err(Error::new(format!(
                "length {count} exceeds the remaining input"
            )));
        }
        Ok(count as usize)
    }

    fn string(&mut self) -> Result<Vec<u8>, Error> {
        match self.length_or_encoding()? {
            Length::Plain(length) => {
                if length > self.remaining() as u64 {
                    return Err(truncated());
                }
                Ok(self.take(length as usize)?.to_vec())
            }
            Length::Encoded(0) => Ok(itoa_bytes(self.take(1)?[0] as i8 as i64)),
            Length::Encoded(1) => Ok(itoa_bytes(i16::from_le_bytes(
                self.take(2)?.try_into().expect("2"),
            ) as i64)),
            Length::Encoded(2) => Ok(itoa_bytes(i32::from_le_bytes(
                self.take(4)?.try_into().expect("4"),
            ) as i64)),
            Length::Encoded(3) => {
                let compressed_length = self.length()?;
                let length = self.length()?;
                if compressed_length > self.remaining() as u64 {
                    return Err(truncated());
                }
                if length as usize > STRING_BYTES_MAX
                    || length > (compressed_length as u128 * LZF_EXPANSION_MAX as u128) as u64
                {
                    return Err(Error::new("Invalid LZF compressed string"));
                }
                let compressed = self.take(compressed_length as usize)?;
                lzf::decompress(compressed, length as usize)
                    .ok_or_else(|| Error::new("Invalid LZF compressed string"))
            }
            Length::Encoded(other) => Err(Error::new(format!(
                "Unknown RDB string encoding type {other}"
            ))),
        }
    }

    fn text_double(&mut self) -> Result<f64, Error> {
        let length = self.byte()?;
        match length {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let text = self.take(length as usize)?;
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .ok_or_else(|| Error::new("Invalid double value"))
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64, Error> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn stream_id(&mut self) -> Result<StreamId, Error> {
        let raw = self.take(16)?;
        Ok(raw_stream_id(raw))
    }
}

fn raw_stream_id(raw: &[u8]) -> StreamId {
    StreamId::new(
        u64::from_be_bytes(raw[..8].try_into().expect("8")),
        u64::from_be_bytes(raw[8..16].try_into().expect("8")),
    )
}

fn itoa_bytes(value: i64) -> Vec<u8> {
    itoa::Buffer::new().format(value).as_bytes().to_vec()
}

fn element_integer(element: &Element) -> Result<i64, Error> {
    match element {
        Element::Integer(value) => Ok(*value),
        Element::Bytes(bytes) => store::number::parse_i64(bytes)
            .ok_or_else(|| Error::new("corrupt stream listpack: integer expected")),
    }
}

fn element_score(element: Element) -> Result<f64, Error> {
    let score = match element {
        Element::Integer(value) => value as f64,
        Element::Bytes(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| match text {
                "inf" | "+inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                _ => text.parse::<f64>().ok(),
            })
            .ok_or_else(|| Error::new("Zset score is not a valid double"))?,
    };
    if score.is_nan() {
        return Err(Error::new("Zset with NAN score detected"));
    }
    Ok(score)
}

// ---------------------------------------------------------------------------------------------
// Decoding objects.

/// Decodes one object of `object_type`; `Ok(None)` for an empty collection (Redis skips those
/// when loading a file and refuses them in RESTORE).
fn decode_object(
    input: &mut Input,
    object_type: u8,
    limits: &Limits,
) -> Result<Option<Value>, Error> {
    let value = match object_type {
        TYPE_STRING => Value::String(StringValue::from_bytes(&input.string()?)),
        TYPE_LIST => {
            let count = input.count(1)?;
            let mut list = List::new();
            for _ in 0..count {
                let item = input.string()?;
                list.push_values(End::Right, &[&item], &limits.list);
            }
            return Ok((!list.is_empty()).then(|| Value::List(Box::new(list))));
        }
        TYPE_LIST_ZIPLIST => {
            let elements = packed::ziplist_elements(&input.string()?)?;
            return Ok(build_list(vec![elements], limits));
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = input.count(2)?;
            let mut list = List::new();
            for _ in 0..nodes {
                let container = if object_type == TYPE_LIST_QUICKLIST_2 {
                    input.length()?
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let blob = input.string()?;
                let elements = match container {
                    QUICKLIST_NODE_PLAIN => vec![Element::Bytes(blob)],
                    QUICKLIST_NODE_PACKED if object_type == TYPE_LIST_QUICKLIST => {
                        packed::ziplist_elements(&blob)?
                    }
                    QUICKLIST_NODE_PACKED => {
                        let elements = packed::listpack_elements(&blob)?;
                        if elements.is_empty() {
                            return Err(Error::new("Empty listpack inside quicklist"));
                        }
                        elements
                    }
                    _ => {
                        return Err(Error::new(format!(
                            "Unknown quicklist node container {container}"
                        )))
                    }
                };
                let items: Vec<Vec<u8>> = elements.into_iter().map(Element::into_bytes).collect();
                let references: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                list.push_values(End::Right, &references, &limits.list);
            }
            return Ok((!list.is_empty()).then(|| Value::List(Box::new(list))));
        }
        TYPE_SET | TYPE_SET_LISTPACK => {
            let members: Vec<Vec<u8>> = if object_type == TYPE_SET {
                let count = input.count(1)?;
                let mut members = Vec::with_capacity(count);
                for _ in 0..count {
                    members.push(input.string()?);
                }
                members
            } else {
                packed::listpack_elements(&input.string()?)?
                    .into_iter()
                    .map(Element::into_bytes)
                    .collect()
            };
            let Some(first) = members.first() else {
                return Ok(None);
            };
            let mut set = Set::create_for(first, members.len(), &limits.set);
            for member in &members {
                if !set.add(member, &limits.set) {
                    return Err(Error::new("Duplicate set members detected"));
                }
            }
            Value::Set(Box::new(set))
        }
        TYPE_SET_INTSET => {
            let values = packed::intset_values(&input.string()?)?;
            if values.is_empty() {
                return Ok(None);
            }
            let mut set = Set::create_for(b"0", values.len(), &limits.set);
            for value in values {
                set.add_integer(value, &limits.set);
            }
            Value::Set(Box::new(set))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let count = input.count(2)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let member = input.string()?;
                let score = if object_type == TYPE_ZSET_2 {
                    input.binary_double()?
                } else {
                    input.text_double()?
                };
                if score.is_nan() {
                    return Err(Error::new("Zset with NAN score detected"));
                }
                entries.push((member, score));
            }
            return build_zset(entries, limits);
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = input.string()?;
            let elements = if object_type == TYPE_ZSET_ZIPLIST {
                packed::ziplist_elements(&blob)?
            } else {
                packed::listpack_elements(&blob)?
            };
            if elements.len() % 2 != 0 {
                return Err(Error::new("Zset listpack with an odd number of elements"));
            }
            let mut entries = Vec::with_capacity(elements.len() / 2);
            let mut iterator = elements.into_iter();
            while let (Some(member), Some(score)) = (iterator.next(), iterator.next()) {
                entries.push((member.into_bytes(), element_score(score)?));
            }
            return build_zset(entries, limits);
        }
        TYPE_HASH => {
            let count = input.count(2)?;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let field = input.string()?;
                let value = input.string()?;
                pairs.push((field, value, 0));
            }
            return build_hash(pairs, limits);
        }
        TYPE_HASH_ZIPMAP => {
            let pairs = packed::zipmap_pairs(&input.string()?)?;
            return build_hash(
                pairs
                    .into_iter()
                    .map(|(field, value)| (field, value, 0))
                    .collect(),
                limits,
            );
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = input.string()?;
            let elements = if object_type == TYPE_HASH_ZIPLIST {
                packed::ziplist_elements(&blob)?
            } else {
                packed::listpack_elements(&blob)?
            };
            if elements.len() % 2 != 0 {
                return Err(Error::new("Hash listpack with an odd number of elements"));
            }
            let mut pairs = Vec::with_capacity(elements.len() / 2);
            let mut iterator = elements.into_iter();
            while let (Some(field), Some(value)) = (iterator.next(), iterator.next()) {
                pairs.push((field.into_bytes(), value.into_bytes(), 0));
            }
            return build_hash(pairs, limits);
        }
        TYPE_HASH_METADATA | TYPE_HASH_METADATA_PRE_GA => {
            let minimum_expire_ms = if object_type == TYPE_HASH_METADATA {
                input.u64_le()?
            } else {
                0
            };
            let count = input.count(3)?;
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                let expire_at_ms = if object_type == TYPE_HASH_METADATA {
                    match input.length()? {
                        0 => 0,
                        relative => minimum_expire_ms
                            .checked_add(relative - 1)
                            .ok_or_else(|| Error::new("Invalid hash field TTL"))?,
                    }
                } else {
                    input.u64_le()?
                };
                let field = input.string()?;
                let value = input.string()?;
                pairs.push((field, value, expire_at_ms));
            }
            return build_hash(pairs, limits);
        }
        TYPE_HASH_LISTPACK_EX | TYPE_HASH_LISTPACK_EX_PRE_GA => {
            if object_type == TYPE_HASH_LISTPACK_EX {
                input.u64_le()?;
            }
            let elements = packed::listpack_elements(&input.string()?)?;
            if elements.len() % 3 != 0 {
                return Err(Error::new("Hash listpack with field TTLs is malformed"));
            }
            let mut pairs = Vec::with_capacity(elements.len() / 3);
            let mut iterator = elements.into_iter();
            while let (Some(field), Some(value), Some(ttl)) =
                (iterator.next(), iterator.next(), iterator.next())
            {
                let expire_at_ms = element_integer(&ttl)?;
                if expire_at_ms < 0 {
                    return Err(Error::new("Invalid hash field TTL"));
                }
                pairs.push((field.into_bytes(), value.into_bytes(), expire_at_ms as u64));
            }
            return build_hash(pairs, limits);
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(decode_stream(input, object_type, limits)?))
        }
        TYPE_MODULE_PRE_GA | TYPE_MODULE_2 => {
            return Err(Error::new(
                "The RDB file contains module data: modules are not supported",
            ))
        }
        other => return Err(Error::new(format!("Unknown RDB encoding type {other}"))),
    };
    Ok(Some(value))
}

fn build_list(nodes: Vec<Vec<Element>>, limits: &Limits) -> Option<Value> {
    let mut list = List::new();
    for elements in nodes {
        let items: Vec<Vec<u8>> = elements.into_iter().map(Element::into_bytes).collect();
        let references: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        list.push_values(End::Right, &references, &limits.list);
    }
    (!list.is_empty()).then(|| Value::List(Box::new(list)))
}

fn build_zset(entries: Vec<(Vec<u8>, f64)>, limits: &Limits) -> Result<Option<Value>, Error> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut seen = HashSet::with_capacity(entries.len());
    for (member, _) in &entries {
        if !seen.insert(member.as_slice()) {
            return Err(Error::new("Duplicate zset fields detected"));
        }
    }
    drop(seen);
    Ok(Some(Value::SortedSet(Box::new(SortedSet::from_unique(
        entries,
        &limits.zset,
    )))))
}

fn build_hash(
    pairs: Vec<(Vec<u8>, Vec<u8>, u64)>,
    limits: &Limits,
) -> Result<Option<Value>, Error> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut hash = Hash::new();
    let mut scratch: Vec<&[u8]> = Vec::with_capacity(pairs.len() * 2);
    for (field, value, _) in &pairs {
        scratch.push(field);
        scratch.push(value);
    }
    hash.prepare_for_pairs(&scratch, &limits.hash);
    drop(scratch);
    let expiring = pairs.iter().any(|(_, _, expire_at_ms)| *expire_at_ms != 0);
    if expiring {
        hash.prepare_for_field_expiry();
    }
    for (field, value, expire_at_ms) in &pairs {
        if !hash.set(field, value, FieldTtl::Clear, &limits.hash) {
            return Err(Error::new("Duplicate hash fields detected"));
        }
        if *expire_at_ms != 0 {
            hash.expire_field(field, *expire_at_ms, ExpireCondition::Always, 0);
        }
    }
    Ok(Some(Value::Hash(Box::new(hash))))
}

fn decode_stream(input: &mut Input, object_type: u8, limits: &Limits) -> Result<Stream, Error> {
    let mut stream = Stream::new();
    let nodes = input.count(2)?;
    for _ in 0..nodes {
        let node_key = input.string()?;
        if node_key.len() != 16 {
            return Err(Error::new(
                "Stream node key entry is not the size of a stream ID",
            ));
        }
        let master = raw_stream_id(&node_key);
        let elements = packed::listpack_elements(&input.string()?)?;
        if elements.is_empty() {
            return Err(Error::new("Empty listpack inside stream"));
        }
        decode_stream_node(&mut stream, master, &elements, limits)?;
    }
    let length = input.length()?;
    if length != stream.len() {
        return Err(Error::new("Stream length inconsistent with its listpacks"));
    }
    let last_id = StreamId::new(input.length()?, input.length()?);
    let (entries_added, max_deleted_id) = if object_type >= TYPE_STREAM_LISTPACKS_2 {
        let _first_id = StreamId::new(input.length()?, input.length()?);
        let max_deleted_id = StreamId::new(input.length()?, input.length()?);
        let entries_added = input.length()?;
        (entries_added, max_deleted_id)
    } else {
        (length, StreamId::MIN)
    };
    if stream.len() > 0 && last_id < stream.last_entry_id() {
        return Err(Error::new("Stream last ID is smaller than an entry's"));
    }
    stream.set_metadata(last_id, Some(entries_added), Some(max_deleted_id));
    let groups = input.count(3)?;
    for _ in 0..groups {
        let name = input.string()?;
        let group_last_id = StreamId::new(input.length()?, input.length()?);
        let entries_read = if object_type >= TYPE_STREAM_LISTPACKS_2 {
            match input.length()? {
                u64::MAX => ENTRIES_READ_UNKNOWN,
                read => i64::try_from(read).map_err(|_| Error::new("Invalid entries_read"))?,
            }
        } else {
            stream.estimate_entries_read(group_last_id)
        };
        if !stream.create_group(&name, group_last_id, entries_read) {
            return Err(Error::new("Duplicated consumer group name"));
        }
        let group = stream.group_mut(&name).expect("just created");
        let pending_count = input.count(18)?;
        for _ in 0..pending_count {
            let id = input.stream_id()?;
            let delivery_time_ms = input.u64_le()?;
            let delivery_count = input.length()?;
            let entry = PendingEntry {
                consumer: SmallBytes::new(b""),
                delivery_time_ms,
                delivery_count,
            };
            if group.pending.insert(id, entry).is_some() {
                return Err(Error::new(
                    "Duplicated global PEL entry loading stream consumer group",
                ));
            }
        }
        let mut owned: HashSet<StreamId> = HashSet::new();
        let consumers = input.count(10)?;
        for _ in 0..consumers {
            let consumer_name = input.string()?;
            let seen_time_ms = input.u64_le()?;
            let active_time_ms = if object_type >= TYPE_STREAM_LISTPACKS_3 {
                match input.u64_le()? {
                    u64::MAX => None,
                    time => Some(time),
                }
            } else {
                Some(seen_time_ms)
            };
            let mut consumer = Consumer {
                seen_time_ms,
                active_time_ms,
                ..Consumer::default()
            };
            let owned_count = input.count(16)?;
            for _ in 0..owned_count {
                let id = input.stream_id()?;
                let Some(entry) = group.pending.get_mut(&id) else {
                    return Err(Error::new(
                        "Consumer PEL entry not found in the group's PEL",
                    ));
                };
                if !owned.insert(id) {
                    return Err(Error::new("Stream PEL entry owned by two consumers"));
                }
                entry.consumer = SmallBytes::new(&consumer_name);
                consumer.pending.insert(id);
            }
            if group
                .consumers
                .insert(SmallBytes::new(&consumer_name), consumer)
                .is_some()
            {
                return Err(Error::new("Duplicated consumer name in a stream group"));
            }
        }
        if owned.len() != group.pending.len() {
            return Err(Error::new("Stream CG PEL entry without consumer"));
        }
    }
    Ok(stream)
}

fn decode_stream_node(
    stream: &mut Stream,
    master: StreamId,
    elements: &[Element],
    limits: &Limits,
) -> Result<(), Error> {
    let malformed = || Error::new("corrupt stream listpack");
    let mut position = 0;
    let next_at = |position: &mut usize| -> Result<&Element, Error> {
        let element = elements.get(*position).ok_or_else(malformed)?;
        *position += 1;
        Ok(element)
    };
    macro_rules! next {
        () => {
            next_at(&mut position)
        };
    }
    let live = element_integer(next!()?)?;
    let deleted = element_integer(next!()?)?;
    let master_field_count = element_integer(next!()?)?;
    if live < 0
        || deleted < 0
        || master_field_count < 0
        || master_field_count as usize > elements.len()
    {
        return Err(malformed());
    }
    let mut master_fields = Vec::with_capacity(master_field_count as usize);
    for _ in 0..master_field_count {
        master_fields.push(next!()?.clone().into_bytes());
    }
    if element_integer(next!()?)? != 0 {
        return Err(malformed());
    }
    let mut seen_live = 0;
    let mut seen_deleted = 0;
    while position < elements.len() {
        let flags = element_integer(next!()?)?;
        let ms = master.ms.wrapping_add(element_integer(next!()?)? as u64);
        let seq = master.seq.wrapping_add(element_integer(next!()?)? as u64);
        let id = StreamId::new(ms, seq);
        let mut fields: Vec<Vec<u8>> = Vec::new();
        if flags & STREAM_ITEM_SAME_FIELDS != 0 {
            for field in &master_fields {
                fields.push(field.clone());
                fields.push(next!()?.clone().into_bytes());
            }
        } else {
            let count = element_integer(next!()?)?;
            if count < 0 || count as usize > elements.len() {
                return Err(malformed());
            }
            for _ in 0..count * 2 {
                fields.push(next!()?.clone().into_bytes());
            }
        }
        element_integer(next!()?)?;
        if flags & STREAM_ITEM_DELETED != 0 {
            seen_deleted += 1;
            continue;
        }
        seen_live += 1;
        if fields.is_empty() {
            return Err(Error::new("corrupt stream listpack: entry without fields"));
        }
        if id <= stream.last_id() {
            return Err(Error::new(
                "corrupt stream listpack: entry IDs out of order",
            ));
        }
        let references: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        stream.append(id, &references, limits.stream);
    }
    if seen_live != live || seen_deleted != deleted {
        return Err(Error::new(format!(
            "corrupt stream listpack: counts {live}/{deleted} but {seen_live}/{seen_deleted} entries"
        )));
    }
    if seen_live == 0 {
        return Err(Error::new("Empty stream listpack node"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Walking files record by record.

/// A read position in RDB bytes, for tools that walk a file's records themselves and report
/// where each one ends (the `check-rdb` tool, as redis-check-rdb does): the primitives [`load`]
/// reads with. A read that fails leaves the position where it started.
pub struct Cursor<'a> {
    input: Input<'a>,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], position: usize) -> Self {
        Cursor {
            input: Input {
                bytes,
                position: position.min(bytes.len()),
            },
        }
    }

    /// Bytes read so far (from the start of `bytes`).
    pub fn position(&self) -> usize {
        self.input.position
    }

    pub fn bytes(&mut self, count: usize) -> Result<&'a [u8], Error> {
        self.input.take(count)
    }

    pub fn byte(&mut self) -> Result<u8, Error> {
        self.input.byte()
    }

    /// A length (`rdbLoadLen`); an encoded-string marker is an error.
    pub fn length(&mut self) -> Result<u64, Error> {
        self.input.length()
    }

    /// A string in any of its encodings (plain, integer, LZF).
    pub fn string(&mut self) -> Result<Vec<u8>, Error> {
        self.input.string()
    }

    /// A value of `object_type` as [`load`] decodes it; `Ok(None)` for an empty collection.
    pub fn object(&mut self, object_type: u8, limits: &Limits) -> Result<Option<Value>, Error> {
        decode_object(&mut self.input, object_type, limits)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading files.

/// Decodes a whole RDB file, handing every key and aux field to `sink`.
pub fn load(bytes: &[u8], limits: &Limits, sink: &mut dyn Sink) -> Result<LoadStats, Error> {
    if bytes.len() < 9 || &bytes[..5] != b"REDIS" {
        return Err(Error::new("Wrong signature trying to load DB from file"));
    }
    let version = std::str::from_utf8(&bytes[5..9])
        .ok()
        .and_then(|text| text.parse::<u16>().ok())
        .filter(|version| (1..=VERSION_MAX).contains(version))
        .ok_or_else(|| {
            Error::new(format!(
                "Can't handle RDB format version {}",
                String::from_utf8_lossy(&bytes[5..9])
            ))
        })?;
    let mut input = Input { bytes, position: 9 };
    let mut stats = LoadStats {
        version,
        ..LoadStats::default()
    };
    let mut database = 0usize;
    let mut expire_at_ms: Option<u64> = None;
    let mut idle_seconds = None;
    let mut frequency = None;
    loop {
        let opcode = input.byte()?;
        match opcode {
            OPCODE_EOF => {
                if version >= 5 {
                    let body_end = input.position;
                    let stored = input.u64_le()?;
                    let computed = crc64::update(0, &bytes[..body_end]);
                    if stored != 0 && stored != computed {
                        // Redis's reason text ("RDB CRC error"), with both sums as it logs them.
                        return Err(Error::new(format!(
                            "RDB CRC error (expected {stored:x}, got {computed:x})"
                        )));
                    }
                }
                stats.bytes_read = input.position;
                return Ok(stats);
            }
            OPCODE_SELECTDB => {
                let index = input.length()?;
                if index >= limits.databases as u64 || index >= DATABASES_MAX {
                    return Err(Error::new(format!(
                        "Data file was created with a server configured to handle more than {} databases",
                        limits.databases
                    )));
                }
                database = index as usize;
            }
            OPCODE_RESIZEDB => {
                input.length()?;
                input.length()?;
            }
            OPCODE_EXPIRETIME_MS => expire_at_ms = Some(input.u64_le()?),
            OPCODE_EXPIRETIME => {
                let seconds = u32::from_le_bytes(input.take(4)?.try_into().expect("4"));
                expire_at_ms = Some(seconds as u64 * 1000);
            }
            OPCODE_IDLE => idle_seconds = Some(input.length()?),
            OPCODE_FREQ => frequency = Some(input.byte()?),
            OPCODE_AUX => {
                let name = input.string()?;
                let value = input.string()?;
                sink.aux(&name, &value);
            }
            OPCODE_MODULE_AUX => {
                return Err(Error::new(
                    "The RDB file contains AUX module data: modules are not supported",
                ))
            }
            OPCODE_FUNCTION_PRE_GA => {
                return Err(Error::new(
                    "Pre-release function format not supported (RDB from a Redis 7.0 release candidate)",
                ))
            }
            OPCODE_FUNCTION2 => {
                sink.function(input.string()?);
                stats.functions += 1;
            }
            object_type => {
                let key = input.string()?;
                let value = decode_object(&mut input, object_type, limits)?;
                let (expiry, idle, freq) =
                    (expire_at_ms.take(), idle_seconds.take(), frequency.take());
                match value {
                    None => stats.empty_keys_skipped += 1,
                    Some(value) => {
                        sink.entry(LoadedEntry {
                            database,
                            key,
                            value,
                            expire_at_ms: expiry,
                            idle_seconds: idle,
                            frequency: freq,
                        })?;
                        stats.keys += 1;
                    }
                }
                sink.progress(input.position);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DUMP payloads.

/// Why a RESTORE payload was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Unknown version or wrong CRC (`ERR DUMP payload version or checksum are wrong`).
    VersionOrChecksum,
    /// The object does not decode (`ERR Bad data format`).
    BadFormat(Error),
}

/// The body of a DUMP-style payload (everything before its 2-byte RDB version and 8-byte
/// CRC64), once the version is one this crate reads and the checksum matches.
fn verified_body(payload: &[u8]) -> Result<&[u8], PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let body_end = payload.len() - 10;
    let version = u16::from_le_bytes([payload[body_end], payload[body_end + 1]]);
    if version > VERSION_MAX {
        return Err(PayloadError::VersionOrChecksum);
    }
    let stored = u64::from_le_bytes(payload[body_end + 2..].try_into().expect("8 bytes"));
    if stored != crc64::update(0, &payload[..body_end + 2]) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(&payload[..body_end])
}

/// Decodes a DUMP payload into a value.
pub fn decode_payload(payload: &[u8], limits: &Limits) -> Result<Value, PayloadError> {
    let mut input = Input {
        bytes: verified_body(payload)?,
        position: 0,
    };
    let object_type = input.byte().map_err(PayloadError::BadFormat)?;
    let value = decode_object(&mut input, object_type, limits).map_err(PayloadError::BadFormat)?;
    if input.remaining() != 0 {
        return Err(PayloadError::BadFormat(Error::new(
            "trailing bytes in payload",
        )));
    }
    value.ok_or_else(|| PayloadError::BadFormat(Error::new("empty keys are not allowed")))
}

/// The payload of FUNCTION DUMP, as Redis writes it: each library's source as a `FUNCTION2`
/// record, then the RDB version and the CRC64 of everything before it.
pub fn functions_payload<'s>(
    sources: impl Iterator<Item = &'s [u8]>,
    options: &EncodeOptions,
) -> Vec<u8> {
    let mut out = Vec::new();
    for source in sources {
        out.push(OPCODE_FUNCTION2);
        write_string(&mut out, source, options);
    }
    out.extend_from_slice(&VERSION_WRITTEN.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a FUNCTION DUMP payload (from Redis or Cinnabar) back into library sources.
pub fn decode_functions_payload(payload: &[u8]) -> Result<Vec<Vec<u8>>, PayloadError> {
    let mut input = Input {
        bytes: verified_body(payload)?,
        position: 0,
    };
    let mut sources = Vec::new();
    while input.remaining() > 0 {
        match input.byte().map_err(PayloadError::BadFormat)? {
            OPCODE_FUNCTION2 => sources.push(input.string().map_err(PayloadError::BadFormat)?),
            OPCODE_FUNCTION_PRE_GA => {
                return Err(PayloadError::BadFormat(Error::new(
                    "Pre-GA function format not supported",
                )))
            }
            _ => {
                return Err(PayloadError::BadFormat(Error::new(
                    "given type is not a function",
                )))
            }
        }
    }
    Ok(sources)
}

/// How objects are written.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// LZF-compress strings longer than 20 bytes (`rdbcompression`).
    pub compress: bool,
    /// The sizes of stream nodes (`stream-node-max-*`).
    pub stream: NodeLimits,
    /// The list node size (`list-max-listpack-size`), for quicklist nodes.
    pub list_fill: i64,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            compress: true,
            stream: NodeLimits::default(),
            list_fill: -2,
        }
    }
}

/// The DUMP payload of `value`.
pub fn dump_payload(value: &Value, options: &EncodeOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let version = encode_object(value, options, &mut out);
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Encoding objects.

fn write_length(out: &mut Vec<u8>, length: u64) {
    if length < 1 << 6 {
        out.push(length as u8);
    } else if length < 1 << 14 {
        out.push(0x40 | (length >> 8) as u8);
        out.push(length as u8);
    } else if length <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(length as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&length.to_be_bytes());
    }
}

/// Writes a string as Redis's `rdbSaveRawString` does: small integers encoded, long strings
/// LZF-compressed when that saves at least 4 bytes.
fn write_string(out: &mut Vec<u8>, bytes: &[u8], options: &EncodeOptions) {
    if bytes.len() <= 11 {
        if let Some(value) = store::number::parse_i64(bytes) {
            if write_small_integer(out, value) {
                return;
            }
        }
    }
    if options.compress && bytes.len() > 20 {
        if let Some(compressed) = lzf::compress(bytes, bytes.len() - 4) {
            if !compressed.is_empty() {
                out.push(0xC3);
                write_length(out, compressed.len() as u64);
                write_length(out, bytes.len() as u64);
                out.extend_from_slice(&compressed);
                return;
            }
        }
    }
    write_length(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_small_integer(out: &mut Vec<u8>, value: i64) -> bool {
    if let Ok(small) = i8::try_from(value) {
        out.push(0xC0);
        out.push(small as u8);
    } else if let Ok(small) = i16::try_from(value) {
        out.push(0xC1);
        out.extend_from_slice(&small.to_le_bytes());
    } else if let Ok(small) = i32::try_from(value) {
        out.push(0xC2);
        out.extend_from_slice(&small.to_le_bytes());
    } else {
        return false;
    }
    true
}

fn write_integer_string(out: &mut Vec<u8>, value: i64) {
    if !write_small_integer(out, value) {
        let text = itoa_bytes(value);
        write_length(out, text.len() as u64);
        out.extend_from_slice(&text);
    }
}

fn write_stream_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// Writes `value`'s type byte and serialization; returns the RDB version it needs.
pub fn encode_object(value: &Value, options: &EncodeOptions, out: &mut Vec<u8>) -> u16 {
    match value {
        Value::String(string) => {
            out.push(TYPE_STRING);
            match string {
                StringValue::Integer(integer) => write_integer_string(out, *integer),
                StringValue::Embedded(bytes) => write_string(out, bytes, options),
                StringValue::Whole(bytes) => write_string(out, bytes, options),
                StringValue::Raw(bytes) => write_string(out, bytes, options),
            }
        }
        Value::List(list) => {
            out.push(TYPE_LIST_QUICKLIST_2);
            let (size_max, count_max) = quicklist_node_limits(options.list_fill);
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut current = ListpackWriter::new();
            list.for_each_in(0, list.len(), |item| {
                let bytes = item.to_vec();
                let mut trial_size = current.total_bytes() + bytes.len() + 8;
                if trial_size < current.total_bytes() {
                    trial_size = usize::MAX;
                }
                if !current.is_empty() && (trial_size > size_max || current.len() >= count_max) {
                    nodes.push(std::mem::take(&mut current).finish());
                }
                current.push_bytes(&bytes);
            });
            if !current.is_empty() {
                nodes.push(current.finish());
            }
            write_length(out, nodes.len() as u64);
            for node in &nodes {
                write_length(out, QUICKLIST_NODE_PACKED);
                write_string(out, node, options);
            }
        }
        Value::Set(set) => {
            if set.is_intset() {
                out.push(TYPE_SET_INTSET);
                let values: Vec<i64> =
                    set.iter()
                        .map(|member| match member {
                            store::hash::Element::Integer(value) => value,
                            store::hash::Element::Bytes(bytes) => store::number::parse_i64(bytes)
                                .expect("intset members are integers"),
                        })
                        .collect();
                write_string(out, &packed::intset_blob(&values), options);
            } else {
                out.push(TYPE_SET);
                write_length(out, set.len() as u64);
                for member in set.iter() {
                    member.with_bytes(|bytes| write_string(out, bytes, options));
                }
            }
        }
        Value::SortedSet(zset) => {
            if zset.is_listpack() {
                out.push(TYPE_ZSET_LISTPACK);
                let mut writer = ListpackWriter::new();
                for (member, score) in zset.iter() {
                    writer.push_bytes(member);
                    writer.push_bytes(store::zset::format_score_17g(score).as_bytes());
                }
                write_string(out, &writer.finish(), options);
            } else {
                out.push(TYPE_ZSET_2);
                write_length(out, zset.len() as u64);
                let entries: Vec<(&[u8], f64)> = zset.iter().collect();
                for (member, score) in entries.into_iter().rev() {
                    write_string(out, member, options);
                    out.extend_from_slice(&score.to_le_bytes());
                }
            }
        }
        Value::Hash(hash) => {
            if hash.has_field_expiries() {
                out.push(TYPE_HASH_METADATA);
                let minimum = hash
                    .iter_with_expiry()
                    .map(|(_, _, expire_at_ms)| expire_at_ms)
                    .filter(|&at| at != 0)
                    .min()
                    .unwrap_or(0);
                out.extend_from_slice(&minimum.to_le_bytes());
                write_length(out, hash.len() as u64);
                for (field, value, expire_at_ms) in hash.iter_with_expiry() {
                    let relative = if expire_at_ms == 0 {
                        0
                    } else {
                        expire_at_ms - minimum + 1
                    };
                    write_length(out, relative);
                    field.with_bytes(|bytes| write_string(out, bytes, options));
                    value.with_bytes(|bytes| write_string(out, bytes, options));
                }
                return VERSION_FIELD_EXPIRY;
            } else if hash.is_table() {
                out.push(TYPE_HASH);
                write_length(out, hash.len() as u64);
                for (field, value) in hash.iter() {
                    field.with_bytes(|bytes| write_string(out, bytes, options));
                    value.with_bytes(|bytes| write_string(out, bytes, options));
                }
            } else {
                out.push(TYPE_HASH_LISTPACK);
                let mut writer = ListpackWriter::new();
                for (field, value) in hash.iter() {
                    field.with_bytes(|bytes| writer.push_bytes(bytes));
                    value.with_bytes(|bytes| writer.push_bytes(bytes));
                }
                write_string(out, &writer.finish(), options);
            }
        }
        Value::Stream(stream) => {
            out.push(TYPE_STREAM_LISTPACKS_2);
            encode_stream(stream, options, out);
        }
    }
    VERSION_WRITTEN
}

/// (bytes, entries) a quicklist node may hold for `fill` (Redis's `list-max-listpack-size`).
fn quicklist_node_limits(fill: i64) -> (usize, usize) {
    const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    if fill >= 0 {
        (8192, (fill.max(1)) as usize)
    } else {
        let level = ((-fill - 1) as usize).min(SIZE_LEVELS.len() - 1);
        (SIZE_LEVELS[level], usize::MAX)
    }
}

fn encode_stream(stream: &Stream, options: &EncodeOptions, out: &mut Vec<u8>) {
    let entries = stream.range(StreamId::MIN, StreamId::MAX, None, false);
    let mut nodes: Vec<(StreamId, Vec<u8>)> = Vec::new();
    let mut index = 0;
    let max_entries = if options.stream.max_entries == 0 {
        usize::MAX
    } else {
        options.stream.max_entries
    };
    let max_bytes = if options.stream.max_bytes == 0 {
        usize::MAX
    } else {
        options.stream.max_bytes
    };
    while index < entries.len() {
        let master = entries[index].id;
        let master_fields: Vec<&[u8]> = entries[index]
            .fields
            .iter()
            .step_by(2)
            .map(Vec::as_slice)
            .collect();
        let mut end = index;
        let mut bytes = 0usize;
        while end < entries.len() && end - index < max_entries {
            let size: usize = entries[end].fields.iter().map(Vec::len).sum();
            if end > index && bytes + size >= max_bytes {
                break;
            }
            bytes += size + 16;
            end += 1;
        }
        let mut writer = ListpackWriter::new();
        writer.push_integer((end - index) as i64);
        writer.push_integer(0);
        writer.push_integer(master_fields.len() as i64);
        for field in &master_fields {
            writer.push_bytes(field);
        }
        writer.push_integer(0);
        for entry in &entries[index..end] {
            let names: Vec<&[u8]> = entry.fields.iter().step_by(2).map(Vec::as_slice).collect();
            let same = names == master_fields;
            writer.push_integer(if same { STREAM_ITEM_SAME_FIELDS } else { 0 });
            writer.push_integer((entry.id.ms - master.ms) as i64);
            writer.push_integer(entry.id.seq.wrapping_sub(master.seq) as i64);
            let field_count = names.len();
            if same {
                for value in entry.fields.iter().skip(1).step_by(2) {
                    writer.push_bytes(value);
                }
                writer.push_integer(field_count as i64 + 3);
            } else {
                writer.push_integer(field_count as i64);
                for item in &entry.fields {
                    writer.push_bytes(item);
                }
                writer.push_integer(field_count as i64 * 2 + 4);
            }
        }
        nodes.push((master, writer.finish()));
        index = end;
    }
    write_length(out, nodes.len() as u64);
    for (master, blob) in &nodes {
        let mut key = Vec::with_capacity(16);
        write_stream_id(&mut key, *master);
        write_string(out, &key, options);
        write_string(out, blob, options);
    }
    write_length(out, stream.len());
    let last_id = stream.last_id();
    write_length(out, last_id.ms);
    write_length(out, last_id.seq);
    let first_id = if stream.is_empty() {
        StreamId::MIN
    } else {
        stream.first_id()
    };
    write_length(out, first_id.ms);
    write_length(out, first_id.seq);
    let max_deleted_id = stream.max_deleted_id();
    write_length(out, max_deleted_id.ms);
    write_length(out, max_deleted_id.seq);
    write_length(out, stream.entries_added());
    write_length(out, stream.groups().len() as u64);
    for (name, group) in stream.groups() {
        write_string(out, name, options);
        write_length(out, group.last_id.ms);
        write_length(out, group.last_id.seq);
        write_length(out, group.entries_read as u64);
        write_length(out, group.pending.len() as u64);
        for (id, entry) in &group.pending {
            write_stream_id(out, *id);
            out.extend_from_slice(&entry.delivery_time_ms.to_le_bytes());
            write_length(out, entry.delivery_count);
        }
        write_length(out, group.consumers.len() as u64);
        for (consumer_name, consumer) in &group.consumers {
            write_string(out, consumer_name, options);
            out.extend_from_slice(&consumer.seen_time_ms.to_le_bytes());
            write_length(out, consumer.pending.len() as u64);
            for id in &consumer.pending {
                write_stream_id(out, *id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing files.

/// Writes an RDB file record by record, keeping the running CRC.
pub struct FileWriter<W: Write> {
    out: W,
    buffer: Vec<u8>,
    crc: u64,
    checksum: bool,
    options: EncodeOptions,
    written_bytes: u64,
}

const FLUSH_BYTES: usize = 1 << 16;

impl<W: Write> FileWriter<W> {
    /// Starts a file: writes the header.
    pub fn new(out: W, options: EncodeOptions, checksum: bool) -> Self {
        let mut writer = FileWriter {
            out,
            buffer: Vec::with_capacity(FLUSH_BYTES * 2),
            crc: 0,
            checksum,
            options,
            written_bytes: 0,
        };
        writer
            .buffer
            .extend_from_slice(format!("REDIS{VERSION_WRITTEN:04}").as_bytes());
        writer
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buffer.len() >= FLUSH_BYTES {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> std::io::Result<()> {
        if self.checksum {
            self.crc = crc64::update(self.crc, &self.buffer);
        }
        self.out.write_all(&self.buffer)?;
        self.written_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    pub fn aux(&mut self, name: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.buffer.push(OPCODE_AUX);
        write_string(&mut self.buffer, name, &self.options);
        write_string(&mut self.buffer, value, &self.options);
        self.maybe_flush()
    }

    pub fn select_database(&mut self, database: usize) -> std::io::Result<()> {
        self.buffer.push(OPCODE_SELECTDB);
        write_length(&mut self.buffer, database as u64);
        Ok(())
    }

    pub fn resize_database(&mut self, keys: u64, expires: u64) -> std::io::Result<()> {
        self.buffer.push(OPCODE_RESIZEDB);
        write_length(&mut self.buffer, keys);
        write_length(&mut self.buffer, expires);
        Ok(())
    }

    pub fn function(&mut self, source: &[u8]) -> std::io::Result<()> {
        self.buffer.push(OPCODE_FUNCTION2);
        write_string(&mut self.buffer, source, &self.options);
        self.maybe_flush()
    }

    /// One key with its value and expiry.
    pub fn entry(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        if let Some(at) = expire_at_ms {
            self.buffer.push(OPCODE_EXPIRETIME_MS);
            self.buffer.extend_from_slice(&at.to_le_bytes());
        }
        // The type byte comes first but is known only once the object is encoded.
        let mut object = Vec::new();
        encode_object(value, &self.options, &mut object);
        self.buffer.push(object[0]);
        write_string(&mut self.buffer, key, &self.options);
        self.buffer.extend_from_slice(&object[1..]);
        self.maybe_flush()
    }

    /// Writes EOF and the checksum; returns the output and the file's size.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.buffer.push(OPCODE_EOF);
        self.flush_buffer()?;
        let crc = if self.checksum { self.crc } else { 0 };
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok((self.out, self.written_bytes + 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<LoadedEntry>, Vec<(Vec<u8>, Vec<u8>)>);

    impl Sink for Collect {
        fn entry(&mut self, entry: LoadedEntry) -> Result<(), Error> {
            self.0.push(entry);
            Ok(())
        }
        fn aux(&mut self, name: &[u8], value: &[u8]) {
            self.1.push((name.to_vec(), value.to_vec()));
        }
    }

    fn limits() -> Limits {
        Limits {
            databases: 16,
            ..Limits::default()
        }
    }

    fn round_trip(value: &Value) -> Value {
        let payload = dump_payload(value, &EncodeOptions::default());
        decode_payload(&payload, &limits()).expect("decodes")
    }

    #[test]
    fn cursor_walks_records_and_stops_where_a_read_fails() {
        let mut bytes = b"REDIS0011".to_vec();
        bytes.extend_from_slice(&[OPCODE_AUX, 3]);
        bytes.extend_from_slice(b"ver");
        bytes.extend_from_slice(&[
            0xC0,
            7,
            OPCODE_SELECTDB,
            2,
            TYPE_STRING,
            1,
            b'k',
            0xC1,
            0x2C,
            1,
        ]);
        let mut cursor = Cursor::new(&bytes, 9);
        assert_eq!(cursor.byte(), Ok(OPCODE_AUX));
        assert_eq!(cursor.string().as_deref(), Ok(&b"ver"[..]));
        assert_eq!(cursor.string().as_deref(), Ok(&b"7"[..]));
        assert_eq!(cursor.position(), 16);
        assert_eq!(cursor.byte(), Ok(OPCODE_SELECTDB));
        assert_eq!(cursor.length(), Ok(2));
        assert_eq!(cursor.byte(), Ok(TYPE_STRING));
        assert_eq!(cursor.string().as_deref(), Ok(&b"k"[..]));
        let value = cursor.object(TYPE_STRING, &limits()).expect("decodes");
        assert!(matches!(value, Some(Value::String(_))));
        assert_eq!(cursor.position(), bytes.len());
        assert_eq!(cursor.bytes(8), Err(truncated()));
        assert_eq!(cursor.position(), bytes.len());
        let mut short = Cursor::new(&bytes[..bytes.len() - 1], 21);
        assert_eq!(short.string(), Err(truncated()));
        assert_eq!(short.position(), 22);
    }

    #[test]
    fn payloads_match_redis_7_0() {
        let options = EncodeOptions::default();
        let mut hash = Hash::new();
        hash.set(b"a", b"1", FieldTtl::Clear, &HashLimits::default());
        hash.set(b"b", b"2", FieldTtl::Clear, &HashLimits::default());
        assert_eq!(
            dump_payload(&Value::Hash(Box::new(hash)), &options),
            b"\x10\x11\x11\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x02\x01\xff\n\x00>@cl\x8f]v\x9a"
        );
        let mut list = List::new();
        list.push_values(
            End::Right,
            &[b"a", b"1", b"-5", b"300"],
            &store::list::Limits::default(),
        );
        assert_eq!(
            dump_payload(&Value::List(Box::new(list)), &options),
            b"\x12\x01\x02\x12\x12\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xdf\xfb\x02\xc1,\x02\xff\n\x00\xd8\xc6\x91\x84A\xc9@\x00"
        );
        let zset = SortedSet::from_unique(
            vec![(b"a".to_vec(), 1.5), (b"b".to_vec(), 2.0)],
            &store::zset::Limits::default(),
        );
        assert_eq!(
            dump_payload(&Value::SortedSet(Box::new(zset)), &options),
            b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff\n\x00\xfa\x02\xb4%\xaf\x18\x87c"
        );
        assert_eq!(
            dump_payload(&Value::String(StringValue::from_bytes(b"12345")), &options),
            b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9"
        );
        assert_eq!(
            dump_payload(
                &Value::String(StringValue::from_bytes(&[b'a'; 50])),
                &options
            ),
            b"\x00\xc3\t2\x01aa\xe0%\x00\x01aa\n\x00\t\xacH\xb9\xab\x15\xfb\xc9"
        );
    }

    #[test]
    fn values_round_trip() {
        let strings = [&b"x"[..], b"-1", b"123456789012", &[b'q'; 1000]];
        for bytes in strings {
            let back = round_trip(&Value::String(StringValue::from_bytes(bytes)));
            assert_eq!(back.as_string().unwrap().to_vec(), bytes);
        }
        let mut list = List::new();
        let items: Vec<Vec<u8>> = (0..5000)
            .map(|i| format!("item-{i}").into_bytes())
            .collect();
        let references: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        list.push_values(End::Right, &references, &store::list::Limits::default());
        let back = round_trip(&Value::List(Box::new(list)));
        assert_eq!(back.as_list().unwrap().to_vec(), items);
        assert_eq!(back.encoding_name(), "quicklist");
    }

    #[test]
    fn corrupt_payloads_are_refused() {
        let mut payload = dump_payload(
            &Value::String(StringValue::from_bytes(b"hello")),
            &EncodeOptions::default(),
        );
        assert!(decode_payload(&payload, &limits()).is_ok());
        let last = payload.len() - 1;
        payload[last] ^= 1;
        assert_eq!(
            decode_payload(&payload, &limits()).unwrap_err(),
            PayloadError::VersionOrChecksum
        );
        assert_eq!(
            decode_payload(b"short", &limits()).unwrap_err(),
            PayloadError::VersionOrChecksum
        );
    }

    /// Every truncation and many byte changes of valid payloads (resealed with a correct CRC, so
    /// the decoder sees them) decode or fail cleanly: never a panic.
    #[test]
    fn mutated_payloads_never_panic() {
        let mut values = vec![
            Value::String(StringValue::from_bytes(&[b'z'; 100])),
            Value::Set(Box::new({
                let mut set = Set::create_for(b"1", 3, &SetLimits::default());
                for member in [&b"1"[..], b"2", b"300000"] {
                    set.add(member, &SetLimits::default());
                }
                set
            })),
        ];
        let mut stream = Stream::new();
        for index in 1..20u64 {
            stream.append(
                StreamId::new(index, 0),
                &[b"f", b"v", b"g", b"w"],
                NodeLimits::default(),
            );
        }
        stream.create_group(b"group", StreamId::new(3, 0), 3);
        values.push(Value::Stream(Box::new(stream)));
        let mut list = List::new();
        list.push_values(
            End::Right,
            &[b"a", b"12", b"-7"],
            &store::list::Limits::default(),
        );
        values.push(Value::List(Box::new(list)));
        let mut hash = Hash::new();
        hash.set(b"a", b"1", FieldTtl::Clear, &HashLimits::default());
        values.push(Value::Hash(Box::new(hash)));
        values.push(Value::SortedSet(Box::new(SortedSet::from_unique(
            vec![(b"m".to_vec(), 2.5)],
            &store::zset::Limits::default(),
        ))));
        let options = EncodeOptions {
            compress: false,
            ..EncodeOptions::default()
        };
        for value in &values {
            let payload = dump_payload(value, &options);
            let body = &payload[..payload.len() - 10];
            let reseal = |body: &[u8]| {
                let mut sealed = body.to_vec();
                sealed.extend_from_slice(&10u16.to_le_bytes());
                let crc = crc64::update(0, &sealed);
                sealed.extend_from_slice(&crc.to_le_bytes());
                sealed
            };
            for length in 0..body.len() {
                let _ = decode_payload(&reseal(&body[..length]), &limits());
            }
            for position in 0..body.len() {
                for change in [0x01u8, 0x80, 0xFF, 0x3F] {
                    let mut mutated = body.to_vec();
                    mutated[position] ^= change;
                    let _ = decode_payload(&reseal(&mutated), &limits());
                }
            }
        }
    }

    #[test]
    fn reference_files_load() {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures/rdb");
        for (name, keys) in [
            ("encodings.rdb", 13),
            ("hash-zipmap.rdb", 1),
            ("hash-ziplist.rdb", 1),
            ("list-quicklist.rdb", 2),
            ("redis-7.0-all-types.rdb", 25),
            ("zset-ziplist.rdb", 1),
            ("scriptbackup.rdb", 0),
            ("corrupt_empty_keys.rdb", 0),
        ] {
            let bytes = std::fs::read(format!("{directory}/{name}")).unwrap();
            let mut sink = Collect(Vec::new(), Vec::new());
            let stats = load(&bytes, &limits(), &mut sink)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(sink.0.len(), keys, "{name}: {stats:?}");
        }
        let bytes = std::fs::read(format!("{directory}/corrupt_ziplist.rdb")).unwrap();
        let mut sink = Collect(Vec::new(), Vec::new());
        assert!(load(&bytes, &limits(), &mut sink).is_err());
    }
}
