//! Hashes: maps from field to value, in Redis 7.2's two encodings, with Redis 7.4's per-field
//! expiry.
//!
//! Encodings (what OBJECT ENCODING names).
//! - `listpack`: one packed, exact-size buffer of elements `field value field value ...`, in
//!   insertion order. An element is its length as a LEB128 varint followed by its bytes (one
//!   byte of overhead for elements shorter than 128 bytes; Redis's listpack spends two plus a
//!   7-byte header). The hash itself is then `Box<Hash>` = 16 bytes (the buffer's pointer and
//!   length): a 10-field hash costs its key's entry, 16 bytes and the buffer.
//! - `hashtable`: a [`DenseTable`] (see below) of `(field, value)` entries.
//!
//! Conversions happen exactly where Redis 7.2 converts (`hashTypeTryConversion`,
//! `hashTypeSet`), and never back from `hashtable`:
//! - [`Hash::prepare_for_pairs`] before HSET/HMSET/HSETNX: more pairs than
//!   `hash-max-listpack-entries`, or any argument longer than `hash-max-listpack-value`,
//!   converts first (even if nothing ends up being written);
//! - [`Hash::set`]: a field or value longer than the value limit converts before writing; more
//!   fields than the entry limit after writing converts.
//!
//! Field expiry (Redis 7.4's HEXPIRE family). Only hashes that use it pay for it:
//! - a listpack hash given field expiries becomes an *expiring listpack* (`listpackex`, as Redis
//!   7.4 names it): elements are triples `field value expiry` (expiry a varint, 0 for none),
//!   ordered by expiry with the persistent fields last, exactly as Redis 7.4 orders its
//!   `listpackEx` (so HGETALL's order matches Redis's);
//! - a hashtable hash keeps a [`FieldExpiries`] side structure: the expiry of each entry (a
//!   `Vec<u64>` parallel to the entries) and the set of `(expiry, entry index)` ordered by time.
//!
//! Expiry is the caller's business: this module stores the times, reads do not look at the
//! clock (they return expired fields not removed yet, with their expiry where asked:
//! [`Hash::iter_with_expiry`], [`Hash::field_expiry`]), and due fields go when asked
//! ([`Hash::remove_expired_fields`]). As in Redis 7.4, a field reads as expired once its time
//! has passed ([`is_field_expired`]) and is removed by the active cycle at its time; which
//! commands hide and which delete an expired field is the server's (Redis 7.4's) choice.
//!
//! The [`DenseTable`] (shared with sets): entries live in one dense `Vec`; an index of
//! power-of-two buckets holds, per bucket, the head of a chain threaded through the entries
//! (`next` index) with each entry's 32-bit hash cached. This gives
//! - O(1) random access (`entries[random]`), so HRANDFIELD, SRANDMEMBER and SPOP on a million
//!   members cost O(1) per member picked;
//! - O(1) removal: unlink from the chain, then move the last entry into the hole
//!   (swap-remove) and fix the one chain link that pointed at it;
//! - SCAN cursors with Redis's guarantee: a cursor walks buckets in reverse-binary order
//!   (Redis's `dictScan` algorithm for one table), and a bucket's content depends only on the
//!   hash bits, so every element present for a whole scan is returned at least once, across
//!   resizes too.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use crate::number::parse_i64;
use crate::small_bytes::SmallBytes;

/// The encoding limits a hash obeys (Redis's `hash-max-listpack-*` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// A listpack holds at most this many fields.
    pub listpack_entries: usize,
    /// A listpack holds fields and values of at most this many bytes.
    pub listpack_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            listpack_entries: 128,
            listpack_value: 64,
        }
    }
}

/// What a write does to an existing field's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldTtl {
    /// HSET, HSETNX, HMSET: a new value is a new field, without expiry.
    Clear,
    /// HINCRBY, HINCRBYFLOAT: the value changes in place, the expiry stays.
    Keep,
}

/// The NX | XX | GT | LT condition of the HEXPIRE family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireCondition {
    Always,
    /// Only fields without an expiry.
    IfNone,
    /// Only fields with an expiry.
    IfSome,
    /// Only when later than the current expiry (none counts as infinite).
    IfLater,
    /// Only when earlier than the current expiry (none counts as infinite).
    IfEarlier,
}

/// The per-field result of the HEXPIRE family, with Redis 7.4's reply codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// -2: no such field.
    NoField,
    /// 0: the condition was not met.
    ConditionNotMet,
    /// 1: the expiry was set.
    Set,
    /// 2: the time was not in the future, so the field was deleted.
    Deleted,
}

impl ExpireOutcome {
    pub fn code(self) -> i64 {
        match self {
            ExpireOutcome::NoField => -2,
            ExpireOutcome::ConditionNotMet => 0,
            ExpireOutcome::Set => 1,
            ExpireOutcome::Deleted => 2,
        }
    }
}

/// The per-field result of HPERSIST, with Redis 7.4's reply codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistOutcome {
    /// -2: no such field.
    NoField,
    /// -1: the field has no expiry.
    NoExpiry,
    /// 1: the expiry was removed.
    Persisted,
}

impl PersistOutcome {
    pub fn code(self) -> i64 {
        match self {
            PersistOutcome::NoField => -2,
            PersistOutcome::NoExpiry => -1,
            PersistOutcome::Persisted => 1,
        }
    }
}

/// A field's expiry as the HTTL family sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldExpiry {
    NoField,
    Persistent,
    At(u64),
}

/// A hash value.
pub struct Hash {
    repr: Repr,
}

enum Repr {
    /// Field/value pairs, no expiries (the common small hash).
    Listpack(Box<[u8]>),
    /// Anything else.
    Boxed(Box<Boxed>),
}

enum Boxed {
    /// Field/value/expiry triples ordered by expiry, persistent fields last.
    ListpackExpiring(Box<[u8]>),
    Table(FieldTable),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Listpack(buffer) => Repr::Listpack(buffer.clone()),
            Repr::Boxed(boxed) => Repr::Boxed(Box::new(match &**boxed {
                Boxed::ListpackExpiring(buffer) => Boxed::ListpackExpiring(buffer.clone()),
                Boxed::Table(table) => Boxed::Table(table.clone()),
            })),
        };
        Hash { repr }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_map()
            .entries(self.iter().map(|(field, value)| {
                (
                    String::from_utf8_lossy(&field.to_vec()).into_owned(),
                    String::from_utf8_lossy(&value.to_vec()).into_owned(),
                )
            }))
            .finish()
    }
}

/// A packed buffer seen as hash entries.
#[derive(Clone, Copy)]
struct PackedHash<'a> {
    buffer: &'a [u8],
    expiring: bool,
}

/// One entry of a packed hash, with its byte positions.
#[derive(Clone, Copy, Debug)]
struct PackedEntry<'a> {
    field: Element<'a>,
    value: Element<'a>,
    /// 0 when the field has no expiry (or the buffer carries none).
    expire_at_ms: u64,
    start: usize,
    value_start: usize,
    value_end: usize,
    end: usize,
}

struct PackedEntries<'a> {
    packed: PackedHash<'a>,
    position: usize,
}

impl<'a> Iterator for PackedEntries<'a> {
    type Item = PackedEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<PackedEntry<'a>> {
        let buffer = self.packed.buffer;
        if self.position >= buffer.len() {
            return None;
        }
        let start = self.position;
        let (field, value_start) = packed::read_element(buffer, start);
        let (value, value_end) = packed::read_element(buffer, value_start);
        let (expire_at_ms, end) = if self.packed.expiring {
            packed::read_varint(buffer, value_end)
        } else {
            (0, value_end)
        };
        self.position = end;
        Some(PackedEntry {
            field,
            value,
            expire_at_ms,
            start,
            value_start,
            value_end,
            end,
        })
    }
}

/// Where an entry sits in its buffer (no borrow of the buffer, so it can be changed).
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    value_start: usize,
    value_end: usize,
    end: usize,
    expire_at_ms: u64,
}

impl PackedEntry<'_> {
    fn span(&self) -> Span {
        Span {
            start: self.start,
            value_start: self.value_start,
            value_end: self.value_end,
            end: self.end,
            expire_at_ms: self.expire_at_ms,
        }
    }
}

