//! The propagation stream: the one ordered sequence of every write, in deterministic form, that
//! the AOF and replicas consume.
//!
//! Model. A write command appends its deterministic form (absolute `PEXPIREAT` instead of a
//! relative expiry, `DEL` for a key that expired, explicit IDs instead of `*`) with
//! [`Propagation::append`] while it still holds the shard locks that ordered it. Appends go
//! through one mutex, so the stream's order is a serial order consistent with every shard's
//! order: replaying it reproduces the keyspace. When nothing consumes the stream, an append is
//! one relaxed atomic load.
//!
//! To add a consumer (AOF writer, replica feed), implement [`PropagationSink`] and
//! [`Propagation::attach`] it; `write` is called under the stream's mutex, so it must only
//! buffer (never block on I/O).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

thread_local! {
    /// The last sequence appended by this thread since [`take_thread_sequence`]: what the
    /// connection running on it must wait for before replying (AOF `appendfsync always`).
    static THREAD_SEQUENCE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Whether this thread's writes are kept out of the stream (see [`without_propagation`]).
    static SUPPRESSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether this thread runs a connection's command now (see [`CallerFlushes`]).
    static CALLER_FLUSHES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks, while alive, that this thread runs a command of a connection, which flushes the AOF
/// for its own writes before it replies (`aof::Aof::wait_durable`): the AOF sink then need not
/// wake its writer thread for them. Writes made outside (active expiry, eviction, the replica
/// link) wake it.
pub struct CallerFlushes(bool);

impl CallerFlushes {
    pub fn enter() -> Self {
        CallerFlushes(CALLER_FLUSHES.with(|cell| cell.replace(true)))
    }
}

impl Drop for CallerFlushes {
    fn drop(&mut self) {
        CALLER_FLUSHES.with(|cell| cell.set(self.0));
    }
}

/// Whether the writes this thread appends now will be flushed by a connection (see
/// [`CallerFlushes`]).
pub fn caller_flushes() -> bool {
    CALLER_FLUSHES.with(|cell| cell.get())
}

/// Runs `f` with the writes of this thread kept out of the stream: replaying the AOF
/// (DEBUG LOADAOF) must neither append to the AOF it reads nor reach replicas.
pub fn without_propagation<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SUPPRESSED.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(SUPPRESSED.with(|cell| cell.replace(true)));
    f()
}

fn suppressed() -> bool {
    SUPPRESSED.with(|cell| cell.get())
}

/// Returns and resets the last sequence this thread appended (0 when none).
pub fn take_thread_sequence() -> u64 {
    THREAD_SEQUENCE.with(|cell| cell.replace(0))
}

/// Records that this thread's reply depends on `sequence` (a reply produced by another
/// thread's write, such as a served blocked client).
pub fn note_thread_sequence(sequence: u64) {
    THREAD_SEQUENCE.with(|cell| cell.set(cell.get().max(sequence)));
}

/// Whether `args` is the MULTI or EXEC that wraps a transaction in the stream: they belong to
/// no database, so a sink writes the SELECT of the transaction's first command after MULTI.
pub fn is_transaction_bracket(args: &[&[u8]]) -> bool {
    matches!(args, [name] if name.eq_ignore_ascii_case(b"MULTI") || name.eq_ignore_ascii_case(b"EXEC"))
}

/// A consumer of the propagation stream.
pub trait PropagationSink: Send {
    /// One write of `database`, as the arguments of the command to replay.
    fn write(&mut self, sequence: u64, database: usize, args: &[&[u8]]);
    /// A write for replicas only, never logged (PUBLISH, so that a replica's subscribers hear
    /// the master's messages). Sinks that are not replicas ignore it.
    fn write_to_replicas(&mut self, _sequence: u64, _database: usize, _args: &[&[u8]]) {}
    /// Whether the sink is done and should be dropped.
    fn is_closed(&self) -> bool {
        false
    }
}

/// Who a propagated command is for.
#[derive(Clone, Copy)]
enum Audience {
    /// Every sink: the AOF and replicas (writes).
    Everyone,
    /// Replicas only (PUBLISH).
    Replicas,
}

pub struct Propagation {
    active: AtomicBool,
    inner: Mutex<Inner>,
    /// Writes appended so far (also counted while nothing consumes them).
    appended: crate::stats::StripedCounter,
    /// The last sequence number given (mirror of `Inner::sequence`).
    sequence: AtomicU64,
}

struct Inner {
    sequence: u64,
    sinks: Vec<Box<dyn PropagationSink>>,
}

impl Default for Propagation {
    fn default() -> Self {
        Propagation {
            active: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                sequence: 0,
                sinks: Vec::new(),
            }),
            appended: Default::default(),
            sequence: AtomicU64::new(0),
        }
    }
}

impl Propagation {
    /// Appends one write. Must be called while the write's shard locks are held.
    #[inline]
    pub fn append(&self, database: usize, args: &[&[u8]]) {
        self.appended.fetch_add(1, Ordering::Relaxed);
        if let Some(sequence) = self.emit(database, args, Audience::Everyone) {
            THREAD_SEQUENCE.with(|cell| cell.set(sequence));
        }
    }

    /// Sends a command to replicas only (PUBLISH): not a write, so not counted as a change,
    /// not logged in the AOF, and no reply waits for it to be durable.
    pub fn append_to_replicas(&self, database: usize, args: &[&[u8]]) {
        self.emit(database, args, Audience::Replicas);
    }

