//! The append-only file: restart with the same directory, Redis 7's multi-part layout (readable
//! by the real redis-server, and Redis's files readable by Cinnabar), BGREWRITEAOF, truncated and
//! corrupt files, and the crash test (kill -9 under concurrent writers with `appendfsync always`:
//! nothing acknowledged is lost).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "cinnabar-aof-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("log"));
    }
}

/// A server process (Cinnabar or redis-server) on a directory.
struct Instance {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// Whether the server answering on `port` is process `pid` (see `server_pid_matches`).
fn serves(port: u16, pid: u32) -> bool {
    server_pid_matches(port, pid) == Some(true)
}

enum Started {
    Running(Instance),
    Exited { code: Option<i32>, log: String },
}

fn spawn(program: &str, dir: &Path, log: &Path, extra: &[&str]) -> Started {
    for _attempt in 0..5 {
        let port = free_port();
        let _ = std::fs::remove_file(log);
        let mut child = Command::new(program)
            .args(["--port", &port.to_string(), "--save", "", "--dir"])
            .arg(dir)
            .args(["--logfile"])
            .arg(log)
            .args(["--loglevel", "notice", "--enable-debug-command", "yes"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if serves(port, child.id()) {
                return Started::Running(Instance {
                    child,
                    port,
                    log: log.to_path_buf(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                if log.contains("Address already in use") || log.contains("Failed listening") {
                    break;
                }
                return Started::Exited {
                    code: status.code(),
                    log,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{program} did not start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    panic!("{program} did not start");
}

fn cinnabar(dir: &Path, extra: &[&str]) -> Started {
    let log = dir.with_extension("log");
    spawn(env!("CARGO_BIN_EXE_cinnabar-server"), dir, &log, extra)
}

fn running(started: Started) -> Instance {
    match started {
        Started::Running(instance) => instance,
        Started::Exited { code, log } => panic!("server exited with {code:?}: {log}"),
    }
}

impl Instance {
    fn client(&self) -> RawClient {
        RawClient::connect(self.port)
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .expect("client")
            .get_connection()
            .expect("connection")
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SHUTDOWN (no RDB save) and wait for the exit.
    fn shutdown(mut self) {
        let mut client = self.client();
        client.send(&[b"SHUTDOWN", b"NOSAVE"]);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("server did not exit");
    }

    fn info_field(&self, name: &str) -> String {
        let info = self.client().cmd("INFO persistence").text();
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {info}"))
            .trim()
            .to_string()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).expect("manifest")
}

fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every key of databases 0..4 with its type, content (order-independent where the type is
/// unordered) and whether it expires: comparable between Cinnabar and redis-server.
fn dataset(connection: &mut redis::Connection) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for database in 0..4 {
        let _: () = redis::cmd("SELECT")
            .arg(database)
            .query(connection)
            .expect("select");
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(connection).expect("keys");
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query(connection)
                .expect("type");
            let content = match kind.as_str() {
                "string" => {
                    let value: Vec<u8> =
                        redis::cmd("GET").arg(&key).query(connection).expect("get");
                    format!("{value:?}")
                }
                "list" => {
                    let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query(connection)
                        .expect("lrange");
                    format!("{items:?}")
                }
                "set" => {
                    let mut items: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query(connection)
                        .expect("smembers");
                    items.sort();
                    format!("{items:?}")
                }
                "zset" => {
                    let items: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query(connection)
                        .expect("zrange");
                    format!("{items:?}")
                }
                "hash" => {
                    let mut items: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query(connection)
                        .expect("hgetall");
                    items.sort();
                    format!("{items:?}")
                }
                "stream" => {
                    let entries: redis::Value = redis::cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .query(connection)
                        .expect("xrange");
                    let groups: redis::Value = redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&key)
                        .query(connection)
                        .expect("xinfo");
                    format!("{entries:?} {groups:?}")
                }
                other => other.to_string(),
            };
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query(connection)
                .expect("pttl");
            all.insert(
                format!("{database}:{}", String::from_utf8_lossy(&key)),
                format!("{kind} {content} expires={}", ttl >= 0),
            );
        }
    }
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query(connection)
        .expect("select");
    all
}

/// A dataset with every type, several databases, a transaction and expiries.
fn write_sample(client: &mut RawClient) {
    assert_eq!(client.cmd("SET s hello"), ok());
    assert_eq!(client.cmd("SET n 10"), ok());
    assert_eq!(client.cmd("INCRBY n 5"), int(15));
    assert_eq!(client.cmd("SET ttl v EX 1000"), ok());
    assert_eq!(client.cmd("RPUSH l a b c"), int(3));
    assert_eq!(client.cmd("LPOP l"), bulk("a"));
    assert_eq!(client.cmd("SADD set x y z"), int(3));
    assert_eq!(client.cmd("ZADD z 1.5 a 2 b"), int(2));
    assert_eq!(client.cmd("HSET h f1 v1 f2 v2"), int(2));
    assert_eq!(client.cmd("XADD st 1-1 f v").text(), "1-1");
    assert_eq!(client.cmd("XADD st 2-1 g w").text(), "2-1");
    assert_eq!(client.cmd("XGROUP CREATE st grp 0"), ok());
    assert_eq!(
        client
            .cmd("XREADGROUP GROUP grp alice COUNT 1 STREAMS st >")
            .items()
            .len(),
        1
    );
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET t1 1"), status("QUEUED"));
    assert_eq!(client.cmd("SET t2 2"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok(), ok()]));
    assert_eq!(client.cmd("SELECT 2"), ok());
    assert_eq!(client.cmd("SET other db2"), ok());
    assert_eq!(client.cmd("SELECT 0"), ok());
    assert_eq!(client.cmd("SET gone x PX 1"), ok());
    // Once expired for good, so that every later look at the dataset agrees.
    poll("the 1 ms key to expire", || {
        client.cmd("EXISTS gone") == int(0)
    });
    assert_eq!(client.cmd("DEL s"), int(1));
    assert_eq!(client.cmd("SET s again"), ok());
}

#[test]
fn restart_with_the_same_directory_keeps_every_write() {
    let scratch = Scratch::new("restart");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    write_sample(&mut client);
    assert_eq!(server.info_field("aof_enabled"), "1");
    assert_eq!(server.info_field("aof_last_write_status"), "ok");
    let before = dataset(&mut server.redis());
    assert!(before.contains_key("2:other"));
    server.kill();
    assert_eq!(
        manifest(dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let server = running(cinnabar(dir, &args));
    assert_eq!(dataset(&mut server.redis()), before);
    assert_eq!(server.client().cmd("GET s"), bulk("again"));
    // A graceful shutdown then a restart under `everysec`.
    server.client().cmd("SET after restart");
    server.shutdown();
    let server = running(cinnabar(dir, &["--appendonly", "yes"]));
    assert_eq!(server.client().cmd("GET after"), bulk("restart"));
}

/// A slow script replayed by DEBUG LOADAOF makes other clients' commands fail with LOADING
/// (not BUSY), as in Redis; the replay then completes.
#[test]
fn slow_script_in_a_replayed_aof_answers_loading() {
    let scratch = Scratch::new("loadaof-slow");
    let dir = scratch.path();
    let args = [
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        "--busy-reply-threshold",
        "1",
    ];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    // Scripts are propagated as their effects; a verbatim one (as older servers wrote them)
    // is appended by hand.
    assert_eq!(client.cmd("SET before script"), ok());
    let script: &[u8] =
        b"redis.call('set',KEYS[1],'y'); for i=1,3000000 do redis.call('ping') end return 'ok'";
    append_to_incr(
        dir,
        "appendonly.aof.1.incr.aof",
        &RawClient::encode(&[b"EVAL", script, b"1", b"x"]),
    );
    let mut loader = server.client();
    loader.send(&[b"DEBUG", b"LOADAOF"]);
    let mut other = server.client();
    let reply = loop {
        match other.cmd("PING") {
            Reply::Status(pong) if pong == "PONG" => continue,
            reply => break reply,
        }
    };
    assert_eq!(
        reply,
        error("LOADING Redis is loading the dataset in memory")
    );
    assert_eq!(loader.read_reply(), ok());
    assert_eq!(other.cmd("GET x"), bulk("y"));
}

#[test]
fn debug_loadaof_replays_the_aof_without_appending_to_it() {
    let scratch = Scratch::new("loadaof");
    let dir = scratch.path();
    let server = running(cinnabar(dir, &["--enable-debug-command", "yes"]));
    let mut client = server.client();
    assert_eq!(
        client.cmd("DEBUG LOADAOF"),
        error("ERR the append only file does not exist")
    );
    assert_eq!(client.cmd("CONFIG SET appendonly yes"), ok());
    poll("the first rewrite", || {
        server.info_field("aof_rewrite_in_progress") == "0"
    });
    write_sample(&mut client);
    let before = dataset(&mut server.redis());
    let incremental = aof_dir(dir).join("appendonly.aof.1.incr.aof");
    // Everything written so far is flushed by the command itself (appendfsync everysec).
    assert_eq!(client.cmd("DEBUG LOADAOF"), ok());
    let size = std::fs::metadata(&incremental).expect("incr file").len();
    assert_eq!(dataset(&mut server.redis()), before);
    // The replay appended nothing, and the AOF goes on after it.
    assert_eq!(client.cmd("DEBUG LOADAOF"), ok());
    assert_eq!(
        std::fs::metadata(&incremental).expect("incr file").len(),
        size
    );
    assert_eq!(client.cmd("SET after loadaof"), ok());
    assert_eq!(client.cmd("DEL s"), int(1));
    assert_eq!(client.cmd("DEBUG LOADAOF"), ok());
    assert_eq!(client.cmd("GET after"), bulk("loadaof"));
    assert_eq!(client.cmd("EXISTS s"), int(0));
    assert!(std::fs::metadata(&incremental).expect("incr file").len() > size);
}

#[test]
fn streams_replay_their_approximate_trims_and_empty_streams_rewrite() {
    let scratch = Scratch::new("streams");
    let dir = scratch.path();
    let args = [
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--stream-node-max-entries",
        "10",
    ];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    for _ in 0..100 {
        client.cmd("XADD trimmed * item v");
    }
    // `~` with LIMIT is written as `=` with the length reached; the replay ignores the LIMIT
    // (as Redis's AOF loader does), even with smaller nodes.
    client.cmd("XADD trimmed MAXLEN ~ 55 LIMIT 30 * item v");
    assert_eq!(client.cmd("XLEN trimmed"), int(71));
    assert_eq!(client.cmd("CONFIG SET stream-node-max-entries 1"), ok());
    assert_eq!(client.cmd("DEBUG LOADAOF"), ok());
    assert_eq!(client.cmd("XLEN trimmed"), int(71));
    // An empty stream whose last ID is 0-0, with a group, survives a rewrite to AOF commands.
    assert_eq!(client.cmd("XGROUP CREATE empty readers $ MKSTREAM"), ok());
    let groups = client.cmd("XINFO GROUPS empty");
    assert_eq!(
        client.cmd("BGREWRITEAOF"),
        status("Background append only file rewriting started")
    );
    poll("the rewrite", || {
        server.info_field("aof_rewrite_in_progress") == "0"
    });
    assert_eq!(client.cmd("DEBUG LOADAOF"), ok());
    assert_eq!(client.cmd("XLEN empty"), int(0));
    assert_eq!(client.cmd("XINFO GROUPS empty"), groups);
    assert_eq!(client.cmd("XLEN trimmed"), int(71));
}

#[test]
fn nothing_expires_while_the_aof_loads() {
    let scratch = Scratch::new("expiry");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    let written = Instant::now();
    assert_eq!(client.cmd("SET counter 1 PX 300"), ok());
    assert_eq!(client.cmd("INCR counter"), int(2));
    assert_eq!(client.cmd("RPUSH list a"), int(1));
    assert_eq!(client.cmd("PEXPIRE list 300"), int(1));
    assert_eq!(client.cmd("RPUSH list b"), int(2));
    server.kill();
    // The TTLs pass while the server is down (nothing propagates a DEL for them).
    poll("the TTLs to pass", || {
        written.elapsed() > Duration::from_millis(400)
    });
    // Replayed with the clock stopped, the INCR finds its key (and its TTL) as it did: both
    // keys are gone once loaded, instead of a counter of 1 without TTL.
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    assert_eq!(client.cmd("GET counter"), Reply::Nil);
    assert_eq!(client.cmd("EXISTS list"), int(0));
}

#[test]
fn appendonly_no_ignores_the_files_and_config_set_yes_starts_the_aof() {
    let scratch = Scratch::new("config");
    let dir = scratch.path();
    let server = running(cinnabar(dir, &[]));
    let mut client = server.client();
    assert_eq!(client.cmd("SET before aof"), ok());
    assert_eq!(server.info_field("aof_enabled"), "0");
    assert!(!aof_dir(dir).exists());
    assert_eq!(client.cmd("CONFIG SET appendonly yes"), ok());
    poll("the AOF to start", || {
        server.info_field("aof_enabled") == "1"
            && server.info_field("aof_rewrite_in_progress") == "0"
    });
    assert_eq!(client.cmd("SET during aof"), ok());
    assert_eq!(client.cmd("CONFIG SET appendfsync always"), ok());
    assert_eq!(client.cmd("SET synced yes"), ok());
    server.kill();
    let server = running(cinnabar(dir, &["--appendonly", "yes"]));
    let mut client = server.client();
    assert_eq!(client.cmd("GET before"), bulk("aof"));
    assert_eq!(client.cmd("GET during"), bulk("aof"));
    assert_eq!(client.cmd("GET synced"), bulk("yes"));
    assert_eq!(client.cmd("CONFIG SET appendonly no"), ok());
    assert_eq!(server.info_field("aof_enabled"), "0");
    assert_eq!(client.cmd("SET notlogged 1"), ok());
    server.kill();
    let server = running(cinnabar(dir, &["--appendonly", "yes"]));
    assert_eq!(server.client().cmd("GET notlogged"), Reply::Nil);
    assert_eq!(server.client().cmd("GET synced"), bulk("yes"));
}

#[test]
fn bgrewriteaof_replaces_base_and_incr_files() {
    let scratch = Scratch::new("rewrite");
    let dir = scratch.path();
    // The base as commands (the RDB base, Redis's default, is what the other tests use).
    let args = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        "no",
    ];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    write_sample(&mut client);
    for index in 0..200 {
        client.cmd(&format!("RPUSH biglist {index}"));
        client.cmd(&format!("SADD bigset {index}"));
        client.cmd(&format!("HSET bighash f{index} {index}"));
        client.cmd(&format!("ZADD bigzset {index} m{index}"));
    }
    assert_eq!(
        client.cmd("BGREWRITEAOF"),
        status("Background append only file rewriting started")
    );
    poll("the rewrite", || server.info_field("aof_rewrites") == "1");
    assert_eq!(server.info_field("aof_rewrite_in_progress"), "0");
    assert_eq!(server.info_field("aof_last_bgrewrite_status"), "ok");
    assert_eq!(
        manifest(dir),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let mut files: Vec<String> = std::fs::read_dir(aof_dir(dir))
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "appendonly.aof.2.base.aof",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    // Collections are rewritten 64 elements per command at most.
    let base = std::fs::read(aof_dir(dir).join("appendonly.aof.2.base.aof")).expect("base");
    let rpushes = base
        .windows(7)
        .filter(|window| window == b"\r\nRPUSH")
        .count();
    assert_eq!(rpushes, 1 + 200_usize.div_ceil(64));
    assert_eq!(client.cmd("SET after rewrite"), ok());
    let before = dataset(&mut server.redis());
    server.kill();
    let server = running(cinnabar(dir, &args));
    assert_eq!(dataset(&mut server.redis()), before);
    // Inside a transaction the rewrite is scheduled for after it.
    let mut client = server.client();
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("BGREWRITEAOF"), status("QUEUED"));
    assert_eq!(
        client.cmd("EXEC"),
        array(vec![status(
            "Background append only file rewriting scheduled"
        )])
    );
    poll("the scheduled rewrite", || {
        server.info_field("aof_rewrites") == "1"
    });
    assert_eq!(
        client.cmd("BGREWRITEAOF arg"),
        error("ERR wrong number of arguments for 'bgrewriteaof' command")
    );
}

/// `aof-timestamp-enabled`: a `#TS:` line precedes the first write of each second in the
/// incremental file and opens a command-format base; such files load back.
#[test]
fn timestamp_annotations_are_written_and_loaded() {
    let scratch = Scratch::new("timestamps");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG SET aof-timestamp-enabled yes"), ok());
    let before_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(client.cmd("SET foo bar"), ok());
    let incremental = aof_dir(dir).join("appendonly.aof.1.incr.aof");
    poll("the write", || {
        std::fs::read(&incremental).is_ok_and(|data| data.ends_with(b"bar\r\n"))
    });
    let data = String::from_utf8(std::fs::read(&incremental).unwrap()).unwrap();
    let first = data.lines().next().unwrap();
    let stamp: u64 = first.strip_prefix("#TS:").expect(&data).parse().unwrap();
    assert!(stamp >= before_s, "{first}");
    assert!(
        data[first.len() + 2..].starts_with("*2\r\n$6\r\nSELECT\r\n"),
        "{data}"
    );
    assert_eq!(
        client.cmd("BGREWRITEAOF"),
        status("Background append only file rewriting started")
    );
    poll("the rewrite", || server.info_field("aof_rewrites") == "1");
    let base = std::fs::read(aof_dir(dir).join("appendonly.aof.2.base.aof")).unwrap();
    assert!(
        base.starts_with(b"#TS:"),
        "{}",
        String::from_utf8_lossy(&base)
    );
    assert_eq!(client.cmd("SET after rewrite"), ok());
    let before = dataset(&mut server.redis());
    server.kill();
    let server = running(cinnabar(dir, &args));
    assert_eq!(dataset(&mut server.redis()), before);
}

/// Under `everysec` a write reaches the file (not the disk) before its reply, as in Redis: a
/// crash of the process loses nothing that was acknowledged.
#[test]
fn everysec_writes_before_replying() {
    let scratch = Scratch::new("everysec");
    let dir = scratch.path();
    let server = running(cinnabar(
        dir,
        &["--appendonly", "yes", "--appendfsync", "everysec"],
    ));
    let mut client = server.client();
    let incremental = aof_dir(dir).join("appendonly.aof.1.incr.aof");
    for index in 0..50 {
        let value = format!("value-{index}");
        assert_eq!(client.call(&[b"SET", b"key", value.as_bytes()]), ok());
        let data = std::fs::read(&incremental).unwrap();
        let expected = format!("${}\r\n{value}\r\n", value.len());
        assert!(
            data.ends_with(expected.as_bytes()),
            "write {index} not in the file"
        );
    }
}

/// DEBUG AOF-FLUSH-SLEEP delays the writer; under `appendfsync always` a write is still
/// answered only once it is in the file.
#[test]
fn replies_wait_for_a_slow_aof_flush() {
    let scratch = Scratch::new("flush-sleep");
    let dir = scratch.path();
    let args = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--enable-debug-command",
        "yes",
    ];
    let server = running(cinnabar(dir, &args));
    let mut client = server.client();
    assert_eq!(client.cmd("DEBUG AOF-FLUSH-SLEEP 200000"), ok());
    let incremental = aof_dir(dir).join("appendonly.aof.1.incr.aof");
    let size_before = std::fs::metadata(&incremental).unwrap().len();
    assert_eq!(client.cmd("INCR counter"), int(1));
    let size_after = std::fs::metadata(&incremental).unwrap().len();
    assert!(size_after > size_before, "{size_before} -> {size_after}");
    assert_eq!(client.cmd("DEBUG AOF-FLUSH-SLEEP 0"), ok());
}

/// A rewrite runs beside the commands (a snapshot, no stop-the-world): counters that
/// transactions always increment together stay equal in the files, every acknowledged write
/// survives a kill, and BGSAVE and BGREWRITEAOF never run at once (one waits, as in Redis).
#[test]
fn rewrite_is_a_point_in_time_beside_writes_and_excludes_bgsave() {
    for preamble in ["yes", "no"] {
        let scratch = Scratch::new("rewrite-snapshot");
        let dir = scratch.path();
        let args = [
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--aof-use-rdb-preamble",
            preamble,
        ];
        let server = running(cinnabar(dir, &args));
        let mut client = server.client();
        fill(&mut client, 4, 500, b"filler value");
        // 2000 keys at 500 us each: the walk takes about a second.
        assert_eq!(client.cmd("CONFIG SET rdb-key-save-delay 500"), ok());
        let writers = CounterWriters::start(server.port, 2, 8);
        assert_eq!(
            client.cmd("BGREWRITEAOF"),
            status("Background append only file rewriting started")
        );
        // The rewrite's snapshot walks: no BGSAVE beside it.
        assert_eq!(
            client.cmd("BGSAVE"),
            error(
                "ERR An AOF log rewriting in progress: can't BGSAVE right now. \
                 Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."
            )
        );
        assert_eq!(
            client.cmd("BGSAVE SCHEDULE"),
            status("Background saving scheduled")
        );
        poll("the rewrite", || server.info_field("aof_rewrites") == "1");
        assert_eq!(server.info_field("aof_last_bgrewrite_status"), "ok");
        // The scheduled BGSAVE runs once the rewrite is done; a rewrite asked for meanwhile
        // waits for it in turn.
        poll("the scheduled save", || {
            server.info_field("rdb_bgsave_in_progress") == "1"
                || server.info_field("rdb_changes_since_last_save") == "0"
        });
        let during_save = client.cmd("BGREWRITEAOF");
        assert!(
            during_save == status("Background append only file rewriting scheduled")
                || during_save == status("Background append only file rewriting started"),
            "{during_save:?}"
        );
        poll("the second rewrite", || {
            server.info_field("aof_rewrites") == "2"
        });
        let counters = writers.counters.clone();
        let rounds = writers.stop();
        assert_eq!(client.cmd("GET counter:0"), bulk(&rounds.to_string()));
        let before = dataset(&mut server.redis());
        server.kill();
        let server = running(cinnabar(dir, &args));
        assert_eq!(dataset(&mut server.redis()), before, "preamble {preamble}");
        let mut reader = server.client();
        for counter in &counters {
            assert_eq!(
                reader.call(&[b"GET", counter.as_bytes()]),
                bulk(&rounds.to_string())
            );
        }
    }
}

/// Appends bytes to the last incremental file.
fn append_to_incr(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = aof_dir(dir).join(name);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open incr");
    file.write_all(bytes).expect("append");
    path
}

#[test]
fn truncated_last_command_is_cut_or_refused() {
    let scratch = Scratch::new("truncated");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("SET kept 1"), ok());
    server.kill();
    let good_length = std::fs::metadata(aof_dir(dir).join("appendonly.aof.1.incr.aof"))
        .expect("stat")
        .len();
    append_to_incr(
        dir,
        "appendonly.aof.1.incr.aof",
        b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1",
    );
    match cinnabar(dir, &["--appendonly", "yes", "--aof-load-truncated", "no"]) {
        Started::Exited { code, log } => {
            assert_eq!(code, Some(1));
            assert!(
                log.contains("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."),
                "{log}"
            );
        }
        Started::Running(_) => panic!("a truncated AOF with aof-load-truncated no must not load"),
    }
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("GET kept"), bulk("1"));
    assert_eq!(server.client().cmd("GET lost"), Reply::Nil);
    let log = server.log();
    assert!(
        log.contains(
            "!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"
        ),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {good_length} !!!"
        )),
        "{log}"
    );
    assert!(
        log.contains(
            "AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"
        ),
        "{log}"
    );
    // New writes continue a well-formed file.
    assert_eq!(server.client().cmd("SET next 2"), ok());
    server.kill();
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("GET next"), bulk("2"));
    assert_eq!(server.client().cmd("GET kept"), bulk("1"));
}

#[test]
fn unfinished_transaction_is_reverted() {
    let scratch = Scratch::new("multi");
    let dir = scratch.path();
    let args = ["--appendonly", "yes"];
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("SET kept 1"), ok());
    server.shutdown();
    append_to_incr(
        dir,
        "appendonly.aof.1.incr.aof",
        b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r\n1\r\n",
    );
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("GET lost"), Reply::Nil);
    assert!(server.log().contains(
        "Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"
    ));
}

