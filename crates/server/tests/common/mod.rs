//! Test support: start the real `cinnabar-server` binary on an ephemeral port and talk RESP to
//! it, asserting exact replies.
//!
//! `TestServer::start(&[...])` starts a server with extra command-line options and waits until
//! it accepts connections; dropping it kills the process. `server.client()` gives a
//! [`RawClient`] that sends commands and reads replies as [`Reply`] values (errors included), so
//! tests compare replies exactly as a client sees them. `server.redis()` gives a `redis` crate
//! connection for tests that want a real client library.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start accepting connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a test waits for any one reply before failing.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub port: u16,
    child: Child,
    pub dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// What a server on a port says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing answers (yet), or the reply was not understood.
    Silent,
    /// It wants AUTH, so it cannot say who it is.
    NeedsAuth,
    /// Process `pid`, still loading its dataset (commands get `-LOADING`).
    Loading(u32),
    /// Process `pid`, ready.
    Ready(u32),
}

/// Asks the server on `port` for its process id and loading state (`INFO server persistence`:
/// INFO runs while loading).
pub fn probe(port: u16) -> Probe {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return Probe::Silent;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if (&stream)
        .write_all(b"*3\r\n$4\r\nINFO\r\n$6\r\nserver\r\n$11\r\npersistence\r\n")
        .is_err()
    {
        return Probe::Silent;
    }
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match (&stream).read(&mut buffer) {
            Ok(0) | Err(_) => return Probe::Silent,
            Ok(read) => reply.extend_from_slice(&buffer[..read]),
        }
        let text = String::from_utf8_lossy(&reply);
        if text.starts_with("-NOAUTH") {
            return Probe::NeedsAuth;
        }
        if text.starts_with('-') {
            return Probe::Silent;
        }
        if text.contains("process_id:") && text.ends_with("\r\n\r\n") {
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| value.trim().to_string())
            };
            let Some(pid) = field("process_id:").and_then(|value| value.parse().ok()) else {
                return Probe::Silent;
            };
            return match field("loading:").as_deref() {
                Some("0") => Probe::Ready(pid),
                _ => Probe::Loading(pid),
            };
        }
    }
    Probe::Silent
}

/// Whether the server answering on `port` is process `pid`, done loading. `None` when the
/// server cannot say because it wants AUTH; `Some(false)` also when nothing answers (yet), or
/// while it loads.
pub fn server_pid_matches(port: u16, pid: u32) -> Option<bool> {
    match probe(port) {
        Probe::NeedsAuth => None,
        Probe::Ready(answered) => Some(answered == pid),
        Probe::Loading(_) | Probe::Silent => Some(false),
    }
}

impl TestServer {
    /// Starts a server and waits until it is ready (its dataset loaded).
    pub fn start(extra: &[&str]) -> TestServer {
        Self::start_until(extra, false)
    }

    /// Starts a server and returns as soon as it answers, possibly still loading its dataset.
    pub fn start_loading(extra: &[&str]) -> TestServer {
        Self::start_until(extra, true)
    }

    fn start_until(extra: &[&str], loading_is_enough: bool) -> TestServer {
        for _attempt in 0..5 {
            if let Some(server) = Self::try_start(extra, loading_is_enough) {
                return server;
            }
        }
        panic!("cinnabar-server did not start");
    }

    fn try_start(extra: &[&str], loading_is_enough: bool) -> Option<TestServer> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("cinnabar-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_cinnabar-server"));
        command
            .args(["--port", &port.to_string(), "--save", "", "--dir"])
            .arg(&dir)
            .args(["--loglevel", "warning"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn cinnabar-server");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            match probe(port) {
                Probe::Ready(pid) if pid == child.id() => {
                    return Some(TestServer { port, child, dir })
                }
                Probe::Loading(pid) if pid == child.id() && loading_is_enough => {
                    return Some(TestServer { port, child, dir })
                }
                Probe::Loading(pid) if pid == child.id() => {}
                // Another test's server took the port first (ours exits): try another.
                Probe::Ready(_) | Probe::Loading(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Probe::Silent => {}
                // It wants AUTH, so it cannot say who it is: ours unless it exited (a server
                // that could not bind exits at once).
                Probe::NeedsAuth => {
                    std::thread::sleep(Duration::from_millis(100));
                    if let Ok(None) = child.try_wait() {
                        return Some(TestServer { port, child, dir });
                    }
                }
            }
            if let Ok(Some(_status)) = child.try_wait() {
                // Port taken between choosing and binding, or a bad option: try again.
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        None
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in bytes (VmRSS).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .expect("VmRSS line");
        let kilobytes: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|value| value.parse().ok())
            .expect("VmRSS value");
        kilobytes * 1024
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port)
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .expect("client")
            .get_connection()
            .expect("connection")
    }

    /// Waits for the process to exit by itself (after SHUTDOWN); returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reply as the client sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    NilArray,
    Array(Vec<Reply>),
    // RESP3
    Null,
    Double(String),
    Boolean(bool),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Push(Vec<Reply>),
    Verbatim(String, Vec<u8>),
    BigNumber(String),
}

