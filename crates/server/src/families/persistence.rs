//! Persistence commands: DUMP, RESTORE, MIGRATE (DUMP and RESTORE over the network), SAVE,
//! BGSAVE, LASTSAVE. The payload and file formats are the `persist` crate's; files, snapshots
//! and save points are `crate::rdb`'s.

use std::sync::atomic::Ordering;

use persist::rdb::{decode_payload, dump_payload, PayloadError};

use crate::arguments::{integer, is};
use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("dump", dump);
    table.handle("restore", restore);
    table.handle("migrate", migrate);
    table.handle("save", save);
    table.handle("bgsave", bgsave);
    table.handle("lastsave", lastsave);
}

/// DUMP key
fn dump(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let options = crate::rdb::encode_options(context.server);
    let payload = {
        let mut shard = context.lock(args[1]);
        let Some(entry) = shard.lookup(args[1], context.now_ms) else {
            drop(shard);
            context.reply.null();
            return Ok(());
        };
        dump_payload(entry.value(), &options)
    };
    context.reply.bulk(&payload);
    Ok(())
}

/// Longest reply line MIGRATE reads from its target (replies to AUTH, SELECT, RESTORE are one
/// line; a longer one is a protocol failure).
const MIGRATE_REPLY_LINE_BYTES_MAX: usize = 64 * 1024;
/// MIGRATE's timeout when it is given as 0 or less, as in Redis.
const MIGRATE_TIMEOUT_DEFAULT_MS: u64 = 1000;

/// Why talking to MIGRATE's target failed (the IOERR Redis replies).
enum MigrateIo {
    Connecting,
    Writing,
    Reading,
}

impl MigrateIo {
    fn error(&self) -> CommandError {
        match self {
            MigrateIo::Connecting => "IOERR error or timeout connecting to the client".into(),
            MigrateIo::Writing => "IOERR error or timeout writing to target instance".into(),
            MigrateIo::Reading => "IOERR error or timeout reading to target instance".into(),
        }
    }
}

