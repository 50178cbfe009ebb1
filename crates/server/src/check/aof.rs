//! `check-aof`: redis-check-aof's checks, fixes and report, line for line.
//!
//! # Model
//!
//! The input is a manifest (Redis 7's multi-part AOF: its first line that is not a comment
//! starts with `file`), an old-style AOF with an RDB preamble (it starts with `REDIS`), or an
//! old-style AOF of commands. A manifest's base file and then its incremental files are checked
//! in order, each relative to the manifest's directory; only the last file checked may be
//! truncated.
//!
//! A file is scanned as Redis's tool scans it through C's stdio, whose quirks are part of the
//! report: lines are read with fixed buffers (128 bytes for `*`/`$` headers, 1024 for `#`
//! annotations), numbers are read by `strtol`, and whether the scan reached the end of the file
//! is stdio's end-of-file flag. `ok_up_to` is the offset of the first command not known good
//! (a command inside an unfinished MULTI is not), `ok_up_to_line` counts the lines read so far
//! across every file checked, and the error line names the offset where the failing read
//! started, as `0x%16llx`. An RDB preamble (or base) is checked by [`super::rdb`] first and the
//! commands after it are scanned from where it ends.
//!
//! `--fix` asks on stdin and truncates the last file at `ok_up_to`. `--truncate-to-timestamp`
//! cuts the last file at the first `#TS:<unix time>` annotation later than the given time.
//! Whatever Redis's tool reports with `exit(1)` ends the check here with [`Abort`] and exit
//! code 1.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{c_string, c_strtol};
use crate::aof::format::Manifest;

/// Buffer sizes of Redis's tool: a `*`/`$` header line, an annotation line, a manifest line.
const HEADER_LINE_BUFFER: usize = 128;
const ANNOTATION_LINE_BUFFER: usize = 1024;
const MANIFEST_LINE_BUFFER: usize = 1025;

