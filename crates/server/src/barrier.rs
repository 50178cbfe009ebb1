//! The script barrier: a "big-reader" lock between ordinary commands and scripts.
//!
//! Every ordinary command enters the barrier in shared mode for the time it runs
//! ([`Barrier::enter_shared`]): it increments the counter of its thread's own stripe (a cache
//! line nobody else writes in the common case) and loads the exclusive flag once. A script
//! (EVAL, EVALSHA, FCALL ...), which may touch keys it never declared, enters in exclusive mode
//! ([`Barrier::enter_exclusive`]): it raises the exclusive flag, waits until every stripe drains
//! to zero, then runs alone and locks shards on demand through its `Context`. That is deadlock
//! free because while a script is exclusive no other command holds or waits for shard locks;
//! the only other lock holders are background tasks (active expiry, unwatching on disconnect)
//! that hold one shard at a time and never wait for a second one.
//!
//! A pipelined batch of scripts would pay one exclusive entry (and one hand-over between
//! threads) per script. Instead a script may keep the barrier when it ends
//! ([`ExclusiveGuard::keep`]) for the scripts that follow it in the same batch, which then run
//! as nested ones; the connection releases it ([`Barrier::release_kept`], or a [`BatchScope`]'s
//! drop) before the next ordinary command, before any await and at the end of the batch. A
//! kept barrier never crosses an await, so it never leaves its thread.
//!
//! A command waiting to enter while a script runs longer than `busy-reply-threshold` gives up
//! with a BUSY error instead (the caller decides, through the `give_up` callback), so other
//! clients are answered without waiting for the script's locks. Commands flagged `allow_busy`
//! (SCRIPT KILL, FUNCTION KILL, SHUTDOWN, ...) never enter the barrier.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Stripes of the shared counter; threads beyond this share stripes (still correct).
const STRIPES: usize = 64;

#[repr(align(128))]
struct Stripe(AtomicU64);

pub struct Barrier {
    stripes: Box<[Stripe]>,
    exclusive: AtomicBool,
    /// Serialises exclusive holders.
    writers: Mutex<()>,
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Whether this thread holds the barrier exclusively (a command it runs nested, such as an
    /// AOF replayed by DEBUG LOADAOF, must not wait for itself).
    static EXCLUSIVE_HERE: Cell<bool> = const { Cell::new(false) };
    /// The barrier this thread keeps exclusive between the commands of a batch (null: none).
    static KEPT: Cell<*const Barrier> = const { Cell::new(std::ptr::null()) };
}

fn stripe_index() -> usize {
    STRIPE.with(|cell| {
        let mut index = cell.get();
        if index == usize::MAX {
            index = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            cell.set(index);
        }
        index
    })
}

impl Default for Barrier {
    fn default() -> Self {
        Barrier {
            stripes: (0..STRIPES).map(|_| Stripe(AtomicU64::new(0))).collect(),
            exclusive: AtomicBool::new(false),
            writers: Mutex::new(()),
        }
    }
}

/// Shared mode, held while an ordinary command runs.
pub struct SharedGuard<'b> {
    barrier: &'b Barrier,
    stripe: usize,
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        self.barrier.stripes[self.stripe]
            .0
            .fetch_sub(1, Ordering::Release);
    }
}

/// Exclusive mode, held while a script runs.
pub struct ExclusiveGuard<'b> {
    barrier: &'b Barrier,
    _writers: parking_lot::MutexGuard<'b, ()>,
}

impl ExclusiveGuard<'_> {
    /// Keeps the barrier exclusive after this command, for the next ones of its batch: the
    /// writers' lock stays taken and the flag raised until [`Barrier::release_kept`] runs on
    /// this thread.
    pub fn keep(self) {
        let barrier: *const Barrier = self.barrier;
        assert!(KEPT.with(Cell::get).is_null(), "a barrier is kept twice");
        KEPT.with(|kept| kept.set(barrier));
        // The guard's lock stays held: `release_kept` unlocks it.
        std::mem::forget(self);
    }
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        EXCLUSIVE_HERE.with(|here| here.set(false));
        self.barrier.exclusive.store(false, Ordering::SeqCst);
    }
}

