//! RDB files for the server: loading at start-up and for DEBUG RELOAD, SAVE (blocking, all
//! shards held), BGSAVE (a point-in-time [`Snapshot`](crate::snapshot) written by a background
//! thread), save points, and the state INFO persistence and LASTSAVE report. The file format
//! itself is the `persist` crate's.
//!
//! Files are written to `temp-<pid>.rdb` in `dir`, fsynced, renamed over `dbfilename`, and the
//! directory is fsynced.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use persist::rdb::{EncodeOptions, FileWriter, LoadedEntry, Sink};
use store::keyspace::shard_index;
use store::{Shard, Value};

use crate::server::{unix_time_ms, Server};
use crate::snapshot::{Snapshot, SnapshotVisitor};

/// What INFO persistence, LASTSAVE and the save points need.
pub struct RdbState {
    pub last_save_unix_s: AtomicU64,
    /// The propagation counter when the last successful save took its moment.
    pub changes_at_last_save: AtomicU64,
    pub bgsave_in_progress: AtomicBool,
    pub bgsave_started_unix_ms: AtomicU64,
    pub bgsave_scheduled: AtomicBool,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_seconds: AtomicI64,
    pub last_failed_attempt_unix_s: AtomicU64,
    pub saves: AtomicU64,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// Function libraries read from the last loaded file (`FUNCTION2`), for the Lua engine.
    pub functions: Mutex<Vec<Vec<u8>>>,
    /// The running BGSAVE's snapshot (to cancel it).
    running: Mutex<Option<Arc<Snapshot>>>,
}

impl RdbState {
    pub fn new(now_unix_s: u64) -> Self {
        RdbState {
            last_save_unix_s: AtomicU64::new(now_unix_s),
            changes_at_last_save: AtomicU64::new(0),
            bgsave_in_progress: AtomicBool::new(false),
            bgsave_started_unix_ms: AtomicU64::new(0),
            bgsave_scheduled: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_seconds: AtomicI64::new(-1),
            last_failed_attempt_unix_s: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
            functions: Mutex::new(Vec::new()),
            running: Mutex::new(None),
        }
    }
}

/// Writes since the last successful save (`rdb_changes_since_last_save`).
pub fn changes_since_last_save(server: &Server) -> u64 {
    server
        .propagation
        .appended()
        .saturating_sub(server.rdb.changes_at_last_save.load(Ordering::Relaxed))
}

/// The encoding thresholds in force, for decoding.
pub fn limits(server: &Server) -> persist::Limits {
    let hot = &server.config.hot;
    persist::Limits {
        list: crate::families::lists::limits(server),
        hash: store::HashLimits {
            listpack_entries: hot.hash_max_listpack_entries.load(Ordering::Relaxed) as usize,
            listpack_value: hot.hash_max_listpack_value.load(Ordering::Relaxed) as usize,
        },
        set: store::SetLimits {
            intset_entries: hot.set_max_intset_entries.load(Ordering::Relaxed) as usize,
            listpack_entries: hot.set_max_listpack_entries.load(Ordering::Relaxed) as usize,
            listpack_value: hot.set_max_listpack_value.load(Ordering::Relaxed) as usize,
        },
        zset: store::zset::Limits {
            listpack_entries: hot.zset_max_listpack_entries.load(Ordering::Relaxed) as usize,
            listpack_value: hot.zset_max_listpack_value.load(Ordering::Relaxed) as usize,
        },
        stream: stream_limits(server),
        databases: server.keyspace.database_count(),
    }
}

fn stream_limits(server: &Server) -> store::stream::NodeLimits {
    let hot = &server.config.hot;
    store::stream::NodeLimits {
        max_bytes: hot.stream_node_max_bytes.load(Ordering::Relaxed).max(0) as usize,
        max_entries: hot.stream_node_max_entries.load(Ordering::Relaxed).max(0) as usize,
    }
}

/// How values are written (DUMP and files).
pub fn encode_options(server: &Server) -> EncodeOptions {
    EncodeOptions {
        compress: server.config.get_bool("rdbcompression"),
        stream: stream_limits(server),
        list_fill: server
            .config
            .hot
            .list_max_listpack_size
            .load(Ordering::Relaxed),
    }
}

