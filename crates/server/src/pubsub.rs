//! Publish/subscribe: who listens to what, and how messages reach them.
//!
//! Model. Every client owns a [`Mailbox`]: a byte buffer of encoded push messages, a byte count
//! and a wake-up. PUBLISH finds the channel's subscribers in a registry split into
//! [`CHANNEL_SHARDS`] independently locked parts (so publishers to different channels never
//! contend), plus the pattern subscriptions (matched one by one, as Redis does), encodes the
//! message once per protocol, and appends it to each subscriber's mailbox under that mailbox's
//! own lock: messages from one publisher reach every subscriber in order. A channel's
//! subscriber list is shared (`Arc`) with the publishes delivering to it, so a publish neither
//! copies it nor holds the registry's lock while delivering. The subscriber's connection task
//! wakes, yields once (the runtime polls its sockets first, so the publishers that are ready
//! deliver too) and writes its whole mailbox to the socket in one write, as Redis writes a
//! subscriber once per event-loop iteration. A mailbox past the client's
//! output-buffer limit (`client-output-buffer-limit pubsub`) gets its client disconnected, so a
//! subscriber that never reads cannot make the server's memory grow without bound.
//!
//! Shard channels (SSUBSCRIBE / SPUBLISH) use a registry of their own with the same structure.
//!
//! A replica's replication stream goes through its mailbox too (`replication::ReplicaFeed`). A
//! mailbox mirrors its pending bytes and the heap its buffers take (jemalloc's size classes)
//! into the client's shared state (CLIENT LIST `omem`, INFO `mem_clients_*`); for replicas it
//! also keeps a process-wide total, which eviction leaves out of `used_memory`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use store::glob::Pattern;
use tokio::sync::Notify;

use crate::client::ClientShared;

/// Independently locked parts of the channel registry.
pub const CHANNEL_SHARDS: usize = 64;

/// Output-buffer limits of one client class, in bytes and seconds (0: no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferLimit {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_seconds: u64,
}

/// A [`BufferLimit`] readable without a lock: PUBLISH reads it on every call, from every
/// thread, and CONFIG SET changes it rarely (a reader may see a mix of an old and a new field
/// for one message, which is harmless).
#[derive(Default)]
pub struct SharedLimit {
    hard_bytes: AtomicUsize,
    soft_bytes: AtomicUsize,
    soft_seconds: AtomicU64,
}

impl SharedLimit {
    pub fn load(&self) -> BufferLimit {
        BufferLimit {
            hard_bytes: self.hard_bytes.load(Ordering::Relaxed),
            soft_bytes: self.soft_bytes.load(Ordering::Relaxed),
            soft_seconds: self.soft_seconds.load(Ordering::Relaxed),
        }
    }

    pub fn store(&self, limit: BufferLimit) {
        self.hard_bytes.store(limit.hard_bytes, Ordering::Relaxed);
        self.soft_bytes.store(limit.soft_bytes, Ordering::Relaxed);
        self.soft_seconds
            .store(limit.soft_seconds, Ordering::Relaxed);
    }
}

/// Heap bytes of every replica's queued replication stream (INFO `mem_not_counted_for_evict`):
/// kept as a total because eviction compares `used_memory` without it with `maxmemory` before
/// every write, as Redis does not let replica output buffers cause evictions. One server runs
/// per process.
static REPLICA_OUTPUT_ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Heap bytes of the replicas' queued replication stream.
pub fn replica_output_allocated_bytes() -> usize {
    REPLICA_OUTPUT_ALLOCATED_BYTES.load(Ordering::Relaxed)
}

/// A client's queue of push messages. Its byte counts live in the client's shared state
/// (`output_bytes`, `output_allocated_bytes`), where CLIENT LIST and INFO read them.
pub struct Mailbox {
    buffer: Mutex<Vec<u8>>,
    /// Capacity of `buffer` (changed under its lock).
    buffer_capacity: AtomicUsize,
    /// Capacity of a buffer taken by [`Mailbox::take`] and not yet written.
    in_flight_capacity: AtomicUsize,
    pub notify: Notify,
    resp3: AtomicBool,
    /// When the mailbox went over the soft limit (Unix ms), 0 when under it.
    soft_since_ms: AtomicU64,
    pub client: Arc<ClientShared>,
}

impl Mailbox {
    pub fn new(client: Arc<ClientShared>) -> Self {
        Mailbox {
            buffer: Mutex::new(Vec::new()),
            buffer_capacity: AtomicUsize::new(0),
            in_flight_capacity: AtomicUsize::new(0),
            notify: Notify::new(),
            resp3: AtomicBool::new(false),
            soft_since_ms: AtomicU64::new(0),
            client,
        }
    }

    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    pub fn is_resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Bytes queued or being written.
    pub fn pending_bytes(&self) -> usize {
        self.client.output_bytes.load(Ordering::Relaxed)
    }

