//! `maxmemory`: evicting keys when the server uses more memory than allowed, with Redis's eight
//! policies and its approximations of LRU and LFU.
//!
//! Model. Before every command, while `maxmemory` is set, [`perform`] compares `used_memory`
//! (`allocator::used_memory_bytes`, exact and cheap) less the replicas' output buffers
//! ([`counted_memory_bytes`]) with the limit. Over it, [`perform`] evicts
//! keys until their deletions freed the excess (measured around each deletion, so the
//! invalidations and notifications an eviction queues do not feed more evictions; Redis's
//! `mem_freed`) or memory is back under the limit: `noeviction` never evicts; the random policies
//! delete a random key (of any kind, or with an expiry for `volatile-*`); the others keep a pool
//! of the [`POOL_SIZE`] best candidates seen so far (the longest idle for LRU, the least
//! frequently used for LFU, the soonest to expire for `volatile-ttl`), refill it each round by
//! sampling `maxmemory-samples` keys from distinct shards, and evict the best one that still
//! exists. If memory cannot go under the limit (nothing left to evict) the command is refused
//! with Redis's OOM error when it is flagged `denyoom` (EXEC when a queued command is); others
//! still run, so reads keep working.
//!
//! Eviction runs before the command's handler, where the connection holds no shard lock, and
//! locks one shard at a time; evictions are serialized by the pool's lock (no shard lock is
//! ever held while waiting for it). An eviction deletes the key as DEL does: propagated as
//! `DEL` (`UNLINK` with `lazyfree-lazy-eviction`), WATCH broken, an `evicted` keyspace
//! notification, INFO `evicted_keys`. One round is limited in time by
//! `maxmemory-eviction-tenacity` (as Redis); when it runs out the command goes ahead and a
//! background task keeps evicting, as it does after CONFIG SET lowers the limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use store::keyspace::shard_index;
use store::{Entry, SmallBytes, SHARD_COUNT};

use crate::client::Client;
use crate::command::{flags, Command};
use crate::server::{unix_time_ms, Server};

/// Candidates the pool keeps (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

/// Redis's error for a command refused over the memory limit.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `maxmemory-policy`, in the order of `config::EVICTION_POLICIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    NoEviction,
}

/// How a policy ranks its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ranking {
    LeastRecentlyUsed,
    LeastFrequentlyUsed,
    SoonestToExpire,
    Random,
}

impl Policy {
    pub fn from_index(index: usize) -> Policy {
        match index {
            0 => Policy::VolatileLru,
            1 => Policy::VolatileLfu,
            2 => Policy::VolatileRandom,
            3 => Policy::VolatileTtl,
            4 => Policy::AllKeysLru,
            5 => Policy::AllKeysLfu,
            6 => Policy::AllKeysRandom,
            _ => Policy::NoEviction,
        }
    }

    /// The configured policy.
    pub fn current(server: &Server) -> Policy {
        Policy::from_index(server.config.hot.maxmemory_policy.load(Ordering::Relaxed))
    }

    /// Whether only keys with an expiry may be evicted.
    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn ranking(self) -> Ranking {
        match self {
            Policy::VolatileLru | Policy::AllKeysLru => Ranking::LeastRecentlyUsed,
            Policy::VolatileLfu | Policy::AllKeysLfu => Ranking::LeastFrequentlyUsed,
            Policy::VolatileTtl => Ranking::SoonestToExpire,
            Policy::VolatileRandom | Policy::AllKeysRandom | Policy::NoEviction => Ranking::Random,
        }
    }
}

/// What an eviction round achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Memory is under the limit (or there is no limit).
    Ok,
    /// Still over the limit, but evicting goes on in the background or on another thread.
    Running,
    /// Over the limit with nothing (more) to evict.
    Fail,
}

/// One key the pool considers; the higher the score, the better to evict.
struct Candidate {
    score: u64,
    database: usize,
    key: SmallBytes,
}

