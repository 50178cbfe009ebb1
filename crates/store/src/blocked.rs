//! Clients blocked on keys (BLPOP, BZPOPMIN, XREAD BLOCK ...), as the shard sees them.
//!
//! Model. Each shard keeps, for every key some client waits on, a FIFO queue of opaque waiter
//! tokens (the server's own waiter type behind `Arc<dyn Any>`), and a list of keys that became
//! "ready": written while someone waits on them. Both live inside the shard, so they are
//! protected by the shard's lock and ordered with the writes: a write that makes a key ready
//! marks it under the same lock, and the server serves the waiters before that lock is released.
//! The store never interprets the tokens.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::small_bytes::SmallBytes;

/// A blocked client, opaque to the store.
pub type WaiterToken = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub struct BlockedKeys {
    waiters: HashMap<SmallBytes, Queue>,
    ready: Vec<SmallBytes>,
}

/// The waiters on one key, oldest first, each with whether the key's deletion wakes it.
#[derive(Default)]
struct Queue {
    waiters: VecDeque<(WaiterToken, bool)>,
    /// How many of `waiters` the key's deletion wakes.
    on_deletion: usize,
}

impl Queue {
    fn remove_at(&mut self, position: usize) {
        if let Some((_, on_deletion)) = self.waiters.remove(position) {
            self.on_deletion -= usize::from(on_deletion);
        }
    }
}

impl BlockedKeys {
    /// Whether nobody waits on any key of this shard (the common case: one branch).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Queues `token` as the last waiter on `key`; `wakes_on_deletion` says whether the key's
    /// deletion concerns it (XREADGROUP) or only data it can take does (pops).
    pub fn block(&mut self, key: &[u8], token: WaiterToken, wakes_on_deletion: bool) {
        if !self.waiters.contains_key(key) {
            self.waiters.insert(SmallBytes::from(key), Queue::default());
        }
        let queue = self.waiters.get_mut(key).expect("just inserted");
        queue.waiters.push_back((token, wakes_on_deletion));
        queue.on_deletion += usize::from(wakes_on_deletion);
    }

    /// Removes `token` from `key`'s queue (by identity).
    pub fn unblock(&mut self, key: &[u8], token: &WaiterToken) {
        if let Some(queue) = self.waiters.get_mut(key) {
            if let Some(position) = queue
                .waiters
                .iter()
                .position(|(queued, _)| Arc::ptr_eq(queued, token))
            {
                queue.remove_at(position);
            }
            if queue.waiters.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    /// Removes the waiter at `position` of `key`'s queue, which must be `token`.
    pub fn unblock_at(&mut self, key: &[u8], position: usize, token: &WaiterToken) {
        let Some(queue) = self.waiters.get_mut(key) else {
            return;
        };
        match queue.waiters.get(position) {
            Some((queued, _)) if Arc::ptr_eq(queued, token) => queue.remove_at(position),
            _ => {
                debug_assert!(false, "the waiter moved in its queue");
                return self.unblock(key, token);
            }
        }
        if queue.waiters.is_empty() {
            self.waiters.remove(key);
        }
    }

    /// The waiters on `key`, oldest first.
    pub fn waiters(&self, key: &[u8]) -> impl Iterator<Item = &WaiterToken> {
        self.waiters
            .get(key)
            .into_iter()
            .flat_map(|queue| queue.waiters.iter().map(|(token, _)| token))
    }

    /// The waiter at `position` in the queue of `key` (0 is the oldest).
    pub fn waiter_at(&self, key: &[u8], position: usize) -> Option<WaiterToken> {
        let (token, _) = self.waiters.get(key)?.waiters.get(position)?;
        Some(token.clone())
    }

    /// How many waiters of `key` its deletion wakes.
    pub fn deletion_waiter_count(&self, key: &[u8]) -> usize {
        self.waiters.get(key).map_or(0, |queue| queue.on_deletion)
    }

    /// How many waiters `key` has.
    pub fn waiter_count(&self, key: &[u8]) -> usize {
        self.waiters.get(key).map_or(0, |queue| queue.waiters.len())
    }

    /// Marks `key` ready if someone waits on it.
    #[inline]
    pub fn signal(&mut self, key: &[u8]) {
        if self.waiters.is_empty() || !self.waiters.contains_key(key) {
            return;
        }
        if !self.ready.iter().any(|ready| &**ready == key) {
            self.ready.push(SmallBytes::new(key));
        }
    }

    /// Marks every key someone waits on ready (FLUSHDB, SWAPDB).
    pub fn signal_all(&mut self) {
        for key in self.waiters.keys() {
            if !self.ready.iter().any(|ready| ready == key) {
                self.ready.push(key.clone());
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The keys marked ready since the last call, in the order they became ready.
    pub fn take_ready(&mut self) -> Vec<SmallBytes> {
        std::mem::take(&mut self.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_ready_keys() {
        let mut blocked = BlockedKeys::default();
        let first: WaiterToken = Arc::new(1u32);
        let second: WaiterToken = Arc::new(2u32);
        blocked.signal(b"k");
        assert!(!blocked.has_ready(), "nobody waits yet");
        blocked.block(b"k", first.clone(), false);
        blocked.block(b"k", second.clone(), true);
        let order: Vec<u32> = blocked
            .waiters(b"k")
            .map(|token| *token.downcast_ref::<u32>().unwrap())
            .collect();
        assert_eq!(order, vec![1, 2]);
        assert_eq!(blocked.deletion_waiter_count(b"k"), 1);
        blocked.signal(b"k");
        blocked.signal(b"k");
        assert_eq!(blocked.take_ready(), vec![SmallBytes::new(b"k")]);
        blocked.unblock_at(b"k", 0, &first);
        assert_eq!(blocked.waiter_count(b"k"), 1);
        assert_eq!(blocked.deletion_waiter_count(b"k"), 1);
        blocked.unblock(b"k", &second);
        assert_eq!(blocked.deletion_waiter_count(b"k"), 0);
        assert!(blocked.is_empty());
    }
}