    /// Takes everything queued, to write it. The bytes still count against the client's limit
    /// until [`Mailbox::written`] says they left.
    pub fn take(&self) -> Vec<u8> {
        let mut buffer = self.buffer.lock();
        let taken = std::mem::take(&mut *buffer);
        if taken.capacity() > 0 {
            self.buffer_capacity.store(0, Ordering::Relaxed);
            self.in_flight_capacity
                .store(taken.capacity(), Ordering::Relaxed);
            self.account_allocated(0, taken.capacity());
        }
        taken
    }

    /// Records that `bytes` taken from the mailbox were written to the socket.
    pub fn written(&self, bytes: usize) {
        self.client.output_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.in_flight_capacity.store(0, Ordering::Relaxed);
        // Without the buffer's lock: a delivery racing with this may leave the mirror one
        // update behind until the next change, but the replicas' total stays the sum of the
        // mirrors (every update moves it by what it changes in its mirror).
        self.account_allocated(self.buffer_capacity.load(Ordering::Relaxed), 0);
    }

    /// Marks the client a replica: its queue is the replication stream, which does not count
    /// against `maxmemory`.
    pub fn mark_replica(&self) {
        let _buffer = self.buffer.lock();
        if !self.client.replica.swap(true, Ordering::Relaxed) {
            REPLICA_OUTPUT_ALLOCATED_BYTES.fetch_add(
                self.client.output_allocated_bytes.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
    }

    /// Records the heap bytes the queue holds now, given the capacities of its buffer and of
    /// the one being written.
    fn account_allocated(&self, buffer_capacity: usize, in_flight_capacity: usize) {
        let allocated = crate::allocator::allocation_bytes(buffer_capacity)
            + crate::allocator::allocation_bytes(in_flight_capacity);
        let previous = self
            .client
            .output_allocated_bytes
            .swap(allocated, Ordering::Relaxed);
        if crate::client_eviction::enabled() {
            crate::client_eviction::refresh(&self.client);
        }
        if previous != allocated && self.client.replica.load(Ordering::Relaxed) {
            if allocated > previous {
                REPLICA_OUTPUT_ALLOCATED_BYTES.fetch_add(allocated - previous, Ordering::Relaxed);
            } else {
                REPLICA_OUTPUT_ALLOCATED_BYTES.fetch_sub(previous - allocated, Ordering::Relaxed);
            }
        }
    }

    /// Appends one encoded message, enforcing `limit`. Returns false when the client was
    /// disconnected for going over it.
    pub fn deliver(&self, message: &[u8], limit: BufferLimit, now_ms: u64) -> bool {
        if self.client.is_killed() {
            return false;
        }
        let total = {
            // Counted under the buffer's lock, so `take` never sees bytes not yet counted.
            let mut buffer = self.buffer.lock();
            let capacity = buffer.capacity();
            buffer.extend_from_slice(message);
            if buffer.capacity() != capacity {
                self.buffer_capacity
                    .store(buffer.capacity(), Ordering::Relaxed);
                self.account_allocated(
                    buffer.capacity(),
                    self.in_flight_capacity.load(Ordering::Relaxed),
                );
            }
            self.client
                .output_bytes
                .fetch_add(message.len(), Ordering::Relaxed)
                + message.len()
        };
        if limit.hard_bytes > 0 && total > limit.hard_bytes {
            return self.disconnect("hard", total);
        }
        if limit.soft_bytes > 0 && total > limit.soft_bytes {
            let since = self.soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms, Ordering::Relaxed);
            } else if now_ms.saturating_sub(since) >= limit.soft_seconds * 1000 {
                return self.disconnect("soft", total);
            }
        } else {
            self.soft_since_ms.store(0, Ordering::Relaxed);
        }
        self.notify.notify_one();
        true
    }

