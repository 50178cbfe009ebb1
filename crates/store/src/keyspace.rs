//! The keyspace: databases split into independently locked shards by hash slot.
//!
//! Model. A [`Keyspace`] holds `databases` [`Database`]s. Each database is split into
//! [`SHARD_COUNT`] shards; a key lives in shard `slot(key) % SHARD_COUNT`, so one cluster hash
//! slot always lives in exactly one shard. Each shard is a `Mutex<Shard>`: a command locks the
//! shards of its keys, does all its work, and unlocks. Commands over several shards lock them in
//! one global order (database index, then shard index) through [`Keyspace::lock_keys`], so two
//! commands can never deadlock and every command is atomic. Whole-keyspace commands lock every
//! shard of the databases they touch, in the same order: that is the barrier.
//!
//! A shard maps keys to boxed [`Entry`]s (key, value, expiry, access clock in one allocation)
//! and counts its keys with an expiry. Expiry is lazy on every lookup and active through
//! [`Shard::expire_due`]. Keys removed because they expired are queued in the shard; the server
//! drains them ([`Shard::take_expired`]) while it still holds the lock, to propagate their
//! deletion in order.

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::hash::BuildHasher;

use crate::blocked::BlockedKeys;
use crate::slot::key_slot;
use crate::small_bytes::SmallBytes;
use crate::value::Value;
use crate::watch::WatchedKeys;

/// Shards per database: a power of two that divides the 16384 hash slots.
pub const SHARD_COUNT: usize = 256;
const _: () = assert!(SHARD_COUNT.is_power_of_two() && crate::slot::SLOT_COUNT % SHARD_COUNT == 0);

/// Most databases a server may be configured with.
pub const DATABASES_MAX: usize = 1 << 20;

/// A key and everything stored with it.
#[derive(Debug)]
pub struct Entry {
    key: SmallBytes,
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    expire_at_ms: u64,
    /// Seconds clock of the last access (OBJECT IDLETIME).
    access_clock_s: u32,
}

impl Entry {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn expire_at_ms(&self) -> Option<u64> {
        (self.expire_at_ms != 0).then_some(self.expire_at_ms)
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms != 0 && self.expire_at_ms <= now_ms
    }

    /// Seconds since the last access.
    pub fn idle_seconds(&self, now_ms: u64) -> u64 {
        clock_seconds(now_ms).saturating_sub(self.access_clock_s) as u64
    }
}

fn clock_seconds(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

/// A mutable view of one entry that keeps the shard's expiry count right.
pub struct EntryMut<'a> {
    entry: &'a mut Entry,
    volatile_count: &'a mut usize,
}

impl<'a> EntryMut<'a> {
    pub fn key(&self) -> &[u8] {
        &self.entry.key
    }

    pub fn value(&self) -> &Value {
        &self.entry.value
    }

    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.entry.value
    }

    pub fn into_value_mut(self) -> &'a mut Value {
        &mut self.entry.value
    }

    pub fn entry(&self) -> &Entry {
        self.entry
    }

    pub fn expire_at_ms(&self) -> Option<u64> {
        self.entry.expire_at_ms()
    }

    /// Sets or clears the expiry.
    pub fn set_expire_at_ms(&mut self, expire_at_ms: Option<u64>) {
        let had = self.entry.expire_at_ms != 0;
        let value = expire_at_ms.unwrap_or(0);
        debug_assert!(expire_at_ms != Some(0), "an expiry of 0 means none");
        self.entry.expire_at_ms = value;
        match (had, value != 0) {
            (false, true) => *self.volatile_count += 1,
            (true, false) => *self.volatile_count -= 1,
            _ => {}
        }
    }
}

/// One independently locked part of a database.
pub struct Shard {
    table: HashTable<Box<Entry>>,
    hasher: foldhash::fast::RandomState,
    volatile_count: usize,
    expired: Vec<SmallBytes>,
    /// Clients blocked on keys of this shard, and keys that became ready for them.
    pub blocked: BlockedKeys,
    /// Keys of this shard watched by WATCH.
    pub watched: WatchedKeys,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            volatile_count: 0,
            expired: Vec::new(),
            blocked: BlockedKeys::default(),
            watched: WatchedKeys::default(),
        }
    }
}

