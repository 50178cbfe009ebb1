//! The append-only file: Redis 7's multi-part AOF (a manifest, one base file, incremental
//! files) fed by the propagation stream, loaded at start-up, rewritten by BGREWRITEAOF.
//!
//! Model. The AOF is a [`PropagationSink`]: under the stream's mutex it only encodes each write
//! (RESP, a SELECT when the database changes) into a shared buffer and records the write's
//! sequence number. A round of the group commit takes everything buffered, issues ONE `write`
//! and (with `appendfsync always`) ONE `fdatasync`, then publishes the written and durable
//! sequences. A connection whose batch wrote holds its replies until the durable (`always`) or
//! written (`everysec`, `no`: Redis too writes before it replies) sequence reaches the last
//! sequence that batch produced ([`Aof::wait_durable`]); batches that did not write never wait.
//! Who runs the rounds: under `always` the writer thread (its fsync overlaps the commands of the
//! next round; connections await it, never blocking a worker thread); under `everysec` and `no`
//! the waiting connection itself, on its thread, with no hand-over. The writer thread also
//! writes what no connection waits for (active expiry, eviction, the replica link: it is woken
//! for those, and polls every 100 ms), switches files for a rewrite, and runs the `everysec`
//! fsync once a second; `no` never fsyncs.
//!
//! Rewrite (BGREWRITEAOF, CONFIG SET appendonly yes). A new incremental file is created and
//! listed in the manifest first; then, under every shard lock, the writer is switched to it
//! (so every later write lands there) and a snapshot of the dataset begins (`snapshot.rs`:
//! the locks are released at once and commands run on while the rewrite thread walks it); the
//! base (RDB, or commands with `aof-use-rdb-preamble no`) is written to a temporary file and
//! renamed into place, the manifest updated atomically (temp + rename + directory fsync), and
//! the files the new base replaces marked history and deleted. One snapshot runs at a time: a
//! rewrite asked for during a BGSAVE is scheduled, a BGSAVE during a rewrite refused or
//! scheduled, as Redis does with its one child process.
//!
//! Loading replays each file's commands through `connection::execute` with a fake client, one
//! per file (so each file starts in database 0), MULTI/EXEC honoured. A base in RDB format is
//! handed to [`load_base_rdb`].

pub mod format;
pub mod rewrite;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::client::{Client, ClientShared};
use crate::propagation::PropagationSink;
use crate::server::{unix_time_ms, Server};
use crate::snapshot::{Snapshot, SnapshotVisitor};
use format::{BaseFormat, CommandReader, Manifest, ReadError, MANIFEST_SUFFIX, TEMP_PREFIX};

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FsyncPolicy {
    Always = 0,
    EverySecond = 1,
    No = 2,
}

impl FsyncPolicy {
    pub fn parse(text: &str) -> FsyncPolicy {
        match text {
            "always" => FsyncPolicy::Always,
            "no" => FsyncPolicy::No,
            _ => FsyncPolicy::EverySecond,
        }
    }

    fn from_u8(value: u8) -> FsyncPolicy {
        match value {
            0 => FsyncPolicy::Always,
            2 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySecond,
        }
    }
}

/// State shared with the writer thread.
struct Shared {
    policy: AtomicU8,
    /// Highest sequence whose write is on disk (u64::MAX while no AOF runs, so nobody waits).
    durable: tokio::sync::watch::Sender<u64>,
    /// Highest sequence whose write reached the file (not necessarily the disk): replies wait
    /// for it under `everysec` and `no`, as Redis writes before it replies (a crash of the
    /// process then loses nothing acknowledged; only the machine's crash can).
    written: tokio::sync::watch::Sender<u64>,
    last_write_ok: AtomicBool,
    /// The last write error's text (MISCONF shows it while `last_write_ok` is false).
    last_write_error: Mutex<String>,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds the writer waits before each write (a test knob).
    flush_sleep_us: AtomicU64,
    /// `aof-timestamp-enabled`: a `#TS:` line precedes the first write of each second.
    timestamps: AtomicBool,
    /// Bytes of the base and incremental files.
    current_size: AtomicU64,
    fsync_in_progress: AtomicBool,
}

/// What the sink hands the writer thread.
#[derive(Default)]
struct Queue {
    data: Vec<u8>,
    /// Switch to a new file once `data` up to this offset is written.
    switches: Vec<(usize, File)>,
    /// Sequence of the last write in `data`.
    sequence: u64,
    last_database: Option<usize>,
    /// The second of the last `#TS:` annotation written.
    last_timestamp_s: u64,
    stop: bool,
}

struct Writer {
    queue: Mutex<Queue>,
    wake: Condvar,
    closed: AtomicBool,
    /// The file, held by whoever writes a round: a connection leading a group commit, or the
    /// writer thread.
    output: Mutex<Output>,
}

/// The file being appended to, and what of it is not on disk yet.
struct Output {
    file: File,
    /// Sequence of the last write that reached the file but not the disk.
    unsynced_sequence: Option<u64>,
    last_fsync: Instant,
}

/// Who writes a round: a connection does not fsync under `everysec` (the writer thread does,
/// once a second, off the connections' threads).
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoundLeader {
    Connection,
    WriterThread,
}

/// What a round made visible: published once the file's lock is released (see
/// [`Aof::wait_durable`] for why).
#[derive(Default)]
struct Published {
    written: Option<u64>,
    durable: Option<u64>,
    stop: bool,
}

/// How long the writer thread sleeps unless woken: the bound on how late a write reaches the
/// file when no connection flushes it (a connection that closed before replying), and on how
/// late the `everysec` fsync runs.
const WRITER_POLL: Duration = Duration::from_millis(100);

struct Sink {
    writer: Arc<Writer>,
    shared: Arc<Shared>,
}