/// Shorthands for expected replies.
pub fn status(text: &str) -> Reply {
    Reply::Status(text.to_string())
}
pub fn error(text: &str) -> Reply {
    Reply::Error(text.to_string())
}
pub fn int(value: i64) -> Reply {
    Reply::Integer(value)
}
pub fn bulk(value: &str) -> Reply {
    Reply::Bulk(value.as_bytes().to_vec())
}
pub fn array(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}
pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|item| bulk(item)).collect())
}
pub fn ok() -> Reply {
    status("OK")
}

pub struct RawClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Encodes a command as a RESP array of bulks.
    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&Self::encode(args));
    }

    /// Sends a command given as space-separated words and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.call(&words)
    }

    /// Sends a command with binary arguments and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read_reply()
    }

    /// Whether the server closed the connection (reads until EOF or error).
    pub fn is_closed(&mut self) -> bool {
        let mut buffer = [0u8; 1];
        matches!(self.reader.read(&mut buffer), Ok(0) | Err(_))
    }

    /// Reads the next reply and returns false, or returns true if the server closed the
    /// connection instead.
    pub fn is_closed_or_reply(&mut self) -> bool {
        match self.reader.fill_buf() {
            Ok([]) | Err(_) => true,
            Ok(_) => {
                self.read_reply();
                false
            }
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).expect("read reply line");
        assert!(read > 0, "connection closed while waiting for a reply");
        assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn exact(&mut self, length: usize) -> Vec<u8> {
        let mut data = vec![0u8; length + 2];
        self.reader.read_exact(&mut data).expect("read bulk");
        assert_eq!(&data[length..], b"\r\n");
        data.truncate(length);
        data
    }

    /// Reads a full resynchronisation payload: `$<length>\r\n` and that many bytes, without the
    /// CRLF a bulk would end with (as a master sends its RDB to a replica).
    pub fn read_sync_payload(&mut self) -> Vec<u8> {
        let line = self.line();
        let length: usize = line
            .strip_prefix('$')
            .and_then(|length| length.parse().ok())
            .unwrap_or_else(|| panic!("expected a payload length, got {line:?}"));
        let mut data = vec![0u8; length];
        self.reader.read_exact(&mut data).expect("read payload");
        data
    }

    pub fn read_reply(&mut self) -> Reply {
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse().expect("integer reply")),
            "$" => {
                let length: i64 = rest.parse().expect("bulk length");
                if length < 0 {
                    Reply::Nil
                } else {
                    Reply::Bulk(self.exact(length as usize))
                }
            }
            "*" | "~" | ">" => {
                let length: i64 = rest.parse().expect("array length");
                if length < 0 {
                    return Reply::NilArray;
                }
                let items = (0..length).map(|_| self.read_reply()).collect();
                match kind {
                    "*" => Reply::Array(items),
                    "~" => Reply::Set(items),
                    _ => Reply::Push(items),
                }
            }
            "%" => {
                let length: usize = rest.parse().expect("map length");
                Reply::Map(
                    (0..length)
                        .map(|_| (self.read_reply(), self.read_reply()))
                        .collect(),
                )
            }
            "_" => Reply::Null,
            "," => Reply::Double(rest.to_string()),
            "#" => Reply::Boolean(rest == "t"),
            "(" => Reply::BigNumber(rest.to_string()),
            "=" => {
                let length: usize = rest.parse().expect("verbatim length");
                let data = self.exact(length);
                Reply::Verbatim(
                    String::from_utf8_lossy(&data[..3]).into_owned(),
                    data[4..].to_vec(),
                )
            }
            other => panic!("unknown reply type {other:?} in {line:?}"),
        }
    }
}

