//! The check tools: `cinnabar-server check-aof` / `check-rdb`, and the binary run under a name
//! containing `check-aof` / `check-rdb` (as Valkey's suite runs `src/valkey-check-aof`). Exact
//! output lines and exit codes as redis-check-aof / redis-check-rdb (Redis 7.2), and a
//! differential run against the reference redis-server's own tools (CINNABAR_REFERENCE_SERVER,
//! run through links named `redis-check-aof` / `redis-check-rdb`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{expired, reference_binary};

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "cinnabar-check-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).expect("write file");
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).expect("read file")
    }

    /// A link named `name` to `target` in this directory.
    fn link(&self, name: &str, target: &Path) -> PathBuf {
        let path = self.0.join(name);
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cinnabar-server"))
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// One command as the AOF holds it.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn commands(list: &[&[&str]]) -> Vec<u8> {
    list.iter().flat_map(|args| command(args)).collect()
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `program args` in `directory` with `stdin` as its input.
fn run_program(program: &Path, args: &[&str], directory: &Path, stdin: &[u8]) -> Outcome {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tool");
    if let Some(mut input) = child.stdin.take() {
        // The tool may exit without reading (a closed pipe is fine).
        let _ = input.write_all(stdin);
    }
    let output = child.wait_with_output().expect("wait for the tool");
    Outcome {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `cinnabar-server check-aof args...` in `directory`.
fn check_aof(directory: &Path, args: &[&str]) -> Outcome {
    check_aof_with_input(directory, args, b"")
}

fn check_aof_with_input(directory: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let mut full = vec!["check-aof"];
    full.extend_from_slice(args);
    run_program(&binary(), &full, directory, stdin)
}

fn check_rdb(directory: &Path, args: &[&str]) -> Outcome {
    let mut full = vec!["check-rdb"];
    full.extend_from_slice(args);
    run_program(&binary(), &full, directory, b"")
}

const MANIFEST_BASE_AND_INCR: &str =
    "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
const MANIFEST_INCR: &str = "file appendonly.aof.1.incr.aof seq 1 type i\n";

/// A multi-part AOF directory: the manifest and its files.
fn multi_part(scratch: &Scratch, manifest: &str, files: &[(&str, &[u8])]) {
    scratch.write("appendonly.aof.manifest", manifest.as_bytes());
    for (name, bytes) in files {
        scratch.write(name, bytes);
    }
}

/// A manifest naming a base and an incremental file, and those files.
fn base_and_incr(scratch: &Scratch, base: &[u8], incr: &[u8]) {
    multi_part(
        scratch,
        MANIFEST_BASE_AND_INCR,
        &[
            ("appendonly.aof.1.base.aof", base),
            ("appendonly.aof.1.incr.aof", incr),
        ],
    );
}

/// A log line's text after Redis's `pid:C date time # ` prefix (None when it has none).
fn log_text(line: &str) -> Option<&str> {
    let (prefix, text) = line.split_once(" # ")?;
    let (pid, rest) = prefix.split_once(":C ")?;
    (pid.chars().all(|c| c.is_ascii_digit()) && rest.len() == "22 Nov 2026 12:03:18.538".len())
        .then_some(text)
}

#[test]
fn valid_old_style_aof_through_a_link_and_the_subcommand() {
    let scratch = Scratch::new("valid");
    scratch.write(
        "a.aof",
        &commands(&[&["set", "foo", "hello"], &["set", "bar", "world"]]),
    );
    let expected = [
        "Start checking Old-Style AOF",
        "AOF analyzed: filename=a.aof, size=66, ok_up_to=66, ok_up_to_line=15, diff=0",
        "AOF a.aof is valid",
    ];
    let link = scratch.link("cinnabar-check-aof", &binary());
    let through_link = run_program(&link, &["a.aof"], scratch.path(), b"");
    assert_eq!(through_link.code, 0, "{}", through_link.stderr);
    assert_eq!(through_link.lines(), expected);
    let subcommand = check_aof(scratch.path(), &["a.aof"]);
    assert_eq!(subcommand.code, 0);
    assert_eq!(subcommand.lines(), expected);
    // An empty file, and annotations (not counted as lines).
    scratch.write("empty.aof", b"");
    let empty = check_aof(scratch.path(), &["empty.aof"]);
    assert_eq!(
        (empty.code, empty.lines()),
        (
            0,
            vec!["Start checking Old-Style AOF", "AOF empty.aof is empty"]
        )
    );
    let mut annotated = b"#TS:1628217470\r\n".to_vec();
    annotated.extend_from_slice(&command(&["set", "a", "b"]));
    annotated.extend_from_slice(b"#anything\r\n");
    scratch.write("annotated.aof", &annotated);
    assert_eq!(
        check_aof(scratch.path(), &["annotated.aof"]).lines(),
        [
            "Start checking Old-Style AOF",
            "AOF analyzed: filename=annotated.aof, size=54, ok_up_to=54, ok_up_to_line=8, diff=0",
            "AOF annotated.aof is valid",
        ]
    );
}

#[test]
fn invalid_aofs_name_the_offset_and_line() {
    let scratch = Scratch::new("invalid");
    let set_foo = command(&["set", "foo", "hello"]);
    // Bad format: the abnormal line number (aof.tcl: ok_up_to_line=8).
    let mut bad = set_foo.clone();
    bad.extend_from_slice(b"!!!");
    scratch.write("bad.aof", &bad);
    let outcome = check_aof(scratch.path(), &["bad.aof"]);
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.lines(),
        [
            "Start checking Old-Style AOF",
            "AOF bad.aof format error",
            "AOF analyzed: filename=bad.aof, size=36, ok_up_to=33, ok_up_to_line=8, diff=3",
            "AOF bad.aof is not valid. Use the --fix option to try fixing it.",
        ]
    );
    // Unfinished MULTI: good up to the MULTI.
    let multi = commands(&[
        &["set", "foo", "hello"],
        &["multi"],
        &["set", "bar", "world"],
    ]);
    scratch.write("multi.aof", &multi);
    assert_eq!(
        check_aof(scratch.path(), &["multi.aof"]).lines(),
        [
            "Start checking Old-Style AOF",
            "0x              4a: Reached EOF before reading EXEC for MULTI",
            "AOF analyzed: filename=multi.aof, size=81, ok_up_to=33, ok_up_to_line=18, diff=48",
            "AOF multi.aof is not valid. Use the --fix option to try fixing it.",
        ]
    );
    // A short read.
    let mut short = set_foo.clone();
    short.extend_from_slice(&command(&["set", "bar", "world"])[..30]);
    scratch.write("short.aof", &short);
    assert_eq!(
        check_aof(scratch.path(), &["short.aof"]).lines(),
        [
            "Start checking Old-Style AOF",
            "0x              3b: Expected to read 7 bytes, got 4 bytes",
            "AOF analyzed: filename=short.aof, size=63, ok_up_to=33, ok_up_to_line=14, diff=30",
            "AOF short.aof is not valid. Use the --fix option to try fixing it.",
        ]
    );
    // Malformed headers, as C's strtol and fgets see them.
    for (bytes, error, line) in [
        (&b"*2\r\n$3 \r\nabc\r\n"[..], "0x               4: Expected \\r\\n, got: 200d", 2),
        (b"*2\r\n*3\r\nabc\r\n", "0x               4: Expected prefix '$', got: '*'", 2),
        (b"*1\r\n$-3\r\n", "0x               4: Expected to read string of -3 bytes, which is not in the suitable range", 3),
        (b"*3", "0x               0: Expected \\r\\n, got: 0000", 1),
        (b"*1\r\n$2\r\nab\x80\x81", "0x               8: Expected \\r\\n, got: ffffff80ffffff81", 3),
        (b"*1\r\n$5\r\nmulti\r\n*1\r\n$5\r\nmulti\r\n", "0x              17: Unexpected MULTI in AOF m.aof", 7),
        (b"*1\r\n$4\r\nEXEC\r\n", "0x               8: Unexpected EXEC in AOF m.aof", 4),
    ] {
        scratch.write("m.aof", bytes);
        let outcome = check_aof(scratch.path(), &["m.aof"]);
        assert_eq!(outcome.code, 1);
        let lines = outcome.lines();
        assert_eq!(lines[1], error, "{bytes:?}");
        assert!(
            lines[2].contains(&format!("ok_up_to=0, ok_up_to_line={line}, ")),
            "{bytes:?}: {}",
            lines[2]
        );
    }
    // `*` with no count, and a negative count, are commands without arguments.
    scratch.write("odd.aof", b"*\r\n*-1\r\n");
    assert_eq!(check_aof(scratch.path(), &["odd.aof"]).code, 0);
}

#[test]
fn fix_asks_and_truncates_the_last_file() {
    let scratch = Scratch::new("fix");
    let mut incr = command(&["set", "foo", "hello"]);
    incr.extend_from_slice(b"!!!");
    multi_part(
        &scratch,
        MANIFEST_INCR,
        &[("appendonly.aof.1.incr.aof", &incr)],
    );
    let refused = check_aof_with_input(
        scratch.path(),
        &["--fix", "appendonly.aof.manifest"],
        b"n\n",
    );
    assert_eq!(refused.code, 1);
    assert_eq!(
        refused.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check INCR files.",
            "AOF appendonly.aof.1.incr.aof format error",
            "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=36, ok_up_to=33, ok_up_to_line=8, diff=3",
            "This will shrink the AOF appendonly.aof.1.incr.aof from 36 bytes, with 3 bytes, to 33 bytes",
            "Continue? [y/N]: Aborting...",
        ]
    );
    assert_eq!(scratch.read("appendonly.aof.1.incr.aof"), incr);
    // No answer at all is no.
    let silent = check_aof(scratch.path(), &["--fix", "appendonly.aof.manifest"]);
    assert_eq!(silent.code, 1);
    assert_eq!(scratch.read("appendonly.aof.1.incr.aof"), incr);
    let fixed = check_aof_with_input(
        scratch.path(),
        &["--fix", "appendonly.aof.manifest"],
        b"y\n",
    );
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert_eq!(
        &fixed.lines()[4..],
        [
            "This will shrink the AOF appendonly.aof.1.incr.aof from 36 bytes, with 3 bytes, to 33 bytes",
            "Continue? [y/N]: Successfully truncated AOF appendonly.aof.1.incr.aof",
            "All AOF files and manifest are valid",
        ]
    );
    assert_eq!(scratch.read("appendonly.aof.1.incr.aof"), &incr[..33]);
    let again = check_aof(scratch.path(), &["appendonly.aof.manifest"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check INCR files.",
            "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=33, ok_up_to=33, ok_up_to_line=8, diff=0",
            "INCR AOF appendonly.aof.1.incr.aof is valid",
            "All AOF files and manifest are valid",
        ]
    );
}

#[test]
fn fix_refuses_a_file_that_is_not_the_last() {
    let scratch = Scratch::new("fix-base");
    let base = commands(&[
        &["set", "foo", "hello"],
        &["multi"],
        &["set", "bar", "world"],
    ]);
    let incr = commands(&[&["set", "foo", "hello"], &["set", "bar", "world"]]);
    base_and_incr(&scratch, &base, &incr);
    let check = check_aof(scratch.path(), &["appendonly.aof.manifest"]);
    assert_eq!(check.code, 1);
    assert_eq!(
        check.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check BASE AOF (RESP format).",
            "0x              4a: Reached EOF before reading EXEC for MULTI",
            "AOF analyzed: filename=appendonly.aof.1.base.aof, size=81, ok_up_to=33, ok_up_to_line=18, diff=48",
            "AOF appendonly.aof.1.base.aof is not valid. Use the --fix option to try fixing it.",
        ]
    );
    let fix = check_aof_with_input(
        scratch.path(),
        &["--fix", "appendonly.aof.manifest"],
        b"y\n",
    );
    assert_eq!(fix.code, 1);
    assert_eq!(
        fix.lines().last().copied(),
        Some("Failed to truncate AOF appendonly.aof.1.base.aof because it is not the last file")
    );
    assert_eq!(scratch.read("appendonly.aof.1.base.aof"), base);
}