impl<'a> PackedHash<'a> {
    fn entries(self) -> PackedEntries<'a> {
        PackedEntries {
            packed: self,
            position: 0,
        }
    }

    fn find(self, field: &[u8]) -> Option<PackedEntry<'a>> {
        let query = Query::new(field);
        self.entries().find(|entry| entry.field.matches(&query))
    }

    /// The entry of `field`, or else how many entries there are (one pass either way).
    fn find_or_count(self, field: &[u8]) -> Result<PackedEntry<'a>, usize> {
        let query = Query::new(field);
        let mut count = 0;
        for entry in self.entries() {
            if entry.field.matches(&query) {
                return Ok(entry);
            }
            count += 1;
        }
        Err(count)
    }

    fn len(self) -> usize {
        self.entries().count()
    }
}

/// Appends an entry to a packed buffer (`expire_at_ms` only written for expiring buffers).
fn push_packed_entry(
    buffer: &mut Vec<u8>,
    expiring: bool,
    field: Element<'_>,
    value: Element<'_>,
    expire_at_ms: u64,
) {
    let mut size = packed::element_len(field) + packed::element_len(value);
    if expiring {
        size += packed::varint_len(expire_at_ms);
    }
    buffer.reserve_exact(size);
    packed::push_element(buffer, field);
    packed::push_element(buffer, value);
    if expiring {
        packed::push_varint(buffer, expire_at_ms);
    }
}

/// Encodes one triple of an expiring buffer.
fn encode_triple(field: Element<'_>, value: Element<'_>, expire_at_ms: u64) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(
        packed::element_len(field) + packed::element_len(value) + packed::varint_len(expire_at_ms),
    );
    packed::push_element(&mut encoded, field);
    packed::push_element(&mut encoded, value);
    packed::push_varint(&mut encoded, expire_at_ms);
    encoded
}

/// Inserts a triple into an expiring buffer at its place in expiry order: before the first
/// entry that is persistent or expires at the same time or later; persistent entries go last.
fn insert_ordered_triple(
    buffer: &mut Vec<u8>,
    field: Element<'_>,
    value: Element<'_>,
    expire_at_ms: u64,
) {
    let encoded = encode_triple(field, value, expire_at_ms);
    let position = if expire_at_ms == 0 {
        buffer.len()
    } else {
        PackedHash {
            buffer,
            expiring: true,
        }
        .entries()
        .find(|entry| entry.expire_at_ms == 0 || entry.expire_at_ms >= expire_at_ms)
        .map_or(buffer.len(), |entry| entry.start)
    };
    buffer.splice(position..position, encoded);
}

/// Replaces the value of the entry whose value occupies `value_start..value_end`.
fn replace_packed_value(buffer: &mut Vec<u8>, value_start: usize, value_end: usize, value: &[u8]) {
    let mut encoded = Vec::with_capacity(packed::encoded_len(value));
    packed::push_bytes(&mut encoded, value);
    buffer.splice(value_start..value_end, encoded);
}

impl Hash {
    /// An empty hash, in the listpack encoding.
    pub fn new() -> Self {
        Hash {
            repr: Repr::Listpack(Box::default()),
        }
    }