impl Reply {
    /// The bulk's bytes as text (panics on other replies).
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(bytes) | Reply::Verbatim(_, bytes) => {
                String::from_utf8_lossy(bytes).into_owned()
            }
            Reply::Status(text) => text.clone(),
            other => panic!("not a string reply: {other:?}"),
        }
    }

    pub fn integer(&self) -> i64 {
        match self {
            Reply::Integer(value) => *value,
            other => panic!("not an integer reply: {other:?}"),
        }
    }

    pub fn items(&self) -> Vec<Reply> {
        match self {
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => items.clone(),
            other => panic!("not an array reply: {other:?}"),
        }
    }
}

/// Waits until the server reports `count` blocked clients (INFO clients).
/// The value of field `name` (`omem`, `flags` ...) in a CLIENT LIST / CLIENT INFO line.
pub fn client_field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name} missing from {line}"))
}

pub fn wait_for_blocked_clients(client: &mut RawClient, count: usize) {
    let expected = format!("blocked_clients:{count}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.cmd("INFO clients").text().contains(&expected) {
        assert!(Instant::now() < deadline, "never {count} blocked clients");
    }
}

/// Fills the keyspace with `batches` MSETs of `per_batch` keys `filler:<batch>:<index>`.
pub fn fill(client: &mut RawClient, batches: usize, per_batch: usize, value: &[u8]) {
    for batch in 0..batches {
        let mut command: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for index in 0..per_batch {
            command.push(format!("filler:{batch}:{index}").into_bytes());
            command.push(value.to_vec());
        }
        let references: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        assert_eq!(client.call(&references), ok());
    }
}

/// Connections that increment `counter:0` .. `counter:<count - 1>` together, one transaction
/// per round, until stopped: any point-in-time copy of the dataset has them all equal.
pub struct CounterWriters {
    pub counters: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writers: Vec<std::thread::JoinHandle<u64>>,
}

impl CounterWriters {
    /// Starts `connections` writers against `port` (each runs at least one round).
    pub fn start(port: u16, connections: usize, count: usize) -> CounterWriters {
        let counters: Vec<String> = (0..count).map(|index| format!("counter:{index}")).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers = (0..connections)
            .map(|_| {
                let counters = counters.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut writer = RawClient::connect(port);
                    let mut rounds = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds == 0 {
                        writer.cmd("MULTI");
                        for counter in &counters {
                            writer.call(&[b"INCR", counter.as_bytes()]);
                        }
                        assert!(matches!(writer.cmd("EXEC"), Reply::Array(_)));
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        CounterWriters {
            counters,
            stop,
            writers,
        }
    }

    /// Stops the writers; returns the rounds they ran (each counter's final value).
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.writers
            .into_iter()
            .map(|writer| writer.join().expect("a counter writer"))
            .sum()
    }
}

/// A real redis-server (the reference, CINNABAR_REFERENCE_SERVER) on an ephemeral port, for
/// differential tests and for replication with real Redis; killed when dropped.
pub struct ReferenceServer {
    pub port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl ReferenceServer {
    pub fn start(binary: &str, extra: &[&str]) -> ReferenceServer {
        for attempt in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "cinnabar-reference-{}-{port}-{attempt}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("reference server directory");
            let mut child = Command::new(binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
                .arg("--dir")
                .arg(&dir)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            while Instant::now() < deadline {
                if server_pid_matches(port, child.id()) == Some(true) {
                    return ReferenceServer { port, child, dir };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
        }
        panic!("{binary} did not start");
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port)
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The reference redis-server binary, or None (with a note) when CINNABAR_REFERENCE_SERVER is
/// unset (`scripts/test` sets it).
pub fn reference_binary() -> Option<String> {
    let Some(path) = std::env::var_os("CINNABAR_REFERENCE_SERVER") else {
        println!(
            "NOTE: CINNABAR_REFERENCE_SERVER is not set, so this test against real Redis did not \
             run. Run it through scripts/test, or set it to a redis-server binary."
        );
        return None;
    };
    let path = path.to_string_lossy().into_owned();
    assert!(
        std::fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()),
        "CINNABAR_REFERENCE_SERVER={path:?} names no redis-server binary (apt-get install \
         redis-server, or fix the variable)"
    );
    Some(path)
}

/// Whether the wall clock has reached `at_ms` (unix milliseconds): for fixtures written by
/// Redis with absolute expiry times.
pub fn expired(at_ms: u64) -> bool {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    now_ms >= at_ms
}