impl PropagationSink for Sink {
    fn write(&mut self, sequence: u64, database: usize, args: &[&[u8]]) {
        let mut queue = self.writer.queue.lock();
        if self.shared.timestamps.load(Ordering::Relaxed) {
            let now_s = unix_time_ms() / 1000;
            if now_s > queue.last_timestamp_s {
                queue.last_timestamp_s = now_s;
                let line = format::timestamp_annotation(now_s);
                queue.data.extend_from_slice(&line);
            }
        }
        // MULTI and EXEC belong to no database: a SELECT goes inside the transaction, before
        // its first command, as Redis writes it.
        if queue.last_database != Some(database)
            && !crate::propagation::is_transaction_bracket(args)
        {
            let number = database.to_string();
            format::encode_command(&mut queue.data, &[b"SELECT", number.as_bytes()]);
            queue.last_database = Some(database);
        }
        format::encode_command(&mut queue.data, args);
        queue.sequence = sequence;
        drop(queue);
        // Under `everysec` and `no` a connection's write is flushed by that connection before
        // it replies; any other (active expiry, eviction, the replica link), and every write
        // under `always`, wakes the writer thread.
        if !crate::propagation::caller_flushes()
            || FsyncPolicy::from_u8(self.shared.policy.load(Ordering::Relaxed))
                == FsyncPolicy::Always
        {
            self.writer.wake.notify_one();
        }
    }

    fn is_closed(&self) -> bool {
        self.writer.closed.load(Ordering::Relaxed)
    }
}

/// The running writer: its queue and thread.
struct Running {
    writer: Arc<Writer>,
    thread: std::thread::JoinHandle<()>,
}

/// The AOF's state on the server.
pub struct Aof {
    /// Whether replies to writes wait for the durable sequence (AOF on, `appendfsync always`).
    hold_replies: AtomicBool,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
    /// The running writer, for connections leading a group commit (a read lock, not the
    /// `running` mutex, on that path).
    current: RwLock<Option<Arc<Writer>>>,
    manifest: Mutex<Manifest>,
    rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    rewrite_started: Mutex<Option<Instant>>,
    rewrites: AtomicU64,
    rewrites_consecutive_failures: AtomicU64,
    last_rewrite_time_s: AtomicI64,
    last_rewrite_ok: AtomicBool,
    /// Size of the AOF when the last rewrite ended (auto-aof-rewrite-percentage's base).
    base_size: AtomicU64,
    /// Whether the AOF is being loaded (commands then run with the clock stopped at 0).
    loading: AtomicBool,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            hold_replies: AtomicBool::new(false),
            shared: Arc::new(Shared {
                policy: AtomicU8::new(FsyncPolicy::EverySecond as u8),
                durable: tokio::sync::watch::Sender::new(u64::MAX),
                written: tokio::sync::watch::Sender::new(u64::MAX),
                last_write_ok: AtomicBool::new(true),
                last_write_error: Mutex::new(String::new()),
                flush_sleep_us: AtomicU64::new(0),
                timestamps: AtomicBool::new(false),
                current_size: AtomicU64::new(0),
                fsync_in_progress: AtomicBool::new(false),
            }),
            running: Mutex::new(None),
            current: RwLock::new(None),
            manifest: Mutex::new(Manifest::default()),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started: Mutex::new(None),
            rewrites: AtomicU64::new(0),
            rewrites_consecutive_failures: AtomicU64::new(0),
            last_rewrite_time_s: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            base_size: AtomicU64::new(0),
            loading: AtomicBool::new(false),
        }
    }
}

/// The AOF directory (`dir`/`appenddirname`).
fn directory(server: &Server) -> PathBuf {
    Path::new(&server.config.get("dir")).join(server.config.get("appenddirname"))
}

fn filename(server: &Server) -> String {
    server.config.get("appendfilename")
}

/// The format new base files are written in: RDB with `aof-use-rdb-preamble yes` (Redis's
/// default), commands otherwise.
fn base_format(server: &Server) -> BaseFormat {
    if server.config.get_bool("aof-use-rdb-preamble") {
        BaseFormat::Rdb
    } else {
        BaseFormat::Aof
    }
}

impl Aof {
    /// The time commands run at: now, or 0 while the AOF loads, so that nothing expires while
    /// it is replayed (a key written with a TTL that has passed since still takes the later
    /// writes of the file, as it did when they ran; it expires once loaded), as Redis does.
    pub fn clock_ms(&self) -> u64 {
        if self.is_loading() {
            0
        } else {
            unix_time_ms()
        }
    }

    /// Whether the AOF is being replayed at start-up.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    /// DEBUG AOF-FLUSH-SLEEP: the writer waits this long before each write.
    pub fn set_flush_sleep(&self, microseconds: u64) {
        self.shared
            .flush_sleep_us
            .store(microseconds, Ordering::Relaxed);
    }

    /// The error of the last failed write while the AOF cannot write (MISCONF), if any.
    pub fn write_error(&self) -> Option<String> {
        if self.shared.last_write_ok.load(Ordering::Relaxed) || !self.is_on() {
            return None;
        }
        Some(self.shared.last_write_error.lock().clone())
    }

    pub fn rewrite_in_progress(&self) -> bool {
        self.rewrite_in_progress.load(Ordering::Relaxed)
    }

