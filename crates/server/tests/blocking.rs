//! Blocking list commands: BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH, CLIENT UNBLOCK, and the
//! reliable-queue pattern under concurrency.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Waits until the server reports `count` blocked clients (bounded by a deadline).
fn wait_blocked(client: &mut RawClient, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = client.cmd("INFO clients").text();
        let blocked = info
            .lines()
            .find_map(|line| line.strip_prefix("blocked_clients:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .expect("INFO clients has blocked_clients");
        if blocked == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} blocked clients, have {blocked}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn blpop_serves_at_once_when_data_exists() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH list a b"), int(2));
    assert_eq!(client.cmd("BLPOP empty list 0"), bulks(&["list", "a"]));
    assert_eq!(client.cmd("BRPOP list 0"), bulks(&["list", "b"]));
    assert_eq!(client.cmd("EXISTS list"), int(0));
    assert_eq!(client.cmd("SET string x"), ok());
    assert_eq!(
        client.cmd("BLPOP string 0"),
        error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        client.cmd("BLPOP list -1"),
        error("ERR timeout is negative")
    );
    assert_eq!(
        client.cmd("BLPOP list abc"),
        error("ERR timeout is not a float or out of range")
    );
    assert_eq!(
        client.cmd("BLPOP list"),
        error("ERR wrong number of arguments for 'blpop' command")
    );
}

#[test]
fn a_push_serves_the_blocked_client() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut pusher = server.client();
    waiter.send(&[b"BLPOP", b"q1", b"q2", b"0"]);
    wait_blocked(&mut pusher, 1);
    assert_eq!(pusher.cmd("RPUSH q2 job1 job2"), int(2));
    assert_eq!(waiter.read_reply(), bulks(&["q2", "job1"]));
    assert_eq!(pusher.cmd("LRANGE q2 0 -1"), bulks(&["job2"]));
    wait_blocked(&mut pusher, 0);
}

#[test]
fn timeouts_reply_null() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("BLPOP nothing 0.05"), Reply::NilArray);
    assert_eq!(client.cmd("BLMOVE nothing dst LEFT RIGHT 0.05"), Reply::Nil);
    assert_eq!(client.cmd("BLMPOP 0.05 1 nothing LEFT"), Reply::NilArray);
    assert!(matches!(client.cmd("HELLO 3"), Reply::Map(_)));
    assert_eq!(client.cmd("BRPOP nothing 0.05"), Reply::Null);
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let server = TestServer::start(&[]);
    let mut control = server.client();
    let mut waiters: Vec<RawClient> = Vec::new();
    for index in 0..3 {
        let mut waiter = server.client();
        waiter.send(&[b"BRPOP", b"fifo", b"0"]);
        wait_blocked(&mut control, index + 1);
        waiters.push(waiter);
    }
    assert_eq!(control.cmd("LPUSH fifo a b c"), int(3));
    assert_eq!(waiters[0].read_reply(), bulks(&["fifo", "a"]));
    assert_eq!(waiters[1].read_reply(), bulks(&["fifo", "b"]));
    assert_eq!(waiters[2].read_reply(), bulks(&["fifo", "c"]));
    assert_eq!(control.cmd("EXISTS fifo"), int(0));
}

