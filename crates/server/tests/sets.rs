//! The set family as clients see it: every command's replies and errors, encoding conversions
//! (observed through SSCAN, which returns an intset or listpack whole and scans a hashtable by
//! cursor), RESP3 shapes.

mod common;

use std::collections::BTreeSet;

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
    let mut texts: Vec<String> = items.iter().map(|item| item.to_string()).collect();
    texts.sort();
    texts
}

/// SADD with many members in one call.
fn sadd_many(client: &mut RawClient, key: &str, members: impl Iterator<Item = String>) -> Reply {
    let mut command: Vec<Vec<u8>> = vec![b"SADD".to_vec(), key.as_bytes().to_vec()];
    command.extend(members.map(String::into_bytes));
    let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
    client.call(&args)
}

/// Whether the set is compact (intset or listpack): SSCAN returns it whole with cursor 0.
fn is_compact(client: &mut RawClient, key: &str) -> bool {
    let reply = client.cmd(&format!("SSCAN {key} 0 COUNT 1"));
    let items = reply.items();
    let length = client.cmd(&format!("SCARD {key}")).integer() as usize;
    items[0].text() == "0" && items[1].items().len() == length
}

#[test]
fn sadd_srem_scard_membership() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SADD s a b c"), int(3));
    assert_eq!(client.cmd("SADD s a d a"), int(1));
    assert_eq!(client.cmd("SCARD s"), int(4));
    assert_eq!(client.cmd("SCARD nokey"), int(0));
    assert_eq!(client.cmd("SISMEMBER s a"), int(1));
    assert_eq!(client.cmd("SISMEMBER s z"), int(0));
    assert_eq!(client.cmd("SISMEMBER nokey a"), int(0));
    assert_eq!(
        client.cmd("SMISMEMBER s a z d"),
        array(vec![int(1), int(0), int(1)])
    );
    assert_eq!(
        client.cmd("SMISMEMBER nokey a b"),
        array(vec![int(0), int(0)])
    );
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS s")),
        strings(&["a", "b", "c", "d"])
    );
    assert_eq!(client.cmd("SMEMBERS nokey"), array(vec![]));
    assert_eq!(client.cmd("SREM s a z"), int(1));
    assert_eq!(client.cmd("SREM s a"), int(0));
    assert_eq!(client.cmd("SREM nokey a"), int(0));
    assert_eq!(client.cmd("SREM s b c d"), int(3));
    assert_eq!(client.cmd("EXISTS s"), int(0));
    // Integers: an intset answers in order; non-canonical forms are other members.
    assert_eq!(client.cmd("SADD n 3 -1 2 10"), int(4));
    assert_eq!(client.cmd("SMEMBERS n"), bulks(&["-1", "2", "3", "10"]));
    assert_eq!(client.cmd("SISMEMBER n 03"), int(0));
    assert_eq!(client.cmd("SADD n 03"), int(1));
    assert_eq!(client.cmd("SISMEMBER n 03"), int(1));
    assert_eq!(client.cmd("SISMEMBER n 3"), int(1));
    // Binary-safe members.
    assert_eq!(client.call(&[b"SADD", b"bin", b"", b"\x00\r\n"]), int(2));
    assert_eq!(client.call(&[b"SISMEMBER", b"bin", b""]), int(1));
}