/// Sends `request` to host:port and reads `replies` reply lines (each without its CRLF), or as
/// many as came before a failure.
fn exchange(
    host: &str,
    port: u16,
    timeout: std::time::Duration,
    request: &[u8],
    replies: usize,
) -> Result<Vec<Vec<u8>>, (MigrateIo, Vec<Vec<u8>>)> {
    use std::io::{BufRead, Read, Write};
    use std::net::ToSocketAddrs;
    let address = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or((MigrateIo::Connecting, Vec::new()))?;
    let stream = std::net::TcpStream::connect_timeout(&address, timeout)
        .map_err(|_| (MigrateIo::Connecting, Vec::new()))?;
    let _ = stream.set_nodelay(true);
    let configured = stream
        .set_read_timeout(Some(timeout))
        .and(stream.set_write_timeout(Some(timeout)));
    if configured.is_err() {
        return Err((MigrateIo::Connecting, Vec::new()));
    }
    (&stream)
        .write_all(request)
        .map_err(|_| (MigrateIo::Writing, Vec::new()))?;
    let mut reader = std::io::BufReader::new((&stream).take(u64::MAX));
    let mut lines = Vec::with_capacity(replies);
    for _ in 0..replies {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(MIGRATE_REPLY_LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line);
        if !matches!(read, Ok(length) if length > 0) || line.last() != Some(&b'\n') {
            return Err((MigrateIo::Reading, lines));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        lines.push(line);
    }
    Ok(lines)
}

fn encode_request(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2
/// username password] [KEYS key [key ...]]
fn migrate(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut copy = false;
    let mut replace = false;
    let mut credentials: Option<(Option<&[u8]>, &[u8])> = None;
    let mut keys: &[&[u8]] = &args[3..4];
    let mut index = 6;
    while index < args.len() {
        let remaining = args.len() - 1 - index;
        let option = args[index];
        if is(option, "COPY") {
            copy = true;
        } else if is(option, "REPLACE") {
            replace = true;
        } else if is(option, "AUTH") && remaining >= 1 {
            credentials = Some((None, args[index + 1]));
            index += 1;
        } else if is(option, "AUTH2") && remaining >= 2 {
            credentials = Some((Some(args[index + 1]), args[index + 2]));
            index += 2;
        } else if is(option, "KEYS") {
            if !args[3].is_empty() {
                return Err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string".into());
            }
            keys = &args[index + 1..];
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let timeout_ms = integer(args[5])?;
    let database = integer(args[4])?;
    let timeout_ms = if timeout_ms <= 0 {
        MIGRATE_TIMEOUT_DEFAULT_MS
    } else {
        timeout_ms as u64
    };
    // What to send: each live key's payload and remaining time to live.
    let options = crate::rdb::encode_options(context.server);
    let mut migrating: Vec<(&[u8], Vec<u8>, Vec<u8>)> = Vec::new();
    for key in keys {
        let mut shard = context.lock(key);
        let Some(entry) = shard.lookup(key, context.now_ms) else {
            continue;
        };
        let ttl_ms = entry
            .expire_at_ms()
            .map_or(0, |at| at.saturating_sub(context.now_ms).max(1));
        let payload = dump_payload(entry.value(), &options);
        migrating.push((key, ttl_ms.to_string().into_bytes(), payload));
    }
    if migrating.is_empty() {
        context.reply.simple(b"NOKEY");
        return Ok(());
    }
    let mut request = Vec::new();
    if let Some((user, password)) = credentials {
        match user {
            Some(user) => encode_request(&mut request, &[b"AUTH", user, password]),
            None => encode_request(&mut request, &[b"AUTH", password]),
        }
    }
    let database_text = database.to_string();
    encode_request(&mut request, &[b"SELECT", database_text.as_bytes()]);
    for (key, ttl, payload) in &migrating {
        let mut restore: Vec<&[u8]> = vec![b"RESTORE", key, ttl, payload];
        if replace {
            restore.push(b"REPLACE");
        }
        encode_request(&mut request, &restore);
    }
    let preamble = usize::from(credentials.is_some()) + 1;
    let host = String::from_utf8_lossy(args[1]).into_owned();
    let port = integer(args[2])
        .ok()
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| MigrateIo::Connecting.error())?;
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let replies_wanted = preamble + migrating.len();
    // The worker thread waits on the network (Redis blocks the whole server here): tokio
    // moves this worker's other tasks elsewhere meanwhile.
    let exchanged =
        tokio::task::block_in_place(|| exchange(&host, port, timeout, &request, replies_wanted));
    let (lines, failure) = match exchanged {
        Ok(lines) => (lines, None),
        Err((MigrateIo::Reading, lines)) if !lines.is_empty() => (lines, Some(MigrateIo::Reading)),
        Err((failure, _)) => return Err(failure.error()),
    };
    // A refused AUTH or SELECT fails every key; a refused RESTORE fails its key.
    let preamble_error = lines
        .iter()
        .take(preamble)
        .find(|line| line.first() == Some(&b'-'));
    let mut target_error: Option<Vec<u8>> = preamble_error.cloned();
    let mut moved: Vec<&[u8]> = Vec::new();
    for (position, (key, _, _)) in migrating.iter().enumerate() {
        let Some(line) = lines.get(preamble + position) else {
            break;
        };
        if preamble_error.is_some() || line.first() == Some(&b'-') {
            target_error.get_or_insert_with(|| line.clone());
        } else if !copy {
            moved.push(key);
        }
    }
    if !moved.is_empty() {
        let mut locked = context.lock_keys(moved.iter().copied());
        let database = context.database();
        for key in &moved {
            if locked
                .shard(database, key)
                .remove(key, context.now_ms)
                .is_some()
            {
                context.notify(EventClass::Generic, "del", key);
            }
        }
        let mut propagated: Vec<&[u8]> = vec![b"DEL"];
        propagated.extend(moved.iter().copied());
        locked.propagate(database, &propagated);
    }
    if let Some(error) = target_error {
        let message = String::from_utf8_lossy(&error[1..]).into_owned();
        return Err(format!("ERR Target instance replied with error: {message}").into());
    }
    if let Some(failure) = failure {
        return Err(failure.error());
    }
    context.reply.ok();
    Ok(())
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let key = args[1];
    let mut replace = false;
    let mut absolute_ttl = false;
    let mut idle_seconds: Option<u64> = None;
    let mut frequency: Option<u8> = None;
    let mut index = 4;
    while index < args.len() {
        let arg = args[index];
        let has_value = index + 1 < args.len();
        if is(arg, "REPLACE") {
            replace = true;
        } else if is(arg, "ABSTTL") {
            absolute_ttl = true;
        } else if is(arg, "IDLETIME") && has_value && frequency.is_none() {
            let idle = integer(args[index + 1])?;
            if idle < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0".into());
            }
            idle_seconds = Some(idle as u64);
            index += 1;
        } else if is(arg, "FREQ") && has_value && idle_seconds.is_none() {
            let count = integer(args[index + 1])?;
            if !(0..=255).contains(&count) {
                return Err("ERR Invalid FREQ value, must be >= 0 and <= 255".into());
            }
            frequency = Some(count as u8);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let now_ms = context.now_ms;
    let mut shard = context.lock(key);
    if !replace && shard.contains(key, now_ms) {
        return Err("BUSYKEY Target key name already exists.".into());
    }
    let ttl = integer(args[2])?;
    if ttl < 0 {
        return Err("ERR Invalid TTL value, must be >= 0".into());
    }
    let limits = crate::rdb::limits(context.server);
    let value = match decode_payload(args[3], &limits) {
        Ok(value) => value,
        Err(PayloadError::VersionOrChecksum) => {
            return Err("ERR DUMP payload version or checksum are wrong".into())
        }
        Err(PayloadError::BadFormat(_)) => return Err("ERR Bad data format".into()),
    };
    let deleted = replace && shard.remove(key, now_ms).is_some();
    let expire_at_ms = match ttl {
        0 => None,
        ttl if absolute_ttl => Some(ttl as u64),
        ttl => Some((ttl as u64).saturating_add(now_ms)),
    };
    if expire_at_ms.is_some_and(|at| at <= now_ms) {
        if deleted {
            // The deletion comes from REPLACE: propagated as the server deletes (Redis does not
            // count it as an expiry).
            let verb: &[u8] = if context
                .server
                .config
                .hot
                .lazyfree_lazy_server_del
                .load(Ordering::Relaxed)
            {
                b"UNLINK"
            } else {
                b"DEL"
            };
            shard.propagate(&[verb, key]);
            drop(shard);
            context.notify(EventClass::Generic, "del", key);
        }
        context.reply.ok();
        return Ok(());
    }
    shard.insert(key, value, expire_at_ms, now_ms);
    if let Some(mut entry) = shard.lookup_untouched(key, now_ms) {
        if let Some(frequency) = frequency {
            entry.entry_mut().set_frequency(frequency, now_ms);
        }
        if let Some(idle_seconds) = idle_seconds {
            entry.entry_mut().set_idle_seconds(idle_seconds, now_ms);
        }
    }
    match expire_at_ms {
        Some(at) if !absolute_ttl => {
            let at_text = at.to_string();
            let mut rewritten: Vec<&[u8]> = args.to_vec();
            rewritten[2] = at_text.as_bytes();
            rewritten.push(b"ABSTTL");
            shard.propagate(&rewritten);
        }
        _ => shard.propagate(args),
    }
    drop(shard);
    context.notify(EventClass::Generic, "restore", key);
    context.reply.ok();
    Ok(())
}

/// SAVE
fn save(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    if context
        .server
        .rdb
        .bgsave_in_progress
        .load(Ordering::Acquire)
    {
        return Err("ERR Background save already in progress".into());
    }
    let mut locked = context.lock_everything();
    crate::rdb::save_locked(context.server, &mut locked).map_err(|_| "ERR")?;
    drop(locked);
    context.reply.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE | CANCEL]
fn bgsave(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(args[1], "SCHEDULE") => true,
        2 if is(args[1], "CANCEL") => return bgsave_cancel(context),
        _ => return Err(errors::SYNTAX.into()),
    };
    let state = &context.server.rdb;
    if state.bgsave_in_progress.load(Ordering::Acquire) {
        return Err("ERR Background save already in progress".into());
    }
    if context.server.aof.rewrite_in_progress() {
        // One snapshot at a time (Redis: one child process).
        if schedule {
            state.bgsave_scheduled.store(true, Ordering::Relaxed);
            context.reply.simple(b"Background saving scheduled");
            return Ok(());
        }
        return Err("ERR An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
    }
    let Some(server) = context.server.arc() else {
        return Err("ERR Background save unavailable".into());
    };
    let mut locked = context.lock_everything();
    let keys: usize = locked.iter_mut().map(|(_, _, shard)| shard.len()).sum();
    let result = crate::rdb::start_background_save(&server, keys as u64);
    drop(locked);
    match result {
        Ok(()) => {
            context.reply.simple(b"Background saving started");
            Ok(())
        }
        Err(message) => Err(format!("ERR {message}").into()),
    }
}

/// BGSAVE CANCEL: ends the running BGSAVE (its temporary file is removed) or forgets a
/// scheduled one (Valkey 8's option).
fn bgsave_cancel(context: &mut Context) -> CommandResult {
    let state = &context.server.rdb;
    if state.bgsave_in_progress.load(Ordering::Acquire)
        && crate::rdb::cancel_background_save(context.server)
    {
        tracing::info!("Background saving will be aborted due to user request");
        context.reply.simple(b"Background saving cancelled");
    } else if state.bgsave_scheduled.swap(false, Ordering::Relaxed) {
        tracing::info!("Scheduled background saving will be cancelled due to user request");
        context
            .reply
            .simple(b"Scheduled background saving cancelled");
    } else {
        return Err("ERR Background saving is currently not in progress or scheduled".into());
    }
    Ok(())
}

/// LASTSAVE
fn lastsave(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let last = context.server.rdb.last_save_unix_s.load(Ordering::Relaxed);
    context.reply.integer(last as i64);
    Ok(())
}