#[test]
fn line_numbers_run_on_across_the_files_of_a_manifest() {
    let scratch = Scratch::new("lines");
    let base = command(&["get", "a"]);
    let incr = commands(&[&["get", "a"], &["multi"]]);
    base_and_incr(&scratch, &base, &incr);
    let outcome = check_aof(scratch.path(), &["appendonly.aof.manifest"]);
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check BASE AOF (RESP format).",
            "AOF analyzed: filename=appendonly.aof.1.base.aof, size=20, ok_up_to=20, ok_up_to_line=6, diff=0",
            "BASE AOF appendonly.aof.1.base.aof is valid",
            "Start to check INCR files.",
            "0x              1c: Reached EOF before reading EXEC for MULTI",
            "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=35, ok_up_to=20, ok_up_to_line=14, diff=15",
            "AOF appendonly.aof.1.incr.aof is not valid. Use the --fix option to try fixing it.",
        ]
    );
}

fn timestamped() -> Vec<u8> {
    let mut aof = b"#TS:1628217470\r\n".to_vec();
    aof.extend_from_slice(&command(&["set", "foo1", "bar1"]));
    aof.extend_from_slice(b"#TS:1628217471\r\n");
    aof.extend_from_slice(&command(&["set", "foo2", "bar2"]));
    aof.extend_from_slice(b"#TS:1628217472\r\n#TS:1628217473\r\n");
    aof.extend_from_slice(&command(&["set", "foo3", "bar3"]));
    aof.extend_from_slice(b"#TS:1628217474\r\n");
    aof
}

