//! Load generator for the queue patterns redis-benchmark cannot express: hand-off to blocked
//! BLPOP consumers, LPOP with idle blocked clients around, XREADGROUP + XACK consumer groups,
//! and PUBLISH fan-out to many subscribers. `bench/queues` runs it against cinnabar-server and
//! redis-server side by side; it speaks plain RESP2 over blocking sockets, one thread per
//! connection, so both servers see exactly the same client behaviour.
//!
//!     queue-driver <scenario> --port N [--messages N] [--clients N] [--pipeline N] ...
//!
//! Prints one line: `messages=<n> seconds=<s> rate=<messages per second>`. Exits non-zero when
//! a scenario's own check fails (a message lost or delivered twice).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// A reply, as far as the scenarios need to look into it.
#[derive(Debug)]
enum Reply {
    Status,
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pending: Vec<u8>,
}

impl Connection {
    fn open(port: u16) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let writer = stream.try_clone().expect("clone the socket");
        Connection {
            reader: BufReader::with_capacity(1 << 16, stream),
            writer,
            pending: Vec::new(),
        }
    }

    /// Queues one command (sent by `flush`).
    fn queue(&mut self, words: &[&[u8]]) {
        self.pending
            .extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
        for word in words {
            self.pending
                .extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            self.pending.extend_from_slice(word);
            self.pending.extend_from_slice(b"\r\n");
        }
    }

    fn flush(&mut self) {
        self.writer
            .write_all(&self.pending)
            .expect("write to the server");
        self.pending.clear();
    }

    fn call(&mut self, words: &[&[u8]]) -> Reply {
        self.queue(words);
        self.flush();
        self.read()
    }

    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("read from the server");
        assert!(line.ends_with(b"\r\n"), "connection closed or bad line");
        line.truncate(line.len() - 2);
        line
    }

    fn read(&mut self) -> Reply {
        let line = self.line();
        let number = || -> i64 {
            std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("a number in the reply header")
        };
        match line[0] {
            b'+' => Reply::Status,
            b'-' => Reply::Error(String::from_utf8_lossy(&line[1..]).into_owned()),
            b':' => Reply::Integer(number()),
            b'$' => {
                let length = number();
                if length < 0 {
                    return Reply::Bulk(None);
                }
                let mut body = vec![0u8; length as usize + 2];
                self.reader.read_exact(&mut body).expect("read a bulk");
                body.truncate(length as usize);
                Reply::Bulk(Some(body))
            }
            b'*' => {
                let count = number();
                if count < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..count).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected reply type byte {other}"),
        }
    }
}

struct Options {
    port: u16,
    messages: u64,
    clients: usize,
    producers: usize,
    pipeline: usize,
    count: usize,
}

fn parse_options(arguments: &[String]) -> Options {
    let mut options = Options {
        port: 6379,
        messages: 200_000,
        clients: 50,
        producers: 4,
        pipeline: 16,
        count: 10,
    };
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments
            .get(index + 1)
            .unwrap_or_else(|| panic!("{} needs a value", arguments[index]));
        let number: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{} is not a number", value));
        match arguments[index].as_str() {
            "--port" => options.port = number as u16,
            "--messages" => options.messages = number,
            "--clients" => options.clients = number as usize,
            "--producers" => options.producers = number as usize,
            "--pipeline" => options.pipeline = number as usize,
            "--count" => options.count = number as usize,
            other => panic!("unknown option {other}"),
        }
        index += 2;
    }
    options
}

/// Sends `total` commands made by `make` from `threads` connections, `pipeline` at a time.
fn produce(
    port: u16,
    threads: usize,
    total: u64,
    pipeline: usize,
    make: fn(u64) -> Vec<Vec<u8>>,
) -> Vec<thread::JoinHandle<()>> {
    (0..threads as u64)
        .map(|thread_index| {
            thread::spawn(move || {
                let mut connection = Connection::open(port);
                let mut sequence = thread_index;
                while sequence < total {
                    let mut queued = 0;
                    while queued < pipeline && sequence < total {
                        let words = make(sequence);
                        let words: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
                        connection.queue(&words);
                        sequence += threads as u64;
                        queued += 1;
                    }
                    connection.flush();
                    for _ in 0..queued {
                        if let Reply::Error(message) = connection.read() {
                            panic!("producer got an error: {message}");
                        }
                    }
                }
            })
        })
        .collect()
}

fn flush_all(port: u16) {
    let mut connection = Connection::open(port);
    connection.call(&[b"FLUSHALL"]);
}

