//! Cinnabar's storage: the keyspace, the value types and their encodings. No protocol, no I/O.
//!
//! Modules: [`keyspace`] (databases, shards, entries, expiry), [`value`] (what a key holds),
//! [`list`] (the list type: listpack / quicklist encodings), [`blocked`] (clients blocked on
//! keys, per shard), [`watch`] (keys watched by WATCH), [`small_bytes`] (the compact byte string
//! used for keys and short values), [`slot`] (cluster hash slots), [`glob`] (pattern matching),
//! [`number`] (Redis's number syntax), [`digest`] (DEBUG DIGEST's dataset signatures),
//! [`zset`] (sorted sets), [`hash`] and [`set`] (the hash and set types and their encodings),
//! [`stream`] (streams and consumer groups).
//! A new data type gets its own module here holding its structure and operations, returning
//! plain Rust values; the server's command families turn those into replies.

pub mod bitmap;
pub mod blocked;
pub mod digest;
pub mod geohash;
pub mod glob;
pub mod hash;
pub mod hyperloglog;
pub mod keyspace;
pub mod list;
pub mod number;
pub mod set;
pub mod slot;
pub mod small_bytes;
pub mod stream;
pub mod value;
pub mod watch;
pub mod zset;

pub use hash::{Hash, HashLimits};
pub use keyspace::{
    random_key, set_frequency_parameters, Database, Entry, EntryMut, Keyspace, LockedShards, Shard,
    ShardContent, ShardObserver, FREQUENCY_INITIAL, SHARD_COUNT,
};
pub use list::List;
pub use set::{Set, SetLimits};
pub use small_bytes::SmallBytes;
pub use value::{StringValue, Value};
pub use zset::SortedSet;