#[test]
fn truncate_to_timestamp_cuts_the_last_file_at_the_first_later_annotation() {
    let scratch = Scratch::new("timestamp");
    let aof = timestamped();
    multi_part(
        &scratch,
        MANIFEST_INCR,
        &[("appendonly.aof.1.incr.aof", &aof)],
    );
    let truncate = |timestamp: &str| {
        check_aof(
            scratch.path(),
            &[
                "--truncate-to-timestamp",
                timestamp,
                "appendonly.aof.manifest",
            ],
        )
    };
    let later = truncate("1628217474");
    assert_eq!(later.code, 0);
    assert_eq!(
        later.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check INCR files.",
            "Truncate nothing in AOF appendonly.aof.1.incr.aof to timestamp 1628217474",
            "INCR AOF appendonly.aof.1.incr.aof is valid",
            "All AOF files and manifest are valid",
        ]
    );
    assert_eq!(scratch.read("appendonly.aof.1.incr.aof"), aof);
    let cut = truncate("1628217473");
    assert_eq!(cut.code, 0);
    assert_eq!(
        cut.lines()[2],
        "Successfully truncated AOF appendonly.aof.1.incr.aof to timestamp 1628217473"
    );
    assert_eq!(
        scratch.read("appendonly.aof.1.incr.aof"),
        &aof[..aof.len() - 16]
    );
    assert_eq!(truncate("1628217471").code, 0);
    let kept = scratch.read("appendonly.aof.1.incr.aof");
    assert!(kept.ends_with(b"set\r\n$4\r\nfoo2\r\n$4\r\nbar2\r\n"));
    assert_eq!(truncate("1628217470").code, 0);
    let nothing = truncate("1628217469");
    assert_eq!(nothing.code, 1);
    assert_eq!(
        nothing.lines()[2],
        "AOF ./appendonly.aof.1.incr.aof has nothing before timestamp 1628217469, aborting..."
    );
    assert_eq!(scratch.read("appendonly.aof.1.incr.aof").len(), 16 + 33);
    // Annotations are only read with a timestamp; a bad one is refused.
    scratch.write("bad.aof", b"#TS:12x\r\n");
    let bad = check_aof(scratch.path(), &["--truncate-to-timestamp", "5", "bad.aof"]);
    assert_eq!(
        (bad.code, bad.lines()),
        (
            1,
            vec![
                "Start checking Old-Style AOF",
                "Invalid timestamp annotation"
            ]
        )
    );
    for invalid in ["abc", "12 ", "99999999999999999999"] {
        let outcome = check_aof(
            scratch.path(),
            &["--truncate-to-timestamp", invalid, "bad.aof"],
        );
        assert_eq!(
            (outcome.code, outcome.lines()),
            (1, vec!["Invalid timestamp, aborting..."]),
            "{invalid}"
        );
    }
}

