//! Sets: unordered collections of unique byte strings, in Redis 7.2's three encodings.
//!
//! Encodings (what OBJECT ENCODING names).
//! - `intset`: while every member is an integer (Redis's strict syntax) and there are at most
//!   `set-max-intset-entries`: a sorted array of integers of the smallest width (16, 32 or 64
//!   bits) that holds them all; membership is a binary search. The width only grows.
//! - `listpack`: small sets with other members (at most `set-max-listpack-entries`, each at
//!   most `set-max-listpack-value` bytes): one packed buffer of elements (see
//!   [`crate::hash`]'s packed buffers), in insertion order.
//! - `hashtable`: a [`DenseTable`] of members: O(1) membership, O(1) random member (SPOP,
//!   SRANDMEMBER), SSCAN cursors with Redis's guarantees.
//!
//! Conversions follow Redis 7.2's `t_set.c` at the same moments: [`Set::create_for`] (the first
//! member and a size hint choose the encoding), [`Set::maybe_convert`] (a command about to add
//! many members), [`Set::add`] (an intset meeting a non-integer becomes a listpack if it would
//! fit, else a hashtable; a listpack or intset growing past its limit becomes a hashtable), and
//! the rebuilds of SPOP with a count and the STORE commands. Nothing converts back from a
//! hashtable except where Redis builds a new set (SPOP's "keep few" strategy, the STORE
//! commands).

use rand::Rng;

use crate::hash::{packed, DenseTable, Keyed, Query, Slot};
use crate::number::parse_i64;
use crate::small_bytes::SmallBytes;

/// The encoding limits a set obeys (Redis's `set-max-*` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    pub intset_entries: usize,
    pub listpack_entries: usize,
    pub listpack_value: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits {
            intset_entries: 512,
            listpack_entries: 128,
            listpack_value: 64,
        }
    }
}

impl SetLimits {
    /// Redis caps intsets at 2^30 entries whatever the configuration says.
    fn intset_max(&self) -> usize {
        self.intset_entries.min(1 << 30)
    }
}

/// A member as stored: bytes, or an integer (intsets hold integers; listpacks store canonical
/// integers as integers).
pub use crate::hash::Element as Member;

/// A set value.
#[derive(Clone)]
pub struct Set {
    repr: SetRepr,
}

#[derive(Clone)]
enum SetRepr {
    IntSet(IntSet),
    Listpack(Box<[u8]>),
    Table(Box<DenseTable<MemberEntry>>),
}

impl std::fmt::Debug for Set {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_set()
            .entries(
                self.iter()
                    .map(|member| String::from_utf8_lossy(&member.to_vec()).into_owned()),
            )
            .finish()
    }
}

/// One member of a hashtable set.
#[derive(Clone, Debug)]
pub struct MemberEntry(SmallBytes);

impl Keyed for MemberEntry {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Sorted integers in the narrowest width holding them all.
#[derive(Clone, Debug)]
enum IntSet {
    Narrow(Vec<i16>),
    Medium(Vec<i32>),
    Wide(Vec<i64>),
}

impl IntSet {
    fn len(&self) -> usize {
        match self {
            IntSet::Narrow(values) => values.len(),
            IntSet::Medium(values) => values.len(),
            IntSet::Wide(values) => values.len(),
        }
    }

    #[inline]
    fn get(&self, index: usize) -> i64 {
        match self {
            IntSet::Narrow(values) => values[index] as i64,
            IntSet::Medium(values) => values[index] as i64,
            IntSet::Wide(values) => values[index],
        }
    }

    /// Where `value` is (`Ok`) or would go (`Err`).
    fn search(&self, value: i64) -> Result<usize, usize> {
        match self {
            IntSet::Narrow(values) => match i16::try_from(value) {
                Ok(value) => values.binary_search(&value),
                Err(_) => Err(if value < 0 { 0 } else { values.len() }),
            },
            IntSet::Medium(values) => match i32::try_from(value) {
                Ok(value) => values.binary_search(&value),
                Err(_) => Err(if value < 0 { 0 } else { values.len() }),
            },
            IntSet::Wide(values) => values.binary_search(&value),
        }
    }

    fn contains(&self, value: i64) -> bool {
        self.search(value).is_ok()
    }

