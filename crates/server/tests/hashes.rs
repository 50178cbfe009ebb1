//! The hash family as clients see it: every command's replies and errors, encoding conversions
//! (observed through HSCAN, which returns a listpack whole and scans a hashtable by cursor),
//! RESP3 shapes, and Redis 7.4's field expiry.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn arity(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn sorted_texts(reply: &Reply) -> Vec<String> {
    let mut texts: Vec<String> = reply.items().iter().map(Reply::text).collect();
    texts.sort();
    texts
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// Polls `check` until it holds or five seconds pass.
fn wait_for(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Scans a whole hash with HSCAN; returns (field, value) pairs and how many calls it took.
fn hscan_all(client: &mut RawClient, key: &str, count: usize) -> (BTreeMap<String, String>, usize) {
    let mut cursor = "0".to_string();
    let mut found = BTreeMap::new();
    let mut calls = 0;
    loop {
        let reply = client.cmd(&format!("HSCAN {key} {cursor} COUNT {count}"));
        calls += 1;
        let items = reply.items();
        cursor = items[0].text();
        let entries = items[1].items();
        for pair in entries.chunks(2) {
            found.insert(pair[0].text(), pair[1].text());
        }
        if cursor == "0" {
            return (found, calls);
        }
        assert!(calls < 100_000, "scan does not end");
    }
}

/// Whether the hash at `key` is a listpack: HSCAN returns a listpack whole with cursor 0.
fn is_listpack(client: &mut RawClient, key: &str) -> bool {
    let reply = client.cmd(&format!("HSCAN {key} 0 COUNT 1"));
    let items = reply.items();
    let length = client.cmd(&format!("HLEN {key}")).integer() as usize;
    items[0].text() == "0" && items[1].items().len() == length * 2
}

#[test]
fn hset_hget_and_friends() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("HSET h a 1 b 2"), int(2));
    assert_eq!(client.cmd("HSET h a 10 c 3"), int(1));
    assert_eq!(client.cmd("HGET h a"), bulk("10"));
    assert_eq!(client.cmd("HGET h nope"), Reply::Nil);
    assert_eq!(client.cmd("HGET nokey a"), Reply::Nil);
    assert_eq!(client.cmd("HMSET h d 4"), ok());
    assert_eq!(client.cmd("HLEN h"), int(4));
    assert_eq!(client.cmd("HLEN nokey"), int(0));
    assert_eq!(
        client.cmd("HMGET h a nope d"),
        array(vec![bulk("10"), Reply::Nil, bulk("4")])
    );
    assert_eq!(
        client.cmd("HMGET nokey a b"),
        array(vec![Reply::Nil, Reply::Nil])
    );
    assert_eq!(client.cmd("HSTRLEN h a"), int(2));
    assert_eq!(client.cmd("HSTRLEN h nope"), int(0));
    assert_eq!(client.cmd("HSTRLEN nokey a"), int(0));
    assert_eq!(client.cmd("HEXISTS h a"), int(1));
    assert_eq!(client.cmd("HEXISTS h nope"), int(0));
    assert_eq!(client.cmd("HEXISTS nokey a"), int(0));
    // A listpack keeps insertion order.
    assert_eq!(client.cmd("HKEYS h"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(client.cmd("HVALS h"), bulks(&["10", "2", "3", "4"]));
    assert_eq!(
        client.cmd("HGETALL h"),
        bulks(&["a", "10", "b", "2", "c", "3", "d", "4"])
    );
    assert_eq!(client.cmd("HKEYS nokey"), array(vec![]));
    assert_eq!(client.cmd("HVALS nokey"), array(vec![]));
    assert_eq!(client.cmd("HGETALL nokey"), array(vec![]));
    // Binary-safe fields and values, including empty ones.
    assert_eq!(client.call(&[b"HSET", b"bin", b"", b"\x00\r\n"]), int(1));
    assert_eq!(
        client.call(&[b"HGET", b"bin", b""]),
        Reply::Bulk(b"\x00\r\n".to_vec())
    );
}

#[test]
fn hsetnx_sets_only_new_fields() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("HSETNX h a 1"), int(1));
    assert_eq!(client.cmd("HSETNX h a 2"), int(0));
    assert_eq!(client.cmd("HGET h a"), bulk("1"));
    assert_eq!(client.cmd("HSETNX h b 2"), int(1));
    assert_eq!(client.cmd("HLEN h"), int(2));
}