/// `dir`/`dbfilename`.
pub fn rdb_path(server: &Server) -> PathBuf {
    Path::new(&server.config.get("dir")).join(server.config.get("dbfilename"))
}

/// What a load did.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub empty_keys_skipped: u64,
    pub functions: u64,
    pub version: u16,
    /// Bytes the RDB took (an AOF's RDB preamble is followed by commands).
    pub bytes_read: usize,
}

/// Gives the loader the shard of a key.
pub trait ShardAccess {
    fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard;
    /// The key is stored: a loader that locks shard by shard lets go of its shard here.
    fn done_with_key(&mut self) {}
}

impl ShardAccess for crate::context::LockedMany<'_> {
    fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        crate::context::LockedMany::shard(self, database, key)
    }
}

impl ShardAccess for Vec<Vec<parking_lot::MutexGuard<'_, Shard>>> {
    fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        &mut self[database][shard_index(key)]
    }
}

/// Locks the shard of the key being loaded, for that key only (the start-up load): commands
/// allowed while loading (INFO counting keys among them) wait for one key at most, never
/// for the load to move on — a dump lists its keys shard by shard, and a reader walking the
/// shards in the same order would otherwise follow the loader to its end.
struct ShardByShard<'k> {
    keyspace: &'k store::keyspace::Keyspace,
    current: Option<(usize, usize, parking_lot::MutexGuard<'k, Shard>)>,
}

impl ShardAccess for ShardByShard<'_> {
    fn shard(&mut self, database: usize, key: &[u8]) -> &mut Shard {
        let index = shard_index(key);
        let same = matches!(&self.current, Some((held_database, held_index, _))
            if *held_database == database && *held_index == index);
        if !same {
            // The previous guard is released before the next is taken.
            self.current = None;
            let guard = self.keyspace.database(database).lock_shard(index);
            self.current = Some((database, index, guard));
        }
        let Some((_, _, guard)) = self.current.as_mut() else {
            unreachable!("a shard was just locked");
        };
        guard
    }

    fn done_with_key(&mut self) {
        self.current = None;
    }
}

struct LoadSink<'a, S: ShardAccess> {
    shards: &'a mut S,
    now_ms: u64,
    stats: LoadStats,
    functions: Vec<Vec<u8>>,
    /// The start-up load reports its progress (INFO's `loading_*`) and obeys `key-load-delay`.
    startup: Option<StartupProgress<'a>>,
}

struct StartupProgress<'a> {
    loading: &'a crate::loading::Loading,
    key_load_delay: i64,
    reported_bytes: usize,
    keys: u64,
}

impl<S: ShardAccess> Sink for LoadSink<'_, S> {
    fn entry(&mut self, entry: LoadedEntry) -> Result<(), persist::Error> {
        if entry
            .expire_at_ms
            .is_some_and(|expire_at_ms| expire_at_ms <= self.now_ms)
        {
            self.stats.keys_expired += 1;
            return Ok(());
        }
        let shard = self.shards.shard(entry.database, &entry.key);
        if shard.contains(&entry.key, self.now_ms) {
            return Err(persist::Error::new(format!(
                "Duplicated key '{}' found in RDB file (DB {})",
                String::from_utf8_lossy(&entry.key),
                entry.database
            )));
        }
        shard.insert(&entry.key, entry.value, entry.expire_at_ms, self.now_ms);
        if entry.frequency.is_some() || entry.idle_seconds.is_some() {
            if let Some(mut stored) = shard.lookup_untouched(&entry.key, self.now_ms) {
                if let Some(frequency) = entry.frequency {
                    stored.entry_mut().set_frequency(frequency, self.now_ms);
                }
                if let Some(idle_seconds) = entry.idle_seconds {
                    stored
                        .entry_mut()
                        .set_idle_seconds(idle_seconds, self.now_ms);
                }
            }
        }
        self.shards.done_with_key();
        self.stats.keys_loaded += 1;
        Ok(())
    }

    fn function(&mut self, source: Vec<u8>) {
        self.functions.push(source);
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        if let Some(startup) = &self.startup {
            if name == b"used-mem" {
                let bytes = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse().ok());
                startup.loading.set_rdb_used_memory(bytes.unwrap_or(0));
            }
        }
    }

    fn progress(&mut self, bytes_read: usize) {
        if let Some(startup) = &mut self.startup {
            let delta = bytes_read.saturating_sub(startup.reported_bytes);
            startup.reported_bytes = bytes_read;
            startup.loading.progress(delta as u64);
            startup.keys += 1;
            crate::loading::key_load_delay(startup.key_load_delay, startup.keys);
        }
    }
}

