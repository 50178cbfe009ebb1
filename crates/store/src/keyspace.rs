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
//!
//! Access tracking. Every entry keeps the seconds clock of its last access (OBJECT IDLETIME)
//! and Redis's logarithmic access-frequency counter (OBJECT FREQ): [`Shard::lookup`] touches
//! both, [`Shard::peek`] neither. The counter starts at [`FREQUENCY_INITIAL`], grows with
//! probability `1 / ((counter - 5) * log_factor + 1)` on each access, and loses one per
//! `decay_minutes` minutes without access (see [`set_frequency_parameters`]).

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard, RwLock};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::blocked::BlockedKeys;
use crate::slot::key_slot;
use crate::small_bytes::SmallBytes;
use crate::value::Value;
use crate::watch::WatchedKeys;

/// Shards per database: a power of two that divides the 16384 hash slots.
pub const SHARD_COUNT: usize = 256;
const _: () =
    assert!(SHARD_COUNT.is_power_of_two() && crate::slot::SLOT_COUNT.is_multiple_of(SHARD_COUNT));

/// Most databases a server may be configured with.
pub const DATABASES_MAX: usize = 1 << 20;

/// The access-frequency counter of a new key (Redis's `LFU_INIT_VAL`).
pub const FREQUENCY_INITIAL: u8 = 5;

static FREQUENCY_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static FREQUENCY_DECAY_MINUTES: AtomicU32 = AtomicU32::new(1);

/// Sets how the access-frequency counter grows and decays (`lfu-log-factor`,
/// `lfu-decay-time`), for every keyspace of the process.
pub fn set_frequency_parameters(log_factor: u32, decay_minutes: u32) {
    FREQUENCY_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    FREQUENCY_DECAY_MINUTES.store(decay_minutes, Ordering::Relaxed);
}

static RECORD_CREATED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while a CLIENT NO-TOUCH client's command runs on this thread: lookups do not count
    /// as accesses.
    static NO_TOUCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Keys created on this thread since the last [`take_created`] (only while recording).
    static CREATED: RefCell<Vec<SmallBytes>> = const { RefCell::new(Vec::new()) };
}

/// Makes the lookups of the command running on this thread not count as accesses (CLIENT
/// NO-TOUCH), or count again.
pub fn set_no_touch(on: bool) {
    NO_TOUCH.with(|no_touch| no_touch.set(on));
}

/// Whether key creations are recorded for [`take_created`] (keyspace notifications of class
/// `new`). When off, creating a key costs one relaxed load more.
pub fn record_created_keys(on: bool) {
    RECORD_CREATED.store(on, Ordering::Relaxed);
}

/// Whether key creations are being recorded.
#[inline]
pub fn recording_created_keys() -> bool {
    RECORD_CREATED.load(Ordering::Relaxed)
}

/// The keys this thread created (inserted where no live key was) since the last call, in order.
/// A command runs to completion on one thread, so these are the current command's creations.
pub fn take_created() -> Vec<SmallBytes> {
    CREATED.with(|created| std::mem::take(&mut *created.borrow_mut()))
}

fn note_created(key: &SmallBytes) {
    if RECORD_CREATED.load(Ordering::Relaxed) {
        CREATED.with(|created| created.borrow_mut().push(key.clone()));
    }
}

/// A key and everything stored with it.
#[derive(Debug)]
pub struct Entry {
    key: SmallBytes,
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    expire_at_ms: u64,
    /// Seconds clock of the last access (OBJECT IDLETIME).
    access_clock_s: u32,
    /// Access-frequency counter as of the last access (OBJECT FREQ).
    frequency: u8,
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