/// `check-aof [--fix|--truncate-to-timestamp <ts>] <file>` (`program` names the tool in the
/// usage line); answers to `--fix`'s question come from `answers`. Returns the exit code.
pub fn main(program: &str, args: &[OsString], out: &mut dyn Write, answers: &mut dyn Read) -> i32 {
    let usage = |out: &mut dyn Write| {
        let _ = writeln!(
            out,
            "Usage: {program} [--fix|--truncate-to-timestamp $timestamp] <file.manifest|file.aof>"
        );
        1
    };
    let mut options = Options::default();
    let path = match args {
        [path] => path,
        [flag, path] if flag == "--fix" => {
            options.fix = true;
            path
        }
        [flag, timestamp, path] if flag == "--truncate-to-timestamp" => {
            let text = timestamp.as_bytes();
            let parsed = c_strtol(text);
            if parsed.overflow || parsed.end != text.len() {
                let _ = writeln!(out, "Invalid timestamp, aborting...");
                return 1;
            }
            options.to_timestamp = parsed.value;
            path
        }
        _ => return usage(out),
    };
    let mut checker = Checker {
        out,
        answers,
        options,
        line: 1,
        error: None,
        error_offset: 0,
    };
    match checker.check(Path::new(path)) {
        Ok(()) => 0,
        Err(Abort) => 1,
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Options {
    fix: bool,
    /// `--truncate-to-timestamp`'s time; 0 when not given (as in Redis, 0 means none).
    to_timestamp: i64,
}

/// The check stopped after reporting why (Redis's tool exits with 1 there).
#[derive(Debug)]
struct Abort;

/// How one file's check ended.
enum Verdict {
    Valid,
    Empty,
    Truncated,
    TruncatedToTimestamp,
}

/// What the input file is.
enum InputKind {
    Manifest,
    RdbPreamble,
    Commands,
}

struct Checker<'a> {
    out: &'a mut dyn Write,
    answers: &'a mut dyn Read,
    options: Options,
    /// The line being read, counted from 1 across every file checked (Redis's counter is never
    /// reset between files); annotations are not counted.
    line: i64,
    /// The error found (`0x<offset>: <what>`).
    error: Option<String>,
    /// Where the last read started: the offset an error names.
    error_offset: usize,
}

impl Checker<'_> {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// A line as Redis's log writes it (the tool logs to stdout): `pid:C date time # text`.
    fn log_warning(&mut self, text: &str) {
        let _ = writeln!(self.out, "{}:C {} # {text}", std::process::id(), log_time());
    }

    fn set_error(&mut self, what: String) {
        self.error = Some(format!("0x{:>16x}: {what}", self.error_offset));
    }

    fn check(&mut self, path: &Path) -> Result<(), Abort> {
        match self.input_kind(path)? {
            InputKind::Manifest => self.check_multi_part(path),
            InputKind::RdbPreamble => self.check_old_style(path, true),
            InputKind::Commands => self.check_old_style(path, false),
        }
    }

    fn input_kind(&mut self, path: &Path) -> Result<InputKind, Abort> {
        if self.is_manifest(path)? {
            Ok(InputKind::Manifest)
        } else if self.is_rdb(path)? {
            Ok(InputKind::RdbPreamble)
        } else {
            Ok(InputKind::Commands)
        }
    }

    fn open_for_reading(&mut self, path: &Path) -> Result<File, Abort> {
        File::open(path).map_err(|error| {
            self.say(&format!(
                "Cannot open file {}: {}",
                path.display(),
                strerror(&error)
            ));
            Abort
        })
    }

    /// Whether the lines before the first one that is neither a comment nor a `file` line
    /// include a `file` line (read in 1024-byte pieces, as Redis's tool reads them).
    fn is_manifest(&mut self, path: &Path) -> Result<bool, Abort> {
        let file = self.open_for_reading(path)?;
        let mut reader = BufReader::new(file);
        let mut manifest = false;
        loop {
            let piece = match read_line_piece(&mut reader, MANIFEST_LINE_BUFFER) {
                Ok(Some(piece)) => piece,
                Ok(None) => break,
                Err(_) => {
                    self.say(&format!("Cannot read file: {}", path.display()));
                    return Err(Abort);
                }
            };
            if piece.first() == Some(&b'#') {
                continue;
            }
            if !piece.starts_with(b"file") {
                break;
            }
            manifest = true;
        }
        Ok(manifest)
    }

    /// Whether the file starts with an RDB header.
    fn is_rdb(&mut self, path: &Path) -> Result<bool, Abort> {
        let file = self.open_for_reading(path)?;
        let size = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        if size < 8 {
            return Ok(false);
        }
        let mut signature = [0u8; 5];
        Ok((&file).read_exact(&mut signature).is_ok() && &signature == b"REDIS")
    }

    fn check_old_style(&mut self, path: &Path, preamble: bool) -> Result<(), Abort> {
        self.say("Start checking Old-Style AOF");
        let name = path.display().to_string();
        let verdict = self.check_file(&name, path, true, preamble)?;
        self.report_verdict(verdict, &name, "AOF");
        Ok(())
    }

    fn check_multi_part(&mut self, manifest_path: &Path) -> Result<(), Abort> {
        self.say("Start checking Multi Part AOF");
        let manifest = self.load_manifest(manifest_path)?;
        let directory = dirname(manifest_path.as_os_str());
        let total = manifest.files_to_load().len();
        let mut checked = 0;
        if let Some(base) = &manifest.base {
            let path = join(&directory, &base.name);
            checked += 1;
            let preamble = self.is_rdb(&path)?;
            self.say(&format!(
                "Start to check BASE AOF ({} format).",
                if preamble { "RDB" } else { "RESP" }
            ));
            let verdict = self.check_file(&base.name, &path, checked == total, preamble)?;
            self.report_verdict(verdict, &base.name, "BASE AOF");
        }
        if !manifest.incremental.is_empty() {
            self.say("Start to check INCR files.");
            for info in &manifest.incremental {
                let path = join(&directory, &info.name);
                checked += 1;
                let verdict = self.check_file(&info.name, &path, checked == total, false)?;
                self.report_verdict(verdict, &info.name, "INCR AOF");
            }
        }
        self.say("All AOF files and manifest are valid");
        Ok(())
    }

    /// The manifest, or Redis's fatal report in its log lines.
    fn load_manifest(&mut self, path: &Path) -> Result<Manifest, Abort> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) => {
                self.log_warning(&format!(
                    "Fatal error: can't open the AOF manifest file {} for reading: {}",
                    path.display(),
                    strerror(&error)
                ));
                return Err(Abort);
            }
        };
        Manifest::parse(&text).map_err(|error| {
            self.log_warning("\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
            if let Some(line) = &error.line {
                self.log_warning(&format!(
                    "Reading the manifest file, at line {}\n",
                    error.line_number
                ));
                self.log_warning(&format!(">>> '{line}'\n"));
            }
            self.log_warning(&format!("{}\n", error.message));
            Abort
        })
    }

    fn report_verdict(&mut self, verdict: Verdict, name: &str, kind: &str) {
        let text = match verdict {
            Verdict::Valid => format!("{kind} {name} is valid"),
            Verdict::Empty => format!("{kind} {name} is empty"),
            Verdict::TruncatedToTimestamp => format!(
                "Successfully truncated AOF {name} to timestamp {}",
                self.options.to_timestamp
            ),
            Verdict::Truncated => format!("Successfully truncated AOF {name}"),
        };
        self.say(&text);
    }

    /// Checks one file (`name` is what the report calls it); `last_file` allows truncating it.
    fn check_file(
        &mut self,
        name: &str,
        path: &Path,
        last_file: bool,
        preamble: bool,
    ) -> Result<Verdict, Abort> {
        let path_text = path.display().to_string();
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(error) => {
                self.say(&format!(
                    "Cannot open file {path_text}: {}, aborting...",
                    strerror(&error)
                ));
                return Err(Abort);
            }
        };
        let mut data = Vec::new();
        if file.read_to_end(&mut data).is_err() {
            self.say(&format!("Failed to read from AOF {name}, aborting..."));
            return Err(Abort);
        }
        let size = data.len();
        if size == 0 {
            return Ok(Verdict::Empty);
        }
        let mut stream = Stream::new(&data);
        if preamble {
            let report = super::rdb::check(&path_text, &data, super::now_ms());
            for line in &report.lines {
                self.say(line);
            }
            if !report.ok {
                self.say("RDB preamble of AOF file is not sane, aborting.");
                return Err(Abort);
            }
            self.say("RDB preamble is OK, proceeding with AOF tail...");
            stream.position = report.end;
        }
        let mut multi = 0i64;
        let mut ok_up_to = 0;
        loop {
            if multi == 0 {
                ok_up_to = stream.position;
            }
            let Some(first) = stream.peek() else {
                break;
            };
            match first {
                b'#' => {
                    if let Some(cut) = self.read_annotation(&mut stream, &path_text, last_file)? {
                        self.truncate(&file, cut).map_err(|()| {
                            self.say(&format!(
                                "Failed to truncate AOF {path_text} to timestamp {}",
                                self.options.to_timestamp
                            ));
                            Abort
                        })?;
                        return Ok(Verdict::TruncatedToTimestamp);
                    }
                }
                b'*' => {
                    if !self.read_command(&mut stream, &path_text, &mut multi) {
                        break;
                    }
                }
                _ => {
                    self.say(&format!("AOF {name} format error"));
                    break;
                }
            }
        }
        if stream.at_end && multi != 0 && self.error.is_none() {
            self.set_error("Reached EOF before reading EXEC for MULTI".into());
        }
        if let Some(error) = self.error.clone() {
            self.say(&error);
        }
        let diff = size - ok_up_to;
        let to_timestamp = self.options.to_timestamp;
        if diff == 0 && to_timestamp != 0 {
            self.say(&format!(
                "Truncate nothing in AOF {name} to timestamp {to_timestamp}"
            ));
            return Ok(Verdict::Valid);
        }
        self.say(&format!(
            "AOF analyzed: filename={name}, size={size}, ok_up_to={ok_up_to}, ok_up_to_line={}, diff={diff}",
            self.line
        ));
        if diff == 0 {
            return Ok(Verdict::Valid);
        }
        if !self.options.fix {
            self.say(&format!(
                "AOF {name} is not valid. Use the --fix option to try fixing it."
            ));
            return Err(Abort);
        }
        if !last_file {
            self.say(&format!(
                "Failed to truncate AOF {name} because it is not the last file"
            ));
            return Err(Abort);
        }
        self.say(&format!(
            "This will shrink the AOF {name} from {size} bytes, with {diff} bytes, to {ok_up_to} bytes"
        ));
        let _ = write!(self.out, "Continue? [y/N]: ");
        let _ = self.out.flush();
        let mut answer = [0u8; 1];
        let answered = matches!(self.answers.read(&mut answer), Ok(1));
        if !answered || !answer[0].eq_ignore_ascii_case(&b'y') {
            self.say("Aborting...");
            return Err(Abort);
        }
        self.truncate(&file, ok_up_to).map_err(|()| {
            self.say(&format!("Failed to truncate AOF {name}"));
            Abort
        })?;
        Ok(Verdict::Truncated)
    }

    fn truncate(&self, file: &File, length: usize) -> Result<(), ()> {
        file.set_len(length as u64).map_err(drop)
    }

    /// A `#` line. With `--truncate-to-timestamp`, a `#TS:` annotation later than the time
    /// gives the offset to truncate at (it may only cut the last file).
    fn read_annotation(
        &mut self,
        stream: &mut Stream,
        path_text: &str,
        last_file: bool,
    ) -> Result<Option<usize>, Abort> {
        let start = stream.position;
        self.error_offset = start;
        let Some(line) = stream.line(ANNOTATION_LINE_BUFFER) else {
            self.say(&format!(
                "Failed to read annotations from AOF {path_text}, aborting..."
            ));
            return Err(Abort);
        };
        let to_timestamp = self.options.to_timestamp;
        if to_timestamp == 0 || !line.starts_with(b"#TS:") {
            return Ok(None);
        }
        let parsed = c_strtol(&line[4..]);
        if parsed.overflow || byte_at(line, 4 + parsed.end) != b'\r' {
            self.say("Invalid timestamp annotation");
            return Err(Abort);
        }
        if parsed.value <= to_timestamp {
            return Ok(None);
        }
        if start == 0 {
            self.say(&format!(
                "AOF {path_text} has nothing before timestamp {to_timestamp}, aborting..."
            ));
            return Err(Abort);
        }
        if !last_file {
            self.say(&format!(
                "Failed to truncate AOF {path_text} to timestamp {to_timestamp} to offset {start} because it is not the last file."
            ));
            self.say(
                "If you insist, please delete all files after this file according to the manifest file and delete the corresponding records in manifest file manually. Then re-run redis-check-aof.",
            );
            return Err(Abort);
        }
        Ok(Some(start))
    }

    /// One command; false (with the error recorded, unless the file just ended) when it is not
    /// well formed. Tracks MULTI/EXEC nesting in `multi`.
    fn read_command(&mut self, stream: &mut Stream, path_text: &str, multi: &mut i64) -> bool {
        let Some(count) = self.read_number(stream, b'*') else {
            return false;
        };
        for index in 0..count.max(0) {
            let Some(argument) = self.read_string(stream) else {
                return false;
            };
            if index > 0 {
                continue;
            }
            let name = c_string(argument);
            if name.eq_ignore_ascii_case(b"multi") {
                *multi += 1;
                if *multi != 1 {
                    self.set_error(format!("Unexpected MULTI in AOF {path_text}"));
                    return false;
                }
            } else if name.eq_ignore_ascii_case(b"exec") {
                *multi -= 1;
                if *multi != 0 {
                    self.set_error(format!("Unexpected EXEC in AOF {path_text}"));
                    return false;
                }
            }
        }
        true
    }

    /// A `<prefix><number>\r\n` header line.
    fn read_number(&mut self, stream: &mut Stream, prefix: u8) -> Option<i64> {
        self.error_offset = stream.position;
        let line = stream.line(HEADER_LINE_BUFFER)?;
        if line[0] != prefix {
            self.set_error(format!(
                "Expected prefix '{}', got: '{}'",
                prefix as char,
                String::from_utf8_lossy(&line[..1])
            ));
            return None;
        }
        let parsed = c_strtol(&line[1..]);
        let end = 1 + parsed.end;
        self.consume_newline(byte_at(line, end), byte_at(line, end + 1))?;
        Some(parsed.value)
    }

    /// A `$<length>\r\n<bytes>\r\n` argument.
    fn read_string<'d>(&mut self, stream: &mut Stream<'d>) -> Option<&'d [u8]> {
        let length = self.read_number(stream, b'$')?;
        if !(0..=i64::MAX - 2).contains(&length) {
            self.set_error(format!(
                "Expected to read string of {length} bytes, which is not in the suitable range"
            ));
            return None;
        }
        let wanted = length + 2;
        self.error_offset = stream.position;
        let bytes = stream.read(wanted as usize);
        if bytes.len() as i64 != wanted {
            self.set_error(format!(
                "Expected to read {wanted} bytes, got {} bytes",
                bytes.len()
            ));
            return None;
        }
        let (argument, end) = bytes.split_at(bytes.len() - 2);
        self.consume_newline(end[0], end[1])?;
        Some(argument)
    }

    fn consume_newline(&mut self, first: u8, second: u8) -> Option<()> {
        if (first, second) != (b'\r', b'\n') {
            self.set_error(format!(
                "Expected \\r\\n, got: {}{}",
                c_hex(first),
                c_hex(second)
            ));
            return None;
        }
        self.line += 1;
        Some(())
    }
}