    fn packed(&self) -> Option<PackedHash<'_>> {
        match &self.repr {
            Repr::Listpack(buffer) => Some(PackedHash {
                buffer,
                expiring: false,
            }),
            Repr::Boxed(boxed) => match &**boxed {
                Boxed::ListpackExpiring(buffer) => Some(PackedHash {
                    buffer,
                    expiring: true,
                }),
                Boxed::Table(_) => None,
            },
        }
    }

    fn table(&self) -> Option<&FieldTable> {
        match &self.repr {
            Repr::Boxed(boxed) => match &**boxed {
                Boxed::Table(table) => Some(table),
                Boxed::ListpackExpiring(_) => None,
            },
            Repr::Listpack(_) => None,
        }
    }

    fn table_mut(&mut self) -> Option<&mut FieldTable> {
        match &mut self.repr {
            Repr::Boxed(boxed) => match &mut **boxed {
                Boxed::Table(table) => Some(table),
                Boxed::ListpackExpiring(_) => None,
            },
            Repr::Listpack(_) => None,
        }
    }

    /// The packed buffer and whether it carries expiries, for changes.
    fn packed_mut(&mut self) -> Option<(&mut Box<[u8]>, bool)> {
        match &mut self.repr {
            Repr::Listpack(buffer) => Some((buffer, false)),
            Repr::Boxed(boxed) => match &mut **boxed {
                Boxed::ListpackExpiring(buffer) => Some((buffer, true)),
                Boxed::Table(_) => None,
            },
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self.packed() {
            Some(packed) => packed.len(),
            None => self.table().map_or(0, FieldTable::len),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self.packed() {
            Some(packed) => packed.buffer.is_empty(),
            None => self.table().is_none_or(|table| table.len() == 0),
        }
    }

    /// The name OBJECT ENCODING replies with (Redis 7.4 names a listpack prepared for field
    /// expiry `listpackex`).
    pub fn encoding_name(&self) -> &'static str {
        match self.packed() {
            Some(packed) if packed.expiring => "listpackex",
            Some(_) => "listpack",
            None => "hashtable",
        }
    }

    /// Whether this is the hashtable encoding.
    pub fn is_table(&self) -> bool {
        self.table().is_some()
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Element<'_>> {
        match self.packed() {
            Some(packed) => packed.find(field).map(|entry| entry.value),
            None => self.table().and_then(|table| table.get(field)),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Every field and value: insertion order for listpacks (expiry order for expiring ones),
    /// entry order for hashtables. Fields whose expiry passed but that were not removed yet are
    /// included: see [`iter_with_expiry`](Self::iter_with_expiry).
    pub fn iter(&self) -> HashIter<'_> {
        HashIter(self.iter_with_expiry())
    }

    /// Every field, value and expiry (0 for none), in [`iter`](Self::iter)'s order.
    pub fn iter_with_expiry(&self) -> HashExpiryIter<'_> {
        HashExpiryIter(match self.packed() {
            Some(packed) => IterRepr::Packed(packed.entries()),
            None => {
                let table = self.table().expect("a hash is packed or a table");
                IterRepr::Table(
                    table.table.entries().enumerate(),
                    table
                        .expiries
                        .as_ref()
                        .map(|expiries| expiries.at_ms.as_slice()),
                )
            }
        })
    }

    /// Converts to the hashtable encoding, sized for `capacity` fields.
    fn convert_to_table(&mut self, capacity: usize) {
        let Some(packed) = self.packed() else {
            return;
        };
        let mut table = FieldTable::with_capacity(capacity.max(packed.len()));
        for entry in packed.entries() {
            let index = entry
                .field
                .with_bytes(|field| entry.value.with_bytes(|value| table.push_new(field, value)));
            if entry.expire_at_ms != 0 {
                table.set_expiry_at(index, entry.expire_at_ms);
            }
        }
        self.repr = Repr::Boxed(Box::new(Boxed::Table(table)));
    }

    /// Redis's `hashTypeTryConversion`, before a command writes `pairs` (field, value, ...):
    /// converts a listpack to a hashtable when the pairs are more than the entry limit or any
    /// of them is longer than the value limit.
    pub fn prepare_for_pairs(&mut self, pairs: &[&[u8]], limits: &HashLimits) {
        if self.packed().is_none() {
            return;
        }
        let new_fields = pairs.len() / 2;
        if new_fields > limits.listpack_entries {
            self.convert_to_table(new_fields);
            return;
        }
        if pairs.iter().any(|arg| arg.len() > limits.listpack_value) {
            self.convert_to_table(0);
        }
    }

    /// Sets `field` to `value`. Returns whether the field is new. Converts as Redis's
    /// `hashTypeSet` does.
    pub fn set(&mut self, field: &[u8], value: &[u8], ttl: FieldTtl, limits: &HashLimits) -> bool {
        if self.packed().is_some()
            && (field.len() > limits.listpack_value || value.len() > limits.listpack_value)
        {
            self.convert_to_table(0);
        }
        if let Some((buffer, expiring)) = self.packed_mut() {
            let found = PackedHash { buffer, expiring }
                .find_or_count(field)
                .map(|entry| entry.span());
            let length_after = match found {
                Ok(entry) => {
                    let moves_last = expiring && entry.expire_at_ms != 0 && ttl == FieldTtl::Clear;
                    packed::edit(buffer, |vector| {
                        if moves_last {
                            vector.drain(entry.start..entry.end);
                            let (field, value) = (Element::Bytes(field), Element::Bytes(value));
                            push_packed_entry(vector, true, field, value, 0);
                        } else {
                            replace_packed_value(vector, entry.value_start, entry.value_end, value);
                        }
                    });
                    None
                }
                Err(count) => {
                    packed::edit(buffer, |vector| {
                        let (field, value) = (Element::Bytes(field), Element::Bytes(value));
                        push_packed_entry(vector, expiring, field, value, 0)
                    });
                    Some(count + 1)
                }
            };
            if length_after.is_some_and(|length| length > limits.listpack_entries) {
                self.convert_to_table(0);
            }
            return length_after.is_some();
        }
        self.table_mut()
            .expect("a hash is packed or a table")
            .set(field, value, ttl)
    }

    /// Removes `field`. Returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if let Some((buffer, expiring)) = self.packed_mut() {
            let Some(entry) = (PackedHash { buffer, expiring })
                .find(field)
                .map(|entry| entry.span())
            else {
                return false;
            };
            packed::edit(buffer, |vector| {
                vector.drain(entry.start..entry.end);
            });
            return true;
        }
        self.table_mut()
            .expect("a hash is packed or a table")
            .remove(field)
    }

    /// Random access to the entries, for HRANDFIELD: O(1) per pick on hashtables; a listpack
    /// is indexed once.
    pub fn sampler(&self) -> HashSampler<'_> {
        match self.packed() {
            Some(packed) => HashSampler::Packed(
                packed
                    .entries()
                    .map(|entry| (entry.field, entry.value))
                    .collect(),
            ),
            None => HashSampler::Table(&self.table().expect("a hash is packed or a table").table),
        }
    }

    /// One step of HSCAN: fields, values and expiries (0 for none). A listpack returns
    /// everything and cursor 0; a hashtable visits buckets from `cursor` until it has seen
    /// `count` entries (or visited ten times `count` buckets) and returns the next cursor, as
    /// Redis's `scanGenericCommand`.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(Element<'_>, Element<'_>, u64)>) {
        match self.packed() {
            Some(_) => (0, self.iter_with_expiry().collect()),
            None => {
                let table = self.table().expect("a hash is packed or a table");
                let mut found = Vec::new();
                let next = table.table.scan(cursor, count, |index, entry| {
                    found.push((
                        Element::Bytes(entry.field.as_bytes()),
                        Element::Bytes(entry.value.as_bytes()),
                        table.expiry_at(index),
                    ))
                });
                (next, found)
            }
        }
    }

    /// Heap bytes owned beyond the value's own size (sampled for big hashtables, as Redis's
    /// MEMORY USAGE samples).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Listpack(buffer) => buffer.len(),
            Repr::Boxed(boxed) => {
                std::mem::size_of::<Boxed>()
                    + match &**boxed {
                        Boxed::ListpackExpiring(buffer) => buffer.len(),
                        Boxed::Table(table) => table.heap_bytes(),
                    }
            }
        }
    }

    // ---- Field expiry (Redis 7.4) ----

    /// Whether any field has an expiry.
    pub fn has_field_expiries(&self) -> bool {
        self.next_field_expiry_ms().is_some()
    }

    /// The earliest field expiry, if any field has one.
    pub fn next_field_expiry_ms(&self) -> Option<u64> {
        match &self.repr {
            Repr::Listpack(_) => None,
            Repr::Boxed(boxed) => match &**boxed {
                Boxed::ListpackExpiring(buffer) => PackedHash {
                    buffer,
                    expiring: true,
                }
                .entries()
                .next()
                .map(|entry| entry.expire_at_ms)
                .filter(|&expire_at_ms| expire_at_ms != 0),
                Boxed::Table(table) => table.next_expiry_ms(),
            },
        }
    }

    /// The expiry of `field`.
    pub fn field_expiry(&self, field: &[u8]) -> FieldExpiry {
        let expire_at_ms = match self.packed() {
            Some(packed) => match packed.find(field) {
                None => return FieldExpiry::NoField,
                Some(entry) => entry.expire_at_ms,
            },
            None => {
                let table = self.table().expect("a hash is packed or a table");
                match table.table.find(field) {
                    None => return FieldExpiry::NoField,
                    Some(index) => table.expiry_at(index),
                }
            }
        };
        if expire_at_ms == 0 {
            FieldExpiry::Persistent
        } else {
            FieldExpiry::At(expire_at_ms)
        }
    }

    /// Prepares the hash for field expiries, as Redis 7.4 does at every HEXPIRE-family call: a
    /// listpack becomes an expiring listpack (`listpackex`), for good.
    pub fn prepare_for_field_expiry(&mut self) {
        self.make_listpack_expiring();
    }

    /// Turns a pairs listpack into an expiring one (same order, no expiries yet).
    fn make_listpack_expiring(&mut self) {
        if let Repr::Listpack(buffer) = &self.repr {
            let packed = PackedHash {
                buffer,
                expiring: false,
            };
            let mut vector = Vec::with_capacity(buffer.len() + packed.len());
            for entry in packed.entries() {
                push_packed_entry(&mut vector, true, entry.field, entry.value, 0);
            }
            self.repr = Repr::Boxed(Box::new(Boxed::ListpackExpiring(vector.into_boxed_slice())));
        }
    }

    /// HEXPIRE's work on one field: sets `field` to expire at `expire_at_ms` if `condition`
    /// holds; a time at or before `now_ms` deletes the field instead.
    pub fn expire_field(
        &mut self,
        field: &[u8],
        expire_at_ms: u64,
        condition: ExpireCondition,
        now_ms: u64,
    ) -> ExpireOutcome {
        debug_assert!(expire_at_ms != 0, "0 means no expiry");
        let current = match self.field_expiry(field) {
            FieldExpiry::NoField => return ExpireOutcome::NoField,
            FieldExpiry::Persistent => None,
            FieldExpiry::At(at) => Some(at),
        };
        let allowed = match (condition, current) {
            (ExpireCondition::Always, _) => true,
            (ExpireCondition::IfNone, current) => current.is_none(),
            (ExpireCondition::IfSome, current) => current.is_some(),
            (ExpireCondition::IfLater, None) => false,
            (ExpireCondition::IfLater, Some(current)) => expire_at_ms > current,
            (ExpireCondition::IfEarlier, None) => true,
            (ExpireCondition::IfEarlier, Some(current)) => expire_at_ms < current,
        };
        if !allowed {
            return ExpireOutcome::ConditionNotMet;
        }
        if expire_at_ms <= now_ms {
            self.remove(field);
            return ExpireOutcome::Deleted;
        }
        self.write_field_expiry(field, expire_at_ms);
        ExpireOutcome::Set
    }

    /// HPERSIST's work on one field.
    pub fn persist_field(&mut self, field: &[u8]) -> PersistOutcome {
        match self.field_expiry(field) {
            FieldExpiry::NoField => PersistOutcome::NoField,
            FieldExpiry::Persistent => PersistOutcome::NoExpiry,
            FieldExpiry::At(_) => {
                self.write_field_expiry(field, 0);
                PersistOutcome::Persisted
            }
        }
    }

    /// Stores the expiry of an existing field (0: none), keeping expiring listpacks ordered.
    fn write_field_expiry(&mut self, field: &[u8], expire_at_ms: u64) {
        if expire_at_ms != 0 {
            self.make_listpack_expiring();
        }
        if let Some((buffer, expiring)) = self.packed_mut() {
            assert!(expiring, "a listpack with expiries is an expiring one");
            let (entry, value) = PackedHash { buffer, expiring }
                .find(field)
                .map(|entry| (entry.span(), entry.value.to_vec()))
                .expect("the field exists");
            packed::edit(buffer, |vector| {
                vector.drain(entry.start..entry.end);
                insert_ordered_triple(
                    vector,
                    Element::Bytes(field),
                    Element::Bytes(&value),
                    expire_at_ms,
                );
            });
            return;
        }
        let table = self.table_mut().expect("a hash is packed or a table");
        let index = table.table.find(field).expect("the field exists");
        table.set_expiry_at(index, expire_at_ms);
    }

    /// Removes fields whose expiry is at or before `now_ms`, at most `limit` of them, earliest
    /// first. Returns the removed fields (for propagating their deletion). The caller deletes
    /// the key when the hash becomes empty.
    pub fn remove_expired_fields(&mut self, now_ms: u64, limit: usize) -> Vec<SmallBytes> {
        let mut removed = Vec::new();
        match &mut self.repr {
            Repr::Listpack(_) => {}
            Repr::Boxed(boxed) => match &mut **boxed {
                Boxed::ListpackExpiring(buffer) => {
                    let mut cut = 0;
                    for entry in (PackedHash {
                        buffer,
                        expiring: true,
                    })
                    .entries()
                    {
                        if removed.len() >= limit
                            || entry.expire_at_ms == 0
                            || entry.expire_at_ms > now_ms
                        {
                            break;
                        }
                        removed.push(SmallBytes::from_vec(entry.field.to_vec()));
                        cut = entry.end;
                    }
                    if cut > 0 {
                        packed::edit(buffer, |vector| {
                            vector.drain(..cut);
                        });
                    }
                }
                Boxed::Table(table) => {
                    while removed.len() < limit {
                        let Some((expire_at_ms, index)) = table.first_expiry() else {
                            break;
                        };
                        if expire_at_ms > now_ms {
                            break;
                        }
                        let entry = table.remove_at(index);
                        removed.push(entry.field);
                    }
                }
            },
        }
        removed
    }
}