    /// Widens the storage so that `value` fits.
    fn widen_for(&mut self, value: i64) {
        let needs_wide = i32::try_from(value).is_err();
        let needs_medium = i16::try_from(value).is_err();
        match self {
            IntSet::Narrow(values) if needs_wide => {
                *self = IntSet::Wide(values.iter().map(|&value| value as i64).collect())
            }
            IntSet::Narrow(values) if needs_medium => {
                *self = IntSet::Medium(values.iter().map(|&value| value as i32).collect())
            }
            IntSet::Medium(values) if needs_wide => {
                *self = IntSet::Wide(values.iter().map(|&value| value as i64).collect())
            }
            _ => {}
        }
    }

    fn insert(&mut self, value: i64) -> bool {
        let Err(position) = self.search(value) else {
            return false;
        };
        self.widen_for(value);
        match self {
            IntSet::Narrow(values) => values.insert(position, value as i16),
            IntSet::Medium(values) => values.insert(position, value as i32),
            IntSet::Wide(values) => values.insert(position, value),
        }
        true
    }

    fn remove(&mut self, value: i64) -> bool {
        let Ok(position) = self.search(value) else {
            return false;
        };
        match self {
            IntSet::Narrow(values) => {
                values.remove(position);
            }
            IntSet::Medium(values) => {
                values.remove(position);
            }
            IntSet::Wide(values) => {
                values.remove(position);
            }
        }
        true
    }

    fn heap_bytes(&self) -> usize {
        match self {
            IntSet::Narrow(values) => values.capacity() * 2,
            IntSet::Medium(values) => values.capacity() * 4,
            IntSet::Wide(values) => values.capacity() * 8,
        }
    }

    fn width_bytes(&self) -> usize {
        match self {
            IntSet::Narrow(_) => 2,
            IntSet::Medium(_) => 4,
            IntSet::Wide(_) => 8,
        }
    }
}

/// Characters of `value` in decimal, sign included (Redis's `sdigits10`).
fn decimal_len(value: i64) -> usize {
    itoa::Buffer::new().format(value).len()
}

impl Set {
    pub fn new_intset() -> Set {
        Set {
            repr: SetRepr::IntSet(IntSet::Narrow(Vec::new())),
        }
    }

    pub fn new_listpack() -> Set {
        Set {
            repr: SetRepr::Listpack(Box::default()),
        }
    }

    pub fn new_table(capacity: usize) -> Set {
        Set {
            repr: SetRepr::Table(Box::new(DenseTable::with_capacity(capacity))),
        }
    }

    /// An empty set that can hold `first` and about `size_hint` members (Redis's
    /// `setTypeCreate`).
    pub fn create_for(first: &[u8], size_hint: usize, limits: &SetLimits) -> Set {
        if parse_i64(first).is_some() && size_hint <= limits.intset_entries {
            Set::new_intset()
        } else if size_hint <= limits.listpack_entries {
            Set::new_listpack()
        } else {
            Set::new_table(size_hint)
        }
    }

    /// Converts to a hashtable now if about `size_hint` members are coming that would not fit
    /// (Redis's `setTypeMaybeConvert`).
    pub fn maybe_convert(&mut self, size_hint: usize, limits: &SetLimits) {
        let convert = match &self.repr {
            SetRepr::Listpack(_) => size_hint > limits.listpack_entries,
            SetRepr::IntSet(_) => size_hint > limits.intset_entries,
            SetRepr::Table(_) => false,
        };
        if convert {
            self.convert_to_table(size_hint);
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            SetRepr::IntSet(values) => values.len(),
            SetRepr::Listpack(buffer) => packed::elements(buffer).count(),
            SetRepr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            SetRepr::IntSet(values) => values.len() == 0,
            SetRepr::Listpack(buffer) => buffer.is_empty(),
            SetRepr::Table(table) => table.is_empty(),
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            SetRepr::IntSet(_) => "intset",
            SetRepr::Listpack(_) => "listpack",
            SetRepr::Table(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, SetRepr::IntSet(_))
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, SetRepr::Listpack(_))
    }

    pub fn is_table(&self) -> bool {
        matches!(self.repr, SetRepr::Table(_))
    }