    /// Whether the AOF is on (a writer runs).
    pub fn is_on(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Waits until the write with `sequence` is in the file (`everysec`, `no`) or on disk
    /// (`always`).
    ///
    /// `always`: the writer thread runs the group commit (one write and one fdatasync per
    /// round, for everything queued), so that a round's fsync overlaps the commands that will
    /// make the next round; the connection awaits it.
    ///
    /// `everysec` and `no`: a connection whose write is not in the file yet takes the file's
    /// lock without waiting and writes one round itself (everything queued, other
    /// connections' writes too) on its own thread, as Redis writes the AOF from its event
    /// loop: no hand-over to the writer thread and back. A connection that finds the lock
    /// taken awaits the next publication and tries again. The round's leader publishes after releasing the lock, so that a follower
    /// that found it taken (and subscribed before trying) is always woken after the lock is
    /// free: either the round covered it, or it leads the next one. Publications take the
    /// maximum, since two rounds may publish out of order.
    pub async fn wait_durable(&self, sequence: u64) {
        if sequence == 0 || !self.hold_replies.load(Ordering::Relaxed) {
            return;
        }
        let Some(writer) = self.current.read().clone() else {
            return;
        };
        if self.policy() == FsyncPolicy::Always {
            let mut reached = self.shared.durable.subscribe();
            let _ = reached.wait_for(|reached| *reached >= sequence).await;
            return;
        }
        let target = &self.shared.written;
        loop {
            let mut reached = target.subscribe();
            if *reached.borrow_and_update() >= sequence {
                return;
            }
            if let Some(mut output) = writer.output.try_lock() {
                let published =
                    write_round(&writer, &mut output, &self.shared, RoundLeader::Connection);
                drop(output);
                publish(&self.shared, &published);
                continue;
            }
            if reached.changed().await.is_err() {
                return;
            }
        }
    }

    fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.shared.policy.load(Ordering::Relaxed))
    }

    fn refresh_hold(&self) {
        let hold = self.running.lock().is_some();
        self.hold_replies.store(hold, Ordering::Relaxed);
    }

    /// Starts a writer appending to `file` and attaches it to the stream. Must run where no
    /// write can be appended concurrently (start-up, or under every shard lock).
    fn start_writer(&self, server: &Server, file: File) {
        let writer = Arc::new(Writer {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            output: Mutex::new(Output {
                file,
                unsynced_sequence: None,
                last_fsync: Instant::now(),
            }),
        });
        server.propagation.attach_at(
            Box::new(Sink {
                writer: writer.clone(),
                shared: self.shared.clone(),
            }),
            |sequence| {
                self.shared.durable.send_replace(sequence);
                self.shared.written.send_replace(sequence);
            },
        );
        let shared = self.shared.clone();
        let thread_writer = writer.clone();
        let thread = std::thread::Builder::new()
            .name("cinnabar-aof".into())
            .spawn(move || run_writer(thread_writer, shared))
            .expect("spawn the AOF writer thread");
        *self.current.write() = Some(writer.clone());
        *self.running.lock() = Some(Running { writer, thread });
        self.refresh_hold();
    }

    /// Stops the writer after it wrote and fsynced everything buffered.
    fn stop_writer(&self, server: &Server) {
        let Some(running) = self.running.lock().take() else {
            return;
        };
        self.hold_replies.store(false, Ordering::Relaxed);
        *self.current.write() = None;
        server.propagation.with_exclusive(|_| {
            running.writer.closed.store(true, Ordering::Relaxed);
            running.writer.queue.lock().stop = true;
        });
        running.writer.wake.notify_one();
        let _ = running.thread.join();
        self.shared.durable.send_replace(u64::MAX);
        self.shared.written.send_replace(u64::MAX);
    }

    /// Switches the writer to `file` at the current point of the stream.
    fn switch_file(&self, server: &Server, file: File) {
        let running = self.running.lock();
        let Some(running) = running.as_ref() else {
            return;
        };
        server.propagation.with_exclusive(|_| {
            let mut queue = running.writer.queue.lock();
            let offset = queue.data.len();
            queue.switches.push((offset, file));
            queue.last_database = None;
        });
        running.writer.wake.notify_one();
    }
}

/// The writer thread: writes what no connection flushes (writes made outside connections, a
/// rewrite's file switch, the final round at stop) and runs the `everysec` fsync.
fn run_writer(writer: Arc<Writer>, shared: Arc<Shared>) {
    loop {
        {
            let mut queue = writer.queue.lock();
            if queue.data.is_empty() && queue.switches.is_empty() && !queue.stop {
                writer.wake.wait_for(&mut queue, WRITER_POLL);
            }
        }
        let published = {
            let mut output = writer.output.lock();
            write_round(&writer, &mut output, &shared, RoundLeader::WriterThread)
        };
        publish(&shared, &published);
        if published.stop {
            return;
        }
    }
}

/// One round of the group commit, under the file's lock: takes everything queued, writes it
/// with one `write` (switching files where a rewrite asked), and fsyncs as the policy says.
/// Its time counts in INFO debug's `eventloop_duration_aof_sum`.
fn write_round(
    writer: &Writer,
    output: &mut Output,
    shared: &Shared,
    leader: RoundLeader,
) -> Published {
    let started_us = crate::server::unix_time_us();
    let published = run_write_round(writer, output, shared, leader);
    crate::stats::AOF_WRITE_US.fetch_add(
        crate::server::unix_time_us().saturating_sub(started_us),
        std::sync::atomic::Ordering::Relaxed,
    );
    published
}

fn run_write_round(
    writer: &Writer,
    output: &mut Output,
    shared: &Shared,
    leader: RoundLeader,
) -> Published {
    let (data, switches, sequence, stop) = {
        let mut queue = writer.queue.lock();
        (
            std::mem::take(&mut queue.data),
            std::mem::take(&mut queue.switches),
            queue.sequence,
            queue.stop,
        )
    };
    let mut published = Published {
        stop,
        ..Published::default()
    };
    let flush_sleep_us = shared.flush_sleep_us.load(Ordering::Relaxed);
    if flush_sleep_us > 0 && !data.is_empty() {
        std::thread::sleep(Duration::from_micros(flush_sleep_us));
    }
    let mut offset = 0;
    let switched = !switches.is_empty();
    for (at, next) in switches {
        write_or_die(&mut output.file, &data[offset..at], shared);
        sync_or_die(&output.file, shared);
        output.file = next;
        offset = at;
    }
    if switched {
        // Everything before the last switch is on disk, earlier rounds included.
        output.unsynced_sequence = None;
        output.last_fsync = Instant::now();
        if offset == data.len() {
            published.durable = Some(sequence);
        }
    }
    if offset < data.len() {
        write_or_die(&mut output.file, &data[offset..], shared);
        output.unsynced_sequence = Some(sequence);
    }
    if !data.is_empty() {
        published.written = Some(sequence);
    }
    let due = match FsyncPolicy::from_u8(shared.policy.load(Ordering::Relaxed)) {
        FsyncPolicy::Always => true,
        FsyncPolicy::EverySecond => {
            leader == RoundLeader::WriterThread
                && output.last_fsync.elapsed() >= Duration::from_secs(1)
        }
        FsyncPolicy::No => false,
    };
    if let Some(synced) = output.unsynced_sequence {
        if due || stop {
            shared.fsync_in_progress.store(true, Ordering::Relaxed);
            sync_or_die(&output.file, shared);
            shared.fsync_in_progress.store(false, Ordering::Relaxed);
            output.last_fsync = Instant::now();
            output.unsynced_sequence = None;
            published.durable = Some(synced);
        }
    }
    published
}

