//! DEBUG: the testing and introspection subcommands the Tcl suite and client libraries use.
//! Reachable only where `enable-debug-command` allows (checked by the dispatcher).

use std::sync::atomic::Ordering;
use std::time::Duration;

use resp::Protocol;
use store::digest::{to_hex, value_digest, DatasetDigest};
use store::Value;

use crate::arguments::is;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::server::random_hex_id;

use super::info::lru_clock;

/// DEBUG subcommand [arg ...]
pub fn debug(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let subcommand = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match (subcommand.as_str(), args.len()) {
        ("help", 2) => help(context),
        ("sleep", 3) => {
            let seconds = lenient_float(args[2]);
            let microseconds = (seconds * 1_000_000.0) as i64;
            if microseconds > 0 {
                std::thread::sleep(Duration::from_micros(microseconds as u64));
            }
            context.reply.ok();
        }
        ("set-active-expire", 3) => {
            let enabled = lenient_integer(args[2]) != 0;
            context
                .server
                .active_expire_enabled
                .store(enabled, Ordering::Relaxed);
            context.reply.ok();
        }
        ("set-disable-deny-scripts", 3) => {
            let allowed = lenient_integer(args[2]) != 0;
            context
                .server
                .scripting
                .running
                .noscript_allowed
                .store(allowed, Ordering::Relaxed);
            context.reply.ok();
        }
        ("pause-cron", 3) => {
            let paused = lenient_integer(args[2]) != 0;
            context.server.cron_paused.store(paused, Ordering::Relaxed);
            context.reply.ok();
        }
        // The reply buffer grows and shrinks with each batch's replies, with no cron resizing
        // it and no peak to reset: there is nothing to switch, and the switches are accepted
        // for the suites that turn them.
        ("replybuffer", 4) if is(args[2], "resizing") || is(args[2], "peak-reset-time") => {
            context.reply.ok();
        }
        ("populate", 3..=5) => populate(context, &args[2..])?,
        ("object", 3) | ("object", 4) => object(context, args[2])?,
        ("reload", _) => reload(context, &args[2..])?,
        ("loadaof", 2) => load_aof(context)?,
        ("digest", 2) => {
            let digest = dataset_digest(context);
            context.reply.simple(digest.as_bytes());
        }
        ("digest-value", _) => {
            context.reply.array(args.len() - 2);
            for key in &args[2..] {
                let digest = {
                    let mut shard = context.lock(key);
                    match shard.peek(key, context.now_ms) {
                        Some(entry) => value_digest(&entry.value, entry.expire_at_ms()),
                        None => [0u8; 20],
                    }
                };
                context.reply.simple(to_hex(&digest).as_bytes());
            }
        }
        ("protocol", 3) => protocol(context, args[2])?,
        ("change-repl-id", 2) => {
            tracing::info!("Changing replication IDs after receiving DEBUG change-repl-id");
            *context.server.replication_ids.lock() = (random_hex_id(), "0".repeat(40));
            context.reply.ok();
        }
        ("stringmatch-test", 2) | ("stringmatch-len", 2) => {
            glob_fuzz_test();
            context
                .reply
                .simple(b"Apparently Redis did not crash: test passed");
        }
        ("aof-flush-sleep", 3) => {
            // Redis's atoi: a number that does not parse is 0.
            let microseconds = std::str::from_utf8(args[2])
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0);
            context.server.aof.set_flush_sleep(microseconds);
            context.reply.ok();
        }
        ("log", 3) => {
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(args[2]));
            context.reply.ok();
        }
        ("error", 3) => {
            return Err(String::from_utf8_lossy(args[2]).into_owned().into());
        }
        ("jmap", 2) => context.reply.ok(),
        ("config-rewrite-force-all", 2) => {
            if let Err(error) = context.server.config.rewrite(true) {
                return Err(format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {error}").into());
            }
            context.reply.ok();
        }
        ("quicklist-packed-threshold", 3) => {
            let bytes = crate::config::parse_memory(&String::from_utf8_lossy(args[2]));
            let valid = bytes.is_some_and(|bytes| {
                let bytes = if bytes == 0 { 1 << 30 } else { bytes };
                bytes > 0 && store::list::set_packed_threshold(bytes as u64)
            });
            if !valid {
                return Err(
                    "ERR argument must be a memory value bigger than 1 and smaller than 4gb".into(),
                );
            }
            context.reply.ok();
        }
        _ => return Err(crate::context::subcommand_syntax_error("DEBUG", args[1])),
    }
    Ok(())
}