    /// Every member: ascending for intsets, insertion order for listpacks, entry order for
    /// hashtables.
    pub fn iter(&self) -> SetIter<'_> {
        SetIter(match &self.repr {
            SetRepr::IntSet(values) => SetIterRepr::IntSet(values, 0),
            SetRepr::Listpack(buffer) => SetIterRepr::Packed(packed::elements(buffer)),
            SetRepr::Table(table) => SetIterRepr::Table(table.entries()),
        })
    }

    fn convert_to_table(&mut self, capacity: usize) {
        let mut table = DenseTable::with_capacity(capacity.max(self.len()));
        for member in self.iter() {
            member.with_bytes(|bytes| {
                let hash = table.hash_of(bytes);
                table.push_new(MemberEntry(SmallBytes::new(bytes)), hash);
            });
        }
        self.repr = SetRepr::Table(Box::new(table));
    }

    fn convert_intset_to_listpack(&mut self) {
        let mut buffer = Vec::new();
        for member in self.iter() {
            packed::push_element(&mut buffer, member);
        }
        self.repr = SetRepr::Listpack(buffer.into_boxed_slice());
    }

    /// Adds `member`. Returns whether it was new. Converts as Redis's `setTypeAdd` does.
    pub fn add(&mut self, member: &[u8], limits: &SetLimits) -> bool {
        match &mut self.repr {
            SetRepr::Table(table) => {
                let hash = table.hash_of(member);
                if table.find_hashed(member, hash).is_some() {
                    return false;
                }
                table.push_new(MemberEntry(SmallBytes::new(member)), hash);
                true
            }
            SetRepr::Listpack(buffer) => {
                let query = Query::new(member);
                let mut count = 0;
                for element in packed::elements(buffer) {
                    if element.matches(&query) {
                        return false;
                    }
                    count += 1;
                }
                if count < limits.listpack_entries && member.len() <= limits.listpack_value {
                    packed::edit(buffer, |vector| {
                        vector.reserve_exact(packed::encoded_len(member));
                        packed::push_bytes(vector, member);
                    });
                } else {
                    self.convert_to_table(count + 1);
                    self.add(member, limits);
                }
                true
            }
            SetRepr::IntSet(values) => {
                if let Some(value) = parse_i64(member) {
                    return self.add_integer(value, limits);
                }
                let count = values.len();
                let longest = if count == 0 {
                    0
                } else {
                    decimal_len(values.get(0)).max(decimal_len(values.get(count - 1)))
                };
                if count < limits.listpack_entries
                    && member.len() <= limits.listpack_value
                    && longest <= limits.listpack_value
                {
                    self.convert_intset_to_listpack();
                } else {
                    self.convert_to_table(count + 1);
                }
                self.add(member, limits)
            }
        }
    }

    /// Adds an integer member (an intset keeps it as an integer).
    pub fn add_integer(&mut self, value: i64, limits: &SetLimits) -> bool {
        match &mut self.repr {
            SetRepr::IntSet(values) => {
                let added = values.insert(value);
                if added && values.len() > limits.intset_max() {
                    self.convert_to_table(0);
                }
                added
            }
            _ => self.add(itoa::Buffer::new().format(value).as_bytes(), limits),
        }
    }

    /// Adds a member as another set yields it.
    pub fn add_member(&mut self, member: Member<'_>, limits: &SetLimits) -> bool {
        match member {
            Member::Bytes(bytes) => self.add(bytes, limits),
            Member::Integer(value) => self.add_integer(value, limits),
        }
    }