#[test]
fn hdel_deletes_fields_then_the_key() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("HSET h a 1 b 2 c 3");
    assert_eq!(client.cmd("HDEL h a nope"), int(1));
    assert_eq!(client.cmd("HDEL h a"), int(0));
    assert_eq!(client.cmd("HDEL nokey a"), int(0));
    assert_eq!(client.cmd("EXISTS h"), int(1));
    assert_eq!(client.cmd("HDEL h b c b"), int(2));
    assert_eq!(client.cmd("EXISTS h"), int(0));
    assert_eq!(client.cmd("HLEN h"), int(0));
}

#[test]
fn hincrby_and_hincrbyfloat() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("HINCRBY h n 5"), int(5));
    assert_eq!(client.cmd("HINCRBY h n -7"), int(-2));
    assert_eq!(client.cmd("HGET h n"), bulk("-2"));
    assert_eq!(
        client.cmd("HINCRBY h n x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("HINCRBY h n 99999999999999999999"),
        error("ERR value is not an integer or out of range")
    );
    client.cmd("HSET h big 9223372036854775800 text abc");
    client.call(&[b"HSET", b"h", b"spaced", b" 1"]);
    assert_eq!(
        client.cmd("HINCRBY h big 8"),
        error("ERR increment or decrement would overflow")
    );
    assert_eq!(client.cmd("HINCRBY h big 7"), int(i64::MAX));
    assert_eq!(
        client.cmd("HINCRBY h text 1"),
        error("ERR hash value is not an integer")
    );
    assert_eq!(
        client.cmd("HINCRBY h spaced 1"),
        error("ERR hash value is not an integer")
    );
    assert_eq!(client.cmd("HINCRBYFLOAT h f 1.5"), bulk("1.5"));
    assert_eq!(client.cmd("HINCRBYFLOAT h f 0.25"), bulk("1.75"));
    assert_eq!(client.cmd("HINCRBYFLOAT h f -1.75"), bulk("0"));
    assert_eq!(client.cmd("HINCRBYFLOAT h n 2.5"), bulk("0.5"));
    assert_eq!(client.cmd("HINCRBYFLOAT h e 5.0e3"), bulk("5000"));
    assert_eq!(
        client.cmd("HINCRBYFLOAT h text 1"),
        error("ERR hash value is not a float")
    );
    assert_eq!(
        client.cmd("HINCRBYFLOAT h f x"),
        error("ERR value is not a valid float")
    );
    assert_eq!(
        client.cmd("HINCRBYFLOAT h f inf"),
        error("ERR value is NaN or Infinity")
    );
    assert_eq!(
        client.cmd("HINCRBYFLOAT h f nan"),
        error("ERR value is not a valid float")
    );
    // HINCRBY on a float value fails; HINCRBYFLOAT on an integer works.
    client.cmd("HSET h fl 1.5");
    assert_eq!(
        client.cmd("HINCRBY h fl 1"),
        error("ERR hash value is not an integer")
    );
    assert_eq!(client.cmd("HINCRBYFLOAT h fl 0.5"), bulk("2"));
    assert_eq!(client.cmd("HINCRBYFLOAT h fl -0.1"), bulk("1.9"));
}