/// A file's bytes read as C's stdio reads them: lines into fixed buffers, and the end-of-file
/// flag a read sets when it reaches the end and a seek clears.
struct Stream<'d> {
    data: &'d [u8],
    position: usize,
    at_end: bool,
}

impl<'d> Stream<'d> {
    fn new(data: &'d [u8]) -> Self {
        Stream {
            data,
            position: 0,
            at_end: false,
        }
    }

    /// The next byte, left unread (Redis reads it and seeks back, which clears the flag).
    fn peek(&mut self) -> Option<u8> {
        let byte = self.data.get(self.position).copied();
        self.at_end = byte.is_none();
        byte
    }

    /// `fgets` into a buffer of `buffer` bytes: through the next `\n`, at most `buffer - 1`
    /// bytes; None at the end of the data.
    fn line(&mut self, buffer: usize) -> Option<&'d [u8]> {
        let rest = &self.data[self.position..];
        if rest.is_empty() {
            self.at_end = true;
            return None;
        }
        let limit = buffer - 1;
        let length = match rest.iter().take(limit).position(|&byte| byte == b'\n') {
            Some(newline) => newline + 1,
            None => {
                let length = rest.len().min(limit);
                // Stopping short of a full buffer means the read hit the end.
                if length < limit {
                    self.at_end = true;
                }
                length
            }
        };
        self.position += length;
        Some(&rest[..length])
    }

    /// `fread` of `count` bytes: fewer at the end of the data.
    fn read(&mut self, count: usize) -> &'d [u8] {
        let rest = &self.data[self.position..];
        let length = rest.len().min(count);
        if length < count {
            self.at_end = true;
        }
        self.position += length;
        &rest[..length]
    }
}

