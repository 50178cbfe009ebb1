//! The AOF's on-disk formats: the manifest (Redis 7's multi-part layout) and the command records
//! (RESP arrays of bulk strings), both pure functions over bytes so they can be unit-tested and
//! fuzzed without a server.
//!
//! Manifest. One line per file, `file <name> seq <n> type <b|h|i>`, base first, then history,
//! then incremental files in order. Names: `<appendfilename>.<seq>.base.<rdb|aof>` and
//! `<appendfilename>.<seq>.incr.aof`; the manifest itself is `<appendfilename>.manifest`, all in
//! `appenddirname` under `dir`.

/// A file name as the manifest writes it: quoted as `sdscatrepr` when it holds a space, a quote
/// or a byte that is not printable (Redis's `sdsneedsrepr`), as is otherwise.
fn manifest_name(name: &str) -> String {
    let needs_quotes = name
        .bytes()
        .any(|byte| matches!(byte, b'\\' | b'"' | b' ') || !(0x21..=0x7e).contains(&byte));
    if !needs_quotes {
        return name.to_string();
    }
    let mut out = Vec::new();
    crate::monitor::quote(&mut out, name.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// A timestamp annotation line (`aof-timestamp-enabled`): `#TS:<unix seconds>\r\n`. Loaders
/// skip `#` lines; `check-aof --truncate-to-timestamp` cuts at them.
pub fn timestamp_annotation(unix_s: u64) -> Vec<u8> {
    format!("#TS:{unix_s}\r\n").into_bytes()
}

/// The suffix of the manifest's file name.
pub const MANIFEST_SUFFIX: &str = ".manifest";
/// Prefix of files being written (renamed into place when complete).
pub const TEMP_PREFIX: &str = "temp-";
/// Longest manifest line Redis accepts.
const MANIFEST_LINE_BYTES_MAX: usize = 1024;
/// Elements per command when a collection is rewritten (Redis's AOF_REWRITE_ITEMS_PER_CMD).
pub const REWRITE_ITEMS_PER_COMMAND: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Base,
    History,
    Incremental,
}

impl FileKind {
    fn code(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incremental => 'i',
        }
    }
}

/// The format a base file is written in (its name's last suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseFormat {
    Rdb,
    Aof,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub sequence: u64,
    pub kind: FileKind,
}

/// The list of files that make up the AOF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    pub history: Vec<FileInfo>,
    pub incremental: Vec<FileInfo>,
    base_sequence: u64,
    incremental_sequence: u64,
}

/// A manifest that cannot be read: where and why, for Redis's fatal report.
#[derive(Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub line_number: usize,
    pub line: Option<String>,
    pub message: &'static str,
}