#[test]
fn wrong_type_and_arity() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SET s x");
    for command in [
        "HSET s f v",
        "HMSET s f v",
        "HSETNX s f v",
        "HGET s f",
        "HMGET s f",
        "HDEL s f",
        "HEXISTS s f",
        "HLEN s",
        "HSTRLEN s f",
        "HKEYS s",
        "HVALS s",
        "HGETALL s",
        "HINCRBY s f 1",
        "HINCRBYFLOAT s f 1",
        "HRANDFIELD s",
        "HRANDFIELD s 2",
        "HSCAN s 0",
        "HEXPIRE s 10 FIELDS 1 f",
        "HPEXPIRE s 10 FIELDS 1 f",
        "HEXPIREAT s 10 FIELDS 1 f",
        "HPEXPIREAT s 10 FIELDS 1 f",
        "HTTL s FIELDS 1 f",
        "HPTTL s FIELDS 1 f",
        "HEXPIRETIME s FIELDS 1 f",
        "HPEXPIRETIME s FIELDS 1 f",
        "HPERSIST s FIELDS 1 f",
    ] {
        assert_eq!(client.cmd(command), error(WRONG_TYPE), "{command}");
    }
    assert_eq!(client.cmd("GET s"), bulk("x"));
    for (command, name) in [
        ("HSET h", "hset"),
        ("HSET h f", "hset"),
        ("HSET h f v g", "hset"),
        ("HMSET h f", "hmset"),
        ("HMSET h f v g", "hmset"),
        ("HSETNX h f", "hsetnx"),
        ("HGET h", "hget"),
        ("HGET h f g", "hget"),
        ("HMGET h", "hmget"),
        ("HDEL h", "hdel"),
        ("HEXISTS h", "hexists"),
        ("HLEN", "hlen"),
        ("HLEN h g", "hlen"),
        ("HSTRLEN h", "hstrlen"),
        ("HKEYS", "hkeys"),
        ("HVALS", "hvals"),
        ("HGETALL", "hgetall"),
        ("HINCRBY h f", "hincrby"),
        ("HINCRBYFLOAT h f", "hincrbyfloat"),
        ("HRANDFIELD", "hrandfield"),
        ("HSCAN h", "hscan"),
        ("HEXPIRE h 10 FIELDS 1", "hexpire"),
        ("HPEXPIRE h 10 FIELDS", "hpexpire"),
        ("HEXPIREAT h 10 FIELDS 1", "hexpireat"),
        ("HPEXPIREAT h 10 FIELDS 1", "hpexpireat"),
        ("HTTL h FIELDS 1", "httl"),
        ("HPTTL h FIELDS 1", "hpttl"),
        ("HEXPIRETIME h FIELDS", "hexpiretime"),
        ("HPEXPIRETIME h FIELDS 1", "hpexpiretime"),
        ("HPERSIST h FIELDS 1", "hpersist"),
    ] {
        assert_eq!(client.cmd(command), arity(name), "{command}");
    }
    assert_eq!(client.cmd("EXISTS h"), int(0));
}

#[test]
fn resp3_shapes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("HELLO 3");
    client.cmd("HSET h a 1 b 2");
    assert_eq!(
        client.cmd("HGETALL h"),
        Reply::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))])
    );
    assert_eq!(client.cmd("HGETALL nokey"), Reply::Map(vec![]));
    assert_eq!(client.cmd("HKEYS nokey"), array(vec![]));
    assert_eq!(client.cmd("HGET h nope"), Reply::Null);
    assert_eq!(client.cmd("HRANDFIELD nokey"), Reply::Null);
    assert_eq!(
        client.cmd("HMGET h a nope"),
        array(vec![bulk("1"), Reply::Null])
    );
    assert_eq!(client.cmd("HINCRBYFLOAT h f 1.5"), bulk("1.5"));
    // HRANDFIELD WITHVALUES nests the pairs in RESP3.
    let reply = client.cmd("HRANDFIELD h 5 WITHVALUES");
    let mut pairs: Vec<(String, String)> = reply
        .items()
        .iter()
        .map(|pair| {
            let pair = pair.items();
            assert_eq!(pair.len(), 2);
            (pair[0].text(), pair[1].text())
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("f".to_string(), "1.5".to_string()),
        ]
    );
    let reply = client.cmd("HRANDFIELD h -4 WITHVALUES");
    assert_eq!(reply.items().len(), 4);
    for pair in reply.items() {
        assert_eq!(pair.items().len(), 2);
    }
    let reply = client.cmd("HRANDFIELD h 1 WITHVALUES");
    assert_eq!(reply.items().len(), 1);
    assert_eq!(reply.items()[0].items().len(), 2);
    assert_eq!(client.cmd("HRANDFIELD h 3").items().len(), 3);
}