/// Loads RDB `bytes` into shards the caller holds (keys already there make it fail).
pub fn load_into<S: ShardAccess>(
    server: &Server,
    shards: &mut S,
    bytes: &[u8],
) -> Result<LoadStats, String> {
    load_with(server, shards, bytes, None)
}

fn load_with<'a, S: ShardAccess>(
    server: &'a Server,
    shards: &'a mut S,
    bytes: &[u8],
    startup: Option<StartupProgress<'a>>,
) -> Result<LoadStats, String> {
    let limits = limits(server);
    let mut sink = LoadSink {
        shards,
        now_ms: unix_time_ms(),
        stats: LoadStats::default(),
        functions: Vec::new(),
        startup,
    };
    let result = persist::rdb::load(bytes, &limits, &mut sink);
    let LoadSink {
        mut stats,
        functions,
        ..
    } = sink;
    let found = result.map_err(|error| error.to_string())?;
    stats.version = found.version;
    stats.bytes_read = found.bytes_read;
    stats.functions = found.functions;
    stats.empty_keys_skipped = found.empty_keys_skipped;
    *server.rdb.functions.lock() = functions;
    server
        .rdb
        .last_load_keys_loaded
        .store(stats.keys_loaded, Ordering::Relaxed);
    server
        .rdb
        .last_load_keys_expired
        .store(stats.keys_expired, Ordering::Relaxed);
    Ok(stats)
}

/// Why the start-up load failed (the server then exits).
pub enum StartupLoadError {
    /// The file exists but cannot be read.
    Unreadable(String),
    /// Its content is not a valid RDB file.
    Corrupt(String),
}

/// Loads the RDB file at `path` into the keyspace (start-up; the AOF's RDB preamble), and its
/// function libraries into the scripting engine. Only while nothing else writes: keys are
/// locked shard by shard.
pub fn load_rdb_file(server: &Server, path: &Path) -> Result<LoadStats, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    load_rdb_bytes(server, &bytes)
}

/// [`load_rdb_file`] for a file already read (or a master's payload): a load into an empty
/// keyspace nobody else writes, one shard locked at a time, its progress shown in INFO.
pub fn load_rdb_bytes(server: &Server, bytes: &[u8]) -> Result<LoadStats, String> {
    server.loading.add_file(bytes.len() as u64);
    let stats = {
        let mut shards = ShardByShard {
            keyspace: &server.keyspace,
            current: None,
        };
        let startup = StartupProgress {
            loading: &server.loading,
            key_load_delay: server.config.get_i64("key-load-delay"),
            reported_bytes: 0,
            keys: 0,
        };
        load_with(server, &mut shards, bytes, Some(startup))?
    };
    install_libraries(server);
    Ok(stats)
}

/// Replaces the scripting engine's function libraries with those the last RDB load found
/// (`RdbState::functions`). Called once the load's shard locks are released: the engine's lock
/// is never taken while shards are held, as a running script holds it and waits for shards.
pub fn install_libraries(server: &Server) {
    let sources = server.rdb.functions.lock().clone();
    let mut engine = server.scripting.engine();
    engine.flush_libraries();
    for code in &sources {
        if let Err(error) = engine.load_library(code, true) {
            tracing::warn!("Failed loading a function library from the RDB: {error}");
        }
    }
    libraries_changed(server, &engine);
}