/// `fgets` on a reader: one line piece of at most `buffer - 1` bytes (through its `\n`).
fn read_line_piece(reader: &mut dyn BufRead, buffer: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut piece = Vec::new();
    reader
        .take((buffer - 1) as u64)
        .read_until(b'\n', &mut piece)?;
    Ok((!piece.is_empty()).then_some(piece))
}

/// The byte at `index` of a line read into a C buffer: past the line, its terminating NUL
/// (what lies beyond that in Redis's buffer is stale; read as NUL too).
fn byte_at(line: &[u8], index: usize) -> u8 {
    line.get(index).copied().unwrap_or(0)
}

/// `%02x` of a C `char` (signed: bytes from 0x80 print as `ffffff80`).
fn c_hex(byte: u8) -> String {
    format!("{:02x}", byte as i8 as i32 as u32)
}

/// `strerror`'s text for an I/O error.
fn strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// POSIX `dirname`: the path without its last component (`.` when there is none).
fn dirname(path: &OsStr) -> OsString {
    let mut bytes = path.as_bytes();
    while bytes.len() > 1 && bytes.ends_with(b"/") {
        bytes = &bytes[..bytes.len() - 1];
    }
    let parent = match bytes.iter().rposition(|&byte| byte == b'/') {
        None => return OsString::from("."),
        Some(slash) => &bytes[..slash],
    };
    let mut end = parent.len();
    while end > 0 && parent[end - 1] == b'/' {
        end -= 1;
    }
    if end == 0 {
        return OsString::from("/");
    }
    OsString::from_vec(parent[..end].to_vec())
}