/// The eviction's state: the candidate pool and the databases known to be empty (their lock
/// also serializes evictions), and whether the background task runs.
#[derive(Default)]
pub struct Eviction {
    state: Mutex<State>,
    background: AtomicBool,
}

/// How long a database found without candidates is skipped, in milliseconds (so that a server
/// with keys in one database does not visit the shards of the fifteen others at every
/// eviction).
const EMPTY_DATABASE_SKIP_MS: u64 = 100;

#[derive(Default)]
struct State {
    pool: Vec<Candidate>,
    /// Per database: until when it is skipped because it had no key (no key with an expiry).
    empty_until_ms: Vec<u64>,
    volatile_empty_until_ms: Vec<u64>,
}

/// How long one round may evict (Redis's `evictionTimeLimitUs`): 50 µs per point of tenacity
/// up to 10, then growing 15% per point; unlimited at 100.
fn time_limit(tenacity: u64) -> Option<Duration> {
    if tenacity <= 10 {
        return Some(Duration::from_micros(50 * tenacity));
    }
    if tenacity < 100 {
        let micros = 500.0 * 1.15f64.powi(tenacity as i32 - 10);
        return Some(Duration::from_micros(micros as u64));
    }
    None
}

/// The memory compared with `maxmemory`: `used_memory` without the replicas' queued
/// replication stream (INFO `mem_not_counted_for_evict`), as in Redis: a slow replica must not
/// make the master evict its keys.
pub fn counted_memory_bytes() -> u64 {
    crate::allocator::used_memory_bytes()
        .saturating_sub(crate::pubsub::replica_output_allocated_bytes() as u64)
}

/// A uniform random number below `bound` (`bound` > 0).
fn random_below(bound: usize) -> usize {
    (rand::random::<u64>() % bound as u64) as usize
}

/// The score of an entry under a ranking (higher: evict sooner).
fn score(ranking: Ranking, entry: &Entry, now_ms: u64) -> u64 {
    match ranking {
        Ranking::LeastRecentlyUsed => entry.idle_seconds(now_ms),
        Ranking::LeastFrequentlyUsed => 255 - entry.frequency(now_ms) as u64,
        Ranking::SoonestToExpire => u64::MAX - entry.expire_at_ms().unwrap_or(u64::MAX),
        Ranking::Random => 0,
    }
}

/// Whether a client's command is refused for lack of memory: evicts first when over the limit
/// (every command does, as in Redis), then refuses `denyoom` commands (and EXEC of a
/// transaction holding one) if memory is still over the limit. Cheap when no limit is set.
pub fn rejects(server: &Server, client: &Client, command: &Command) -> bool {
    if server.config.hot.maxmemory.load(Ordering::Relaxed) == 0 || client.must_obey() {
        return false;
    }
    if perform(server) != Outcome::Fail {
        return false;
    }
    if command.has(flags::DENYOOM) {
        return true;
    }
    command.full_name == "exec" && queues_any(server, client, flags::DENYOOM)
}

/// Whether the client's transaction queued a command with `flag` (EXEC takes the flags of
/// what it runs).
pub fn queues_any(server: &Server, client: &Client, flag: u32) -> bool {
    client.transaction.as_ref().is_some_and(|transaction| {
        transaction.commands.iter().any(|args| {
            server
                .commands
                .get(&args[0])
                .map(|queued| match args.get(1) {
                    Some(sub) if queued.is_container() => queued.subcommand(sub),
                    _ => Some(queued),
                })
                .is_some_and(|queued| queued.is_some_and(|queued| queued.has(flag)))
        })
    })
}

/// Whether memory is over `maxmemory` and eviction cannot bring it back (writes that may grow
/// memory are refused). Cheap when no limit is set.
pub fn out_of_memory(server: &Server) -> bool {
    server.config.hot.maxmemory.load(Ordering::Relaxed) != 0 && perform(server) == Outcome::Fail
}