/// After the engine's libraries changed (FUNCTION LOAD, DELETE, FLUSH, RESTORE, a load): the
/// sources RDB files and replicas' payloads carry, and the counts INFO shows.
pub fn libraries_changed(server: &Server, engine: &crate::scripting::engine::Engine) {
    *server.rdb.functions.lock() = engine
        .libraries
        .values()
        .map(|library| library.code.clone())
        .collect();
    let (libraries, functions) = engine.counts();
    let scripting = &server.scripting;
    scripting.library_count.store(libraries, Ordering::Relaxed);
    scripting.function_count.store(functions, Ordering::Relaxed);
}

/// Loads `dir`/`dbfilename` at start-up if it exists (not when `appendonly yes`: the AOF is
/// the source then). Logs as Redis does; an error is fatal for the caller.
pub fn load_at_startup(server: &Server) -> Result<(), StartupLoadError> {
    if server.config.get_bool("appendonly") {
        return Ok(());
    }
    let path = rdb_path(server);
    if !path.exists() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let bytes =
        std::fs::read(&path).map_err(|error| StartupLoadError::Unreadable(error.to_string()))?;
    let stats = load_rdb_bytes(server, &bytes).map_err(StartupLoadError::Corrupt)?;
    if stats.empty_keys_skipped > 0 {
        tracing::warn!(
            "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
            stats.keys_loaded,
            stats.keys_expired,
            stats.empty_keys_skipped
        );
    } else {
        tracing::info!(
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            stats.keys_loaded,
            stats.keys_expired
        );
    }
    tracing::info!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// The RDB file visitor: one writer, a SELECTDB whenever the database changes.
pub struct RdbVisitor {
    writer: FileWriter<BufWriter<std::fs::File>>,
    database: Option<usize>,
    temporary: PathBuf,
}

/// What an RDB file is written for: its temporary name and its `aof-base` aux field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RdbPurpose {
    /// SAVE (and shutdown): `temp-<pid>.rdb`.
    Save,
    /// BGSAVE: `temp-bgsave-<pid>.rdb`.
    BackgroundSave,
    /// The base of a rewritten AOF: `temp-rewriteaof-<pid>.rdb`, `aof-base` 1.
    AofBase,
}

impl RdbVisitor {
    /// Creates the temporary file in `dir` and writes the header and aux fields.
    pub fn create(server: &Server, purpose: RdbPurpose) -> std::io::Result<Self> {
        let prefix = match purpose {
            RdbPurpose::Save => "",
            RdbPurpose::BackgroundSave => "bgsave-",
            RdbPurpose::AofBase => "rewriteaof-",
        };
        let aof_base = if purpose == RdbPurpose::AofBase {
            "1"
        } else {
            "0"
        };
        let directory = PathBuf::from(server.config.get("dir"));
        let temporary = directory.join(format!("temp-{}{}.rdb", prefix, std::process::id()));
        let file = std::fs::File::create(&temporary)?;
        let mut writer = FileWriter::new(
            BufWriter::with_capacity(1 << 16, file),
            encode_options(server),
            server.config.get_bool("rdbchecksum"),
        );
        let now_s = (unix_time_ms() / 1000).to_string();
        let used_memory = crate::allocator::allocated_bytes().to_string();
        for (name, value) in [
            ("redis-ver", crate::config::REDIS_VERSION.to_string()),
            ("redis-bits", "64".to_string()),
            ("ctime", now_s),
            ("used-mem", used_memory),
            ("aof-base", aof_base.to_string()),
        ] {
            writer.aux(name.as_bytes(), value.as_bytes())?;
        }
        for source in server.rdb.functions.lock().iter() {
            writer.function(source)?;
        }
        Ok(RdbVisitor {
            writer,
            database: None,
            temporary,
        })
    }

    /// Ends the file, fsyncs it, renames it over `target` and fsyncs the directory.
    pub fn finish(self, target: &Path) -> std::io::Result<u64> {
        let (buffered, size) = self.writer.finish()?;
        let file = buffered.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temporary, target)?;
        if let Some(parent) = target.parent() {
            if let Ok(directory) = std::fs::File::open(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            }) {
                let _ = directory.sync_all();
            }
        }
        Ok(size)
    }

    /// Removes the temporary file after a failure.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.temporary);
    }
}

