//! CLIENT PAUSE / UNPAUSE: while paused, clients' commands (every command in ALL mode; in WRITE
//! mode writes and commands that may replicate: EVAL, PUBLISH, EXEC of writes ...) wait before
//! running, without blocking a worker thread (the connection awaits the end of the pause).
//! Active expiry does not run while paused.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::command::{flags, Command};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PauseMode {
    /// Writes (and commands that may replicate) wait.
    Write = 1,
    /// Every command waits.
    All = 2,
}

#[derive(Default)]
pub struct Pause {
    /// 0 when not paused, else a `PauseMode`.
    mode: AtomicU8,
    end_ms: AtomicU64,
    /// Woken when the pause ends early (CLIENT UNPAUSE) or changes.
    pub changed: Notify,
}

impl Pause {
    /// Pauses until `end_ms` (a later end of an earlier pause is kept) in `mode`.
    pub fn pause(&self, end_ms: u64, mode: PauseMode) {
        let previous_end = self.end_ms.load(Ordering::Relaxed);
        if self.mode.load(Ordering::Relaxed) == 0 || previous_end < end_ms {
            self.end_ms.store(end_ms, Ordering::Relaxed);
        }
        self.mode.store(mode as u8, Ordering::Release);
        self.changed.notify_waiters();
    }

    pub fn unpause(&self) {
        self.mode.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The active pause and its end, if any.
    #[inline]
    pub fn current(&self, now_ms: u64) -> Option<(PauseMode, u64)> {
        let mode = match self.mode.load(Ordering::Acquire) {
            0 => return None,
            1 => PauseMode::Write,
            _ => PauseMode::All,
        };
        let end_ms = self.end_ms.load(Ordering::Relaxed);
        if now_ms >= end_ms {
            return None;
        }
        Some((mode, end_ms))
    }

    /// Whether a pause was set and not lifted (it may have run out): one atomic load, so that
    /// the per-command check reads the clock only while a pause is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.mode.load(Ordering::Acquire) != 0
    }

    /// Whether anything is paused now (active expiry and eviction stop).
    pub fn is_paused(&self, now_ms: u64) -> bool {
        self.current(now_ms).is_some()
    }

    /// When a command must wait: until this end (ms), or None. `writes` says whether it writes
    /// or may replicate (for EXEC: whether any queued command does).
    pub fn must_wait(&self, writes: bool, now_ms: u64) -> Option<u64> {
        match self.current(now_ms)? {
            (PauseMode::All, end_ms) => Some(end_ms),
            (PauseMode::Write, end_ms) if writes => Some(end_ms),
            _ => None,
        }
    }
}

/// Whether `command` writes or may replicate (what WRITE pauses hold back).
pub fn is_write(command: &Command) -> bool {
    command.has(flags::WRITE) || command.has(flags::MAY_REPLICATE)
}