#[test]
fn wrong_type_and_arity() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SET str x");
    client.cmd("SADD s a");
    for command in [
        "SADD str a",
        "SREM str a",
        "SCARD str",
        "SISMEMBER str a",
        "SMISMEMBER str a",
        "SMEMBERS str",
        "SRANDMEMBER str",
        "SRANDMEMBER str 3",
        "SPOP str",
        "SPOP str 2",
        "SMOVE str s a",
        "SMOVE s str a",
        "SINTER s str",
        "SINTER str nokey",
        "SINTERCARD 2 s str",
        "SINTERSTORE d s str",
        "SUNION s str",
        "SUNIONSTORE d s str",
        "SDIFF s str",
        "SDIFF nokey str",
        "SDIFFSTORE d s str",
        "SSCAN str 0",
    ] {
        assert_eq!(client.cmd(command), error(WRONG_TYPE), "{command}");
    }
    assert_eq!(client.cmd("GET str"), bulk("x"));
    assert_eq!(client.cmd("SMEMBERS s"), bulks(&["a"]));
    assert_eq!(client.cmd("EXISTS d"), int(0));
    for (command, name) in [
        ("SADD s", "sadd"),
        ("SREM s", "srem"),
        ("SCARD", "scard"),
        ("SCARD s t", "scard"),
        ("SISMEMBER s", "sismember"),
        ("SMISMEMBER s", "smismember"),
        ("SMEMBERS", "smembers"),
        ("SMEMBERS s t", "smembers"),
        ("SRANDMEMBER", "srandmember"),
        ("SPOP", "spop"),
        ("SMOVE s t", "smove"),
        ("SINTER", "sinter"),
        ("SINTERCARD 1", "sintercard"),
        ("SINTERSTORE d", "sinterstore"),
        ("SUNION", "sunion"),
        ("SUNIONSTORE d", "sunionstore"),
        ("SDIFF", "sdiff"),
        ("SDIFFSTORE d", "sdiffstore"),
        ("SSCAN s", "sscan"),
    ] {
        assert_eq!(client.cmd(command), arity(name), "{command}");
    }
    assert_eq!(client.cmd("SRANDMEMBER s 1 2"), error("ERR syntax error"));
    assert_eq!(client.cmd("SPOP s 1 2"), error("ERR syntax error"));
}

#[test]
fn srandmember_counts() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SRANDMEMBER nokey"), Reply::Nil);
    assert_eq!(client.cmd("SRANDMEMBER nokey 3"), array(vec![]));
    assert_eq!(client.cmd("SRANDMEMBER nokey -3"), array(vec![]));
    for members in ["1 2 3", "a b c"] {
        client.cmd("DEL s");
        client.cmd(&format!("SADD s {members}"));
        let all: Vec<String> = strings(&members.split(' ').collect::<Vec<_>>());
        let one = client.cmd("SRANDMEMBER s").text();
        assert!(all.contains(&one));
        assert_eq!(client.cmd("SRANDMEMBER s 0"), array(vec![]));
        assert_eq!(sorted_texts(&client.cmd("SRANDMEMBER s 10")), all);
        assert_eq!(sorted_texts(&client.cmd("SRANDMEMBER s 3")), all);
        let two = sorted_texts(&client.cmd("SRANDMEMBER s 2"));
        assert_eq!(two.iter().collect::<BTreeSet<_>>().len(), 2);
        let picks = sorted_texts(&client.cmd("SRANDMEMBER s -10"));
        assert_eq!(picks.len(), 10);
        assert!(picks.iter().all(|pick| all.contains(pick)));
        assert_eq!(client.cmd("SRANDMEMBER s 1").items().len(), 1);
        assert_eq!(client.cmd("SCARD s"), int(3));
    }
    assert_eq!(
        client.cmd("SRANDMEMBER s x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("SRANDMEMBER s -9223372036854775808"),
        error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    // A big set: unique picks are unique, every member is reachable.
    sadd_many(
        &mut client,
        "big",
        (0..1000).map(|index| format!("m{index}")),
    );
    let picks = sorted_texts(&client.cmd("SRANDMEMBER big 700"));
    assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 700);
    let picks = sorted_texts(&client.cmd("SRANDMEMBER big 10"));
    assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 10);
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.extend(sorted_texts(&client.cmd("SRANDMEMBER big -1000")));
    }
    assert!(seen.len() > 990, "{}", seen.len());
}