#[test]
fn hrandfield_counts() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("HRANDFIELD nokey"), Reply::Nil);
    assert_eq!(client.cmd("HRANDFIELD nokey 3"), array(vec![]));
    assert_eq!(client.cmd("HRANDFIELD nokey -3 WITHVALUES"), array(vec![]));
    client.cmd("HSET h a 1 b 2 c 3");
    let field = client.cmd("HRANDFIELD h").text();
    assert!(["a", "b", "c"].contains(&field.as_str()));
    assert_eq!(client.cmd("HRANDFIELD h 0"), array(vec![]));
    assert_eq!(client.cmd("HRANDFIELD h 0 WITHVALUES"), array(vec![]));
    // Positive: distinct, at most the whole hash.
    assert_eq!(
        sorted_texts(&client.cmd("HRANDFIELD h 2"))
            .iter()
            .collect::<BTreeSet<_>>()
            .len(),
        2
    );
    assert_eq!(
        sorted_texts(&client.cmd("HRANDFIELD h 10")),
        strings(&["a", "b", "c"])
    );
    let flat = client.cmd("HRANDFIELD h 10 WITHVALUES").items();
    assert_eq!(flat.len(), 6);
    for pair in flat.chunks(2) {
        let expected = match pair[0].text().as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        assert_eq!(pair[1], bulk(expected));
    }
    // Negative: repetitions allowed, exactly that many.
    let picks = client.cmd("HRANDFIELD h -20").items();
    assert_eq!(picks.len(), 20);
    assert!(picks
        .iter()
        .all(|pick| ["a", "b", "c"].contains(&pick.text().as_str())));
    assert_eq!(client.cmd("HRANDFIELD h -5 WITHVALUES").items().len(), 10);
    // Errors.
    assert_eq!(
        client.cmd("HRANDFIELD h -9223372036854775808"),
        error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    assert_eq!(
        client.cmd("HRANDFIELD h -9223372036854770000 WITHVALUES"),
        error("ERR value is out of range")
    );
    assert_eq!(
        client.cmd("HRANDFIELD h x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("HRANDFIELD h 1 WITHVALUE"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("HRANDFIELD h 1 WITHVALUES x"),
        error("ERR syntax error")
    );
    // A big hash: every field is reachable, unique picks are unique.
    let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for index in 0..1000 {
        command.push(format!("f{index}").into_bytes());
        command.push(b"v".to_vec());
    }
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args), int(1000));
    let picks = sorted_texts(&client.cmd("HRANDFIELD big 900"));
    assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 900);
    let picks = sorted_texts(&client.cmd("HRANDFIELD big 10"));
    assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 10);
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.extend(sorted_texts(&client.cmd("HRANDFIELD big -1000")));
    }
    assert!(seen.len() > 990, "{}", seen.len());
}

