//! Publish/subscribe as clients see it: RESP2 subscribed mode, RESP3 pushes, patterns, shard
//! channels, introspection, fan-out at scale, and slow subscribers cut off at their limit.

mod common;

use common::*;

fn push_of(parts: &[&str]) -> Reply {
    array(parts.iter().map(|part| bulk(part)).collect())
}

#[test]
fn subscribe_publish_unsubscribe_in_resp2() {
    let server = TestServer::start(&[]);
    let mut subscriber = server.client();
    let mut publisher = server.client();
    assert_eq!(
        subscriber.cmd("SUBSCRIBE news sport"),
        array(vec![bulk("subscribe"), bulk("news"), int(1)])
    );
    assert_eq!(
        subscriber.read_reply(),
        array(vec![bulk("subscribe"), bulk("sport"), int(2)])
    );
    assert_eq!(publisher.cmd("PUBLISH news hello"), int(1));
    assert_eq!(publisher.cmd("PUBLISH nobody hello"), int(0));
    assert_eq!(
        subscriber.read_reply(),
        push_of(&["message", "news", "hello"])
    );
    // Subscribed RESP2 clients may only (un)subscribe, ping, quit and reset.
    assert_eq!(
        subscriber.cmd("GET a"),
        error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    );
    assert_eq!(subscriber.cmd("PING"), bulks(&["pong", ""]));
    assert_eq!(subscriber.cmd("PING hi"), bulks(&["pong", "hi"]));
    assert_eq!(
        subscriber.cmd("UNSUBSCRIBE news"),
        array(vec![bulk("unsubscribe"), bulk("news"), int(1)])
    );
    assert_eq!(
        subscriber.cmd("UNSUBSCRIBE"),
        array(vec![bulk("unsubscribe"), bulk("sport"), int(0)])
    );
    assert_eq!(
        subscriber.cmd("UNSUBSCRIBE"),
        array(vec![bulk("unsubscribe"), Reply::Nil, int(0)])
    );
    // Out of subscribed mode again.
    assert_eq!(subscriber.cmd("PING"), status("PONG"));
}

#[test]
fn patterns_and_introspection() {
    let server = TestServer::start(&[]);
    let mut subscriber = server.client();
    let mut other = server.client();
    let mut publisher = server.client();
    assert_eq!(
        subscriber.cmd("PSUBSCRIBE news.*"),
        array(vec![bulk("psubscribe"), bulk("news.*"), int(1)])
    );
    assert_eq!(
        other.cmd("SUBSCRIBE news.tech"),
        array(vec![bulk("subscribe"), bulk("news.tech"), int(1)])
    );
    assert_eq!(publisher.cmd("PUBLISH news.tech rust"), int(2));
    assert_eq!(
        subscriber.read_reply(),
        push_of(&["pmessage", "news.*", "news.tech", "rust"])
    );
    assert_eq!(
        other.read_reply(),
        push_of(&["message", "news.tech", "rust"])
    );
    assert_eq!(publisher.cmd("PUBSUB NUMPAT"), int(1));
    assert_eq!(publisher.cmd("PUBSUB CHANNELS"), bulks(&["news.tech"]));
    assert_eq!(publisher.cmd("PUBSUB CHANNELS x*"), array(vec![]));
    assert_eq!(
        publisher.cmd("PUBSUB NUMSUB news.tech nothing"),
        array(vec![bulk("news.tech"), int(1), bulk("nothing"), int(0)])
    );
    assert_eq!(
        subscriber.cmd("PUNSUBSCRIBE"),
        array(vec![bulk("punsubscribe"), bulk("news.*"), int(0)])
    );
    assert_eq!(publisher.cmd("PUBSUB NUMPAT"), int(0));
}

#[test]
fn resp3_pushes_interleave_with_replies() {
    let server = TestServer::start(&[]);
    let mut subscriber = server.client();
    let mut publisher = server.client();
    assert!(matches!(subscriber.cmd("HELLO 3"), Reply::Map(_)));
    assert_eq!(
        subscriber.cmd("SUBSCRIBE ch"),
        Reply::Push(vec![bulk("subscribe"), bulk("ch"), int(1)])
    );
    // Ordinary commands work while subscribed in RESP3.
    assert_eq!(subscriber.cmd("SET k v"), ok());
    assert_eq!(publisher.cmd("PUBLISH ch m1"), int(1));
    assert_eq!(
        subscriber.read_reply(),
        Reply::Push(vec![bulk("message"), bulk("ch"), bulk("m1")])
    );
    // A client publishing to itself gets the message after the PUBLISH reply (Redis 7.2).
    subscriber.send(&[b"PUBLISH", b"ch", b"self"]);
    assert_eq!(subscriber.read_reply(), int(1));
    assert_eq!(
        subscriber.read_reply(),
        Reply::Push(vec![bulk("message"), bulk("ch"), bulk("self")])
    );
    assert_eq!(subscriber.cmd("GET k"), bulk("v"));
}

