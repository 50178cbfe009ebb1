//! `check-rdb`: redis-check-rdb's report on an RDB file, line for line.
//!
//! # Model
//!
//! The file is walked record by record with persist's [`Cursor`] (values are decoded by the
//! loader's own decoder, so whatever the server would refuse, the check refuses). The walk keeps
//! the state Redis's tool keeps: what it is doing (`read-type`, `read-key`, ...), the key and
//! type being read, and the counts of keys, expiries and keys already expired. Every
//! informational line carries the offset where the record just read ends; an error carries the
//! offset where the read that failed started (a failed read consumes nothing), then the state,
//! then the counts. Two quirks are Redis's own and kept: the type reported before the first key
//! is type 0 (`string`), and an empty collection is an error (`Unexpected EOF reading RDB
//! file`), as Redis's loader returns no object for it.
//!
//! Error texts are Redis's for what the walk itself checks (signature, version, object type,
//! truncation, checksum); a value that does not decode reports the decoder's message.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use persist::rdb::{self, Cursor, Limits};

use crate::config::REDIS_VERSION;

/// What a check found: the lines as the tool prints them, and where the RDB ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    pub lines: Vec<String>,
    /// The offset just after the RDB (after its checksum) when it is sound: an AOF's preamble
    /// is followed by commands there.
    pub end: usize,
}

/// Checks the RDB file at `path` as redis-check-rdb does; whether it is sound, and the report's
/// lines (without line ends). A file that cannot be read is reported, as by Redis, with the
/// first line only.
pub fn report(path: &Path) -> (bool, Vec<String>) {
    let name = path.to_string_lossy();
    match std::fs::read(path) {
        Ok(data) => {
            let report = check(&name, &data, super::now_ms());
            (report.ok, report.lines)
        }
        Err(_) => (false, vec![format!("[offset 0] Checking RDB file {name}")]),
    }
}

/// `check-rdb <file>` (`program` names the tool in the usage line); returns the exit code.
pub fn main(program: &str, args: &[OsString], out: &mut dyn Write) -> i32 {
    if args.len() != 1 {
        eprintln!("Usage: {program} <rdb-file-name>");
        return 1;
    }
    if args[0] == "-v" || args[0] == "--version" {
        let _ = writeln!(out, "redis-check-rdb {REDIS_VERSION}");
        return 0;
    }
    let (ok, lines) = report(Path::new(&args[0]));
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    if ok {
        0
    } else {
        1
    }
}

/// Checks `data` (the file's bytes; `name` is what the report calls it) against the clock
/// `now_ms` (keys whose expiry is before it count as already expired).
pub fn check(name: &str, data: &[u8], now_ms: i64) -> Report {
    let mut walk = Walk {
        cursor: Cursor::new(data, 0),
        data,
        lines: Vec::new(),
        doing: Doing::Start,
        key: None,
        key_type: Some(0),
        keys: 0,
        expires: 0,
        already_expired: 0,
        now_ms,
    };
    walk.info(&format!("Checking RDB file {name}"));
    match walk.run() {
        Ok(()) => {
            walk.info("\\o/ RDB looks OK! \\o/");
            walk.counts();
            Report {
                ok: true,
                end: walk.cursor.position(),
                lines: walk.lines,
            }
        }
        Err(message) => {
            walk.error(&message);
            Report {
                ok: false,
                end: walk.cursor.position(),
                lines: walk.lines,
            }
        }
    }
}

/// What the walk was about to do, for the error report.
#[derive(Clone, Copy)]
enum Doing {
    Start,
    ReadType,
    ReadExpire,
    ReadKey,
    ReadObjectValue,
    CheckSum,
    ReadLength,
    ReadAux,
    ReadModuleAux,
    ReadFunctions,
}

impl Doing {
    fn name(self) -> &'static str {
        match self {
            Doing::Start => "start",
            Doing::ReadType => "read-type",
            Doing::ReadExpire => "read-expire",
            Doing::ReadKey => "read-key",
            Doing::ReadObjectValue => "read-object-value",
            Doing::CheckSum => "check-sum",
            Doing::ReadLength => "read-len",
            Doing::ReadAux => "read-aux",
            Doing::ReadModuleAux => "read-module-aux",
            Doing::ReadFunctions => "read-functions",
        }
    }
}