impl ManifestError {
    /// The report Redis logs before exiting.
    pub fn report(&self) -> String {
        let mut report = String::from("\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
        if let Some(line) = &self.line {
            report.push_str(&format!(
                "Reading the manifest file, at line {}\n>>> '{line}'\n",
                self.line_number
            ));
        }
        report.push_str(self.message);
        report
    }
}

impl Manifest {
    /// Parses a manifest as Redis does: `#` lines are comments, keys are case-insensitive, extra
    /// key/value pairs are ignored (forward compatibility), incremental sequences must grow.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::default();
        if text.is_empty() {
            return Err(ManifestError {
                line_number: 0,
                line: None,
                message: "Found an empty AOF manifest",
            });
        }
        let mut rest = text;
        let mut line_number = 0;
        while !rest.is_empty() {
            line_number += 1;
            let (raw, next, complete) = match rest.iter().position(|&byte| byte == b'\n') {
                Some(end) => (&rest[..end], &rest[end + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            rest = next;
            if raw.first() == Some(&b'#') {
                continue;
            }
            let line = String::from_utf8_lossy(raw)
                .trim_matches([' ', '\t', '\r'])
                .to_string();
            let fail = |message| ManifestError {
                line_number,
                line: Some(line.clone()),
                message,
            };
            if !complete || raw.len() > MANIFEST_LINE_BYTES_MAX {
                return Err(fail("The AOF manifest file contains too long line"));
            }
            // Words as Redis splits them (`sdssplitargs`): a name with spaces is quoted.
            let (mut storage, mut ranges) = (Vec::new(), Vec::new());
            if resp::split_arguments(line.as_bytes(), &mut storage, &mut ranges).is_err() {
                return Err(fail("Invalid AOF manifest file format"));
            }
            let owned: Vec<String> = ranges
                .iter()
                .map(|&(start, end)| String::from_utf8_lossy(&storage[start..end]).into_owned())
                .collect();
            let words: Vec<&str> = owned.iter().map(String::as_str).collect();
            if words.len() < 6 || words.len() % 2 != 0 {
                return Err(fail("Invalid AOF manifest file format"));
            }
            let (mut name, mut sequence, mut kind) = (None, 0u64, None);
            for pair in words.chunks(2) {
                let value = pair[1];
                if pair[0].eq_ignore_ascii_case("file") {
                    if value.contains('/') {
                        return Err(fail("File can't be a path, just a filename"));
                    }
                    name = Some(value.to_string());
                } else if pair[0].eq_ignore_ascii_case("seq") {
                    sequence = leading_integer(value);
                } else if pair[0].eq_ignore_ascii_case("type") {
                    kind = value.chars().next();
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return Err(fail("Invalid AOF manifest file format"));
            };
            if sequence == 0 {
                return Err(fail("Invalid AOF manifest file format"));
            }
            match kind {
                'b' => {
                    if manifest.base.is_some() {
                        return Err(fail("Found duplicate base file information"));
                    }
                    manifest.base_sequence = sequence;
                    manifest.base = Some(FileInfo {
                        name,
                        sequence,
                        kind: FileKind::Base,
                    });
                }
                'h' => manifest.history.push(FileInfo {
                    name,
                    sequence,
                    kind: FileKind::History,
                }),
                'i' => {
                    if sequence <= manifest.incremental_sequence {
                        return Err(fail("Found a non-monotonic sequence number"));
                    }
                    manifest.incremental_sequence = sequence;
                    manifest.incremental.push(FileInfo {
                        name,
                        sequence,
                        kind: FileKind::Incremental,
                    });
                }
                _ => return Err(fail("Unknown AOF file type")),
            }
        }
        Ok(manifest)
    }

    /// The manifest's text: base, history, incremental files, one line each.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for info in self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incremental.iter())
        {
            text.push_str(&format!(
                "file {} seq {} type {}\n",
                manifest_name(&info.name),
                info.sequence,
                info.kind.code()
            ));
        }
        text
    }

    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incremental.is_empty()
    }

    /// Names a new base file; the previous base becomes history.
    pub fn new_base(&mut self, filename: &str, format: BaseFormat) -> String {
        if let Some(mut previous) = self.base.take() {
            previous.kind = FileKind::History;
            self.history.insert(0, previous);
        }
        self.base_sequence += 1;
        let suffix = match format {
            BaseFormat::Rdb => "rdb",
            BaseFormat::Aof => "aof",
        };
        let name = format!("{filename}.{}.base.{suffix}", self.base_sequence);
        self.base = Some(FileInfo {
            name: name.clone(),
            sequence: self.base_sequence,
            kind: FileKind::Base,
        });
        name
    }

    /// Names a new incremental file, appended to the list.
    pub fn new_incremental(&mut self, filename: &str) -> String {
        self.incremental_sequence += 1;
        let name = format!("{filename}.{}.incr.aof", self.incremental_sequence);
        self.incremental.push(FileInfo {
            name: name.clone(),
            sequence: self.incremental_sequence,
            kind: FileKind::Incremental,
        });
        name
    }

    /// After a rewrite: every incremental file but `kept` becomes history.
    pub fn retire_incrementals_except(&mut self, kept: &str) {
        let (keep, retired): (Vec<FileInfo>, Vec<FileInfo>) = std::mem::take(&mut self.incremental)
            .into_iter()
            .partition(|info| info.name == kept);
        for mut info in retired.into_iter().rev() {
            info.kind = FileKind::History;
            self.history.insert(0, info);
        }
        self.incremental = keep;
    }

    /// The files to load, in order: base first, then incremental files.
    pub fn files_to_load(&self) -> Vec<&FileInfo> {
        self.base.iter().chain(self.incremental.iter()).collect()
    }
}

/// C's `atoll` on a manifest value: the leading digits, 0 when there are none.
fn leading_integer(text: &str) -> u64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// Appends one command as a RESP array of bulk strings.
pub fn encode_command(output: &mut Vec<u8>, args: &[&[u8]]) {
    let mut buffer = itoa::Buffer::new();
    output.push(b'*');
    output.extend_from_slice(buffer.format(args.len()).as_bytes());
    output.extend_from_slice(b"\r\n");
    for arg in args {
        output.push(b'$');
        output.extend_from_slice(buffer.format(arg.len()).as_bytes());
        output.extend_from_slice(b"\r\n");
        output.extend_from_slice(arg);
        output.extend_from_slice(b"\r\n");
    }
}

/// Why a file's commands could not all be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The file ends inside a command (a write cut short).
    Truncated,
    /// Something that is not a command where one should start, at this byte offset.
    Format { offset: usize },
}

/// Reads the commands of an AOF file one by one, as Redis's loader does: `#` lines
/// (annotations) are skipped, each command is `*<count>` then `$<length>` + bytes + CRLF per
/// argument.
pub struct CommandReader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> CommandReader<'a> {
    pub fn new(data: &'a [u8], position: usize) -> Self {
        CommandReader { data, position }
    }