#[test]
fn truncate_to_timestamp_refuses_a_file_that_is_not_the_last() {
    let scratch = Scratch::new("timestamp-base");
    let incr = commands(&[&["set", "foo", "hello"], &["set", "bar", "world"]]);
    base_and_incr(&scratch, &timestamped(), &incr);
    let outcome = check_aof(
        scratch.path(),
        &[
            "--truncate-to-timestamp",
            "1628217473",
            "appendonly.aof.manifest",
        ],
    );
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check BASE AOF (RESP format).",
            "Failed to truncate AOF ./appendonly.aof.1.base.aof to timestamp 1628217473 to offset 163 because it is not the last file.",
            "If you insist, please delete all files after this file according to the manifest file and delete the corresponding records in manifest file manually. Then re-run redis-check-aof.",
        ]
    );
}

#[test]
fn multi_part_with_resp_and_rdb_bases() {
    let scratch = Scratch::new("bases");
    let pair = commands(&[&["set", "foo", "hello"], &["set", "bar", "world"]]);
    base_and_incr(&scratch, &pair, &pair);
    let resp = check_aof(scratch.path(), &["appendonly.aof.manifest"]);
    assert_eq!(resp.code, 0);
    assert_eq!(
        resp.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check BASE AOF (RESP format).",
            "AOF analyzed: filename=appendonly.aof.1.base.aof, size=66, ok_up_to=66, ok_up_to_line=15, diff=0",
            "BASE AOF appendonly.aof.1.base.aof is valid",
            "Start to check INCR files.",
            "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=66, ok_up_to=66, ok_up_to_line=29, diff=0",
            "INCR AOF appendonly.aof.1.incr.aof is valid",
            "All AOF files and manifest are valid",
        ]
    );
    // Redis 7.0's own multi-part AOF: an RDB base, then 55108 lines of commands.
    let reference = Scratch::new("reference");
    let source = fixture("aof/redis-7.0-multipart");
    for name in [
        "appendonly.aof.manifest",
        "appendonly.aof.1.base.rdb",
        "appendonly.aof.1.incr.aof",
    ] {
        reference.write(name, &std::fs::read(source.join(name)).expect("fixture"));
    }
    let rdb = check_aof(reference.path(), &["appendonly.aof.manifest"]);
    assert_eq!(rdb.code, 0);
    assert_eq!(
        rdb.lines(),
        [
            "Start checking Multi Part AOF",
            "Start to check BASE AOF (RDB format).",
            "[offset 0] Checking RDB file ./appendonly.aof.1.base.rdb",
            "[offset 27] AUX FIELD redis-ver = '7.0.15'",
            "[offset 41] AUX FIELD redis-bits = '64'",
            "[offset 53] AUX FIELD ctime = '1795294604'",
            "[offset 68] AUX FIELD used-mem = '876424'",
            "[offset 80] AUX FIELD aof-base = '1'",
            "[offset 89] Checksum OK",
            "[offset 89] \\o/ RDB looks OK! \\o/",
            "[info] 0 keys read",
            "[info] 0 expires",
            "[info] 0 already expired",
            "RDB preamble is OK, proceeding with AOF tail...",
            "AOF analyzed: filename=appendonly.aof.1.base.rdb, size=89, ok_up_to=89, ok_up_to_line=1, diff=0",
            "BASE AOF appendonly.aof.1.base.rdb is valid",
            "Start to check INCR files.",
            "AOF analyzed: filename=appendonly.aof.1.incr.aof, size=329888, ok_up_to=329888, ok_up_to_line=55109, diff=0",
            "INCR AOF appendonly.aof.1.incr.aof is valid",
            "All AOF files and manifest are valid",
        ]
    );
}