/// Makes a round's progress visible to the connections waiting for it.
fn publish(shared: &Shared, published: &Published) {
    let raise = |sender: &tokio::sync::watch::Sender<u64>, sequence: Option<u64>| {
        if let Some(sequence) = sequence {
            sender.send_modify(|reached| *reached = (*reached).max(sequence));
        }
    };
    raise(&shared.written, published.written);
    raise(&shared.durable, published.durable);
}

fn write_or_die(file: &mut File, bytes: &[u8], shared: &Shared) {
    if bytes.is_empty() {
        return;
    }
    loop {
        match file.write_all(bytes) {
            Ok(()) => {
                shared
                    .current_size
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if !shared.last_write_ok.swap(true, Ordering::Relaxed) {
                    tracing::warn!("AOF write error looks solved. The server can write again.");
                }
                return;
            }
            Err(error) => {
                tracing::warn!("Error writing to the AOF file: {error}");
                *shared.last_write_error.lock() = error.to_string();
                shared.last_write_ok.store(false, Ordering::Relaxed);
                if FsyncPolicy::from_u8(shared.policy.load(Ordering::Relaxed))
                    == FsyncPolicy::Always
                {
                    tracing::warn!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn sync_or_die(file: &File, shared: &Shared) {
    if let Err(error) = file.sync_data() {
        tracing::warn!("Can't persist append only file with fsync policy: {error}. Exiting...");
        shared.last_write_ok.store(false, Ordering::Relaxed);
        std::process::exit(1);
    }
}

/// Writes `text` as the manifest: temporary file, fsync, rename, directory fsync.
fn write_manifest(directory: &Path, filename: &str, manifest: &Manifest) -> Result<(), String> {
    let name = format!("{filename}{MANIFEST_SUFFIX}");
    let temporary = directory.join(format!("{TEMP_PREFIX}{name}"));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(manifest.to_text().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, directory.join(&name))?;
        File::open(directory)?.sync_all()
    };
    write().map_err(|error| {
        format!(
            "Error trying to write the AOF manifest file {}: {error}",
            temporary.display()
        )
    })
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| {
            format!(
                "Can't open the append-only file {}: {error}",
                path.display()
            )
        })
}

/// Creates or fsyncs a whole file.
fn write_file_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// How loading one file ended.
#[derive(Debug, PartialEq, Eq)]
enum Loaded {
    Complete,
    Empty,
    Truncated,
}

/// Loads a base file in RDB format (Redis's default base, `aof-use-rdb-preamble yes`).
/// Returns the offset where the RDB ends (an old-style preamble is followed by commands).
pub fn load_base_rdb(server: &Server, path: &Path) -> Result<usize, String> {
    let stats = crate::rdb::load_rdb_file(server, path)?;
    Ok(stats.bytes_read)
}

fn fake_client(server: &Server) -> Client {
    let address = "127.0.0.1:0".parse().expect("an address");
    let shared = Arc::new(ClientShared::new(
        crate::client::LOADER_CLIENT_ID,
        address,
        address,
        -1,
        0,
    ));
    Client::new(shared, true, server.acl.default_user())
}

/// Replays one file. `Err` is fatal (start-up stops with the message).
fn load_file(server: &Server, directory: &Path, name: &str) -> Result<Loaded, String> {
    let path = directory.join(name);
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("The append log file {name} doesn't exist: {error}"))
        }
        Err(error) => {
            return Err(format!(
                "Fatal error: can't open the append log file {name} for reading: {error}"
            ))
        }
    };
    if data.is_empty() {
        return Ok(Loaded::Empty);
    }
    let mut start = 0;
    if !data.starts_with(b"REDIS") {
        // (An RDB preamble's load counts the whole file.)
        server.loading.add_file(data.len() as u64);
    }
    let key_load_delay = server.config.get_i64("key-load-delay");
    let mut commands_loaded: u64 = 0;
    if data.starts_with(b"REDIS") {
        tracing::info!("Reading RDB base file on AOF loading...");
        start = load_base_rdb(server, &path).map_err(|error| {
            format!("Error reading the RDB base file {name}, AOF loading aborted: {error}")
        })?;
    }
    let mut client = fake_client(server);
    let mut reader = CommandReader::new(&data, start);
    let mut valid_up_to = start;
    let mut valid_before_multi = start;
    let mut output = Vec::new();
    let failure = loop {
        let args = match reader.next_command() {
            None => break None,
            Some(Ok(args)) => args,
            Some(Err(error)) => break Some(error),
        };
        if server.commands.get(args[0]).is_none() {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(args[0])
            ));
        }
        let was_in_transaction = client.transaction.is_some();
        crate::connection::execute(server, &mut client, &args, &mut output);
        output.clear();
        if !was_in_transaction && client.transaction.is_some() {
            valid_before_multi = valid_up_to;
        }
        server
            .loading
            .progress((reader.position() - valid_up_to) as u64);
        commands_loaded += 1;
        crate::loading::key_load_delay(key_load_delay, commands_loaded);
        valid_up_to = reader.position();
    };
    let truncated_at = match failure {
        Some(ReadError::Format { offset }) => {
            return Err(format!(
                "Bad file format reading the append only file {name} at byte offset {offset}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
            ));
        }
        Some(ReadError::Truncated) => valid_up_to,
        None if client.transaction.is_some() => {
            tracing::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
            valid_before_multi
        }
        None => return Ok(Loaded::Complete),
    };
    if server.config.get_bool("aof-load-truncated") {
        tracing::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
        tracing::warn!("!!! Truncating the AOF {name} at offset {truncated_at} !!!");
        let truncate = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_len(truncated_at as u64));
        match truncate {
            Ok(()) => {
                tracing::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
                return Ok(Loaded::Truncated);
            }
            Err(error) => {
                tracing::warn!("Error truncating the AOF file {name}: {error}");
            }
        }
    }
    Err(format!(
        "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
    ))
}