impl Shard {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Keys stored, counting expired keys not yet removed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile_count
    }

    fn remove_hashed(&mut self, hash: u64, key: &[u8]) -> Option<Box<Entry>> {
        let found = self
            .table
            .find_entry(hash, |entry| &*entry.key == key)
            .ok()?;
        let (entry, _) = found.remove();
        if entry.expire_at_ms != 0 {
            self.volatile_count -= 1;
        }
        Some(entry)
    }

    /// Removes `key` if it has expired, queueing it as expired. Returns whether it was removed.
    fn expire_if_due(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        let expired = match self.table.find(hash, |entry| &*entry.key == key) {
            Some(entry) => entry.is_expired(now_ms),
            None => false,
        };
        if expired {
            if let Some(entry) = self.remove_hashed(hash, key) {
                self.expired.push(entry.key);
            }
        }
        expired
    }

    /// Looks `key` up for a command: expires it if due, updates its access clock.
    pub fn lookup(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        let hash = self.hash(key);
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        let entry = self.table.find_mut(hash, |entry| &*entry.key == key)?;
        entry.access_clock_s = clock_seconds(now_ms);
        Some(EntryMut {
            entry,
            volatile_count: &mut self.volatile_count,
        })
    }

    /// Looks `key` up without touching its access clock (OBJECT, TTL, TYPE-like inspection).
    pub fn peek(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let hash = self.hash(key);
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        self.table
            .find(hash, |entry| &*entry.key == key)
            .map(|entry| &**entry)
    }

    /// Whether `key` exists (expiring it if due).
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.peek(key, now_ms).is_some()
    }

    /// Stores `value` under `key` with the given expiry, replacing any previous value. Returns
    /// the previous live entry.
    pub fn insert(
        &mut self,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Option<Box<Entry>> {
        let entry = Box::new(Entry {
            key: SmallBytes::new(key),
            value,
            expire_at_ms: expire_at_ms.unwrap_or(0),
            access_clock_s: clock_seconds(now_ms),
        });
        self.insert_entry(entry, now_ms)
    }

    /// Stores a whole entry (RENAME, MOVE keep the value's box), replacing any previous value.
    pub fn insert_entry(&mut self, entry: Box<Entry>, now_ms: u64) -> Option<Box<Entry>> {
        let hash = self.hash(&entry.key);
        if self.volatile_count > 0 {
            self.expire_if_due(hash, &entry.key, now_ms);
        }
        let previous = self.remove_hashed(hash, &entry.key);
        if entry.expire_at_ms != 0 {
            self.volatile_count += 1;
        }
        self.blocked.signal(&entry.key);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, entry, |entry| hasher.hash_one(&*entry.key));
        previous
    }

    /// Removes `key`, returning its live entry (an expired key counts as absent, and is queued
    /// as expired).
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Box<Entry>> {
        let hash = self.hash(key);
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        self.remove_hashed(hash, key)
    }

    /// Keys that expired since the last call, in the order they expired.
    pub fn take_expired(&mut self) -> Vec<SmallBytes> {
        std::mem::take(&mut self.expired)
    }

    pub fn has_expired(&self) -> bool {
        !self.expired.is_empty()
    }

    /// Removes every key whose expiry is due, queueing them as expired. Returns how many.
    pub fn expire_due(&mut self, now_ms: u64) -> usize {
        if self.volatile_count == 0 {
            return 0;
        }
        let mut removed = 0;
        let expired = &mut self.expired;
        let volatile_count = &mut self.volatile_count;
        self.table.retain(|entry| {
            if entry.is_expired(now_ms) {
                expired.push(entry.key.clone());
                *volatile_count -= 1;
                removed += 1;
                false
            } else {
                true
            }
        });
        removed
    }

    /// Every entry, expired or not; callers filter with [`Entry::is_expired`].
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter().map(|entry| &**entry)
    }

    /// The entry at position `index` of an iteration (for random sampling).
    pub fn nth(&self, index: usize) -> Option<&Entry> {
        self.table.iter().nth(index).map(|entry| &**entry)
    }

    /// Removes every key. Returns how many there were.
    pub fn clear(&mut self) -> usize {
        let count = self.table.len();
        self.table = HashTable::new();
        self.volatile_count = 0;
        count
    }

    /// Exchanges the whole content of two shards (SWAPDB).
    pub fn swap_content(&mut self, other: &mut Shard) {
        std::mem::swap(&mut self.table, &mut other.table);
        std::mem::swap(&mut self.hasher, &mut other.hasher);
        std::mem::swap(&mut self.volatile_count, &mut other.volatile_count);
    }
}

/// One numbered database.
pub struct Database {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
        }
    }
}

/// The shard `key` lives in.
#[inline]
pub fn shard_index(key: &[u8]) -> usize {
    key_slot(key) as usize & (SHARD_COUNT - 1)
}

impl Database {
    /// Locks the shard of `key`.
    #[inline]
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shards[shard_index(key)].lock()
    }

    /// Locks shard `index`.
    pub fn lock_shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.shards[index].lock()
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.lock()).collect()
    }

    /// Keys and keys with an expiry, summed over shards (each shard read under its lock).
    pub fn counts(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(keys, volatile), shard| {
            let shard = shard.lock();
            (keys + shard.len(), volatile + shard.volatile_len())
        })
    }
}

