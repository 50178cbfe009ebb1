//! Latency: per-command latency histograms (`latency-tracking`, INFO latencystats, LATENCY
//! HISTOGRAM) and the latency monitor (`latency-monitor-threshold`, LATENCY LATEST / HISTORY /
//! GRAPH / DOCTOR / RESET), plus [`record_call`], the accounting every executed command goes
//! through (histogram, monitor, SLOWLOG).
//!
//! Histograms. Each command owns a [`Histogram`]: log-linear buckets of nanoseconds (32
//! sub-buckets per power of two, about 3% precision, like HdrHistogram with two significant
//! digits), atomic counters so that recording is one relaxed increment on the calling thread's own
//! stripe; a stripe's buckets are allocated at its first record, so that commands never called
//! cost nothing.
//!
//! Monitor. An event (`command`, `fast-command`, `expire-cycle`, `eviction-cycle`, ...) whose
//! duration reaches the threshold (milliseconds) adds a sample to that event's series: the last
//! [`SERIES_LENGTH`] seconds with a spike, one sample per second (the worst), and the all-time
//! maximum, as Redis keeps them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::client::Client;
use crate::command::{flags, Command};
use crate::server::Server;

/// Sub-buckets per power of two (2^5).
const MANTISSA_BITS: u32 = 5;
const SUB_BUCKETS: u64 = 1 << MANTISSA_BITS;
/// Largest value recorded (about 18 minutes); longer durations count as this.
const VALUE_MAX_NS: u64 = (1 << 40) - 1;
const BUCKET_COUNT: usize = bucket_index(VALUE_MAX_NS) + 1;

/// The bucket of a value (nanoseconds): exact below 64, then 32 per power of two.
const fn bucket_index(value: u64) -> usize {
    let value = if value > VALUE_MAX_NS {
        VALUE_MAX_NS
    } else {
        value
    };
    if value < 2 * SUB_BUCKETS {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros();
    let shift = top_bit - MANTISSA_BITS;
    let mantissa = (value >> shift) & (SUB_BUCKETS - 1);
    ((shift as u64 + 1) * SUB_BUCKETS + mantissa) as usize
}

/// The largest value that falls in bucket `index`.
fn bucket_high(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB_BUCKETS {
        return index;
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index % SUB_BUCKETS;
    ((SUB_BUCKETS + mantissa) << shift) + (1 << shift) - 1
}

/// One thread stripe's buckets, allocated at its first value.
type Buckets = OnceLock<Box<[AtomicU64]>>;

/// A command's latency distribution, one set of buckets per thread stripe (as
/// [`crate::stats`] counters, added to the same way) so that two workers running the same
/// command never bounce a cache line; readers merge the stripes and subtract the baseline that
/// CONFIG RESETSTAT records.
#[derive(Default)]
pub struct Histogram {
    /// Allocated at the first value: most commands never run, and 16 empty stripes inline
    /// would cost every command of the table 384 bytes. One per stripe, then the baseline.
    stripes: OnceLock<Box<[Buckets; crate::stats::STRIPES + 1]>>,
}

impl Histogram {
    /// The buckets of every stripe, merged, and the baseline (None: nothing recorded).
    fn totals(&self) -> Option<(Vec<u64>, Option<&[AtomicU64]>)> {
        let stripes = self.stripes.get()?;
        let (baseline, counting) = stripes.split_last().expect("STRIPES > 0");
        let mut merged = vec![0u64; BUCKET_COUNT];
        for buckets in counting.iter().filter_map(OnceLock::get) {
            for (total, bucket) in merged.iter_mut().zip(buckets.iter()) {
                *total = total.wrapping_add(bucket.load(Ordering::Relaxed));
            }
        }
        Some((merged, baseline.get().map(|buckets| &buckets[..])))
    }

    pub fn record(&self, nanoseconds: u64) {
        let stripes = self
            .stripes
            .get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        let stripe = crate::stats::stripe();
        let buckets = stripes[stripe.index]
            .get_or_init(|| (0..BUCKET_COUNT).map(|_| AtomicU64::new(0)).collect());
        stripe.add(&buckets[bucket_index(nanoseconds.max(1))], 1);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts().iter().map(|(_, count)| count).sum()
    }

    /// CONFIG RESETSTAT: the current counts become the baseline.
    pub fn reset(&self) {
        let Some((merged, _)) = self.totals() else {
            return;
        };
        let stripes = self.stripes.get().expect("totals found stripes");
        let baseline = stripes[crate::stats::STRIPES]
            .get_or_init(|| (0..BUCKET_COUNT).map(|_| AtomicU64::new(0)).collect());
        for (bucket, total) in baseline.iter().zip(merged) {
            bucket.store(total, Ordering::Relaxed);
        }
    }

    /// Non-empty buckets as (largest value, count), in order, summed over the stripes.
    fn counts(&self) -> Vec<(u64, u64)> {
        let Some((merged, baseline)) = self.totals() else {
            return Vec::new();
        };
        merged
            .into_iter()
            .enumerate()
            .map(|(index, total)| {
                let reset = baseline.map_or(0, |buckets| buckets[index].load(Ordering::Relaxed));
                (index, total.wrapping_sub(reset))
            })
            .filter_map(|(index, count)| (count > 0).then(|| (bucket_high(index), count)))
            .collect()
    }

    /// The value (nanoseconds) below which `percentile` percent of the values fall, as
    /// HdrHistogram reports it (the largest value of that bucket).
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let counts = self.counts();
        let total: u64 = counts.iter().map(|(_, count)| count).sum();
        if total == 0 {
            return 0;
        }
        let wanted = ((percentile.clamp(0.0, 100.0) / 100.0) * total as f64 + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        for (high, count) in &counts {
            seen += count;
            if seen >= wanted {
                return *high;
            }
        }
        counts.last().map(|(high, _)| *high).unwrap_or(0)
    }

    /// LATENCY HISTOGRAM's cumulative distribution: (microseconds, values up to it) at
    /// 1024 ns and every power of two above, where the count grows (as Redis iterates its
    /// HdrHistogram logarithmically).
    pub fn cumulative_microseconds(&self) -> Vec<(u64, u64)> {
        let counts = self.counts();
        let total: u64 = counts.iter().map(|(_, count)| count).sum();
        let mut result = Vec::new();
        let mut level: u64 = 1024;
        let mut seen = 0;
        let mut next = 0;
        let mut previous = 0;
        while seen < total && level <= VALUE_MAX_NS {
            // The largest value HdrHistogram (two significant digits) holds with `level`.
            let highest_equivalent = level + level / 128 - 1;
            while next < counts.len() && counts[next].0 <= highest_equivalent {
                seen += counts[next].1;
                next += 1;
            }
            if seen > previous {
                result.push((highest_equivalent / 1000, seen));
            }
            previous = seen;
            level *= 2;
        }
        result
    }
}

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const SERIES_LENGTH: usize = 160;

/// Events the latency monitor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Command,
    FastCommand,
    ExpireCycle,
    EvictionCycle,
    EvictionDel,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Command => "command",
            Event::FastCommand => "fast-command",
            Event::ExpireCycle => "expire-cycle",
            Event::EvictionCycle => "eviction-cycle",
            Event::EvictionDel => "eviction-del",
        }
    }
}

