//! Counters bumped on every command (commandstats, INFO stats) without a shared cache line and
//! without locked instructions.
//!
//! Model. A [`StripedCounter`] is a small array of cache-line-padded atomics; each thread adds
//! to its own stripe and a reader sums the stripes. Two worker threads counting the same command
//! therefore never bounce a cache line between cores, which a single `AtomicU64` does on every
//! increment. A runtime thread *owns* a stripe ([`claim_stripe`] at thread start,
//! [`release_stripe`] at its end): no other thread ever writes it, so the owner adds with a plain
//! load and store (an atomic read-modify-write costs a locked instruction, ~20 cycles, four or
//! five times per command). Threads without a stripe of their own (start-up, background
//! threads, runtime threads beyond `STRIPES - 1`) share the last stripe and add atomically.
//! Reads (INFO) are rare and pay for the sum.
//!
//! Since only owners write their stripes, CONFIG RESETSTAT never writes them either (a reset
//! racing with an owner's load and store could be lost): it records the current total as a
//! baseline, and reads subtract it.
//!
//! The methods mirror `AtomicU64`'s (`fetch_add`, `load`, `store`) so a counter can change
//! representation without touching its users; `fetch_add` returns nothing, since no stripe
//! knows the total. To add a counter: declare a `StripedCounter` field and use it like an atomic;
//! for a group of counters on one line, see [`CommandStats`] and [`Stripe::add`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Stripes per counter: one per runtime thread of any machine this runs on keeps additions
/// free of locked instructions; threads beyond `STRIPES - 1` share the last stripe (correct,
/// only slower).
pub const STRIPES: usize = 16;

/// The stripe of every thread that owns none.
const SHARED_STRIPE: usize = STRIPES - 1;

/// One atomic alone on its cache line (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// A counter that each thread increments on its own cache line.
pub struct StripedCounter {
    stripes: [Padded; STRIPES],
    /// The total at the last reset; reads subtract it.
    baseline: AtomicU64,
}

impl Default for StripedCounter {
    fn default() -> Self {
        StripedCounter {
            stripes: std::array::from_fn(|_| Padded::default()),
            baseline: AtomicU64::new(0),
        }
    }
}

/// Stripes released by threads that ended, and the next never-claimed one.
static FREE_STRIPES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<Stripe> = const { Cell::new(Stripe { index: SHARED_STRIPE, owned: false }) };
}

/// The calling thread's stripe, and whether the thread owns it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stripe {
    pub index: usize,
    owned: bool,
}

impl Stripe {
    /// Adds `amount` to `counter`, one of this stripe's.
    #[inline]
    pub fn add(self, counter: &AtomicU64, amount: u64) {
        if self.owned {
            // Only this thread writes an owned stripe: no read-modify-write needed.
            counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(amount),
                Ordering::Relaxed,
            );
        } else {
            counter.fetch_add(amount, Ordering::Relaxed);
        }
    }
}

/// Gives the calling thread a stripe of its own (the runtime's thread-start hook). A thread
/// that finds none free keeps sharing the last one.
pub fn claim_stripe() {
    if STRIPE.with(Cell::get).owned {
        return;
    }
    let index = FREE_STRIPES.lock().pop().or_else(|| {
        NEXT_STRIPE
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                (next < SHARED_STRIPE).then_some(next + 1)
            })
            .ok()
    });
    if let Some(index) = index {
        assert!(index < SHARED_STRIPE);
        STRIPE.with(|stripe| stripe.set(Stripe { index, owned: true }));
    }
}

/// Gives the calling thread's stripe back (the runtime's thread-stop hook); whatever the
/// thread adds afterwards goes to the shared stripe.
pub fn release_stripe() {
    let released = STRIPE.with(|stripe| {
        stripe.replace(Stripe {
            index: SHARED_STRIPE,
            owned: false,
        })
    });
    if released.owned {
        FREE_STRIPES.lock().push(released.index);
    }
}

/// The calling thread's stripe.
#[inline]
pub(crate) fn stripe() -> Stripe {
    STRIPE.with(Cell::get)
}

impl StripedCounter {
    /// Adds `amount` on the calling thread's stripe.
    #[inline]
    pub fn fetch_add(&self, amount: u64, _ordering: Ordering) {
        let stripe = stripe();
        stripe.add(&self.stripes[stripe.index].0, amount);
    }

    fn sum(&self) -> u64 {
        self.stripes.iter().fold(0u64, |total, stripe| {
            total.wrapping_add(stripe.0.load(Ordering::Relaxed))
        })
    }