/// Producers LPUSH while `clients` consumers wait in BRPOP: every element goes straight to a
/// blocked client (the queue hand-off path). Checks each message arrives exactly once.
fn handoff(options: &Options) -> u64 {
    let port = options.port;
    let total = options.messages;
    let seen: Arc<Vec<AtomicU64>> =
        Arc::new((0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect());
    let received = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(options.clients + 1));
    let consumers: Vec<_> = (0..options.clients)
        .map(|_| {
            let (seen, received, ready) = (seen.clone(), received.clone(), ready.clone());
            thread::spawn(move || {
                let mut connection = Connection::open(port);
                ready.wait();
                loop {
                    match connection.call(&[b"BRPOP", b"handoff", b"0"]) {
                        Reply::Array(Some(items)) => match &items[1] {
                            Reply::Bulk(Some(body)) if body == b"stop" => return,
                            Reply::Bulk(Some(body)) => {
                                let number: u64 = std::str::from_utf8(body)
                                    .expect("utf-8 message")
                                    .parse()
                                    .expect("numeric message");
                                let bit = 1u64 << (number % 64);
                                let previous =
                                    seen[(number / 64) as usize].fetch_or(bit, Ordering::Relaxed);
                                assert_eq!(previous & bit, 0, "message {number} delivered twice");
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("unexpected element {other:?}"),
                        },
                        other => panic!("unexpected BRPOP reply {other:?}"),
                    }
                }
            })
        })
        .collect();
    ready.wait();
    // Let every consumer block before the first push.
    let mut control = Connection::open(port);
    while !matches!(control.call(&[b"INFO", b"clients"]), Reply::Bulk(Some(ref text)) if blocked_clients(text) >= options.clients)
    {
        thread::sleep(Duration::from_millis(5));
    }
    let producers = produce(port, options.producers, total, 1, |sequence| {
        vec![
            b"LPUSH".to_vec(),
            b"handoff".to_vec(),
            sequence.to_string().into_bytes(),
        ]
    });
    for producer in producers {
        producer.join().expect("producer");
    }
    while received.load(Ordering::Relaxed) < total {
        thread::sleep(Duration::from_micros(200));
    }
    for _ in 0..options.clients {
        control.call(&[b"LPUSH", b"handoff", b"stop"]);
    }
    for consumer in consumers {
        consumer.join().expect("consumer");
    }
    total
}

fn blocked_clients(info: &[u8]) -> usize {
    String::from_utf8_lossy(info)
        .lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// LPOP from a filled list by `clients` connections, pipelined, while as many other clients
/// sit blocked in BLPOP on keys nobody pushes to.
fn lpop_with_waiters(options: &Options) -> (u64, f64) {
    let port = options.port;
    let total = options.messages;
    for producer in produce(port, 4, total, 64, |sequence| {
        vec![
            b"RPUSH".to_vec(),
            b"plain".to_vec(),
            sequence.to_string().into_bytes(),
        ]
    }) {
        producer.join().expect("filler");
    }
    let waiters: Vec<Connection> = (0..options.clients)
        .map(|index| {
            let mut connection = Connection::open(port);
            connection.queue(&[b"BLPOP", format!("idle:{index}").as_bytes(), b"0"]);
            connection.flush();
            connection
        })
        .collect();
    let mut control = Connection::open(port);
    while !matches!(control.call(&[b"INFO", b"clients"]), Reply::Bulk(Some(ref text)) if blocked_clients(text) >= options.clients)
    {
        thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let poppers = produce(port, options.clients, total, options.pipeline, |_| {
        vec![b"LPOP".to_vec(), b"plain".to_vec()]
    });
    for popper in poppers {
        popper.join().expect("popper");
    }
    let seconds = started.elapsed().as_secs_f64();
    let remaining = match control.call(&[b"LLEN", b"plain"]) {
        Reply::Integer(length) => length,
        other => panic!("LLEN replied {other:?}"),
    };
    assert_eq!(remaining, 0, "LPOP left elements behind");
    drop(waiters);
    (total, seconds)
}

/// A stream of `messages` entries consumed by `clients` consumers of one group: XREADGROUP
/// COUNT n, then one XACK of the ids read. Checks every entry is acked once and the PEL empties.
fn xreadgroup_ack(options: &Options) -> (u64, f64) {
    let port = options.port;
    let total = options.messages;
    for producer in produce(port, 1, total, 64, |_| {
        vec![
            b"XADD".to_vec(),
            b"jobs".to_vec(),
            b"*".to_vec(),
            b"payload".to_vec(),
            b"0123456789abcdef".to_vec(),
        ]
    }) {
        producer.join().expect("filler");
    }
    let mut control = Connection::open(port);
    control.call(&[b"XGROUP", b"CREATE", b"jobs", b"workers", b"0"]);
    let acked = Arc::new(AtomicU64::new(0));
    let count = options.count.to_string();
    let started = Instant::now();
    let consumers: Vec<_> = (0..options.clients)
        .map(|index| {
            let (acked, count) = (acked.clone(), count.clone());
            thread::spawn(move || {
                let mut connection = Connection::open(port);
                let consumer = format!("consumer-{index}");
                loop {
                    let reply = connection.call(&[
                        b"XREADGROUP",
                        b"GROUP",
                        b"workers",
                        consumer.as_bytes(),
                        b"COUNT",
                        count.as_bytes(),
                        b"STREAMS",
                        b"jobs",
                        b">",
                    ]);
                    let Reply::Array(Some(streams)) = reply else {
                        return;
                    };
                    let Reply::Array(Some(stream)) = &streams[0] else {
                        panic!("bad XREADGROUP reply");
                    };
                    let Reply::Array(Some(entries)) = &stream[1] else {
                        panic!("bad XREADGROUP entries");
                    };
                    if entries.is_empty() {
                        return;
                    }
                    let mut words: Vec<&[u8]> = vec![b"XACK", b"jobs", b"workers"];
                    for entry in entries {
                        let Reply::Array(Some(parts)) = entry else {
                            panic!("bad entry");
                        };
                        let Reply::Bulk(Some(id)) = &parts[0] else {
                            panic!("bad id");
                        };
                        words.push(id);
                    }
                    match connection.call(&words) {
                        Reply::Integer(done) => {
                            assert_eq!(
                                done as usize,
                                entries.len(),
                                "XACK acked a different count"
                            );
                            acked.fetch_add(done as u64, Ordering::Relaxed);
                        }
                        other => panic!("XACK replied {other:?}"),
                    }
                }
            })
        })
        .collect();
    for consumer in consumers {
        consumer.join().expect("consumer");
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        acked.load(Ordering::Relaxed),
        total,
        "not every entry was acked once"
    );
    match control.call(&[b"XPENDING", b"jobs", b"workers"]) {
        Reply::Array(Some(summary)) => {
            assert!(
                matches!(summary[0], Reply::Integer(0)),
                "PEL not empty: {summary:?}"
            )
        }
        other => panic!("XPENDING replied {other:?}"),
    }
    (total, seconds)
}

/// `producers` publishers PUBLISH `messages` in all, pipelined, to `clients` subscribers of one
/// channel; done when every subscriber has every message (each publisher's in order).
fn publish(options: &Options) -> u64 {
    let port = options.port;
    let total = options.messages;
    let ready = Arc::new(Barrier::new(options.clients + 1));
    let producers_count = options.producers as u64;
    let subscribers: Vec<_> = (0..options.clients)
        .map(|_| {
            let ready = ready.clone();
            thread::spawn(move || {
                let mut connection = Connection::open(port);
                connection.call(&[b"SUBSCRIBE", b"news"]);
                ready.wait();
                let mut next = vec![0u64; producers_count as usize];
                for _ in 0..total {
                    let Reply::Array(Some(parts)) = connection.read() else {
                        panic!("bad message");
                    };
                    let Reply::Bulk(Some(body)) = &parts[2] else {
                        panic!("bad payload");
                    };
                    let number: u64 = std::str::from_utf8(body)
                        .expect("utf-8 payload")
                        .parse()
                        .expect("numeric payload");
                    let publisher = (number % producers_count) as usize;
                    assert_eq!(
                        number,
                        next[publisher] * producers_count + publisher as u64,
                        "out of order"
                    );
                    next[publisher] += 1;
                }
            })
        })
        .collect();
    ready.wait();
    let publishers = produce(
        port,
        options.producers,
        total,
        options.pipeline,
        |sequence| {
            vec![
                b"PUBLISH".to_vec(),
                b"news".to_vec(),
                sequence.to_string().into_bytes(),
            ]
        },
    );
    for publisher in publishers {
        publisher.join().expect("publisher");
    }
    for subscriber in subscribers {
        subscriber.join().expect("subscriber");
    }
    total
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = arguments.first() else {
        eprintln!(
            "usage: queue-driver handoff|lpop-waiters|xreadgroup-ack|publish --port N [options]"
        );
        std::process::exit(2);
    };
    let options = parse_options(&arguments[1..]);
    flush_all(options.port);
    let (messages, seconds) = match scenario.as_str() {
        "handoff" => {
            let started = Instant::now();
            let messages = handoff(&options);
            (messages, started.elapsed().as_secs_f64())
        }
        "lpop-waiters" => lpop_with_waiters(&options),
        "xreadgroup-ack" => xreadgroup_ack(&options),
        "publish" => {
            let started = Instant::now();
            let messages = publish(&options);
            (messages, started.elapsed().as_secs_f64())
        }
        other => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    };
    println!(
        "messages={messages} seconds={seconds:.3} rate={:.0}",
        messages as f64 / seconds
    );
}
