//! Client eviction (`maxmemory-clients`): closing the clients that take the most memory when
//! all clients together take more than the limit, as Redis 7 does.
//!
//! Model. A client's memory ([`ClientShared::memory_bytes`]: buffers, transaction queue,
//! watched keys, subscriptions) is mirrored in its `counted_memory_bytes`, and one process-wide
//! counter holds the sum of the mirrors of normal and pub/sub clients (replicas are not
//! counted; CLIENT NO-EVICT clients are counted but never closed). A mirror is only ever
//! changed by a swap that moves the total by the same amount, so the total stays the sum of the
//! mirrors however threads interleave; a mirror may lag its client by one update.
//!
//! While a limit is set, mirrors are refreshed by the connection after each command and each
//! read, by whoever grows a client's push-message queue (a publisher, a tracking
//! invalidation), and by the cron. After a refresh at a point where no lock is held, a total at
//! or over the limit evicts: the evictable clients in decreasing order of Redis's size classes
//! (powers of two from 32 KiB), the biggest first within a class, until the total is below
//! the limit. An evicted client leaves the total at once (its mirror is zeroed) and closes as
//! a killed client does. Setting a limit recounts every client first, and evicts.
//!
//! To extend: memory a client gains in a new structure belongs in `memory_bytes`; a place that
//! grows it without the connection running a command afterwards calls [`refresh`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::client::ClientShared;
use crate::server::Server;

/// The memory of normal and pub/sub clients: the sum of their `counted_memory_bytes`. One
/// server runs per process.
static CLIENTS_MEMORY_BYTES: AtomicI64 = AtomicI64::new(0);
/// Whether a limit is set (mirrors are kept only then).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// INFO `evicted_clients`.
static EVICTED_CLIENTS: AtomicU64 = AtomicU64::new(0);

/// The smallest limit honoured: below it a misconfiguration could cut every client off
/// (Redis's floor).
const LIMIT_BYTES_MIN: u64 = 128 * 1024;
/// Size classes: a client's class is the bit length of its memory, clamped to this range
/// (Redis's `CLIENT_MEM_USAGE_BUCKET_MIN_LOG` and `_MAX_LOG`).
const SIZE_CLASS_BITS_MIN: u32 = 15;
const SIZE_CLASS_BITS_MAX: u32 = 33;

/// The limit in bytes, 0 when there is none. A percentage of an unset `maxmemory` is no limit.
pub fn limit_bytes(server: &Server) -> u64 {
    let hot = &server.config.hot;
    let setting = hot.maxmemory_clients.load(Ordering::Relaxed);
    let limit = if setting < 0 {
        let maxmemory = hot.maxmemory.load(Ordering::Relaxed);
        if maxmemory == 0 {
            return 0;
        }
        (maxmemory as f64 * (-setting) as f64 / 100.0) as u64
    } else {
        setting as u64
    };
    if limit == 0 {
        0
    } else {
        limit.max(LIMIT_BYTES_MIN)
    }
}

/// The counted memory of normal and pub/sub clients.
pub fn clients_memory_bytes() -> u64 {
    CLIENTS_MEMORY_BYTES.load(Ordering::Relaxed).max(0) as u64
}

/// Clients closed for the limit since start (or CONFIG RESETSTAT).
pub fn evicted_clients() -> u64 {
    EVICTED_CLIENTS.load(Ordering::Relaxed)
}

pub fn reset_stats() {
    EVICTED_CLIENTS.store(0, Ordering::Relaxed);
}

/// Whether a limit is set: the hot paths skip everything else when not.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Sets the mirror of `client` to `bytes`, moving the total with it.
fn set_counted(client: &ClientShared, bytes: usize) {
    let previous = client.counted_memory_bytes.swap(bytes, Ordering::Relaxed);
    if previous != bytes {
        CLIENTS_MEMORY_BYTES.fetch_add(bytes as i64 - previous as i64, Ordering::Relaxed);
    }
}

