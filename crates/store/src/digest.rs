//! Dataset digests (DEBUG DIGEST, DEBUG DIGEST-VALUE): a SHA-1 based signature of keys, values
//! and expiries that does not depend on the order keys are stored in, computed as Redis
//! computes it so that digests can be compared with Redis's own.
//!
//! Model. Two primitives over a 20-byte state: [`xor_digest`] xors SHA-1(data) into the state
//! (order-independent), [`mix_digest`] xors then re-hashes the state (order-dependent). A value's
//! digest mixes its type code then its content ([`value_digest`]); a key's entry digest mixes
//! the key then the value; the dataset digest mixes each non-empty database's index and xors
//! the SHA-1 of every entry digest in ([`DatasetDigest`]).
//!
//! To add a type: give it a [`type_code`] (Redis's object type number) and extend
//! [`mix_value`] with its content: ordered collections (lists, streams) `mix_digest` each
//! element in order; unordered ones (sets, hashes, sorted sets) `xor_digest` each element (or
//! each element's own mixed digest, for pairs).

use crate::value::Value;

/// A 20-byte digest state.
pub type Digest = [u8; 20];

/// SHA-1 of `data` (FIPS 180-4).
pub fn sha1(data: &[u8]) -> Digest {
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_length = (data.len() as u64).wrapping_mul(8);
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut words = [0u32; 80];
        for (index, word) in block.chunks_exact(4).enumerate() {
            words[index] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for index in 16..80 {
            words[index] =
                (words[index - 3] ^ words[index - 8] ^ words[index - 14] ^ words[index - 16])
                    .rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (index, word) in words.iter().enumerate() {
            let (function, constant) = match index {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let next = a
                .rotate_left(5)
                .wrapping_add(function)
                .wrapping_add(e)
                .wrapping_add(constant)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = next;
        }
        for (slot, value) in state.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 20];
    for (chunk, value) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&value.to_be_bytes());
    }
    digest
}

/// Xors SHA-1(`data`) into `digest`: the result does not depend on the order of calls.
pub fn xor_digest(digest: &mut Digest, data: &[u8]) {
    for (byte, hashed) in digest.iter_mut().zip(sha1(data)) {
        *byte ^= hashed;
    }
}

/// Xors SHA-1(`data`) into `digest`, then replaces `digest` by its own SHA-1: the result
/// depends on the order of calls.
pub fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(digest);
}

