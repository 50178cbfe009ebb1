//! The values a key can hold, and their encodings as OBJECT ENCODING names them.
//!
//! To add a type: add a variant holding its own module's structure (boxed, so `Value` stays
//! small), then give it a `type_name` and an `encoding_name`.

use crate::hash::Hash;
use crate::list::List;
use crate::number::parse_i64;
use crate::set::Set;
use crate::small_bytes::SmallBytes;

/// Strings of at most this many bytes are created "embstr" (Redis's
/// `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`); longer ones "raw".
pub const EMBEDDED_STRING_BYTES_MAX: usize = 44;
/// Values longer than this are never integer-encoded.
const INTEGER_TEXT_BYTES_MAX: usize = 20;

#[derive(Clone, Debug)]
pub enum Value {
    String(StringValue),
    List(Box<List>),
    SortedSet(Box<crate::zset::SortedSet>),
    Stream(Box<crate::stream::Stream>),
    Hash(Box<Hash>),
    Set(Box<Set>),
}

/// A string value, in the encoding Redis would report for it.
#[derive(Clone, Debug)]
pub enum StringValue {
    /// A value that reads as a 64-bit integer ("int").
    Integer(i64),
    /// A short value created whole ("embstr").
    Embedded(SmallBytes),
    /// A long value created whole ("raw"), in one exact-size block: no separate vector header,
    /// which would cost a 32-byte allocation per key.
    Whole(Box<[u8]>),
    /// A value changed in place by APPEND, SETRANGE or SETBIT ("raw"), with room to grow.
    Raw(Box<Vec<u8>>),
}

impl StringValue {
    /// The encoding Redis's SET would choose for `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.len() <= INTEGER_TEXT_BYTES_MAX {
            if let Some(integer) = parse_i64(bytes) {
                return StringValue::Integer(integer);
            }
        }
        if bytes.len() <= EMBEDDED_STRING_BYTES_MAX {
            StringValue::Embedded(SmallBytes::new(bytes))
        } else {
            StringValue::Whole(bytes.into())
        }
    }

    /// The value's bytes; integers are formatted into `scratch`.
    pub fn as_bytes<'a>(&'a self, scratch: &'a mut itoa::Buffer) -> &'a [u8] {
        match self {
            StringValue::Integer(integer) => scratch.format(*integer).as_bytes(),
            StringValue::Embedded(bytes) => bytes,
            StringValue::Whole(bytes) => bytes,
            StringValue::Raw(bytes) => bytes,
        }
    }

    /// The value's bytes, owned.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut scratch = itoa::Buffer::new();
        self.as_bytes(&mut scratch).to_vec()
    }

    /// The value as an integer, when it reads as one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            StringValue::Integer(integer) => Some(*integer),
            StringValue::Embedded(bytes) => parse_i64(bytes),
            StringValue::Whole(bytes) => parse_i64(bytes),
            StringValue::Raw(bytes) => parse_i64(bytes),
        }
    }

    pub fn len(&self) -> usize {
        let mut scratch = itoa::Buffer::new();
        self.as_bytes(&mut scratch).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts to the "raw" encoding, for changes in place.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StringValue::Raw(_)) {
            *self = StringValue::Raw(Box::new(self.to_vec()));
        }
        match self {
            StringValue::Raw(bytes) => bytes,
            _ => unreachable!("just converted to raw"),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            StringValue::Integer(_) => "int",
            StringValue::Embedded(_) => "embstr",
            StringValue::Whole(_) | StringValue::Raw(_) => "raw",
        }
    }

    /// Heap bytes owned beyond the value's own size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            StringValue::Integer(_) => 0,
            StringValue::Embedded(bytes) => bytes.heap_bytes(),
            StringValue::Whole(bytes) => bytes.len(),
            StringValue::Raw(bytes) => bytes.capacity() + std::mem::size_of::<Vec<u8>>(),
        }
    }
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::SortedSet(_) => "zset",
            Value::Stream(_) => "stream",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
        }
    }

    /// How much work freeing the value takes, as Redis's `lazyfreeGetFreeEffort` counts it:
    /// the allocations to release (nodes of a chained list, members of a hashtable or
    /// skiplist, blocks and pending entries of a stream); 1 for a packed value or a string.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::String(_) => 1,
            Value::List(list) => list.quicklist_shape().map_or(1, |(nodes, _, _)| nodes),
            Value::Set(set) if set.encoding_name() == "hashtable" => set.len(),
            Value::Hash(hash) if hash.encoding_name() == "hashtable" => hash.len(),
            Value::SortedSet(set) if set.encoding_name() == "skiplist" => set.len(),
            Value::Stream(stream) => {
                let groups: usize = stream
                    .groups()
                    .values()
                    .map(|group| 1 + group.pending.len())
                    .sum();
                stream.block_count() + groups
            }
            Value::Set(_) | Value::Hash(_) | Value::SortedSet(_) => 1,
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::String(string) => string.encoding_name(),
            Value::List(list) => list.encoding_name(),
            Value::SortedSet(set) => set.encoding_name(),
            Value::Stream(_) => "stream",
            Value::Hash(hash) => hash.encoding_name(),
            Value::Set(set) => set.encoding_name(),
        }
    }

    pub fn as_string(&self) -> Option<&StringValue> {
        match self {
            Value::String(string) => Some(string),
            _ => None,
        }
    }

    pub fn as_string_mut(&mut self) -> Option<&mut StringValue> {
        match self {
            Value::String(string) => Some(string),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(list) => Some(list),
            _ => None,
        }
    }

    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            Value::Hash(hash) => Some(hash),
            _ => None,
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut List> {
        match self {
            Value::List(list) => Some(list),
            _ => None,
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(hash) => Some(hash),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Value::Set(set) => Some(set),
            _ => None,
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        match self {
            Value::Set(set) => Some(set),
            _ => None,
        }
    }

    /// Heap bytes owned beyond the value's own size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::String(string) => string.heap_bytes(),
            Value::List(list) => list.heap_bytes(),
            Value::SortedSet(set) => {
                std::mem::size_of::<crate::zset::SortedSet>() + set.heap_bytes()
            }
            Value::Stream(stream) => {
                std::mem::size_of::<crate::stream::Stream>() + stream.heap_bytes()
            }
            Value::Hash(hash) => std::mem::size_of::<Hash>() + hash.heap_bytes(),
            Value::Set(set) => std::mem::size_of::<Set>() + set.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StringValue::from_bytes(b"123").encoding_name(), "int");
        assert_eq!(StringValue::from_bytes(b"0123").encoding_name(), "embstr");
        assert_eq!(
            StringValue::from_bytes(&[b'a'; 44]).encoding_name(),
            "embstr"
        );
        assert_eq!(StringValue::from_bytes(&[b'a'; 45]).encoding_name(), "raw");
        let mut value = StringValue::from_bytes(b"12");
        value.make_raw().push(b'3');
        assert_eq!(value.to_vec(), b"123");
        assert_eq!(value.encoding_name(), "raw");
    }

    #[test]
    fn value_stays_small() {
        assert!(
            std::mem::size_of::<Value>() <= 24,
            "{}",
            std::mem::size_of::<Value>()
        );
    }
}
