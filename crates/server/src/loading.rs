//! Loading the dataset at start-up while clients are already connected.
//!
//! Model. The server accepts connections before it reads its RDB or AOF files; while the load
//! runs (on a blocking thread, locking one shard at a time) [`Loading::is_active`] is true and
//! `connection::run_request` refuses every command without the `loading` flag with
//! [`LOADING_ERROR`], as Redis does (PING, INFO, CONFIG, DEBUG SLEEP ... still run). The loader
//! itself (the AOF's obeying client) is exempt. INFO persistence shows the progress
//! (`loading_*` fields) from the atomics here, and the loader logs a progress line every
//! [`PROGRESS_LOG_INTERVAL_MS`].
//!
//! Extending: another load that should answer LOADING (a replica's full synchronisation) wraps
//! itself in [`Loading::begin`] / [`Loading::end`] and reports bytes through
//! [`Loading::progress`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::server::unix_time_ms;

/// The reply to a command that cannot run during the load.
pub const LOADING_ERROR: &str = "LOADING Redis is loading the dataset in memory";

/// How often the loader logs how far it got.
pub const PROGRESS_LOG_INTERVAL_MS: u64 = 5_000;

/// The state of the load, readable from any thread.
#[derive(Default)]
pub struct Loading {
    active: AtomicBool,
    started_unix_ms: AtomicU64,
    total_bytes: AtomicU64,
    loaded_bytes: AtomicU64,
    /// The `used-mem` aux field of the RDB being loaded.
    rdb_used_memory_bytes: AtomicU64,
    last_logged_unix_ms: AtomicU64,
}

/// What INFO persistence shows while loading.
pub struct LoadingView {
    pub started_unix_s: u64,
    pub total_bytes: u64,
    pub rdb_used_memory_bytes: u64,
    pub loaded_bytes: u64,
    pub loaded_percent: f64,
    pub eta_seconds: i64,
}

impl Loading {
    /// Marks the server as loading: commands without the `loading` flag are refused until
    /// [`Loading::end`].
    pub fn begin(&self) {
        let now_ms = unix_time_ms();
        self.started_unix_ms.store(now_ms, Ordering::Relaxed);
        self.last_logged_unix_ms.store(now_ms, Ordering::Relaxed);
        self.total_bytes.store(0, Ordering::Relaxed);
        self.loaded_bytes.store(0, Ordering::Relaxed);
        self.rdb_used_memory_bytes.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
    }

    pub fn end(&self) {
        self.active.store(false, Ordering::Release);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// A file of `bytes` starts loading (the total grows with each file of an AOF).
    pub fn add_file(&self, bytes: u64) {
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn set_rdb_used_memory(&self, bytes: u64) {
        self.rdb_used_memory_bytes.store(bytes, Ordering::Relaxed);
    }

    /// `bytes` more were loaded; logs the progress now and then.
    pub fn progress(&self, bytes: u64) {
        let loaded = self.loaded_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let now_ms = unix_time_ms();
        let last_ms = self.last_logged_unix_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last_ms) >= PROGRESS_LOG_INTERVAL_MS {
            self.last_logged_unix_ms.store(now_ms, Ordering::Relaxed);
            let total = self.total_bytes.load(Ordering::Relaxed).max(1);
            tracing::info!(
                "Loading the dataset: {:.2}% ({loaded} of {total} bytes)",
                loaded as f64 * 100.0 / total as f64
            );
        }
    }

    pub fn view(&self) -> LoadingView {
        let started_ms = self.started_unix_ms.load(Ordering::Relaxed);
        let total_bytes = self.total_bytes.load(Ordering::Relaxed);
        let loaded_bytes = self.loaded_bytes.load(Ordering::Relaxed).min(total_bytes);
        let loaded_percent = if total_bytes == 0 {
            0.0
        } else {
            loaded_bytes as f64 * 100.0 / total_bytes as f64
        };
        let elapsed_s = unix_time_ms().saturating_sub(started_ms) / 1000;
        // Redis's estimate: the rest at the rate so far (1 when nothing is loaded yet).
        let eta_seconds = if elapsed_s == 0 || loaded_bytes == 0 {
            1
        } else {
            let rate = loaded_bytes as f64 / elapsed_s as f64;
            ((total_bytes - loaded_bytes) as f64 / rate) as i64
        };
        LoadingView {
            started_unix_s: started_ms / 1000,
            total_bytes,
            rdb_used_memory_bytes: self.rdb_used_memory_bytes.load(Ordering::Relaxed),
            loaded_bytes,
            loaded_percent,
            eta_seconds,
        }
    }
}

/// `key-load-delay`: microseconds to wait per loaded key; a negative value -n waits about one
/// microsecond every n keys (Redis's `debugDelay`).
pub fn key_load_delay(delay: i64, key_index: u64) {
    match delay {
        0 => {}
        1.. => std::thread::sleep(std::time::Duration::from_micros(delay as u64)),
        _ => {
            if key_index.is_multiple_of(delay.unsigned_abs()) {
                std::thread::sleep(std::time::Duration::from_micros(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_reports_progress_of_the_files_added() {
        let loading = Loading::default();
        assert!(!loading.is_active());
        loading.begin();
        assert!(loading.is_active());
        loading.add_file(1000);
        loading.progress(250);
        let view = loading.view();
        assert_eq!(view.total_bytes, 1000);
        assert_eq!(view.loaded_bytes, 250);
        assert_eq!(view.loaded_percent, 25.0);
        loading.end();
        assert!(!loading.is_active());
    }
}
