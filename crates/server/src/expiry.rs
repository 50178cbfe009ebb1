//! Active expiry: a background task removes keys whose expiry is due, so that memory is
//! reclaimed even for keys nobody reads again (lookups expire keys lazily as well).
//!
//! Model. Every `1000 / hz` milliseconds the task walks shards round-robin from where it
//! stopped, skipping shards without expiring keys, and removes the due keys of each shard it
//! visits, under that shard's lock (so deletions are propagated in order). A cycle stops when it
//! has used its time budget (25% of the period, scaled by `active-expire-effort`, as Redis) and
//! yields between shards so that commands on the same worker are not held up. Under
//! `lazyfree-lazy-expire` values that take long to free are freed by the lazyfree thread. The
//! same visit removes due hash fields (Redis 7.4's field expiry) of the hashes the shard records
//! as having field expiries (`Shard::track_field_expiry`). A cycle's busy time (without its
//! yields) is the latency monitor's `expire-cycle` event.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::SHARD_COUNT;

use crate::server::{unix_time_ms, Server};

/// Share of each period the cycle may use, in percent (Redis's `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
const CYCLE_TIME_PERCENT: u64 = 25;

/// How many idle shards the cycle skips between two looks at the clock.
const BUDGET_CHECK_SHARDS: usize = 32;

/// Most hash fields one visit of a shard removes (the rest wait for the next cycle).
const FIELDS_PER_SHARD_VISIT_MAX: usize = 1000;

pub async fn active_expiry_loop(server: Arc<Server>) {
    let mut cursor = 0usize;
    loop {
        let hz = server.config.hot.hz.load(Ordering::Relaxed).clamp(1, 500) as u64;
        let period = Duration::from_millis(1000 / hz);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = server.shutdown.notified() => return,
        }
        if server.is_shutting_down() {
            return;
        }
        if !server.active_expire_enabled.load(Ordering::Relaxed)
            || server.cron_paused.load(Ordering::Relaxed)
            || server.pause.is_paused(crate::server::unix_time_ms())
        {
            // CLIENT PAUSE holds back expiry as it holds back writes.
            continue;
        }
        let effort = server
            .config
            .hot
            .active_expire_effort
            .load(Ordering::Relaxed)
            .clamp(1, 10) as u64;
        let budget = period * (CYCLE_TIME_PERCENT + 2 * (effort - 1)) as u32 / 100;
        let (next, busy) = run_cycle(&server, cursor, budget).await;
        cursor = next;
        server
            .latency
            .add_sample_if_needed(&server, crate::latency::Event::ExpireCycle, busy);
        server.tracking.flush_broadcasts();
        server
            .stats
            .active_expire_cycles
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Visits shards from `cursor` until every shard was visited or the budget is spent. Returns
/// where the next cycle starts and how long the cycle kept its thread busy (the latency
/// monitor's `expire-cycle`: what Redis measures of its cycle, which never yields; the yields
/// between shards, where other tasks run, are left out).
async fn run_cycle(server: &Server, mut cursor: usize, budget: Duration) -> (usize, Duration) {
    let databases = server.keyspace.database_count();
    let total = databases * SHARD_COUNT;
    let started = Instant::now();
    let mut busy = Duration::ZERO;
    let mut since = started;
    let lazy = server
        .config
        .hot
        .lazyfree_lazy_expire
        .load(Ordering::Relaxed);
    for _ in 0..total {
        let database = cursor / SHARD_COUNT;
        let shard_index = cursor % SHARD_COUNT;
        cursor = (cursor + 1) % total;
        // A look first: a shard with nothing that can expire is neither locked for change nor
        // shown to a running snapshot (which would copy it on this task's thread).
        let idle = {
            let shard = server
                .keyspace
                .database(database)
                .lock_shard_unobserved(shard_index);
            shard.volatile_len() == 0 && !shard.has_field_expiry_keys()
        };
        if idle {
            continue;
        }
        let removed = {
            let mut shard = server.lock_shard(database, shard_index);
            let now_ms = unix_time_ms();
            let mut removed = 0;
            if shard.volatile_len() > 0 {
                // `lazyfree-lazy-expire`: values that take long to free go to the lazyfree
                // thread, as Redis's active expiry deletes them asynchronously.
                removed += if lazy {
                    shard.expire_due_into(now_ms, |entry| server.lazyfree.free(entry))
                } else {
                    shard.expire_due(now_ms)
                };
            }
            if shard.has_field_expiry_keys() {
                removed += crate::families::hashes::expire_hash_fields_in_shard(
                    &mut shard,
                    now_ms,
                    FIELDS_PER_SHARD_VISIT_MAX,
                );
            }
            removed
        };
        if removed > 0 {
            // BCAST invalidations are per thread: send them before the task may move.
            server.tracking.flush_broadcasts();
            busy += since.elapsed();
            tokio::task::yield_now().await;
            since = Instant::now();
        }
        // Reading the clock costs more than skipping an idle shard: check it now and then.
        if (removed > 0 || cursor % BUDGET_CHECK_SHARDS == 0) && started.elapsed() >= budget {
            break;
        }
    }
    (cursor, busy + since.elapsed())
}