    /// The offset just after the last command read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The next line (without its `\n`), or None at the end of the data. `complete` tells
    /// whether it ended with `\n`.
    fn line(&mut self) -> Option<(&'a [u8], bool)> {
        let rest = &self.data[self.position..];
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                self.position += end + 1;
                Some((&rest[..end], true))
            }
            None => {
                self.position = self.data.len();
                Some((rest, false))
            }
        }
    }

    /// The next command, None at a clean end of file.
    pub fn next_command(&mut self) -> Option<Result<Vec<&'a [u8]>, ReadError>> {
        loop {
            let start = self.position;
            let (line, complete) = self.line()?;
            if line.first() == Some(&b'#') {
                continue;
            }
            if line.first() != Some(&b'*') {
                return Some(Err(ReadError::Format { offset: start }));
            }
            if !complete {
                return Some(Err(ReadError::Truncated));
            }
            let Some(count) = parse_length(&line[1..]) else {
                return Some(Err(ReadError::Format { offset: start }));
            };
            if count < 1 {
                return Some(Err(ReadError::Format { offset: start }));
            }
            let mut args = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let header_start = self.position;
                let Some((header, complete)) = self.line() else {
                    return Some(Err(ReadError::Truncated));
                };
                if header.first() != Some(&b'$') {
                    return Some(Err(ReadError::Format {
                        offset: header_start,
                    }));
                }
                if !complete {
                    return Some(Err(ReadError::Truncated));
                }
                let Some(length) = parse_length(&header[1..]) else {
                    return Some(Err(ReadError::Format {
                        offset: header_start,
                    }));
                };
                let end = match self.position.checked_add(length) {
                    Some(end) if end + 2 <= self.data.len() => end,
                    _ => {
                        self.position = self.data.len();
                        return Some(Err(ReadError::Truncated));
                    }
                };
                if &self.data[end..end + 2] != b"\r\n" {
                    return Some(Err(ReadError::Format { offset: end }));
                }
                args.push(&self.data[self.position..end]);
                self.position = end + 2;
            }
            return Some(Ok(args));
        }
    }
}

