//! Persistence commands: DUMP, RESTORE, MIGRATE, SAVE, BGSAVE, LASTSAVE. The payload and file
//! formats are the `persist` crate's; files, snapshots and save points are `crate::rdb`'s.

use std::sync::atomic::Ordering;

use persist::rdb::{decode_payload, dump_payload, PayloadError};

use crate::arguments::{integer, is};
use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};
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
            let verb: &[u8] = if context.server.config.get_bool("lazyfree-lazy-server-del") {
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

/// MIGRATE host port <key | ""> destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key [key ...]]
///
/// As Redis: the keys are sent as RESTORE commands (DUMP payloads, relative TTLs) over a
/// blocking connection made for the call, with `timeout` milliseconds for the connection and
/// each reply; the command holds the keys' shards meanwhile, so the keys move atomically. Keys
/// the target accepted are deleted here (unless COPY) and propagated as one DEL. Redis caches
/// the connection for ten seconds; this one is closed after each call.
fn migrate(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut copy = false;
    let mut replace = false;
    let mut auth: Vec<&[u8]> = Vec::new();
    let mut first_key = 3;
    let mut key_count = 1;
    let mut index = 6;
    while index < args.len() {
        let more = args.len() - index - 1;
        let arg = args[index];
        if is(arg, "COPY") {
            copy = true;
        } else if is(arg, "REPLACE") {
            replace = true;
        } else if is(arg, "AUTH") {
            if more == 0 {
                return Err(errors::SYNTAX.into());
            }
            auth = vec![args[index + 1]];
            index += 1;
        } else if is(arg, "AUTH2") {
            if more < 2 {
                return Err(errors::SYNTAX.into());
            }
            auth = vec![args[index + 1], args[index + 2]];
            index += 2;
        } else if is(arg, "KEYS") {
            if !args[3].is_empty() {
                return Err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set \
                            to the empty string"
                        .into(),
                );
            }
            first_key = index + 1;
            key_count = more;
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let timeout_ms = integer(args[5])?;
    let target_database = integer(args[4])?;
    let timeout = std::time::Duration::from_millis(if timeout_ms <= 0 {
        1000
    } else {
        timeout_ms as u64
    });
    let keys = &args[first_key..first_key + key_count];
    let database = context.database();
    let now_ms = context.now_ms;
    let options = crate::rdb::encode_options(context.server);
    let mut locked = context.lock_keys(keys.iter().copied());
    // The keys that exist, with their payload and TTL (in milliseconds, 0 for none).
    let mut present: Vec<(&[u8], Vec<u8>, u64)> = Vec::new();
    for key in keys {
        if present.iter().any(|(seen, _, _)| seen == key) {
            continue;
        }
        if let Some(entry) = locked.shard(database, key).lookup(key, now_ms) {
            let ttl = entry
                .expire_at_ms()
                .map_or(0, |at| at.saturating_sub(now_ms).max(1));
            present.push((key, dump_payload(entry.value(), &options), ttl));
        }
    }
    if present.is_empty() {
        for (database, _, shard) in locked.iter_mut() {
            crate::context::flush_expired(context.server, context.scope, database, shard);
        }
        drop(locked);
        context.reply.simple(b"NOKEY");
        return Ok(());
    }
    let mut request = Vec::new();
    let mut push = |words: &[&[u8]]| {
        request.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
        for word in words {
            request.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            request.extend_from_slice(word);
            request.extend_from_slice(b"\r\n");
        }
    };
    if !auth.is_empty() {
        let mut words: Vec<&[u8]> = vec![b"AUTH"];
        words.extend(&auth);
        push(&words);
    }
    let target_text = target_database.to_string();
    push(&[b"SELECT", target_text.as_bytes()]);
    for (key, payload, ttl) in &present {
        let ttl_text = ttl.to_string();
        let mut words: Vec<&[u8]> = vec![b"RESTORE", key, ttl_text.as_bytes(), payload];
        if replace {
            words.push(b"REPLACE");
        }
        push(&words);
    }
    let host = String::from_utf8_lossy(args[1]).into_owned();
    let port = String::from_utf8_lossy(args[2]).into_owned();
    let Some(mut target) = MigrateTarget::connect(&host, &port, timeout) else {
        drop(locked);
        return Err("IOERR error or timeout connecting to the client".into());
    };
    if target.write(&request).is_err() {
        drop(locked);
        return Err("IOERR error or timeout writing to target instance".into());
    }
    // AUTH's and SELECT's replies, then one per key; the first error is the reply.
    let mut target_error: Option<Vec<u8>> = None;
    let mut socket_error = false;
    for _ in 0..usize::from(!auth.is_empty()) + 1 {
        match target.read_line() {
            Ok(line) if line.starts_with(b"-") => {
                target_error.get_or_insert(line);
            }
            Ok(_) => {}
            Err(_) => socket_error = true,
        }
    }
    let mut moved: Vec<&[u8]> = Vec::new();
    if !socket_error {
        for (key, _, _) in &present {
            match target.read_line() {
                Ok(line) if line.starts_with(b"-") => {
                    target_error.get_or_insert(line);
                }
                Ok(_) if target_error.is_none() => moved.push(key),
                Ok(_) => {}
                Err(_) => {
                    socket_error = true;
                    break;
                }
            }
        }
    }
    if !copy && !moved.is_empty() {
        for key in &moved {
            if locked.shard(database, key).remove(key, now_ms).is_some() {
                context.notify(EventClass::Generic, "del", key);
            }
        }
        for (database, _, shard) in locked.iter_mut() {
            crate::context::flush_expired(context.server, context.scope, database, shard);
        }
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend(&moved);
        locked.propagate(database, &del);
    }
    drop(locked);
    if let Some(line) = target_error {
        return Err(format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&line[1..])
        )
        .into());
    }
    if socket_error {
        return Err("IOERR error or timeout reading to target instance".into());
    }
    context.reply.ok();
    Ok(())
}