/// An old-style AOF with an RDB preamble: the RDB written by Redis (hash-ziplist.rdb), then
/// commands.
#[test]
fn old_style_aof_with_an_rdb_preamble() {
    let scratch = Scratch::new("preamble");
    let mut aof = std::fs::read(fixture("rdb/hash-ziplist.rdb")).expect("fixture");
    aof.extend_from_slice(&command(&["set", "foo", "bar"]));
    scratch.write("p.aof", &aof);
    let outcome = check_aof(scratch.path(), &["p.aof"]);
    assert_eq!(outcome.code, 0);
    assert_eq!(
        outcome.lines(),
        [
            "Start checking Old-Style AOF",
            "[offset 0] Checking RDB file p.aof",
            "[offset 32] AUX FIELD redis-ver = '255.255.255'",
            "[offset 46] AUX FIELD redis-bits = '64'",
            "[offset 58] AUX FIELD ctime = '1620466888'",
            "[offset 73] AUX FIELD used-mem = '830864'",
            "[offset 89] AUX FIELD aof-preamble = '0'",
            "[offset 91] Selecting DB ID 0",
            "[offset 137] Checksum OK",
            "[offset 137] \\o/ RDB looks OK! \\o/",
            "[info] 1 keys read",
            "[info] 0 expires",
            "[info] 0 already expired",
            "RDB preamble is OK, proceeding with AOF tail...",
            "AOF analyzed: filename=p.aof, size=168, ok_up_to=168, ok_up_to_line=8, diff=0",
            "AOF p.aof is valid",
        ]
    );
    scratch.write("broken.aof", &aof[..120]);
    let broken = check_aof(scratch.path(), &["broken.aof"]);
    assert_eq!(broken.code, 1);
    assert_eq!(
        &broken.lines()[8..],
        [
            "--- RDB ERROR DETECTED ---",
            "[offset 101] Unexpected EOF reading RDB file",
            "[additional info] While doing: read-object-value",
            "[additional info] Reading key 'hash'",
            "[additional info] Reading type 13 (hash-ziplist)",
            "[info] 1 keys read",
            "[info] 0 expires",
            "[info] 0 already expired",
            "RDB preamble of AOF file is not sane, aborting.",
        ]
    );
}