/// Every database.
pub struct Keyspace {
    databases: Box<[Database]>,
}

/// Shards locked together, in the global lock order.
pub struct LockedShards<'a> {
    guards: SmallVec<[((usize, usize), MutexGuard<'a, Shard>); 4]>,
}

impl<'a> LockedShards<'a> {
    /// The locked shard holding `key` of database `database`.
    pub fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        let wanted = (database, shard_index(key));
        let position = self
            .guards
            .iter()
            .position(|(id, _)| *id == wanted)
            .expect("key's shard was locked with the others");
        &mut self.guards[position].1
    }

    /// Every locked shard.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> + use<'_, 'a> {
        self.guards
            .iter_mut()
            .map(|((database, _), guard)| (*database, &mut **guard))
    }
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        assert!((1..=DATABASES_MAX).contains(&databases));
        Keyspace {
            databases: (0..databases).map(|_| Database::default()).collect(),
        }
    }

    pub fn database_count(&self) -> usize {
        self.databases.len()
    }

    #[inline]
    pub fn database(&self, index: usize) -> &Database {
        &self.databases[index]
    }

    /// Locks the shards of `(database, key)` pairs, each once, in the global order.
    pub fn lock_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
    ) -> LockedShards<'_> {
        let mut ids: SmallVec<[(usize, usize); 8]> = keys
            .into_iter()
            .map(|(database, key)| (database, shard_index(key)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let guards = ids
            .into_iter()
            .map(|(database, shard)| {
                (
                    (database, shard),
                    self.databases[database].shards[shard].lock(),
                )
            })
            .collect();
        LockedShards { guards }
    }

    /// Locks every shard of the given databases (sorted, each once), in the global order.
    pub fn lock_databases(&self, databases: &[usize]) -> Vec<(usize, Vec<MutexGuard<'_, Shard>>)> {
        let mut sorted: SmallVec<[usize; 4]> = databases.iter().copied().collect();
        sorted.sort_unstable();
        sorted.dedup();
        sorted
            .into_iter()
            .map(|database| (database, self.databases[database].lock_all()))
            .collect()
    }

    /// Locks every shard of every database, in the global order.
    pub fn lock_everything(&self) -> Vec<Vec<MutexGuard<'_, Shard>>> {
        self.databases
            .iter()
            .map(|database| database.lock_all())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StringValue;

    fn string(bytes: &[u8]) -> Value {
        Value::String(StringValue::from_bytes(bytes))
    }

    #[test]
    fn entries_stay_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 64,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn insert_lookup_remove() {
        let mut shard = Shard::default();
        assert!(shard.insert(b"a", string(b"1"), None, 1000).is_none());
        assert!(shard.insert(b"a", string(b"2"), Some(5000), 1000).is_some());
        assert_eq!(shard.volatile_len(), 1);
        let entry = shard.lookup(b"a", 1000).unwrap();
        assert_eq!(entry.value().as_string().unwrap().to_vec(), b"2");
        assert!(shard.lookup(b"a", 5000).is_none());
        assert_eq!(shard.take_expired(), vec![SmallBytes::new(b"a")]);
        assert_eq!(shard.volatile_len(), 0);
        assert!(shard.remove(b"a", 5000).is_none());
    }

    #[test]
    fn active_expiry_counts() {
        let mut shard = Shard::default();
        for index in 0..100u64 {
            let key = index.to_string();
            let expiry = (index % 2 == 0).then_some(2000 + index);
            shard.insert(key.as_bytes(), string(b"v"), expiry, 1000);
        }
        assert_eq!(shard.volatile_len(), 50);
        assert_eq!(shard.expire_due(2050), 26);
        assert_eq!(shard.volatile_len(), 24);
        assert_eq!(shard.len(), 74);
    }

    #[test]
    fn expiry_changes_keep_the_count() {
        let mut shard = Shard::default();
        shard.insert(b"k", string(b"v"), None, 0);
        shard.lookup(b"k", 0).unwrap().set_expire_at_ms(Some(10));
        assert_eq!(shard.volatile_len(), 1);
        shard.lookup(b"k", 0).unwrap().set_expire_at_ms(None);
        assert_eq!(shard.volatile_len(), 0);
    }

    #[test]
    fn multi_key_locks_in_order() {
        let keyspace = Keyspace::new(2);
        let mut locked = keyspace.lock_keys([(1, &b"x"[..]), (0, b"y"), (1, b"x"), (0, b"z")]);
        locked.shard(1, b"x").insert(b"x", string(b"1"), None, 0);
        locked.shard(0, b"z").insert(b"z", string(b"1"), None, 0);
        drop(locked);
        assert_eq!(keyspace.database(1).counts(), (1, 0));
    }
}