/// MIGRATE's blocking connection to the target instance.
struct MigrateTarget {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl MigrateTarget {
    fn connect(host: &str, port: &str, timeout: std::time::Duration) -> Option<MigrateTarget> {
        use std::net::ToSocketAddrs;
        let port: u16 = port.parse().ok()?;
        let addresses = (host, port).to_socket_addrs().ok()?;
        for address in addresses {
            if let Ok(stream) = std::net::TcpStream::connect_timeout(&address, timeout) {
                stream.set_read_timeout(Some(timeout)).ok()?;
                stream.set_write_timeout(Some(timeout)).ok()?;
                let _ = stream.set_nodelay(true);
                return Some(MigrateTarget {
                    stream: std::io::BufReader::new(stream),
                });
            }
        }
        None
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(self.stream.get_mut(), bytes)
    }

    /// One reply line without its CRLF (MIGRATE's commands all reply with one line).
    fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let read = std::io::BufRead::read_until(&mut self.stream, b'\n', &mut line)?;
        if read == 0 || !line.ends_with(b"\n") {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        while line
            .last()
            .is_some_and(|byte| matches!(byte, b'\r' | b'\n'))
        {
            line.pop();
        }
        Ok(line)
    }
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

/// BGSAVE [SCHEDULE]
fn bgsave(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(args[1], "SCHEDULE") => true,
        _ => return Err(errors::SYNTAX.into()),
    };
    let state = &context.server.rdb;
    if state.bgsave_in_progress.load(Ordering::Acquire) {
        if schedule {
            state.bgsave_scheduled.store(true, Ordering::Relaxed);
            context.reply.simple(b"Background saving scheduled");
            return Ok(());
        }
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
    let locked = context.lock_everything();
    let result = crate::rdb::start_background_save(&server);
    drop(locked);
    match result {
        Ok(()) => {
            context.reply.simple(b"Background saving started");
            Ok(())
        }
        Err(message) => Err(format!("ERR {message}").into()),
    }
}

/// LASTSAVE
fn lastsave(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let last = context.server.rdb.last_save_unix_s.load(Ordering::Relaxed);
    context.reply.integer(last as i64);
    Ok(())
}