#[test]
fn manifest_errors_and_missing_files() {
    let scratch = Scratch::new("manifest");
    let pair = commands(&[&["set", "foo", "hello"]]);
    multi_part(
        &scratch,
        &format!("{MANIFEST_BASE_AND_INCR}!!!\n"),
        &[
            ("appendonly.aof.1.base.aof", &pair),
            ("appendonly.aof.1.incr.aof", &pair),
        ],
    );
    let invalid = check_aof(scratch.path(), &["appendonly.aof.manifest"]);
    assert_eq!(invalid.code, 1);
    let lines = invalid.lines();
    assert_eq!(lines[0], "Start checking Multi Part AOF");
    let logged: Vec<&str> = lines[1..]
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| log_text(line).unwrap_or(line))
        .collect();
    assert_eq!(
        logged,
        [
            "",
            "*** FATAL AOF MANIFEST FILE ERROR ***",
            "Reading the manifest file, at line 3",
            ">>> '!!!'",
            "Invalid AOF manifest file format",
        ]
    );
    for (manifest, error) in [
        ("file a seq 1 type x\n", "Unknown AOF file type"),
        (
            "file a seq 1 type b\nfile b seq 2 type b\n",
            "Found duplicate base file information",
        ),
        (
            "file a seq 2 type i\nfile b seq 1 type i\n",
            "Found a non-monotonic sequence number",
        ),
        (
            "file d/a seq 1 type b\n",
            "File can't be a path, just a filename",
        ),
        (
            "file a seq 1 type b\n\n",
            "Invalid AOF manifest file format",
        ),
    ] {
        scratch.write("m.manifest", manifest.as_bytes());
        let outcome = check_aof(scratch.path(), &["m.manifest"]);
        assert_eq!(outcome.code, 1, "{manifest}");
        let last = outcome
            .lines()
            .into_iter()
            .rev()
            .find(|line| !line.is_empty())
            .and_then(log_text)
            .map(str::to_owned);
        assert_eq!(last.as_deref(), Some(error), "{manifest}");
    }
    // A base that does not exist, then an incremental file that does not.
    scratch.write("m.manifest", b"file nothere seq 1 type b\n");
    assert_eq!(
        check_aof(scratch.path(), &["m.manifest"]).lines(),
        [
            "Start checking Multi Part AOF",
            "Cannot open file ./nothere: No such file or directory",
        ]
    );
    scratch.write(
        "m.manifest",
        b"file appendonly.aof.1.base.aof seq 1 type b\nfile nothere seq 1 type i\n",
    );
    let missing = check_aof(scratch.path(), &["m.manifest"]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.lines().last().copied(),
        Some("Cannot open file ./nothere: No such file or directory, aborting...")
    );
    // Only history: nothing to check.
    scratch.write("m.manifest", b"# comment\nfile a seq 1 type h\n");
    assert_eq!(
        check_aof(scratch.path(), &["m.manifest"]).lines(),
        [
            "Start checking Multi Part AOF",
            "All AOF files and manifest are valid"
        ]
    );
    // An old-style AOF whose commands hold manifest-looking text is no manifest.
    scratch.write(
        "old.aof",
        &commands(&[
            &["set", "file", "file"],
            &["set", "file appendonly.aof.2.base.rdb seq 2 type b", "x"],
        ]),
    );
    let old = check_aof(scratch.path(), &["old.aof"]);
    assert_eq!(old.code, 0);
    assert_eq!(old.lines()[0], "Start checking Old-Style AOF");
}

#[test]
fn usage_and_unreadable_input() {
    let scratch = Scratch::new("usage");
    let link = scratch.link("valkey-check-aof", &binary());
    let program = link.to_string_lossy().into_owned();
    for args in [
        &[][..],
        &["a", "b"],
        &["--fix", "a", "b"],
        &["a", "b", "c", "d"],
    ] {
        let outcome = run_program(&link, args, scratch.path(), b"");
        assert_eq!(outcome.code, 1);
        assert_eq!(
            outcome.stdout,
            format!("Usage: {program} [--fix|--truncate-to-timestamp $timestamp] <file.manifest|file.aof>\n")
        );
    }
    let outcome = check_aof(scratch.path(), &["nothere.aof"]);
    assert_eq!(
        (outcome.code, outcome.stdout.as_str()),
        (
            1,
            "Cannot open file nothere.aof: No such file or directory\n"
        )
    );
}

