//! Describing a dataset as commands (an AOF-format base file).
//!
//! A rewrite's base is a point-in-time snapshot (`snapshot.rs`) whose moment is the switch to
//! the new incremental file; with `aof-use-rdb-preamble no` its visitor is a
//! [`CommandVisitor`], which writes each key as the commands that rebuild it (SET / RPUSH /
//! SADD / ZADD / HMSET / XADD + XSETID + XGROUP CREATE + XCLAIM), at most
//! [`REWRITE_ITEMS_PER_COMMAND`] elements per command as Redis does, then PEXPIREAT for a TTL
//! (and HPEXPIREAT for expiring hash fields). [`serialize_database`] does the same for shards
//! the caller holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use store::stream::StreamId;
use store::{Shard, Value};

use super::format::{encode_command, REWRITE_ITEMS_PER_COMMAND};

/// A snapshot visitor writing the AOF-format base: the commands of every key alive at the
/// snapshot's moment, a SELECT before each run of keys of another database (shards arrive in
/// any order).
pub struct CommandVisitor {
    file: std::io::BufWriter<std::fs::File>,
    temporary: PathBuf,
    /// The snapshot's moment: keys and hash fields expired by then are left out.
    now_ms: u64,
    database: Option<usize>,
    scratch: Vec<u8>,
    written_bytes: u64,
}

impl CommandVisitor {
    /// Creates the temporary file `temporary`.
    pub fn create(temporary: PathBuf, now_ms: u64) -> std::io::Result<Self> {
        let file = std::fs::File::create(&temporary)?;
        Ok(CommandVisitor {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            temporary,
            now_ms,
            database: None,
            scratch: Vec::new(),
            written_bytes: 0,
        })
    }

    /// Writes a `#TS:<unix seconds>` annotation (`aof-timestamp-enabled`), before any key.
    pub fn annotate_timestamp(&mut self, unix_s: u64) -> std::io::Result<()> {
        let line = super::format::timestamp_annotation(unix_s);
        std::io::Write::write_all(&mut self.file, &line)?;
        self.written_bytes += line.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs the file and renames it to `target`; returns its size.
    pub fn finish(self, target: &Path) -> std::io::Result<u64> {
        let file = self.file.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temporary, target)?;
        Ok(self.written_bytes)
    }

    /// Removes the unfinished file (a failed rewrite).
    pub fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.temporary);
    }
}