#[test]
fn spop_single_and_counted() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SPOP nokey"), Reply::Nil);
    assert_eq!(client.cmd("SPOP nokey 3"), array(vec![]));
    client.cmd("SADD s a b c");
    let popped = client.cmd("SPOP s").text();
    assert_eq!(client.cmd(&format!("SISMEMBER s {popped}")), int(0));
    assert_eq!(client.cmd("SCARD s"), int(2));
    assert_eq!(client.cmd("SPOP s 0"), array(vec![]));
    assert_eq!(
        client.cmd("SPOP s -1"),
        error("ERR value is out of range, must be positive")
    );
    assert_eq!(
        client.cmd("SPOP s x"),
        error("ERR value is out of range, must be positive")
    );
    let popped = client.cmd("SPOP s 1").items();
    assert_eq!(popped.len(), 1);
    assert_eq!(client.cmd("SCARD s"), int(1));
    // Popping everything (or more) deletes the key.
    let rest = client.cmd("SPOP s 5").items();
    assert_eq!(rest.len(), 1);
    assert_eq!(client.cmd("EXISTS s"), int(0));
    client.cmd("SADD s x");
    assert_eq!(client.cmd("SPOP s"), bulk("x"));
    assert_eq!(client.cmd("EXISTS s"), int(0));
    // Every strategy, every encoding: popped + kept = before, no duplicates.
    for (size, count) in [(10, 3), (10, 9), (300, 50), (300, 290), (2000, 1990)] {
        for prefix in ["", "m"] {
            client.cmd("DEL s");
            sadd_many(
                &mut client,
                "s",
                (0..size).map(|index| format!("{prefix}{index}")),
            );
            let popped = sorted_texts(&client.cmd(&format!("SPOP s {count}")));
            assert_eq!(popped.len(), count);
            assert_eq!(popped.iter().collect::<BTreeSet<_>>().len(), count);
            let kept = sorted_texts(&client.cmd("SMEMBERS s"));
            assert_eq!(kept.len(), size - count);
            let mut all: Vec<String> = popped.into_iter().chain(kept).collect();
            all.sort();
            let mut expected: Vec<String> =
                (0..size).map(|index| format!("{prefix}{index}")).collect();
            expected.sort();
            assert_eq!(all, expected);
        }
    }
}

#[test]
fn resp3_shapes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("HELLO 3");
    client.cmd("SADD s 1 2");
    client.cmd("SADD t 2 3");
    assert_eq!(
        client.cmd("SMEMBERS s"),
        Reply::Set(vec![bulk("1"), bulk("2")])
    );
    assert_eq!(client.cmd("SMEMBERS nokey"), Reply::Set(vec![]));
    assert_eq!(client.cmd("SINTER s t"), Reply::Set(vec![bulk("2")]));
    assert_eq!(client.cmd("SINTER s nokey"), Reply::Set(vec![]));
    assert_eq!(
        client.cmd("SUNION s t"),
        Reply::Set(vec![bulk("1"), bulk("2"), bulk("3")])
    );
    assert_eq!(client.cmd("SDIFF s t"), Reply::Set(vec![bulk("1")]));
    assert_eq!(client.cmd("SPOP nokey"), Reply::Null);
    assert_eq!(client.cmd("SPOP nokey 2"), Reply::Set(vec![]));
    assert_eq!(client.cmd("SPOP s 0"), Reply::Set(vec![]));
    assert!(matches!(client.cmd("SPOP s 1"), Reply::Set(items) if items.len() == 1));
    assert!(matches!(client.cmd("SRANDMEMBER t 2"), Reply::Array(items) if items.len() == 2));
    assert_eq!(client.cmd("SRANDMEMBER nokey"), Reply::Null);
    assert_eq!(client.cmd("SMISMEMBER t 2 9"), array(vec![int(1), int(0)]));
}

