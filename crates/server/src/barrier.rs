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
    static STRIPE: Cell<usize> = Cell::new(usize::MAX);
    /// Whether this thread holds the barrier exclusively (a command it runs nested, such as an
    /// AOF replayed by DEBUG LOADAOF, must not wait for itself).
    static EXCLUSIVE_HERE: Cell<bool> = const { Cell::new(false) };
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

    /// Whether a script holds the barrier now.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive.load(Ordering::Relaxed)
    }
}

/// Spins before parking on `writers` (waits are usually one command or one short script).
const SPINS: u32 = 128;
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
    fn waiting_reader_can_give_up() {
        let barrier = Barrier::default();
        let _exclusive = barrier.enter_exclusive(|| Ok::<(), ()>(())).unwrap();
        let result = barrier.enter_shared(|| Err::<(), _>("BUSY"));
        assert_eq!(result.err(), Some("BUSY"));
    }
}