/// DEBUG POPULATE count [prefix] [size]: creates string keys `<prefix>:<n>` (prefix `key`)
/// for n below count, skipping those that exist, holding `value:<n>` (or, with a size, that
/// text cut or padded with zero bytes to `size` bytes). As in Redis, the keys are neither
/// propagated nor notified.
fn populate(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let count = crate::arguments::integer(args[0])?;
    if count < 0 {
        return Err(errors::NOT_POSITIVE.into());
    }
    let size = match args.get(2) {
        Some(size) => {
            let size = crate::arguments::integer(size)?;
            if size < 0 {
                return Err(errors::NOT_POSITIVE.into());
            }
            size as usize
        }
        None => 0,
    };
    let prefix: &[u8] = args.get(1).copied().unwrap_or(b"key");
    let now_ms = context.now_ms;
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut value = Vec::with_capacity(size.max(26));
    for index in 0..count as u64 {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(format!(":{index}").as_bytes());
        let mut shard = context.lock(&key);
        if shard.contains(&key, now_ms) {
            continue;
        }
        value.clear();
        value.extend_from_slice(format!("value:{index}").as_bytes());
        if size > 0 {
            value.resize(size, 0);
        }
        shard.insert(
            &key,
            Value::String(store::value::StringValue::from_bytes(&value)),
            None,
            now_ms,
        );
    }
    context.reply.ok();
    Ok(())
}

/// C's `strtod` on a prefix: the longest leading number, 0 when there is none.
/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves the RDB file, empties the dataset and loads
/// the file back, all while holding every shard.
fn reload(context: &mut Context, options: &[&[u8]]) -> CommandResult {
    let (mut merge, mut no_flush, mut no_save) = (false, false, false);
    for option in options {
        match option.to_ascii_uppercase().as_slice() {
            b"MERGE" => merge = true,
            b"NOFLUSH" => no_flush = true,
            b"NOSAVE" => no_save = true,
            _ => {
                return Err(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
                )
            }
        }
    }
    let server = context.server;
    let mut locked = context.lock_everything();
    if !no_save {
        crate::rdb::save_locked(server, &mut locked)
            .map_err(|_| "ERR Error trying to save the DB")?;
    }
    let path = crate::rdb::rdb_path(server);
    let bytes = std::fs::read(&path)
        .map_err(|_| "ERR Error trying to load the RDB dump, check server logs.")?;
    // Kept libraries (NOFLUSH) meet the file's: without MERGE one that exists already fails
    // the load, as in Redis; with MERGE the file's replace them.
    let file_libraries = if merge || no_flush {
        Some(library_sources(server, &bytes)?)
    } else {
        None
    };
    if no_flush && !merge {
        let existing = file_libraries
            .iter()
            .flatten()
            .find_map(|code| server.scripting.engine().existing_library(code));
        if let Some(name) = existing {
            tracing::warn!("Error trying to load the RDB dump: Library {name} already exists");
            return Err("ERR Error trying to load the RDB dump, check server logs.".into());
        }
    }
    if !no_flush {
        for (_, _, shard) in locked.iter_mut() {
            shard.clear();
        }
    }
    if merge || no_flush {
        // Keys already present are replaced by the file's.
        let now_ms = context.now_ms;
        let limits = crate::rdb::limits(server);
        struct Replace<'l, 's> {
            locked: &'l mut crate::context::LockedMany<'s>,
            now_ms: u64,
        }
        impl persist::rdb::Sink for Replace<'_, '_> {
            fn entry(&mut self, entry: persist::rdb::LoadedEntry) -> Result<(), persist::Error> {
                if entry.expire_at_ms.is_some_and(|at| at <= self.now_ms) {
                    return Ok(());
                }
                self.locked.shard(entry.database, &entry.key).insert(
                    &entry.key,
                    entry.value,
                    entry.expire_at_ms,
                    self.now_ms,
                );
                Ok(())
            }
        }
        let mut sink = Replace {
            locked: &mut locked,
            now_ms,
        };
        persist::rdb::load(&bytes, &limits, &mut sink).map_err(|error| {
            tracing::warn!("Error trying to load the RDB dump: {error}");
            "ERR Error trying to load the RDB dump, check server logs."
        })?;
    } else if let Err(error) = crate::rdb::load_into(server, &mut locked, &bytes) {
        tracing::warn!("Error trying to load the RDB dump: {error}");
        return Err("ERR Error trying to load the RDB dump, check server logs.".into());
    }
    drop(locked);
    match file_libraries {
        Some(sources) => {
            let mut engine = server.scripting.engine();
            for code in &sources {
                if let Err(error) = engine.load_library(code, true) {
                    tracing::warn!("Failed loading a function library from the RDB: {error}");
                }
            }
            crate::rdb::libraries_changed(server, &engine);
        }
        None => crate::rdb::install_libraries(server),
    }
    tracing::info!("DB reloaded by DEBUG RELOAD");
    context.reply.ok();
    Ok(())
}