#[test]
fn smove_between_sets() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SADD src a b");
    client.cmd("SADD dst c");
    client.cmd("SET str x");
    assert_eq!(client.cmd("SMOVE src dst a"), int(1));
    assert_eq!(client.cmd("SMOVE src dst a"), int(0));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS dst")),
        strings(&["a", "c"])
    );
    // A missing source answers 0 before any type check of the destination.
    assert_eq!(client.cmd("SMOVE nokey str a"), int(0));
    assert_eq!(client.cmd("SMOVE str dst a"), error(WRONG_TYPE));
    assert_eq!(client.cmd("SMOVE src str b"), error(WRONG_TYPE));
    // Same key: a membership test.
    assert_eq!(client.cmd("SMOVE src src b"), int(1));
    assert_eq!(client.cmd("SMOVE src src z"), int(0));
    // The last member moves: the source goes, the destination is created.
    assert_eq!(client.cmd("SMOVE src fresh b"), int(1));
    assert_eq!(client.cmd("EXISTS src"), int(0));
    assert_eq!(client.cmd("SMEMBERS fresh"), bulks(&["b"]));
    // Moving a member the destination already has.
    client.cmd("SADD one x");
    client.cmd("SADD two x");
    assert_eq!(client.cmd("SMOVE one two x"), int(1));
    assert_eq!(client.cmd("EXISTS one"), int(0));
    assert_eq!(client.cmd("SMEMBERS two"), bulks(&["x"]));
    // Integer members move between intsets and listpacks.
    client.cmd("SADD ints 1 2 3");
    assert_eq!(client.cmd("SMOVE ints two 2"), int(1));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS two")),
        strings(&["2", "x"])
    );
    assert_eq!(client.cmd("SMEMBERS ints"), bulks(&["1", "3"]));
}