#[test]
fn corrupt_aof_stops_startup_naming_file_and_offset() {
    let scratch = Scratch::new("corrupt");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = running(cinnabar(dir, &args));
    assert_eq!(server.client().cmd("SET kept 1"), ok());
    server.kill();
    let path = aof_dir(dir).join("appendonly.aof.1.incr.aof");
    let offset = std::fs::metadata(&path).expect("stat").len();
    append_to_incr(
        dir,
        "appendonly.aof.1.incr.aof",
        b"garbage\r\n*1\r\n$4\r\nPING\r\n",
    );
    match cinnabar(dir, &args) {
        Started::Exited { code, log } => {
            assert_eq!(code, Some(1));
            assert!(
                log.contains(&format!("Bad file format reading the append only file appendonly.aof.1.incr.aof at byte offset {offset}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>")),
                "{log}"
            );
        }
        Started::Running(_) => panic!("a corrupt AOF must stop start-up"),
    }
    // A bad manifest is fatal too, with Redis's report.
    std::fs::write(
        aof_dir(dir).join("appendonly.aof.manifest"),
        "file x seq 1 type z\n",
    )
    .expect("write");
    match cinnabar(dir, &args) {
        Started::Exited { code, log } => {
            assert_eq!(code, Some(1));
            assert!(log.contains("Unknown AOF file type"), "{log}");
        }
        Started::Running(_) => panic!("a corrupt manifest must stop start-up"),
    }
}

