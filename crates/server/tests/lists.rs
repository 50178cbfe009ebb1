//! The list commands as clients see them: exact replies for happy paths, arity, wrong types,
//! out-of-range arguments, negative indexes, counts, empty-list deletion, RESP2/RESP3 nulls;
//! and, in process, the deterministic forms they propagate.

mod common;

use common::*;

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn arity(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

#[test]
fn push_and_length() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("LPUSH l a b c"), int(3));
    assert_eq!(client.cmd("RPUSH l d e"), int(5));
    assert_eq!(
        client.cmd("LRANGE l 0 -1"),
        bulks(&["c", "b", "a", "d", "e"])
    );
    assert_eq!(client.cmd("LLEN l"), int(5));
    assert_eq!(client.cmd("LLEN missing"), int(0));
    assert_eq!(client.cmd("LPUSHX missing a"), int(0));
    assert_eq!(client.cmd("RPUSHX missing a"), int(0));
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    assert_eq!(client.cmd("LPUSHX l x y"), int(7));
    assert_eq!(client.cmd("RPUSHX l z"), int(8));
    assert_eq!(
        client.cmd("LRANGE l 0 -1"),
        bulks(&["y", "x", "c", "b", "a", "d", "e", "z"])
    );
    // Binary values and integers come back byte for byte.
    let binary: &[u8] = b"a\x00b\r\n";
    assert_eq!(
        client.call(&[b"RPUSH", b"bin", binary, b"-0", b"007", b"-12"]),
        int(4)
    );
    assert_eq!(
        client.cmd("LRANGE bin 0 -1"),
        array(vec![
            Reply::Bulk(binary.to_vec()),
            bulk("-0"),
            bulk("007"),
            bulk("-12")
        ])
    );
    for command in ["lpush", "rpush", "lpushx", "rpushx"] {
        assert_eq!(client.cmd(&format!("{command} l")), arity(command));
        assert_eq!(client.cmd(command), arity(command));
    }
    assert_eq!(client.cmd("LLEN"), arity("llen"));
    assert_eq!(client.cmd("LLEN a b"), arity("llen"));
}

#[test]
fn wrong_types_both_ways() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET s v"), ok());
    assert_eq!(client.cmd("RPUSH l a"), int(1));
    for command in [
        "LPUSH s a",
        "RPUSH s a",
        "LPUSHX s a",
        "RPUSHX s a",
        "LINSERT s BEFORE a b",
        "LPOP s",
        "RPOP s",
        "LPOP s 0",
        "RPOP s 2",
        "LRANGE s 0 -1",
        "LINDEX s 0",
        "LINDEX s notanumber",
        "LLEN s",
        "LSET s 0 x",
        "LSET s notanumber x",
        "LREM s 0 a",
        "LTRIM s 0 1",
        "LPOS s a",
        "LPOS s a COUNT 0",
        "LMOVE s l LEFT LEFT",
        "LMOVE l s LEFT LEFT",
        "RPOPLPUSH s l",
        "RPOPLPUSH l s",
        "LMPOP 1 s LEFT",
        "LMPOP 2 missing s RIGHT COUNT 3",
    ] {
        assert_eq!(client.cmd(command), error(WRONG_TYPE), "{command}");
    }
    // Nothing changed.
    assert_eq!(client.cmd("GET s"), bulk("v"));
    assert_eq!(client.cmd("LRANGE l 0 -1"), bulks(&["a"]));
    // String commands on a list.
    assert_eq!(client.cmd("GET l"), error(WRONG_TYPE));
    // A missing source wins over a wrong-type destination.
    assert_eq!(client.cmd("LMOVE missing s LEFT LEFT"), Reply::Nil);
    assert_eq!(client.cmd("RPOPLPUSH missing s"), Reply::Nil);
    // The first list found wins over a later wrong type.
    assert_eq!(
        client.cmd("LMPOP 2 l s LEFT"),
        array(vec![bulk("l"), bulks(&["a"])])
    );
}

