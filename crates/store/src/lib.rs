//! Cinnabar's storage: the keyspace, the value types and their encodings. No protocol, no I/O.
//!
//! Modules: [`blocked`] (clients blocked on keys, per shard), [`keyspace`] (databases, shards, entries, expiry), [`value`] (what a key holds),
//! [`small_bytes`] (the compact byte string used for keys and short values), [`slot`] (cluster
//! hash slots), [`glob`] (pattern matching), [`number`] (Redis's number syntax), [`watch`] (keys watched by WATCH).
//! A new data type gets its own module here holding its structure and operations, returning
//! plain Rust values; the server's command families turn those into replies.

pub mod blocked;
pub mod glob;
pub mod keyspace;
pub mod number;
pub mod slot;
pub mod small_bytes;
pub mod stream;
pub mod value;
pub mod watch;

pub use keyspace::{Database, Entry, EntryMut, Keyspace, LockedShards, Shard, SHARD_COUNT};
pub use small_bytes::SmallBytes;
pub use value::{StringValue, Value};