/// Redis 7.2's names of the value types, by type byte.
const TYPE_NAMES: [&str; 22] = [
    "string",
    "list-linked",
    "set-hashtable",
    "zset-v1",
    "hash-hashtable",
    "zset-v2",
    "module-pre-release",
    "module-value",
    "",
    "hash-zipmap",
    "list-ziplist",
    "set-intset",
    "zset-ziplist",
    "hash-ziplist",
    "quicklist",
    "stream",
    "hash-listpack",
    "zset-listpack",
    "quicklist-v2",
    "stream-v2",
    "set-listpack",
    "stream-v3",
];

/// A module value's opcodes (`RDB_MODULE_OPCODE_*`).
const MODULE_OPCODE_EOF: u64 = 0;
const MODULE_OPCODE_SIGNED: u64 = 1;
const MODULE_OPCODE_UNSIGNED: u64 = 2;
const MODULE_OPCODE_FLOAT: u64 = 3;
const MODULE_OPCODE_DOUBLE: u64 = 4;
const MODULE_OPCODE_STRING: u64 = 5;

const UNEXPECTED_EOF: &str = "Unexpected EOF reading RDB file";

struct Walk<'a> {
    data: &'a [u8],
    cursor: Cursor<'a>,
    lines: Vec<String>,
    doing: Doing,
    key: Option<Vec<u8>>,
    key_type: Option<u8>,
    keys: u64,
    expires: u64,
    already_expired: u64,
    now_ms: i64,
}

/// A failed read's message.
fn failed(error: persist::Error) -> String {
    error.0
}