/// Iterates a hash's fields and values.
pub struct HashIter<'a>(HashExpiryIter<'a>);

impl<'a> Iterator for HashIter<'a> {
    type Item = (Element<'a>, Element<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(field, value, _)| (field, value))
    }
}

/// Iterates a hash's fields, values and expiries (0 for none).
pub struct HashExpiryIter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Packed(PackedEntries<'a>),
    Table(
        std::iter::Enumerate<std::slice::Iter<'a, Slot<FieldEntry>>>,
        Option<&'a [u64]>,
    ),
}

impl<'a> Iterator for HashExpiryIter<'a> {
    type Item = (Element<'a>, Element<'a>, u64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(entries) => entries
                .next()
                .map(|entry| (entry.field, entry.value, entry.expire_at_ms)),
            IterRepr::Table(slots, expiries) => slots.next().map(|(index, slot)| {
                (
                    Element::Bytes(slot.entry.field.as_bytes()),
                    Element::Bytes(slot.entry.value.as_bytes()),
                    expiries.map_or(0, |expiries| expiries[index]),
                )
            }),
        }
    }
}

/// Whether a field with this expiry (0 for none) reads as gone at `now_ms`: Redis 7.4's rule
/// for reads (a field expires after its time; the active cycle removes it at its time).
#[inline]
pub fn is_field_expired(expire_at_ms: u64, now_ms: u64) -> bool {
    expire_at_ms != 0 && expire_at_ms < now_ms
}

/// Random access to a hash's entries.
pub enum HashSampler<'a> {
    Packed(Vec<(Element<'a>, Element<'a>)>),
    Table(&'a DenseTable<FieldEntry>),
}

impl<'a> HashSampler<'a> {
    pub fn len(&self) -> usize {
        match self {
            HashSampler::Packed(entries) => entries.len(),
            HashSampler::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `index` (< `len()`).
    #[inline]
    pub fn get(&self, index: usize) -> (Element<'a>, Element<'a>) {
        match self {
            HashSampler::Packed(entries) => entries[index],
            HashSampler::Table(table) => {
                let entry = table.get(index);
                (
                    Element::Bytes(entry.field.as_bytes()),
                    Element::Bytes(entry.value.as_bytes()),
                )
            }
        }
    }

    /// Whether the entries are kept in an order worth preserving (listpacks), so that unique
    /// samples come out in that order as Redis's do.
    pub fn is_ordered(&self) -> bool {
        matches!(self, HashSampler::Packed(_))
    }
}

/// One field of a hashtable hash.
#[derive(Clone, Debug)]
pub struct FieldEntry {
    field: SmallBytes,
    value: SmallBytes,
}

impl Keyed for FieldEntry {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.field
    }
}

/// The hashtable encoding of a hash.
#[derive(Clone)]
struct FieldTable {
    table: DenseTable<FieldEntry>,
    /// Present only while some field has an expiry.
    expiries: Option<Box<FieldExpiries>>,
}

/// Field expiries of a hashtable hash.
#[derive(Clone)]
struct FieldExpiries {
    /// The expiry of each entry, by entry index; 0 for none.
    at_ms: Vec<u64>,
    /// `(expiry, entry index)` of every entry with an expiry.
    order: BTreeSet<(u64, u32)>,
}

impl FieldTable {
    fn with_capacity(capacity: usize) -> Self {
        FieldTable {
            table: DenseTable::with_capacity(capacity),
            expiries: None,
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn get(&self, field: &[u8]) -> Option<Element<'_>> {
        self.table
            .find(field)
            .map(|index| Element::Bytes(self.table.get(index).value.as_bytes()))
    }

    /// Appends a field known to be absent. Returns its index.
    fn push_new(&mut self, field: &[u8], value: &[u8]) -> usize {
        let hash = self.table.hash_of(field);
        let index = self.table.push_new(
            FieldEntry {
                field: SmallBytes::new(field),
                value: SmallBytes::new(value),
            },
            hash,
        );
        if let Some(expiries) = &mut self.expiries {
            expiries.at_ms.push(0);
        }
        index
    }

    fn set(&mut self, field: &[u8], value: &[u8], ttl: FieldTtl) -> bool {
        match self.table.find(field) {
            Some(index) => {
                self.table.get_mut(index).value = SmallBytes::new(value);
                if ttl == FieldTtl::Clear && self.expiry_at(index) != 0 {
                    self.set_expiry_at(index, 0);
                }
                false
            }
            None => {
                self.push_new(field, value);
                true
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.table.find(field) {
            Some(index) => {
                self.remove_at(index);
                true
            }
            None => false,
        }
    }

    fn remove_at(&mut self, index: usize) -> FieldEntry {
        let (entry, moved_from) = self.table.remove_at(index);
        if let Some(expiries) = &mut self.expiries {
            let removed_at = expiries.at_ms[index];
            if removed_at != 0 {
                expiries.order.remove(&(removed_at, index as u32));
            }
            if let Some(from) = moved_from {
                let moved_at = expiries.at_ms[from];
                if moved_at != 0 {
                    expiries.order.remove(&(moved_at, from as u32));
                    expiries.order.insert((moved_at, index as u32));
                }
            }
            expiries.at_ms.swap_remove(index);
            if expiries.order.is_empty() {
                self.expiries = None;
            }
        }
        entry
    }

    fn expiry_at(&self, index: usize) -> u64 {
        self.expiries
            .as_ref()
            .map_or(0, |expiries| expiries.at_ms[index])
    }

    /// Sets the expiry of entry `index` (0: none).
    fn set_expiry_at(&mut self, index: usize, expire_at_ms: u64) {
        if self.expiries.is_none() {
            if expire_at_ms == 0 {
                return;
            }
            self.expiries = Some(Box::new(FieldExpiries {
                at_ms: vec![0; self.table.len()],
                order: BTreeSet::new(),
            }));
        }
        let expiries = self.expiries.as_mut().expect("just created");
        let previous = expiries.at_ms[index];
        if previous != 0 {
            expiries.order.remove(&(previous, index as u32));
        }
        expiries.at_ms[index] = expire_at_ms;
        if expire_at_ms != 0 {
            expiries.order.insert((expire_at_ms, index as u32));
        }
        if expiries.order.is_empty() {
            self.expiries = None;
        }
    }

    fn first_expiry(&self) -> Option<(u64, usize)> {
        let expiries = self.expiries.as_ref()?;
        expiries
            .order
            .first()
            .map(|&(expire_at_ms, index)| (expire_at_ms, index as usize))
    }

    fn next_expiry_ms(&self) -> Option<u64> {
        self.first_expiry().map(|(expire_at_ms, _)| expire_at_ms)
    }

    fn heap_bytes(&self) -> usize {
        let mut bytes = self
            .table
            .heap_bytes(|entry| entry.field.heap_bytes() + entry.value.heap_bytes());
        if let Some(expiries) = &self.expiries {
            bytes += std::mem::size_of::<FieldExpiries>()
                + expiries.at_ms.capacity() * 8
                // A B-tree node holds up to 11 keys in about 200 bytes.
                + expiries.order.len() * 20;
        }
        bytes
    }
}

/// An element of a packed buffer as stored: bytes, or an integer (a canonical decimal string
/// is stored as its value, as Redis's listpack stores integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element<'a> {
    Bytes(&'a [u8]),
    Integer(i64),
}

impl Element<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Element::Bytes(bytes) => bytes.to_vec(),
            Element::Integer(value) => itoa::Buffer::new().format(*value).as_bytes().to_vec(),
        }
    }

    /// Runs `use_bytes` on the element's bytes (integers formatted on the stack).
    pub fn with_bytes<R>(&self, use_bytes: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Element::Bytes(bytes) => use_bytes(bytes),
            Element::Integer(value) => use_bytes(itoa::Buffer::new().format(*value).as_bytes()),
        }
    }