    /// The total over every stripe, since the last reset.
    pub fn load(&self, _ordering: Ordering) -> u64 {
        self.sum()
            .wrapping_sub(self.baseline.load(Ordering::Relaxed))
    }

    /// Sets the total to `value` (CONFIG RESETSTAT stores 0).
    pub fn store(&self, value: u64, _ordering: Ordering) {
        self.baseline
            .store(self.sum().wrapping_sub(value), Ordering::Relaxed);
    }
}

/// Work cycles, Redis's "event loop" metrics for a server without one event loop (INFO stats
/// `eventloop_*`, INFO debug): a cycle is one connection's batch (the requests of one read,
/// run and answered) or one cron tick.
#[derive(Default)]
pub struct EventLoopStats {
    pub cycles: StripedCounter,
    /// Time spent in cycles, in commands and in cron ticks (µs).
    pub duration_us: StripedCounter,
    pub command_us: StripedCounter,
    pub cron_us: StripedCounter,
    /// The longest cycle (µs) and the most commands one cycle ran.
    pub duration_max_us: AtomicU64,
    pub commands_per_cycle_max: AtomicU64,
}

impl EventLoopStats {
    /// Records one connection batch of `commands` commands that took `duration_us`, of which
    /// `command_us` in commands.
    pub fn record_batch(&self, duration_us: u64, command_us: u64, commands: u64) {
        self.cycles.fetch_add(1, Ordering::Relaxed);
        self.duration_us.fetch_add(duration_us, Ordering::Relaxed);
        self.command_us.fetch_add(command_us, Ordering::Relaxed);
        if duration_us > self.duration_max_us.load(Ordering::Relaxed) {
            self.duration_max_us
                .fetch_max(duration_us, Ordering::Relaxed);
        }
        if commands > self.commands_per_cycle_max.load(Ordering::Relaxed) {
            self.commands_per_cycle_max
                .fetch_max(commands, Ordering::Relaxed);
        }
    }