impl Walk<'_> {
    fn info(&mut self, message: &str) {
        let offset = self.cursor.position();
        self.lines.push(format!("[offset {offset}] {message}"));
    }

    fn counts(&mut self) {
        self.lines.push(format!("[info] {} keys read", self.keys));
        self.lines.push(format!("[info] {} expires", self.expires));
        self.lines
            .push(format!("[info] {} already expired", self.already_expired));
    }

    fn error(&mut self, message: &str) {
        self.lines.push("--- RDB ERROR DETECTED ---".into());
        self.info(message);
        self.lines.push(format!(
            "[additional info] While doing: {}",
            self.doing.name()
        ));
        if let Some(key) = &self.key {
            self.lines
                .push(format!("[additional info] Reading key '{}'", c_text(key)));
        }
        if let Some(key_type) = self.key_type {
            let name = TYPE_NAMES
                .get(key_type as usize)
                .copied()
                .unwrap_or("unknown");
            self.lines.push(format!(
                "[additional info] Reading type {key_type} ({name})"
            ));
        }
        self.counts();
    }

    fn run(&mut self) -> Result<(), String> {
        let header = self
            .cursor
            .bytes(9)
            .map_err(|_| UNEXPECTED_EOF.to_string())?;
        if &header[..5] != b"REDIS" {
            return Err("Wrong signature trying to load DB from file".into());
        }
        // atoi: blanks, a sign, the leading digits.
        let version = super::c_strtol(&header[5..]).value;
        if version < 1 || version > rdb::VERSION_MAX as i64 {
            return Err(format!("Can't handle RDB format version {version}"));
        }
        let mut expire_at_ms: Option<i64> = None;
        loop {
            self.doing = Doing::ReadType;
            let object_type = self.cursor.byte().map_err(failed)?;
            match object_type {
                rdb::OPCODE_EXPIRETIME => {
                    self.doing = Doing::ReadExpire;
                    let raw = self.cursor.bytes(4).map_err(failed)?;
                    let seconds = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    expire_at_ms = Some(seconds as i64 * 1000);
                }
                rdb::OPCODE_EXPIRETIME_MS => {
                    self.doing = Doing::ReadExpire;
                    expire_at_ms = Some(self.i64_le()?);
                }
                rdb::OPCODE_FREQ => {
                    self.cursor.byte().map_err(failed)?;
                }
                rdb::OPCODE_IDLE => {
                    self.cursor.length().map_err(failed)?;
                }
                rdb::OPCODE_EOF => break,
                rdb::OPCODE_SELECTDB => {
                    self.doing = Doing::ReadLength;
                    let database = self.cursor.length().map_err(failed)?;
                    self.info(&format!("Selecting DB ID {database}"));
                }
                rdb::OPCODE_RESIZEDB => {
                    self.doing = Doing::ReadLength;
                    self.cursor.length().map_err(failed)?;
                    self.cursor.length().map_err(failed)?;
                }
                rdb::OPCODE_AUX => {
                    self.doing = Doing::ReadAux;
                    let name = self.cursor.string().map_err(failed)?;
                    let value = self.cursor.string().map_err(failed)?;
                    self.info(&format!(
                        "AUX FIELD {} = '{}'",
                        c_text(&name),
                        c_text(&value)
                    ));
                }
                rdb::OPCODE_MODULE_AUX => {
                    self.doing = Doing::ReadModuleAux;
                    let module_id = self.cursor.length().map_err(failed)?;
                    let when_opcode = self.cursor.length().map_err(failed)?;
                    self.cursor.length().map_err(failed)?;
                    if when_opcode != MODULE_OPCODE_UNSIGNED {
                        return Err("bad when_opcode".into());
                    }
                    let module = module_name(module_id);
                    self.info(&format!("MODULE AUX for: {module}"));
                    self.module_value(&module)?;
                }
                rdb::OPCODE_FUNCTION_PRE_GA => {
                    return Err(format!(
                        "Pre-release function format not supported {version}"
                    ));
                }
                rdb::OPCODE_FUNCTION2 => {
                    self.doing = Doing::ReadFunctions;
                    if self.cursor.string().is_err() {
                        return Err("Failed loading library, Failed loading library payload".into());
                    }
                }
                object_type => {
                    if !is_object_type(object_type) {
                        return Err(format!("Invalid object type: {object_type}"));
                    }
                    self.key_type = Some(object_type);
                    self.doing = Doing::ReadKey;
                    self.key = Some(self.cursor.string().map_err(failed)?);
                    self.keys += 1;
                    self.doing = Doing::ReadObjectValue;
                    self.value(object_type)?;
                    if let Some(expire_at_ms) = expire_at_ms.take() {
                        self.expires += 1;
                        if expire_at_ms < self.now_ms {
                            self.already_expired += 1;
                        }
                    }
                    self.key = None;
                    self.key_type = None;
                }
            }
        }
        if version >= 5 {
            self.doing = Doing::CheckSum;
            let expected = persist::crc64::update(0, &self.data[..self.cursor.position()]);
            let stored = self.i64_le()? as u64;
            if stored == 0 {
                self.info("RDB file was saved with checksum disabled: no check performed.");
            } else if stored != expected {
                return Err("RDB CRC error".into());
            } else {
                self.info("Checksum OK");
            }
        }
        Ok(())
    }

    fn i64_le(&mut self) -> Result<i64, String> {
        let raw = self.cursor.bytes(8).map_err(failed)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(raw);
        Ok(i64::from_le_bytes(bytes))
    }

    /// Reads one value of `object_type` (module values are skipped by their opcodes, as Redis's
    /// checker does without the module).
    fn value(&mut self, object_type: u8) -> Result<(), String> {
        match object_type {
            rdb::TYPE_MODULE_2 => {
                let module_id = self
                    .cursor
                    .length()
                    .map_err(|_| "Short read module id".to_string())?;
                self.module_value(&module_name(module_id))
            }
            rdb::TYPE_MODULE_PRE_GA => {
                let module_id = self
                    .cursor
                    .length()
                    .map_err(|_| "Short read module id".to_string())?;
                Err(format!(
                    "The RDB file contains module data I can't load: no matching module type '{}'",
                    module_name(module_id)
                ))
            }
            _ => match self.cursor.object(object_type, &Limits::default()) {
                Ok(Some(_)) => Ok(()),
                // Redis's loader returns no object for an empty collection.
                Ok(None) => Err(UNEXPECTED_EOF.into()),
                Err(error) => Err(failed(error)),
            },
        }
    }

    /// A module's serialized value: opcode-tagged items up to the end opcode.
    fn module_value(&mut self, module: &str) -> Result<(), String> {
        loop {
            let opcode = self.cursor.length().map_err(failed)?;
            let (read, what) = match opcode {
                MODULE_OPCODE_EOF => return Ok(()),
                MODULE_OPCODE_SIGNED | MODULE_OPCODE_UNSIGNED => {
                    (self.cursor.length().map(drop), "integer")
                }
                MODULE_OPCODE_STRING => (self.cursor.string().map(drop), "string"),
                MODULE_OPCODE_FLOAT => (self.cursor.bytes(4).map(drop), "float"),
                MODULE_OPCODE_DOUBLE => (self.cursor.bytes(8).map(drop), "double"),
                _ => continue,
            };
            if read.is_err() {
                return Err(format!("Error reading {what} from module {module} value"));
            }
        }
    }
}