/// Mirrors `client`'s memory now (nothing for a replica or a closing client). Only atomics:
/// safe under any lock.
pub fn refresh(client: &ClientShared) {
    let bytes = if client.replica.load(Ordering::Relaxed) || client.is_killed() {
        0
    } else {
        client.memory_bytes()
    };
    set_counted(client, bytes);
}

/// Takes a client that is going away out of the total.
pub fn forget(client: &ClientShared) {
    set_counted(client, 0);
}

/// After the connection of `client` ran a command or read: refreshes its mirror and evicts
/// when the total is at the limit. Cheap when no limit is set.
#[inline]
pub fn after_activity(server: &Server, client: &ClientShared) {
    if !enabled() {
        return;
    }
    refresh(client);
    evict_if_over(server);
}

/// Evicts when the total is at or over the limit. Call where no shard, registry or pub/sub
/// lock is held.
pub fn evict_if_over(server: &Server) {
    if !enabled() {
        return;
    }
    let limit = limit_bytes(server);
    if limit == 0 || clients_memory_bytes() < limit {
        return;
    }
    evict(server, limit);
}

/// Applies a changed `maxmemory-clients` or `maxmemory`: recounts every client when a limit
/// is set (mirrors are not kept without one), then evicts down to it.
pub fn apply_config(server: &Server) {
    let limited = limit_bytes(server) > 0;
    ENABLED.store(limited, Ordering::Relaxed);
    if limited {
        for client in server.clients.all() {
            refresh(&client);
        }
    }
    evict_if_over(server);
}

/// The cron's pass: refreshes every client (a queue grown where no refresh followed, a mirror
/// one update behind) and evicts.
pub fn cron(server: &Server) {
    if !enabled() {
        return;
    }
    for client in server.clients.all() {
        refresh(&client);
    }
    evict_if_over(server);
}

/// Redis's size class of a client taking `bytes`.
fn size_class(bytes: usize) -> u32 {
    let bits = usize::BITS - bytes.leading_zeros();
    bits.clamp(SIZE_CLASS_BITS_MIN, SIZE_CLASS_BITS_MAX)
}

/// Closes clients, biggest size class first, until the total is below `limit_bytes`.
fn evict(server: &Server, limit_bytes: u64) {
    // One evictor at a time: a second one would see the same total and close more clients.
    static EVICTING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let Some(_evicting) = EVICTING.try_lock() else {
        return;
    };
    let mut candidates: Vec<(u32, usize, std::sync::Arc<ClientShared>)> = server
        .clients
        .all()
        .into_iter()
        .filter(|client| {
            !client.no_evict.load(Ordering::Relaxed)
                && !client.replica.load(Ordering::Relaxed)
                && !client.is_killed()
        })
        .map(|client| {
            let bytes = client.counted_memory_bytes.load(Ordering::Relaxed);
            (size_class(bytes), bytes, client)
        })
        .collect();
    candidates.sort_by_key(|(class, bytes, _)| std::cmp::Reverse((*class, *bytes)));
    let now_ms = crate::server::unix_time_ms();
    for (_, _, client) in candidates {
        if clients_memory_bytes() < limit_bytes {
            return;
        }
        let line = crate::families::connection::client_info_line(server, &client, now_ms);
        tracing::info!("Evicting client: {line}");
        client.kill();
        forget(&client);
        EVICTED_CLIENTS.fetch_add(1, Ordering::Relaxed);
    }
    if clients_memory_bytes() >= limit_bytes {
        tracing::warn!("Over client maxmemory after evicting all evictable clients");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_clamped_powers_of_two() {
        assert_eq!(size_class(0), SIZE_CLASS_BITS_MIN);
        assert_eq!(size_class(32 * 1024 - 1), SIZE_CLASS_BITS_MIN);
        assert_eq!(size_class(64 * 1024), 17);
        assert_eq!(size_class(3 << 20), 22);
        assert_eq!(size_class(usize::MAX), SIZE_CLASS_BITS_MAX);
    }
}