#[test]
fn hscan_options_and_cursors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("HSCAN nokey 0"),
        array(vec![bulk("0"), array(vec![])])
    );
    // Options are not read for a missing key, as in Redis.
    assert_eq!(
        client.cmd("HSCAN nokey 0 COUNT 0"),
        array(vec![bulk("0"), array(vec![])])
    );
    client.cmd("HSET h k1 a k2 b other c");
    assert_eq!(
        client.cmd("HSCAN h 0"),
        array(vec![
            bulk("0"),
            bulks(&["k1", "a", "k2", "b", "other", "c"])
        ])
    );
    assert_eq!(
        client.cmd("HSCAN h 0 MATCH k*"),
        array(vec![bulk("0"), bulks(&["k1", "a", "k2", "b"])])
    );
    assert_eq!(
        client.cmd("HSCAN h 0 MATCH k* NOVALUES"),
        array(vec![bulk("0"), bulks(&["k1", "k2"])])
    );
    assert_eq!(
        client.cmd("HSCAN h 0 count 1 match *"),
        array(vec![
            bulk("0"),
            bulks(&["k1", "a", "k2", "b", "other", "c"])
        ])
    );
    assert_eq!(client.cmd("HSCAN h x"), error("ERR invalid cursor"));
    assert_eq!(client.cmd("HSCAN h 1.5"), error("ERR invalid cursor"));
    assert_eq!(
        client.cmd("HSCAN h 18446744073709551616"),
        error("ERR invalid cursor")
    );
    assert_eq!(
        client.cmd("HSCAN h 18446744073709551615").items()[0],
        bulk("0")
    );
    assert_eq!(client.cmd("HSCAN h 0 COUNT 0"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("HSCAN h 0 COUNT x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("HSCAN h 0 MATCH"), error("ERR syntax error"));
    assert_eq!(client.cmd("HSCAN h 0 FOO bar"), error("ERR syntax error"));
    // A hashtable is scanned by cursor; every field comes back.
    let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for index in 0..500 {
        command.push(format!("f{index}").into_bytes());
        command.push(format!("v{index}").into_bytes());
    }
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    client.call(&args);
    let (found, calls) = hscan_all(&mut client, "big", 10);
    assert_eq!(found.len(), 500);
    assert!(calls > 10, "{calls}");
    for index in 0..500 {
        assert_eq!(found[&format!("f{index}")], format!("v{index}"));
    }
    // NOVALUES on a hashtable.
    let reply = client.cmd("HSCAN big 0 COUNT 1000 NOVALUES");
    assert_eq!(reply.items()[1].items().len(), 500);
}

#[test]
fn encodings_convert_where_redis_converts() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // 128 fields stay a listpack; the 129th converts.
    let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"h".to_vec()];
    for index in 0..128 {
        command.push(format!("f{index}").into_bytes());
        command.push(b"v".to_vec());
    }
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    client.call(&args);
    assert!(is_listpack(&mut client, "h"));
    client.cmd("HSET h one more");
    assert!(!is_listpack(&mut client, "h"));
    // Never back, even when small again.
    for index in 0..128 {
        client.cmd(&format!("HDEL h f{index}"));
    }
    assert_eq!(client.cmd("HLEN h"), int(1));
    for index in 0..30 {
        client.cmd(&format!("HSET h again{index} v"));
    }
    assert!(!is_listpack(&mut client, "h"));
    // A value longer than 64 bytes converts (checked once the hash has enough fields for a
    // scan by cursor to show).
    client.cmd(&format!("HSET long f {}", "x".repeat(64)));
    assert!(is_listpack(&mut client, "long"));
    client.cmd(&format!("HSET long g {}", "x".repeat(65)));
    for index in 0..20 {
        client.cmd(&format!("HSET long f{index} v"));
    }
    assert!(!is_listpack(&mut client, "long"));
    // HSETNX converts on its arguments even when it writes nothing (Redis 7.2).
    client.cmd("HSET nx a 1");
    for index in 0..20 {
        client.cmd(&format!("HSET nx f{index} v"));
    }
    assert!(is_listpack(&mut client, "nx"));
    assert_eq!(
        client.cmd(&format!("HSETNX nx a {}", "y".repeat(100))),
        int(0)
    );
    assert!(!is_listpack(&mut client, "nx"));
    // HINCRBY on a long field name converts too.
    for index in 0..20 {
        client.cmd(&format!("HSET incr f{index} 1"));
    }
    assert!(is_listpack(&mut client, "incr"));
    client.cmd(&format!("HINCRBY incr {} 1", "z".repeat(65)));
    assert!(!is_listpack(&mut client, "incr"));
    // The limits follow CONFIG SET (also under the old ziplist names).
    assert_eq!(client.cmd("CONFIG SET hash-max-listpack-entries 4"), ok());
    client.cmd("HSET small a 1 b 2 c 3 d 4");
    assert!(is_listpack(&mut client, "small"));
    client.cmd("HSET small e 5");
    for index in 0..10 {
        client.cmd(&format!("HSET small e{index} 5"));
    }
    assert!(!is_listpack(&mut client, "small"));
    assert_eq!(client.cmd("CONFIG SET hash-max-listpack-entries 128"), ok());
    assert_eq!(client.cmd("CONFIG SET hash-max-ziplist-value 3"), ok());
    client.cmd("HSET tiny a 1");
    for index in 0..3 {
        client.cmd(&format!("HSET tiny f{index} abc"));
    }
    assert!(is_listpack(&mut client, "tiny"));
    client.cmd("HSET tiny g abcd");
    for index in 0..20 {
        client.cmd(&format!("HSET tiny g{index} 1"));
    }
    assert!(!is_listpack(&mut client, "tiny"));
}