/// `<directory>/<name>`, as Redis's tool builds the paths of a manifest's files.
fn join(directory: &OsStr, name: &str) -> PathBuf {
    let mut path = directory.as_bytes().to_vec();
    path.push(b'/');
    path.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(path))
}

/// The time as Redis's log lines show it: `22 Nov 2026 12:03:18.538`, local time.
fn log_time() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the call.
    let mut civil: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { !libc::localtime_r(&seconds, &mut civil).is_null() };
    let mut text = [0u8; 64];
    let length = if converted {
        // SAFETY: the format is NUL-terminated and strftime writes at most `text.len()` bytes.
        unsafe {
            libc::strftime(
                text.as_mut_ptr().cast(),
                text.len(),
                c"%d %b %Y %H:%M:%S".as_ptr(),
                &civil,
            )
        }
    } else {
        0
    };
    format!(
        "{}.{:03}",
        String::from_utf8_lossy(&text[..length]),
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str) -> String {
        dirname(OsStr::new(path)).to_string_lossy().into_owned()
    }

    #[test]
    fn dirname_as_posix() {
        assert_eq!(
            dir("appendonlydir/appendonly.aof.manifest"),
            "appendonlydir"
        );
        assert_eq!(dir("appendonly.aof.manifest"), ".");
        assert_eq!(dir("/a.manifest"), "/");
        assert_eq!(dir("/x/y//z.manifest"), "/x/y");
        assert_eq!(dir("a/b/"), "a");
        assert_eq!(dir(""), ".");
        assert_eq!(join(OsStr::new("."), "b").to_string_lossy(), "./b");
    }

    #[test]
    fn stream_sets_the_end_flag_as_stdio() {
        let mut stream = Stream::new(b"*1\r\n$4\r\nab");
        assert_eq!(stream.peek(), Some(b'*'));
        assert_eq!(stream.line(128), Some(&b"*1\r\n"[..]));
        assert!(!stream.at_end);
        assert_eq!(stream.line(3), Some(&b"$4"[..]));
        assert!(!stream.at_end, "a full buffer stops before the end");
        assert_eq!(stream.line(128), Some(&b"\r\n"[..]));
        assert_eq!(stream.read(2), b"ab");
        assert!(!stream.at_end, "an exact read does not reach past the end");
        assert_eq!(stream.read(1), b"");
        assert!(stream.at_end);
        assert_eq!(stream.peek(), None);
        let mut stream = Stream::new(b"*1");
        assert_eq!(stream.line(128), Some(&b"*1"[..]));
        assert!(stream.at_end);
    }

    #[test]
    fn c_hex_prints_signed_chars() {
        assert_eq!(c_hex(b'\r'), "0d");
        assert_eq!(c_hex(0), "00");
        assert_eq!(c_hex(0x80), "ffffff80");
    }

    #[test]
    fn log_time_has_redis_layout() {
        let time = log_time();
        let parts: Vec<&str> = time.split(' ').collect();
        assert_eq!(parts.len(), 4, "{time}");
        assert_eq!(parts[0].len(), 2);
        assert_eq!(parts[1].len(), 3);
        assert_eq!(parts[3].len(), "12:03:18.538".len());
    }
}