    /// Hands one command to the sinks; its sequence number, or None when nothing consumes
    /// the stream.
    #[inline]
    fn emit(&self, database: usize, args: &[&[u8]], audience: Audience) -> Option<u64> {
        if !self.active.load(Ordering::Relaxed) || suppressed() {
            return None;
        }
        let mut inner = self.inner.lock();
        inner.sequence += 1;
        let sequence = inner.sequence;
        for sink in inner.sinks.iter_mut() {
            match audience {
                Audience::Everyone => sink.write(sequence, database, args),
                Audience::Replicas => sink.write_to_replicas(sequence, database, args),
            }
        }
        self.sequence.store(sequence, Ordering::Relaxed);
        inner.sinks.retain(|sink| !sink.is_closed());
        self.active
            .store(!inner.sinks.is_empty(), Ordering::Relaxed);
        Some(sequence)
    }

    /// Appends a transaction's writes as one unit: wrapped in MULTI/EXEC when there are
    /// several, with nothing from other clients in between. Must be called while the
    /// transaction's locks are held.
    pub fn append_transaction(&self, writes: &[(usize, Vec<Vec<u8>>)]) {
        match writes {
            [] => {}
            [(database, args)] => {
                let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                self.append(*database, &args);
            }
            _ => {
                self.appended
                    .fetch_add(writes.len() as u64, Ordering::Relaxed);
                if !self.active.load(Ordering::Relaxed) || suppressed() {
                    return;
                }
                let mut inner = self.inner.lock();
                let first_database = writes[0].0;
                let last_database = writes[writes.len() - 1].0;
                let emit = |inner: &mut Inner, database: usize, args: &[&[u8]]| {
                    inner.sequence += 1;
                    let sequence = inner.sequence;
                    for sink in inner.sinks.iter_mut() {
                        sink.write(sequence, database, args);
                    }
                };
                emit(&mut inner, first_database, &[b"MULTI"]);
                for (database, args) in writes {
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    emit(&mut inner, *database, &args);
                }
                emit(&mut inner, last_database, &[b"EXEC"]);
                THREAD_SEQUENCE.with(|cell| cell.set(inner.sequence));
                self.sequence.store(inner.sequence, Ordering::Relaxed);
                inner.sinks.retain(|sink| !sink.is_closed());
                self.active
                    .store(!inner.sinks.is_empty(), Ordering::Relaxed);
            }
        }
    }

    /// Starts feeding a new consumer with every later write.
    pub fn attach(&self, sink: Box<dyn PropagationSink>) {
        let mut inner = self.inner.lock();
        inner.sinks.push(sink);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Attaches a consumer, first calling `at` with the sequence of the last write it will not
    /// see, atomically with respect to appends.
    pub fn attach_at(&self, sink: Box<dyn PropagationSink>, at: impl FnOnce(u64)) {
        let mut inner = self.inner.lock();
        at(inner.sequence);
        inner.sinks.push(sink);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Runs `f` with no append in progress or starting (the stream's mutex held), given the
    /// last sequence number.
    pub fn with_exclusive<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let inner = self.inner.lock();
        f(inner.sequence)
    }

    /// Whether anything consumes the stream (the AOF, a replica). Cannot change while a shard
    /// lock is held: consumers attach with every shard locked.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts writes that were not built because nothing consumes them (the "dirty" counter).
    pub fn count_unpropagated(&self, writes: u64) {
        self.appended.fetch_add(writes, Ordering::Relaxed);
    }

    /// The last sequence number given to a write.
    pub fn sequence(&self) -> u64 {
        self.sequence.load(Ordering::Relaxed)
    }

    /// Writes appended since start-up (the "dirty" counter's source).
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }
}

/// A sink that keeps the stream in memory as RESP, for DEBUG and tests.
pub struct RecordingSink {
    pub buffer: std::sync::Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    pub last_database: Option<usize>,
    pub bytes_max: usize,
    pub bytes: usize,
}

impl PropagationSink for RecordingSink {
    fn write(&mut self, _sequence: u64, database: usize, args: &[&[u8]]) {
        let mut buffer = self.buffer.lock();
        if self.last_database != Some(database) {
            buffer.push(vec![b"SELECT".to_vec(), database.to_string().into_bytes()]);
            self.last_database = Some(database);
        }
        self.bytes += args.iter().map(|arg| arg.len()).sum::<usize>();
        buffer.push(args.iter().map(|arg| arg.to_vec()).collect());
    }

    fn is_closed(&self) -> bool {
        self.bytes > self.bytes_max || std::sync::Arc::strong_count(&self.buffer) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn records_in_order_with_database_switches() {
        let propagation = Propagation::default();
        propagation.append(0, &[b"SET", b"lost", b"1"]);
        let buffer = Arc::new(Mutex::new(Vec::new()));
        propagation.attach(Box::new(RecordingSink {
            buffer: buffer.clone(),
            last_database: None,
            bytes_max: usize::MAX,
            bytes: 0,
        }));
        propagation.append(0, &[b"SET", b"a", b"1"]);
        propagation.append(1, &[b"DEL", b"b"]);
        let recorded = buffer.lock().clone();
        let expected: Vec<Vec<Vec<u8>>> = vec![
            vec![b"SELECT".to_vec(), b"0".to_vec()],
            vec![b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()],
            vec![b"SELECT".to_vec(), b"1".to_vec()],
            vec![b"DEL".to_vec(), b"b".to_vec()],
        ];
        assert_eq!(recorded, expected);
        assert_eq!(propagation.appended(), 3);
    }
}