    /// Removes `member`. Returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            SetRepr::Table(table) => table.remove(member).is_some(),
            SetRepr::Listpack(buffer) => {
                let query = Query::new(member);
                let mut elements = packed::elements(buffer);
                let mut start = 0;
                let found = loop {
                    match elements.next() {
                        None => break None,
                        Some(element) if element.matches(&query) => {
                            break Some((start, elements.position()))
                        }
                        Some(_) => start = elements.position(),
                    }
                };
                let Some((start, end)) = found else {
                    return false;
                };
                packed::edit(buffer, |vector| {
                    vector.drain(start..end);
                });
                true
            }
            SetRepr::IntSet(values) => parse_i64(member).is_some_and(|value| values.remove(value)),
        }
    }

    fn remove_member(&mut self, member: Member<'_>) -> bool {
        match (&mut self.repr, member) {
            (SetRepr::IntSet(values), Member::Integer(value)) => values.remove(value),
            (_, member) => member.with_bytes(|bytes| self.remove(bytes)),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            SetRepr::Table(table) => table.find(member).is_some(),
            SetRepr::Listpack(buffer) => {
                let query = Query::new(member);
                packed::elements(buffer).any(|element| element.matches(&query))
            }
            SetRepr::IntSet(values) => {
                parse_i64(member).is_some_and(|value| values.contains(value))
            }
        }
    }

    /// Membership of a member another set yields.
    pub fn contains_member(&self, member: Member<'_>) -> bool {
        match (&self.repr, member) {
            (SetRepr::IntSet(values), Member::Integer(value)) => values.contains(value),
            (_, member) => member.with_bytes(|bytes| self.contains(bytes)),
        }
    }

    /// Random access to the members: O(1) per pick for intsets and hashtables; a listpack is
    /// indexed once.
    pub fn sampler(&self) -> SetSampler<'_> {
        SetSampler(match &self.repr {
            SetRepr::IntSet(values) => SamplerRepr::IntSet(values),
            SetRepr::Listpack(buffer) => SamplerRepr::Packed(packed::elements(buffer).collect()),
            SetRepr::Table(table) => SamplerRepr::Table(table),
        })
    }

    /// `count` distinct members picked at random (`count` < `len()`), as SRANDMEMBER with a
    /// positive count: listpack members come out in their order (as Redis's), others in random
    /// order.
    pub fn random_distinct(&self, count: usize, rng: &mut impl Rng) -> Vec<Member<'_>> {
        let sampler = self.sampler();
        let mut indices = rand::seq::index::sample(rng, sampler.len(), count).into_vec();
        if sampler.is_ordered() {
            indices.sort_unstable();
        }
        indices
            .into_iter()
            .map(|index| sampler.get(index))
            .collect()
    }

    /// Removes and returns one random member (the set must not be empty).
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Vec<u8> {
        let length = self.len();
        assert!(length > 0, "pop from an empty set");
        let index = rng.random_range(0..length);
        match &mut self.repr {
            SetRepr::Table(table) => table.remove_at(index).0 .0.as_bytes().to_vec(),
            _ => {
                let member = self.sampler().get(index).to_vec();
                self.remove(&member);
                member
            }
        }
    }

    /// Removes and returns `count` random members (`count` < `len()`), as SPOP with a count:
    /// few members are popped one by one; when most go, the few that stay are picked instead
    /// and become a new set (rebuilt from a listpack or intset, so a hashtable may come back
    /// smaller, as in Redis).
    pub fn pop_random_many(
        &mut self,
        count: usize,
        rng: &mut impl Rng,
        limits: &SetLimits,
    ) -> Vec<Vec<u8>> {
        /// Redis's `SPOP_MOVE_STRATEGY_MUL`.
        const MOVE_STRATEGY_MULTIPLIER: usize = 5;
        let size = self.len();
        assert!(count < size, "popping every member is the caller's case");
        let remaining = size - count;
        if let SetRepr::Listpack(buffer) = &mut self.repr {
            // One pass over the listpack: the members at sorted random positions.
            let elements: Vec<Member> = packed::elements(buffer).collect();
            let picked_count = if remaining * MOVE_STRATEGY_MULTIPLIER > count {
                count
            } else {
                remaining
            };
            let mut picked = rand::seq::index::sample(rng, size, picked_count).into_vec();
            picked.sort_unstable();
            let mut is_picked = vec![false; size];
            for &index in &picked {
                is_picked[index] = true;
            }
            let popping_picked = picked_count == count;
            let mut popped = Vec::with_capacity(count);
            let mut kept = Vec::new();
            for (index, element) in elements.iter().enumerate() {
                if is_picked[index] == popping_picked {
                    popped.push(element.to_vec());
                } else {
                    packed::push_element(&mut kept, *element);
                }
            }
            *buffer = kept.into_boxed_slice();
            return popped;
        }
        if remaining * MOVE_STRATEGY_MULTIPLIER > count {
            return (0..count).map(|_| self.pop_random(rng)).collect();
        }
        // Keep `remaining` random members in a new set; pop everything else.
        let mut kept: Option<Set> = None;
        for _ in 0..remaining {
            let index = rng.random_range(0..self.len());
            let member = self.sampler().get(index);
            let owned: OwnedMember = member.into();
            let new_set = kept.get_or_insert_with(|| match owned {
                OwnedMember::Integer(_) => Set::new_intset(),
                OwnedMember::Bytes(_) => Set::new_listpack(),
            });
            new_set.add_member(owned.as_member(), limits);
            self.remove_member(owned.as_member());
        }
        let popped = self.iter().map(|member| member.to_vec()).collect();
        *self = kept.expect("some members remain");
        popped
    }

    /// One step of SSCAN: intsets and listpacks return everything and cursor 0; hashtables
    /// scan buckets from `cursor` (see [`DenseTable::scan`]).
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<Member<'_>>) {
        match &self.repr {
            SetRepr::Table(table) => {
                let mut found = Vec::new();
                let next = table.scan(cursor, count, |_, entry| {
                    found.push(Member::Bytes(entry.0.as_bytes()))
                });
                (next, found)
            }
            _ => (0, self.iter().collect()),
        }
    }

    /// Turns a set whose members are all integers into an intset if it has few enough
    /// (Redis's `maybeConvertToIntset`, used by SINTERSTORE).
    pub fn convert_to_intset_if_integers(&mut self, limits: &SetLimits) {
        if self.is_intset() || self.len() > limits.intset_max() {
            return;
        }
        let mut values = IntSet::Narrow(Vec::new());
        for member in self.iter() {
            let value = match member {
                Member::Integer(value) => value,
                Member::Bytes(bytes) => match parse_i64(bytes) {
                    Some(value) => value,
                    None => return,
                },
            };
            values.insert(value);
        }
        self.repr = SetRepr::IntSet(values);
    }

    /// Heap bytes owned beyond the value's own size (sampled for big hashtables).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            SetRepr::IntSet(values) => values.heap_bytes(),
            SetRepr::Listpack(buffer) => buffer.len(),
            SetRepr::Table(table) => {
                std::mem::size_of::<DenseTable<MemberEntry>>()
                    + table.heap_bytes(|entry| entry.0.heap_bytes())
            }
        }
    }

    /// The intset's integer width in bytes (tests and DEBUG).
    pub fn intset_width_bytes(&self) -> Option<usize> {
        match &self.repr {
            SetRepr::IntSet(values) => Some(values.width_bytes()),
            _ => None,
        }
    }
}