/// Evicts keys until they freed what memory was over `maxmemory` when the round started (or
/// memory is under the limit), or the round's time runs out (the background task then goes
/// on), or nothing can be evicted.
///
/// As in Redis, what counts is the memory the deletions themselves free (measured around
/// each one), not `used_memory` after them: deleting a key also queues its invalidation for
/// every client tracking it, its keyspace notification and its propagation, and counting that
/// growth would make one round evict key after key for nothing (a feedback loop that empties
/// the database when many clients track the keys).
pub fn perform(server: &Server) -> Outcome {
    let maxmemory = server.config.hot.maxmemory.load(Ordering::Relaxed);
    if maxmemory == 0 {
        return Outcome::Ok;
    }
    let used = counted_memory_bytes();
    if used <= maxmemory {
        return Outcome::Ok;
    }
    let to_free = (used - maxmemory) as i64;
    let policy = Policy::current(server);
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    // Another thread evicting now frees memory for this command too: waiting for it would
    // only hand the lock over (a futex wake-up per command on a busy server) to find the work
    // done. Memory may pass the limit by what the commands running meanwhile add, one per
    // worker. (The background task, told the same, tries again a millisecond later.)
    let Some(mut state) = server.eviction.state.try_lock() else {
        return Outcome::Running;
    };
    let tenacity = server
        .config
        .hot
        .maxmemory_eviction_tenacity
        .load(Ordering::Relaxed);
    let limit = time_limit(tenacity);
    let started = Instant::now();
    let mut evicted: u64 = 0;
    let mut freed: i64 = 0;
    let outcome = loop {
        if freed >= to_free || counted_memory_bytes() <= maxmemory {
            break Outcome::Ok;
        }
        let result = match policy.ranking() {
            Ranking::Random => evict_random(server, &mut state, policy.volatile_only()),
            ranking => evict_from_pool(server, &mut state, policy.volatile_only(), ranking),
        };
        let Some(bytes) = result else {
            break Outcome::Fail;
        };
        freed += bytes;
        evicted += 1;
        if evicted.is_multiple_of(16) && limit.is_some_and(|limit| started.elapsed() > limit) {
            if counted_memory_bytes() <= maxmemory {
                break Outcome::Ok;
            }
            start_background(server);
            break Outcome::Running;
        }
    };
    drop(state);
    if evicted > 0 {
        server.latency.add_sample_if_needed(
            server,
            crate::latency::Event::EvictionCycle,
            started.elapsed(),
        );
    }
    outcome
}