/// The function libraries an RDB file holds (their sources).
fn library_sources(
    server: &crate::server::Server,
    bytes: &[u8],
) -> Result<Vec<Vec<u8>>, CommandError> {
    struct Libraries(Vec<Vec<u8>>);
    impl persist::rdb::Sink for Libraries {
        fn entry(&mut self, _entry: persist::rdb::LoadedEntry) -> Result<(), persist::Error> {
            Ok(())
        }
        fn function(&mut self, source: Vec<u8>) {
            self.0.push(source);
        }
    }
    let mut libraries = Libraries(Vec::new());
    persist::rdb::load(bytes, &crate::rdb::limits(server), &mut libraries).map_err(|error| {
        tracing::warn!("Error trying to load the RDB dump: {error}");
        CommandError::from("ERR Error trying to load the RDB dump, check server logs.")
    })?;
    Ok(libraries.0)
}

/// DEBUG LOADAOF: flushes the AOF to disk, empties the dataset and replays the AOF.
fn load_aof(context: &mut Context) -> CommandResult {
    let server = context.server;
    let empty = || {
        let mut locked = context.lock_everything();
        for (_, _, shard) in locked.iter_mut() {
            shard.watched.touch_where(|_| true);
            shard.clear();
        }
        server.tracking.invalidate_all();
    };
    crate::aof::load_again(server, empty).map_err(|error| {
        tracing::warn!("DEBUG LOADAOF failed: {error}");
        crate::context::CommandError::from(error)
    })?;
    context.reply.ok();
    Ok(())
}