#[test]
fn blmpop_and_brpoplpush_and_blmove() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut control = server.client();
    waiter.send(&[
        b"BLMPOP", b"0", b"2", b"m1", b"m2", b"RIGHT", b"COUNT", b"2",
    ]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("RPUSH m2 a b c"), int(3));
    assert_eq!(
        waiter.read_reply(),
        array(vec![bulk("m2"), bulks(&["c", "b"])])
    );
    // Source and destination in different shards: served by a retry with both locks.
    waiter.send(&[b"BRPOPLPUSH", b"source", b"backup", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("RPUSH source job"), int(1));
    assert_eq!(waiter.read_reply(), bulk("job"));
    assert_eq!(control.cmd("LRANGE backup 0 -1"), bulks(&["job"]));
    // Same shard through a hash tag: served directly by the push.
    waiter.send(&[b"BLMOVE", b"{q}in", b"{q}out", b"LEFT", b"RIGHT", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("RPUSH {q}in x y"), int(2));
    assert_eq!(waiter.read_reply(), bulk("x"));
    assert_eq!(control.cmd("LRANGE {q}out 0 -1"), bulks(&["x"]));
    assert_eq!(control.cmd("LRANGE {q}in 0 -1"), bulks(&["y"]));
}

#[test]
fn blmove_into_a_key_of_another_type_fails_and_keeps_the_element() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut control = server.client();
    assert_eq!(control.cmd("SET {t}target string"), ok());
    waiter.send(&[b"BLMOVE", b"{t}list", b"{t}target", b"LEFT", b"LEFT", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("RPUSH {t}list foo"), int(1));
    assert_eq!(
        waiter.read_reply(),
        error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(control.cmd("LRANGE {t}list 0 -1"), bulks(&["foo"]));
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("BLPOP empty 0"), status("QUEUED"));
    assert_eq!(
        client.cmd("BLMOVE empty other LEFT LEFT 0"),
        status("QUEUED")
    );
    assert_eq!(client.cmd("EXEC"), array(vec![Reply::NilArray, Reply::Nil]));
}

#[test]
fn a_push_inside_a_transaction_wakes_waiters_after_it() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut control = server.client();
    waiter.send(&[b"BLPOP", b"tx", b"0"]);
    wait_blocked(&mut control, 1);
    // Pushed and deleted inside one transaction: nothing to serve afterwards.
    assert_eq!(control.cmd("MULTI"), ok());
    assert_eq!(control.cmd("LPUSH tx a"), status("QUEUED"));
    assert_eq!(control.cmd("DEL tx"), status("QUEUED"));
    assert_eq!(control.cmd("EXEC"), array(vec![int(1), int(1)]));
    wait_blocked(&mut control, 1);
    // Pushed twice inside one: the waiter sees the list as the transaction left it.
    assert_eq!(control.cmd("MULTI"), ok());
    assert_eq!(control.cmd("LPUSH tx a"), status("QUEUED"));
    assert_eq!(control.cmd("LPUSH tx b"), status("QUEUED"));
    assert_eq!(control.cmd("EXEC"), array(vec![int(1), int(2)]));
    assert_eq!(waiter.read_reply(), bulks(&["tx", "b"]));
}

#[test]
fn a_blocked_client_survives_type_changes_and_deletion() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut control = server.client();
    waiter.send(&[b"BLPOP", b"changing", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("SET changing string"), ok());
    assert_eq!(control.cmd("DEL changing"), int(1));
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd("RPUSH changing finally"), int(1));
    assert_eq!(waiter.read_reply(), bulks(&["changing", "finally"]));
}