/// A member copied out of a set (while the set changes).
enum OwnedMember {
    Bytes(Vec<u8>),
    Integer(i64),
}

impl From<Member<'_>> for OwnedMember {
    fn from(member: Member<'_>) -> Self {
        match member {
            Member::Bytes(bytes) => OwnedMember::Bytes(bytes.to_vec()),
            Member::Integer(value) => OwnedMember::Integer(value),
        }
    }
}

impl OwnedMember {
    fn as_member(&self) -> Member<'_> {
        match self {
            OwnedMember::Bytes(bytes) => Member::Bytes(bytes),
            OwnedMember::Integer(value) => Member::Integer(*value),
        }
    }
}

/// Iterates a set's members.
pub struct SetIter<'a>(SetIterRepr<'a>);

enum SetIterRepr<'a> {
    IntSet(&'a IntSet, usize),
    Packed(packed::Elements<'a>),
    Table(std::slice::Iter<'a, Slot<MemberEntry>>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;

    #[inline]
    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.0 {
            SetIterRepr::IntSet(values, index) => {
                if *index >= values.len() {
                    return None;
                }
                *index += 1;
                Some(Member::Integer(values.get(*index - 1)))
            }
            SetIterRepr::Packed(elements) => elements.next(),
            SetIterRepr::Table(slots) => slots.next().map(|slot| Member::Bytes(&slot.entry().0)),
        }
    }
}

/// Random access to a set's members.
pub struct SetSampler<'a>(SamplerRepr<'a>);