/// A `*` count or `$` length line's number (followed by `\r`).
fn parse_length(text: &[u8]) -> Option<usize> {
    let digits = text.strip_suffix(b"\r").unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The reader's and manifest parser's invariants on arbitrary bytes (the `aof_load` fuzz
/// target, and a seeded test): never panic; positions stay within the data and only grow;
/// every command read has at least one argument and survives a round trip through its
/// encoding; a manifest that parses prints as text that parses to the same manifest.
pub fn check_invariants(data: &[u8]) {
    let mut reader = CommandReader::new(data, 0);
    let mut previous = 0;
    let mut reencoded = Vec::new();
    while let Some(result) = reader.next_command() {
        assert!(reader.position() >= previous && reader.position() <= data.len());
        previous = reader.position();
        match result {
            Ok(args) => {
                assert!(!args.is_empty());
                reencoded.clear();
                encode_command(&mut reencoded, &args);
                let mut again = CommandReader::new(&reencoded, 0);
                assert_eq!(again.next_command(), Some(Ok(args.clone())));
                assert_eq!(again.next_command(), None);
            }
            Err(ReadError::Format { offset }) => {
                assert!(offset < data.len());
                break;
            }
            Err(ReadError::Truncated) => break,
        }
    }
    // (Names are compared as text: only valid UTF-8 manifests round-trip byte for byte.)
    if let (Ok(manifest), Ok(_)) = (Manifest::parse(data), std::str::from_utf8(data)) {
        let text = manifest.to_text();
        if !text.is_empty() {
            let reparsed = Manifest::parse(text.as_bytes()).expect("a printed manifest parses");
            assert_eq!(reparsed.to_text(), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_in_redis_syntax() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.4.incr.aof seq 4 type i\n";
        let manifest = Manifest::parse(text.as_bytes()).expect("valid");
        assert_eq!(manifest.to_text(), text);
        let names: Vec<&str> = manifest
            .files_to_load()
            .iter()
            .map(|info| info.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "appendonly.aof.2.base.rdb",
                "appendonly.aof.3.incr.aof",
                "appendonly.aof.4.incr.aof"
            ]
        );
    }

    #[test]
    fn names_with_spaces_are_quoted_as_redis_writes_them() {
        let text = "file \"my aof.aof.1.base.rdb\" seq 1 type b\nfile \"my aof.aof.1.incr.aof\" seq 1 type i\n";
        let manifest = Manifest::parse(text.as_bytes()).expect("valid");
        assert_eq!(
            manifest.base.as_ref().map(|base| base.name.as_str()),
            Some("my aof.aof.1.base.rdb")
        );
        assert_eq!(manifest.incremental[0].name, "my aof.aof.1.incr.aof");
        assert_eq!(manifest.to_text(), text);
        assert_eq!(
            Manifest::parse(b"file \"unbalanced seq 1 type b\n")
                .unwrap_err()
                .message,
            "Invalid AOF manifest file format"
        );
    }

    #[test]
    fn manifest_errors_as_redis() {
        let error = |text: &str| Manifest::parse(text.as_bytes()).unwrap_err().message;
        assert_eq!(error(""), "Found an empty AOF manifest");
        assert_eq!(error("file a seq 1\n"), "Invalid AOF manifest file format");
        assert_eq!(error("file a seq 1 type x\n"), "Unknown AOF file type");
        assert_eq!(
            error("file a seq 1 type b\nfile b seq 2 type b\n"),
            "Found duplicate base file information"
        );
        assert_eq!(
            error("file a seq 2 type i\nfile b seq 2 type i\n"),
            "Found a non-monotonic sequence number"
        );
        assert_eq!(
            error("file d/a seq 1 type i\n"),
            "File can't be a path, just a filename"
        );
        assert_eq!(
            error("file a seq 1 type i"),
            "The AOF manifest file contains too long line"
        );
        let parsed = Manifest::parse(b"# comment\nFILE a SEQ 1 TYPE i extra x\n").expect("ok");
        assert_eq!(parsed.incremental[0].name, "a");
    }

    #[test]
    fn new_files_follow_redis_naming() {
        let mut manifest = Manifest::default();
        assert_eq!(
            manifest.new_base("appendonly.aof", BaseFormat::Rdb),
            "appendonly.aof.1.base.rdb"
        );
        assert_eq!(
            manifest.new_incremental("appendonly.aof"),
            "appendonly.aof.1.incr.aof"
        );
        let second = manifest.new_incremental("appendonly.aof");
        assert_eq!(
            manifest.new_base("appendonly.aof", BaseFormat::Aof),
            "appendonly.aof.2.base.aof"
        );
        manifest.retire_incrementals_except(&second);
        assert_eq!(
            manifest.to_text(),
            "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
    }

    #[test]
    fn reads_commands_annotations_truncation_and_garbage() {
        let mut data = Vec::new();
        encode_command(&mut data, &[b"SET", b"k", b"v\r\n"]);
        let first_end = data.len();
        data.extend_from_slice(b"#TS:123\r\n");
        let annotation_end = data.len();
        encode_command(&mut data, &[b"DEL", b""]);
        let mut reader = CommandReader::new(&data, 0);
        assert_eq!(
            reader.next_command(),
            Some(Ok(vec![&b"SET"[..], b"k", b"v\r\n"]))
        );
        assert_eq!(reader.next_command(), Some(Ok(vec![&b"DEL"[..], b""])));
        assert_eq!(reader.next_command(), None);
        for cut in 1..data.len() {
            let mut reader = CommandReader::new(&data[..cut], 0);
            let mut outcome = None;
            while let Some(result) = reader.next_command() {
                if let Err(error) = result {
                    outcome = Some(error);
                    break;
                }
            }
            // Cutting inside the annotation line leaves a complete file.
            if !(first_end..=annotation_end).contains(&cut) {
                assert_eq!(outcome, Some(ReadError::Truncated), "cut at {cut}");
            }
        }
        let mut reader = CommandReader::new(b"*1\r\n$3\r\nSET\r\nxyz\r\n", 0);
        assert!(reader.next_command().is_some());
        assert_eq!(
            reader.next_command(),
            Some(Err(ReadError::Format { offset: 13 }))
        );
        let mut reader = CommandReader::new(b"*0\r\n", 0);
        assert_eq!(
            reader.next_command(),
            Some(Err(ReadError::Format { offset: 0 }))
        );
    }

    #[test]
    fn invariants_hold_on_mutated_files() {
        let mut sample = Vec::new();
        encode_command(&mut sample, &[b"SELECT", b"0"]);
        encode_command(&mut sample, &[b"SET", b"key", b"value"]);
        sample.extend_from_slice(b"#TS:1\r\n");
        encode_command(&mut sample, &[b"RPUSH", b"l", b"", b"\r\n$3"]);
        let manifest = b"file a.1.base.aof seq 1 type b\nfile a.1.incr.aof seq 1 type i\n";
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..20_000 {
            let mut data = if case % 2 == 0 {
                sample.clone()
            } else {
                manifest.to_vec()
            };
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % data.len();
                match next() % 3 {
                    0 => data[at] = next() as u8,
                    1 => data.truncate(at),
                    _ => data.insert(at, b"*$\r\n0123456789-#"[(next() % 16) as usize]),
                }
                if data.is_empty() {
                    break;
                }
            }
            check_invariants(&data);
        }
    }
}