#[test]
fn old_single_file_aof_is_upgraded() {
    let scratch = Scratch::new("upgrade");
    let dir = scratch.path();
    let mut old = Vec::new();
    for args in [
        &["SELECT", "0"][..],
        &["SET", "old", "style"],
        &["RPUSH", "l", "1", "2"],
    ] {
        old.extend_from_slice(&RawClient::encode(
            &args.iter().map(|arg| arg.as_bytes()).collect::<Vec<_>>(),
        ));
    }
    std::fs::write(dir.join("appendonly.aof"), &old).expect("write old aof");
    let server = running(cinnabar(dir, &["--appendonly", "yes"]));
    assert_eq!(server.client().cmd("GET old"), bulk("style"));
    assert_eq!(server.client().cmd("LRANGE l 0 -1"), bulks(&["1", "2"]));
    assert!(!dir.join("appendonly.aof").exists());
    assert_eq!(
        manifest(dir),
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}

/// redis-server, when installed (Debian's 7.0).
fn redis_server() -> Option<&'static str> {
    let path = "/usr/bin/redis-server";
    Path::new(path).exists().then_some(path)
}

fn redis(dir: &Path, extra: &[&str]) -> Instance {
    let log = dir.with_extension("redis.log");
    let instance = running(spawn(
        redis_server().expect("redis-server"),
        dir,
        &log,
        extra,
    ));
    // Redis accepts connections while it loads (replying -LOADING).
    poll("redis-server to load", || {
        matches!(instance.client().cmd("DBSIZE"), Reply::Integer(_))
    });
    instance
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn cinnabar_files_load_in_redis_and_redis_files_load_in_cinnabar() {
    if redis_server().is_none() {
        eprintln!("redis-server not installed: skipped");
        return;
    }
    // Cinnabar writes (a base from a rewrite, then an incremental file); Redis 7.0 reads.
    let scratch = Scratch::new("interop");
    let dir = scratch.path().join("cinnabar");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = running(cinnabar(&dir, &args));
    let mut client = server.client();
    write_sample(&mut client);
    assert_eq!(
        client.cmd("BGREWRITEAOF"),
        status("Background append only file rewriting started")
    );
    poll("the rewrite", || server.info_field("aof_rewrites") == "1");
    assert_eq!(client.cmd("SADD set w"), int(1));
    assert_eq!(client.cmd("SELECT 3"), ok());
    assert_eq!(client.cmd("HSET h3 a 1"), int(1));
    let expected = dataset(&mut server.redis());
    server.kill();
    let copy = scratch.path().join("for-redis");
    copy_dir(&dir, &copy);
    let reference = redis(&copy, &["--appendonly", "yes"]);
    assert_eq!(dataset(&mut reference.redis()), expected);
    drop(reference);

    // Redis writes an AOF-only multi-part AOF; Cinnabar reads it.
    let redis_dir = scratch.path().join("redis");
    std::fs::create_dir_all(&redis_dir).expect("mkdir");
    let reference = redis(
        &redis_dir,
        &[
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "no",
            "--appendfsync",
            "always",
        ],
    );
    let mut client = reference.client();
    write_sample(&mut client);
    assert_eq!(
        client.cmd("BGREWRITEAOF"),
        status("Background append only file rewriting started")
    );
    poll("redis's rewrite", || {
        reference.info_field("aof_rewrite_in_progress") == "0"
            && reference.info_field("aof_rewrites") == "1"
    });
    assert_eq!(client.cmd("RPUSH l tail"), int(3));
    let expected = dataset(&mut reference.redis());
    reference.shutdown();
    assert!(manifest(&redis_dir).contains("appendonly.aof.2.base.aof seq 2 type b"));
    let server = running(cinnabar(&redis_dir, &["--appendonly", "yes"]));
    assert_eq!(dataset(&mut server.redis()), expected);
}

/// Redis 7.0's own multi-part AOF (an RDB base and an incr file, from ../shared/reference)
/// loads as it is, with the same content in Cinnabar as in redis-server.
#[test]
fn reference_redis_multipart_aof_loads_like_in_redis() {
    let reference = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/aof/redis-7.0-multipart"
    ));
    let scratch = Scratch::new("reference");
    let mut expected = None;
    let programs: &[&str] = if redis_server().is_some() {
        &["redis", "cinnabar"]
    } else {
        &["cinnabar"]
    };
    for program in programs {
        let dir = scratch.path().join(program);
        std::fs::create_dir_all(aof_dir(&dir)).expect("mkdir");
        for name in [
            "appendonly.aof.manifest",
            "appendonly.aof.1.base.rdb",
            "appendonly.aof.1.incr.aof",
        ] {
            std::fs::copy(reference.join(name), aof_dir(&dir).join(name)).expect("copy");
        }
        let instance = if *program == "redis" {
            redis(&dir, &["--appendonly", "yes"])
        } else {
            running(cinnabar(&dir, &["--appendonly", "yes"]))
        };
        let content = dataset(&mut instance.redis());
        assert!(
            content.len() > 20,
            "{program}: {content:?} {}",
            instance.log()
        );
        assert_eq!(
            content.get("0:str:small").map(String::as_str),
            Some("string [104, 101, 108, 108, 111] expires=false"),
            "{program}"
        );
        match &expected {
            None => expected = Some(content),
            Some(expected) => assert_eq!(&content, expected),
        }
    }
}