    /// Bytes the key takes (MEMORY USAGE): the entry, what its key and value own on the heap,
    /// and its slot in the shard's table.
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.key.heap_bytes()
            + self.value.heap_bytes()
            + std::mem::size_of::<Box<Entry>>()
            + 1
    }

    /// Seconds since the last access.
    pub fn idle_seconds(&self, now_ms: u64) -> u64 {
        clock_seconds(now_ms).saturating_sub(self.access_clock_s) as u64
    }

    /// The access-frequency counter, decayed for the time since the last access.
    pub fn frequency(&self, now_ms: u64) -> u8 {
        let decay_minutes = FREQUENCY_DECAY_MINUTES.load(Ordering::Relaxed);
        if decay_minutes == 0 {
            return self.frequency;
        }
        let idle_minutes = (clock_seconds(now_ms) / 60).saturating_sub(self.access_clock_s / 60);
        let periods = idle_minutes / decay_minutes;
        self.frequency
            .saturating_sub(periods.min(u8::MAX as u32) as u8)
    }

    /// Sets the access-frequency counter (RESTORE ... FREQ), as of `now_ms`.
    pub fn set_frequency(&mut self, frequency: u8, now_ms: u64) {
        self.frequency = frequency;
        self.access_clock_s = clock_seconds(now_ms);
    }

    /// Sets the access clock as if the last access was `idle_seconds` before `now_ms`
    /// (RESTORE ... IDLETIME).
    pub fn set_idle_seconds(&mut self, idle_seconds: u64, now_ms: u64) {
        self.access_clock_s =
            clock_seconds(now_ms).saturating_sub(idle_seconds.min(u32::MAX as u64) as u32);
    }

    /// Records an access at `now_ms`; `random` is uniform in [0, 1).
    fn touch(&mut self, now_ms: u64, random: f64) {
        let counter = self.frequency(now_ms);
        self.frequency = incremented_frequency(counter, random);
        self.access_clock_s = clock_seconds(now_ms);
    }

    /// The same entry under another key (RENAME, MOVE keep value, expiry and access data).
    pub fn renamed(mut self: Box<Self>, key: &[u8]) -> Box<Entry> {
        self.key = SmallBytes::new(key);
        self
    }

    /// An independent copy under `key` with the same expiry, accessed now (COPY).
    pub fn duplicate(&self, key: &[u8], now_ms: u64) -> Box<Entry> {
        Box::new(Entry {
            key: SmallBytes::new(key),
            value: self.value.clone(),
            expire_at_ms: self.expire_at_ms,
            access_clock_s: clock_seconds(now_ms),
            frequency: FREQUENCY_INITIAL,
        })
    }
}