#[test]
fn pops_with_and_without_count() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l a b c d e f"), int(6));
    assert_eq!(client.cmd("LPOP l"), bulk("a"));
    assert_eq!(client.cmd("RPOP l"), bulk("f"));
    assert_eq!(client.cmd("LPOP l 2"), bulks(&["b", "c"]));
    assert_eq!(client.cmd("RPOP l 1"), bulks(&["e"]));
    assert_eq!(client.cmd("LPOP l 0"), bulks(&[]));
    assert_eq!(client.cmd("RPOP l 0"), bulks(&[]));
    assert_eq!(client.cmd("RPOP l 9223372036854775807"), bulks(&["d"]));
    // The emptied list is gone.
    assert_eq!(client.cmd("EXISTS l"), int(0));
    assert_eq!(client.cmd("LPOP l"), Reply::Nil);
    assert_eq!(client.cmd("RPOP l"), Reply::Nil);
    assert_eq!(client.cmd("LPOP l 2"), Reply::NilArray);
    assert_eq!(client.cmd("RPOP l 0"), Reply::NilArray);
    assert_eq!(client.cmd("RPUSH l 1 2 3"), int(3));
    assert_eq!(client.cmd("RPOP l 5"), bulks(&["3", "2", "1"]));
    assert_eq!(client.cmd("EXISTS l"), int(0));
    assert_eq!(client.cmd("RPUSH l x"), int(1));
    for command in [
        "LPOP l -1",
        "LPOP l abc",
        "RPOP l 1.5",
        "RPOP l -9223372036854775808",
    ] {
        assert_eq!(
            client.cmd(command),
            error("ERR value is out of range, must be positive"),
            "{command}"
        );
    }
    assert_eq!(client.cmd("LPOP l 1 2"), arity("lpop"));
    assert_eq!(client.cmd("RPOP l 1 2"), arity("rpop"));
    assert_eq!(client.cmd("LPOP"), arity("lpop"));
    // RESP3 nulls: one null for both forms.
    let reply = client.cmd("HELLO 3");
    assert!(matches!(reply, Reply::Map(_)), "{reply:?}");
    assert_eq!(client.cmd("LPOP missing"), Reply::Null);
    assert_eq!(client.cmd("LPOP missing 3"), Reply::Null);
    assert_eq!(client.cmd("RPOP missing 0"), Reply::Null);
    assert_eq!(client.cmd("LPOP l 0"), Reply::Array(vec![]));
    assert_eq!(client.cmd("LMPOP 1 missing LEFT"), Reply::Null);
    assert_eq!(client.cmd("LMOVE missing l LEFT LEFT"), Reply::Null);
    assert_eq!(client.cmd("LINDEX l 10"), Reply::Null);
    assert_eq!(client.cmd("LPOS l zz"), Reply::Null);
}