#[test]
fn hexpire_family_codes_and_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("HSET h a 1 b 2 c 3 d 4");
    assert_eq!(
        client.cmd("HEXPIRE h 100 FIELDS 3 a c nope"),
        array(vec![int(1), int(1), int(-2)])
    );
    assert_eq!(
        client.cmd("HTTL h FIELDS 3 a b nope"),
        array(vec![int(100), int(-1), int(-2)])
    );
    let ttl_ms = client.cmd("HPTTL h FIELDS 1 a").items()[0].integer();
    assert!((99_000..=100_000).contains(&ttl_ms), "{ttl_ms}");
    let at_ms = client.cmd("HPEXPIRETIME h FIELDS 1 a").items()[0].integer();
    let at_s = client.cmd("HEXPIRETIME h FIELDS 1 a").items()[0].integer();
    assert_eq!(at_s, (at_ms + 999) / 1000);
    assert_eq!(
        client.cmd("HEXPIRETIME h FIELDS 2 b nope"),
        array(vec![int(-1), int(-2)])
    );
    // Fields with an expiry come first, by expiry, as Redis 7.4 keeps its listpack.
    assert_eq!(client.cmd("HKEYS h"), bulks(&["c", "a", "b", "d"]));
    // Conditions.
    assert_eq!(
        client.cmd("HEXPIRE h 200 NX FIELDS 2 a b"),
        array(vec![int(0), int(1)])
    );
    assert_eq!(
        client.cmd("HEXPIRE h 300 XX FIELDS 2 a d"),
        array(vec![int(1), int(0)])
    );
    assert_eq!(
        client.cmd("HEXPIRE h 50 GT FIELDS 2 a d"),
        array(vec![int(0), int(0)])
    );
    assert_eq!(
        client.cmd("HEXPIRE h 400 gt FIELDS 1 a"),
        array(vec![int(1)])
    );
    assert_eq!(
        client.cmd("HEXPIRE h 500 LT FIELDS 2 a d"),
        array(vec![int(0), int(1)])
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 lt FIELDS 1 a"),
        array(vec![int(1)])
    );
    assert_eq!(client.cmd("HTTL h FIELDS 1 a"), array(vec![int(10)]));
    // A time not in the future deletes the field.
    assert_eq!(
        client.cmd("HPEXPIREAT h 1 FIELDS 2 d d"),
        array(vec![int(2), int(-2)])
    );
    assert_eq!(client.cmd("HEXISTS h d"), int(0));
    assert_eq!(client.cmd("HEXPIRE h 0 FIELDS 1 c"), array(vec![int(2)]));
    // HPERSIST.
    assert_eq!(
        client.cmd("HPERSIST h FIELDS 3 a a nope"),
        array(vec![int(1), int(-1), int(-2)])
    );
    assert_eq!(client.cmd("HTTL h FIELDS 1 a"), array(vec![int(-1)]));
    // Absolute times.
    assert_eq!(
        client.cmd("HEXPIREAT h 4000000000 FIELDS 1 a"),
        array(vec![int(1)])
    );
    assert_eq!(
        client.cmd("HEXPIRETIME h FIELDS 1 a"),
        array(vec![int(4_000_000_000)])
    );
    assert_eq!(
        client.cmd("HPEXPIRETIME h FIELDS 1 a"),
        array(vec![int(4_000_000_000_000)])
    );
    assert_eq!(
        client.cmd("HPEXPIREAT h 4000000000123 FIELDS 1 a"),
        array(vec![int(1)])
    );
    assert_eq!(
        client.cmd("HEXPIRETIME h FIELDS 1 a"),
        array(vec![int(4_000_000_001)])
    );
    // HSET clears an expiry; HINCRBY keeps it.
    client.cmd("HEXPIRE h 100 FIELDS 2 a b");
    client.cmd("HSET h a 5");
    client.cmd("HSET h b 7");
    client.cmd("HINCRBY h b 1");
    assert_eq!(
        client.cmd("HTTL h FIELDS 2 a b"),
        array(vec![int(-1), int(-1)])
    );
    client.cmd("HEXPIRE h 100 FIELDS 1 b");
    client.cmd("HINCRBY h b 1");
    client.cmd("HINCRBYFLOAT h b 1");
    assert_eq!(client.cmd("HTTL h FIELDS 1 b"), array(vec![int(100)]));
    assert_eq!(client.cmd("HGET h b"), bulk("10"));
    // Missing keys.
    assert_eq!(
        client.cmd("HEXPIRE nokey 10 FIELDS 2 a b"),
        array(vec![int(-2), int(-2)])
    );
    assert_eq!(client.cmd("HTTL nokey FIELDS 1 a"), array(vec![int(-2)]));
    assert_eq!(
        client.cmd("HPERSIST nokey FIELDS 1 a"),
        array(vec![int(-2)])
    );
    assert_eq!(client.cmd("EXISTS nokey"), int(0));
    // Errors, in Redis 7.4's words.
    assert_eq!(
        client.cmd("HEXPIRE h 10 FIELDS 0 a"),
        error("ERR Parameter `numFields` should be greater than 0")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 FIELDS x a"),
        error("ERR Parameter `numFields` should be greater than 0")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 FIELDS 2 a"),
        error("ERR The `numfields` parameter must match the number of arguments")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 FIELDS 1 a b"),
        error("ERR The `numfields` parameter must match the number of arguments")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 FIELD 1 a"),
        error("ERR Mandatory argument FIELDS is missing or not at the right position")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 10 XX NX FIELDS 1 a"),
        error("ERR Mandatory argument FIELDS is missing or not at the right position")
    );
    assert_eq!(
        client.cmd("HEXPIRE h x FIELDS 1 a"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("HEXPIRE h -1 FIELDS 1 a"),
        error("ERR invalid expire time, must be >= 0")
    );
    assert_eq!(
        client.cmd("HEXPIRE h 70368744177664 FIELDS 1 a"),
        error("ERR invalid expire time in 'hexpire' command")
    );
    assert_eq!(
        client.cmd("HPEXPIREAT h 70368744177664 FIELDS 1 a"),
        error("ERR invalid expire time in 'hpexpireat' command")
    );
    assert_eq!(
        client.cmd("HPEXPIREAT h 70368744177663 FIELDS 1 a"),
        array(vec![int(1)])
    );
    assert_eq!(
        client.cmd("HTTL h FIELDS 0 a"),
        error("ERR Number of fields must be a positive integer")
    );
    assert_eq!(
        client.cmd("HPERSIST h FIELDS -1 a"),
        error("ERR Number of fields must be a positive integer")
    );
    assert_eq!(
        client.cmd("HPTTL h FIELDS 2 a"),
        error("ERR The `numfields` parameter must match the number of arguments")
    );
    assert_eq!(
        client.cmd("HEXPIRETIME h NOTFIELDS 1 a"),
        error("ERR Mandatory argument FIELDS is missing or not at the right position")
    );
}