/// Loads the manifest from disk; an empty manifest when there is none.
fn read_manifest(directory: &Path, filename: &str) -> Result<Manifest, String> {
    let path = directory.join(format!("{filename}{MANIFEST_SUFFIX}"));
    match std::fs::read(&path) {
        Ok(text) => Manifest::parse(&text).map_err(|error| error.report()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(error) => Err(format!(
            "Fatal error: can't open the AOF manifest file {} for reading: {error}",
            path.display()
        )),
    }
}

/// Moves an old single-file AOF (`dir`/`appendfilename`) into the AOF directory as the base.
fn upgrade_old_file(
    directory: &Path,
    filename: &str,
    manifest: &mut Manifest,
) -> Result<(), String> {
    std::fs::create_dir_all(directory).map_err(|error| {
        format!(
            "Can't open or create append-only dir {}: {error}",
            directory.display()
        )
    })?;
    let mut upgraded = Manifest::default();
    upgraded.base = Some(format::FileInfo {
        name: filename.to_string(),
        sequence: 1,
        kind: format::FileKind::Base,
    });
    let upgraded =
        Manifest::parse(upgraded.to_text().as_bytes()).map_err(|error| error.report())?;
    write_manifest(directory, filename, &upgraded)?;
    std::fs::rename(filename, directory.join(filename)).map_err(|error| {
        format!(
            "Error trying to move the old AOF file {filename} into dir {}: {error}",
            directory.display()
        )
    })?;
    tracing::info!(
        "Successfully migrated an old-style AOF file ({filename}) into the AOF directory ({}).",
        directory.display()
    );
    *manifest = upgraded;
    Ok(())
}

/// At start-up with `appendonly yes`: loads the AOF, then opens it for appending (creating the
/// base and incremental files a fresh AOF needs). `Err` stops start-up.
pub fn open_at_startup(server: &Server) -> Result<(), String> {
    let aof = &server.aof;
    aof.shared.policy.store(
        FsyncPolicy::parse(&server.config.get("appendfsync")) as u8,
        Ordering::Relaxed,
    );
    aof.shared.timestamps.store(
        server.config.get_bool("aof-timestamp-enabled"),
        Ordering::Relaxed,
    );
    if !server.config.get_bool("appendonly") {
        return Ok(());
    }
    let directory = directory(server);
    let filename = filename(server);
    let mut manifest = if directory.is_dir() {
        read_manifest(&directory, &filename)?
    } else {
        Manifest::default()
    };
    if Path::new(&filename).is_file() {
        let old_base_only = manifest.incremental.is_empty()
            && manifest.base.as_ref().map(|base| base.name.as_str()) == Some(filename.as_str())
            && !directory.join(&filename).exists();
        if !directory.is_dir() || manifest.is_empty() || old_base_only {
            upgrade_old_file(&directory, &filename, &mut manifest)?;
        }
    }
    let started = Instant::now();
    let files: Vec<String> = manifest
        .files_to_load()
        .iter()
        .map(|info| info.name.clone())
        .collect();
    let mut total_size = 0u64;
    for (index, name) in files.iter().enumerate() {
        let size = std::fs::metadata(directory.join(name))
            .map(|metadata| metadata.len())
            .map_err(|error| {
                format!("Unable to obtain the AOF file {name} length. stat: {error}")
            })?;
        total_size += size;
        if index == 0 && manifest.base.is_some() {
            aof.base_size.store(size, Ordering::Relaxed);
        }
    }
    if total_size > 0 {
        aof.loading.store(true, Ordering::Relaxed);
        let loaded = load_files(server, &directory, &manifest, &files, started);
        aof.loading.store(false, Ordering::Relaxed);
        loaded?;
    }
    std::fs::create_dir_all(&directory).map_err(|error| {
        format!(
            "Can't open or create append-only dir {}: {error}",
            directory.display()
        )
    })?;
    let mut dirty = false;
    if manifest.is_empty() {
        let name = manifest.new_base(&filename, base_format(server));
        tracing::info!("Creating AOF base file {name} on server start");
        let base = serialize_everything(server);
        write_file_durably(&directory.join(&name), &base)
            .map_err(|error| format!("Can't create the AOF base file {name}: {error}"))?;
        aof.base_size.store(base.len() as u64, Ordering::Relaxed);
        dirty = true;
    }
    let incremental = match manifest.incremental.last() {
        Some(last) => {
            tracing::info!("Opening AOF incr file {} on server start", last.name);
            last.name.clone()
        }
        None => {
            let name = manifest.new_incremental(&filename);
            tracing::info!("Creating AOF incr file {name} on server start");
            dirty = true;
            name
        }
    };
    let file = open_append(&directory.join(&incremental))?;
    if dirty {
        write_manifest(&directory, &filename, &manifest)?;
    }
    let current_size = manifest
        .files_to_load()
        .iter()
        .filter_map(|info| std::fs::metadata(directory.join(&info.name)).ok())
        .map(|metadata| metadata.len())
        .sum();
    aof.shared
        .current_size
        .store(current_size, Ordering::Relaxed);
    *aof.manifest.lock() = manifest;
    aof.start_writer(server, file);
    Ok(())
}

/// DEBUG LOADAOF: writes and fsyncs everything buffered, empties the dataset and replays the
/// files the manifest on disk lists, then appends to the same incremental file again. The
/// replayed writes reach neither the AOF nor replicas. The caller runs alone (it holds the
/// barrier exclusively), as Redis's single thread would. `Err` leaves the dataset untouched
/// when the files cannot be found, emptied when they are corrupt.
pub fn load_again(server: &Server, empty: impl FnOnce()) -> Result<(), String> {
    let aof = &server.aof;
    let directory = directory(server);
    let filename = filename(server);
    let was_on = aof.is_on();
    aof.stop_writer(server);
    let manifest = read_manifest(&directory, &filename);
    let reopen = |manifest: &Manifest| -> Result<(), String> {
        if !was_on {
            return Ok(());
        }
        let last = manifest
            .incremental
            .last()
            .ok_or("the AOF manifest lists no incremental file")?;
        let file = open_append(&directory.join(&last.name))?;
        aof.start_writer(server, file);
        Ok(())
    };
    let manifest = match manifest {
        Ok(manifest) if !manifest.is_empty() => manifest,
        Ok(_) => {
            let _ = reopen(&Manifest::default());
            return Err("ERR the append only file does not exist".into());
        }
        Err(error) => return Err(format!("ERR {error}")),
    };
    let files: Vec<String> = manifest
        .files_to_load()
        .iter()
        .map(|info| info.name.clone())
        .collect();
    empty();
    aof.loading.store(true, Ordering::Relaxed);
    let loaded = crate::propagation::without_propagation(|| {
        load_files(server, &directory, &manifest, &files, Instant::now())
    });
    aof.loading.store(false, Ordering::Relaxed);
    reopen(&manifest)?;
    loaded.map_err(|error| format!("ERR {error}"))?;
    tracing::info!("Append Only File loaded by DEBUG LOADAOF");
    Ok(())
}

/// Replays the manifest's files in order.
fn load_files(
    server: &Server,
    directory: &Path,
    manifest: &Manifest,
    files: &[String],
    started: Instant,
) -> Result<(), String> {
    for (index, name) in files.iter().enumerate() {
        let last = index + 1 == files.len();
        let loaded = load_file(server, directory, name)?;
        if loaded == Loaded::Truncated && !last {
            return Err("Fatal error: the truncated file is not the last file".into());
        }
        let kind = if index == 0 && manifest.base.is_some() {
            "base"
        } else {
            "incr"
        };
        tracing::info!(
            "DB loaded from {kind} file {name}: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    tracing::info!(
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// At shutdown: writes and fsyncs everything buffered.
pub fn shutdown(server: &Server) {
    server.aof.stop_writer(server);
}

// ---------------------------------------------------------------------------------------------
// Rewrite
// ---------------------------------------------------------------------------------------------

/// The whole dataset as commands, under every shard lock (the first base, at start-up).
fn serialize_everything(server: &Server) -> Vec<u8> {
    let guards = server.keyspace.lock_everything();
    serialize_locked(&guards)
}

fn serialize_locked(guards: &[Vec<parking_lot::MutexGuard<'_, store::Shard>>]) -> Vec<u8> {
    let now_ms = unix_time_ms();
    let mut output = Vec::new();
    for (database, shards) in guards.iter().enumerate() {
        rewrite::serialize_database(
            &mut output,
            database,
            shards.iter().map(|guard| &**guard),
            now_ms,
        );
    }
    output
}

/// Why BGREWRITEAOF could not start.
#[derive(Debug, PartialEq, Eq)]
pub enum RewriteStart {
    Started,
    Scheduled,
    AlreadyInProgress,
}

/// Starts a background rewrite (BGREWRITEAOF, CONFIG SET appendonly yes, the automatic
/// trigger).
pub fn start_rewrite(server: &Server) -> RewriteStart {
    let aof = &server.aof;
    if aof.rewrite_in_progress() {
        return RewriteStart::AlreadyInProgress;
    }
    if server.rdb.bgsave_in_progress.load(Ordering::Acquire) {
        // One snapshot at a time (Redis: one child process): the cron starts it after.
        aof.rewrite_scheduled.store(true, Ordering::Relaxed);
        tracing::info!("Background append only file rewriting scheduled.");
        return RewriteStart::Scheduled;
    }
    if aof
        .rewrite_in_progress
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return RewriteStart::AlreadyInProgress;
    }
    let Some(server) = server.arc() else {
        aof.rewrite_in_progress.store(false, Ordering::Release);
        return RewriteStart::AlreadyInProgress;
    };
    *aof.rewrite_started.lock() = Some(Instant::now());
    tracing::info!("Background append only file rewriting started");
    // The base's format is the one configured when the rewrite starts, as Redis's child
    // decides at fork (a CONFIG SET during the rewrite applies to the next one).
    let format = base_format(&server);
    std::thread::Builder::new()
        .name("cinnabar-aof-rewrite".into())
        .spawn(move || {
            let started = Instant::now();
            let result = rewrite(&server, format);
            let aof = &server.aof;
            aof.last_rewrite_time_s
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            match result {
                Ok(()) => {
                    aof.rewrites.fetch_add(1, Ordering::Relaxed);
                    aof.rewrites_consecutive_failures
                        .store(0, Ordering::Relaxed);
                    aof.last_rewrite_ok.store(true, Ordering::Relaxed);
                    tracing::info!("Background AOF rewrite finished successfully");
                }
                Err(error) => {
                    aof.rewrites_consecutive_failures
                        .fetch_add(1, Ordering::Relaxed);
                    aof.last_rewrite_ok.store(false, Ordering::Relaxed);
                    tracing::warn!("Background AOF rewrite terminated with error: {error}");
                }
            }
            *aof.rewrite_started.lock() = None;
            aof.rewrite_in_progress.store(false, Ordering::Release);
        })
        .expect("spawn the AOF rewrite thread");
    RewriteStart::Started
}

/// One rewrite: a new incremental file from the switch point, a new base for the dataset at
/// that point, the manifest, then the replaced files deleted.
fn rewrite(server: &Server, format: BaseFormat) -> Result<(), String> {
    let aof = &server.aof;
    let directory = directory(server);
    let filename = filename(server);
    std::fs::create_dir_all(&directory).map_err(|error| {
        format!(
            "Can't open or create append-only dir {}: {error}",
            directory.display()
        )
    })?;
    let was_on = aof.is_on();
    let enable = !was_on && server.config.get_bool("appendonly");
    let mut manifest = aof.manifest.lock().clone();
    if !was_on {
        // The files on disk (if any) describe an older dataset.
        manifest = read_manifest(&directory, &filename).unwrap_or_default();
    }
    let mut incremental_name = String::new();
    let mut incremental_file = None;
    if was_on || enable {
        incremental_name = manifest.new_incremental(&filename);
        incremental_file = Some(open_append(&directory.join(&incremental_name))?);
        tracing::info!("Creating AOF incr file {incremental_name} on background rewrite");
    }
    if was_on {
        // The new file is listed before any write lands in it: a crash from here on loses
        // nothing.
        write_manifest(&directory, &filename, &manifest)?;
        *aof.manifest.lock() = manifest.clone();
    }
    // The base is a snapshot whose moment is the switch to the new incremental file: both
    // happen under every shard lock, then commands run on while the snapshot is walked
    // (copy-on-write per shard, see `snapshot.rs`), with no fork and no stop-the-world.
    let snapshot = loop {
        // As a command would (this is the rewrite's own thread): shared in the script barrier,
        // so that no script locking shards on demand waits for what this holds.
        let shared = server.barrier.enter_shared(|| Ok::<(), ()>(()));
        let guards = server.keyspace.lock_everything();
        if server.keyspace.has_observer() {
            // A BGSAVE's snapshot still walks: wait for it, as Redis waits for its child.
            drop(guards);
            drop(shared);
            std::thread::sleep(SNAPSHOT_RETRY_INTERVAL);
            continue;
        }
        let keys: usize = guards.iter().flatten().map(|shard| shard.len()).sum();
        // Made under the locks, so that its header (the functions) is of the same moment.
        let visitor = base_visitor(server, format, &directory)?;
        let Ok(snapshot) = Snapshot::begin(server, visitor, keys as u64) else {
            unreachable!("no observer is installed while every shard is held");
        };
        if let Some(file) = incremental_file.take() {
            if was_on {
                aof.switch_file(server, file);
            } else {
                aof.start_writer(server, file);
            }
        }
        drop(guards);
        break snapshot;
    };
    let base_name = manifest.new_base(&filename, format);
    let base_size = match snapshot.walk(server) {
        Ok(visitor) => finish_base_visitor(visitor, &directory.join(&base_name)),
        Err(failure) => {
            abandon_base_visitor(failure.visitor);
            Err(failure.error)
        }
    }
    .map_err(|error| format!("Write error writing append only file on disk: {error}"))?;
    let incremental = incremental_name;
    manifest.retire_incrementals_except(&incremental);
    write_manifest(&directory, &filename, &manifest)?;
    for history in std::mem::take(&mut manifest.history) {
        tracing::info!(
            "Removing the history file {} in the background",
            history.name
        );
        let _ = std::fs::remove_file(directory.join(&history.name));
    }
    write_manifest(&directory, &filename, &manifest)?;
    let incremental_size = if incremental.is_empty() {
        0
    } else {
        std::fs::metadata(directory.join(&incremental))
            .map(|metadata| metadata.len())
            .unwrap_or(0)
    };
    aof.base_size.store(base_size, Ordering::Relaxed);
    aof.shared
        .current_size
        .store(base_size + incremental_size, Ordering::Relaxed);
    *aof.manifest.lock() = manifest;
    Ok(())
}

/// How long a rewrite waits before trying again to take its snapshot while a BGSAVE's walks.
const SNAPSHOT_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The visitor that writes the new base file (in `directory`, under a temporary name).
fn base_visitor(
    server: &Server,
    format: BaseFormat,
    directory: &Path,
) -> Result<Box<dyn SnapshotVisitor>, String> {
    match format {
        BaseFormat::Rdb => crate::rdb::RdbVisitor::create(server, crate::rdb::RdbPurpose::AofBase)
            .map(|visitor| Box::new(visitor) as Box<dyn SnapshotVisitor>)
            .map_err(|error| format!("Error creating the AOF base as RDB: {error}")),
        BaseFormat::Aof => {
            let temporary = directory.join(format!(
                "{TEMP_PREFIX}rewriteaof-bg-{}.aof",
                std::process::id()
            ));
            let now_ms = unix_time_ms();
            let timestamps = server.aof.shared.timestamps.load(Ordering::Relaxed);
            rewrite::CommandVisitor::create(temporary, now_ms)
                .and_then(|mut visitor| {
                    if timestamps {
                        visitor.annotate_timestamp(now_ms / 1000)?;
                    }
                    Ok(visitor)
                })
                .map(|visitor| Box::new(visitor) as Box<dyn SnapshotVisitor>)
                .map_err(|error| format!("Error creating the AOF base: {error}"))
        }
    }
}

/// Ends the base file the snapshot filled and renames it to `target`; returns its size.
fn finish_base_visitor(visitor: Box<dyn SnapshotVisitor>, target: &Path) -> std::io::Result<u64> {
    let visitor = visitor.into_any();
    let visitor = match visitor.downcast::<crate::rdb::RdbVisitor>() {
        Ok(rdb) => return rdb.finish(target),
        Err(other) => other,
    };
    match visitor.downcast::<rewrite::CommandVisitor>() {
        Ok(commands) => commands.finish(target),
        Err(_) => Err(std::io::Error::other("unknown AOF base visitor")),
    }
}

/// Removes the temporary file of a base that will not be finished.
fn abandon_base_visitor(visitor: Box<dyn SnapshotVisitor>) {
    let visitor = visitor.into_any();
    let visitor = match visitor.downcast::<crate::rdb::RdbVisitor>() {
        Ok(rdb) => return rdb.abandon(),
        Err(other) => other,
    };
    if let Ok(commands) = visitor.downcast::<rewrite::CommandVisitor>() {
        commands.abandon();
    }
}

/// BGREWRITEAOF's outcome for a client.
pub fn bgrewriteaof(server: &Server) -> Result<&'static str, &'static str> {
    match start_rewrite(server) {
        RewriteStart::Started => Ok("Background append only file rewriting started"),
        RewriteStart::Scheduled => Ok("Background append only file rewriting scheduled"),
        RewriteStart::AlreadyInProgress => {
            Err("ERR Background append only file rewriting already in progress")
        }
    }
}

/// Starts a rewrite when the AOF grew past `auto-aof-rewrite-percentage` of its size after the
/// last rewrite (and past `auto-aof-rewrite-min-size`). Called by the server's cron.
pub fn cron(server: &Server) {
    let aof = &server.aof;
    if aof.rewrite_in_progress.load(Ordering::Relaxed)
        || server.rdb.bgsave_in_progress.load(Ordering::Acquire)
    {
        return;
    }
    if aof.rewrite_scheduled.swap(false, Ordering::Relaxed) {
        start_rewrite(server);
        return;
    }
    if !aof.is_on() {
        return;
    }
    let percentage = server.config.get_i64("auto-aof-rewrite-percentage");
    let minimum = server.config.get_i64("auto-aof-rewrite-min-size").max(0) as u64;
    let current = aof.shared.current_size.load(Ordering::Relaxed);
    if percentage == 0 || current < minimum {
        return;
    }
    let base = aof.base_size.load(Ordering::Relaxed).max(1);
    let growth = (current.saturating_sub(base)) * 100 / base;
    if growth >= percentage as u64 {
        tracing::info!("Starting automatic rewriting of AOF on {growth}% growth");
        start_rewrite(server);
    }
}

/// Applies CONFIG SET changes of `appendonly` and `appendfsync`.
pub fn apply_config(server: &Server, changed: &crate::config::PreviousValues) {
    let aof = &server.aof;
    for (name, old) in changed {
        match *name {
            "appendfsync" => {
                let policy = FsyncPolicy::parse(&server.config.get("appendfsync"));
                aof.shared.policy.store(policy as u8, Ordering::Relaxed);
                aof.refresh_hold();
                if let Some(running) = aof.running.lock().as_ref() {
                    running.writer.wake.notify_one();
                }
            }
            "aof-timestamp-enabled" => {
                let enabled = server.config.get_bool("aof-timestamp-enabled");
                aof.shared.timestamps.store(enabled, Ordering::Relaxed);
            }
            "appendonly" => {
                let on = server.config.get_bool("appendonly");
                if on && *old != "yes" && !aof.is_on() {
                    start_rewrite(server);
                } else if !on && aof.is_on() {
                    aof.stop_writer(server);
                }
            }
            _ => {}
        }
    }
}

/// INFO persistence's AOF fields.
pub fn info_fields(server: &Server, text: &mut String) {
    let aof = &server.aof;
    let on = aof.is_on();
    let mut field = |name: &str, value: String| {
        text.push_str(name);
        text.push(':');
        text.push_str(&value);
        text.push_str("\r\n");
    };
    field("aof_enabled", i64::from(on).to_string());
    field(
        "aof_rewrite_in_progress",
        i64::from(aof.rewrite_in_progress.load(Ordering::Relaxed)).to_string(),
    );
    field(
        "aof_rewrite_scheduled",
        i64::from(aof.rewrite_scheduled.load(Ordering::Relaxed)).to_string(),
    );
    field(
        "aof_last_rewrite_time_sec",
        aof.last_rewrite_time_s.load(Ordering::Relaxed).to_string(),
    );
    let current_rewrite = aof
        .rewrite_started
        .lock()
        .map(|started| started.elapsed().as_secs() as i64)
        .unwrap_or(-1);
    field("aof_current_rewrite_time_sec", current_rewrite.to_string());
    let status = |ok: bool| if ok { "ok" } else { "err" }.to_string();
    field(
        "aof_last_bgrewrite_status",
        status(aof.last_rewrite_ok.load(Ordering::Relaxed)),
    );
    field(
        "aof_rewrites",
        aof.rewrites.load(Ordering::Relaxed).to_string(),
    );
    field(
        "aof_rewrites_consecutive_failures",
        aof.rewrites_consecutive_failures
            .load(Ordering::Relaxed)
            .to_string(),
    );
    field(
        "aof_last_write_status",
        status(aof.shared.last_write_ok.load(Ordering::Relaxed)),
    );
    field("aof_last_cow_size", "0".into());
    field("module_fork_in_progress", "0".into());
    field("module_fork_last_cow_size", "0".into());
    if on {
        field(
            "aof_current_size",
            aof.shared.current_size.load(Ordering::Relaxed).to_string(),
        );
        field(
            "aof_base_size",
            aof.base_size.load(Ordering::Relaxed).to_string(),
        );
        field("aof_pending_rewrite", "0".into());
        field("aof_buffer_length", "0".into());
        field(
            "aof_pending_bio_fsync",
            i64::from(aof.shared.fsync_in_progress.load(Ordering::Relaxed)).to_string(),
        );
        field("aof_delayed_fsync", "0".into());
    }
}