#[test]
fn ranges_and_indexes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l 0 1 2 3 4 5"), int(6));
    assert_eq!(
        client.cmd("LRANGE l 0 -1"),
        bulks(&["0", "1", "2", "3", "4", "5"])
    );
    assert_eq!(client.cmd("LRANGE l 1 2"), bulks(&["1", "2"]));
    assert_eq!(client.cmd("LRANGE l -2 -1"), bulks(&["4", "5"]));
    assert_eq!(client.cmd("LRANGE l -100 1"), bulks(&["0", "1"]));
    assert_eq!(client.cmd("LRANGE l 4 100"), bulks(&["4", "5"]));
    assert_eq!(client.cmd("LRANGE l 3 2"), bulks(&[]));
    assert_eq!(client.cmd("LRANGE l 6 10"), bulks(&[]));
    assert_eq!(client.cmd("LRANGE l 0 -7"), bulks(&[]));
    assert_eq!(
        client.cmd("LRANGE l -9223372036854775808 9223372036854775807"),
        bulks(&["0", "1", "2", "3", "4", "5"])
    );
    assert_eq!(client.cmd("LRANGE missing 0 -1"), bulks(&[]));
    assert_eq!(
        client.cmd("LRANGE missing a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("LRANGE l 0 9223372036854775808"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("LRANGE l 0"), arity("lrange"));

    assert_eq!(client.cmd("LINDEX l 0"), bulk("0"));
    assert_eq!(client.cmd("LINDEX l 5"), bulk("5"));
    assert_eq!(client.cmd("LINDEX l -1"), bulk("5"));
    assert_eq!(client.cmd("LINDEX l -6"), bulk("0"));
    assert_eq!(client.cmd("LINDEX l 6"), Reply::Nil);
    assert_eq!(client.cmd("LINDEX l -7"), Reply::Nil);
    assert_eq!(client.cmd("LINDEX missing 0"), Reply::Nil);
    // The key is looked up before the index is read.
    assert_eq!(client.cmd("LINDEX missing abc"), Reply::Nil);
    assert_eq!(
        client.cmd("LINDEX l abc"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("LINDEX l"), arity("lindex"));
}

#[test]
fn set_insert_remove_trim() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l a b c"), int(3));
    assert_eq!(client.cmd("LSET l 0 x"), ok());
    assert_eq!(client.cmd("LSET l -1 z"), ok());
    assert_eq!(client.cmd("LRANGE l 0 -1"), bulks(&["x", "b", "z"]));
    assert_eq!(client.cmd("LSET l 3 y"), error("ERR index out of range"));
    assert_eq!(client.cmd("LSET l -4 y"), error("ERR index out of range"));
    assert_eq!(client.cmd("LSET missing 0 y"), error("ERR no such key"));
    assert_eq!(client.cmd("LSET missing abc y"), error("ERR no such key"));
    assert_eq!(
        client.cmd("LSET l abc y"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("LSET l 0"), arity("lset"));

    assert_eq!(client.cmd("LINSERT l BEFORE b 1"), int(4));
    assert_eq!(client.cmd("LINSERT l after b 2"), int(5));
    assert_eq!(client.cmd("LINSERT l AFTER z end"), int(6));
    assert_eq!(client.cmd("LINSERT l before x start"), int(7));
    assert_eq!(
        client.cmd("LRANGE l 0 -1"),
        bulks(&["start", "x", "1", "b", "2", "z", "end"])
    );
    assert_eq!(client.cmd("LINSERT l BEFORE nothere v"), int(-1));
    assert_eq!(client.cmd("LINSERT missing BEFORE a v"), int(0));
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    assert_eq!(
        client.cmd("LINSERT l MIDDLE b v"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("LINSERT missing MIDDLE b v"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("LINSERT l BEFORE b"), arity("linsert"));
    // Integers match their text.
    assert_eq!(client.cmd("LINSERT l AFTER 1 one"), int(8));
    assert_eq!(client.cmd("LINDEX l 3"), bulk("one"));

    assert_eq!(client.cmd("DEL l"), int(1));
    assert_eq!(client.cmd("RPUSH l a b a c a b a"), int(7));
    assert_eq!(client.cmd("LREM l 2 a"), int(2));
    assert_eq!(
        client.cmd("LRANGE l 0 -1"),
        bulks(&["b", "c", "a", "b", "a"])
    );
    assert_eq!(client.cmd("LREM l -1 b"), int(1));
    assert_eq!(client.cmd("LRANGE l 0 -1"), bulks(&["b", "c", "a", "a"]));
    assert_eq!(client.cmd("LREM l 0 a"), int(2));
    assert_eq!(client.cmd("LREM l 0 zz"), int(0));
    assert_eq!(client.cmd("LREM missing 0 a"), int(0));
    assert_eq!(client.cmd("LREM l 100 b"), int(1));
    assert_eq!(client.cmd("LREM l -100 c"), int(1));
    assert_eq!(client.cmd("EXISTS l"), int(0));
    assert_eq!(
        client.cmd("LREM l abc a"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("LREM l -9223372036854775808 a"),
        error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    assert_eq!(client.cmd("LREM l 0"), arity("lrem"));
    // Integer-encoded values are removed by their text.
    assert_eq!(client.cmd("RPUSH n 1 01 1 -1 1"), int(5));
    assert_eq!(client.cmd("LREM n 0 1"), int(3));
    assert_eq!(client.cmd("LRANGE n 0 -1"), bulks(&["01", "-1"]));

    assert_eq!(client.cmd("RPUSH t 1 2 3 4 5"), int(5));
    assert_eq!(client.cmd("LTRIM t 1 -2"), ok());
    assert_eq!(client.cmd("LRANGE t 0 -1"), bulks(&["2", "3", "4"]));
    assert_eq!(client.cmd("LTRIM t -100 100"), ok());
    assert_eq!(client.cmd("LRANGE t 0 -1"), bulks(&["2", "3", "4"]));
    assert_eq!(client.cmd("LTRIM t 2 1"), ok());
    assert_eq!(client.cmd("EXISTS t"), int(0));
    assert_eq!(client.cmd("LTRIM missing 0 1"), ok());
    assert_eq!(
        client.cmd("LTRIM missing a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("LTRIM t 0"), arity("ltrim"));
}

#[test]
fn lpos_options() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l a b c 1 2 3 c c"), int(8));
    assert_eq!(client.cmd("LPOS l a"), int(0));
    assert_eq!(client.cmd("LPOS l c"), int(2));
    assert_eq!(client.cmd("LPOS l 3"), int(5));
    assert_eq!(client.cmd("LPOS l c RANK 1"), int(2));
    assert_eq!(client.cmd("LPOS l c RANK 2"), int(6));
    assert_eq!(client.cmd("LPOS l c RANK 4"), Reply::Nil);
    assert_eq!(client.cmd("LPOS l c RANK -1"), int(7));
    assert_eq!(client.cmd("LPOS l c RANK -2"), int(6));
    assert_eq!(
        client.cmd("LPOS l c COUNT 0"),
        array(vec![int(2), int(6), int(7)])
    );
    assert_eq!(client.cmd("LPOS l c COUNT 2"), array(vec![int(2), int(6)]));
    assert_eq!(
        client.cmd("LPOS l c COUNT 2 RANK -1"),
        array(vec![int(7), int(6)])
    );
    assert_eq!(client.cmd("LPOS l c COUNT 1 RANK 2"), array(vec![int(6)]));
    assert_eq!(client.cmd("LPOS l c COUNT 0 RANK 4"), array(vec![]));
    assert_eq!(client.cmd("LPOS l c MAXLEN 1"), Reply::Nil);
    assert_eq!(client.cmd("LPOS l c MAXLEN 3"), int(2));
    assert_eq!(
        client.cmd("LPOS l c COUNT 0 MAXLEN 7"),
        array(vec![int(2), int(6)])
    );
    assert_eq!(
        client.cmd("LPOS l c RANK -1 MAXLEN 1 COUNT 0"),
        array(vec![int(7)])
    );
    assert_eq!(client.cmd("LPOS l zz"), Reply::Nil);
    assert_eq!(client.cmd("LPOS l zz COUNT 0"), array(vec![]));
    assert_eq!(client.cmd("LPOS missing a"), Reply::Nil);
    assert_eq!(client.cmd("LPOS missing a COUNT 5"), array(vec![]));
    assert_eq!(
        client.cmd("LPOS l c RANK 0"),
        error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
    );
    assert_eq!(
        client.cmd("LPOS l c RANK -9223372036854775808"),
        error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    assert_eq!(
        client.cmd("LPOS l c RANK x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("LPOS l c COUNT -1"),
        error("ERR COUNT can't be negative")
    );
    assert_eq!(
        client.cmd("LPOS l c COUNT x"),
        error("ERR COUNT can't be negative")
    );
    assert_eq!(
        client.cmd("LPOS l c MAXLEN -1"),
        error("ERR MAXLEN can't be negative")
    );
    assert_eq!(client.cmd("LPOS l c MAXLEN"), error("ERR syntax error"));
    assert_eq!(client.cmd("LPOS l c FOO 1"), error("ERR syntax error"));
    // Options are checked before the key.
    assert_eq!(
        client.cmd("LPOS missing c RANK 0"),
        client.cmd("LPOS l c RANK 0")
    );
    assert_eq!(client.cmd("LPOS l"), arity("lpos"));
}

#[test]
fn moves_between_lists() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH src a b c"), int(3));
    assert_eq!(client.cmd("LMOVE src dst LEFT RIGHT"), bulk("a"));
    assert_eq!(client.cmd("LMOVE src dst right left"), bulk("c"));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["c", "a"]));
    assert_eq!(client.cmd("RPOPLPUSH src dst"), bulk("b"));
    assert_eq!(client.cmd("EXISTS src"), int(0));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["b", "c", "a"]));
    assert_eq!(client.cmd("RPOPLPUSH src dst"), Reply::Nil);
    assert_eq!(client.cmd("LMOVE src dst LEFT LEFT"), Reply::Nil);
    // Rotation within one list.
    assert_eq!(client.cmd("LMOVE dst dst LEFT RIGHT"), bulk("b"));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["c", "a", "b"]));
    assert_eq!(client.cmd("RPOPLPUSH dst dst"), bulk("b"));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["b", "c", "a"]));
    assert_eq!(client.cmd("RPUSH one x"), int(1));
    assert_eq!(client.cmd("LMOVE one one RIGHT LEFT"), bulk("x"));
    assert_eq!(client.cmd("LRANGE one 0 -1"), bulks(&["x"]));
    // Keys in different hash slots and shards.
    assert_eq!(client.cmd("RPUSH {a}1 1 2"), int(2));
    assert_eq!(client.cmd("LMOVE {a}1 {b}2 RIGHT RIGHT"), bulk("2"));
    assert_eq!(client.cmd("LMOVE {a}1 {b}2 RIGHT RIGHT"), bulk("1"));
    assert_eq!(client.cmd("EXISTS {a}1"), int(0));
    assert_eq!(client.cmd("LRANGE {b}2 0 -1"), bulks(&["2", "1"]));
    assert_eq!(client.cmd("LMOVE dst x UP LEFT"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("LMOVE dst x LEFT DOWN"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("LMOVE missing x LEFT DOWN"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("LMOVE a b LEFT"), arity("lmove"));
    assert_eq!(client.cmd("RPOPLPUSH a"), arity("rpoplpush"));
    assert_eq!(client.cmd("RPOPLPUSH a b c"), arity("rpoplpush"));
}

#[test]
fn multi_pop() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l2 a b c d"), int(4));
    assert_eq!(
        client.cmd("LMPOP 2 l1 l2 LEFT"),
        array(vec![bulk("l2"), bulks(&["a"])])
    );
    assert_eq!(
        client.cmd("LMPOP 2 l1 l2 right COUNT 2"),
        array(vec![bulk("l2"), bulks(&["d", "c"])])
    );
    assert_eq!(
        client.cmd("LMPOP 1 l2 LEFT COUNT 10"),
        array(vec![bulk("l2"), bulks(&["b"])])
    );
    assert_eq!(client.cmd("EXISTS l2"), int(0));
    assert_eq!(client.cmd("LMPOP 2 l1 l2 LEFT"), Reply::NilArray);
    assert_eq!(client.cmd("RPUSH l1 x"), int(1));
    assert_eq!(
        client.cmd("LMPOP 1 l1 LEFT COUNT 9223372036854775807"),
        array(vec![bulk("l1"), bulks(&["x"])])
    );
    for (command, reply) in [
        ("LMPOP 0 l LEFT", "ERR numkeys should be greater than 0"),
        ("LMPOP -1 l LEFT", "ERR numkeys should be greater than 0"),
        ("LMPOP abc l LEFT", "ERR numkeys should be greater than 0"),
        (
            "LMPOP 1 l LEFT COUNT 0",
            "ERR count should be greater than 0",
        ),
        (
            "LMPOP 1 l LEFT COUNT -1",
            "ERR count should be greater than 0",
        ),
        (
            "LMPOP 1 l LEFT COUNT abc",
            "ERR count should be greater than 0",
        ),
        ("LMPOP 1 l LEFT COUNT 1 COUNT 1", "ERR syntax error"),
        ("LMPOP 1 l LEFT COUNT", "ERR syntax error"),
        ("LMPOP 1 l LEFT FOO 1", "ERR syntax error"),
        ("LMPOP 1 l MIDDLE", "ERR syntax error"),
        ("LMPOP 2 l LEFT", "ERR syntax error"),
        ("LMPOP 3 a b LEFT", "ERR syntax error"),
        ("LMPOP 9223372036854775807 l LEFT", "ERR syntax error"),
    ] {
        assert_eq!(client.cmd(command), error(reply), "{command}");
    }
    assert_eq!(client.cmd("LMPOP 1 l"), arity("lmpop"));
}

#[test]
fn big_lists_under_every_encoding_setting() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for (fill, depth) in [
        ("-2", "0"),
        ("1", "1"),
        ("3", "2"),
        ("-1", "1"),
        ("128", "0"),
    ] {
        assert_eq!(
            client.call(&[
                b"CONFIG",
                b"SET",
                b"list-max-listpack-size",
                fill.as_bytes()
            ]),
            ok()
        );
        assert_eq!(
            client.call(&[b"CONFIG", b"SET", b"list-compress-depth", depth.as_bytes()]),
            ok()
        );
        assert_eq!(client.cmd("DEL big"), int(0));
        let mut expected: Vec<String> = Vec::new();
        for index in 0..600 {
            let value = if index % 7 == 0 {
                index.to_string()
            } else {
                format!("element-{index}-{}", "x".repeat(index % 50))
            };
            assert_eq!(
                client.call(&[b"RPUSH", b"big", value.as_bytes()]),
                int(index as i64 + 1)
            );
            expected.push(value);
        }
        let large = "L".repeat(10_000);
        assert_eq!(
            client.call(&[
                b"LINSERT",
                b"big",
                b"AFTER",
                b"element-300-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                large.as_bytes()
            ]),
            int(-1)
        );
        let pivot = expected[301].clone();
        assert_eq!(
            client.call(&[
                b"LINSERT",
                b"big",
                b"BEFORE",
                pivot.as_bytes(),
                large.as_bytes()
            ]),
            int(601)
        );
        expected.insert(301, large.clone());
        assert_eq!(client.cmd("LSET big 450 replaced"), ok());
        expected[450] = "replaced".to_string();
        assert_eq!(client.cmd("LINDEX big 301").text(), large);
        assert_eq!(client.cmd("LINDEX big -151"), bulk(&expected[450]));
        let all: Vec<Reply> = expected.iter().map(|value| bulk(value)).collect();
        assert_eq!(client.cmd("LRANGE big 0 -1"), array(all.clone()));
        assert_eq!(
            client.cmd("LRANGE big 295 305"),
            array(all[295..=305].to_vec())
        );
        assert_eq!(client.cmd("LPOS big replaced"), int(450));
        assert_eq!(client.cmd("LREM big 0 replaced"), int(1));
        expected.remove(450);
        assert_eq!(client.cmd("LTRIM big 100 -100"), ok());
        let kept: Vec<Reply> = expected[100..expected.len() - 99]
            .iter()
            .map(|value| bulk(value))
            .collect();
        assert_eq!(client.cmd("LRANGE big 0 -1"), array(kept.clone()));
        assert_eq!(client.cmd("LPOP big 50"), array(kept[..50].to_vec()));
        let mut reversed = kept[50..].to_vec();
        reversed.reverse();
        assert_eq!(client.cmd("RPOP big 1000"), array(reversed));
        assert_eq!(client.cmd("EXISTS big"), int(0));
    }
}

/// The deterministic forms written to the propagation stream, observed in process.
mod propagation {
    use std::sync::Arc;

    use cinnabar::client::{Client, ClientShared};
    use cinnabar::command::CommandTable;
    use cinnabar::config::Config;
    use cinnabar::connection::execute;
    use cinnabar::propagation::RecordingSink;
    use cinnabar::server::Server;
    use parking_lot::Mutex;

    struct Harness {
        server: Server,
        client: Client,
        stream: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    }

    impl Harness {
        fn new() -> Self {
            let mut commands = CommandTable::from_specs();
            cinnabar::families::register_all(&mut commands);
            commands.retain_implemented();
            let server = Server::new(Config::default(), commands, 1);
            let address = "127.0.0.1:1".parse().unwrap();
            let shared = Arc::new(ClientShared::new(1, address, address, -1, 0));
            let client = Client::new(shared, true, server.acl.default_user());
            let stream = Arc::new(Mutex::new(Vec::new()));
            server.propagation.attach(Box::new(RecordingSink {
                buffer: stream.clone(),
                last_database: Some(0),
                bytes_max: usize::MAX,
                bytes: 0,
            }));
            Harness {
                server,
                client,
                stream,
            }
        }

        /// Runs a command; returns its raw reply.
        fn run(&mut self, line: &str) -> String {
            let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
            let mut output = Vec::new();
            execute(&self.server, &mut self.client, &args, &mut output);
            String::from_utf8_lossy(&output).into_owned()
        }

        /// What was propagated since the last call, one line per command.
        fn propagated(&mut self) -> Vec<String> {
            std::mem::take(&mut *self.stream.lock())
                .into_iter()
                .map(|args| {
                    args.iter()
                        .map(|arg| String::from_utf8_lossy(arg).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        }
    }

    #[test]
    fn writes_propagate_in_deterministic_form() {
        let mut harness = Harness::new();
        let cases: &[(&str, &[&str])] = &[
            ("RPUSH l a b c d e f", &["RPUSH l a b c d e f"]),
            ("LPUSH l z", &["LPUSH l z"]),
            ("LPUSHX missing a", &[]),
            ("RPUSHX l g", &["RPUSHX l g"]),
            ("LINSERT l BEFORE a y", &["LINSERT l BEFORE a y"]),
            ("LINSERT l BEFORE nothere y", &[]),
            ("LSET l 0 x", &["LSET l 0 x"]),
            ("LSET l 100 x", &[]),
            ("LREM l 1 nothere", &[]),
            ("LREM l 1 y", &["LREM l 1 y"]),
            ("LTRIM l 0 -1", &[]),
            ("LTRIM l 0 -2", &["LTRIM l 0 -2"]),
            ("LPOP l", &["LPOP l"]),
            ("LPOP l 0", &[]),
            ("RPOP l 2", &["RPOP l 2"]),
            ("LPOP missing", &[]),
            ("LMOVE l other LEFT RIGHT", &["LMOVE l other LEFT RIGHT"]),
            ("LMOVE missing other LEFT RIGHT", &[]),
            ("RPOPLPUSH l other", &["RPOPLPUSH l other"]),
            // l holds b c, other d a.
            ("LMPOP 2 missing l RIGHT COUNT 10", &["RPOP l 2"]),
            ("LMPOP 1 other LEFT", &["LPOP other 1"]),
            ("LMPOP 1 other LEFT COUNT 5", &["LPOP other 1"]),
            ("LMPOP 1 other LEFT", &[]),
            ("LRANGE l 0 -1", &[]),
        ];
        for (command, expected) in cases {
            harness.run(command);
            assert_eq!(harness.propagated(), *expected, "{command}");
        }
    }

    #[test]
    fn replies_in_process() {
        let mut harness = Harness::new();
        assert_eq!(harness.run("RPUSH l a b"), ":2\r\n");
        assert_eq!(harness.run("LPOP l 5"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(harness.run("LPOP l 5"), "*-1\r\n");
        assert_eq!(harness.run("LPOP l"), "$-1\r\n");
    }
}

#[test]
fn debug_object_shows_a_quicklist_shape() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG SET list-max-listpack-size -1"), ok());
    assert_eq!(client.cmd("CONFIG SET list-compress-depth 12"), ok());
    let mut command: Vec<Vec<u8>> = vec![b"LPUSH".to_vec(), b"l".to_vec()];
    command.extend((0..6000).map(|_| b"1".to_vec()));
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args), int(6000));
    let line = client.cmd("DEBUG OBJECT l");
    let Reply::Status(line) = line else {
        panic!("DEBUG OBJECT replied {line:?}");
    };
    assert!(line.contains("encoding:quicklist"), "{line}");
    assert!(
        line.contains(" ql_listpack_max:-1 ql_compressed:1 "),
        "{line}"
    );
    client.cmd("RPUSH small a");
    let Reply::Status(line) = client.cmd("DEBUG OBJECT small") else {
        panic!("no status");
    };
    assert!(!line.contains("ql_"), "{line}");
}
