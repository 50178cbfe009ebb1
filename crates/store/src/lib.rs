//! Cinnabar's storage: the keyspace, the value types and their encodings. No protocol, no I/O.
//!
//! Modules: [`keyspace`] (databases, shards, entries, expiry), [`value`] (what a key holds),
//! [`hash`] and [`set`] (the hash and set types and their encodings), [`small_bytes`] (the compact byte string used for keys and short values), [`slot`] (cluster
//! hash slots), [`glob`] (pattern matching), [`number`] (Redis's number syntax).
//! A new data type gets its own module here holding its structure and operations, returning
//! plain Rust values; the server's command families turn those into replies.

pub mod glob;
pub mod hash;
pub mod keyspace;
pub mod number;
pub mod set;
pub mod slot;
pub mod small_bytes;
pub mod value;

pub use hash::{Hash, HashLimits};
pub use keyspace::{Database, Entry, EntryMut, Keyspace, LockedShards, Shard, SHARD_COUNT};
pub use set::{Set, SetLimits};
pub use small_bytes::SmallBytes;
pub use value::{StringValue, Value};