#[test]
fn active_expiry_removes_fields_nobody_reads() {
    let server = TestServer::start(&["--hz", "100"]);
    let mut client = server.client();
    client.cmd("HSET small a 1 b 2");
    client.cmd("HPEXPIRE small 20 FIELDS 1 a");
    let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for index in 0..600 {
        command.push(format!("f{index}").into_bytes());
        command.push(b"v".to_vec());
    }
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    client.call(&args);
    let mut expire: Vec<Vec<u8>> = vec![b"HPEXPIRE".to_vec(), b"big".to_vec(), b"20".to_vec()];
    expire.push(b"FIELDS".to_vec());
    expire.push(b"599".to_vec());
    for index in 0..599 {
        expire.push(format!("f{index}").into_bytes());
    }
    let args: Vec<&[u8]> = expire.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args).items().len(), 599);
    client.cmd("HSET gone x 1");
    client.cmd("HPEXPIRE gone 20 FIELDS 1 x");
    // HLEN counts expired fields that are still there, so it drops only by active removal.
    assert!(wait_for(|| client.cmd("HLEN small") == int(1)));
    assert!(wait_for(|| client.cmd("HLEN big") == int(1)));
    assert_eq!(client.cmd("HGETALL big"), bulks(&["f599", "v"]));
    assert!(wait_for(|| client.cmd("EXISTS gone") == int(0)));
    // A field without expiry stays.
    assert_eq!(client.cmd("HGETALL small"), bulks(&["b", "2"]));
}

