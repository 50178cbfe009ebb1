//! Counters bumped on every command (commandstats, INFO stats) without a shared cache line.
//!
//! Model. A [`StripedCounter`] is a small array of cache-line-padded atomics; each thread adds
//! to its own stripe (chosen once per thread, round-robin), and a reader sums the stripes. Two
//! worker threads counting the same command therefore never bounce a cache line between cores,
//! which a single `AtomicU64` does on every increment. Reads (INFO, CONFIG RESETSTAT) are rare
//! and pay for the sum.
//!
//! The methods mirror `AtomicU64`'s (`fetch_add`, `load`, `store`) so a counter can change
//! representation without touching its users; `fetch_add` returns nothing, since no stripe
//! knows the total. To add a counter: declare a `StripedCounter` field and use it like an atomic.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per counter: more than the worker threads of any machine this runs on keeps
/// collisions rare; a collision costs only the sharing it was meant to avoid.
pub const STRIPES: usize = 16;

/// One atomic alone on its cache line (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// A counter that each thread increments on its own cache line.
pub struct StripedCounter {
    stripes: [Padded; STRIPES],
}

impl Default for StripedCounter {
    fn default() -> Self {
        StripedCounter {
            stripes: std::array::from_fn(|_| Padded::default()),
        }
    }
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's stripe.
#[inline]
pub(crate) fn stripe() -> usize {
    STRIPE.with(|stripe| {
        let index = stripe.get();
        if index != usize::MAX {
            return index;
        }
        let index = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
        stripe.set(index);
        index
    })
}

impl StripedCounter {
    /// Adds `amount` on the calling thread's stripe.
    #[inline]
    pub fn fetch_add(&self, amount: u64, ordering: Ordering) {
        self.stripes[stripe()].0.fetch_add(amount, ordering);
    }

    /// The total over every stripe.
    pub fn load(&self, ordering: Ordering) -> u64 {
        self.stripes.iter().fold(0u64, |total, stripe| {
            total.wrapping_add(stripe.0.load(ordering))
        })
    }

    /// Sets the total to `value` (CONFIG RESETSTAT stores 0).
    pub fn store(&self, value: u64, ordering: Ordering) {
        for stripe in &self.stripes {
            stripe.0.store(0, ordering);
        }
        self.stripes[0].0.store(value, ordering);
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
    stripes: std::sync::OnceLock<Box<[CommandStripe; STRIPES]>>,
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
    fn own(&self) -> &CommandStripe {
        let stripes = self
            .stripes
            .get_or_init(|| Box::new(std::array::from_fn(|_| CommandStripe::default())));
        &stripes[stripe()]
    }

    /// Counts `count` calls.
    #[inline]
    pub fn add_calls(&self, count: u64) {
        self.own().calls.fetch_add(count, Ordering::Relaxed);
    }

    /// Adds time spent executing.
    #[inline]
    pub fn add_microseconds(&self, microseconds: u64) {
        self.own()
            .microseconds
            .fetch_add(microseconds, Ordering::Relaxed);
    }

    /// Counts a call refused before it ran (arity, NOAUTH, OOM ...).
    pub fn add_rejected(&self) {
        self.own().rejected_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call that ran and replied with an error.
    pub fn add_failed(&self) {
        self.own().failed_calls.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self, field: impl Fn(&CommandStripe) -> &AtomicU64) -> u64 {
        let Some(stripes) = self.stripes.get() else {
            return 0;
        };
        stripes.iter().fold(0u64, |total, stripe| {
            total.wrapping_add(field(stripe).load(Ordering::Relaxed))
        })
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

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for stripe in self
            .stripes
            .get()
            .into_iter()
            .flat_map(|stripes| stripes.iter())
        {
            for counter in [
                &stripe.calls,
                &stripe.microseconds,
                &stripe.rejected_calls,
                &stripe.failed_calls,
            ] {
                counter.store(0, Ordering::Relaxed);
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
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread");
        }
        assert_eq!(counter.load(Ordering::Relaxed), 80_000);
        counter.store(5, Ordering::Relaxed);
        assert_eq!(counter.load(Ordering::Relaxed), 5);
    }
}