#[test]
fn client_unblock_and_disconnection() {
    let server = TestServer::start(&[]);
    let mut waiter = server.client();
    let mut control = server.client();
    let id = waiter.cmd("CLIENT ID").integer();
    waiter.send(&[b"BLPOP", b"never", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd(&format!("CLIENT UNBLOCK {id}")), int(1));
    assert_eq!(waiter.read_reply(), Reply::NilArray);
    assert_eq!(control.cmd(&format!("CLIENT UNBLOCK {id}")), int(0));
    waiter.send(&[b"BLPOP", b"never", b"0"]);
    wait_blocked(&mut control, 1);
    assert_eq!(control.cmd(&format!("CLIENT UNBLOCK {id} ERROR")), int(1));
    assert_eq!(
        waiter.read_reply(),
        error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    );
    // The error counts as an error reply (the MAYBE below is the second one).
    let errorstats = control.cmd("INFO errorstats").text();
    assert!(
        errorstats.contains("errorstat_UNBLOCKED:count=1\r\n"),
        "{errorstats}"
    );
    assert_eq!(
        control.cmd(&format!("CLIENT UNBLOCK {id} MAYBE")),
        error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    );
    // A client that disconnects while blocked leaves nothing behind.
    waiter.send(&[b"BLPOP", b"gone", b"0"]);
    wait_blocked(&mut control, 1);
    drop(waiter);
    wait_blocked(&mut control, 0);
    assert_eq!(control.cmd("RPUSH gone item"), int(1));
    assert_eq!(control.cmd("LRANGE gone 0 -1"), bulks(&["item"]));
}

/// The reliable-queue pattern: producers LPUSH, consumers BLMOVE into their own backup list,
/// process, then LREM from the backup (acknowledge). Consumers die at random between taking a
/// message and acknowledging it; a recovery step moves a dead consumer's backup list back to
/// the queue. Every message must be acknowledged exactly once; only messages whose consumer
/// died may be delivered more than once.
#[test]
fn reliable_queue_with_blmove_and_consumer_restarts() {
    const PRODUCERS: usize = 8;
    const CONSUMERS: usize = 8;
    const MESSAGES: usize = 100_000;
    let server = TestServer::start(&[]);
    let port = server.port;
    let acknowledged: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let delivered: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let died_holding: Arc<Mutex<Vec<String>>> = Arc::default();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                let per_producer = MESSAGES / PRODUCERS;
                for index in 0..per_producer {
                    let message = format!("m{}", producer * per_producer + index);
                    let reply = client.call(&[b"LPUSH", b"queue", message.as_bytes()]);
                    assert!(matches!(reply, Reply::Integer(_)), "{reply:?}");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|consumer| {
            let acknowledged = acknowledged.clone();
            let delivered = delivered.clone();
            let died_holding = died_holding.clone();
            std::thread::spawn(move || {
                let backup = format!("processing:{consumer}");
                let mut client = RawClient::connect(port);
                let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ consumer as u64;
                let mut idle_rounds = 0;
                loop {
                    let reply = client.call(&[
                        b"BLMOVE",
                        b"queue",
                        backup.as_bytes(),
                        b"RIGHT",
                        b"LEFT",
                        b"0.2",
                    ]);
                    let message = match reply {
                        Reply::Nil => {
                            idle_rounds += 1;
                            if idle_rounds >= 3 {
                                return;
                            }
                            continue;
                        }
                        Reply::Bulk(bytes) => String::from_utf8(bytes).expect("utf-8"),
                        other => panic!("BLMOVE replied {other:?}"),
                    };
                    idle_rounds = 0;
                    *delivered
                        .lock()
                        .unwrap()
                        .entry(message.clone())
                        .or_default() += 1;
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 1000 == 0 {
                        // Dies before acknowledging: recovery requeues its backup list.
                        died_holding.lock().unwrap().push(message);
                        drop(client);
                        let mut recovery = RawClient::connect(port);
                        loop {
                            let moved = recovery.call(&[b"RPOPLPUSH", backup.as_bytes(), b"queue"]);
                            if moved == Reply::Nil {
                                break;
                            }
                        }
                        client = recovery;
                        continue;
                    }
                    let removed =
                        client.call(&[b"LREM", backup.as_bytes(), b"1", message.as_bytes()]);
                    assert_eq!(removed, int(1), "acknowledging {message}");
                    *acknowledged.lock().unwrap().entry(message).or_default() += 1;
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("producer");
    }
    for consumer in consumers {
        consumer.join().expect("consumer");
    }
    let mut client = server.client();
    // Whatever is left (a consumer may have stopped just after a recovery) is drained here.
    loop {
        match client.cmd("RPOP queue") {
            Reply::Nil => break,
            Reply::Bulk(bytes) => {
                let message = String::from_utf8(bytes).expect("utf-8");
                *acknowledged.lock().unwrap().entry(message).or_default() += 1;
            }
            other => panic!("RPOP replied {other:?}"),
        }
    }
    let acknowledged = acknowledged.lock().unwrap();
    let delivered = delivered.lock().unwrap();
    let died_holding = died_holding.lock().unwrap();
    assert_eq!(acknowledged.len(), MESSAGES, "every message acknowledged");
    assert!(
        acknowledged.values().all(|&count| count == 1),
        "no message acknowledged twice"
    );
    for (message, &count) in delivered.iter() {
        if count > 1 {
            assert!(
                died_holding.contains(message),
                "{message} was delivered {count} times without its consumer dying"
            );
        }
    }
    for index in 0..CONSUMERS {
        assert_eq!(client.cmd(&format!("LLEN processing:{index}")), int(0));
    }
}