    /// Records one cron tick that took `duration_us`.
    pub fn record_cron(&self, duration_us: u64) {
        self.cycles.fetch_add(1, Ordering::Relaxed);
        self.duration_us.fetch_add(duration_us, Ordering::Relaxed);
        self.cron_us.fetch_add(duration_us, Ordering::Relaxed);
        self.duration_max_us
            .fetch_max(duration_us, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for counter in [
            &self.cycles,
            &self.duration_us,
            &self.command_us,
            &self.cron_us,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.duration_max_us.store(0, Ordering::Relaxed);
        self.commands_per_cycle_max.store(0, Ordering::Relaxed);
        AOF_WRITE_US.store(0, Ordering::Relaxed);
    }
}

/// Time spent writing (and, under `appendfsync always`, syncing) the AOF in write rounds (µs;
/// INFO debug `eventloop_duration_aof_sum`). One server runs per process.
pub static AOF_WRITE_US: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Time this thread spent in commands (µs) and commands it ran since the last
    /// [`take_batch_commands`]: the connection batch running on it.
    static BATCH_COMMANDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Counts one command of `duration_us` in the batch running on this thread.
#[inline]
pub fn count_batch_command(duration_us: u64) {
    BATCH_COMMANDS.with(|batch| {
        let (time_us, count) = batch.get();
        batch.set((time_us + duration_us, count + 1));
    });
}

/// The command time (µs) and command count of the batch that ran on this thread, reset.
#[inline]
pub fn take_batch_commands() -> (u64, u64) {
    BATCH_COMMANDS.with(|batch| batch.replace((0, 0)))
}

/// Clients closed for going over `client-query-buffer-limit`, and over an output buffer
/// limit (INFO `client_query_buffer_limit_disconnections`,
/// `client_output_buffer_limit_disconnections`). One server runs per process.
pub static QUERY_BUFFER_LIMIT_DISCONNECTIONS: AtomicU64 = AtomicU64::new(0);
pub static OUTPUT_BUFFER_LIMIT_DISCONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// A command's counters (INFO commandstats), the four of a thread on one cache line. The
/// stripes are allocated at the command's first call: most of the ~400 commands of the table
/// are never called, and their stripes would take half a megabyte of `used_memory`.
#[derive(Default)]
pub struct CommandStats {
    /// One per stripe, then the baseline (the totals at the last reset, which no thread adds
    /// to).
    stripes: std::sync::OnceLock<Box<[CommandStripe; STRIPES + 1]>>,
    /// Latency distribution (`latency-tracking`: INFO latencystats, LATENCY HISTOGRAM).
    pub latency: crate::latency::Histogram,
}

#[repr(align(64))]
#[derive(Default)]
struct CommandStripe {
    calls: AtomicU64,
    microseconds: AtomicU64,
    rejected_calls: AtomicU64,
    failed_calls: AtomicU64,
}

impl CommandStats {
    #[inline]
    fn own(&self) -> (Stripe, &CommandStripe) {
        let stripes = self
            .stripes
            .get_or_init(|| Box::new(std::array::from_fn(|_| CommandStripe::default())));
        let stripe = stripe();
        (stripe, &stripes[stripe.index])
    }

    /// Counts `count` calls.
    #[inline]
    pub fn add_calls(&self, count: u64) {
        let (stripe, counters) = self.own();
        stripe.add(&counters.calls, count);
    }

    /// Adds time spent executing.
    #[inline]
    pub fn add_microseconds(&self, microseconds: u64) {
        let (stripe, counters) = self.own();
        stripe.add(&counters.microseconds, microseconds);
    }

    /// Counts a call refused before it ran (arity, NOAUTH, OOM ...).
    pub fn add_rejected(&self) {
        let (stripe, counters) = self.own();
        stripe.add(&counters.rejected_calls, 1);
    }

    /// Counts a call that ran and replied with an error.
    pub fn add_failed(&self) {
        let (stripe, counters) = self.own();
        stripe.add(&counters.failed_calls, 1);
    }

    /// A field's total over the stripes, and its baseline.
    fn totals(&self, field: impl Fn(&CommandStripe) -> &AtomicU64) -> (u64, u64) {
        let Some(stripes) = self.stripes.get() else {
            return (0, 0);
        };
        let (baseline, counting) = stripes.split_last().expect("STRIPES > 0");
        let total = counting.iter().fold(0u64, |total, stripe| {
            total.wrapping_add(field(stripe).load(Ordering::Relaxed))
        });
        (total, field(baseline).load(Ordering::Relaxed))
    }

    /// A field's total since the last reset.
    fn sum(&self, field: impl Fn(&CommandStripe) -> &AtomicU64) -> u64 {
        let (total, baseline) = self.totals(field);
        total.wrapping_sub(baseline)
    }

    pub fn calls(&self) -> u64 {
        self.sum(|stripe| &stripe.calls)
    }

    pub fn microseconds(&self) -> u64 {
        self.sum(|stripe| &stripe.microseconds)
    }

    pub fn rejected_calls(&self) -> u64 {
        self.sum(|stripe| &stripe.rejected_calls)
    }

    pub fn failed_calls(&self) -> u64 {
        self.sum(|stripe| &stripe.failed_calls)
    }

    /// CONFIG RESETSTAT: the current totals become the baseline.
    pub fn reset(&self) {
        if let Some(stripes) = self.stripes.get() {
            let baseline = &stripes[STRIPES];
            let fields: [fn(&CommandStripe) -> &AtomicU64; 4] = [
                |stripe| &stripe.calls,
                |stripe| &stripe.microseconds,
                |stripe| &stripe.rejected_calls,
                |stripe| &stripe.failed_calls,
            ];
            for field in fields {
                let (total, _) = self.totals(field);
                field(baseline).store(total, Ordering::Relaxed);
            }
        }
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_add_up_across_threads() {
        let counter = std::sync::Arc::new(StripedCounter::default());
        let stats = std::sync::Arc::new(CommandStats::default());
        // More claiming threads than stripes (the rest share the last one), and threads that
        // never claim; half of the claimers give their stripe back before adding more.
        let threads: Vec<_> = (0..2 * STRIPES)
            .map(|thread| {
                let (counter, stats) = (counter.clone(), stats.clone());
                std::thread::spawn(move || {
                    if thread % 4 != 3 {
                        claim_stripe();
                    }
                    for round in 0..10_000 {
                        counter.fetch_add(1, Ordering::Relaxed);
                        stats.add_calls(1);
                        stats.add_microseconds(2);
                        if round == 5_000 && thread % 2 == 0 {
                            release_stripe();
                        }
                    }
                    release_stripe();
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread");
        }
        let added = 2 * STRIPES as u64 * 10_000;
        assert_eq!(counter.load(Ordering::Relaxed), added);
        assert_eq!((stats.calls(), stats.microseconds()), (added, 2 * added));
        counter.store(5, Ordering::Relaxed);
        assert_eq!(counter.load(Ordering::Relaxed), 5);
        stats.reset();
        stats.add_failed();
        assert_eq!((stats.calls(), stats.failed_calls()), (0, 1));
        counter.fetch_add(3, Ordering::Relaxed);
        assert_eq!(counter.load(Ordering::Relaxed), 8);
    }
}