/// The value types Redis 7.2 knows, and those of Redis 7.4 that the decoder reads.
fn is_object_type(object_type: u8) -> bool {
    object_type <= rdb::TYPE_MODULE_2
        || (rdb::TYPE_HASH_ZIPMAP..=rdb::TYPE_HASH_LISTPACK_EX).contains(&object_type)
}

/// A module type's name from its 64-bit id: nine characters of six bits, above a 10-bit
/// encoding version.
fn module_name(module_id: u64) -> String {
    const CHARACTERS: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut name = [0u8; 9];
    let mut id = module_id >> 10;
    for slot in name.iter_mut().rev() {
        *slot = CHARACTERS[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Bytes as C's `%s` prints them: up to the first NUL.
fn c_text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(super::c_string(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_decode_six_bit_characters() {
        // "mymodtype" with encoding version 3.
        let mut id = 0u64;
        for &byte in b"mymodtype" {
            let index = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .iter()
                .position(|&c| c == byte)
                .expect("in the set") as u64;
            id = (id << 6) | index;
        }
        assert_eq!(module_name((id << 10) | 3), "mymodtype");
    }

    #[test]
    fn header_errors_report_type_zero_before_any_key() {
        let report = check("x.rdb", b"REDIX0009", 0);
        assert!(!report.ok);
        assert_eq!(
            report.lines,
            [
                "[offset 0] Checking RDB file x.rdb",
                "--- RDB ERROR DETECTED ---",
                "[offset 9] Wrong signature trying to load DB from file",
                "[additional info] While doing: start",
                "[additional info] Reading type 0 (string)",
                "[info] 0 keys read",
                "[info] 0 expires",
                "[info] 0 already expired",
            ]
        );
        let report = check("x.rdb", b"RED", 0);
        assert_eq!(
            report.lines[2],
            "[offset 0] Unexpected EOF reading RDB file"
        );
        let report = check("x.rdb", b"REDIS0099", 0);
        assert_eq!(
            report.lines[2],
            "[offset 9] Can't handle RDB format version 99"
        );
    }

    #[test]
    fn expiries_are_counted_against_the_clock() {
        let mut data = b"REDIS0009".to_vec();
        data.extend_from_slice(&[rdb::OPCODE_SELECTDB, 0]);
        for (key, expire_at_ms) in [(b'a', 1_000i64), (b'b', 3_000)] {
            data.push(rdb::OPCODE_EXPIRETIME_MS);
            data.extend_from_slice(&expire_at_ms.to_le_bytes());
            data.extend_from_slice(&[rdb::TYPE_STRING, 1, key, 1, b'v']);
        }
        data.extend_from_slice(&[rdb::TYPE_STRING, 1, b'c', 1, b'v', rdb::OPCODE_EOF]);
        data.extend_from_slice(&[0; 8]);
        let report = check("e.rdb", &data, 2_000);
        assert!(report.ok);
        assert_eq!(report.end, data.len());
        assert_eq!(
            &report.lines[1..],
            [
                "[offset 11] Selecting DB ID 0",
                &format!(
                    "[offset {}] RDB file was saved with checksum disabled: no check performed.",
                    data.len()
                ),
                &format!("[offset {}] \\o/ RDB looks OK! \\o/", data.len()),
                "[info] 3 keys read",
                "[info] 2 expires",
                "[info] 1 already expired",
            ]
        );
    }
}
