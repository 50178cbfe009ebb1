//! Client-side caching (CLIENT TRACKING): which clients may cache which keys, and the
//! invalidation messages writes send them.
//!
//! Model. Reads of a tracking client (default mode) record `key → client ids` in a table split
//! into independently locked shards by key, so concurrent readers rarely contend. A write takes
//! the key's entry out of the table and tells each client (once: it must read the key again to
//! be told again). BCAST clients record nothing: every write is checked against their
//! prefixes. Invalidations go to the client's mailbox as a RESP3 push `invalidate [keys]`, or to
//! its REDIRECT client (a push in RESP3, a `__redis__:invalidate` Pub/Sub message in RESP2 when
//! that client is subscribed). FLUSHDB/FLUSHALL invalidate everything with a null.
//!
//! Cost when nobody tracks: one relaxed atomic load per command and per write.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;
use resp::{Protocol, ReplyWriter};

use crate::pubsub::{BufferLimit, Mailbox};

const TABLE_SHARDS: usize = 64;
const CHANNEL: &[u8] = b"__redis__:invalidate";

thread_local! {
    /// The client whose command runs on this thread (for NOLOOP).
    static CURRENT_CLIENT: Cell<u64> = const { Cell::new(0) };
    /// BCAST invalidations of the running command: (client, prefix index, key). Sent together
    /// when the command ends, one message per client and prefix (as Redis batches them).
    static PENDING: std::cell::RefCell<Vec<(Arc<Tracker>, usize, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Records which client runs the command on this thread.
pub fn set_current_client(id: u64) {
    CURRENT_CLIENT.with(|current| current.set(id));
}

/// A tracking client's options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

/// A client with tracking on.
pub struct Tracker {
    pub options: Options,
    pub mailbox: Arc<Mailbox>,
}

/// The server's tracking state.
pub struct Tracking {
    /// Clients with tracking on (the fast-path check).
    enabled: AtomicUsize,
    trackers: Mutex<HashMap<u64, Arc<Tracker>>>,
    /// Every connected client's mailbox, for redirections.
    mailboxes: Mutex<HashMap<u64, Arc<Mailbox>>>,
    table: Vec<Mutex<HashMap<Vec<u8>, HashSet<u64>>>>,
    total_keys: AtomicUsize,
    total_items: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit), kept here so every command can check it.
    pub keys_max: AtomicUsize,
    pub limit: Mutex<BufferLimit>,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            enabled: AtomicUsize::new(0),
            trackers: Mutex::new(HashMap::new()),
            mailboxes: Mutex::new(HashMap::new()),
            table: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            total_keys: AtomicUsize::new(0),
            total_items: AtomicUsize::new(0),
            keys_max: AtomicUsize::new(0),
            limit: Mutex::new(BufferLimit::default()),
        }
    }
}

fn table_shard(key: &[u8]) -> usize {
    store::keyspace::shard_index(key) % TABLE_SHARDS
}