fn clock_seconds(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

/// Redis's logarithmic increment: the higher the counter, the less likely it grows.
fn incremented_frequency(counter: u8, random: f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = counter.saturating_sub(FREQUENCY_INITIAL) as f64;
    let log_factor = FREQUENCY_LOG_FACTOR.load(Ordering::Relaxed) as f64;
    let probability = 1.0 / (base * log_factor + 1.0);
    if random < probability {
        counter + 1
    } else {
        counter
    }
}

/// One step of a xorshift64* generator, as a float in [0, 1).
fn next_random(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    let output = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (output >> 11) as f64 / (1u64 << 53) as f64
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

    /// The entry, for its access data (its expiry changes only through
    /// [`set_expire_at_ms`](Self::set_expire_at_ms)).
    pub fn entry_mut(&mut self) -> &mut Entry {
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
    /// State of the generator behind the access-frequency counters (never 0).
    random_state: u64,
    /// Keys that held a hash with field expiries when last seen: a superset, pruned by the
    /// active field-expiry cycle (`field_expiry_keys`), so it never needs exact bookkeeping.
    field_expiry_keys: std::collections::HashSet<SmallBytes, foldhash::fast::RandomState>,
}

impl Default for Shard {
    fn default() -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let random_state = hasher.hash_one(0x5eed_u64) | 1;
        Shard {
            table: HashTable::new(),
            hasher,
            volatile_count: 0,
            expired: Vec::new(),
            blocked: BlockedKeys::default(),
            watched: WatchedKeys::default(),
            random_state,
            field_expiry_keys: Default::default(),
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

    /// Records that the hash at `key` has (or may have) fields with an expiry, so that the
    /// active cycle visits it. Entries inserted with such a hash are recorded on insertion;
    /// commands that add a field expiry in place (HEXPIRE) call this.
    pub fn track_field_expiry(&mut self, key: &[u8]) {
        if !self.field_expiry_keys.contains(key) {
            self.field_expiry_keys.insert(SmallBytes::new(key));
        }
    }

    /// The keys recorded by [`Shard::track_field_expiry`] (a superset of the hashes with
    /// expiring fields: keys deleted or persisted since stay until [`Shard::untrack_field_expiry`]).
    pub fn field_expiry_keys(&self) -> Vec<SmallBytes> {
        self.field_expiry_keys.iter().cloned().collect()
    }

    /// Whether any key of this shard is recorded as having expiring hash fields.
    pub fn has_field_expiry_keys(&self) -> bool {
        !self.field_expiry_keys.is_empty()
    }

    /// Forgets `key` (no longer a hash with field expiries).
    pub fn untrack_field_expiry(&mut self, key: &[u8]) {
        self.field_expiry_keys.remove(key);
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
        if !NO_TOUCH.with(std::cell::Cell::get) {
            entry.touch(now_ms, next_random(&mut self.random_state));
        }
        Some(EntryMut {
            entry,
            volatile_count: &mut self.volatile_count,
        })
    }

    /// Looks `key` up for a command that must not count as an access (CLIENT NO-TOUCH): expires
    /// it if due, leaves its access clock and frequency alone.
    pub fn lookup_untouched(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        let hash = self.hash(key);
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        let entry = self.table.find_mut(hash, |entry| &*entry.key == key)?;
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

    /// The entry of `key` even when its time has passed, expiring nothing (DEBUG OBJECT looks
    /// at the table as it is, as Redis's does).
    pub fn peek_even_expired(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hash(key);
        self.table
            .find(hash, |entry| &*entry.key == key)
            .map(|entry| &**entry)
    }

    /// Whether `key` exists (expiring it if due).
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.peek(key, now_ms).is_some()
    }

    /// Whether `key` exists and has not expired, without expiring it (for checks that must not
    /// change the shard).
    /// Whether `key` is in the table, expired or not (WATCH tells a stale key from an absent
    /// one).
    pub fn holds(&self, key: &[u8]) -> bool {
        self.table
            .find(self.hash(key), |entry| &*entry.key == key)
            .is_some()
    }

    pub fn is_live(&self, key: &[u8], now_ms: u64) -> bool {
        self.table
            .find(self.hash(key), |entry| &*entry.key == key)
            .is_some_and(|entry| !entry.is_expired(now_ms))
    }

    /// Stores `value` under `key` with the given expiry, replacing any previous value. Returns
    /// the previous live entry. A replaced key keeps its access frequency, counting this write
    /// as an access (as Redis's overwrite keeps the old object's access data).
    pub fn insert(
        &mut self,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Option<Box<Entry>> {
        let mut entry = Box::new(Entry {
            key: SmallBytes::new(key),
            value,
            expire_at_ms: expire_at_ms.unwrap_or(0),
            access_clock_s: clock_seconds(now_ms),
            frequency: FREQUENCY_INITIAL,
        });
        let hash = self.hash(key);
        let previous = self.take_for_overwrite(hash, key, now_ms);
        if let Some(previous) = &previous {
            let random = next_random(&mut self.random_state);
            entry.frequency = incremented_frequency(previous.frequency(now_ms), random);
        } else {
            note_created(&entry.key);
        }
        self.place(hash, entry);
        previous
    }

    /// Stores a whole entry (RENAME, MOVE keep the value's box), replacing any previous value.
    /// Returns the previous live entry.
    pub fn insert_entry(&mut self, entry: Box<Entry>, now_ms: u64) -> Option<Box<Entry>> {
        let hash = self.hash(&entry.key);
        let previous = self.take_for_overwrite(hash, &entry.key, now_ms);
        if previous.is_none() {
            note_created(&entry.key);
        }
        self.place(hash, entry);
        previous
    }

    /// Puts back an entry a command took out of this shard for a moment (its key is absent):
    /// not a creation.
    pub fn put_back(&mut self, entry: Box<Entry>) {
        let hash = self.hash(&entry.key);
        self.place(hash, entry);
    }

    /// Removes the entry a write is about to replace: its live entry, or none when it expired
    /// (then it is queued as expired).
    fn take_for_overwrite(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Box<Entry>> {
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        let removed = self.remove_hashed(hash, key);
        if removed.is_some() {
            // Clients waiting on the key learn it is gone (a stream reader gets its error).
            self.blocked.signal(key);
        }
        removed
    }

    /// Adds an entry whose key is absent.
    fn place(&mut self, hash: u64, entry: Box<Entry>) {
        if entry.expire_at_ms != 0 {
            self.volatile_count += 1;
        }
        if let Value::Hash(hash_value) = &entry.value {
            if hash_value.next_field_expiry_ms().is_some() {
                self.field_expiry_keys.insert(SmallBytes::new(&entry.key));
            }
        }
        self.blocked.signal(&entry.key);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, entry, |entry| hasher.hash_one(&*entry.key));
    }

    /// Removes `key`, returning its live entry (an expired key counts as absent, and is queued
    /// as expired).
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Box<Entry>> {
        let hash = self.hash(key);
        if self.volatile_count > 0 && self.expire_if_due(hash, key, now_ms) {
            return None;
        }
        let removed = self.remove_hashed(hash, key);
        if removed.is_some() {
            // Clients waiting on the key learn it is gone (a stream reader gets its error).
            self.blocked.signal(key);
        }
        removed
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
        self.expire_due_into(now_ms, drop)
    }

    /// [`Shard::expire_due`], handing each removed entry to `dispose` (which may free it
    /// elsewhere) instead of dropping it.
    pub fn expire_due_into(&mut self, now_ms: u64, mut dispose: impl FnMut(Box<Entry>)) -> usize {
        if self.volatile_count == 0 {
            return 0;
        }
        let mut removed = 0;
        for entry in self.table.extract_if(|entry| entry.is_expired(now_ms)) {
            self.expired.push(entry.key.clone());
            self.volatile_count -= 1;
            removed += 1;
            dispose(entry);
        }
        removed
    }

    /// Appends to `keys` the live keys for which `wanted` holds. Wanted keys that have expired
    /// are removed (and queued as expired) instead, as SCAN does.
    pub fn collect_keys(
        &mut self,
        now_ms: u64,
        mut wanted: impl FnMut(&Entry) -> bool,
        keys: &mut Vec<SmallBytes>,
    ) {
        let expired = &mut self.expired;
        let volatile_count = &mut self.volatile_count;
        self.table.retain(|entry| {
            if !wanted(entry) {
                return true;
            }
            if entry.is_expired(now_ms) {
                expired.push(entry.key.clone());
                *volatile_count -= 1;
                return false;
            }
            keys.push(entry.key.clone());
            true
        });
    }

    /// Every entry, expired or not; callers filter with [`Entry::is_expired`].
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter().map(|entry| &**entry)
    }

    /// Calls `visit` on up to `count` neighbouring entries of the table, from bucket
    /// `random % buckets` on (wrapping around), only entries with an expiry when
    /// `volatile_only`: the eviction's sample of this shard, as Redis's dictGetSomeKeys takes
    /// consecutive buckets. Finding the start is O(1); the scan passes only the empty buckets
    /// between entries (about as many as the entries at the table's load). Expired entries are
    /// included; callers may skip them.
    pub fn sample(
        &self,
        random: usize,
        count: usize,
        volatile_only: bool,
        mut visit: impl FnMut(&Entry),
    ) {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 || count == 0 {
            return;
        }
        let first = random % buckets;
        if volatile_only {
            // The filter reads each entry: one cache miss after the other.
            let mut visited = 0;
            for step in 0..buckets {
                let index = (first + step) % buckets;
                let Some(entry) = self.table.get_bucket(index) else {
                    continue;
                };
                if entry.expire_at_ms == 0 {
                    continue;
                }
                visit(entry);
                visited += 1;
                if visited == count {
                    return;
                }
            }
            return;
        }
        // The entries live in separate allocations, each a likely cache miss: their addresses
        // (in the table) are collected first and the entries prefetched together, so that
        // the misses overlap instead of following one another (the sample's main cost at
        // `maxmemory`).
        let mut picked: SmallVec<[&Entry; SAMPLE_PREFETCH_MAX]> = SmallVec::new();
        let mut step = 0;
        while step < buckets && picked.len() < count {
            if let Some(entry) = self.table.get_bucket((first + step) % buckets) {
                let entry: &Entry = entry;
                prefetch(entry);
                picked.push(entry);
                if picked.len() == SAMPLE_PREFETCH_MAX {
                    picked.drain(..).for_each(&mut visit);
                    // `count` shrinks by what was visited.
                    return self.sample_rest(first + step + 1, count - SAMPLE_PREFETCH_MAX, visit);
                }
            }
            step += 1;
        }
        picked.into_iter().for_each(visit);
    }

    /// [`Shard::sample`] beyond its first `SAMPLE_PREFETCH_MAX` entries (a sample that large
    /// is rare: `maxmemory-samples` is 5 by default).
    fn sample_rest(&self, from: usize, count: usize, mut visit: impl FnMut(&Entry)) {
        let buckets = self.table.num_buckets();
        let mut visited = 0;
        for step in 0..buckets {
            if visited == count {
                return;
            }
            if let Some(entry) = self.table.get_bucket((from + step) % buckets) {
                visit(entry);
                visited += 1;
            }
        }
    }

    /// A uniformly random entry (expired or not), None when the shard is empty: random
    /// buckets until one is full, O(1) expected at the table's load; a table left sparse by
    /// deletions falls back to counting through an iteration. `random_below(n)` returns a
    /// uniform integer below `n`.
    pub fn random_entry(&self, mut random_below: impl FnMut(usize) -> usize) -> Option<&Entry> {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return None;
        }
        for _ in 0..RANDOM_PROBES_MAX {
            if let Some(entry) = self.table.get_bucket(random_below(buckets)) {
                return Some(entry);
            }
        }
        let index = random_below(self.table.len());
        self.table.iter().nth(index).map(|entry| &**entry)
    }

    /// Removes every key. Returns how many there were.
    pub fn clear(&mut self) -> usize {
        let count = self.table.len();
        self.table = HashTable::new();
        self.volatile_count = 0;
        self.blocked.signal_all();
        count
    }

    /// Removes every key and hands them over (to be freed elsewhere: FLUSHALL ASYNC). Returns
    /// the content and how many keys it holds.
    pub fn take_content(&mut self) -> (ShardContent, usize) {
        let count = self.table.len();
        let table = std::mem::replace(&mut self.table, HashTable::new());
        self.volatile_count = 0;
        self.blocked.signal_all();
        (ShardContent(table), count)
    }

    /// Exchanges the whole content of two shards (SWAPDB).
    pub fn swap_content(&mut self, other: &mut Shard) {
        self.blocked.signal_all();
        other.blocked.signal_all();
        std::mem::swap(&mut self.table, &mut other.table);
        std::mem::swap(&mut self.hasher, &mut other.hasher);
        std::mem::swap(&mut self.volatile_count, &mut other.volatile_count);
    }
}

/// The keys a shard gave up with [`Shard::take_content`]; dropping it frees them.
pub struct ShardContent(#[allow(dead_code)] HashTable<Box<Entry>>);

/// Entries of a sample whose memory is prefetched together (see [`Shard::sample`]).
const SAMPLE_PREFETCH_MAX: usize = 16;

/// Asks the CPU to start loading `value`'s first cache line.
#[inline]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            value as *const T as *const i8,
            std::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Random buckets [`Shard::random_entry`] tries before it counts through an iteration: at the
/// lowest load a table has without deletions (about 44% after growing), 32 misses in a row
/// happen once in 10^8 picks.
const RANDOM_PROBES_MAX: usize = 32;

/// A uniformly random live key among `shards` (all of one database, locked), or `None` when
/// they hold none. `random_below(n)` returns a uniform integer below `n`. A pick that turns out
/// expired makes its shard remove every due key (queued as expired) before picking again, so
/// this ends after at most one such pass per shard even when every key has expired.
pub fn random_key<S: std::ops::DerefMut<Target = Shard>>(
    shards: &mut [S],
    now_ms: u64,
    mut random_below: impl FnMut(usize) -> usize,
) -> Option<SmallBytes> {
    let mut total: usize = shards.iter().map(|shard| shard.len()).sum();
    while total > 0 {
        let mut index = random_below(total);
        let shard = shards
            .iter_mut()
            .find(|shard| {
                if index < shard.len() {
                    return true;
                }
                index -= shard.len();
                false
            })
            .expect("the index is below the total of the shards' lengths");
        let entry = shard
            .random_entry(&mut random_below)
            .expect("the shard holds keys");
        if !entry.is_expired(now_ms) {
            return Some(entry.key.clone());
        }
        let removed = shard.expire_due(now_ms);
        debug_assert!(removed > 0);
        total -= removed;
    }
    None
}

/// Sees every shard, locked, before anyone uses it while it is installed (see
/// [`Keyspace::set_observer`]): a point-in-time snapshot copies a shard there before the
/// first command after the snapshot's moment can change it.
pub trait ShardObserver: Send + Sync {
    fn observe(&self, database: usize, index: usize, shard: &mut Shard);
}

/// The observer shared by every database; `active` keeps the check to one atomic load.
#[derive(Default)]
struct ObserverSlot {
    active: AtomicBool,
    observer: RwLock<Option<Arc<dyn ShardObserver>>>,
}

impl ObserverSlot {
    #[cold]
    fn notify(&self, database: usize, index: usize, shard: &mut Shard) {
        let observer = self.observer.read().clone();
        if let Some(observer) = observer {
            observer.observe(database, index, shard);
        }
    }
}

/// One numbered database.
pub struct Database {
    shards: Box<[Mutex<Shard>]>,
    index: usize,
    slot: Arc<ObserverSlot>,
}

impl Default for Database {
    fn default() -> Self {
        Database::new(0, Arc::default())
    }
}

/// The shard `key` lives in.
#[inline]
pub fn shard_index(key: &[u8]) -> usize {
    key_slot(key) as usize & (SHARD_COUNT - 1)
}

impl Database {
    fn new(index: usize, slot: Arc<ObserverSlot>) -> Self {
        Database {
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            index,
            slot,
        }
    }

    /// Locks shard `index`, showing it to the observer first when one is installed. Every
    /// lock of a shard goes through here.
    #[inline]
    fn lock_index(&self, index: usize) -> MutexGuard<'_, Shard> {
        let mut guard = lock_spinning(&self.shards[index]);
        if self.slot.active.load(Ordering::Acquire) {
            self.slot.notify(self.index, index, &mut guard);
        }
        guard
    }

    /// Locks the shard of `key`.
    #[inline]
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.lock_index(shard_index(key))
    }

    /// Locks shard `index`.
    pub fn lock_shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.lock_index(index)
    }

    /// Locks shard `index` for a look that changes nothing (counting keys, checking whether
    /// anything expires): a running snapshot is not shown the shard, so a look costs no copy.
    /// The holder must not change the shard.
    pub fn lock_shard_unobserved(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.shards[index].lock()
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        (0..self.shards.len())
            .map(|index| self.lock_index(index))
            .collect()
    }

    /// Keys and keys with an expiry, summed over shards (each shard read under its lock).
    pub fn counts(&self) -> (usize, usize) {
        (0..self.shards.len()).fold((0, 0), |(keys, volatile), index| {
            let shard = self.lock_shard_unobserved(index);
            (keys + shard.len(), volatile + shard.volatile_len())
        })
    }
}

