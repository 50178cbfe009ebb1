//! Keyspace notifications: the exact events a pattern subscriber (`__key*@*__:*`) receives for
//! sequences of commands of every family, with `notify-keyspace-events EnA` (key-event channels,
//! every class, `new` included). The expected sequences were recorded from Redis (7.0.15), where
//! its behaviour matches 7.2; Redis 7.2-only differences are tested separately.

mod common;

use common::*;

/// Runs `commands` (one per line) on a fresh database with `flags` and returns the events a
/// pattern subscriber saw, as `event key` (key-event channels) or `channel event` (key-space).
fn events(server: &TestServer, flags: &str, commands: &str) -> Vec<String> {
    let mut writer = server.client();
    let mut subscriber = server.client();
    assert_eq!(writer.cmd("FLUSHALL"), ok());
    assert_eq!(
        writer.call(&[
            b"CONFIG",
            b"SET",
            b"notify-keyspace-events",
            flags.as_bytes()
        ]),
        ok()
    );
    subscriber.cmd("PSUBSCRIBE __key*@*__:*");
    for line in commands
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        writer.cmd(line);
    }
    // A sentinel message the pattern also matches marks the end of the events.
    assert_eq!(writer.cmd("PUBLISH __keyevent@99__:end x"), int(1));
    let mut seen = Vec::new();
    loop {
        let message = subscriber.read_reply().items();
        let channel = message[2].text();
        let payload = message[3].text();
        if channel == "__keyevent@99__:end" {
            break;
        }
        match channel.strip_prefix("__keyevent@") {
            Some(rest) => {
                let event = rest.split_once("__:").expect("keyevent channel").1;
                seen.push(format!("{event} {payload}"));
            }
            None => seen.push(format!("{channel} {payload}")),
        }
    }
    assert_eq!(
        writer.call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
        ok()
    );
    // Leave the pattern now (a closed connection may be noticed after the next call's PUBLISH).
    let left = subscriber.cmd("PUNSUBSCRIBE").items();
    assert_eq!(left[0], bulk("punsubscribe"));
    seen
}

