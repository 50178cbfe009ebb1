//! Sorted sets as clients see them: every command's replies and errors (RESP2 and RESP3),
//! ranges by rank, score and lex, set operations, pops and blocking pops, ZSCAN, and the
//! delayed-queue pattern under concurrency.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn arity(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn nil() -> Reply {
    Reply::Nil
}

fn double(text: &str) -> Reply {
    Reply::Double(text.to_string())
}

fn pair(member: &str, score: &str) -> Reply {
    array(vec![bulk(member), double(score)])
}

fn empty() -> Reply {
    array(vec![])
}

fn resp3(server: &TestServer) -> RawClient {
    let mut client = server.client();
    client.cmd("HELLO 3");
    client
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

#[test]
fn zadd_options_and_replies() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("ZADD z 1 a 2 b 3 c"), int(3));
    assert_eq!(client.cmd("ZADD z 1 a 5 b 4 d"), int(1));
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 WITHSCORES"),
        bulks(&["a", "1", "c", "3", "d", "4", "b", "5"])
    );
    // CH counts updates too.
    assert_eq!(client.cmd("ZADD z CH 1 a 6 b 7 e"), int(2));
    // NX: only new members; XX: only existing ones.
    assert_eq!(client.cmd("ZADD z NX 100 a 8 f"), int(1));
    assert_eq!(client.cmd("ZSCORE z a"), bulk("1"));
    assert_eq!(client.cmd("ZADD z XX CH 100 a 9 g"), int(1));
    assert_eq!(client.cmd("ZSCORE z a"), bulk("100"));
    assert_eq!(client.cmd("ZSCORE z g"), nil());
    // GT / LT only move scores one way, and still add new members.
    assert_eq!(client.cmd("ZADD z GT CH 50 a 200 b 1 h"), int(2));
    assert_eq!(client.cmd("ZMSCORE z a b h"), bulks(&["100", "200", "1"]));
    assert_eq!(client.cmd("ZADD z LT CH 50 a 300 b"), int(1));
    assert_eq!(client.cmd("ZMSCORE z a b"), bulks(&["50", "200"]));
    assert_eq!(client.cmd("ZADD z XX GT CH 60 a 61 nope"), int(1));
    assert_eq!(client.cmd("ZSCORE z nope"), nil());
    // INCR replies with the new score, or nil when nothing was done.
    assert_eq!(client.cmd("ZADD z INCR 1.5 a"), bulk("61.5"));
    assert_eq!(client.cmd("ZADD z INCR 2 new"), bulk("2"));
    assert_eq!(client.cmd("ZADD z NX INCR 1 a"), nil());
    assert_eq!(client.cmd("ZADD z XX INCR 1 nope"), nil());
    assert_eq!(client.cmd("ZADD z GT INCR -1 a"), nil());
    assert_eq!(client.cmd("ZADD z LT INCR -1 a"), bulk("60.5"));
    // XX on a missing key creates nothing.
    assert_eq!(client.cmd("ZADD missing XX 1 a"), int(0));
    assert_eq!(client.cmd("ZADD missing XX INCR 1 a"), nil());
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    // Options are case-insensitive.
    assert_eq!(client.cmd("zadd z nx ch 1 zz"), int(1));
}

#[test]
fn zadd_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("ZADD z"), arity("zadd"));
    assert_eq!(client.cmd("ZADD z 1"), arity("zadd"));
    assert_eq!(client.cmd("ZADD z NX"), arity("zadd"));
    assert_eq!(client.cmd("ZADD z NX 1"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZADD z 1 a 2"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("ZADD z NX XX 1 a"),
        error("ERR XX and NX options at the same time are not compatible")
    );
    for options in ["GT LT", "GT NX", "LT NX"] {
        assert_eq!(
            client.cmd(&format!("ZADD z {options} 1 a")),
            error("ERR GT, LT, and/or NX options at the same time are not compatible")
        );
    }
    assert_eq!(
        client.cmd("ZADD z INCR 1 a 2 b"),
        error("ERR INCR option supports a single increment-element pair")
    );
    for score in ["abc", "nan", "1e400", "1e-400", "1x", "", " 1"] {
        assert_eq!(
            client.call(&[b"ZADD", b"z", score.as_bytes(), b"a"]),
            error("ERR value is not a valid float"),
            "{score:?}"
        );
    }
    // Nothing was written by the failed commands.
    assert_eq!(client.cmd("EXISTS z"), int(0));
    // strtod's syntax: hexadecimal and infinities are scores.
    assert_eq!(
        client.cmd("ZADD z 0x10 hex +inf top -Infinity bottom"),
        int(3)
    );
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 WITHSCORES"),
        bulks(&["bottom", "-inf", "hex", "16", "top", "inf"])
    );
    assert_eq!(
        client.cmd("ZADD z INCR -inf top"),
        error("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(client.cmd("ZSCORE z top"), bulk("inf"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZADD string 1 a"), error(WRONG_TYPE));
    // Syntax errors come before the type check.
    assert_eq!(client.cmd("ZADD string 1"), arity("zadd"));
    assert_eq!(
        client.cmd("ZADD string x a"),
        error("ERR value is not a valid float")
    );
}