#[test]
fn intersections() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SADD a x y z 1");
    client.cmd("SADD b y z w 1");
    client.cmd("SADD c z 1");
    client.cmd("SET str v");
    assert_eq!(
        sorted_texts(&client.cmd("SINTER a b")),
        strings(&["1", "y", "z"])
    );
    assert_eq!(
        sorted_texts(&client.cmd("SINTER a b c")),
        strings(&["1", "z"])
    );
    assert_eq!(
        sorted_texts(&client.cmd("SINTER a a")),
        strings(&["1", "x", "y", "z"])
    );
    assert_eq!(client.cmd("SINTER a nokey"), array(vec![]));
    assert_eq!(client.cmd("SINTERCARD 2 a b"), int(3));
    assert_eq!(client.cmd("SINTERCARD 3 a b c"), int(2));
    assert_eq!(client.cmd("SINTERCARD 2 a b LIMIT 2"), int(2));
    assert_eq!(client.cmd("SINTERCARD 2 a b limit 0"), int(3));
    assert_eq!(client.cmd("SINTERCARD 2 a b LIMIT 10"), int(3));
    assert_eq!(client.cmd("SINTERCARD 2 a nokey"), int(0));
    assert_eq!(client.cmd("SINTERCARD 1 a"), int(4));
    assert_eq!(
        client.cmd("SINTERCARD 0 a"),
        error("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        client.cmd("SINTERCARD x a"),
        error("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        client.cmd("SINTERCARD 3 a b"),
        error("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        client.cmd("SINTERCARD 2 a b LIMIT -1"),
        error("ERR LIMIT can't be negative")
    );
    assert_eq!(
        client.cmd("SINTERCARD 2 a b LIMIT x"),
        error("ERR LIMIT can't be negative")
    );
    assert_eq!(
        client.cmd("SINTERCARD 2 a b LIMIT"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("SINTERCARD 2 a b FOO 1"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("SINTERCARD 1 str"), error(WRONG_TYPE));
    // STORE.
    assert_eq!(client.cmd("SINTERSTORE d a b"), int(3));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS d")),
        strings(&["1", "y", "z"])
    );
    assert_eq!(client.cmd("SINTERSTORE d a nokey"), int(0));
    assert_eq!(client.cmd("EXISTS d"), int(0));
    // The destination is replaced whatever it held, expiry included.
    assert_eq!(client.cmd("SINTERSTORE str a c"), int(2));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS str")),
        strings(&["1", "z"])
    );
    // A source may be the destination.
    assert_eq!(client.cmd("SINTERSTORE a a c"), int(2));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS a")),
        strings(&["1", "z"])
    );
    // Integers intersect into an intset (answers in order).
    sadd_many(&mut client, "i1", (0..100).map(|index| index.to_string()));
    sadd_many(
        &mut client,
        "i2",
        (25..150).map(|index| (index * 2).to_string()),
    );
    assert_eq!(client.cmd("SINTERSTORE i3 i2 i1"), int(25));
    let expected: Vec<String> = (50..100)
        .filter(|index| index % 2 == 0)
        .map(|index| index.to_string())
        .collect();
    let members: Vec<String> = client
        .cmd("SMEMBERS i3")
        .items()
        .iter()
        .map(Reply::text)
        .collect();
    assert_eq!(members, expected);
}

#[test]
fn unions_and_differences() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SADD a x y z 1");
    client.cmd("SADD b y z w");
    client.cmd("SADD c z 2");
    assert_eq!(
        sorted_texts(&client.cmd("SUNION a b c")),
        strings(&["1", "2", "w", "x", "y", "z"])
    );
    assert_eq!(
        sorted_texts(&client.cmd("SUNION nokey a")),
        strings(&["1", "x", "y", "z"])
    );
    assert_eq!(client.cmd("SUNION nokey"), array(vec![]));
    assert_eq!(sorted_texts(&client.cmd("SDIFF a b")), strings(&["1", "x"]));
    assert_eq!(
        sorted_texts(&client.cmd("SDIFF a b c")),
        strings(&["1", "x"])
    );
    assert_eq!(
        sorted_texts(&client.cmd("SDIFF a nokey c")),
        strings(&["1", "x", "y"])
    );
    assert_eq!(client.cmd("SDIFF a a"), array(vec![]));
    assert_eq!(client.cmd("SDIFF a b a"), array(vec![]));
    assert_eq!(client.cmd("SDIFF nokey a"), array(vec![]));
    // Integers union in order (the result starts as an intset).
    client.cmd("SADD n1 5 1");
    client.cmd("SADD n2 3 1");
    assert_eq!(client.cmd("SUNION n1 n2"), bulks(&["1", "3", "5"]));
    // STORE.
    assert_eq!(client.cmd("SUNIONSTORE u a b c"), int(6));
    assert_eq!(client.cmd("SCARD u"), int(6));
    assert_eq!(client.cmd("SDIFFSTORE d a b"), int(2));
    assert_eq!(
        sorted_texts(&client.cmd("SMEMBERS d")),
        strings(&["1", "x"])
    );
    assert_eq!(client.cmd("SDIFFSTORE d a a"), int(0));
    assert_eq!(client.cmd("EXISTS d"), int(0));
    assert_eq!(client.cmd("SUNIONSTORE u nokey"), int(0));
    assert_eq!(client.cmd("EXISTS u"), int(0));
    assert_eq!(client.cmd("SUNIONSTORE a a b"), int(5));
    // Big sets, both difference algorithms.
    sadd_many(
        &mut client,
        "big",
        (0..2000).map(|index| format!("m{index}")),
    );
    sadd_many(
        &mut client,
        "even",
        (0..2000).step_by(2).map(|index| format!("m{index}")),
    );
    assert_eq!(client.cmd("SDIFFSTORE odd big even"), int(1000));
    assert_eq!(client.cmd("SISMEMBER odd m1"), int(1));
    assert_eq!(client.cmd("SISMEMBER odd m2"), int(0));
    client.cmd("SADD tiny m1 m2 zz");
    assert_eq!(
        sorted_texts(&client.cmd("SDIFF tiny big even odd")),
        strings(&["zz"])
    );
    assert_eq!(client.cmd("SDIFFSTORE none even big"), int(0));
}