impl Tracking {
    /// Whether any client tracks (one relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.enabled.load(Ordering::Relaxed) > 0
    }

    pub fn register_mailbox(&self, mailbox: &Arc<Mailbox>) {
        self.mailboxes
            .lock()
            .insert(mailbox.client.id, mailbox.clone());
    }

    /// A client disconnected: tracking off, no longer a redirection target.
    pub fn unregister(&self, id: u64) {
        self.disable(id);
        self.mailboxes.lock().remove(&id);
    }

    pub fn exists(&self, id: u64) -> bool {
        self.mailboxes.lock().contains_key(&id)
    }

    pub fn tracker(&self, id: u64) -> Option<Arc<Tracker>> {
        if !self.active() {
            return None;
        }
        self.trackers.lock().get(&id).cloned()
    }

    /// Turns tracking on for `mailbox`'s client with `options` (replacing earlier ones, keeping
    /// earlier prefixes as Redis does).
    pub fn enable(&self, mailbox: &Arc<Mailbox>, mut options: Options) {
        let mut trackers = self.trackers.lock();
        let id = mailbox.client.id;
        if let Some(previous) = trackers.get(&id) {
            for prefix in &previous.options.prefixes {
                if !options.prefixes.contains(prefix) {
                    options.prefixes.push(prefix.clone());
                }
            }
        } else {
            self.enabled.fetch_add(1, Ordering::Relaxed);
        }
        if options.bcast && options.prefixes.is_empty() {
            options.prefixes.push(Vec::new());
        }
        options.prefixes.sort();
        let prefix_bytes: usize = options
            .prefixes
            .iter()
            .map(|prefix| prefix.len() + crate::client::TRACKING_PREFIX_BYTES)
            .sum();
        mailbox
            .client
            .tracking_prefix_bytes
            .store(prefix_bytes, Ordering::Relaxed);
        trackers.insert(
            id,
            Arc::new(Tracker {
                options,
                mailbox: mailbox.clone(),
            }),
        );
    }

    pub fn disable(&self, id: u64) {
        if let Some(tracker) = self.trackers.lock().remove(&id) {
            self.enabled.fetch_sub(1, Ordering::Relaxed);
            tracker
                .mailbox
                .client
                .tracking_prefix_bytes
                .store(0, Ordering::Relaxed);
        }
    }

    /// Records that client `id` read `keys` (it may cache them until told otherwise).
    pub fn remember(&self, id: u64, keys: &[&[u8]], max_keys: usize) {
        for key in keys {
            let mut shard = self.table[table_shard(key)].lock();
            let ids = match shard.get_mut(*key) {
                Some(ids) => ids,
                None => {
                    self.total_keys.fetch_add(1, Ordering::Relaxed);
                    shard.entry(key.to_vec()).or_default()
                }
            };
            if ids.insert(id) {
                self.total_items.fetch_add(1, Ordering::Relaxed);
            }
        }
        if max_keys > 0 {
            self.evict_over(max_keys);
        }
    }

    /// Enforces `tracking-table-max-keys` before a command runs (queued ones included), as
    /// Redis does: cheap when the table is within the limit.
    #[inline]
    pub fn enforce_limit(&self) {
        let keys_max = self.keys_max.load(Ordering::Relaxed);
        if keys_max > 0 && self.total_keys.load(Ordering::Relaxed) > keys_max {
            self.evict_over(keys_max);
        }
    }

    /// `tracking-table-max-keys`: forgets keys (invalidating them for their clients) until the
    /// table is within `max_keys`.
    pub fn evict_over(&self, max_keys: usize) {
        let mut index = rand::random::<u32>() as usize;
        let mut attempts = 0;
        while self.total_keys.load(Ordering::Relaxed) > max_keys && attempts < 16 * TABLE_SHARDS {
            attempts += 1;
            index = (index + 1) % TABLE_SHARDS;
            let victim = {
                let shard = self.table[index].lock();
                shard.keys().next().cloned()
            };
            if let Some(key) = victim {
                self.invalidate_tracked(&key, 0);
            }
        }
    }

    /// Table size (INFO): keys, (key, client) pairs, BCAST prefixes.
    pub fn totals(&self) -> (usize, usize, usize) {
        let prefixes: HashSet<Vec<u8>> = self
            .trackers
            .lock()
            .values()
            .filter(|tracker| tracker.options.bcast)
            .flat_map(|tracker| tracker.options.prefixes.iter().cloned())
            .collect();
        (
            self.total_keys.load(Ordering::Relaxed),
            self.total_items.load(Ordering::Relaxed),
            prefixes.len(),
        )
    }

    pub fn clients(&self) -> usize {
        self.enabled.load(Ordering::Relaxed)
    }

    /// A write changed `key`: tells the clients that may cache it (not the writer itself when
    /// it asked for NOLOOP).
    pub fn invalidate(&self, key: &[u8]) {
        self.invalidate_for(key, CURRENT_CLIENT.with(Cell::get));
    }

    /// `key` expired: tells every client that may cache it (NOLOOP does not apply: no client
    /// wrote it).
    pub fn invalidate_expired(&self, key: &[u8]) {
        self.invalidate_for(key, 0);
    }

    fn invalidate_for(&self, key: &[u8], current: u64) {
        if !self.active() {
            return;
        }
        self.invalidate_tracked(key, current);
        let broadcasters: Vec<Arc<Tracker>> = self
            .trackers
            .lock()
            .values()
            .filter(|tracker| tracker.options.bcast)
            .cloned()
            .collect();
        for tracker in broadcasters {
            if tracker.options.noloop && tracker.mailbox.client.id == current {
                continue;
            }
            let matched = tracker
                .options
                .prefixes
                .iter()
                .position(|prefix| key.starts_with(prefix));
            if let Some(index) = matched {
                PENDING.with(|pending| pending.borrow_mut().push((tracker, index, key.to_vec())));
            }
        }
    }

    /// Sends the BCAST invalidations the command on this thread produced.
    pub fn flush_broadcasts(&self) {
        let pending = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
        if pending.is_empty() {
            return;
        }
        let mut groups: Vec<(Arc<Tracker>, usize, Vec<&[u8]>)> = Vec::new();
        for (tracker, index, key) in &pending {
            match groups
                .iter_mut()
                .find(|(other, other_index, _)| Arc::ptr_eq(other, tracker) && other_index == index)
            {
                Some((_, _, keys)) => {
                    if !keys.contains(&key.as_slice()) {
                        keys.push(key);
                    }
                }
                None => groups.push((tracker.clone(), *index, vec![key.as_slice()])),
            }
        }
        for (tracker, _, keys) in groups {
            self.send(&tracker, Some(&keys));
        }
    }

    fn invalidate_tracked(&self, key: &[u8], current: u64) {
        let ids = {
            let mut shard = self.table[table_shard(key)].lock();
            match shard.remove(key) {
                Some(ids) => ids,
                None => return,
            }
        };
        self.total_keys.fetch_sub(1, Ordering::Relaxed);
        self.total_items.fetch_sub(ids.len(), Ordering::Relaxed);
        for id in ids {
            let Some(tracker) = self.trackers.lock().get(&id).cloned() else {
                continue;
            };
            if tracker.options.bcast || (tracker.options.noloop && id == current) {
                continue;
            }
            self.send(&tracker, Some(&[key]));
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client drops its whole cache.
    pub fn invalidate_all(&self) {
        if !self.active() && self.total_keys.load(Ordering::Relaxed) == 0 {
            return;
        }
        for shard in &self.table {
            shard.lock().clear();
        }
        self.total_keys.store(0, Ordering::Relaxed);
        self.total_items.store(0, Ordering::Relaxed);
        let trackers: Vec<Arc<Tracker>> = self.trackers.lock().values().cloned().collect();
        for tracker in trackers {
            self.send(&tracker, None);
        }
    }

    /// Sends one invalidation (`None`: everything) for `tracker`, where Redis sends it.
    fn send(&self, tracker: &Tracker, keys: Option<&[&[u8]]>) {
        let limit = *self.limit.lock();
        let now_ms = crate::server::unix_time_ms();
        let redirect = tracker.options.redirect;
        let (target, redirected) = if redirect != 0 {
            match self.mailboxes.lock().get(&redirect).cloned() {
                Some(target) => (target, true),
                None => {
                    if tracker.mailbox.is_resp3() {
                        let mut message = Vec::new();
                        let mut writer = ReplyWriter::new(&mut message, Protocol::Resp3);
                        writer.push(2);
                        writer.bulk(b"tracking-redir-broken");
                        writer.integer(redirect as i64);
                        tracker.mailbox.deliver(&message, limit, now_ms);
                    }
                    return;
                }
            }
        } else {
            (tracker.mailbox.clone(), false)
        };
        let resp3 = target.is_resp3();
        let mut message = Vec::new();
        let protocol = if resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        let mut writer = ReplyWriter::new(&mut message, protocol);
        if resp3 {
            writer.push(2);
            writer.bulk(b"invalidate");
        } else if redirected && target.client.is_pubsub() {
            writer.push(3);
            writer.bulk(b"message");
            writer.bulk(CHANNEL);
        } else {
            return;
        }
        match keys {
            Some(keys) => {
                writer.array(keys.len());
                for key in keys {
                    writer.bulk(key);
                }
            }
            None => writer.null(),
        }
        target.deliver(&message, limit, now_ms);
    }
}