#[test]
fn zincrby() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("ZINCRBY z 2 a"), bulk("2"));
    assert_eq!(client.cmd("ZINCRBY z 0.5 a"), bulk("2.5"));
    assert_eq!(client.cmd("ZINCRBY z -10 a"), bulk("-7.5"));
    assert_eq!(client.cmd("ZINCRBY z inf a"), bulk("inf"));
    assert_eq!(
        client.cmd("ZINCRBY z -inf a"),
        error("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(
        client.cmd("ZINCRBY z x a"),
        error("ERR value is not a valid float")
    );
    // ZINCRBY shares ZADD's option parser, as in Redis.
    assert_eq!(client.cmd("ZINCRBY z nx a"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZINCRBY z 1"), arity("zincrby"));
    assert_eq!(client.cmd("ZINCRBY z 1 a b"), arity("zincrby"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZINCRBY string 1 a"), error(WRONG_TYPE));
}

#[test]
fn zrem_zcard_zscore_zmscore() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c");
    assert_eq!(client.cmd("ZCARD z"), int(3));
    assert_eq!(client.cmd("ZCARD missing"), int(0));
    assert_eq!(client.cmd("ZSCORE z b"), bulk("2"));
    assert_eq!(client.cmd("ZSCORE z x"), nil());
    assert_eq!(client.cmd("ZSCORE missing x"), nil());
    assert_eq!(
        client.cmd("ZMSCORE z a x c"),
        array(vec![bulk("1"), nil(), bulk("3")])
    );
    assert_eq!(client.cmd("ZMSCORE missing a b"), array(vec![nil(), nil()]));
    assert_eq!(client.cmd("ZREM z a x"), int(1));
    assert_eq!(client.cmd("ZREM z a"), int(0));
    assert_eq!(client.cmd("ZREM missing a"), int(0));
    // The key goes away with its last member.
    assert_eq!(client.cmd("ZREM z b c b"), int(2));
    assert_eq!(client.cmd("EXISTS z"), int(0));
    assert_eq!(client.cmd("ZREM z"), arity("zrem"));
    assert_eq!(client.cmd("ZCARD"), arity("zcard"));
    assert_eq!(client.cmd("ZCARD a b"), arity("zcard"));
    assert_eq!(client.cmd("ZSCORE z"), arity("zscore"));
    assert_eq!(client.cmd("ZMSCORE z"), arity("zmscore"));
    client.cmd("SET string value");
    for command in [
        "ZREM string a",
        "ZCARD string",
        "ZSCORE string a",
        "ZMSCORE string a",
    ] {
        assert_eq!(client.cmd(command), error(WRONG_TYPE), "{command}");
    }
}

#[test]
fn scores_print_as_redis_7_2() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1.1 a 0.00001 b 1e-7 c 1e17 d 1e19 e -0 f 12345.678 g 0.1 h");
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 WITHSCORES"),
        bulks(&[
            "f",
            "0",
            "c",
            "1e-7",
            "b",
            "0.00001",
            "h",
            "0.1",
            "a",
            "1.1",
            "g",
            "12345.678",
            "d",
            "100000000000000000",
            "e",
            "1e+19",
        ])
    );
    client.cmd("ZINCRBY z 0.2 h");
    assert_eq!(client.cmd("ZSCORE z h"), bulk("0.30000000000000004"));
    // A big sorted set keeps the sign of zero; a listpack stores -0 as 0, as Redis's does.
    client.cmd("ZADD big -0 a");
    for number in 0..200 {
        client.cmd(&format!("ZADD big {number} m{number}"));
    }
    client.cmd("ZADD big -0 b");
    assert_eq!(client.cmd("ZSCORE big b"), bulk("-0"));
    assert_eq!(client.cmd("ZSCORE big a"), bulk("0"));
}

#[test]
fn zrank_and_zrevrank() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c");
    assert_eq!(client.cmd("ZRANK z a"), int(0));
    assert_eq!(client.cmd("ZRANK z c"), int(2));
    assert_eq!(client.cmd("ZREVRANK z a"), int(2));
    assert_eq!(client.cmd("ZRANK z x"), nil());
    assert_eq!(client.cmd("ZRANK missing x"), nil());
    assert_eq!(
        client.cmd("ZRANK z b WITHSCORE"),
        array(vec![int(1), bulk("2")])
    );
    assert_eq!(
        client.cmd("ZREVRANK z c withscore"),
        array(vec![int(0), bulk("3")])
    );
    assert_eq!(client.cmd("ZRANK z x WITHSCORE"), Reply::NilArray);
    assert_eq!(client.cmd("ZRANK missing x WITHSCORE"), Reply::NilArray);
    assert_eq!(client.cmd("ZRANK z a foo"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZRANK z a WITHSCORE x"), arity("zrank"));
    assert_eq!(client.cmd("ZREVRANK z a WITHSCORE x"), arity("zrevrank"));
    assert_eq!(client.cmd("ZRANK z"), arity("zrank"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZRANK string a"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZREVRANK string a WITHSCORE"), error(WRONG_TYPE));
    // Ties order by member bytes, in both encodings.
    for (key, extra) in [("small", 0), ("large", 200)] {
        for number in 0..extra {
            client.cmd(&format!("ZADD {key} 100 filler{number:03}"));
        }
        client.cmd(&format!("ZADD {key} 5 b 5 a 5 c"));
        assert_eq!(client.cmd(&format!("ZRANK {key} a")), int(0));
        assert_eq!(client.cmd(&format!("ZRANK {key} c")), int(2));
        assert_eq!(client.cmd(&format!("ZREVRANK {key} a")), int(extra + 2));
    }
}

#[test]
fn zcount_and_score_ranges() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z -inf ninf 1 a 2 b 3 c 4 d +inf pinf");
    assert_eq!(client.cmd("ZCOUNT z -inf +inf"), int(6));
    assert_eq!(client.cmd("ZCOUNT z 2 3"), int(2));
    assert_eq!(client.cmd("ZCOUNT z (2 3"), int(1));
    assert_eq!(client.cmd("ZCOUNT z (2 (3"), int(0));
    assert_eq!(client.cmd("ZCOUNT z (1 (1"), int(0));
    assert_eq!(client.cmd("ZCOUNT z 3 2"), int(0));
    assert_eq!(client.cmd("ZCOUNT z inf inf"), int(1));
    assert_eq!(client.cmd("ZCOUNT z (-inf (inf"), int(4));
    // Range bounds read as strtod does: spaces before, an empty bound is 0, hexadecimal.
    assert_eq!(client.call(&[b"ZCOUNT", b"z", b" 1", b"0x2"]), int(2));
    assert_eq!(client.call(&[b"ZCOUNT", b"z", b"", b"1"]), int(1));
    assert_eq!(client.cmd("ZCOUNT z 1e400 inf"), int(1));
    for (min, max) in [
        ("a", "1"),
        ("1", "x"),
        ("nan", "1"),
        ("((1", "2"),
        ("[1", "2"),
    ] {
        assert_eq!(
            client.cmd(&format!("ZCOUNT z {min} {max}")),
            error("ERR min or max is not a float"),
            "{min} {max}"
        );
    }
    assert_eq!(
        client.call(&[b"ZCOUNT", b"z", b"1 ", b"2"]),
        error("ERR min or max is not a float")
    );
    assert_eq!(client.cmd("ZCOUNT missing 0 1"), int(0));
    assert_eq!(client.cmd("ZCOUNT z 0"), arity("zcount"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZCOUNT string 0 1"), error(WRONG_TYPE));
    // The range is checked before the key.
    assert_eq!(
        client.cmd("ZCOUNT string x 1"),
        error("ERR min or max is not a float")
    );
}

#[test]
fn zlexcount_and_lex_ranges() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 0 a 0 b 0 c 0 d 0 e 0 ff 0 g");
    assert_eq!(client.cmd("ZLEXCOUNT z - +"), int(7));
    assert_eq!(client.cmd("ZLEXCOUNT z [b (e"), int(3));
    assert_eq!(client.cmd("ZLEXCOUNT z (b [e"), int(3));
    assert_eq!(client.cmd("ZLEXCOUNT z [f +"), int(2));
    assert_eq!(client.cmd("ZLEXCOUNT z + -"), int(0));
    assert_eq!(client.cmd("ZLEXCOUNT z [e [b"), int(0));
    assert_eq!(client.cmd("ZLEXCOUNT missing - +"), int(0));
    for (min, max) in [("a", "+"), ("-", "z"), ("+a", "+"), ("-", "-z")] {
        assert_eq!(
            client.cmd(&format!("ZLEXCOUNT z {min} {max}")),
            error("ERR min or max not valid string range item")
        );
    }
    assert_eq!(
        client.call(&[b"ZLEXCOUNT", b"z", b"", b"+"]),
        error("ERR min or max not valid string range item")
    );
    assert_eq!(client.cmd("ZRANGEBYLEX z [b (e"), bulks(&["b", "c", "d"]));
    assert_eq!(
        client.cmd("ZRANGEBYLEX z - + LIMIT 2 3"),
        bulks(&["c", "d", "e"])
    );
    assert_eq!(
        client.cmd("ZRANGEBYLEX z - + LIMIT 5 -1"),
        bulks(&["ff", "g"])
    );
    assert_eq!(
        client.cmd("ZREVRANGEBYLEX z (e - LIMIT 1 2"),
        bulks(&["c", "b"])
    );
    assert_eq!(client.cmd("ZREVRANGEBYLEX z - +"), empty());
    assert_eq!(client.cmd("ZRANGE z [c [e BYLEX"), bulks(&["c", "d", "e"]));
    assert_eq!(
        client.cmd("ZRANGE z [e [c BYLEX REV"),
        bulks(&["e", "d", "c"])
    );
    assert_eq!(client.cmd("ZRANGE z ( + BYLEX LIMIT 0 1"), bulks(&["a"]));
    assert_eq!(
        client.cmd("ZRANGEBYLEX z - + WITHSCORES"),
        error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(client.cmd("ZREMRANGEBYLEX z (b [d"), int(2));
    assert_eq!(
        client.cmd("ZRANGE z 0 -1"),
        bulks(&["a", "b", "e", "ff", "g"])
    );
    assert_eq!(
        client.cmd("ZREMRANGEBYLEX z x +"),
        error("ERR min or max not valid string range item")
    );
    assert_eq!(client.cmd("ZREMRANGEBYLEX z - +"), int(5));
    assert_eq!(client.cmd("EXISTS z"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYLEX z - +"), int(0));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZLEXCOUNT string - +"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZRANGEBYLEX string - +"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZREMRANGEBYLEX string - +"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZLEXCOUNT z -"), arity("zlexcount"));
    assert_eq!(client.cmd("ZRANGEBYLEX z -"), arity("zrangebylex"));
    assert_eq!(client.cmd("ZREMRANGEBYLEX z -"), arity("zremrangebylex"));
}

#[test]
fn zrange_by_rank() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(client.cmd("ZRANGE z 0 -1"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(client.cmd("ZRANGE z 1 2"), bulks(&["b", "c"]));
    assert_eq!(client.cmd("ZRANGE z -2 -1"), bulks(&["c", "d"]));
    assert_eq!(
        client.cmd("ZRANGE z -100 100"),
        bulks(&["a", "b", "c", "d"])
    );
    assert_eq!(client.cmd("ZRANGE z 2 1"), empty());
    assert_eq!(client.cmd("ZRANGE z 4 10"), empty());
    assert_eq!(client.cmd("ZRANGE z -1 -2"), empty());
    assert_eq!(
        client.cmd("ZRANGE z 0 9223372036854775807"),
        bulks(&["a", "b", "c", "d"])
    );
    assert_eq!(client.cmd("ZRANGE z 0 0 WITHSCORES"), bulks(&["a", "1"]));
    assert_eq!(
        client.cmd("ZRANGE z 0 1 REV WITHSCORES"),
        bulks(&["d", "4", "c", "3"])
    );
    assert_eq!(client.cmd("ZREVRANGE z 0 -1"), bulks(&["d", "c", "b", "a"]));
    assert_eq!(client.cmd("ZREVRANGE z 1 1 WITHSCORES"), bulks(&["c", "3"]));
    assert_eq!(client.cmd("ZREVRANGE z -1 -1"), bulks(&["a"]));
    assert_eq!(client.cmd("ZRANGE missing 0 -1"), empty());
    assert_eq!(
        client.cmd("ZRANGE z a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("ZRANGE z 0 1.5"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 LIMIT 0 1"),
        error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        client.cmd("ZREVRANGE z 0 -1 LIMIT 0 1"),
        error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(client.cmd("ZRANGE z 0 -1 FOO"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 BYSCORE BYLEX"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 REV REV"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 LIMIT 1"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZREVRANGE z 0 -1 REV"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZREVRANGE z 0 -1 BYSCORE"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("ZRANGE z 0"), arity("zrange"));
    assert_eq!(client.cmd("ZREVRANGE z 0"), arity("zrevrange"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZRANGE string 0 -1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZREVRANGE string 0 -1"), error(WRONG_TYPE));
}

#[test]
fn zrange_by_score_with_limits() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(client.cmd("ZRANGEBYSCORE z 2 4"), bulks(&["b", "c", "d"]));
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z (2 (5 WITHSCORES"),
        bulks(&["c", "3", "d", "4"])
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z -inf +inf LIMIT 1 2"),
        bulks(&["b", "c"])
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z -inf +inf LIMIT 3 -1"),
        bulks(&["d", "e"])
    );
    assert_eq!(client.cmd("ZRANGEBYSCORE z -inf +inf LIMIT 1 0"), empty());
    // A negative offset, or one past the end, gives nothing.
    assert_eq!(client.cmd("ZRANGEBYSCORE z -inf +inf LIMIT -1 2"), empty());
    assert_eq!(client.cmd("ZRANGEBYSCORE z -inf +inf LIMIT 5 2"), empty());
    assert_eq!(client.cmd("ZRANGEBYSCORE z 4 2"), empty());
    assert_eq!(
        client.cmd("ZREVRANGEBYSCORE z 4 2"),
        bulks(&["d", "c", "b"])
    );
    assert_eq!(
        client.cmd("ZREVRANGEBYSCORE z (5 -inf LIMIT 1 2 WITHSCORES"),
        bulks(&["c", "3", "b", "2"])
    );
    assert_eq!(client.cmd("ZREVRANGEBYSCORE z 2 4"), empty());
    assert_eq!(client.cmd("ZRANGE z (1 3 BYSCORE"), bulks(&["b", "c"]));
    assert_eq!(
        client.cmd("ZRANGE z 3 (1 BYSCORE REV WITHSCORES"),
        bulks(&["c", "3", "b", "2"])
    );
    assert_eq!(
        client.cmd("ZRANGE z -inf +inf BYSCORE LIMIT 4 10"),
        bulks(&["e"])
    );
    assert_eq!(
        client.cmd("ZRANGE z +inf -inf BYSCORE REV LIMIT 0 2"),
        bulks(&["e", "d"])
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z a 1"),
        error("ERR min or max is not a float")
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z 0 1 LIMIT a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z 0 1 LIMIT 0"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZRANGEBYSCORE z 0 1 REV"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("ZRANGEBYSCORE missing 0 1"), empty());
    assert_eq!(client.cmd("ZRANGEBYSCORE z 0"), arity("zrangebyscore"));
    assert_eq!(
        client.cmd("ZREVRANGEBYSCORE z 0"),
        arity("zrevrangebyscore")
    );
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZRANGEBYSCORE string 0 1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZREVRANGEBYSCORE string 1 0"), error(WRONG_TYPE));
}

#[test]
fn ranges_on_a_large_set_match_the_expected_order() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut words: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"big".to_vec()];
    for number in 0..1000u32 {
        let score = (number * 37 % 1000) / 10;
        words.push(score.to_string().into_bytes());
        words.push(format!("m{number:04}").into_bytes());
    }
    let args: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args), int(1000));
    let mut expected: Vec<(u32, String)> = (0..1000u32)
        .map(|number| ((number * 37 % 1000) / 10, format!("m{number:04}")))
        .collect();
    expected.sort();
    let names = |slice: &[(u32, String)]| -> Reply {
        array(slice.iter().map(|(_, name)| bulk(name)).collect())
    };
    assert_eq!(client.cmd("ZRANGE big 0 -1"), names(&expected));
    assert_eq!(client.cmd("ZRANGE big 500 509"), names(&expected[500..510]));
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(client.cmd("ZREVRANGE big 10 19"), names(&reversed[10..20]));
    let in_range: Vec<(u32, String)> = expected
        .iter()
        .filter(|(score, _)| *score > 20 && *score <= 40)
        .cloned()
        .collect();
    assert_eq!(client.cmd("ZCOUNT big (20 40"), int(in_range.len() as i64));
    assert_eq!(
        client.cmd("ZRANGEBYSCORE big (20 40 LIMIT 5 7"),
        names(&in_range[5..12])
    );
    let (rank, (_, name)) = expected.iter().enumerate().nth(777).expect("777 members");
    assert_eq!(client.cmd(&format!("ZRANK big {name}")), int(rank as i64));
    assert_eq!(
        client.cmd(&format!("ZREVRANK big {name}")),
        int(999 - rank as i64)
    );
    assert_eq!(client.cmd("ZREMRANGEBYRANK big 100 899"), int(800));
    let mut remaining = expected[..100].to_vec();
    remaining.extend_from_slice(&expected[900..]);
    assert_eq!(client.cmd("ZRANGE big 0 -1"), names(&remaining));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE big -inf (50"), int(100));
    assert_eq!(client.cmd("ZCARD big"), int(100));
}

#[test]
fn zremrangebyrank_and_zremrangebyscore() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(client.cmd("ZREMRANGEBYRANK z 1 2"), int(2));
    assert_eq!(client.cmd("ZRANGE z 0 -1"), bulks(&["a", "d", "e"]));
    assert_eq!(client.cmd("ZREMRANGEBYRANK z 5 10"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYRANK z 2 1"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYRANK z -1 -1"), int(1));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE z (1 +inf"), int(1));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE z 2 3"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE z -inf 1"), int(1));
    assert_eq!(client.cmd("EXISTS z"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYRANK missing 0 -1"), int(0));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE missing 0 1"), int(0));
    assert_eq!(
        client.cmd("ZREMRANGEBYRANK z a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("ZREMRANGEBYSCORE z a 1"),
        error("ERR min or max is not a float")
    );
    assert_eq!(client.cmd("ZREMRANGEBYRANK z 0"), arity("zremrangebyrank"));
    assert_eq!(
        client.cmd("ZREMRANGEBYSCORE z 0"),
        arity("zremrangebyscore")
    );
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZREMRANGEBYRANK string 0 1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZREMRANGEBYSCORE string 0 1"), error(WRONG_TYPE));
}

#[test]
fn zrangestore() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD {t}src 1 a 2 b 3 c 4 d");
    assert_eq!(client.cmd("ZRANGESTORE {t}dst {t}src 1 2"), int(2));
    assert_eq!(
        client.cmd("ZRANGE {t}dst 0 -1 WITHSCORES"),
        bulks(&["b", "2", "c", "3"])
    );
    assert_eq!(client.cmd("ZRANGESTORE {t}dst {t}src 0 1 REV"), int(2));
    assert_eq!(client.cmd("ZRANGE {t}dst 0 -1"), bulks(&["c", "d"]));
    assert_eq!(
        client.cmd("ZRANGESTORE {t}dst {t}src (1 +inf BYSCORE LIMIT 1 5"),
        int(2)
    );
    assert_eq!(client.cmd("ZRANGE {t}dst 0 -1"), bulks(&["c", "d"]));
    assert_eq!(client.cmd("ZRANGESTORE {t}dst {t}src [a [b BYLEX"), int(2));
    assert_eq!(client.cmd("ZRANGE {t}dst 0 -1"), bulks(&["a", "b"]));
    // Overwrites any type; an empty result deletes the destination.
    client.cmd("SET {t}string value");
    assert_eq!(client.cmd("ZRANGESTORE {t}string {t}src 0 0"), int(1));
    assert_eq!(client.cmd("ZRANGE {t}string 0 -1"), bulks(&["a"]));
    assert_eq!(client.cmd("ZRANGESTORE {t}dst {t}src 10 20"), int(0));
    assert_eq!(client.cmd("EXISTS {t}dst"), int(0));
    assert_eq!(client.cmd("ZRANGESTORE {t}dst {t}missing 0 -1"), int(0));
    // The source can be the destination.
    assert_eq!(client.cmd("ZRANGESTORE {t}src {t}src 0 1"), int(2));
    assert_eq!(client.cmd("ZRANGE {t}src 0 -1"), bulks(&["a", "b"]));
    assert_eq!(
        client.cmd("ZRANGESTORE {t}dst {t}src 0 -1 WITHSCORES"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZRANGESTORE {t}dst {t}src 0 -1 LIMIT 0 1"),
        error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    client.cmd("SET {t}string value");
    assert_eq!(
        client.cmd("ZRANGESTORE {t}dst {t}string 0 -1"),
        error(WRONG_TYPE)
    );
    assert_eq!(
        client.cmd("ZRANGESTORE {t}dst {t}src 0"),
        arity("zrangestore")
    );
}

#[test]
fn union_inter_diff() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD {s}a 1 x 2 y 3 z");
    client.cmd("ZADD {s}b 10 y 20 z 30 w");
    client.cmd("ZADD {s}c 5 z");
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b WITHSCORES"),
        bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b"),
        bulks(&["x", "y", "z", "w"])
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b WEIGHTS 2 0.5 AGGREGATE MAX WITHSCORES"),
        bulks(&["x", "2", "y", "5", "z", "10", "w", "15"])
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b AGGREGATE MIN WITHSCORES"),
        bulks(&["x", "1", "y", "2", "z", "3", "w", "30"])
    );
    assert_eq!(
        client.cmd("ZINTER 2 {s}a {s}b WITHSCORES"),
        bulks(&["y", "12", "z", "23"])
    );
    assert_eq!(
        client.cmd("ZINTER 3 {s}a {s}b {s}c WITHSCORES"),
        bulks(&["z", "28"])
    );
    assert_eq!(client.cmd("ZINTER 2 {s}a {s}missing"), empty());
    assert_eq!(
        client.cmd("ZDIFF 2 {s}a {s}b WITHSCORES"),
        bulks(&["x", "1"])
    );
    assert_eq!(client.cmd("ZDIFF 2 {s}a {s}c"), bulks(&["x", "y"]));
    assert_eq!(client.cmd("ZDIFF 2 {s}a {s}a"), empty());
    assert_eq!(client.cmd("ZDIFF 1 {s}missing"), empty());
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}missing"),
        bulks(&["x", "y", "z"])
    );
    // inf + -inf sums to 0; 0 × inf weighs 0.
    client.cmd("ZADD {s}pinf inf m");
    client.cmd("ZADD {s}ninf -inf m");
    assert_eq!(
        client.cmd("ZUNION 2 {s}pinf {s}ninf WITHSCORES"),
        bulks(&["m", "0"])
    );
    assert_eq!(
        client.cmd("ZUNION 1 {s}pinf WEIGHTS 0 WITHSCORES"),
        bulks(&["m", "0"])
    );
    assert_eq!(
        client.cmd("ZINTER 2 {s}pinf {s}ninf AGGREGATE MAX WITHSCORES"),
        bulks(&["m", "inf"])
    );
    // Errors: numkeys, then types, then options.
    assert_eq!(
        client.cmd("ZUNION 0 {s}a"),
        error("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        client.cmd("ZINTER -1 {s}a"),
        error("ERR at least 1 input key is needed for 'zinter' command")
    );
    assert_eq!(
        client.cmd("ZUNION x {s}a"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("ZUNION 3 {s}a {s}b"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b WEIGHTS 1"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b WEIGHTS 1 x"),
        error("ERR weight value is not a float")
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b AGGREGATE AVG"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZUNION 2 {s}a {s}b AGGREGATE"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZDIFF 2 {s}a {s}b WEIGHTS 1 1"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZDIFF 2 {s}a {s}b AGGREGATE SUM"),
        error("ERR syntax error")
    );
    client.cmd("SET {s}string value");
    assert_eq!(client.cmd("ZUNION 2 {s}a {s}string"), error(WRONG_TYPE));
    assert_eq!(
        client.cmd("ZUNION 1 {s}string WEIGHTS x"),
        error(WRONG_TYPE)
    );
    assert_eq!(client.cmd("ZINTER 2 {s}string {s}a"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZDIFF 2 {s}a {s}string"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZUNION 1"), arity("zunion"));
    assert_eq!(client.cmd("ZINTER 1"), arity("zinter"));
    assert_eq!(client.cmd("ZDIFF 1"), arity("zdiff"));
}

#[test]
fn store_forms_and_zintercard() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD {s}a 1 x 2 y 3 z");
    client.cmd("ZADD {s}b 10 y 20 z 30 w");
    assert_eq!(client.cmd("ZUNIONSTORE {s}dst 2 {s}a {s}b"), int(4));
    assert_eq!(
        client.cmd("ZRANGE {s}dst 0 -1 WITHSCORES"),
        bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        client.cmd("ZINTERSTORE {s}dst 2 {s}a {s}b WEIGHTS 0.5 0.5"),
        int(2)
    );
    assert_eq!(
        client.cmd("ZRANGE {s}dst 0 -1 WITHSCORES"),
        bulks(&["y", "6", "z", "11.5"])
    );
    assert_eq!(client.cmd("ZDIFFSTORE {s}dst 2 {s}b {s}a"), int(1));
    assert_eq!(
        client.cmd("ZRANGE {s}dst 0 -1 WITHSCORES"),
        bulks(&["w", "30"])
    );
    // The destination may be an input; an empty result deletes it.
    assert_eq!(client.cmd("ZUNIONSTORE {s}a 2 {s}a {s}a"), int(3));
    assert_eq!(
        client.cmd("ZRANGE {s}a 0 -1 WITHSCORES"),
        bulks(&["x", "2", "y", "4", "z", "6"])
    );
    assert_eq!(client.cmd("ZINTERSTORE {s}dst 2 {s}a {s}missing"), int(0));
    assert_eq!(client.cmd("EXISTS {s}dst"), int(0));
    client.cmd("SET {s}string value");
    assert_eq!(client.cmd("ZUNIONSTORE {s}string 1 {s}a"), int(3));
    assert_eq!(client.cmd("ZCARD {s}string"), int(3));
    assert_eq!(
        client.cmd("ZUNIONSTORE {s}dst 1 {s}a WITHSCORES"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZUNIONSTORE {s}dst 0 {s}a"),
        error("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(
        client.cmd("ZDIFFSTORE {s}dst 0 {s}a"),
        error("ERR at least 1 input key is needed for 'zdiffstore' command")
    );
    client.cmd("SET {s}string value");
    assert_eq!(
        client.cmd("ZINTERSTORE {s}dst 2 {s}a {s}string"),
        error(WRONG_TYPE)
    );
    assert_eq!(client.cmd("ZUNIONSTORE {s}dst 1"), arity("zunionstore"));
    assert_eq!(client.cmd("ZINTERSTORE {s}dst"), arity("zinterstore"));
    assert_eq!(client.cmd("ZDIFFSTORE {s}dst 1"), arity("zdiffstore"));

    client.cmd("ZADD {s}b 10 x");
    assert_eq!(client.cmd("ZINTERCARD 2 {s}a {s}b"), int(3));
    assert_eq!(client.cmd("ZINTERCARD 2 {s}a {s}b LIMIT 2"), int(2));
    assert_eq!(client.cmd("ZINTERCARD 2 {s}a {s}b LIMIT 0"), int(3));
    assert_eq!(client.cmd("ZINTERCARD 2 {s}a {s}missing"), int(0));
    assert_eq!(
        client.cmd("ZINTERCARD 2 {s}a {s}b LIMIT -1"),
        error("ERR LIMIT can't be negative")
    );
    assert_eq!(
        client.cmd("ZINTERCARD 2 {s}a {s}b LIMIT x"),
        error("ERR LIMIT can't be negative")
    );
    assert_eq!(
        client.cmd("ZINTERCARD 2 {s}a {s}b WITHSCORES"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZINTERCARD 2 {s}a {s}b WEIGHTS 1 2"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZINTERCARD 0 {s}a"),
        error("ERR at least 1 input key is needed for 'zintercard' command")
    );
    assert_eq!(client.cmd("ZINTERCARD 1 {s}string"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZINTERCARD 1"), arity("zintercard"));
}

#[test]
fn pops() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(client.cmd("ZPOPMIN z"), bulks(&["a", "1"]));
    assert_eq!(client.cmd("ZPOPMAX z"), bulks(&["d", "4"]));
    assert_eq!(client.cmd("ZPOPMIN z 0"), empty());
    assert_eq!(client.cmd("ZPOPMAX z 10"), bulks(&["c", "3", "b", "2"]));
    assert_eq!(client.cmd("EXISTS z"), int(0));
    assert_eq!(client.cmd("ZPOPMIN z"), empty());
    assert_eq!(client.cmd("ZPOPMIN z 3"), empty());
    assert_eq!(
        client.cmd("ZPOPMIN z -1"),
        error("ERR value is out of range, must be positive")
    );
    assert_eq!(
        client.cmd("ZPOPMIN z x"),
        error("ERR value is out of range, must be positive")
    );
    assert_eq!(client.cmd("ZPOPMIN z 1 2"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZPOPMIN"), arity("zpopmin"));
    assert_eq!(client.cmd("ZPOPMAX"), arity("zpopmax"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZPOPMIN string"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZPOPMAX string 0"), error(WRONG_TYPE));

    client.cmd("ZADD {m}b 1 a 2 b 3 c");
    assert_eq!(
        client.cmd("ZMPOP 2 {m}missing {m}b MIN"),
        array(vec![bulk("{m}b"), array(vec![bulks(&["a", "1"])])])
    );
    assert_eq!(
        client.cmd("ZMPOP 1 {m}b MAX COUNT 10"),
        array(vec![
            bulk("{m}b"),
            array(vec![bulks(&["c", "3"]), bulks(&["b", "2"])])
        ])
    );
    assert_eq!(client.cmd("EXISTS {m}b"), int(0));
    assert_eq!(client.cmd("ZMPOP 1 {m}b MIN"), Reply::NilArray);
    client.cmd("SET {m}string value");
    assert_eq!(client.cmd("ZMPOP 2 {m}string {m}b MIN"), error(WRONG_TYPE));
    for (command, reply) in [
        ("ZMPOP 0 {m}b MIN", "ERR numkeys should be greater than 0"),
        ("ZMPOP x {m}b MIN", "ERR numkeys should be greater than 0"),
        ("ZMPOP 1 {m}b FOO", "ERR syntax error"),
        ("ZMPOP 5 {m}b MIN", "ERR syntax error"),
        (
            "ZMPOP 1 {m}b MIN COUNT 0",
            "ERR count should be greater than 0",
        ),
        (
            "ZMPOP 1 {m}b MIN COUNT x",
            "ERR count should be greater than 0",
        ),
        ("ZMPOP 1 {m}b MIN COUNT 1 COUNT 1", "ERR syntax error"),
        ("ZMPOP 1 {m}b MIN COUNT", "ERR syntax error"),
    ] {
        assert_eq!(client.cmd(command), error(reply), "{command}");
    }
    assert_eq!(client.cmd("ZMPOP 1 {m}b"), arity("zmpop"));
}

#[test]
fn blocking_pops() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // Served at once when a key has members.
    client.cmd("ZADD {b}z 1 a 2 b");
    assert_eq!(
        client.cmd("BZPOPMIN {b}missing {b}z 0"),
        bulks(&["{b}z", "a", "1"])
    );
    assert_eq!(client.cmd("BZPOPMAX {b}z 0"), bulks(&["{b}z", "b", "2"]));
    assert_eq!(client.cmd("EXISTS {b}z"), int(0));
    // Timeouts reply with a null array.
    assert_eq!(client.cmd("BZPOPMIN {b}z 0.01"), Reply::NilArray);
    assert_eq!(client.cmd("BZMPOP 0.01 1 {b}z MIN"), Reply::NilArray);
    // Served by a later write (each waiter on its own key, so their order does not matter).
    let mut waiter = server.client();
    let mut multi_waiter = server.client();
    waiter.send(&[b"BZPOPMIN", b"{b}z1", b"{b}other", b"10"]);
    multi_waiter.send(&[
        b"BZMPOP",
        b"10",
        b"2",
        b"{b}other",
        b"{b}z2",
        b"MAX",
        b"COUNT",
        b"10",
    ]);
    let_other_connections_run(&mut client);
    assert_eq!(client.cmd("ZADD {b}z1 1 a 2 b 3 c"), int(3));
    assert_eq!(client.cmd("ZADD {b}z2 1 a 2 b 3 c"), int(3));
    assert_eq!(waiter.read_reply(), bulks(&["{b}z1", "a", "1"]));
    assert_eq!(
        multi_waiter.read_reply(),
        array(vec![
            bulk("{b}z2"),
            array(vec![
                bulks(&["c", "3"]),
                bulks(&["b", "2"]),
                bulks(&["a", "1"])
            ])
        ])
    );
    assert_eq!(client.cmd("ZRANGE {b}z1 0 -1"), bulks(&["b", "c"]));
    assert_eq!(client.cmd("EXISTS {b}z2"), int(0));
    // Errors.
    assert_eq!(
        client.cmd("BZPOPMIN {b}z x"),
        error("ERR timeout is not a float or out of range")
    );
    assert_eq!(
        client.cmd("BZPOPMIN {b}z -1"),
        error("ERR timeout is negative")
    );
    assert_eq!(
        client.cmd("BZMPOP 0 0 {b}z MIN"),
        error("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        client.cmd("BZMPOP x 1 {b}z MIN"),
        error("ERR timeout is not a float or out of range")
    );
    assert_eq!(
        client.cmd("BZMPOP 0 1 {b}z MIN COUNT 0"),
        error("ERR count should be greater than 0")
    );
    client.cmd("SET {b}string value");
    assert_eq!(client.cmd("BZPOPMIN {b}string 0"), error(WRONG_TYPE));
    assert_eq!(client.cmd("BZMPOP 0 1 {b}string MIN"), error(WRONG_TYPE));
    assert_eq!(client.cmd("BZPOPMIN {b}z"), arity("bzpopmin"));
    assert_eq!(client.cmd("BZPOPMAX {b}z"), arity("bzpopmax"));
    assert_eq!(client.cmd("BZMPOP 0 1"), arity("bzmpop"));
}

/// Gives the server a few round trips to read what other connections sent. Nothing depends on
/// it: a waiter whose command runs after the write is served at once, with the same reply.
fn let_other_connections_run(client: &mut RawClient) {
    for _ in 0..20 {
        assert_eq!(client.cmd("PING"), status("PONG"));
    }
}

#[test]
fn zrandmember() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("ZRANDMEMBER missing"), nil());
    assert_eq!(client.cmd("ZRANDMEMBER missing 3"), empty());
    client.cmd("ZADD z 1 a 2 b 3 c");
    let members: HashSet<Vec<u8>> = [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()].into();
    for _ in 0..20 {
        match client.cmd("ZRANDMEMBER z") {
            Reply::Bulk(member) => assert!(members.contains(&member)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(client.cmd("ZRANDMEMBER z 0"), empty());
    // A count covering the set returns it whole, from the highest score.
    assert_eq!(client.cmd("ZRANDMEMBER z 5"), bulks(&["c", "b", "a"]));
    assert_eq!(
        client.cmd("ZRANDMEMBER z 3 WITHSCORES"),
        bulks(&["c", "3", "b", "2", "a", "1"])
    );
    // Distinct members for a positive count, repetitions for a negative one.
    let picked = client.cmd("ZRANDMEMBER z 2").items();
    assert_eq!(picked.len(), 2);
    assert_ne!(picked[0], picked[1]);
    let repeated = client.cmd("ZRANDMEMBER z -10 WITHSCORES").items();
    assert_eq!(repeated.len(), 20);
    for chunk in repeated.chunks(2) {
        let member = chunk[0].text();
        let score = chunk[1].text();
        let expected = match member.as_str() {
            "a" => "1",
            "b" => "2",
            "c" => "3",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(score, expected);
    }
    // A big set.
    for number in 0..300 {
        client.cmd(&format!("ZADD big {number} m{number}"));
    }
    let picked = client.cmd("ZRANDMEMBER big 250").items();
    let distinct: HashSet<String> = picked.iter().map(Reply::text).collect();
    assert_eq!(distinct.len(), 250);
    let picked = client.cmd("ZRANDMEMBER big 10").items();
    let distinct: HashSet<String> = picked.iter().map(Reply::text).collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(client.cmd("ZRANDMEMBER big -500").items().len(), 500);
    assert_eq!(
        client.cmd("ZRANDMEMBER z x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("ZRANDMEMBER z 1 FOO"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("ZRANDMEMBER z 1 WITHSCORES FOO"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("ZRANDMEMBER z -9223372036854775808"),
        error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(
        client.cmd("ZRANDMEMBER z -9223372036854775807 WITHSCORES"),
        error("ERR value is out of range")
    );
    assert_eq!(
        client.cmd("ZRANDMEMBER z 9223372036854775807 WITHSCORES"),
        error("ERR value is out of range")
    );
    assert_eq!(client.cmd("ZRANDMEMBER"), arity("zrandmember"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZRANDMEMBER string"), error(WRONG_TYPE));
    assert_eq!(client.cmd("ZRANDMEMBER string 2"), error(WRONG_TYPE));
}

#[test]
fn zscan() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("ZSCAN missing 0"),
        array(vec![bulk("0"), empty()])
    );
    client.cmd("ZADD z 1 a 2.5 b 3 c 1.1 ab");
    // A listpack is returned whole, scores as stored.
    assert_eq!(
        client.cmd("ZSCAN z 0"),
        array(vec![
            bulk("0"),
            bulks(&["a", "1", "ab", "1.1", "b", "2.5", "c", "3"])
        ])
    );
    assert_eq!(
        client.cmd("ZSCAN z 0 MATCH a* COUNT 1"),
        array(vec![bulk("0"), bulks(&["a", "1", "ab", "1.1"])])
    );
    assert_eq!(client.cmd("ZSCAN z 0 COUNT 0"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("ZSCAN z 0 COUNT x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("ZSCAN z 0 TYPE zset"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZSCAN z 0 MATCH"), error("ERR syntax error"));
    assert_eq!(client.cmd("ZSCAN z x"), error("ERR invalid cursor"));
    assert_eq!(
        client.cmd("ZSCAN z 18446744073709551616"),
        error("ERR invalid cursor")
    );
    assert_eq!(
        client.call(&[b"ZSCAN", b"z", b" 0"]),
        error("ERR invalid cursor")
    );
    assert_eq!(client.cmd("ZSCAN z"), arity("zscan"));
    client.cmd("SET string value");
    assert_eq!(client.cmd("ZSCAN string 0"), error(WRONG_TYPE));
    // A big set is scanned with a cursor; every member comes back, scores printed as %.17g.
    for number in 0..500 {
        client.cmd(&format!("ZADD big {number}.1 m{number}"));
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    for round in 0.. {
        assert!(round < 10_000, "the scan did not finish");
        let reply = client.cmd(&format!("ZSCAN big {cursor} COUNT 20")).items();
        cursor = reply[0].text();
        for chunk in reply[1].items().chunks(2) {
            let member = chunk[0].text();
            let number: u32 = member[1..].parse().expect("a numbered member");
            let expected = store_17g(number as f64 + 0.1);
            assert_eq!(chunk[1].text(), expected);
            seen.insert(member);
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 500);
}

/// `%.17g` of a value, for the expected ZSCAN scores of a skiplist.
fn store_17g(value: f64) -> String {
    let text = format!("{value:.16e}");
    let (mantissa, exponent) = text.split_once('e').expect("exponent");
    let exponent: i32 = exponent.parse().expect("exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut fixed = if exponent < 0 {
        format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    } else {
        let integer_digits = exponent as usize + 1;
        format!(
            "{}.{}",
            &digits[..integer_digits],
            &digits[integer_digits..]
        )
    };
    while fixed.ends_with('0') {
        fixed.pop();
    }
    fixed.trim_end_matches('.').to_string()
}

#[test]
fn resp3_shapes() {
    let server = TestServer::start(&[]);
    let mut client = resp3(&server);
    assert_eq!(client.cmd("ZADD z 1 a 2.5 b inf c"), int(3));
    assert_eq!(client.cmd("ZADD z INCR 1 a"), double("2"));
    assert_eq!(client.cmd("ZADD z XX INCR 1 nope"), Reply::Null);
    assert_eq!(client.cmd("ZINCRBY z 1 a"), double("3"));
    assert_eq!(client.cmd("ZSCORE z c"), double("inf"));
    assert_eq!(client.cmd("ZSCORE z nope"), Reply::Null);
    assert_eq!(
        client.cmd("ZMSCORE z a nope"),
        array(vec![double("3"), Reply::Null])
    );
    assert_eq!(client.cmd("ZRANGE z 0 -1"), bulks(&["b", "a", "c"]));
    let pairs = array(vec![pair("b", "2.5"), pair("a", "3"), pair("c", "inf")]);
    assert_eq!(client.cmd("ZRANGE z 0 -1 WITHSCORES"), pairs);
    assert_eq!(client.cmd("ZRANGEBYSCORE z -inf +inf WITHSCORES"), pairs);
    assert_eq!(client.cmd("ZUNION 1 z WITHSCORES"), pairs);
    assert_eq!(client.cmd("ZINTER 1 z WITHSCORES"), pairs);
    assert_eq!(client.cmd("ZDIFF 1 z WITHSCORES"), pairs);
    assert_eq!(
        client.cmd("ZREVRANGE z 0 0 WITHSCORES"),
        array(vec![pair("c", "inf")])
    );
    assert_eq!(
        client.cmd("ZRANK z a WITHSCORE"),
        array(vec![int(1), double("3")])
    );
    assert_eq!(client.cmd("ZRANK z nope WITHSCORE"), Reply::Null);
    assert_eq!(client.cmd("ZRANK z nope"), Reply::Null);
    assert_eq!(
        client.cmd("ZRANDMEMBER z 5 WITHSCORES"),
        array(vec![pair("c", "inf"), pair("a", "3"), pair("b", "2.5")])
    );
    assert_eq!(client.cmd("ZRANDMEMBER missing"), Reply::Null);
    // ZPOPMIN: flat without a count, pairs with one.
    assert_eq!(
        client.cmd("ZPOPMIN z"),
        array(vec![bulk("b"), double("2.5")])
    );
    assert_eq!(client.cmd("ZPOPMIN z 1"), array(vec![pair("a", "3")]));
    assert_eq!(client.cmd("ZPOPMIN missing 1"), empty());
    client.cmd("ZADD z 1 a 2 b");
    assert_eq!(
        client.cmd("ZMPOP 1 z MIN"),
        array(vec![bulk("z"), array(vec![pair("a", "1")])])
    );
    assert_eq!(client.cmd("ZMPOP 1 missing MIN"), Reply::Null);
    assert_eq!(
        client.cmd("BZPOPMAX z 0"),
        array(vec![bulk("z"), bulk("c"), double("inf")])
    );
    assert_eq!(
        client.cmd("BZMPOP 0 1 z MAX COUNT 5"),
        array(vec![bulk("z"), array(vec![pair("b", "2")])])
    );
    assert_eq!(client.cmd("BZPOPMIN z 0.01"), Reply::Null);
    client.cmd("ZADD z 1 a");
    // ZSCAN keeps scores as strings.
    assert_eq!(
        client.cmd("ZSCAN z 0"),
        array(vec![bulk("0"), bulks(&["a", "1"])])
    );
}

#[test]
fn small_limits_convert_and_behave_the_same() {
    let server = TestServer::start(&[
        "--zset-max-listpack-entries",
        "4",
        "--zset-max-listpack-value",
        "8",
    ]);
    let mut client = server.client();
    for number in 0..10 {
        client.cmd(&format!("ZADD z {number} m{number}"));
    }
    client.cmd("ZADD z 5 a-long-member-name");
    assert_eq!(client.cmd("ZCARD z"), int(11));
    assert_eq!(
        client.cmd("ZRANGE z 4 6"),
        bulks(&["m4", "a-long-member-name", "m5"])
    );
    assert_eq!(client.cmd("ZRANK z m9"), int(10));
    assert_eq!(client.cmd("ZREM z m0 m1 m2 m3 m4 m5 m6"), int(7));
    assert_eq!(
        client.cmd("ZRANGE z 0 -1 WITHSCORES"),
        bulks(&["a-long-member-name", "5", "m7", "7", "m8", "8", "m9", "9"])
    );
    assert_eq!(client.cmd("CONFIG SET zset-max-listpack-entries 128"), ok());
    assert_eq!(client.cmd("ZUNIONSTORE dst 1 z"), int(4));
    assert_eq!(
        client.cmd("ZRANGE dst 0 -1"),
        bulks(&["a-long-member-name", "m7", "m8", "m9"])
    );
}

/// The delayed-queue pattern: producers schedule jobs with due times as scores; consumers poll
/// for a due job and claim it with ZREM. Every job is claimed exactly once, never early.
#[test]
fn delayed_queue_claims_every_job_once_and_never_early() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 8;
    const JOBS_PER_PRODUCER: usize = 300;
    const TOTAL: usize = PRODUCERS * JOBS_PER_PRODUCER;
    let server = TestServer::start(&[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let produced = AtomicUsize::new(0);
    let claimed_count = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let claims: Mutex<Vec<(String, u64, u64)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for producer in 0..PRODUCERS {
            let server = &server;
            let produced = &produced;
            scope.spawn(move || {
                let mut client = server.client();
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (producer as u64 + 1);
                for job in 0..JOBS_PER_PRODUCER {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let due = now_ms() + state % 200;
                    let member = format!("job:{producer}:{job}:{due}");
                    let reply = client.call(&[
                        b"ZADD",
                        b"queue",
                        due.to_string().as_bytes(),
                        member.as_bytes(),
                    ]);
                    assert_eq!(reply, int(1));
                    produced.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for _ in 0..CONSUMERS {
            let server = &server;
            let claimed_count = &claimed_count;
            let claims = &claims;
            let failed = &failed;
            scope.spawn(move || {
                let mut client = server.client();
                while claimed_count.load(Ordering::SeqCst) < TOTAL {
                    if Instant::now() > deadline || failed.load(Ordering::SeqCst) {
                        failed.store(true, Ordering::SeqCst);
                        return;
                    }
                    let polled_at = now_ms();
                    let reply = client.call(&[
                        b"ZRANGEBYSCORE",
                        b"queue",
                        b"-inf",
                        polled_at.to_string().as_bytes(),
                        b"LIMIT",
                        b"0",
                        b"1",
                    ]);
                    let items = reply.items();
                    let Some(job) = items.first() else {
                        // Nothing due yet: poll again shortly (the loop is bounded by the
                        // deadline).
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let member = job.text();
                    if client.call(&[b"ZREM", b"queue", member.as_bytes()]) == int(1) {
                        let claimed_at = now_ms();
                        claims
                            .lock()
                            .expect("claims")
                            .push((member, polled_at, claimed_at));
                        claimed_count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert!(
        !failed.load(Ordering::SeqCst),
        "the queue was not drained in time"
    );
    assert_eq!(produced.load(Ordering::SeqCst), TOTAL);
    let claims = claims.into_inner().expect("claims");
    assert_eq!(claims.len(), TOTAL);
    let distinct: HashSet<&str> = claims
        .iter()
        .map(|(member, _, _)| member.as_str())
        .collect();
    assert_eq!(distinct.len(), TOTAL, "a job was claimed twice");
    for (member, polled_at, claimed_at) in &claims {
        let due: u64 = member
            .rsplit(':')
            .next()
            .and_then(|due| due.parse().ok())
            .expect("a due time");
        assert!(
            due <= *polled_at,
            "{member} was handed out at {polled_at}, before it was due"
        );
        assert!(
            due <= *claimed_at,
            "{member} claimed at {claimed_at}, before it was due"
        );
    }
    let mut client = server.client();
    assert_eq!(client.cmd("EXISTS queue"), int(0));
}