    /// Length of the element's bytes.
    pub fn len(&self) -> usize {
        match self {
            Element::Bytes(bytes) => bytes.len(),
            Element::Integer(value) => itoa::Buffer::new().format(*value).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element as an integer, when its bytes read as one (Redis's strict syntax).
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Element::Bytes(bytes) => parse_i64(bytes),
            Element::Integer(value) => Some(*value),
        }
    }

    /// Whether the element's bytes are `query`'s.
    #[inline]
    pub(crate) fn matches(&self, query: &Query<'_>) -> bool {
        match self {
            Element::Bytes(bytes) => *bytes == query.bytes,
            Element::Integer(value) => query.integer == Some(*value),
        }
    }
}

/// Bytes looked for among elements, with their integer form computed once.
#[derive(Clone, Copy)]
pub(crate) struct Query<'a> {
    bytes: &'a [u8],
    integer: Option<i64>,
}

impl<'a> Query<'a> {
    #[inline]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Query {
            bytes,
            integer: packed::canonical_integer(bytes),
        }
    }
}

/// Packed element buffers ("listpacks"), shared with sets.
///
/// An element's first byte says what follows:
/// - `0x00..=0x7F`: a string of that many bytes (0 to 127);
/// - `0x80..=0xBF`: a string whose length is the low 6 bits and the next byte (up to 16383);
/// - `0xC0..=0xDF`: the integer 0 to 31 (the low 5 bits), nothing follows;
/// - `0xE0..=0xE7`: an integer in the next 1 to 8 bytes (low 3 bits + 1), little-endian two's
///   complement;
/// - `0xF0`: a string whose length is the next 8 bytes, little-endian.
///
/// A string is stored as an integer exactly when it is one in canonical form (Redis's strict
/// syntax, which formats back to the same bytes), so equal strings always have equal
/// encodings. Buffers are kept exact-size (`Box<[u8]>`): a change goes through [`edit`], which
/// reserves exactly what it adds, so the allocator's in-place reallocation keeps growth cheap
/// and no spare capacity is ever held.
pub(crate) mod packed {
    use super::Element;
    use crate::number::parse_i64;

    const LONG_STRING: u8 = 0xF0;

    /// The integer a string stores as, if it is one in canonical form.
    #[inline]
    pub(crate) fn canonical_integer(bytes: &[u8]) -> Option<i64> {
        if bytes.is_empty() || bytes.len() > 20 {
            return None;
        }
        let first = bytes[0];
        if !(first.is_ascii_digit() || first == b'-') {
            return None;
        }
        parse_i64(bytes)
    }

    /// Bytes (after the tag) that hold `value` in two's complement.
    #[inline]
    fn integer_width(value: i64) -> usize {
        let significant = if value < 0 {
            64 - value.leading_ones() as usize + 1
        } else {
            64 - value.leading_zeros() as usize + 1
        };
        significant.div_ceil(8).clamp(1, 8)
    }

    /// Bytes the element for `bytes` takes.
    #[inline]
    pub(crate) fn encoded_len(bytes: &[u8]) -> usize {
        match canonical_integer(bytes) {
            Some(value) => integer_len(value),
            None => string_len(bytes.len()),
        }
    }

    #[inline]
    fn integer_len(value: i64) -> usize {
        if (0..32).contains(&value) {
            1
        } else {
            1 + integer_width(value)
        }
    }

    #[inline]
    fn string_len(length: usize) -> usize {
        if length < 0x80 {
            1 + length
        } else if length < 0x4000 {
            2 + length
        } else {
            9 + length
        }
    }

    /// Bytes the element takes.
    #[inline]
    pub(crate) fn element_len(element: Element<'_>) -> usize {
        match element {
            Element::Bytes(bytes) => encoded_len(bytes),
            Element::Integer(value) => integer_len(value),
        }
    }

    pub(crate) fn push_integer(out: &mut Vec<u8>, value: i64) {
        if (0..32).contains(&value) {
            out.push(0xC0 | value as u8);
            return;
        }
        let width = integer_width(value);
        out.push(0xE0 | (width - 1) as u8);
        out.extend_from_slice(&value.to_le_bytes()[..width]);
    }

    /// Appends the element for `bytes` (an integer if it is one).
    pub(crate) fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
        if let Some(value) = canonical_integer(bytes) {
            push_integer(out, value);
            return;
        }
        let length = bytes.len();
        if length < 0x80 {
            out.push(length as u8);
        } else if length < 0x4000 {
            out.push(0x80 | (length >> 8) as u8);
            out.push(length as u8);
        } else {
            out.push(LONG_STRING);
            out.extend_from_slice(&(length as u64).to_le_bytes());
        }
        out.extend_from_slice(bytes);
    }

    pub(crate) fn push_element(out: &mut Vec<u8>, element: Element<'_>) {
        match element {
            Element::Bytes(bytes) => push_bytes(out, bytes),
            Element::Integer(value) => push_integer(out, value),
        }
    }

    /// Reads the element at `position`; returns it and the position after it.
    #[inline]
    pub(crate) fn read_element(buffer: &[u8], position: usize) -> (Element<'_>, usize) {
        let tag = buffer[position];
        let (start, length) = match tag {
            0x00..=0x7F => (position + 1, tag as usize),
            0x80..=0xBF => (
                position + 2,
                ((tag & 0x3F) as usize) << 8 | buffer[position + 1] as usize,
            ),
            0xC0..=0xDF => return (Element::Integer((tag & 0x1F) as i64), position + 1),
            0xE0..=0xE7 => {
                let width = (tag & 0x07) as usize + 1;
                let mut bytes = [0u8; 8];
                bytes[..width].copy_from_slice(&buffer[position + 1..position + 1 + width]);
                let shift = 64 - 8 * width as u32;
                let value = (i64::from_le_bytes(bytes) << shift) >> shift;
                return (Element::Integer(value), position + 1 + width);
            }
            LONG_STRING => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buffer[position + 1..position + 9]);
                (position + 9, u64::from_le_bytes(bytes) as usize)
            }
            _ => panic!("corrupt packed buffer: tag {tag:#x}"),
        };
        let end = start + length;
        (Element::Bytes(&buffer[start..end]), end)
    }

    /// Bytes the varint encoding of `value` takes.
    #[inline]
    pub(crate) fn varint_len(mut value: u64) -> usize {
        let mut length = 1;
        while value >= 0x80 {
            value >>= 7;
            length += 1;
        }
        length
    }

    #[inline]
    pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// Reads a varint at `position`; returns it and the position after it.
    #[inline]
    pub(crate) fn read_varint(buffer: &[u8], position: usize) -> (u64, usize) {
        let first = buffer[position];
        if first < 0x80 {
            return (first as u64, position + 1);
        }
        let mut value = (first & 0x7f) as u64;
        let mut shift = 7;
        let mut at = position + 1;
        loop {
            let byte = buffer[at];
            at += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return (value, at);
            }
            shift += 7;
        }
    }

    /// Runs `change` on the buffer as a `Vec`, then stores it back exact-size.
    pub(crate) fn edit<R>(buffer: &mut Box<[u8]>, change: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut vector = std::mem::take(buffer).into_vec();
        let result = change(&mut vector);
        *buffer = vector.into_boxed_slice();
        result
    }

    /// Iterates the elements of a buffer holding only elements.
    pub(crate) fn elements(buffer: &[u8]) -> Elements<'_> {
        Elements {
            buffer,
            position: 0,
        }
    }

    pub(crate) struct Elements<'a> {
        buffer: &'a [u8],
        position: usize,
    }

    impl<'a> Elements<'a> {
        /// Where the next element starts.
        pub(crate) fn position(&self) -> usize {
            self.position
        }
    }

    impl<'a> Iterator for Elements<'a> {
        type Item = Element<'a>;

        #[inline]
        fn next(&mut self) -> Option<Element<'a>> {
            if self.position >= self.buffer.len() {
                return None;
            }
            let (element, next) = read_element(self.buffer, self.position);
            self.position = next;
            Some(element)
        }
    }
}

/// What a [`DenseTable`] entry is looked up by.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

/// No entry (end of a chain, empty bucket).
const NONE: u32 = u32::MAX;
/// Fewest buckets a non-empty table has.
const BUCKETS_MIN: usize = 4;

/// One entry of a [`DenseTable`] with its cached hash and chain link.
#[derive(Clone, Debug)]
pub struct Slot<E> {
    entry: E,
    hash: u32,
    next: u32,
}

impl<E> Slot<E> {
    #[inline]
    pub fn entry(&self) -> &E {
        &self.entry
    }
}

