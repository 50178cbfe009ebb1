//! Lazy freeing: a value that takes long to free leaves the keyspace at once and is dropped by
//! a background thread, so that UNLINK, FLUSHALL / FLUSHDB ASYNC and the `lazyfree-lazy-*`
//! options never stall a worker (and the shard it holds) on releasing millions of allocations.
//!
//! Model. As Redis's `lazyfree.c`: a value whose free effort ([`store::Value::free_effort`]) is
//! above [`LAZYFREE_THRESHOLD`] goes to the `cinnabar-lazyfree` thread through a channel; smaller
//! ones are dropped on the spot (sending costs more than freeing them). A flushed database goes
//! whole. INFO's `lazyfree_pending_objects` counts what was handed over and not yet freed,
//! `lazyfreed_objects` what the thread freed (CONFIG RESETSTAT zeroes it).
//!
//! To free something new in the background, give it to [`LazyFree::free`] (one value) or
//! [`LazyFree::free_content`] (a whole shard's keys).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};

use parking_lot::Mutex;
use store::keyspace::Entry;
use store::ShardContent;

/// Values whose free effort is at most this are freed in place (Redis's `LAZYFREE_THRESHOLD`).
pub const LAZYFREE_THRESHOLD: usize = 64;

enum Job {
    Entry(Box<Entry>),
    Content(ShardContent, u64),
}

#[derive(Default)]
pub struct LazyFree {
    sender: Mutex<Option<Sender<Job>>>,
    pending: std::sync::Arc<AtomicU64>,
    freed: std::sync::Arc<AtomicU64>,
}

impl LazyFree {
    /// Frees `entry`: in the background when that takes long, else now.
    pub fn free(&self, entry: Box<Entry>) {
        if entry.value.free_effort() <= LAZYFREE_THRESHOLD {
            drop(entry);
            return;
        }
        self.send(Job::Entry(entry), 1);
    }

    /// Frees the keys a shard gave up (`count` of them) in the background.
    pub fn free_content(&self, content: ShardContent, count: usize) {
        if count == 0 {
            return;
        }
        self.send(Job::Content(content, count as u64), count as u64);
    }

    /// Objects handed to the thread and not yet freed.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Objects the thread freed since start-up or CONFIG RESETSTAT.
    pub fn freed(&self) -> u64 {
        self.freed.load(Ordering::Relaxed)
    }

    pub fn reset_stats(&self) {
        self.freed.store(0, Ordering::Relaxed);
    }

    fn send(&self, job: Job, objects: u64) {
        let mut sender = self.sender.lock();
        if sender.is_none() {
            *sender = self.start();
        }
        self.pending.fetch_add(objects, Ordering::Relaxed);
        let job = match sender.as_ref() {
            Some(sender) => match sender.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // No thread (it could not start): free here.
        drop(job);
        self.pending.fetch_sub(objects, Ordering::Relaxed);
    }

    fn start(&self) -> Option<Sender<Job>> {
        let (sender, receiver) = channel::<Job>();
        let (pending, freed) = (self.pending.clone(), self.freed.clone());
        let spawned = std::thread::Builder::new()
            .name("cinnabar-lazyfree".into())
            .spawn(move || {
                crate::allocator::register_current_thread();
                for job in receiver {
                    let objects = match job {
                        Job::Entry(entry) => {
                            drop(entry);
                            1
                        }
                        Job::Content(content, count) => {
                            drop(content);
                            count
                        }
                    };
                    pending.fetch_sub(objects, Ordering::Relaxed);
                    freed.fetch_add(objects, Ordering::Relaxed);
                }
            });
        match spawned {
            Ok(_) => Some(sender),
            Err(error) => {
                tracing::warn!("Can't start the lazyfree thread ({error}): freeing in place");
                None
            }
        }
    }
}