#[test]
fn shard_channels() {
    let server = TestServer::start(&[]);
    let mut subscriber = server.client();
    let mut publisher = server.client();
    assert_eq!(
        subscriber.cmd("SSUBSCRIBE {user}a {user}b"),
        array(vec![bulk("ssubscribe"), bulk("{user}a"), int(1)])
    );
    assert_eq!(
        subscriber.read_reply(),
        array(vec![bulk("ssubscribe"), bulk("{user}b"), int(2)])
    );
    assert_eq!(
        publisher.cmd("SSUBSCRIBE a b"),
        error("CROSSSLOT Keys in request don't hash to the same slot")
    );
    assert_eq!(publisher.cmd("SPUBLISH {user}a hi"), int(1));
    assert_eq!(publisher.cmd("PUBLISH {user}a hi"), int(0));
    assert_eq!(
        subscriber.read_reply(),
        push_of(&["smessage", "{user}a", "hi"])
    );
    assert_eq!(
        publisher.cmd("PUBSUB SHARDNUMSUB {user}a"),
        array(vec![bulk("{user}a"), int(1)])
    );
    let Reply::Array(mut channels) = publisher.cmd("PUBSUB SHARDCHANNELS") else {
        panic!("PUBSUB SHARDCHANNELS replies with an array");
    };
    channels.sort_by_key(|channel| channel.text());
    assert_eq!(Reply::Array(channels), bulks(&["{user}a", "{user}b"]));
}

#[test]
fn every_subscriber_gets_every_message_in_order() {
    const SUBSCRIBERS: usize = 200;
    const MESSAGES: usize = 100_000;
    let server = TestServer::start(&[]);
    let port = server.port;
    let mut handles = Vec::new();
    let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
    for index in 0..SUBSCRIBERS {
        let ready = ready_sender.clone();
        handles.push(std::thread::spawn(move || {
            let mut client = RawClient::connect(port);
            let by_pattern = index % 2 == 1;
            if by_pattern {
                client.cmd("PSUBSCRIBE fan*");
            } else {
                client.cmd("SUBSCRIBE fanout");
            }
            ready.send(()).expect("ready");
            for expected in 0..MESSAGES {
                let items = client.read_reply().items();
                let payload = items.last().expect("payload").text();
                assert_eq!(
                    payload,
                    expected.to_string(),
                    "subscriber {index} out of order"
                );
            }
        }));
    }
    for _ in 0..SUBSCRIBERS {
        ready_receiver.recv().expect("subscriber ready");
    }
    let mut publisher = server.client();
    let mut batch = Vec::new();
    for sequence in 0..MESSAGES {
        let payload = sequence.to_string();
        batch.extend(RawClient::encode(&[
            b"PUBLISH",
            b"fanout",
            payload.as_bytes(),
        ]));
        if batch.len() > 64 * 1024 || sequence == MESSAGES - 1 {
            publisher.send_raw(&batch);
            batch.clear();
        }
    }
    for _ in 0..MESSAGES {
        assert_eq!(publisher.read_reply(), int(SUBSCRIBERS as i64));
    }
    for handle in handles {
        handle.join().expect("subscriber");
    }
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_at_its_limit() {
    let server = TestServer::start(&["--client-output-buffer-limit", "pubsub 4mb 1mb 60"]);
    let baseline = server.resident_bytes();
    let mut sleeper = server.client();
    assert_eq!(
        sleeper.cmd("SUBSCRIBE firehose"),
        array(vec![bulk("subscribe"), bulk("firehose"), int(1)])
    );
    let mut publisher = server.client();
    let payload = vec![b'x'; 64 * 1024];
    let mut receivers_seen_zero = false;
    for _ in 0..4000 {
        let receivers = publisher
            .call(&[b"PUBLISH", b"firehose", &payload])
            .integer();
        if receivers == 0 {
            receivers_seen_zero = true;
            break;
        }
    }
    assert!(
        receivers_seen_zero,
        "the slow subscriber was never disconnected"
    );
    let growth = server.resident_bytes().saturating_sub(baseline);
    // The pubsub hard limit (4 MB) plus the publisher's query buffer, the write in progress
    // and allocator slack (about 7 MB in all, measured); without a limit the mailbox would
    // have grown to 4000 × 64 KB = 250 MB.
    assert!(
        growth < 16 * 1024 * 1024,
        "resident memory grew by {growth} bytes"
    );
}