/// Attempts at taking a busy shard lock before parking: a short spin (about a microsecond),
/// then up to 64 yields of the CPU, each followed by one attempt, then parking. A shard is held
/// for one command's work on it, shorter than the two context switches that parking and waking
/// cost on a small (virtual) machine, so parking at once loses (ZADD -P 16 on one sorted set of
/// 100,000 members ran at 0.80-0.86 of redis-server when waiters parked after 2 us). Spinning
/// for the whole wait (256 spins, about 10 us) kept the waiter off a CPU the clients could use:
/// yielding instead, with the holder on the other core, measured on one hot key at -P 16
/// (3-run medians, ratio to redis-server and CPU us per request): LPUSH 0.94 -> 1.24 (0.98 ->
/// 0.73), ZADD 1.22 -> 1.43 (7.68 -> 7.38), SADD 1.06 -> 1.02 (1.61 -> 1.35).
const LOCK_SPIN_ATTEMPTS: u32 = 32;
const LOCK_YIELD_ATTEMPTS: u32 = 64;

/// Locks `shard`, spinning briefly and then yielding while it is busy, before parking.
#[inline]
fn lock_spinning(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    if let Some(guard) = shard.try_lock() {
        return guard;
    }
    for _ in 0..LOCK_SPIN_ATTEMPTS {
        std::hint::spin_loop();
        if !shard.is_locked() {
            if let Some(guard) = shard.try_lock() {
                return guard;
            }
        }
    }
    for _ in 0..LOCK_YIELD_ATTEMPTS {
        std::thread::yield_now();
        if let Some(guard) = shard.try_lock() {
            return guard;
        }
    }
    shard.lock()
}