/// THE CRASH TEST: 8 clients write (INCR of their own counter, RPUSH of unique values to their
/// own list) under `appendfsync always` while the server is killed with SIGKILL at random
/// moments. After each restart every acknowledged write is present.
#[test]
fn crash_loses_no_acknowledged_write_with_appendfsync_always() {
    let scratch = Scratch::new("crash");
    let dir = scratch.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    const CLIENTS: usize = 8;
    const CYCLES: usize = 20;
    // acknowledged[i] = (acknowledged INCRs, acknowledged RPUSH values) of client i.
    let mut acknowledged: Vec<(i64, Vec<String>)> = vec![(0, Vec::new()); CLIENTS];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let started = Instant::now();
    for cycle in 0..CYCLES {
        let server = running(cinnabar(dir, &args));
        // Everything acknowledged before is present.
        let mut checker = server.client();
        for (index, (incrs, values)) in acknowledged.iter().enumerate() {
            let counter = match checker.cmd(&format!("GET counter:{index}")) {
                Reply::Nil => 0,
                reply => reply.text().parse::<i64>().expect("counter"),
            };
            // An INCR in flight at the kill may have been applied without its reply.
            assert!(
                counter == *incrs || counter == *incrs + 1,
                "cycle {cycle}: counter {index} is {counter}, acknowledged {incrs}"
            );
            let list: Vec<String> = checker
                .cmd(&format!("LRANGE list:{index} 0 -1"))
                .items()
                .iter()
                .map(Reply::text)
                .collect();
            assert!(
                list.len() >= values.len() && list.len() <= values.len() + 1,
                "cycle {cycle}: list {index} has {} items, acknowledged {}",
                list.len(),
                values.len()
            );
            assert_eq!(
                &list[..values.len()],
                &values[..],
                "cycle {cycle}: list {index}"
            );
        }
        // Resynchronise with what survived (unacknowledged but applied writes included).
        for (index, entry) in acknowledged.iter_mut().enumerate() {
            if let Reply::Bulk(bytes) = checker.cmd(&format!("GET counter:{index}")) {
                entry.0 = String::from_utf8_lossy(&bytes).parse().expect("counter");
            }
            entry.1 = checker
                .cmd(&format!("LRANGE list:{index} 0 -1"))
                .items()
                .iter()
                .map(Reply::text)
                .collect();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let workers: Vec<_> = acknowledged
            .iter()
            .cloned()
            .enumerate()
            .map(|(index, (mut incrs, mut values))| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(stream) => stream,
                        Err(_) => return (incrs, values),
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
                    let mut sequence = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        sequence += 1;
                        let value = format!("c{cycle}-{sequence}");
                        let (request, is_incr) = if sequence % 2 == 0 {
                            (
                                RawClient::encode(&[
                                    b"INCR",
                                    format!("counter:{index}").as_bytes(),
                                ]),
                                true,
                            )
                        } else {
                            (
                                RawClient::encode(&[
                                    b"RPUSH",
                                    format!("list:{index}").as_bytes(),
                                    value.as_bytes(),
                                ]),
                                false,
                            )
                        };
                        if stream.write_all(&request).is_err() {
                            break;
                        }
                        let mut line = String::new();
                        match std::io::BufRead::read_line(&mut reader, &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        if !line.starts_with(':') {
                            break;
                        }
                        if is_incr {
                            incrs += 1;
                            assert_eq!(line.trim_end(), format!(":{incrs}"));
                        } else {
                            values.push(value);
                        }
                    }
                    (incrs, values)
                })
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 250));
        let mut server = server;
        // SIGKILL: no chance to flush anything.
        let _ = server.child.kill();
        let _ = server.child.wait();
        stop.store(true, Ordering::Relaxed);
        for (index, worker) in workers.into_iter().enumerate() {
            acknowledged[index] = worker.join().expect("worker");
        }
        drop(server);
    }
    let total: usize = acknowledged
        .iter()
        .map(|(incrs, values)| *incrs as usize + values.len())
        .sum();
    assert!(total > 100, "only {total} writes acknowledged");
    eprintln!(
        "crash test: {CYCLES} cycles, {total} acknowledged writes, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