#[test]
fn strings_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        SET s v
        SET s w EX 100
        GETEX s PERSIST
        GETEX s PX 1000
        GETDEL s
        MSET a 1 b 2
        INCRBY a 3
        INCRBYFLOAT a 1.5
        APPEND c x
        SETRANGE c 3 y
        GETSET c z
        SETNX c q
        SETEX e 100 v
        PSETEX e 100 v
        DECR a2
        MSETNX m1 1 m2 2
    ";
    let expected = [
        "new s",
        "set s",
        "set s",
        "expire s",
        "persist s",
        "expire s",
        "del s",
        "new a",
        "set a",
        "new b",
        "set b",
        "incrby a",
        "incrbyfloat a",
        "new c",
        "append c",
        "setrange c",
        "set c",
        "new e",
        "set e",
        "expire e",
        "set e",
        "expire e",
        "new a2",
        "incrby a2",
        "new m1",
        "set m1",
        "new m2",
        "set m2",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn lists_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        LPUSH l a b c
        RPUSH l d
        LPUSHX l e
        RPUSHX nol e
        LINSERT l BEFORE a x
        LSET l 0 y
        LPOP l
        RPOP l 2
        LREM l 1 x
        LTRIM l 0 100
        LTRIM l 5 1
        RPUSH s 1 2
        LMOVE s d LEFT RIGHT
        RPOPLPUSH s d
        RPOPLPUSH d d
        LMPOP 2 no d LEFT COUNT 5
        RPUSH b 1
        BLPOP b 0
        RPUSH b 1 2
        BRPOPLPUSH b b2 0
        BLMOVE b b3 LEFT LEFT 0
    ";
    let expected = [
        "new l",
        "lpush l",
        "rpush l",
        "lpush l",
        "linsert l",
        "lset l",
        "lpop l",
        "rpop l",
        "lrem l",
        "ltrim l",
        "ltrim l",
        "del l",
        "new s",
        "rpush s",
        "new d",
        "rpush d",
        "lpop s",
        "lpush d",
        "rpop s",
        "del s",
        "lpush d",
        "rpop d",
        "lpop d",
        "del d",
        "new b",
        "rpush b",
        "lpop b",
        "del b",
        "new b",
        "rpush b",
        "new b2",
        "lpush b2",
        "rpop b",
        "new b3",
        "lpush b3",
        "lpop b",
        "del b",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn hashes_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        HSET h a 1 b 2
        HMSET h c 3
        HSETNX h a 5
        HSETNX h z 5
        HINCRBY h a 1
        HINCRBYFLOAT h a 1.5
        HDEL h nope
        HDEL h a b c
        HDEL h z
    ";
    let expected = [
        "new h",
        "hset h",
        "hset h",
        "hset h",
        "hincrby h",
        "hincrbyfloat h",
        "hdel h",
        "hdel h",
        "del h",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn sets_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        SADD s a b c
        SADD s a
        SREM s x
        SREM s a
        SPOP s
        SADD s x y z
        SPOP s 2
        SPOP s 10
        SADD a 1 2
        SADD b 2 3
        SMOVE a c 1
        SMOVE a c 2
        SINTERSTORE d a b
        SINTERSTORE d c b
        SUNIONSTORE u a b
        SDIFFSTORE u b b
        SDIFFSTORE u b b
        SPOP b 0
    ";
    let expected = [
        "new s",
        "sadd s",
        "srem s",
        "spop s",
        "sadd s",
        "spop s",
        "spop s",
        "del s",
        "new a",
        "sadd a",
        "new b",
        "sadd b",
        "srem a",
        "new c",
        "sadd c",
        "srem a",
        "del a",
        "sadd c",
        "new d",
        "sinterstore d",
        "new u",
        "sunionstore u",
        "del u",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn zsets_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        ZADD z 1 a 2 b
        ZADD z 1 a
        ZADD z INCR 5 a
        ZINCRBY z 1 b
        ZREM z x
        ZREM z a
        ZADD y 1 a 2 b 3 c 4 d
        ZREMRANGEBYSCORE y 1 1
        ZREMRANGEBYRANK y 0 0
        ZREMRANGEBYLEX y - +
        ZADD y 1 a 2 b 3 c
        ZPOPMIN y
        ZPOPMAX y 5
        ZADD p 1 a 2 b
        ZUNIONSTORE u 1 p
        ZINTERSTORE u 2 p nope
        ZDIFFSTORE u2 1 p
        ZRANGESTORE r p 0 -1
        ZMPOP 1 p MIN COUNT 1
        BZPOPMAX p 0
        ZADD q 1 a
        BZMPOP 0 1 q MAX
    ";
    let expected = [
        "new z",
        "zadd z",
        "zincr z",
        "zincr z",
        "zrem z",
        "new y",
        "zadd y",
        "zremrangebyscore y",
        "zremrangebyrank y",
        "zremrangebylex y",
        "del y",
        "new y",
        "zadd y",
        "zpopmin y",
        "zpopmax y",
        "del y",
        "new p",
        "zadd p",
        "new u",
        "zunionstore u",
        "del u",
        "new u2",
        "zdiffstore u2",
        "new r",
        "zrangestore r",
        "zpopmin p",
        "zpopmax p",
        "del p",
        "new q",
        "zadd q",
        "zpopmax q",
        "del q",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn keys_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        SET k v
        EXPIRE k 100
        PERSIST k
        RENAME k k2
        COPY k2 k3
        MOVE k3 1
        EXPIRE k2 -1
        SET a 1
        DEL a nope
        SET b 1
        UNLINK b
        SET c 1
        PEXPIREAT c 1
        RENAMENX c d
    ";
    let expected = [
        "new k",
        "set k",
        "expire k",
        "persist k",
        "new k2",
        "rename_from k",
        "rename_to k2",
        "new k3",
        "copy_to k3",
        "new k3",
        "move_from k3",
        "move_to k3",
        "del k2",
        "new a",
        "set a",
        "del a",
        "new b",
        "set b",
        "del b",
        "new c",
        "set c",
        "del c",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn streams_emit_redis_events_in_order() {
    let server = TestServer::start(&[]);
    let commands = "
        XADD s 1-1 a 1
        XADD s MAXLEN 1 2-1 a 2
        XTRIM s MAXLEN 0
        XADD s 3-1 a 1
        XDEL s 3-1
        XSETID s 5-0
        XGROUP CREATE s g $
        XGROUP CREATECONSUMER s g c
        XGROUP SETID s g 0
        XADD s 6-0 a 1
        XREADGROUP GROUP g d STREAMS s >
        XCLAIM s g e 0 6-0
        XAUTOCLAIM s g f 0 0
        XGROUP DELCONSUMER s g c
        XGROUP DESTROY s g
        XGROUP CREATE s2 g $ MKSTREAM
    ";
    let expected = [
        "new s",
        "xadd s",
        "xadd s",
        "xtrim s",
        "xtrim s",
        "xadd s",
        "xdel s",
        "xsetid s",
        "xgroup-create s",
        "xgroup-createconsumer s",
        "xgroup-setid s",
        "xadd s",
        "xgroup-createconsumer s",
        "xgroup-createconsumer s",
        "xgroup-createconsumer s",
        "xgroup-delconsumer s",
        "xgroup-destroy s",
        "new s2",
        "xgroup-create s2",
    ];
    assert_eq!(events(&server, "EnA", commands), expected);
}

#[test]
fn keyspace_channels_carry_the_event_and_classes_mask_events() {
    let server = TestServer::start(&[]);
    assert_eq!(
        events(&server, "KA", "SET foo bar\nLPUSH l a"),
        ["__keyspace@0__:foo set", "__keyspace@0__:l lpush"]
    );
    // Only list events, both channel kinds, in Redis's order (key-space first).
    assert_eq!(
        events(&server, "KEl", "SET foo bar\nLPUSH l a\nDEL l"),
        ["__keyspace@0__:l lpush", "lpush l"]
    );
    assert_eq!(
        events(&server, "Eg", "SET foo bar\nEXPIRE foo 100\nDEL foo"),
        ["expire foo", "del foo"]
    );
    // Nothing without K or E, whatever the classes.
    assert!(events(&server, "A", "SET foo bar").is_empty());
}

#[test]
fn writes_with_a_time_already_past_delete_as_redis_7_2() {
    let server = TestServer::start(&[]);
    // Redis 7.2 does not store a key whose expiry has passed: an existing key is deleted.
    assert_eq!(
        events(
            &server,
            "EA",
            "SET k v\nSET k w PXAT 1\nSET n v EXAT 1\nSET g v\nGETEX g PXAT 1"
        ),
        ["set k", "del k", "set g", "del g"]
    );
}

#[test]
fn expired_keys_are_announced_once() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut subscriber = server.client();
    assert_eq!(client.cmd("CONFIG SET notify-keyspace-events Ex"), ok());
    subscriber.cmd("PSUBSCRIBE *");
    assert_eq!(client.cmd("PSETEX foo 50 1"), ok());
    let message = subscriber.read_reply().items();
    assert_eq!(message[2].text(), "__keyevent@0__:expired");
    assert_eq!(message[3].text(), "foo");
    assert_eq!(client.cmd("EXISTS foo"), int(0));
}

#[test]
fn hash_field_expiry_events_follow_redis_7_4() {
    let server = TestServer::start(&[]);
    let commands = "
        HSET h a 1 b 2 c 3
        HEXPIRE h 100 FIELDS 2 a nope
        HEXPIRE h 100 NX FIELDS 1 a
        HPERSIST h FIELDS 1 a
        HPERSIST h FIELDS 1 a
        HPEXPIREAT h 1 FIELDS 1 b
        HPEXPIRE h 0 FIELDS 2 a c
    ";
    assert_eq!(
        events(&server, "EA", commands),
        [
            "hset h",
            "hexpire h",
            "hpersist h",
            "hdel h",
            "hdel h",
            "del h"
        ]
    );
}

#[test]
fn config_set_rejects_unknown_classes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("CONFIG SET notify-keyspace-events KQ"),
        error("ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    );
    assert_eq!(client.cmd("CONFIG SET notify-keyspace-events gKE"), ok());
    assert_eq!(
        client.cmd("CONFIG GET notify-keyspace-events"),
        bulks(&["notify-keyspace-events", "gKE"])
    );
    assert_eq!(client.cmd("CONFIG SET notify-keyspace-events EA"), ok());
    assert_eq!(
        client.cmd("CONFIG GET notify-keyspace-events"),
        bulks(&["notify-keyspace-events", "AE"])
    );
}

#[test]
fn keys_created_in_another_database_are_announced_there() {
    let server = TestServer::start(&[]);
    assert_eq!(
        events(&server, "KnA", "SET k v\nMOVE k 1\nSET c v\nCOPY c c DB 2"),
        [
            "__keyspace@0__:k new",
            "__keyspace@0__:k set",
            "__keyspace@1__:k new",
            "__keyspace@0__:k move_from",
            "__keyspace@1__:k move_to",
            "__keyspace@0__:c new",
            "__keyspace@0__:c set",
            "__keyspace@2__:c new",
            "__keyspace@2__:c copy_to",
        ]
    );
}

#[test]
fn a_subscriber_with_replies_off_still_gets_its_confirmation_and_events() {
    let server = TestServer::start(&[]);
    let mut writer = server.client();
    let mut subscriber = server.client();
    assert_eq!(writer.cmd("CONFIG SET notify-keyspace-events KA"), ok());
    subscriber.send(&[b"CLIENT", b"REPLY", b"OFF"]);
    assert_eq!(
        subscriber.cmd("PSUBSCRIBE *"),
        array(vec![bulk("psubscribe"), bulk("*"), int(1)])
    );
    assert_eq!(writer.cmd("SET foo bar"), ok());
    assert_eq!(
        subscriber.read_reply(),
        bulks(&["pmessage", "*", "__keyspace@0__:foo", "set"])
    );
}

#[test]
fn messages_published_to_self_inside_exec_come_after_its_reply() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert!(matches!(client.cmd("HELLO 3"), Reply::Map(_)));
    assert_eq!(
        client.cmd("SUBSCRIBE foo"),
        Reply::Push(vec![bulk("subscribe"), bulk("foo"), int(1)])
    );
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING abc"), status("QUEUED"));
    assert_eq!(client.cmd("PUBLISH foo bar"), status("QUEUED"));
    assert_eq!(client.cmd("PUBLISH foo vaz"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![bulk("abc"), int(1), int(1)]));
    assert_eq!(
        client.read_reply(),
        Reply::Push(vec![bulk("message"), bulk("foo"), bulk("bar")])
    );
    assert_eq!(
        client.read_reply(),
        Reply::Push(vec![bulk("message"), bulk("foo"), bulk("vaz")])
    );
}