/// Keeps evicting in the background until memory is under the limit (or nothing is left), one
/// time-limited round per millisecond. Started when a round runs out of time and when CONFIG
/// SET lowers the limit.
pub fn start_background(server: &Server) {
    if server.eviction.background.swap(true, Ordering::AcqRel) {
        return;
    }
    let Some(server) = server.arc() else {
        server.eviction.background.store(false, Ordering::Release);
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        server.eviction.background.store(false, Ordering::Release);
        return;
    };
    runtime.spawn(async move {
        loop {
            let outcome = perform(&server);
            if server.is_shutting_down() || outcome != Outcome::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.eviction.background.store(false, Ordering::Release);
    });
}

/// After CONFIG SET changed the limit or the policy: warns and starts evicting in the
/// background when memory is over the new limit, as Redis does (the command that changed the
/// limit replies at once).
pub fn limit_changed(server: &Server) {
    let maxmemory = server.config.hot.maxmemory.load(Ordering::Relaxed);
    let used = counted_memory_bytes();
    if maxmemory != 0 && used > maxmemory {
        tracing::warn!(
            "WARNING: the new maxmemory value set via CONFIG SET ({maxmemory}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy."
        );
        if Policy::current(server) != Policy::NoEviction {
            start_background(server);
        }
    }
}

/// Visits shards from random positions, calling `visit` on each shard that holds candidate
/// keys, until `visit` returns false or every shard was visited. Returns whether any shard held
/// candidates.
fn visit_shards(
    server: &Server,
    state: &mut State,
    volatile_only: bool,
    mut visit: impl FnMut(usize, &mut store::Shard) -> bool,
) -> bool {
    let databases = server.keyspace.database_count();
    let now_ms = unix_time_ms();
    let empty_until_ms = if volatile_only {
        &mut state.volatile_empty_until_ms
    } else {
        &mut state.empty_until_ms
    };
    empty_until_ms.resize(databases, 0);
    // A random database, and in every database a random first shard (so that a database
    // entered from the previous one is not always sampled from its first shards).
    let first_database = random_below(databases);
    let first_shard = random_below(SHARD_COUNT);
    let mut found = false;
    for step in 0..databases {
        let database = (first_database + step) % databases;
        if empty_until_ms[database] > now_ms {
            continue;
        }
        let mut found_here = false;
        for offset in 0..SHARD_COUNT {
            let index = (first_shard + offset) % SHARD_COUNT;
            let mut shard = server.lock_shard(database, index);
            let candidates = if volatile_only {
                shard.volatile_len()
            } else {
                shard.len()
            };
            if candidates == 0 {
                continue;
            }
            found_here = true;
            if !visit(database, &mut shard) {
                return true;
            }
        }
        if found_here {
            found = true;
        } else {
            empty_until_ms[database] = now_ms + EMPTY_DATABASE_SKIP_MS;
        }
    }
    found
}

/// Refills the pool with a sample of the keyspace and evicts its best candidate that still
/// exists. Returns the bytes that freed, or None when there is no key to evict.
fn evict_from_pool(
    server: &Server,
    state: &mut State,
    volatile_only: bool,
    ranking: Ranking,
) -> Option<i64> {
    let samples = server
        .config
        .hot
        .maxmemory_samples
        .load(Ordering::Relaxed)
        .clamp(1, 64) as usize;
    // Rounds whose candidates were all gone (deleted meanwhile) before giving up.
    for _ in 0..POOL_SIZE {
        let now_ms = unix_time_ms();
        let mut sampled = 0;
        // `samples` neighbouring keys from a random bucket of a random shard (more shards
        // when it has too few), as Redis's dictGetSomeKeys: neighbours in a hash table are as
        // random as any keys.
        let mut sampled_pool = std::mem::take(&mut state.pool);
        let any = visit_shards(server, state, volatile_only, |database, shard| {
            let candidates = if volatile_only {
                shard.volatile_len()
            } else {
                shard.len()
            };
            let wanted = (samples - sampled).min(candidates);
            shard.sample(random_below(usize::MAX), wanted, volatile_only, |entry| {
                // An expired key is the best candidate: removing it frees memory for free.
                let score = if entry.is_expired(now_ms) {
                    u64::MAX
                } else {
                    score(ranking, entry, now_ms)
                };
                insert_candidate(
                    &mut sampled_pool,
                    Candidate {
                        score,
                        database,
                        key: SmallBytes::new(entry.key()),
                    },
                );
            });
            sampled += wanted;
            sampled < samples
        });
        state.pool = sampled_pool;
        if !any {
            state.pool.clear();
            return None;
        }
        while let Some(best) = state.pool.pop() {
            if let Some(freed) = evict_key(server, best.database, &best.key, volatile_only) {
                return Some(freed);
            }
        }
        // Every pooled candidate was gone: sample again.
    }
    None
}

/// Puts a candidate in the pool (sorted by ascending score, at most `POOL_SIZE`, each key once)
/// if it beats the worst one.
fn insert_candidate(pool: &mut Vec<Candidate>, candidate: Candidate) {
    if let Some(existing) = pool
        .iter()
        .position(|other| other.database == candidate.database && other.key == candidate.key)
    {
        pool.remove(existing);
    }
    if pool.len() >= POOL_SIZE && candidate.score <= pool[0].score {
        return;
    }
    let position = pool.partition_point(|other| other.score <= candidate.score);
    pool.insert(position, candidate);
    if pool.len() > POOL_SIZE {
        pool.remove(0);
    }
}

/// Evicts one random key (with an expiry when `volatile_only`). Returns the bytes that freed,
/// or None when there is no key.
fn evict_random(server: &Server, state: &mut State, volatile_only: bool) -> Option<i64> {
    let mut picked: Option<(usize, SmallBytes)> = None;
    visit_shards(server, state, volatile_only, |database, shard| {
        let candidates = if volatile_only {
            shard.volatile_len()
        } else {
            shard.len()
        };
        shard.sample(
            random_below(usize::MAX),
            1.min(candidates),
            volatile_only,
            |entry| {
                picked = Some((database, SmallBytes::new(entry.key())));
            },
        );
        false
    });
    // A key gone meanwhile (deleted, or expired and removed) still counts as a step.
    picked.map(|(database, key)| evict_key(server, database, &key, volatile_only).unwrap_or(0))
}

/// Deletes `key` as an eviction: propagated, notified, counted, WATCH broken. Returns the
/// bytes its deletion freed (its invalidations, notification and propagation not counted), or
/// None when it did not exist (with an expiry when `volatile_only`).
fn evict_key(server: &Server, database: usize, key: &[u8], volatile_only: bool) -> Option<i64> {
    let started = Instant::now();
    let now_ms = unix_time_ms();
    let mut shard = server.lock_shard(database, shard_index(key));
    let expired_before = shard.has_expired();
    let balance_before = crate::allocator::thread_balance_bytes();
    let freed = || {
        match (balance_before, crate::allocator::thread_balance_bytes()) {
            (Some(before), Some(after)) => before - after,
            // Without per-thread counters only `used_memory` ends the round.
            _ => 0,
        }
    };
    let Some(entry) = shard.peek(key, now_ms) else {
        // Removed now because it had expired (its deletion is propagated as an expiry): that
        // freed memory as well.
        return (!expired_before && shard.has_expired()).then(freed);
    };
    if volatile_only && entry.expire_at_ms().is_none() {
        return None;
    }
    let entry = shard.remove(key, now_ms)?;
    // Freed before anything is queued for the key's invalidation, notification, propagation.
    drop(entry);
    let bytes = freed();
    let command: &[u8] = if server
        .config
        .hot
        .lazyfree_lazy_eviction
        .load(Ordering::Relaxed)
    {
        b"UNLINK"
    } else {
        b"DEL"
    };
    shard.propagate(&[command, key]);
    server.notify(crate::notify::EventClass::Evicted, "evicted", database, key);
    drop(shard);
    server.stats.evicted_keys.fetch_add(1, Ordering::Relaxed);
    server.latency.add_sample_if_needed(
        server,
        crate::latency::Event::EvictionDel,
        started.elapsed(),
    );
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(score: u64, key: &str) -> Candidate {
        Candidate {
            score,
            database: 0,
            key: SmallBytes::new(key.as_bytes()),
        }
    }

    #[test]
    fn pool_keeps_the_best_candidates_sorted() {
        let mut pool = Vec::new();
        for score in 0..40u64 {
            insert_candidate(&mut pool, candidate(score * 7 % 40, &format!("k{score}")));
        }
        assert_eq!(pool.len(), POOL_SIZE);
        let scores: Vec<u64> = pool.iter().map(|candidate| candidate.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<u64>>());
        // A key sampled again takes its new score (once).
        insert_candidate(&mut pool, candidate(100, "k0"));
        assert_eq!(pool.len(), POOL_SIZE);
        assert_eq!(pool.last().map(|candidate| candidate.score), Some(100));
        insert_candidate(&mut pool, candidate(1, "low"));
        assert!(pool.iter().all(|candidate| &*candidate.key != b"low"));
    }

    #[test]
    fn time_limits_follow_tenacity() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert!(time_limit(50).unwrap() > Duration::from_millis(100));
        assert_eq!(time_limit(100), None);
    }

    #[test]
    fn policies_in_configuration_order() {
        for (index, name) in crate::config::EVICTION_POLICIES.iter().enumerate() {
            let policy = Policy::from_index(index);
            assert_eq!(policy.volatile_only(), name.starts_with("volatile"));
            assert_eq!(policy == Policy::NoEviction, *name == "noeviction");
        }
    }
}