/// A hash table whose entries are dense in one `Vec` (see the module documentation).
#[derive(Clone)]
pub struct DenseTable<E> {
    slots: Vec<Slot<E>>,
    /// Power-of-two count (or empty); each the index of its chain's first entry, or `NONE`.
    buckets: Box<[u32]>,
    hasher: foldhash::fast::RandomState,
}

impl<E: Keyed> DenseTable<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut table = DenseTable {
            slots: Vec::with_capacity(capacity),
            buckets: Box::default(),
            hasher: foldhash::fast::RandomState::default(),
        };
        if capacity > 0 {
            table.rebuild(capacity.next_power_of_two().max(BUCKETS_MIN));
        }
        table
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    #[inline]
    pub fn hash_of(&self, key: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(key);
        (hash ^ (hash >> 32)) as u32
    }

    #[inline]
    fn bucket_of(&self, hash: u32) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    /// The index of the entry with `key`.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        self.find_hashed(key, self.hash_of(key))
    }

    #[inline]
    pub fn find_hashed(&self, key: &[u8], hash: u32) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut index = self.buckets[self.bucket_of(hash)];
        while index != NONE {
            let slot = &self.slots[index as usize];
            if slot.hash == hash && slot.entry.key() == key {
                return Some(index as usize);
            }
            index = slot.next;
        }
        None
    }

    #[inline]
    pub fn get(&self, index: usize) -> &E {
        &self.slots[index].entry
    }

    #[inline]
    pub fn get_mut(&mut self, index: usize) -> &mut E {
        &mut self.slots[index].entry
    }

    /// Every entry, in index order.
    pub fn entries(&self) -> std::slice::Iter<'_, Slot<E>> {
        self.slots.iter()
    }

    /// Every entry, in index order (entries only).
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.slots.iter().map(|slot| &slot.entry)
    }

    /// Makes room for `additional` more entries without rebuilding the index.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.slots.len() + additional;
        self.slots.reserve(additional);
        if wanted > self.buckets.len() {
            self.rebuild(wanted.next_power_of_two().max(BUCKETS_MIN));
        }
    }

    /// Adds an entry whose key is absent, with its `hash` from [`hash_of`](Self::hash_of).
    /// Returns its index.
    pub fn push_new(&mut self, entry: E, hash: u32) -> usize {
        debug_assert!(self.find_hashed(entry.key(), hash).is_none());
        assert!(self.slots.len() < NONE as usize, "table is full");
        if self.slots.len() + 1 > self.buckets.len() {
            let count = (self.buckets.len() * 2).max(BUCKETS_MIN);
            self.rebuild(count);
        }
        let index = self.slots.len();
        let bucket = self.bucket_of(hash);
        self.slots.push(Slot {
            entry,
            hash,
            next: self.buckets[bucket],
        });
        self.buckets[bucket] = index as u32;
        index
    }

    /// Re-links every entry into `count` buckets.
    fn rebuild(&mut self, count: usize) {
        debug_assert!(count.is_power_of_two() && count >= self.slots.len());
        let mut buckets = vec![NONE; count].into_boxed_slice();
        let mask = count - 1;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let bucket = slot.hash as usize & mask;
            slot.next = buckets[bucket];
            buckets[bucket] = index as u32;
        }
        self.buckets = buckets;
    }

    /// Points whatever link points at entry `from` to `to` instead.
    fn relink(&mut self, from: u32, to: u32) {
        let bucket = self.bucket_of(self.slots[from as usize].hash);
        if self.buckets[bucket] == from {
            self.buckets[bucket] = to;
            return;
        }
        let mut index = self.buckets[bucket];
        loop {
            let next = self.slots[index as usize].next;
            if next == from {
                self.slots[index as usize].next = to;
                return;
            }
            assert!(next != NONE, "entry is in its bucket's chain");
            index = next;
        }
    }

    /// Removes the entry at `index`; the last entry moves into its place. Returns the entry and,
    /// when an entry moved, the index it moved from.
    pub fn remove_at(&mut self, index: usize) -> (E, Option<usize>) {
        let removed = index as u32;
        let next = self.slots[index].next;
        self.relink(removed, next);
        let last = self.slots.len() - 1;
        let moved_from = if index != last {
            self.relink(last as u32, removed);
            Some(last)
        } else {
            None
        };
        let slot = self.slots.swap_remove(index);
        self.maybe_shrink();
        (slot.entry, moved_from)
    }

    /// Removes the entry with `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let index = self.find(key)?;
        Some(self.remove_at(index).0)
    }

    /// Shrinks the index (and the entries' spare room) once the table is mostly empty, as
    /// Redis shrinks a dict under 10% full.
    fn maybe_shrink(&mut self) {
        let length = self.slots.len();
        if self.buckets.len() > BUCKETS_MIN && length * 10 < self.buckets.len() {
            self.rebuild(length.next_power_of_two().max(BUCKETS_MIN));
        }
        if self.slots.capacity() > BUCKETS_MIN && length * 4 < self.slots.capacity() {
            self.slots.shrink_to(length * 2);
        }
    }

    /// Visits the entries of the bucket at `cursor` and returns the next cursor (0 when every
    /// bucket was visited): Redis's reverse-binary cursor.
    pub fn scan_bucket<'a>(&'a self, cursor: u64, mut visit: impl FnMut(usize, &'a E)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut index = self.buckets[(cursor & mask) as usize];
        while index != NONE {
            let slot = &self.slots[index as usize];
            visit(index as usize, &slot.entry);
            index = slot.next;
        }
        let mut next = cursor | !mask;
        next = next.reverse_bits().wrapping_add(1).reverse_bits();
        next
    }

    /// Scans buckets from `cursor` until `count` entries were seen, every bucket was visited,
    /// or ten times `count` buckets were visited (Redis's SCAN loop). Returns the next cursor.
    pub fn scan<'a>(
        &'a self,
        mut cursor: u64,
        count: usize,
        mut visit: impl FnMut(usize, &'a E),
    ) -> u64 {
        let mut seen = 0usize;
        let mut iterations_left = count.saturating_mul(10);
        loop {
            cursor = self.scan_bucket(cursor, |index, entry| {
                seen += 1;
                visit(index, entry);
            });
            if cursor == 0 || iterations_left == 0 || seen >= count {
                return cursor;
            }
            iterations_left -= 1;
        }
    }

    /// Heap bytes: the entries, the index, plus what `entry_heap` says each entry owns
    /// (sampled on the first five entries for big tables).
    pub fn heap_bytes(&self, entry_heap: impl Fn(&E) -> usize) -> usize {
        const SAMPLES: usize = 5;
        let fixed = self.slots.capacity() * std::mem::size_of::<Slot<E>>() + self.buckets.len() * 4;
        let sampled: usize = self
            .slots
            .iter()
            .take(SAMPLES)
            .map(|slot| entry_heap(&slot.entry))
            .sum();
        let taken = self.slots.len().min(SAMPLES);
        let owned = (sampled * self.slots.len()).checked_div(taken).unwrap_or(0);
        fixed + owned
    }

    /// Checks the index against the entries (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut reached = 0;
        for (bucket, &head) in self.buckets.iter().enumerate() {
            let mut index = head;
            while index != NONE {
                let slot = &self.slots[index as usize];
                assert_eq!(self.bucket_of(slot.hash), bucket);
                assert_eq!(slot.hash, self.hash_of(slot.entry.key()));
                reached += 1;
                index = slot.next;
            }
        }
        assert_eq!(reached, self.slots.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeMap, HashMap, HashSet};

    fn limits() -> HashLimits {
        HashLimits::default()
    }

    fn contents(hash: &Hash) -> BTreeMap<Vec<u8>, Vec<u8>> {
        hash.iter()
            .map(|(field, value)| (field.to_vec(), value.to_vec()))
            .collect()
    }

    fn fields(hash: &Hash) -> Vec<String> {
        hash.iter()
            .map(|(field, _)| String::from_utf8_lossy(&field.to_vec()).into_owned())
            .collect()
    }

    #[test]
    fn hash_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Hash>(), 16);
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut buffer = Vec::new();
            packed::push_varint(&mut buffer, value);
            assert_eq!(buffer.len(), packed::varint_len(value));
            assert_eq!(packed::read_varint(&buffer, 0), (value, buffer.len()));
        }
    }

    #[test]
    fn elements_round_trip_with_integers_compact() {
        let long = vec![b'x'; 20000];
        let cases: Vec<(Vec<u8>, usize)> = vec![
            (b"".to_vec(), 1),
            (b"a".to_vec(), 2),
            (b"0".to_vec(), 1),
            (b"31".to_vec(), 1),
            (b"32".to_vec(), 2),
            (b"-1".to_vec(), 2),
            (b"127".to_vec(), 2),
            (b"128".to_vec(), 3),
            (b"-129".to_vec(), 3),
            (b"2000000000".to_vec(), 5),
            (b"9223372036854775807".to_vec(), 9),
            (b"-9223372036854775808".to_vec(), 9),
            (b"01".to_vec(), 3),
            (b"-0".to_vec(), 3),
            (b"+1".to_vec(), 3),
            (b"1 ".to_vec(), 3),
            (b"9223372036854775808".to_vec(), 20),
            (vec![b'y'; 127], 128),
            (vec![b'y'; 128], 130),
            (vec![b'y'; 16383], 16385),
            (long.clone(), 20009),
        ];
        let mut buffer = Vec::new();
        for (bytes, size) in &cases {
            let before = buffer.len();
            packed::push_bytes(&mut buffer, bytes);
            assert_eq!(
                buffer.len() - before,
                *size,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(packed::encoded_len(bytes), *size);
        }
        let read: Vec<Vec<u8>> = packed::elements(&buffer)
            .map(|element| element.to_vec())
            .collect();
        let expected: Vec<Vec<u8>> = cases.iter().map(|(bytes, _)| bytes.clone()).collect();
        assert_eq!(read, expected);
        for value in [
            i64::MIN,
            -70000,
            -1,
            0,
            5,
            31,
            32,
            255,
            256,
            70000,
            i64::MAX,
        ] {
            let mut buffer = Vec::new();
            packed::push_integer(&mut buffer, value);
            assert_eq!(
                packed::read_element(&buffer, 0),
                (Element::Integer(value), buffer.len())
            );
        }
    }

    #[test]
    fn small_hash_is_a_compact_listpack() {
        let mut hash = Hash::new();
        assert!(hash.is_empty());
        for index in 0..10 {
            let field = format!("field:{index}");
            let value = format!("value:{index}");
            assert!(hash.set(
                field.as_bytes(),
                value.as_bytes(),
                FieldTtl::Clear,
                &limits()
            ));
        }
        assert_eq!(hash.encoding_name(), "listpack");
        assert_eq!(hash.len(), 10);
        // 20 elements of 7 bytes, one length byte each.
        assert_eq!(hash.heap_bytes(), 160);
        // Integers take their binary width: 0 to 31 a single byte.
        let mut numbers = Hash::new();
        numbers.set(b"1", b"100000", FieldTtl::Clear, &limits());
        assert_eq!(numbers.heap_bytes(), 1 + 4);
        assert_eq!(numbers.get(b"1"), Some(Element::Integer(100000)));
        assert_eq!(numbers.get(b"01"), None);
        assert_eq!(hash.get(b"field:3"), Some(Element::Bytes(b"value:3")));
        assert!(!hash.set(b"field:3", b"x", FieldTtl::Clear, &limits()));
        assert_eq!(hash.get(b"field:3"), Some(Element::Bytes(b"x")));
        assert_eq!(hash.len(), 10);
        assert!(hash.remove(b"field:0"));
        assert!(!hash.remove(b"field:0"));
        assert_eq!(fields(&hash)[0], "field:1");
    }

    #[test]
    fn converts_when_redis_converts() {
        let limits = limits();
        // Too many fields after an insert.
        let mut hash = Hash::new();
        for index in 0..128 {
            hash.set(index.to_string().as_bytes(), b"v", FieldTtl::Clear, &limits);
        }
        assert_eq!(hash.encoding_name(), "listpack");
        hash.set(b"one more", b"v", FieldTtl::Clear, &limits);
        assert_eq!(hash.encoding_name(), "hashtable");
        assert_eq!(hash.len(), 129);
        // Never back.
        for index in 0..100 {
            hash.remove(index.to_string().as_bytes());
        }
        assert_eq!(hash.encoding_name(), "hashtable");

        // A long value.
        let mut hash = Hash::new();
        hash.set(b"f", &[b'x'; 64], FieldTtl::Clear, &limits);
        assert_eq!(hash.encoding_name(), "listpack");
        hash.set(b"g", &[b'x'; 65], FieldTtl::Clear, &limits);
        assert_eq!(hash.encoding_name(), "hashtable");

        // The arguments of a command, even when nothing gets written.
        let mut hash = Hash::new();
        hash.set(b"f", b"v", FieldTtl::Clear, &limits);
        hash.prepare_for_pairs(&[b"f", &[b'y'; 65]], &limits);
        assert_eq!(hash.encoding_name(), "hashtable");
        let mut hash = Hash::new();
        let pairs: Vec<&[u8]> = (0..258).map(|_| &b"same"[..]).collect();
        hash.prepare_for_pairs(&pairs, &limits);
        assert_eq!(hash.encoding_name(), "hashtable");
        let mut hash = Hash::new();
        let pairs: Vec<&[u8]> = (0..256).map(|_| &b"same"[..]).collect();
        hash.prepare_for_pairs(&pairs, &limits);
        assert_eq!(hash.encoding_name(), "listpack");
    }

    #[test]
    fn randomized_against_std_map() {
        let mut rng = SmallRng::seed_from_u64(7);
        for round in 0..40 {
            let limits = HashLimits {
                listpack_entries: [0, 1, 8, 128][round % 4],
                listpack_value: [4, 64][round % 2],
            };
            let mut hash = Hash::new();
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let key_space = [4u64, 50, 400][round % 3];
            for _ in 0..1500 {
                let field = format!("f{}", rng.random_range(0..key_space)).into_bytes();
                match rng.random_range(0..10) {
                    0..=5 => {
                        let length = rng.random_range(0..10);
                        let value: Vec<u8> = (0..length).map(|_| rng.random()).collect();
                        let created = hash.set(&field, &value, FieldTtl::Clear, &limits);
                        assert_eq!(created, model.insert(field, value).is_none());
                    }
                    6..=8 => {
                        assert_eq!(hash.remove(&field), model.remove(&field).is_some());
                    }
                    _ => {
                        assert_eq!(
                            hash.get(&field).map(|value| value.to_vec()),
                            model.get(&field).cloned()
                        );
                    }
                }
                assert_eq!(hash.len(), model.len());
            }
            let expected: BTreeMap<Vec<u8>, Vec<u8>> = model.into_iter().collect();
            assert_eq!(contents(&hash), expected);
            if let Some(table) = hash.table() {
                table.table.check();
            }
        }
    }

    #[test]
    fn sampler_reaches_every_entry() {
        let mut rng = SmallRng::seed_from_u64(1);
        for size in [3usize, 500] {
            let mut hash = Hash::new();
            for index in 0..size {
                hash.set(
                    index.to_string().as_bytes(),
                    b"v",
                    FieldTtl::Clear,
                    &limits(),
                );
            }
            let sampler = hash.sampler();
            assert_eq!(sampler.len(), size);
            let mut seen = HashSet::new();
            for _ in 0..size * 20 {
                seen.insert(sampler.get(rng.random_range(0..size)).0.to_vec());
            }
            assert_eq!(seen.len(), size);
        }
    }

    #[test]
    fn scan_returns_everything_across_changes() {
        let mut hash = Hash::new();
        for index in 0..1000 {
            hash.set(
                index.to_string().as_bytes(),
                b"v",
                FieldTtl::Clear,
                &limits(),
            );
        }
        // Fields present for the whole scan are returned at least once, even when the table
        // grows and shrinks in between.
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, found) = hash.scan(cursor, 10);
            seen.extend(found.iter().map(|(field, _, _)| field.to_vec()));
            step += 1;
            if step == 5 {
                for index in 1000..5000 {
                    hash.set(
                        index.to_string().as_bytes(),
                        b"v",
                        FieldTtl::Clear,
                        &limits(),
                    );
                }
            }
            if step == 50 {
                for index in 1000..5000 {
                    hash.remove(index.to_string().as_bytes());
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for index in 0..1000 {
            assert!(seen.contains(index.to_string().as_bytes()), "{index}");
        }
        // A listpack returns everything at once.
        let mut small = Hash::new();
        small.set(b"a", b"1", FieldTtl::Clear, &limits());
        assert_eq!(
            small.scan(123, 1),
            (0, vec![(Element::Bytes(b"a"), Element::Integer(1), 0)])
        );
    }

    #[test]
    fn dense_table_removal_keeps_index() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut table: DenseTable<FieldEntry> = DenseTable::with_capacity(0);
        let mut model = HashSet::new();
        for _ in 0..20000 {
            let key = rng.random_range(0..3000u32).to_string().into_bytes();
            if rng.random_bool(0.55) {
                if model.insert(key.clone()) {
                    let hash = table.hash_of(&key);
                    table.push_new(
                        FieldEntry {
                            field: SmallBytes::new(&key),
                            value: SmallBytes::new(b""),
                        },
                        hash,
                    );
                }
            } else {
                assert_eq!(table.remove(&key).is_some(), model.remove(&key));
            }
        }
        table.check();
        assert_eq!(table.len(), model.len());
        for key in &model {
            assert!(table.find(key).is_some());
        }
    }

    fn expiring_hash(fields: &[&str]) -> Hash {
        let mut hash = Hash::new();
        for field in fields {
            hash.set(field.as_bytes(), b"v", FieldTtl::Clear, &limits());
        }
        hash
    }

    #[test]
    fn field_expiry_in_a_listpack_orders_like_redis() {
        // Any HEXPIRE-family call makes a listpack a listpackex, for good (Redis 7.4).
        let mut prepared = expiring_hash(&["x", "y"]);
        prepared.prepare_for_field_expiry();
        assert_eq!(prepared.encoding_name(), "listpackex");
        assert_eq!(prepared.next_field_expiry_ms(), None);
        assert_eq!(fields(&prepared), ["x", "y"]);
        prepared.set(b"z", b"1", FieldTtl::Clear, &limits());
        assert_eq!(fields(&prepared), ["x", "y", "z"]);
        let mut hash = expiring_hash(&["a", "b", "c", "d"]);
        assert_eq!(hash.next_field_expiry_ms(), None);
        let now = 1000;
        assert_eq!(
            hash.expire_field(b"c", 5000, ExpireCondition::Always, now),
            ExpireOutcome::Set
        );
        assert_eq!(hash.encoding_name(), "listpackex");
        assert_eq!(fields(&hash), ["c", "a", "b", "d"]);
        assert_eq!(
            hash.expire_field(b"d", 3000, ExpireCondition::Always, now),
            ExpireOutcome::Set
        );
        assert_eq!(fields(&hash), ["d", "c", "a", "b"]);
        assert_eq!(hash.next_field_expiry_ms(), Some(3000));
        assert_eq!(hash.field_expiry(b"c"), FieldExpiry::At(5000));
        assert_eq!(hash.field_expiry(b"a"), FieldExpiry::Persistent);
        assert_eq!(hash.field_expiry(b"z"), FieldExpiry::NoField);
        // Conditions.
        assert_eq!(
            hash.expire_field(b"a", 9000, ExpireCondition::IfSome, now),
            ExpireOutcome::ConditionNotMet
        );
        assert_eq!(
            hash.expire_field(b"a", 9000, ExpireCondition::IfLater, now),
            ExpireOutcome::ConditionNotMet
        );
        assert_eq!(
            hash.expire_field(b"c", 4000, ExpireCondition::IfLater, now),
            ExpireOutcome::ConditionNotMet
        );
        assert_eq!(
            hash.expire_field(b"c", 4000, ExpireCondition::IfEarlier, now),
            ExpireOutcome::Set
        );
        assert_eq!(
            hash.expire_field(b"c", 4000, ExpireCondition::IfNone, now),
            ExpireOutcome::ConditionNotMet
        );
        assert_eq!(
            hash.expire_field(b"z", 4000, ExpireCondition::Always, now),
            ExpireOutcome::NoField
        );
        // HINCRBY keeps the expiry in place; HSET clears it and moves the field last.
        hash.set(b"c", b"2", FieldTtl::Keep, &limits());
        assert_eq!(hash.field_expiry(b"c"), FieldExpiry::At(4000));
        hash.set(b"d", b"new", FieldTtl::Clear, &limits());
        assert_eq!(hash.field_expiry(b"d"), FieldExpiry::Persistent);
        assert_eq!(fields(&hash), ["c", "a", "b", "d"]);
        // Persist.
        assert_eq!(hash.persist_field(b"a"), PersistOutcome::NoExpiry);
        assert_eq!(hash.persist_field(b"q"), PersistOutcome::NoField);
        assert_eq!(hash.persist_field(b"c"), PersistOutcome::Persisted);
        assert_eq!(fields(&hash), ["a", "b", "d", "c"]);
        assert_eq!(hash.next_field_expiry_ms(), None);
        // A past time deletes.
        assert_eq!(
            hash.expire_field(b"a", 1000, ExpireCondition::Always, now),
            ExpireOutcome::Deleted
        );
        assert!(!hash.contains(b"a"));
    }

    #[test]
    fn expired_fields_are_removed_earliest_first() {
        for big in [false, true] {
            let mut hash = Hash::new();
            let count = if big { 300 } else { 20 };
            for index in 0..count {
                hash.set(
                    format!("f{index}").as_bytes(),
                    b"v",
                    FieldTtl::Clear,
                    &limits(),
                );
            }
            for index in 0..count {
                if index % 2 == 0 {
                    let at = 10_000 + index as u64;
                    hash.expire_field(
                        format!("f{index}").as_bytes(),
                        at,
                        ExpireCondition::Always,
                        0,
                    );
                }
            }
            assert_eq!(
                hash.encoding_name(),
                if big { "hashtable" } else { "listpackex" }
            );
            assert_eq!(hash.next_field_expiry_ms(), Some(10_000));
            assert!(hash.remove_expired_fields(9_999, usize::MAX).is_empty());
            let removed = hash.remove_expired_fields(10_004, 2);
            assert_eq!(
                removed,
                vec![SmallBytes::new(b"f0"), SmallBytes::new(b"f2")]
            );
            let removed = hash.remove_expired_fields(10_004, usize::MAX);
            assert_eq!(removed, vec![SmallBytes::new(b"f4")]);
            assert_eq!(hash.len(), count - 3);
            let removed = hash.remove_expired_fields(u64::MAX, usize::MAX);
            assert_eq!(removed.len(), count / 2 - 3);
            assert_eq!(hash.len(), count / 2);
            assert_eq!(hash.next_field_expiry_ms(), None);
            assert!(!hash.has_field_expiries());
        }
    }

    #[test]
    fn expiries_survive_conversion_and_swap_removal() {
        let mut rng = SmallRng::seed_from_u64(11);
        let mut hash = Hash::new();
        let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
        for index in 0..100 {
            let field = format!("f{index}").into_bytes();
            hash.set(&field, b"v", FieldTtl::Clear, &limits());
            let at = rng.random_range(1..1000u64) + 1000;
            hash.expire_field(&field, at, ExpireCondition::Always, 0);
            model.insert(field, at);
        }
        assert_eq!(hash.encoding_name(), "listpackex");
        for index in 100..400 {
            let field = format!("f{index}").into_bytes();
            hash.set(&field, b"v", FieldTtl::Clear, &limits());
            model.insert(field, 0);
        }
        assert_eq!(hash.encoding_name(), "hashtable");
        for _ in 0..2000 {
            let field = format!("f{}", rng.random_range(0..500)).into_bytes();
            match rng.random_range(0..4) {
                0 => {
                    assert_eq!(hash.remove(&field), model.remove(&field).is_some());
                }
                1 => {
                    let at = rng.random_range(1..1000u64) + 1000;
                    let outcome = hash.expire_field(&field, at, ExpireCondition::Always, 0);
                    if let Some(slot) = model.get_mut(&field) {
                        assert_eq!(outcome, ExpireOutcome::Set);
                        *slot = at;
                    } else {
                        assert_eq!(outcome, ExpireOutcome::NoField);
                    }
                }
                2 => {
                    hash.persist_field(&field);
                    if let Some(slot) = model.get_mut(&field) {
                        *slot = 0;
                    }
                }
                _ => {
                    let created = hash.set(&field, b"w", FieldTtl::Clear, &limits());
                    assert_eq!(created, model.insert(field, 0).is_none());
                }
            }
        }
        for (field, at) in &model {
            let expected = if *at == 0 {
                FieldExpiry::Persistent
            } else {
                FieldExpiry::At(*at)
            };
            assert_eq!(hash.field_expiry(field), expected);
        }
        let due: usize = model.values().filter(|&&at| at != 0 && at <= 1500).count();
        assert_eq!(hash.remove_expired_fields(1500, usize::MAX).len(), due);
        assert_eq!(hash.len(), model.len() - due);
        hash.table().unwrap().table.check();
    }
}