#[test]
fn rdb_check_reports_as_redis_check_rdb() {
    let scratch = Scratch::new("rdb");
    let good = std::fs::read(fixture("rdb/hash-ziplist.rdb")).expect("fixture");
    scratch.write("good.rdb", &good);
    let header = [
        "[offset 0] Checking RDB file good.rdb",
        "[offset 32] AUX FIELD redis-ver = '255.255.255'",
        "[offset 46] AUX FIELD redis-bits = '64'",
        "[offset 58] AUX FIELD ctime = '1620466888'",
        "[offset 73] AUX FIELD used-mem = '830864'",
        "[offset 89] AUX FIELD aof-preamble = '0'",
        "[offset 91] Selecting DB ID 0",
    ];
    let link = scratch.link("cinnabar-check-rdb", &binary());
    for outcome in [
        run_program(&link, &["good.rdb"], scratch.path(), b""),
        check_rdb(scratch.path(), &["good.rdb"]),
    ] {
        assert_eq!(outcome.code, 0);
        let mut expected = header.to_vec();
        expected.extend([
            "[offset 137] Checksum OK",
            "[offset 137] \\o/ RDB looks OK! \\o/",
            "[info] 1 keys read",
            "[info] 0 expires",
            "[info] 0 already expired",
        ]);
        assert_eq!(outcome.lines(), expected);
    }
    let mut corrupt = good.clone();
    corrupt[136] ^= 1;
    scratch.write("good.rdb", &corrupt);
    let crc = check_rdb(scratch.path(), &["good.rdb"]);
    assert_eq!(crc.code, 1);
    let mut expected = header.to_vec();
    expected.extend([
        "--- RDB ERROR DETECTED ---",
        "[offset 137] RDB CRC error",
        "[additional info] While doing: check-sum",
        "[info] 1 keys read",
        "[info] 0 expires",
        "[info] 0 already expired",
    ]);
    assert_eq!(crc.lines(), expected);
    scratch.write("good.rdb", &good[..85]);
    let truncated = check_rdb(scratch.path(), &["good.rdb"]);
    assert_eq!(truncated.code, 1);
    assert_eq!(
        &truncated.lines()[5..],
        [
            "--- RDB ERROR DETECTED ---",
            "[offset 75] Unexpected EOF reading RDB file",
            "[additional info] While doing: read-aux",
            "[additional info] Reading type 0 (string)",
            "[info] 0 keys read",
            "[info] 0 expires",
            "[info] 0 already expired",
        ]
    );
    // Empty collections are refused as Redis's checker refuses them.
    let empty_keys = run_program(
        &link,
        &[fixture("rdb/corrupt_empty_keys.rdb")
            .to_str()
            .expect("utf-8")],
        scratch.path(),
        b"",
    );
    assert_eq!(empty_keys.code, 1);
    assert_eq!(
        &empty_keys.lines()[7..10],
        [
            "--- RDB ERROR DETECTED ---",
            "[offset 100] Unexpected EOF reading RDB file",
            "[additional info] While doing: read-object-value",
        ]
    );
    // Every type and encoding Redis 7.0 writes, with an expiry and two databases.
    let all_types = check_rdb(
        scratch.path(),
        &[fixture("rdb/redis-7.0-all-types.rdb")
            .to_str()
            .expect("utf-8")],
    );
    assert_eq!(all_types.code, 0);
    assert_eq!(
        &all_types.lines()[6..],
        [
            "[offset 82] Selecting DB ID 0",
            "[offset 47649] Selecting DB ID 3",
            "[offset 47678] Checksum OK",
            "[offset 47678] \\o/ RDB looks OK! \\o/",
            "[info] 25 keys read",
            "[info] 1 expires",
            // `str:ttl` expires at 2026-11-22 20:56:45 UTC (Redis wrote it with a one-year TTL).
            if expired(1_795_381_005_584) {
                "[info] 1 already expired"
            } else {
                "[info] 0 already expired"
            },
        ]
    );
    // A file that cannot be opened: the first line only.
    let missing = check_rdb(scratch.path(), &["nothere.rdb"]);
    assert_eq!(
        (missing.code, missing.stdout.as_str()),
        (1, "[offset 0] Checking RDB file nothere.rdb\n")
    );
    let usage = check_rdb(scratch.path(), &[]);
    assert_eq!((usage.code, usage.stdout.as_str()), (1, ""));
    assert_eq!(
        usage.stderr,
        format!("Usage: {} check-rdb <rdb-file-name>\n", binary().display())
    );
    let version = run_program(&link, &["-v"], scratch.path(), b"");
    assert_eq!(
        (version.code, version.stdout.as_str()),
        (0, "redis-check-rdb 7.2.4\n")
    );
}