impl SnapshotVisitor for RdbVisitor {
    fn entry(
        &mut self,
        database: usize,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        if self.database != Some(database) {
            self.writer.select_database(database)?;
            self.database = Some(database);
        }
        self.writer.entry(key, value, expire_at_ms)
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Encodes `shards` (every shard, held by the caller) as one RDB image in memory: a replica's
/// full resynchronisation payload, an AOF base (`aof_base` sets the `aof-base` aux field).
pub fn encode_dataset<'s>(
    server: &Server,
    shards: impl Iterator<Item = (usize, &'s Shard)>,
    aof_base: bool,
) -> std::io::Result<Vec<u8>> {
    let mut writer = FileWriter::new(
        Vec::new(),
        encode_options(server),
        server.config.get_bool("rdbchecksum"),
    );
    let now_s = (unix_time_ms() / 1000).to_string();
    for (name, value) in [
        ("redis-ver", crate::config::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", now_s),
        ("used-mem", crate::allocator::allocated_bytes().to_string()),
        ("aof-base", if aof_base { "1" } else { "0" }.to_string()),
    ] {
        writer.aux(name.as_bytes(), value.as_bytes())?;
    }
    for source in server.rdb.functions.lock().iter() {
        writer.function(source)?;
    }
    let mut current = None;
    for (database, shard) in shards {
        for entry in shard.iter() {
            if current != Some(database) {
                writer.select_database(database)?;
                current = Some(database);
            }
            writer.entry(entry.key(), &entry.value, entry.expire_at_ms())?;
        }
    }
    Ok(writer.finish()?.0)
}

/// Writes every shard the caller holds to the RDB file (SAVE, SHUTDOWN, DEBUG RELOAD).
pub fn save_locked(
    server: &Server,
    locked: &mut crate::context::LockedMany<'_>,
) -> Result<(), String> {
    save_shards(
        server,
        locked
            .iter_mut()
            .map(|(database, _, shard)| (database, &*shard)),
    )
}

/// Saves the dataset outside any command (a SIGTERM's final save): enters the script barrier
/// in shared mode, as a command would, then holds every shard while writing.
pub fn save_everything(server: &Server) -> Result<(), String> {
    let _shared = server.barrier.enter_shared(|| Ok::<(), ()>(()));
    let guards = server.keyspace.lock_everything();
    save_shards(
        server,
        guards
            .iter()
            .enumerate()
            .flat_map(|(database, shards)| shards.iter().map(move |shard| (database, &**shard))),
    )
}

fn save_shards<'s>(
    server: &Server,
    shards: impl Iterator<Item = (usize, &'s Shard)>,
) -> Result<(), String> {
    let changes = server.propagation.appended();
    let result = (|| -> std::io::Result<()> {
        let mut visitor = RdbVisitor::create(server, RdbPurpose::Save)?;
        for (database, shard) in shards {
            for entry in shard.iter() {
                if let Err(error) =
                    visitor.entry(database, entry.key(), &entry.value, entry.expire_at_ms())
                {
                    visitor.abandon();
                    return Err(error);
                }
            }
        }
        visitor.finish(&rdb_path(server))?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            tracing::info!("DB saved on disk");
            record_success(server, changes);
            Ok(())
        }
        Err(error) => {
            tracing::warn!("Failed saving the DB: {error}");
            server.rdb.last_bgsave_ok.store(false, Ordering::Relaxed);
            Err(error.to_string())
        }
    }
}

fn record_success(server: &Server, changes: u64) {
    let state = &server.rdb;
    state.changes_at_last_save.store(changes, Ordering::Relaxed);
    state
        .last_save_unix_s
        .store(unix_time_ms() / 1000, Ordering::Relaxed);
    state.last_bgsave_ok.store(true, Ordering::Relaxed);
    state.saves.fetch_add(1, Ordering::Relaxed);
}

/// Starts a background save of `keys_total` keys; the caller holds every shard (the
/// snapshot's moment) and releases them right after. Fails when one is already running.
pub fn start_background_save(server: &Arc<Server>, keys_total: u64) -> Result<(), String> {
    let state = &server.rdb;
    if state.bgsave_in_progress.swap(true, Ordering::AcqRel) {
        return Err("Background save already in progress".into());
    }
    let visitor = match RdbVisitor::create(server, RdbPurpose::BackgroundSave) {
        Ok(visitor) => visitor,
        Err(error) => {
            state.bgsave_in_progress.store(false, Ordering::Release);
            state.last_bgsave_ok.store(false, Ordering::Relaxed);
            state
                .last_failed_attempt_unix_s
                .store(unix_time_ms() / 1000, Ordering::Relaxed);
            return Err(format!("Can't save in background: {error}"));
        }
    };
    let started_ms = unix_time_ms();
    state
        .bgsave_started_unix_ms
        .store(started_ms, Ordering::Relaxed);
    let changes = server.propagation.appended();
    let snapshot = match Snapshot::begin(server, Box::new(visitor), keys_total) {
        Ok(snapshot) => snapshot,
        Err(visitor) => {
            // An AOF rewrite's snapshot walks (BGSAVE refuses that case before getting here).
            abandon_visitor(visitor);
            state.bgsave_in_progress.store(false, Ordering::Release);
            return Err("Background save already in progress".into());
        }
    };
    tracing::info!("Background saving started");
    *state.running.lock() = Some(snapshot.clone());
    let background = server.clone();
    let spawned = std::thread::Builder::new()
        .name("cinnabar-bgsave".into())
        .spawn(move || {
            let server = background;
            let result = match snapshot.clone().walk(&server) {
                Ok(visitor) => {
                    // The rename and a cancellation exclude each other: a FLUSHALL that
                    // cancels now either comes before (nothing is renamed) or after (its own
                    // save, if any, replaces the file).
                    let mut running = server.rdb.running.lock();
                    let result = if snapshot.is_cancelled() {
                        abandon_visitor(visitor);
                        Err(None)
                    } else {
                        finish_visitor(visitor, &rdb_path(&server)).map_err(Some)
                    };
                    *running = None;
                    result
                }
                Err(failure) => {
                    abandon_visitor(failure.visitor);
                    *server.rdb.running.lock() = None;
                    Err((!failure.cancelled).then_some(failure.error))
                }
            };
            let state = &server.rdb;
            state.last_bgsave_seconds.store(
                ((unix_time_ms() - started_ms) / 1000) as i64,
                Ordering::Relaxed,
            );
            match result {
                Ok(()) => {
                    tracing::info!("Background saving terminated with success");
                    record_success(&server, changes);
                }
                // Cancelled (FLUSHALL, BGSAVE CANCEL): not a failure, as Redis does not count
                // the child it kills itself; the changes stay unsaved.
                Err(None) => tracing::warn!("Background saving cancelled"),
                Err(Some(error)) => {
                    tracing::warn!("Background saving error: {error}");
                    state.last_bgsave_ok.store(false, Ordering::Relaxed);
                    state
                        .last_failed_attempt_unix_s
                        .store(unix_time_ms() / 1000, Ordering::Relaxed);
                }
            }
            state.bgsave_in_progress.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        server.keyspace.set_observer(None);
        *server.rdb.running.lock() = None;
        server
            .rdb
            .bgsave_in_progress
            .store(false, Ordering::Release);
        return Err("Can't save in background: thread creation failed".into());
    }
    Ok(())
}

/// Cancels the running BGSAVE, if any (FLUSHALL, BGSAVE CANCEL): its thread stops and removes
/// its temporary file; `rdb_bgsave_in_progress` drops to 0 when it has. Returns whether one
/// was running.
/// The running BGSAVE's progress: (keys written, keys at its moment).
pub fn background_save_progress(server: &Server) -> Option<(u64, u64)> {
    server
        .rdb
        .running
        .lock()
        .as_ref()
        .map(|snapshot| snapshot.progress())
}

pub fn cancel_background_save(server: &Server) -> bool {
    match server.rdb.running.lock().as_ref() {
        Some(snapshot) => {
            snapshot.cancel();
            true
        }
        None => false,
    }
}

/// Removes the temporary file of an RDB visitor that will not be used.
pub fn abandon_visitor(visitor: Box<dyn SnapshotVisitor>) {
    if let Ok(visitor) = visitor.into_any().downcast::<RdbVisitor>() {
        visitor.abandon();
    }
}

fn finish_visitor(visitor: Box<dyn SnapshotVisitor>, target: &Path) -> std::io::Result<()> {
    let visitor = visitor
        .into_any()
        .downcast::<RdbVisitor>()
        .map_err(|_| std::io::Error::other("snapshot visitor is not an RDB writer"))?;
    visitor.finish(target).map(|_| ())
}

/// Why writes are refused while the dataset cannot be persisted (Redis's `MISCONF`).
pub enum DiskError {
    /// The last BGSAVE failed (with save points and `stop-writes-on-bgsave-error yes`).
    Rdb,
    /// The AOF cannot write: the last error's text.
    Aof(String),
}

impl DiskError {
    /// The reply to a write command (and PING).
    pub fn message(&self) -> String {
        match self {
            DiskError::Rdb => MISCONF_RDB.to_string(),
            DiskError::Aof(error) => format!("MISCONF Errors writing to the AOF file: {error}"),
        }
    }

    /// The reply to a script that may write (a shebang without `no-writes`, or a function).
    pub fn script_message(&self) -> String {
        match self {
            DiskError::Rdb => "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.".to_string(),
            DiskError::Aof(_) => self.message(),
        }
    }
}

/// Whether writes are refused because the dataset cannot be persisted. Two atomic loads while
/// all is well.
pub fn disk_error(server: &Server) -> Option<DiskError> {
    if !server.rdb.last_bgsave_ok.load(Ordering::Relaxed)
        && server.config.get_bool("stop-writes-on-bgsave-error")
        && has_save_points(server)
    {
        return Some(DiskError::Rdb);
    }
    server.aof.write_error().map(DiskError::Aof)
}

/// Redis's MISCONF reply for a failed BGSAVE.
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Whether `save` configures any save point (FLUSHALL then saves the empty dataset at once).
pub fn has_save_points(server: &Server) -> bool {
    !save_points(server).is_empty()
}

/// The `save` configuration as (seconds, changes) pairs.
fn save_points(server: &Server) -> Vec<(u64, u64)> {
    let words: Vec<u64> = server
        .config
        .get("save")
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    words
        .chunks_exact(2)
        .map(|pair| (pair[0], pair[1]))
        .collect()
}

/// Called periodically: starts a BGSAVE when a save point is reached (or one was scheduled).
pub fn check_save_points(server: &Arc<Server>) {
    let state = &server.rdb;
    if state.bgsave_in_progress.load(Ordering::Acquire) {
        return;
    }
    let now_s = unix_time_ms() / 1000;
    let scheduled = state.bgsave_scheduled.load(Ordering::Relaxed);
    let changes = changes_since_last_save(server);
    let last_save = state.last_save_unix_s.load(Ordering::Relaxed);
    let retry_allowed = state.last_bgsave_ok.load(Ordering::Relaxed)
        || now_s.saturating_sub(state.last_failed_attempt_unix_s.load(Ordering::Relaxed)) > 5;
    let due = save_points(server).iter().any(|&(seconds, minimum)| {
        changes >= minimum && now_s.saturating_sub(last_save) >= seconds
    });
    // One snapshot at a time, as Redis runs one child: a save waits for the AOF rewrite.
    if server.aof.rewrite_in_progress() {
        return;
    }
    if (due && retry_allowed) || scheduled {
        state.bgsave_scheduled.store(false, Ordering::Relaxed);
        if due {
            tracing::info!("{changes} changes in some seconds. Saving...");
        }
        // As a command would: shared in the script barrier, then every shard in order.
        let result = {
            let _shared = server.barrier.enter_shared(|| Ok::<(), ()>(()));
            let everything = server.keyspace.lock_everything();
            let keys: usize = everything.iter().flatten().map(|shard| shard.len()).sum();
            start_background_save(server, keys as u64)
        };
        if let Err(error) = result {
            tracing::warn!("{error}");
        }
    }
}