enum SamplerRepr<'a> {
    IntSet(&'a IntSet),
    Packed(Vec<Member<'a>>),
    Table(&'a DenseTable<MemberEntry>),
}

impl<'a> SetSampler<'a> {
    pub fn len(&self) -> usize {
        match &self.0 {
            SamplerRepr::IntSet(values) => values.len(),
            SamplerRepr::Packed(elements) => elements.len(),
            SamplerRepr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get(&self, index: usize) -> Member<'a> {
        match &self.0 {
            SamplerRepr::IntSet(values) => Member::Integer(values.get(index)),
            SamplerRepr::Packed(elements) => elements[index],
            SamplerRepr::Table(table) => Member::Bytes(&table.get(index).0),
        }
    }

    /// Whether unique samples should keep the members' order (listpacks, as Redis's do).
    pub fn is_ordered(&self) -> bool {
        matches!(self.0, SamplerRepr::Packed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::{BTreeSet, HashSet};

    fn limits() -> SetLimits {
        SetLimits::default()
    }

    fn members(set: &Set) -> BTreeSet<Vec<u8>> {
        set.iter().map(|member| member.to_vec()).collect()
    }

    fn set_of(items: &[&str]) -> Set {
        let mut set = Set::create_for(items[0].as_bytes(), items.len(), &limits());
        set.maybe_convert(items.len(), &limits());
        for item in items {
            set.add(item.as_bytes(), &limits());
        }
        set
    }

    #[test]
    fn intset_widths_and_order() {
        let mut set = set_of(&["5", "1", "3"]);
        assert_eq!(set.encoding_name(), "intset");
        assert_eq!(set.intset_width_bytes(), Some(2));
        assert_eq!(
            set.iter().map(|member| member.to_vec()).collect::<Vec<_>>(),
            [b"1".to_vec(), b"3".to_vec(), b"5".to_vec()]
        );
        set.add(b"70000", &limits());
        assert_eq!(set.intset_width_bytes(), Some(4));
        set.add(b"-5000000000", &limits());
        assert_eq!(set.intset_width_bytes(), Some(8));
        assert!(set.contains(b"-5000000000"));
        assert!(set.contains(b"3"));
        assert!(!set.contains(b"03"));
        assert!(!set.contains(b"x"));
        assert!(set.remove(b"70000"));
        assert!(!set.remove(b"70000"));
        assert_eq!(set.intset_width_bytes(), Some(8));
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn conversions_follow_redis() {
        let limits = limits();
        // A non-integer turns a small intset into a listpack.
        let mut set = set_of(&["1", "2"]);
        set.add(b"a", &limits);
        assert_eq!(set.encoding_name(), "listpack");
        assert_eq!(members(&set).len(), 3);
        // ... into a hashtable when the listpack would be too big.
        let mut set = Set::new_intset();
        for index in 0..200 {
            set.add(index.to_string().as_bytes(), &limits);
        }
        assert_eq!(set.encoding_name(), "intset");
        set.add(b"a", &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        // ... or when the member is too long.
        let mut set = set_of(&["1"]);
        set.add(&[b'a'; 65], &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        // Too many integers.
        let mut set = Set::new_intset();
        for index in 0..512 {
            set.add(index.to_string().as_bytes(), &limits);
        }
        assert_eq!(set.encoding_name(), "intset");
        set.add(b"512", &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        // Listpack limits.
        let mut set = set_of(&["a"]);
        for index in 0..127 {
            set.add(format!("m{index}").as_bytes(), &limits);
        }
        assert_eq!(set.encoding_name(), "listpack");
        set.add(b"one more", &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        // The size hint of a big SADD.
        assert_eq!(
            Set::create_for(b"1", 513, &limits).encoding_name(),
            "hashtable"
        );
        assert_eq!(
            Set::create_for(b"a", 128, &limits).encoding_name(),
            "listpack"
        );
        assert_eq!(
            Set::create_for(b"1", 512, &limits).encoding_name(),
            "intset"
        );
        assert_eq!(
            Set::create_for(b"a", 129, &limits).encoding_name(),
            "hashtable"
        );
        let mut set = set_of(&["a"]);
        set.maybe_convert(129, &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        let mut set = set_of(&["1"]);
        set.maybe_convert(200, &limits);
        assert_eq!(set.encoding_name(), "intset");
        set.maybe_convert(513, &limits);
        assert_eq!(set.encoding_name(), "hashtable");
        // Back to an intset only when asked (SINTERSTORE).
        let mut set = set_of(&["1", "a"]);
        set.remove(b"a");
        set.convert_to_intset_if_integers(&limits);
        assert_eq!(set.encoding_name(), "intset");
    }

    #[test]
    fn randomized_against_std_set() {
        let mut rng = SmallRng::seed_from_u64(5);
        for round in 0..30 {
            let limits = SetLimits {
                intset_entries: [0, 16, 512][round % 3],
                listpack_entries: [0, 8, 128][round % 3],
                listpack_value: [3, 64][round % 2],
            };
            let mut set = Set::new_intset();
            let mut model = HashSet::new();
            for _ in 0..2000 {
                let member = if rng.random_bool(0.8) {
                    rng.random_range(-300i64..300).to_string().into_bytes()
                } else {
                    format!("s{}", rng.random_range(0..200)).into_bytes()
                };
                match rng.random_range(0..10) {
                    0..=5 => assert_eq!(set.add(&member, &limits), model.insert(member)),
                    6..=8 => assert_eq!(set.remove(&member), model.remove(&member)),
                    _ => assert_eq!(set.contains(&member), model.contains(&member)),
                }
                assert_eq!(set.len(), model.len());
            }
            let expected: BTreeSet<Vec<u8>> = model.into_iter().collect();
            assert_eq!(members(&set), expected);
        }
    }

    #[test]
    fn popping_many_keeps_the_rest() {
        let mut rng = SmallRng::seed_from_u64(9);
        for (items, count) in [
            (10usize, 2usize),
            (10, 9),
            (300, 20),
            (300, 290),
            (1000, 999),
        ] {
            for strings in [false, true] {
                let mut set = Set::new_intset();
                for index in 0..items {
                    let member = if strings {
                        format!("m{index}")
                    } else {
                        index.to_string()
                    };
                    set.add(member.as_bytes(), &limits());
                }
                let before = members(&set);
                let popped = set.pop_random_many(count, &mut rng, &limits());
                assert_eq!(popped.len(), count);
                let popped: BTreeSet<Vec<u8>> = popped.into_iter().collect();
                assert_eq!(popped.len(), count);
                let after = members(&set);
                assert_eq!(after.len(), items - count);
                assert!(popped.is_disjoint(&after));
                assert_eq!(
                    popped.union(&after).cloned().collect::<BTreeSet<_>>(),
                    before
                );
            }
        }
        // A big hashtable of strings losing most of its members becomes a listpack, as in Redis.
        let mut set = Set::new_listpack();
        for index in 0..1000 {
            set.add(format!("m{index}").as_bytes(), &limits());
        }
        assert_eq!(set.encoding_name(), "hashtable");
        set.pop_random_many(950, &mut rng, &limits());
        assert_eq!(set.encoding_name(), "listpack");
    }

    #[test]
    fn random_distinct_is_distinct() {
        let mut rng = SmallRng::seed_from_u64(2);
        for set in [set_of(&["1", "2", "3", "4"]), set_of(&["a", "b", "c", "d"])] {
            let picked = set.random_distinct(3, &mut rng);
            let unique: HashSet<Vec<u8>> = picked.iter().map(|member| member.to_vec()).collect();
            assert_eq!(unique.len(), 3);
        }
        let mut big = Set::new_table(0);
        for index in 0..10_000 {
            big.add(format!("m{index}").as_bytes(), &limits());
        }
        let picked = big.random_distinct(5000, &mut rng);
        let unique: HashSet<Vec<u8>> = picked.iter().map(|member| member.to_vec()).collect();
        assert_eq!(unique.len(), 5000);
        let popped = big.pop_random(&mut rng);
        assert!(!big.contains(&popped));
        assert_eq!(big.len(), 9999);
    }

    #[test]
    fn scan_visits_all() {
        let mut set = Set::new_table(0);
        for index in 0..3000 {
            set.add(format!("m{index}").as_bytes(), &limits());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, found) = set.scan(cursor, 7);
            seen.extend(found.iter().map(|member| member.to_vec()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 3000);
        let small = set_of(&["3", "1"]);
        assert_eq!(
            small.scan(99, 1),
            (0, vec![Member::Integer(1), Member::Integer(3)])
        );
    }
}