/// The same files through the reference server's own tools (Redis 7.0's redis-check-aof and
/// redis-check-rdb: the server binary run under those names) and through ours: the same output
/// and exit code, and the same file afterwards. Redis 7.0 names an RDB preamble by the file's
/// name where 7.2 (and Cinnabar) give its path; the cases avoid that line.
#[test]
fn same_reports_as_the_reference_tools() {
    let Some(reference) = reference_binary() else {
        return;
    };
    let tools = Scratch::new("reference-tools");
    let reference_aof = tools.link("redis-check-aof", Path::new(&reference));
    let reference_rdb = tools.link("redis-check-rdb", Path::new(&reference));
    let ours_aof = tools.link("cinnabar-check-aof", &binary());
    let ours_rdb = tools.link("cinnabar-check-rdb", &binary());
    let set_foo = command(&["set", "foo", "hello"]);
    let with = |tail: &[u8]| {
        let mut bytes = set_foo.clone();
        bytes.extend_from_slice(tail);
        bytes
    };
    let preamble = {
        let mut bytes = std::fs::read(fixture("rdb/hash-ziplist.rdb")).expect("fixture");
        bytes.extend_from_slice(&set_foo);
        bytes
    };
    let aof_cases: Vec<(&str, Vec<u8>, Vec<&str>, &[u8])> = vec![
        ("valid", with(&command(&["get", "foo"])), vec![], b""),
        ("format", with(b"!!!"), vec![], b""),
        ("format-fix", with(b"!!!"), vec!["--fix"], b"y\n"),
        ("format-no", with(b"!!!"), vec!["--fix"], b"n\n"),
        (
            "short",
            with(&command(&["set", "bar", "world"])[..30]),
            vec!["--fix"],
            b"Y",
        ),
        (
            "multi",
            with(&commands(&[&["multi"], &["set", "a", "b"]])),
            vec![],
            b"",
        ),
        ("nested", commands(&[&["multi"], &["MULTI"]]), vec![], b""),
        ("exec", commands(&[&["exec"]]), vec![], b""),
        ("header", b"*2\r\n$3 \r\nabc\r\n".to_vec(), vec![], b""),
        ("prefix", b"*2\r\n*3\r\nabc\r\n".to_vec(), vec![], b""),
        ("cut", b"*3".to_vec(), vec![], b""),
        ("empty-count", b"*\r\n*-2\r\n".to_vec(), vec![], b""),
        ("negative", b"*1\r\n$-1\r\n".to_vec(), vec![], b""),
        ("high", with(b"*1\r\n$2\r\nab\x80\x81"), vec![], b""),
        (
            "timestamps",
            timestamped(),
            vec!["--truncate-to-timestamp", "1628217471"],
            b"",
        ),
        (
            "timestamps-none",
            timestamped(),
            vec!["--truncate-to-timestamp", "1628217474"],
            b"",
        ),
        (
            "timestamps-all",
            timestamped(),
            vec!["--truncate-to-timestamp", "1"],
            b"",
        ),
        (
            "timestamp-bad",
            b"#TS:1x\r\n".to_vec(),
            vec!["--truncate-to-timestamp", "1"],
            b"",
        ),
        (
            "timestamp-arg",
            set_foo.clone(),
            vec!["--truncate-to-timestamp", "x"],
            b"",
        ),
        ("empty", Vec::new(), vec![], b""),
        ("preamble-cut", preamble[..150].to_vec(), vec![], b""),
    ];
    for (name, bytes, flags, answer) in &aof_cases {
        let mut outcomes = Vec::new();
        for program in [&reference_aof, &ours_aof] {
            let scratch = Scratch::new(name);
            scratch.write("x.aof", bytes);
            let mut args = flags.clone();
            args.push("x.aof");
            let outcome = run_program(program, &args, scratch.path(), answer);
            outcomes.push((outcome.code, outcome.stdout, scratch.read("x.aof")));
        }
        assert_eq!(outcomes[0], outcomes[1], "case {name}");
    }
    // A manifest: base, then an incremental file that fails.
    let mut outcomes = Vec::new();
    for program in [&reference_aof, &ours_aof] {
        let scratch = Scratch::new("reference-manifest");
        base_and_incr(&scratch, &set_foo, &with(b"*1\r\n"));
        let outcome = run_program(program, &["appendonly.aof.manifest"], scratch.path(), b"");
        outcomes.push((outcome.code, outcome.stdout));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    let good = std::fs::read(fixture("rdb/hash-ziplist.rdb")).expect("fixture");
    let mut crc = good.clone();
    crc[136] ^= 1;
    let mut expiring = b"REDIS0009\xfe\x00".to_vec();
    expiring.extend_from_slice(b"\xfc\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01a\x01v");
    expiring.extend_from_slice(b"\xfd\xff\xff\xff\x7f\x00\x01b\x01v\xff");
    expiring.extend_from_slice(&[0; 8]);
    let rdb_cases: Vec<(&str, Vec<u8>)> = vec![
        ("good", good.clone()),
        ("crc", crc),
        ("cut-aux", good[..85].to_vec()),
        ("cut-value", good[..100].to_vec()),
        ("cut-checksum", good[..133].to_vec()),
        ("signature", b"REDIX0009".to_vec()),
        ("version", b"REDIS0099".to_vec()),
        ("short", b"RED".to_vec()),
        ("type", b"REDIS0009\x08".to_vec()),
        ("expiring", expiring),
    ];
    for (name, bytes) in &rdb_cases {
        let mut outcomes = Vec::new();
        for program in [&reference_rdb, &ours_rdb] {
            let scratch = Scratch::new(name);
            scratch.write("x.rdb", bytes);
            let outcome = run_program(program, &["x.rdb"], scratch.path(), b"");
            outcomes.push((outcome.code, outcome.stdout));
        }
        assert_eq!(outcomes[0], outcomes[1], "case {name}");
    }
    for fixture_name in [
        "corrupt_empty_keys.rdb",
        "encodings.rdb",
        "hash-zipmap.rdb",
        "list-quicklist.rdb",
        "redis-7.0-all-types.rdb",
        "scriptbackup.rdb",
        "zset-ziplist.rdb",
    ] {
        let path = fixture(&format!("rdb/{fixture_name}"));
        let path = path.to_str().expect("utf-8");
        let reference = run_program(&reference_rdb, &[path], tools.path(), b"");
        let ours = run_program(&ours_rdb, &[path], tools.path(), b"");
        assert_eq!(
            (reference.code, reference.stdout),
            (ours.code, ours.stdout),
            "{fixture_name}"
        );
    }
}