/// One sample: the second it happened in and the worst latency (ms) of that second.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sample {
    pub time_s: u64,
    pub latency_ms: u64,
}

/// An event's recent spikes.
#[derive(Clone, Debug)]
pub struct Series {
    samples: [Sample; SERIES_LENGTH],
    next: usize,
    pub max_ms: u64,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            samples: [Sample::default(); SERIES_LENGTH],
            next: 0,
            max_ms: 0,
        }
    }
}

impl Series {
    fn add(&mut self, time_s: u64, latency_ms: u64) {
        let previous = (self.next + SERIES_LENGTH - 1) % SERIES_LENGTH;
        self.max_ms = self.max_ms.max(latency_ms);
        if self.samples[previous].time_s == time_s {
            let sample = &mut self.samples[previous];
            sample.latency_ms = sample.latency_ms.max(latency_ms);
            return;
        }
        self.samples[self.next] = Sample { time_s, latency_ms };
        self.next = (self.next + 1) % SERIES_LENGTH;
    }

    /// The samples, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        (0..SERIES_LENGTH)
            .map(|offset| self.samples[(self.next + offset) % SERIES_LENGTH])
            .filter(|sample| sample.time_s != 0)
            .collect()
    }

    /// The latest sample.
    pub fn latest(&self) -> Sample {
        self.samples[(self.next + SERIES_LENGTH - 1) % SERIES_LENGTH]
    }
}

/// The latency monitor's series, by event name.
#[derive(Default)]
pub struct LatencyMonitor {
    series: Mutex<HashMap<&'static str, Series>>,
}

impl LatencyMonitor {
    /// Adds a sample when monitoring is on and `duration` reaches the threshold.
    pub fn add_sample_if_needed(&self, server: &Server, event: Event, duration: Duration) {
        let threshold_ms = server
            .config
            .hot
            .latency_monitor_threshold_ms
            .load(Ordering::Relaxed);
        let latency_ms = duration.as_millis() as u64;
        if threshold_ms == 0 || latency_ms < threshold_ms {
            return;
        }
        self.add_sample(
            event.name(),
            crate::server::unix_time_ms() / 1000,
            latency_ms,
        );
    }