#[test]
fn expired_fields_disappear_as_in_redis_7_4() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    // Lazy expiry alone: the active cycle would remove fields behind the test's back.
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), ok());
    client.cmd("HSET h a 1 b 2 c 3");
    assert_eq!(
        client.cmd("HPEXPIRE h 50 FIELDS 2 a b"),
        array(vec![int(1), int(1)])
    );
    // Listings skip expired fields without deleting them; HLEN still counts them.
    assert!(wait_for(|| client.cmd("HGETALL h") == bulks(&["c", "3"])));
    assert_eq!(client.cmd("HKEYS h"), bulks(&["c"]));
    assert_eq!(client.cmd("HVALS h"), bulks(&["3"]));
    assert_eq!(
        client.cmd("HSCAN h 0"),
        array(vec![bulk("0"), bulks(&["c", "3"])])
    );
    assert_eq!(client.cmd("HLEN h"), int(3));
    // Looking a field up deletes it.
    assert_eq!(client.cmd("HEXISTS h a"), int(0));
    assert_eq!(client.cmd("HLEN h"), int(2));
    // HTTL and HPERSIST see an expired field as absent.
    assert_eq!(client.cmd("HTTL h FIELDS 1 b"), array(vec![int(-2)]));
    assert_eq!(client.cmd("HPERSIST h FIELDS 1 b"), array(vec![int(-2)]));
    assert_eq!(client.cmd("HGET h b"), Reply::Nil);
    assert_eq!(client.cmd("HLEN h"), int(1));
    // When the last field goes, the key goes.
    client.cmd("HPEXPIRE h 30 FIELDS 1 c");
    assert!(wait_for(|| client.cmd("HSTRLEN h c") == int(0)));
    assert_eq!(client.cmd("EXISTS h"), int(0));
    // HINCRBY on an expired field starts from zero, keeping the hash.
    client.cmd("HSET n x 5 y 1");
    client.cmd("HPEXPIRE n 20 FIELDS 1 x");
    assert!(wait_for(|| client.cmd("HGETALL n") == bulks(&["y", "1"])));
    assert_eq!(client.cmd("HINCRBY n x 2"), int(2));
    assert_eq!(client.cmd("HTTL n FIELDS 1 x"), array(vec![int(-1)]));
    // ... and HSETNX can set it again.
    client.cmd("HPEXPIRE n 20 FIELDS 1 y");
    assert!(wait_for(|| client.cmd("HKEYS n") == bulks(&["x"])));
    assert_eq!(client.cmd("HSETNX n y new"), int(1));
    assert_eq!(client.cmd("HGET n y"), bulk("new"));
    // HMGET deletes what it meets; the rest reads nil once the key is gone.
    client.cmd("HSET m a 1 b 2");
    client.cmd("HPEXPIRE m 20 FIELDS 2 a b");
    assert!(wait_for(|| client.cmd("HKEYS m") == array(vec![])));
    assert_eq!(client.cmd("EXISTS m"), int(1));
    assert_eq!(
        client.cmd("HMGET m a b c"),
        array(vec![Reply::Nil, Reply::Nil, Reply::Nil])
    );
    assert_eq!(client.cmd("EXISTS m"), int(0));
    // A big hash: HRANDFIELD removes every due field first.
    let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for index in 0..300 {
        command.push(format!("f{index}").into_bytes());
        command.push(b"v".to_vec());
    }
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    client.call(&args);
    let mut expire: Vec<Vec<u8>> = vec![
        b"HPEXPIRE".to_vec(),
        b"big".to_vec(),
        b"40".to_vec(),
        b"FIELDS".to_vec(),
        b"150".to_vec(),
    ];
    for index in 0..150 {
        expire.push(format!("f{index}").into_bytes());
    }
    let args: Vec<&[u8]> = expire.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args).items().len(), 150);
    assert!(wait_for(|| client.cmd("HKEYS big").items().len() == 150));
    let (found, _) = hscan_all(&mut client, "big", 20);
    assert_eq!(found.len(), 150);
    assert!(found
        .keys()
        .all(|field| field[1..].parse::<u32>().unwrap() >= 150));
    assert_eq!(client.cmd("HLEN big"), int(300));
    assert_eq!(client.cmd("HRANDFIELD big 1000").items().len(), 150);
    assert_eq!(client.cmd("HLEN big"), int(150));
}