impl Barrier {
    /// Enters in shared mode, waiting while a script runs. `give_up` is asked between waits;
    /// when it returns an error the command does not run (BUSY).
    pub fn enter_shared<E>(
        &self,
        mut give_up: impl FnMut() -> Result<(), E>,
    ) -> Result<SharedGuard<'_>, E> {
        let stripe = stripe_index();
        let mut waits: u32 = 0;
        loop {
            // SeqCst on both sides (increment here, flag store in `enter_exclusive`): either the
            // script sees our increment while draining, or we see its flag.
            self.stripes[stripe].0.fetch_add(1, Ordering::SeqCst);
            if !self.exclusive.load(Ordering::SeqCst) {
                return Ok(SharedGuard {
                    barrier: self,
                    stripe,
                });
            }
            self.stripes[stripe].0.fetch_sub(1, Ordering::SeqCst);
            while self.exclusive.load(Ordering::SeqCst) {
                give_up()?;
                if waits < SPINS {
                    pause(&mut waits);
                } else {
                    // Park until the script ends (it holds `writers`), waking now and then to
                    // ask `give_up` (BUSY).
                    drop(self.writers.try_lock_for(WAKE_INTERVAL));
                }
            }
        }
    }

    /// Enters in exclusive mode: waits for other exclusive holders, then for every in-flight
    /// command to finish.
    pub fn enter_exclusive<E>(
        &self,
        mut give_up: impl FnMut() -> Result<(), E>,
    ) -> Result<ExclusiveGuard<'_>, E> {
        let mut waits: u32 = 0;
        let writers = loop {
            let attempt = if waits < SPINS {
                pause(&mut waits);
                self.writers.try_lock()
            } else {
                self.writers.try_lock_for(WAKE_INTERVAL)
            };
            if let Some(writers) = attempt {
                break writers;
            }
            give_up()?;
        };
        self.exclusive.store(true, Ordering::SeqCst);
        waits = 0;
        for stripe in self.stripes.iter() {
            while stripe.0.load(Ordering::SeqCst) != 0 {
                pause(&mut waits);
            }
        }
        EXCLUSIVE_HERE.with(|here| here.set(true));
        Ok(ExclusiveGuard {
            barrier: self,
            _writers: writers,
        })
    }

    /// Whether the calling thread holds the barrier exclusively: what it runs nested is
    /// already alone.
    pub fn held_exclusively_here(&self) -> bool {
        EXCLUSIVE_HERE.with(|here| here.get())
    }

    /// Whether this thread keeps the barrier exclusive between the commands of its batch.
    pub fn kept_here(&self) -> bool {
        std::ptr::eq(KEPT.with(Cell::get), self)
    }

    /// Ends what [`ExclusiveGuard::keep`] kept on this thread, if anything.
    pub fn release_kept(&self) {
        if !self.kept_here() {
            return;
        }
        KEPT.with(|kept| kept.set(std::ptr::null()));
        EXCLUSIVE_HERE.with(|here| here.set(false));
        self.exclusive.store(false, Ordering::SeqCst);
        // SAFETY: `keep` forgot this thread's guard of `writers`, whose lock it held; KEPT
        // (thread-local, just cleared) is the record that the lock is still ours to release.
        unsafe { self.writers.force_unlock() };
    }

    /// A scope for one batch of commands: releases whatever the batch kept when it ends.
    pub fn batch(&self) -> BatchScope<'_> {
        BatchScope { barrier: self }
    }

    /// Whether a script holds the barrier now.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive.load(Ordering::Relaxed)
    }
}

/// The commands a connection runs between two awaits: whatever a script kept for them is
/// released when the scope ends (a panic included), so no thread can keep the barrier by
/// mistake.
pub struct BatchScope<'b> {
    barrier: &'b Barrier,
}

impl BatchScope<'_> {
    /// Releases what the batch kept so far (before an await, or before an ordinary command).
    pub fn release(&self) {
        self.barrier.release_kept();
    }
}

impl Drop for BatchScope<'_> {
    fn drop(&mut self) {
        self.barrier.release_kept();
    }
}

/// Spins (without yielding) before parking on `writers`: a wait is one command, or one batch
/// of scripts, and a parked thread leaves the core to the one it waits for.
const SPINS: u32 = 64;
/// How often a parked waiter wakes to check for BUSY.
const WAKE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// Spins briefly, then yields, then sleeps: draining in-flight commands takes microseconds,
/// but nothing must burn a core for long.
fn pause(waits: &mut u32) {
    *waits = waits.saturating_add(1);
    if *waits < 64 {
        std::hint::spin_loop();
    } else if *waits < 4096 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn exclusive_excludes_shared() {
        let barrier = Arc::new(Barrier::default());
        let counter = Arc::new(AtomicU64::new(0));
        let inside = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let (barrier, counter, inside) = (barrier.clone(), counter.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if thread == 0 {
                            let _guard = barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap();
                            inside.store(true, Ordering::SeqCst);
                            counter.fetch_add(1, Ordering::SeqCst);
                            inside.store(false, Ordering::SeqCst);
                        } else {
                            let _guard = barrier.enter_shared(|| Ok::<(), ()>(())).unwrap();
                            assert!(!inside.load(Ordering::SeqCst));
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::SeqCst), 2000);
    }

    #[test]
    fn a_kept_barrier_stays_exclusive_until_released() {
        let barrier = Arc::new(Barrier::default());
        let guard = barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap();
        guard.keep();
        assert!(barrier.kept_here());
        assert!(barrier.held_exclusively_here());
        assert!(barrier.is_exclusive());
        // Another thread cannot enter while the barrier is kept: asked, it gives up.
        let refused = {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                assert!(!barrier.kept_here(), "kept is per thread");
                barrier.enter_shared(|| Err::<(), _>("BUSY")).err()
            })
        };
        assert_eq!(refused.join().unwrap(), Some("BUSY"));
        barrier.release_kept();
        assert!(!barrier.kept_here());
        assert!(!barrier.held_exclusively_here());
        let entered = {
            let barrier = barrier.clone();
            std::thread::spawn(move || barrier.enter_shared(|| Err::<(), _>("BUSY")).is_ok())
        };
        assert!(entered.join().unwrap());
        // Releasing twice is harmless.
        barrier.release_kept();
    }

    #[test]
    fn a_batch_scope_releases_what_its_batch_kept() {
        let barrier = Barrier::default();
        {
            let _batch = barrier.batch();
            barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap().keep();
            assert!(barrier.kept_here());
        }
        assert!(!barrier.kept_here());
        assert!(!barrier.is_exclusive());
        // The writers' lock was released too: exclusive entry works again.
        drop(barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap());
        assert!(!barrier.held_exclusively_here());
    }

    #[test]
    fn waiting_reader_can_give_up() {
        let barrier = Barrier::default();
        let _exclusive = barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap();
        let result = barrier.enter_shared(|| Err::<(), _>("BUSY"));
        assert_eq!(result.err(), Some("BUSY"));
    }
}