fn lenient_float(arg: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(arg);
    let text = text.trim_start();
    (1..=text.len())
        .rev()
        .filter(|end| text.is_char_boundary(*end))
        .find_map(|end| text[..end].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// C's `atoi`: leading digits with an optional sign, 0 when there are none.
fn lenient_integer(arg: &[u8]) -> i64 {
    lenient_float(arg).trunc() as i64
}

/// DEBUG OBJECT key: Redis's one-line description of a value.
fn object(context: &mut Context, key: &[u8]) -> CommandResult {
    let now_ms = context.now_ms;
    let line = {
        let shard = context.lock(key);
        let entry = shard
            .peek_even_expired(key)
            .ok_or_else(|| crate::context::CommandError::from(errors::NO_SUCH_KEY))?;
        let idle_s = entry.idle_seconds(now_ms);
        let lru = lru_clock(now_ms.saturating_sub(idle_s * 1000));
        let mut line = format!(
            "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{lru} lru_seconds_idle:{idle_s}",
            entry as *const store::Entry,
            entry.value.encoding_name(),
            serialized_length(&entry.value),
        );
        // A quicklist's shape, as Redis appends it.
        if let Value::List(list) = &entry.value {
            if let Some((nodes, fill, compress_depth)) = list.quicklist_shape() {
                let average = list.len() as f64 / nodes.max(1) as f64;
                line.push_str(&format!(
                    " ql_nodes:{nodes} ql_avg_node:{average:.2} ql_listpack_max:{fill} ql_compressed:{} ql_uncompressed_size:{}",
                    i64::from(compress_depth != 0),
                    list.heap_bytes(),
                ));
            }
        }
        line
    };
    context.reply.simple(line.as_bytes());
    Ok(())
}

/// An estimate of the value's size in an RDB file (DEBUG OBJECT `serializedlength`).
fn serialized_length(value: &Value) -> usize {
    match value {
        Value::String(string) => match string.as_integer() {
            Some(integer) if i32::try_from(integer).is_ok() && string.encoding_name() == "int" => {
                if i8::try_from(integer).is_ok() {
                    2
                } else if i16::try_from(integer).is_ok() {
                    3
                } else {
                    5
                }
            }
            _ => {
                let length = string.len();
                let prefix = if length < 64 {
                    1
                } else if length < 16_384 {
                    2
                } else if length <= u32::MAX as usize {
                    5
                } else {
                    9
                };
                prefix + length
            }
        },
        // Until RDB serialisation exists, the value's memory is the estimate.
        other => other.heap_bytes(),
    }
}

/// DEBUG DIGEST: the digest of every database, taken with every shard locked.
fn dataset_digest(context: &mut Context) -> String {
    let mut digest = DatasetDigest::default();
    let mut everything = context.lock_everything();
    let mut current: Option<usize> = None;
    for (database, _, shard) in everything.iter_mut() {
        if shard.is_empty() {
            continue;
        }
        if current != Some(database) {
            digest.begin_database(database as u32);
            current = Some(database);
        }
        for entry in shard.iter() {
            digest.add_entry(entry.key(), &entry.value, entry.expire_at_ms());
        }
    }
    drop(everything);
    to_hex(&digest.finish())
}

/// DEBUG PROTOCOL type: one reply of each RESP type, for client tests.
fn protocol(context: &mut Context, kind: &[u8]) -> CommandResult {
    let resp3 = context.client.protocol == Protocol::Resp3;
    let reply = &mut context.reply;
    if is(kind, "string") {
        reply.bulk(b"Hello World");
    } else if is(kind, "integer") {
        reply.integer(12345);
    } else if is(kind, "double") {
        // Redis's fixed sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        reply.double(3.141);
    } else if is(kind, "bignum") {
        let digits = b"1234567999999999999999999999999999999";
        if resp3 {
            let buffer = reply.buffer();
            buffer.push(b'(');
            buffer.extend_from_slice(digits);
            buffer.extend_from_slice(b"\r\n");
        } else {
            reply.bulk(digits);
        }
    } else if is(kind, "null") {
        reply.null();
    } else if is(kind, "array") || is(kind, "set") {
        if is(kind, "array") {
            reply.array(3);
        } else {
            reply.set(3);
        }
        for value in 0..3 {
            reply.integer(value);
        }
    } else if is(kind, "map") {
        reply.map(3);
        for value in 0..3 {
            reply.integer(value);
            reply.boolean(value == 1);
        }
    } else if is(kind, "attrib") {
        if resp3 {
            reply.buffer().extend_from_slice(b"|1\r\n");
            reply.bulk(b"key-popularity");
            reply.array(2);
            reply.bulk(b"key:123");
            reply.integer(90);
        }
        reply.bulk(b"Some real reply following the attribute");
    } else if is(kind, "push") {
        if !resp3 {
            return Err("ERR RESP2 is not supported by this command".into());
        }
        reply.push(2);
        reply.bulk(b"server-cpu-usage");
        reply.integer(42);
        reply.bulk(b"Some real reply following the push reply");
    } else if is(kind, "true") {
        reply.boolean(true);
    } else if is(kind, "false") {
        reply.boolean(false);
    } else if is(kind, "verbatim") {
        reply.verbatim(b"txt", b"This is a verbatim\nstring");
    } else {
        return Err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false".into());
    }
    Ok(())
}

/// Matches random patterns against random subjects, to show the matcher never panics.
fn glob_fuzz_test() {
    const ALPHABET: &[u8] = b"abc*?[]^-\\";
    for _ in 0..10_000 {
        let pattern: Vec<u8> = (0..rand::random::<u8>() % 16)
            .map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()])
            .collect();
        let subject: Vec<u8> = (0..rand::random::<u8>() % 16)
            .map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()])
            .collect();
        let _ = store::glob::glob_match(&pattern, &subject, false);
    }
}

fn help(context: &mut Context) {
    super::reply_help(
        context,
        "DEBUG",
        &[
            "AOF-FLUSH-SLEEP <microsec>",
            "    Server will sleep before flushing the AOF, this is used for testing.",
            "CHANGE-REPL-ID",
            "    Change the replication IDs of the instance.",
            "    Dangerous: should be used only for testing the replication subsystem.",
            "CONFIG-REWRITE-FORCE-ALL",
            "    Like CONFIG REWRITE but writes all configuration options, including",
            "    keywords not listed in original configuration file or default values.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "LOADAOF",
            "    Flush the AOF buffers on disk and reload the AOF in memory.",
            "OBJECT <key>",
            "    Show low level info about `key` and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "PAUSE-CRON <0|1>",
            "    Stop periodic cron job processing.",
            "SET-DISABLE-DENY-SCRIPTS <0|1>",
            "    Allow scripts to run commands that are normally denied in scripts (a test knob).",
            "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
            "    Accepted; the reply buffer keeps no peak to reset.",
            "REPLYBUFFER RESIZING <0|1>",
            "    Accepted; no cron resizes the reply buffer.",
            "PROTOCOL <type>",
            "    Reply with a test value of the specified type. <type> can be: string,",
            "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
            "    true, false.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "QUICKLIST-PACKED-THRESHOLD <size>",
            "    Sets the threshold for elements to be inserted as plain vs packed nodes",
            "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "STRINGMATCH-TEST",
            "    Run a fuzz tester against the stringmatchlen() function.",
        ],
    );
}