impl crate::snapshot::SnapshotVisitor for CommandVisitor {
    fn entry(
        &mut self,
        database: usize,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
    ) -> std::io::Result<()> {
        if expire_at_ms.is_some_and(|at| at <= self.now_ms) {
            return Ok(());
        }
        self.scratch.clear();
        if self.database != Some(database) {
            let number = database.to_string();
            encode_command(&mut self.scratch, &[b"SELECT", number.as_bytes()]);
            self.database = Some(database);
        }
        serialize_value(&mut self.scratch, key, value, self.now_ms);
        if let Some(expire_at_ms) = expire_at_ms {
            let at = expire_at_ms.to_string();
            encode_command(&mut self.scratch, &[b"PEXPIREAT", key, at.as_bytes()]);
        }
        self.file.write_all(&self.scratch)?;
        self.written_bytes += self.scratch.len() as u64;
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Appends the commands that rebuild database `database`'s shards to `output` (a SELECT first
/// when the database holds live keys).
pub fn serialize_database<'s>(
    output: &mut Vec<u8>,
    database: usize,
    shards: impl Iterator<Item = &'s Shard>,
    now_ms: u64,
) {
    let mut selected = false;
    for shard in shards {
        for entry in shard.iter() {
            if entry.is_expired(now_ms) {
                continue;
            }
            if !selected {
                let number = database.to_string();
                encode_command(output, &[b"SELECT", number.as_bytes()]);
                selected = true;
            }
            serialize_value(output, entry.key(), &entry.value, now_ms);
            if let Some(expire_at_ms) = entry.expire_at_ms() {
                let at = expire_at_ms.to_string();
                encode_command(output, &[b"PEXPIREAT", entry.key(), at.as_bytes()]);
            }
        }
    }
}

/// Emits `prefix` + items in batches of at most [`REWRITE_ITEMS_PER_COMMAND`] items (an item
/// being one or more arguments).
fn batched(output: &mut Vec<u8>, prefix: &[&[u8]], items: &[Vec<Vec<u8>>]) {
    for batch in items.chunks(REWRITE_ITEMS_PER_COMMAND) {
        let mut args: Vec<&[u8]> = prefix.to_vec();
        for item in batch {
            args.extend(item.iter().map(Vec::as_slice));
        }
        encode_command(output, &args);
    }
}

pub fn serialize_value(output: &mut Vec<u8>, key: &[u8], value: &Value, now_ms: u64) {
    match value {
        Value::String(string) => {
            let mut scratch = itoa::Buffer::new();
            encode_command(output, &[b"SET", key, string.as_bytes(&mut scratch)]);
        }
        Value::List(list) => {
            let mut items = Vec::with_capacity(list.len());
            list.for_each_in(0, list.len(), |item| {
                items.push(vec![item.with_bytes(<[u8]>::to_vec)]);
            });
            batched(output, &[b"RPUSH", key], &items);
        }
        Value::Set(set) => {
            let items: Vec<Vec<Vec<u8>>> = set
                .iter()
                .map(|member| vec![member.with_bytes(<[u8]>::to_vec)])
                .collect();
            batched(output, &[b"SADD", key], &items);
        }
        Value::SortedSet(set) => {
            let items: Vec<Vec<Vec<u8>>> = set
                .iter()
                .map(|(member, score)| {
                    vec![
                        store::zset::format_score(score).into_bytes(),
                        member.to_vec(),
                    ]
                })
                .collect();
            batched(output, &[b"ZADD", key], &items);
        }
        Value::Hash(hash) => {
            let mut items = Vec::new();
            let mut expiring = Vec::new();
            for (field, value, expire_at_ms) in hash.iter_with_expiry() {
                if expire_at_ms != 0 && expire_at_ms <= now_ms {
                    continue;
                }
                let field = field.to_vec();
                if expire_at_ms != 0 {
                    expiring.push((field.clone(), expire_at_ms));
                }
                items.push(vec![field, value.to_vec()]);
            }
            batched(output, &[b"HMSET", key], &items);
            for (field, expire_at_ms) in expiring {
                let at = expire_at_ms.to_string();
                encode_command(
                    output,
                    &[b"HPEXPIREAT", key, at.as_bytes(), b"FIELDS", b"1", &field],
                );
            }
        }
        Value::Stream(stream) => serialize_stream(output, key, stream),
    }
}

fn serialize_stream(output: &mut Vec<u8>, key: &[u8], stream: &store::stream::Stream) {
    let entries = stream.range(StreamId::MIN, StreamId::MAX, None, false);
    if entries.is_empty() {
        // An empty stream still exists: create it with one entry (ID 0-1, valid even when the
        // stream's last ID is 0-0) trimmed away at once, as Redis does; the XSETID below
        // restores the real last ID and counters.
        encode_command(output, &[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    }
    for entry in &entries {
        let id = entry.id.to_bytes();
        let mut args: Vec<&[u8]> = vec![b"XADD", key, &id];
        args.extend(entry.fields.iter().map(Vec::as_slice));
        encode_command(output, &args);
    }
    let last = stream.last_id().to_bytes();
    let added = stream.entries_added().to_string();
    let max_deleted = stream.max_deleted_id().to_bytes();
    encode_command(
        output,
        &[
            b"XSETID",
            key,
            &last,
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &max_deleted,
        ],
    );
    for (name, group) in stream.groups() {
        let group_last = group.last_id.to_bytes();
        let entries_read = group.entries_read.to_string();
        encode_command(
            output,
            &[
                b"XGROUP",
                b"CREATE",
                key,
                name,
                &group_last,
                b"ENTRIESREAD",
                entries_read.as_bytes(),
            ],
        );
        for (id, pending) in &group.pending {
            let id = id.to_bytes();
            let time = pending.delivery_time_ms.to_string();
            let count = pending.delivery_count.to_string();
            encode_command(
                output,
                &[
                    b"XCLAIM",
                    key,
                    name,
                    &pending.consumer,
                    b"0",
                    &id,
                    b"TIME",
                    time.as_bytes(),
                    b"RETRYCOUNT",
                    count.as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ],
            );
        }
        for (consumer, state) in &group.consumers {
            if state.pending.is_empty() {
                encode_command(output, &[b"XGROUP", b"CREATECONSUMER", key, name, consumer]);
            }
        }
    }
}