/// Redis's object type number, which every value digest starts with.
pub fn type_code(value: &Value) -> u32 {
    match value {
        Value::String(_) => 0,
        Value::List(_) => 1,
        Value::SortedSet(_) => 3,
        Value::Set(_) => 2,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Mixes a value's content into `digest`.
fn mix_value(digest: &mut Digest, value: &Value) {
    match value {
        Value::String(string) => {
            let mut scratch = itoa::Buffer::new();
            mix_digest(digest, string.as_bytes(&mut scratch));
        }
        Value::List(list) => {
            list.for_each_in(0, list.len(), |item| match item {
                crate::list::Item::Integer(integer) => {
                    let mut scratch = itoa::Buffer::new();
                    mix_digest(digest, scratch.format(integer).as_bytes());
                }
                crate::list::Item::Bytes(bytes) => mix_digest(digest, bytes),
            });
        }
        Value::SortedSet(set) => {
            for (member, score) in set.iter() {
                let mut element = [0u8; 20];
                mix_digest(&mut element, member);
                mix_digest(&mut element, crate::zset::format_score(score).as_bytes());
                xor_digest(digest, &element);
            }
        }
        Value::Set(set) => {
            for member in set.iter() {
                member.with_bytes(|bytes| xor_digest(digest, bytes));
            }
        }
        Value::Hash(hash) => {
            for (field, value) in hash.iter() {
                let mut element = [0u8; 20];
                field.with_bytes(|bytes| mix_digest(&mut element, bytes));
                value.with_bytes(|bytes| mix_digest(&mut element, bytes));
                xor_digest(digest, &element);
            }
        }
        Value::Stream(stream) => {
            // Entries in order (ID, then fields and values), then the ID metadata. Consumer
            // groups are not part of the digest yet.
            let all = stream.range(
                crate::stream::StreamId::MIN,
                crate::stream::StreamId::MAX,
                None,
                false,
            );
            for entry in all {
                mix_digest(digest, &entry.id.to_bytes());
                for field in &entry.fields {
                    mix_digest(digest, field);
                }
            }
            mix_digest(digest, &stream.last_id().to_bytes());
        }
    }
}

/// Mixes the type, the content and whether the value expires into `digest`.
fn mix_value_with_expiry(digest: &mut Digest, value: &Value, expire_at_ms: Option<u64>) {
    mix_digest(digest, &type_code(value).to_be_bytes());
    mix_value(digest, value);
    if expire_at_ms.is_some() {
        xor_digest(digest, b"!!expire!!");
    }
}

/// The digest of one value (DEBUG DIGEST-VALUE).
pub fn value_digest(value: &Value, expire_at_ms: Option<u64>) -> Digest {
    let mut digest = [0u8; 20];
    mix_value_with_expiry(&mut digest, value, expire_at_ms);
    digest
}

/// The digest of one key and its value.
pub fn entry_digest(key: &[u8], value: &Value, expire_at_ms: Option<u64>) -> Digest {
    let mut digest = [0u8; 20];
    mix_digest(&mut digest, key);
    mix_value_with_expiry(&mut digest, value, expire_at_ms);
    digest
}

/// The digest of a whole dataset, fed database by database.
#[derive(Default)]
pub struct DatasetDigest {
    digest: Digest,
}

impl DatasetDigest {
    /// Starts a database; call only for databases that hold keys.
    pub fn begin_database(&mut self, index: u32) {
        mix_digest(&mut self.digest, &index.to_be_bytes());
    }

    /// Adds one key of the current database, in any order.
    pub fn add_entry(&mut self, key: &[u8], value: &Value, expire_at_ms: Option<u64>) {
        xor_digest(&mut self.digest, &entry_digest(key, value, expire_at_ms));
    }

    pub fn finish(&self) -> Digest {
        self.digest
    }
}

/// Lower-case hexadecimal, as DEBUG DIGEST prints digests.
pub fn to_hex(digest: &Digest) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StringValue;

    #[test]
    fn sha1_known_answers() {
        assert_eq!(
            to_hex(&sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            to_hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            to_hex(&sha1(&long)),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    #[test]
    fn digests_match_redis() {
        // Values observed from redis-server after `SET foo bar` in database 0.
        let value = Value::String(StringValue::from_bytes(b"bar"));
        assert_eq!(
            to_hex(&value_digest(&value, None)),
            "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
        );
        let mut dataset = DatasetDigest::default();
        dataset.begin_database(0);
        dataset.add_entry(b"foo", &value, None);
        assert_eq!(
            to_hex(&dataset.finish()),
            "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a"
        );
        assert_eq!(to_hex(&DatasetDigest::default().finish()), "0".repeat(40));
    }

    #[test]
    fn expiry_and_order() {
        let one = Value::String(StringValue::from_bytes(b"1"));
        let two = Value::String(StringValue::from_bytes(b"2"));
        assert_ne!(value_digest(&one, None), value_digest(&one, Some(5)));
        let mut forward = DatasetDigest::default();
        forward.begin_database(0);
        forward.add_entry(b"a", &one, None);
        forward.add_entry(b"b", &two, None);
        let mut backward = DatasetDigest::default();
        backward.begin_database(0);
        backward.add_entry(b"b", &two, None);
        backward.add_entry(b"a", &one, None);
        assert_eq!(forward.finish(), backward.finish());
    }
}