#[test]
fn sscan_options_and_cursors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("SSCAN nokey 0"),
        array(vec![bulk("0"), array(vec![])])
    );
    client.cmd("SADD s k1 k2 other");
    assert_eq!(
        client.cmd("SSCAN s 0 MATCH k*"),
        array(vec![bulk("0"), bulks(&["k1", "k2"])])
    );
    assert_eq!(client.cmd("SSCAN s x"), error("ERR invalid cursor"));
    assert_eq!(client.cmd("SSCAN s 0 COUNT 0"), error("ERR syntax error"));
    assert_eq!(client.cmd("SSCAN s 0 NOVALUES"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("SSCAN s 0 COUNT x"),
        error("ERR value is not an integer or out of range")
    );
    client.cmd("SADD n 3 1 2");
    assert_eq!(
        client.cmd("SSCAN n 0"),
        array(vec![bulk("0"), bulks(&["1", "2", "3"])])
    );
    // A hashtable is scanned by cursor; every member comes back.
    sadd_many(
        &mut client,
        "big",
        (0..1000).map(|index| format!("m{index}")),
    );
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    let mut calls = 0;
    loop {
        let reply = client.cmd(&format!("SSCAN big {cursor} COUNT 10"));
        calls += 1;
        let items = reply.items();
        cursor = items[0].text();
        seen.extend(items[1].items().iter().map(Reply::text));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert!(calls > 10, "{calls}");
}

#[test]
fn encodings_convert_where_redis_converts() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // 512 integers stay an intset (in order); the 513th converts.
    sadd_many(&mut client, "ints", (0..512).map(|index| index.to_string()));
    assert!(is_compact(&mut client, "ints"));
    client.cmd("SADD ints 512");
    assert!(!is_compact(&mut client, "ints"));
    // One SADD of more than 512 integers creates a hashtable directly.
    sadd_many(&mut client, "many", (0..513).map(|index| index.to_string()));
    assert!(!is_compact(&mut client, "many"));
    // 128 strings stay a listpack; the 129th converts.
    sadd_many(
        &mut client,
        "strs",
        (0..128).map(|index| format!("m{index}")),
    );
    assert!(is_compact(&mut client, "strs"));
    client.cmd("SADD strs one-more");
    assert!(!is_compact(&mut client, "strs"));
    // Never back, even when small again.
    for index in 0..120 {
        client.cmd(&format!("SREM strs m{index}"));
    }
    assert!(!is_compact(&mut client, "strs"));
    // A long member converts a listpack.
    sadd_many(
        &mut client,
        "long",
        (0..20).map(|index| format!("m{index}")),
    );
    assert!(is_compact(&mut client, "long"));
    client.cmd(&format!("SADD long {}", "x".repeat(65)));
    assert!(!is_compact(&mut client, "long"));
    // An intset meeting a string: a listpack when small, else a hashtable.
    sadd_many(&mut client, "mixed", (0..50).map(|index| index.to_string()));
    client.cmd("SADD mixed abc");
    assert!(is_compact(&mut client, "mixed"));
    sadd_many(
        &mut client,
        "mixed2",
        (0..200).map(|index| index.to_string()),
    );
    client.cmd("SADD mixed2 abc");
    assert!(!is_compact(&mut client, "mixed2"));
    // SPOP keeping few members of a big set of strings rebuilds a compact set (as Redis).
    sadd_many(
        &mut client,
        "pop",
        (0..1000).map(|index| format!("m{index}")),
    );
    assert!(!is_compact(&mut client, "pop"));
    assert_eq!(client.cmd("SPOP pop 950").items().len(), 950);
    assert!(is_compact(&mut client, "pop"));
    // The limits follow CONFIG SET.
    assert_eq!(client.cmd("CONFIG SET set-max-intset-entries 4"), ok());
    client.cmd("SADD small 1 2 3 4");
    assert!(is_compact(&mut client, "small"));
    sadd_many(&mut client, "small", (5..30).map(|index| index.to_string()));
    assert!(!is_compact(&mut client, "small"));
    assert_eq!(client.cmd("CONFIG SET set-max-listpack-entries 4"), ok());
    client.cmd("SADD few a b c d");
    assert!(is_compact(&mut client, "few"));
    sadd_many(&mut client, "few", (0..30).map(|index| format!("e{index}")));
    assert!(!is_compact(&mut client, "few"));
    assert_eq!(client.cmd("CONFIG SET set-max-listpack-entries 128"), ok());
    assert_eq!(client.cmd("CONFIG SET set-max-listpack-value 3"), ok());
    client.cmd("SADD short abc");
    assert!(is_compact(&mut client, "short"));
    client.cmd("SADD short abcd");
    sadd_many(
        &mut client,
        "short",
        (0..30).map(|index| format!("e{index}")),
    );
    assert!(!is_compact(&mut client, "short"));
}