    pub fn add_sample(&self, event: &'static str, time_s: u64, latency_ms: u64) {
        self.series
            .lock()
            .entry(event)
            .or_default()
            .add(time_s, latency_ms);
    }

    /// Every event's series, sorted by name.
    pub fn all(&self) -> Vec<(&'static str, Series)> {
        let mut all: Vec<(&'static str, Series)> = self
            .series
            .lock()
            .iter()
            .map(|(name, series)| (*name, series.clone()))
            .collect();
        all.sort_by_key(|(name, _)| *name);
        all
    }

    pub fn get(&self, event: &[u8]) -> Option<Series> {
        self.series
            .lock()
            .iter()
            .find(|(name, _)| name.as_bytes() == event)
            .map(|(_, series)| series.clone())
    }

    /// Forgets the named events (every event when `events` is empty). Returns how many were
    /// forgotten.
    pub fn reset(&self, events: &[&[u8]]) -> usize {
        let mut series = self.series.lock();
        if events.is_empty() {
            let count = series.len();
            series.clear();
            return count;
        }
        let before = series.len();
        series.retain(|name, _| !events.contains(&name.as_bytes()));
        before - series.len()
    }
}

/// Accounts for one executed command: its latency histogram (`latency-tracking`), the latency
/// monitor (`command` / `fast-command` events) and the slow log. Called for every command that
/// ran (inside EXEC too, and when a blocked command is served), never for rejected ones.
pub fn record_call(
    server: &Server,
    client: &Client,
    command: &Command,
    argv: &[&[u8]],
    elapsed: Duration,
) {
    let hot = &server.config.hot;
    if hot.latency_tracking.load(Ordering::Relaxed) {
        command.stats.latency.record(elapsed.as_nanos() as u64);
    }
    let event = if command.has(flags::FAST) {
        Event::FastCommand
    } else {
        Event::Command
    };
    server.latency.add_sample_if_needed(server, event, elapsed);
    if !command.has(flags::SKIP_SLOWLOG) {
        server
            .slowlog
            .record_if_slow(server, client, argv, elapsed.as_micros() as u64);
    }
}

/// LATENCY GRAPH's text for an event: a header, then the samples as an ASCII chart (height
/// proportional to latency) with each column's age below it, as Redis draws it.
pub fn graph(event: &str, series: &Series, now_s: u64) -> String {
    let history = series.history();
    let high = history
        .iter()
        .map(|sample| sample.latency_ms)
        .max()
        .unwrap_or(0);
    let low = history
        .iter()
        .map(|sample| sample.latency_ms)
        .min()
        .unwrap_or(0);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{event} - high {high} ms, low {low} ms (all time high {} ms)",
        series.max_ms
    );
    text.push_str(&"-".repeat(80));
    text.push('\n');
    const ROWS: u64 = 4;
    let columns: Vec<&Sample> = history.iter().rev().take(80).collect::<Vec<_>>();
    let columns: Vec<&Sample> = columns.into_iter().rev().collect();
    let height = |sample: &Sample| -> u64 {
        if high == low {
            ROWS * 2
        } else {
            1 + (sample.latency_ms - low) * (ROWS * 2 - 1) / (high - low)
        }
    };
    for row in (0..ROWS).rev() {
        let line: String = columns
            .iter()
            .map(|sample| {
                let level = height(sample);
                if level >= (row + 1) * 2 {
                    '#'
                } else if level == row * 2 + 1 {
                    if row == 0 {
                        '_'
                    } else {
                        'o'
                    }
                } else {
                    ' '
                }
            })
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    // Ages ("13s", "2m", "1h"), written vertically, one character per row.
    let labels: Vec<String> = columns
        .iter()
        .map(|sample| {
            let age = now_s.saturating_sub(sample.time_s);
            if age < 60 {
                format!("{age}s")
            } else if age < 3600 {
                format!("{}m", age / 60)
            } else {
                format!("{}h", age / 3600)
            }
        })
        .collect();
    let label_rows = labels.iter().map(String::len).max().unwrap_or(0);
    for row in 0..label_rows {
        let line: String = labels
            .iter()
            .map(|label| label.as_bytes().get(row).map(|&b| b as char).unwrap_or(' '))
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// LATENCY DOCTOR's report.
pub fn doctor(server: &Server) -> String {
    let all = server.latency.all();
    let threshold_ms = server
        .config
        .hot
        .latency_monitor_threshold_ms
        .load(Ordering::Relaxed);
    let mut text = String::new();
    if all.is_empty() {
        if threshold_ms == 0 {
            text.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
        } else {
            text.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        }
        return text;
    }
    text.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
    for (number, (event, series)) in all.iter().enumerate() {
        let history = series.history();
        let count = history.len() as u64;
        let sum: u64 = history.iter().map(|sample| sample.latency_ms).sum();
        let average = sum.checked_div(count).unwrap_or(0);
        let deviation = history
            .iter()
            .map(|sample| sample.latency_ms.abs_diff(average))
            .sum::<u64>()
            .checked_div(count)
            .unwrap_or(0);
        let period = match (history.first(), history.last()) {
            (Some(first), Some(last)) if count > 0 => {
                (last.time_s - first.time_s) as f64 / count as f64
            }
            _ => 0.0,
        };
        let _ = writeln!(
            text,
            "{}. {event}: {count} latency spikes (average {average}ms, mean deviation {deviation}ms, period {period:.2} sec). Worst all time event {}ms.",
            number + 1,
            series.max_ms
        );
    }
    text.push_str("\nI have a few advices for you:\n\n");
    if all
        .iter()
        .any(|(event, _)| *event == "command" || *event == "fast-command")
    {
        let _ = writeln!(
            text,
            "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information."
        );
        text.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if all
        .iter()
        .any(|(event, _)| event.starts_with("expire") || event.starts_with("eviction"))
    {
        text.push_str("- Large numbers of keys expiring or being evicted at the same time can block the server: spread expiry times, or lower maxmemory pressure.\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        let mut previous_high = None;
        for index in 0..BUCKET_COUNT {
            let high = bucket_high(index);
            assert_eq!(bucket_index(high), index);
            if let Some(previous) = previous_high {
                assert_eq!(bucket_index(previous + 1), index);
            }
            previous_high = Some(high);
        }
        for value in [1u64, 63, 64, 1000, 1_000_000, 123_456_789] {
            let high = bucket_high(bucket_index(value));
            assert!(high >= value && (high - value) as f64 <= value as f64 * 0.04);
        }
    }

    #[test]
    fn percentiles_and_cumulative_distribution() {
        let histogram = Histogram::default();
        assert_eq!(histogram.value_at_percentile(50.0), 0);
        for _ in 0..99 {
            histogram.record(1_000);
        }
        histogram.record(50_000_000);
        assert_eq!(histogram.count(), 100);
        let p50 = histogram.value_at_percentile(50.0);
        assert!((1_000..1_040).contains(&p50), "{p50}");
        let p100 = histogram.value_at_percentile(100.0);
        assert!((50_000_000..52_000_000).contains(&p100), "{p100}");
        let cumulative = histogram.cumulative_microseconds();
        assert_eq!(cumulative.first(), Some(&(1, 99)));
        assert_eq!(cumulative.last().map(|(_, count)| *count), Some(100));
        assert!(cumulative.last().unwrap().0 >= 50_000);
        histogram.reset();
        assert_eq!(histogram.count(), 0);
        assert!(histogram.cumulative_microseconds().is_empty());
    }

    #[test]
    fn stripes_of_every_thread_merge() {
        let histogram = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let histogram = histogram.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        histogram.record(1_000 * (thread + 1));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("recording thread");
        }
        assert_eq!(histogram.count(), 1000);
        let p25 = histogram.value_at_percentile(25.0);
        assert!((1_000..1_040).contains(&p25), "{p25}");
        let p100 = histogram.value_at_percentile(100.0);
        assert!((4_000..4_130).contains(&p100), "{p100}");
        histogram.reset();
        assert_eq!(histogram.count(), 0);
    }

    #[test]
    fn series_keep_the_worst_sample_per_second() {
        let mut series = Series::default();
        series.add(100, 5);
        series.add(100, 9);
        series.add(100, 7);
        series.add(101, 3);
        assert_eq!(
            series.history(),
            vec![
                Sample {
                    time_s: 100,
                    latency_ms: 9
                },
                Sample {
                    time_s: 101,
                    latency_ms: 3
                }
            ]
        );
        assert_eq!(series.max_ms, 9);
        for second in 0..500 {
            series.add(200 + second, 1);
        }
        assert_eq!(series.history().len(), SERIES_LENGTH);
        assert_eq!(series.latest().time_s, 699);
        let text = graph("command", &series, 700);
        assert!(text.starts_with("command - high 1 ms, low 1 ms (all time high 9 ms)\n"));
    }
}