/// Every database.
pub struct Keyspace {
    databases: Box<[Database]>,
    slot: Arc<ObserverSlot>,
}

/// A locked shard with its (database, shard index).
type LockedShard<'a> = ((usize, usize), MutexGuard<'a, Shard>);

/// Shards locked together, in the global lock order.
pub struct LockedShards<'a> {
    guards: SmallVec<[LockedShard<'a>; 4]>,
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
        let slot = Arc::<ObserverSlot>::default();
        Keyspace {
            databases: (0..databases)
                .map(|index| Database::new(index, slot.clone()))
                .collect(),
            slot,
        }
    }

    /// Installs (or with `None` removes) the observer every shard lock shows its shard to.
    /// Install it while holding every shard ([`lock_everything`](Self::lock_everything)) so
    /// that no command straddles the moment.
    pub fn set_observer(&self, observer: Option<Arc<dyn ShardObserver>>) {
        let active = observer.is_some();
        *self.slot.observer.write() = observer;
        self.slot.active.store(active, Ordering::Release);
    }

    /// Whether an observer (a running snapshot) is installed.
    pub fn has_observer(&self) -> bool {
        self.slot.active.load(Ordering::Acquire)
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
                    self.databases[database].lock_index(shard),
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

    #[test]
    fn collect_keys_filters_and_expires_only_wanted_keys() {
        let mut shard = Shard::default();
        shard.insert(b"a1", string(b"v"), None, 0);
        shard.insert(b"a2", string(b"v"), Some(500), 0);
        shard.insert(b"b1", string(b"v"), Some(500), 0);
        shard.insert(b"a3", string(b"v"), Some(5000), 0);
        let mut keys = Vec::new();
        shard.collect_keys(1000, |entry| entry.key().starts_with(b"a"), &mut keys);
        keys.sort_by(|left, right| left.as_bytes().cmp(right.as_bytes()));
        assert_eq!(keys, vec![SmallBytes::new(b"a1"), SmallBytes::new(b"a3")]);
        // The expired wanted key is gone and queued; the expired unwanted one is untouched.
        assert_eq!(shard.take_expired(), vec![SmallBytes::new(b"a2")]);
        assert_eq!(shard.len(), 3);
        assert_eq!(shard.volatile_len(), 2);
    }

    #[test]
    fn random_key_picks_live_keys_and_ends_when_all_expired() {
        let keyspace = Keyspace::new(1);
        let mut shards = keyspace.database(0).lock_all();
        let mut seed = 7u64;
        let mut random_below = move |bound: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % bound
        };
        assert!(random_key(&mut shards, 0, &mut random_below).is_none());
        for index in 0..1000u32 {
            let key = format!("expired:{index}");
            let shard = shard_index(key.as_bytes());
            shards[shard].insert(key.as_bytes(), string(b"v"), Some(10), 0);
        }
        assert!(random_key(&mut shards, 100, &mut random_below).is_none());
        let expired: usize = shards
            .iter_mut()
            .map(|shard| shard.take_expired().len())
            .sum();
        assert_eq!(expired, 1000);
        assert!(shards.iter().all(|shard| shard.is_empty()));
        // Live keys among expired ones: only live keys come out, each eventually.
        for index in 0..1000u32 {
            let key = format!("expired:{index}");
            let shard = shard_index(key.as_bytes());
            shards[shard].insert(key.as_bytes(), string(b"v"), Some(10), 0);
        }
        for key in [&b"live1"[..], b"live2"] {
            shards[shard_index(key)].insert(key, string(b"v"), None, 0);
        }
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let key = random_key(&mut shards, 100, &mut random_below).expect("a live key");
            seen.insert(key.to_vec());
        }
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|key| key.starts_with(b"live")));
    }

    #[test]
    fn samples_wrap_around_and_filter_volatile_keys() {
        let mut shard = Shard::default();
        for index in 0..10u64 {
            let expiry = (index % 2 == 1).then_some(10_000 + index);
            shard.insert(index.to_string().as_bytes(), string(b"v"), expiry, 0);
        }
        let mut seen = Vec::new();
        shard.sample(7, 5, false, |entry| seen.push(entry.key().to_vec()));
        assert_eq!(seen.len(), 5);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        let mut volatile = Vec::new();
        shard.sample(3, 100, true, |entry| volatile.push(entry.key().to_vec()));
        volatile.sort();
        let expected: Vec<Vec<u8>> = [1, 3, 5, 7, 9]
            .iter()
            .map(|index: &i32| index.to_string().into_bytes())
            .collect();
        assert_eq!(volatile, expected);
        Shard::default().sample(5, 5, false, |_| panic!("an empty shard has no sample"));
        // Past the prefetched first part, and wrapping around: every entry once.
        for index in 10..40u64 {
            shard.insert(index.to_string().as_bytes(), string(b"v"), None, 0);
        }
        for (random, count) in [(0, 40), (12345, 40), (999, 33), (7, 16), (7, 17)] {
            let mut seen = Vec::new();
            shard.sample(random, count, false, |entry| {
                seen.push(entry.key().to_vec())
            });
            assert_eq!(seen.len(), count);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), count, "a sample repeats an entry");
        }
    }

    /// A deterministic `random_below` for tests (a 64-bit LCG).
    fn lcg(seed: u64) -> impl FnMut(usize) -> usize {
        let mut state = seed;
        move |bound| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % bound as u64) as usize
        }
    }

    #[test]
    fn random_entries_are_uniform_and_found_in_a_sparse_table() {
        let mut shard = Shard::default();
        assert!(shard.random_entry(lcg(1)).is_none());
        for index in 0..100u64 {
            shard.insert(index.to_string().as_bytes(), string(b"v"), None, 0);
        }
        let mut counts = std::collections::HashMap::new();
        let mut random_below = lcg(7);
        for _ in 0..100_000 {
            let entry = shard.random_entry(&mut random_below).expect("an entry");
            *counts.entry(entry.key().to_vec()).or_insert(0u32) += 1;
        }
        // 1,000 expected per key; the bounds are over 9 standard deviations away.
        assert_eq!(counts.len(), 100);
        assert!(counts.values().all(|&count| (700..1300).contains(&count)));
        // Deletions leave a table with almost only empty buckets: the picks still find keys.
        for index in 3..100u64 {
            shard.remove(index.to_string().as_bytes(), 0);
        }
        for index in 100..20_000u64 {
            shard.insert(index.to_string().as_bytes(), string(b"v"), None, 0);
        }
        for index in 100..20_000u64 {
            shard.remove(index.to_string().as_bytes(), 0);
        }
        let mut random_below = lcg(11);
        for _ in 0..1000 {
            let key = shard
                .random_entry(&mut random_below)
                .expect("an entry")
                .key()
                .to_vec();
            assert!([b"0".to_vec(), b"1".to_vec(), b"2".to_vec()].contains(&key));
        }
    }

    #[test]
    fn access_frequency_grows_with_lookups_and_decays() {
        let mut shard = Shard::default();
        shard.insert(b"k", string(b"v"), None, 0);
        assert_eq!(shard.peek(b"k", 0).unwrap().frequency(0), FREQUENCY_INITIAL);
        // Peeking is not an access; the first lookup always counts.
        shard.peek(b"k", 0);
        assert_eq!(shard.peek(b"k", 0).unwrap().frequency(0), FREQUENCY_INITIAL);
        shard.lookup(b"k", 0);
        assert_eq!(
            shard.peek(b"k", 0).unwrap().frequency(0),
            FREQUENCY_INITIAL + 1
        );
        for _ in 0..1000 {
            shard.lookup(b"k", 0);
        }
        let frequency = shard.peek(b"k", 0).unwrap().frequency(0);
        assert!(
            (FREQUENCY_INITIAL + 3..=40).contains(&frequency),
            "{frequency}"
        );
        // One point per minute without access (lfu-decay-time 1), never below 0.
        let entry = shard.peek(b"k", 0).unwrap();
        assert_eq!(entry.frequency(3 * 60_000), frequency - 3);
        assert_eq!(entry.frequency(1000 * 60_000), 0);
        // Overwriting keeps the counter (and counts as an access); a new key starts over.
        shard.insert(b"k", string(b"w"), None, 0);
        assert!(shard.peek(b"k", 0).unwrap().frequency(0) >= frequency);
        shard.remove(b"k", 0);
        shard.insert(b"k", string(b"w"), None, 0);
        assert_eq!(shard.peek(b"k", 0).unwrap().frequency(0), FREQUENCY_INITIAL);
    }

    #[test]
    fn idle_time_follows_lookups_only() {
        let mut shard = Shard::default();
        shard.insert(b"k", string(b"v"), None, 1_000);
        assert_eq!(shard.peek(b"k", 5_000).unwrap().idle_seconds(5_000), 4);
        let mut untouched = shard.lookup_untouched(b"k", 5_000).unwrap();
        untouched.set_expire_at_ms(Some(60_000));
        assert_eq!(shard.peek(b"k", 5_000).unwrap().idle_seconds(5_000), 4);
        assert_eq!(
            shard.peek(b"k", 5_000).unwrap().frequency(5_000),
            FREQUENCY_INITIAL
        );
        assert!(shard.lookup_untouched(b"k", 60_000).is_none());
        assert_eq!(shard.take_expired(), vec![SmallBytes::new(b"k")]);
        shard.insert(b"k", string(b"v"), None, 1_000);
        shard.lookup(b"k", 5_000);
        assert_eq!(shard.peek(b"k", 7_000).unwrap().idle_seconds(7_000), 2);
    }

    #[test]
    fn renamed_and_duplicated_entries() {
        let mut shard = Shard::default();
        shard.insert(b"source", string(b"value"), Some(9000), 1000);
        let entry = shard.remove(b"source", 1000).unwrap();
        let copy = entry.duplicate(b"copy", 2000);
        let moved = entry.renamed(b"target");
        assert_eq!(moved.key(), b"target");
        assert_eq!(moved.expire_at_ms(), Some(9000));
        shard.insert_entry(moved, 2000);
        shard.insert_entry(copy, 2000);
        assert_eq!(shard.volatile_len(), 2);
        shard
            .lookup(b"copy", 2000)
            .unwrap()
            .value_mut()
            .as_string_mut()
            .unwrap()
            .make_raw()
            .push(b'!');
        let target = shard.peek(b"target", 2000).unwrap();
        assert_eq!(target.value.as_string().unwrap().to_vec(), b"value");
        let copy = shard.peek(b"copy", 2000).unwrap();
        assert_eq!(copy.value.as_string().unwrap().to_vec(), b"value!");
        assert_eq!(copy.expire_at_ms(), Some(9000));
        assert!(shard.peek(b"source", 2000).is_none());
    }

    #[test]
    fn swapping_content_moves_keys_and_counts() {
        let mut first = Shard::default();
        let mut second = Shard::default();
        first.insert(b"a", string(b"1"), Some(100), 0);
        first.insert(b"b", string(b"1"), None, 0);
        second.insert(b"c", string(b"1"), None, 0);
        first.swap_content(&mut second);
        assert_eq!((first.len(), first.volatile_len()), (1, 0));
        assert_eq!((second.len(), second.volatile_len()), (2, 1));
        assert!(first.contains(b"c", 0));
        assert!(second.contains(b"a", 0));
    }
}