    fn disconnect(&self, which: &str, total: usize) -> bool {
        tracing::warn!(
            "Client id={} scheduled to be closed ASAP for overcoming of output buffer limits ({which} limit, {total} bytes pending).",
            self.client.id
        );
        let mut buffer = self.buffer.lock();
        *buffer = Vec::new();
        self.buffer_capacity.store(0, Ordering::Relaxed);
        self.account_allocated(0, self.in_flight_capacity.load(Ordering::Relaxed));
        drop(buffer);
        crate::stats::OUTPUT_BUFFER_LIMIT_DISCONNECTIONS.fetch_add(1, Ordering::Relaxed);
        self.client.kill();
        false
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if self.client.replica.load(Ordering::Relaxed) {
            REPLICA_OUTPUT_ALLOCATED_BYTES.fetch_sub(
                self.client
                    .output_allocated_bytes
                    .swap(0, Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
    }
}

/// The subscribers of one channel or pattern: shared with the publishers that are delivering
/// to them, so that a publish takes the list with one reference count instead of copying it;
/// (un)subscribing changes it in place when no publish holds it, or a copy otherwise.
type Subscribers = Arc<Vec<Arc<Mailbox>>>;

/// One independently locked part of a [`ChannelRegistry`]: channel → subscribers.
type ChannelShard = RwLock<HashMap<Vec<u8>, Subscribers>>;

/// Channel → subscribers, split by channel hash.
pub struct ChannelRegistry {
    shards: Box<[ChannelShard]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for ChannelRegistry {
    fn default() -> Self {
        ChannelRegistry {
            shards: (0..CHANNEL_SHARDS)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl ChannelRegistry {
    fn shard(&self, channel: &[u8]) -> &ChannelShard {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(channel) as usize;
        &self.shards[hash % CHANNEL_SHARDS]
    }

    /// Adds a subscriber; returns false if it was subscribed already.
    pub fn subscribe(&self, channel: &[u8], mailbox: &Arc<Mailbox>) -> bool {
        let mut shard = self.shard(channel).write();
        let subscribers = shard.entry_ref(channel).or_default();
        if subscribers
            .iter()
            .any(|existing| Arc::ptr_eq(existing, mailbox))
        {
            return false;
        }
        Arc::make_mut(subscribers).push(mailbox.clone());
        true
    }

    pub fn unsubscribe(&self, channel: &[u8], mailbox: &Arc<Mailbox>) -> bool {
        let mut shard = self.shard(channel).write();
        let Some(subscribers) = shard.get_mut(channel) else {
            return false;
        };
        let before = subscribers.len();
        Arc::make_mut(subscribers).retain(|existing| !Arc::ptr_eq(existing, mailbox));
        let removed = subscribers.len() != before;
        if subscribers.is_empty() {
            shard.remove(channel);
        }
        removed
    }

    /// The subscribers of `channel` (a snapshot), None when it has none.
    pub fn subscribers(&self, channel: &[u8]) -> Option<Subscribers> {
        self.shard(channel).read().get(channel).cloned()
    }

    pub fn subscriber_count(&self, channel: &[u8]) -> usize {
        self.shard(channel)
            .read()
            .get(channel)
            .map_or(0, |subscribers| subscribers.len())
    }

    /// Every channel with at least one subscriber matching `pattern` (all when None).
    pub fn channels(&self, pattern: Option<&Pattern>) -> Vec<Vec<u8>> {
        let mut channels = Vec::new();
        for shard in self.shards.iter() {
            for channel in shard.read().keys() {
                if pattern.is_none_or(|pattern| pattern.matches(channel)) {
                    channels.push(channel.clone());
                }
            }
        }
        channels
    }

    /// Calls `visit` with every (channel, subscriber) pair (ACL changes check them).
    pub fn for_each_subscription(&self, mut visit: impl FnMut(&[u8], &Arc<Mailbox>)) {
        for shard in self.shards.iter() {
            for (channel, subscribers) in shard.read().iter() {
                for mailbox in subscribers.iter() {
                    visit(channel, mailbox);
                }
            }
        }
    }
}

/// Pattern subscriptions.
#[derive(Default)]
pub struct PatternRegistry {
    patterns: RwLock<Vec<(Vec<u8>, Pattern, Subscribers)>>,
    /// Distinct patterns, readable without the lock: a publish skips the patterns' lock (one
    /// cache line every publisher would write) while nobody uses a pattern. It changes under
    /// the write lock before PSUBSCRIBE replies, so a publish that starts after a PSUBSCRIBE's
    /// reply sees it.
    count: AtomicUsize,
}

impl PatternRegistry {
    pub fn subscribe(&self, pattern: &[u8], mailbox: &Arc<Mailbox>) -> bool {
        let mut patterns = self.patterns.write();
        if let Some((_, _, subscribers)) = patterns.iter_mut().find(|(text, _, _)| text == pattern)
        {
            if subscribers
                .iter()
                .any(|existing| Arc::ptr_eq(existing, mailbox))
            {
                return false;
            }
            Arc::make_mut(subscribers).push(mailbox.clone());
            return true;
        }
        patterns.push((
            pattern.to_vec(),
            Pattern::new(pattern, false),
            Arc::new(vec![mailbox.clone()]),
        ));
        self.count.store(patterns.len(), Ordering::SeqCst);
        true
    }

    pub fn unsubscribe(&self, pattern: &[u8], mailbox: &Arc<Mailbox>) -> bool {
        let mut patterns = self.patterns.write();
        let Some(position) = patterns.iter().position(|(text, _, _)| text == pattern) else {
            return false;
        };
        let subscribers = Arc::make_mut(&mut patterns[position].2);
        let before = subscribers.len();
        subscribers.retain(|existing| !Arc::ptr_eq(existing, mailbox));
        let removed = subscribers.len() != before;
        if subscribers.is_empty() {
            patterns.remove(position);
            self.count.store(patterns.len(), Ordering::SeqCst);
        }
        removed
    }

    /// (pattern, subscribers) for every pattern matching `channel`.
    pub fn matching(&self, channel: &[u8]) -> Vec<(Vec<u8>, Subscribers)> {
        if self.count.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.patterns
            .read()
            .iter()
            .filter(|(_, compiled, _)| compiled.matches(channel))
            .map(|(text, _, subscribers)| (text.clone(), subscribers.clone()))
            .collect()
    }

    /// Calls `visit` with every (pattern, subscriber) pair (ACL changes check them).
    pub fn for_each_subscription(&self, mut visit: impl FnMut(&[u8], &Arc<Mailbox>)) {
        for (pattern, _, subscribers) in self.patterns.read().iter() {
            for mailbox in subscribers.iter() {
                visit(pattern, mailbox);
            }
        }
    }

    /// Distinct patterns subscribed to.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The server's whole pub/sub state.
#[derive(Default)]
pub struct PubSub {
    pub channels: ChannelRegistry,
    pub patterns: PatternRegistry,
    pub shard_channels: ChannelRegistry,
    /// The `client-output-buffer-limit pubsub` class, refreshed on CONFIG SET.
    pub limit: SharedLimit,
}

/// The kind of message a subscriber receives.
#[derive(Clone, Copy)]
pub enum MessageKind {
    Message,
    ShardMessage,
}

/// Encodes a push of bulk strings in RESP2 (`*`) or RESP3 (`>`).
pub fn encode_push(parts: &[&[u8]], resp3: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + parts.iter().map(|part| part.len() + 16).sum::<usize>());
    let mut writer = resp::ReplyWriter::new(
        &mut out,
        if resp3 {
            resp::Protocol::Resp3
        } else {
            resp::Protocol::Resp2
        },
    );
    writer.push(parts.len());
    for part in parts {
        writer.bulk(part);
    }
    out
}

impl PubSub {
    /// Delivers `payload` to the subscribers of `channel` (and of matching patterns for
    /// ordinary channels). `sender` receives its own copies through `own_output` (so they come
    /// before the PUBLISH reply, as in Redis). Returns how many clients received it.
    pub fn publish(
        &self,
        kind: MessageKind,
        channel: &[u8],
        payload: &[u8],
        sender: Option<&Arc<Mailbox>>,
        own_output: &mut Vec<u8>,
        now_ms: u64,
    ) -> usize {
        let limit = self.limit.load();
        let mut encoded: [Option<Vec<u8>>; 2] = [None, None];
        let (registry, label): (&ChannelRegistry, &[u8]) = match kind {
            MessageKind::Message => (&self.channels, b"message"),
            MessageKind::ShardMessage => (&self.shard_channels, b"smessage"),
        };
        let mut receivers = 0;
        let mut send = |mailbox: &Arc<Mailbox>,
                        encoded: &mut [Option<Vec<u8>>; 2],
                        parts: &[&[u8]]| {
            let resp3 = mailbox.is_resp3();
            let message = encoded[resp3 as usize].get_or_insert_with(|| encode_push(parts, resp3));
            if sender.is_some_and(|sender| Arc::ptr_eq(sender, mailbox)) {
                own_output.extend_from_slice(message);
            } else {
                mailbox.deliver(message, limit, now_ms);
            }
        };
        for mailbox in registry
            .subscribers(channel)
            .iter()
            .flat_map(|list| list.iter())
        {
            if mailbox.client.is_killed() {
                continue;
            }
            send(mailbox, &mut encoded, &[label, channel, payload]);
            receivers += 1;
        }
        if let MessageKind::Message = kind {
            for (pattern, subscribers) in self.patterns.matching(channel) {
                let mut encoded: [Option<Vec<u8>>; 2] = [None, None];
                for mailbox in subscribers.iter() {
                    if mailbox.client.is_killed() {
                        continue;
                    }
                    send(
                        mailbox,
                        &mut encoded,
                        &[b"pmessage", &pattern, channel, payload],
                    );
                    receivers += 1;
                }
            }
        }
        receivers
    }
}
