//! Streams: XADD, XRANGE, XREAD, consumer groups, XINFO, blocking reads, and a work queue with
//! failing consumers.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn entry(id: &str, fields: &[&str]) -> Reply {
    array(vec![bulk(id), bulks(fields)])
}

fn arity(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

#[test]
fn xadd_ids_and_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("XADD s 1-1 a 1"), bulk("1-1"));
    assert_eq!(
        client.cmd("XADD s 1-1 a 1"),
        error("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(
        client.cmd("XADD s 0-0 a 1"),
        error("ERR The ID specified in XADD must be greater than 0-0")
    );
    assert_eq!(client.cmd("XADD s 1-* b 2"), bulk("1-2"));
    assert_eq!(client.cmd("XADD s 2 c 3 d 4"), bulk("2-0"));
    assert_eq!(
        client.cmd("XADD s 1-* b 2"),
        error("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(client.cmd("XADD s abc a 1"), error(INVALID_ID));
    assert_eq!(client.cmd("XADD s 1-2-3 a 1"), error(INVALID_ID));
    assert_eq!(client.cmd("XADD s 5-*"), arity("xadd"));
    assert_eq!(client.cmd("XADD s 5-* a"), arity("xadd"));
    assert_eq!(client.cmd("XADD s 5-* a 1 b"), arity("xadd"));
    assert_eq!(client.cmd("XADD s"), arity("xadd"));
    assert_eq!(client.cmd("XADD nokey NOMKSTREAM * a 1"), Reply::Nil);
    assert_eq!(client.cmd("EXISTS nokey"), int(0));
    assert_eq!(
        client.cmd("XADD s MAXLEN -1 * a 1"),
        error("ERR The MAXLEN argument must be >= 0.")
    );
    assert_eq!(
        client.cmd("XADD s MAXLEN abc * a 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("XADD s LIMIT 10 * a 1"),
        error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(
        client.cmd("XADD s MAXLEN 10 LIMIT 10 * a 1"),
        error("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(client.cmd("XADD s MINID zz * a 1"), error(INVALID_ID));
    // Generated IDs grow even when several land in the same millisecond.
    let first = client.cmd("XADD t * a 1").text();
    let second = client.cmd("XADD t * a 1").text();
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    assert!(parse(&second) > parse(&first));
    // A stream whose last ID is in the future keeps generating after it.
    assert_eq!(
        client.cmd("XADD f 99999999999999-5 a 1"),
        bulk("99999999999999-5")
    );
    assert_eq!(client.cmd("XADD f * a 1"), bulk("99999999999999-6"));
    assert_eq!(
        client.cmd("XADD m 18446744073709551615-18446744073709551615 a 1"),
        bulk("18446744073709551615-18446744073709551615")
    );
    assert_eq!(
        client.cmd("XADD m * a 1"),
        error("ERR The stream has exhausted the last possible ID, unable to add more items")
    );
    assert_eq!(client.cmd("XLEN s"), int(3));
    assert_eq!(client.cmd("XLEN nokey"), int(0));
    assert_eq!(client.cmd("SET str x"), ok());
    assert_eq!(client.cmd("XADD str * a 1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XLEN str"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XLEN"), arity("xlen"));
}

#[test]
fn xadd_trims() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for ms in 1..=10 {
        client.cmd(&format!("XADD s {ms}-0 f v"));
    }
    assert_eq!(client.cmd("XADD s MAXLEN 3 11-0 f v"), bulk("11-0"));
    assert_eq!(client.cmd("XLEN s"), int(3));
    assert_eq!(client.cmd("XADD s MINID = 10 12-0 f v"), bulk("12-0"));
    assert_eq!(
        client.cmd("XRANGE s - +"),
        array(vec![
            entry("10-0", &["f", "v"]),
            entry("11-0", &["f", "v"]),
            entry("12-0", &["f", "v"])
        ])
    );
    // `~` only drops whole nodes (100 entries by default).
    assert_eq!(client.cmd("XADD s MAXLEN ~ 1 13-0 f v"), bulk("13-0"));
    assert_eq!(client.cmd("XLEN s"), int(4));
    assert_eq!(client.cmd("XTRIM s MAXLEN 1"), int(3));
    assert_eq!(client.cmd("XTRIM s MAXLEN 1"), int(0));
    assert_eq!(client.cmd("XTRIM nokey MAXLEN 1"), int(0));
    assert_eq!(
        client.cmd("XTRIM s LIMIT 5"),
        error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(
        client.cmd("XTRIM s MAXLEN = 0 LIMIT 5"),
        error("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(client.cmd("XTRIM s FOO 1"), error("ERR syntax error"));
    assert_eq!(client.cmd("XTRIM s"), arity("xtrim"));
    // Nodes of 2 entries: approximate trimming drops whole nodes, up to LIMIT entries.
    assert_eq!(client.cmd("CONFIG SET stream-node-max-entries 2"), ok());
    for ms in 1..=10 {
        client.cmd(&format!("XADD n {ms}-0 f v"));
    }
    assert_eq!(client.cmd("XTRIM n MAXLEN ~ 5"), int(4));
    assert_eq!(client.cmd("XTRIM n MAXLEN ~ 0 LIMIT 3"), int(2));
    assert_eq!(client.cmd("XTRIM n MINID 9"), int(2));
    assert_eq!(client.cmd("XLEN n"), int(2));
    assert_eq!(client.cmd("SET str x"), ok());
    assert_eq!(client.cmd("XTRIM str MAXLEN 1"), error(WRONG_TYPE));
}

#[test]
fn xrange_and_xrevrange() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("XADD s 1-1 a 1");
    client.cmd("XADD s 1-2 b 2");
    client.cmd("XADD s 2-0 c 3 d 4");
    assert_eq!(
        client.cmd("XRANGE s - +"),
        array(vec![
            entry("1-1", &["a", "1"]),
            entry("1-2", &["b", "2"]),
            entry("2-0", &["c", "3", "d", "4"])
        ])
    );
    assert_eq!(
        client.cmd("XRANGE s - + COUNT 1"),
        array(vec![entry("1-1", &["a", "1"])])
    );
    assert_eq!(client.cmd("XRANGE s - + COUNT 0"), Reply::NilArray);
    assert_eq!(client.cmd("XRANGE s - + COUNT -1"), Reply::NilArray);
    assert_eq!(
        client.cmd("XRANGE s (1-1 +"),
        array(vec![
            entry("1-2", &["b", "2"]),
            entry("2-0", &["c", "3", "d", "4"])
        ])
    );
    assert_eq!(
        client.cmd("XRANGE s - (2-0"),
        array(vec![entry("1-1", &["a", "1"]), entry("1-2", &["b", "2"])])
    );
    // A start without sequence is ms-0, an end ms-max.
    assert_eq!(
        client.cmd("XRANGE s 1 1"),
        array(vec![entry("1-1", &["a", "1"]), entry("1-2", &["b", "2"])])
    );
    assert_eq!(
        client.cmd("XRANGE s (18446744073709551615-18446744073709551615 +"),
        error("ERR invalid start ID for the interval")
    );
    assert_eq!(
        client.cmd("XRANGE s - (0-0"),
        error("ERR invalid end ID for the interval")
    );
    assert_eq!(client.cmd("XRANGE s (- +"), error(INVALID_ID));
    assert_eq!(client.cmd("XRANGE s x +"), error(INVALID_ID));
    assert_eq!(client.cmd("XRANGE s - + FOO"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("XRANGE s - + COUNT x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("XRANGE s 3 1"), array(vec![]));
    assert_eq!(client.cmd("XRANGE nokey - +"), array(vec![]));
    assert_eq!(
        client.cmd("XREVRANGE s + - COUNT 2"),
        array(vec![
            entry("2-0", &["c", "3", "d", "4"]),
            entry("1-2", &["b", "2"])
        ])
    );
    assert_eq!(
        client.cmd("XREVRANGE s (2-0 -"),
        array(vec![entry("1-2", &["b", "2"]), entry("1-1", &["a", "1"])])
    );
    assert_eq!(client.cmd("XRANGE s -"), arity("xrange"));
    assert_eq!(client.cmd("XREVRANGE s +"), arity("xrevrange"));
    client.cmd("SET str x");
    assert_eq!(client.cmd("XRANGE str - +"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XREVRANGE str + -"), error(WRONG_TYPE));
}

#[test]
fn xrange_across_many_nodes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for ms in 1..=1000 {
        client.send(&[
            b"XADD",
            b"big",
            format!("{ms}-0").as_bytes(),
            b"f",
            format!("v{ms}").as_bytes(),
        ]);
    }
    for _ in 1..=1000 {
        client.read_reply();
    }
    let all = client.cmd("XRANGE big - +").items();
    assert_eq!(all.len(), 1000);
    assert_eq!(all[999], entry("1000-0", &["f", "v1000"]));
    assert_eq!(
        client.cmd("XREVRANGE big 500 (497"),
        array(vec![
            entry("500-0", &["f", "v500"]),
            entry("499-0", &["f", "v499"]),
            entry("498-0", &["f", "v498"])
        ])
    );
    assert_eq!(client.cmd("XDEL big 1 500 1000 1000"), int(3));
    assert_eq!(client.cmd("XLEN big"), int(997));
    assert_eq!(
        client.cmd("XRANGE big 499 501"),
        array(vec![
            entry("499-0", &["f", "v499"]),
            entry("501-0", &["f", "v501"])
        ])
    );
}

#[test]
fn xdel_xsetid_and_xinfo_stream() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("XADD s 1-1 a 1");
    client.cmd("XADD s 1-2 b 2");
    client.cmd("XADD s 2-0 c 3");
    assert_eq!(client.cmd("XDEL s 1-2 9-9"), int(1));
    assert_eq!(client.cmd("XDEL s bad"), error(INVALID_ID));
    assert_eq!(client.cmd("XDEL nokey 1-1"), int(0));
    assert_eq!(client.cmd("XDEL s"), arity("xdel"));
    assert_eq!(
        client.cmd("XINFO STREAM s"),
        array(vec![
            bulk("length"),
            int(2),
            bulk("radix-tree-keys"),
            int(1),
            bulk("radix-tree-nodes"),
            int(2),
            bulk("last-generated-id"),
            bulk("2-0"),
            bulk("max-deleted-entry-id"),
            bulk("1-2"),
            bulk("entries-added"),
            int(3),
            bulk("recorded-first-entry-id"),
            bulk("1-1"),
            bulk("groups"),
            int(0),
            bulk("first-entry"),
            entry("1-1", &["a", "1"]),
            bulk("last-entry"),
            entry("2-0", &["c", "3"]),
        ])
    );
    assert_eq!(
        client.cmd("XSETID s 1-0"),
        error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id")
    );
    assert_eq!(
        client.cmd("XSETID s 1-5"),
        error("ERR The ID specified in XSETID is smaller than the target stream top item")
    );
    assert_eq!(
        client.cmd("XSETID s 99-0 ENTRIESADDED 1"),
        error("ERR The entries_added specified in XSETID is smaller than the target stream length")
    );
    assert_eq!(
        client.cmd("XSETID s 99-0 ENTRIESADDED -1"),
        error("ERR entries_added must be positive")
    );
    assert_eq!(
        client.cmd("XSETID s 99-0 MAXDELETEDID 100-0"),
        error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
    );
    assert_eq!(client.cmd("XSETID s 99-0 FOO 1"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("XSETID s 99-0 ENTRIESADDED 10 MAXDELETEDID 5-0"),
        ok()
    );
    assert_eq!(client.cmd("XSETID nokey 1-0"), error("ERR no such key"));
    assert_eq!(client.cmd("XADD s * a 1").text().split('-').count(), 2);
    let info = client.cmd("XINFO STREAM s").items();
    assert_eq!(info[11], int(11));
    assert_eq!(info[9], bulk("5-0"));
    assert_eq!(client.cmd("XINFO STREAM nokey"), error("ERR no such key"));
    assert_eq!(
        client.cmd("XINFO STREAM s FOO"),
        error("ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.")
    );
    let full = client.cmd("XINFO STREAM s FULL COUNT 1").items();
    assert_eq!(full[14], bulk("entries"));
    assert_eq!(full[15], array(vec![entry("1-1", &["a", "1"])]));
    assert_eq!(full[16], bulk("groups"));
    assert_eq!(full[17], array(vec![]));
    client.cmd("SET str x");
    assert_eq!(client.cmd("XDEL str 1-1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XSETID str 1-1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XINFO STREAM str"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XINFO HELP").items().len(), 9);
    assert_eq!(client.cmd("XGROUP HELP").items().len(), 17);
}

#[test]
fn xread_forms_and_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("XADD s 1-0 a 1");
    client.cmd("XADD s 2-0 b 2");
    client.cmd("XADD t 1-0 c 3");
    assert_eq!(
        client.cmd("XREAD STREAMS s t 1-0 0"),
        array(vec![
            array(vec![bulk("s"), array(vec![entry("2-0", &["b", "2"])])]),
            array(vec![bulk("t"), array(vec![entry("1-0", &["c", "3"])])]),
        ])
    );
    assert_eq!(
        client.cmd("XREAD COUNT 1 STREAMS s nokey 0 0"),
        array(vec![array(vec![
            bulk("s"),
            array(vec![entry("1-0", &["a", "1"])])
        ])])
    );
    assert_eq!(client.cmd("XREAD STREAMS s $"), Reply::NilArray);
    assert_eq!(client.cmd("XREAD STREAMS s 2-0"), Reply::NilArray);
    assert_eq!(
        client.cmd("XREAD STREAMS s 0 1"),
        error("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.")
    );
    assert_eq!(client.cmd("XREAD STREAMS s >"), error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
    assert_eq!(
        client.cmd("XREAD GROUP g c STREAMS s 0"),
        error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
    );
    assert_eq!(
        client.cmd("XREAD NOACK STREAMS s 0"),
        error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
    );
    assert_eq!(client.cmd("XREAD STREAMS s bad"), error(INVALID_ID));
    assert_eq!(client.cmd("XREAD COUNT 1 s 0"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("XREAD BLOCK abc STREAMS s 0"),
        error("ERR timeout is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("XREAD BLOCK -1 STREAMS s 0"),
        error("ERR timeout is negative")
    );
    assert_eq!(client.cmd("XREAD STREAMS s"), arity("xread"));
    client.cmd("SET str x");
    assert_eq!(client.cmd("XREAD STREAMS s str 0 0"), error(WRONG_TYPE));
    // RESP3: a map of key to entries.
    assert!(matches!(client.cmd("HELLO 3"), Reply::Map(_)));
    assert_eq!(
        client.cmd("XREAD STREAMS s 1"),
        Reply::Map(vec![(bulk("s"), array(vec![entry("2-0", &["b", "2"])]))])
    );
    assert_eq!(client.cmd("XREAD STREAMS s $"), Reply::Null);
    let info = client.cmd("XINFO STREAM s");
    let Reply::Map(pairs) = info else {
        panic!("XINFO STREAM replies with a map in RESP3: {info:?}");
    };
    assert_eq!(pairs[0], (bulk("length"), int(2)));
}

#[test]
fn blocking_reads() {
    let server = TestServer::start(&[]);
    let mut reader = server.client();
    let mut writer = server.client();
    // Times out with a null array.
    assert_eq!(
        reader.cmd("XREAD BLOCK 50 STREAMS nokey 0"),
        Reply::NilArray
    );
    // Served by a later XADD (an explicit ID: correct whichever runs first).
    reader.send(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"b", b"0-0"]);
    assert_eq!(writer.cmd("XADD b 5-0 x y"), bulk("5-0"));
    assert_eq!(
        reader.read_reply(),
        array(vec![array(vec![
            bulk("b"),
            array(vec![entry("5-0", &["x", "y"])])
        ])])
    );
    // A group reader blocked on `>` gets the next entry and owns it.
    assert_eq!(writer.cmd("XGROUP CREATE b g $"), ok());
    reader.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"b",
        b">",
    ]);
    assert_eq!(writer.cmd("XADD b 6-0 x y"), bulk("6-0"));
    assert_eq!(
        reader.read_reply(),
        array(vec![array(vec![
            bulk("b"),
            array(vec![entry("6-0", &["x", "y"])])
        ])])
    );
    assert_eq!(writer.cmd("XPENDING b g - + 10").items().len(), 1);
    // The group disappears under a blocked reader.
    reader.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"b",
        b">",
    ]);
    assert_eq!(writer.cmd("XGROUP DESTROY b g"), int(1));
    let Reply::Error(message) = reader.read_reply() else {
        panic!("expected NOGROUP");
    };
    assert!(message.starts_with("NOGROUP "), "{message}");
    // The key turns into another type under a blocked reader.
    assert_eq!(writer.cmd("XGROUP CREATE b g $"), ok());
    reader.send(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"b",
        b">",
    ]);
    // Wait until the reader is blocked: its consumer exists once XREADGROUP ran.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while writer.cmd("XINFO CONSUMERS b g").items().is_empty() {
        assert!(std::time::Instant::now() < deadline, "reader never ran");
        std::thread::yield_now();
    }
    assert_eq!(writer.cmd("SET b x"), ok());
    // As Redis 7.2 re-runs the command: WRONGTYPE.
    assert_eq!(reader.read_reply(), error(WRONG_TYPE));
    // Inside MULTI a blocking read replies as on timeout.
    assert_eq!(reader.cmd("MULTI"), ok());
    assert_eq!(
        reader.cmd("XREAD BLOCK 0 STREAMS empty $"),
        status("QUEUED")
    );
    assert_eq!(reader.cmd("EXEC"), array(vec![Reply::NilArray]));
}

#[test]
fn consumer_group_management() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let needs_key = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
    assert_eq!(client.cmd("XGROUP CREATE s g 0"), error(needs_key));
    assert_eq!(client.cmd("XGROUP CREATE s g 0 MKSTREAM"), ok());
    assert_eq!(
        client.cmd("XGROUP CREATE s g 0"),
        error("BUSYGROUP Consumer Group name already exists")
    );
    assert_eq!(client.cmd("XGROUP CREATE s g2 $ ENTRIESREAD 5"), ok());
    assert_eq!(
        client.cmd("XGROUP CREATE s g3 $ ENTRIESREAD -2"),
        error("ERR value for ENTRIESREAD must be positive or -1")
    );
    assert_eq!(
        client.cmd("XGROUP CREATE s g3 $ FOO"),
        error("ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.")
    );
    assert_eq!(client.cmd("XGROUP CREATE s g3 bad"), error(INVALID_ID));
    assert_eq!(
        client.cmd("XGROUP SETID s nog 0"),
        error("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    assert_eq!(client.cmd("XGROUP SETID nokey g 0"), error(needs_key));
    assert_eq!(
        client.cmd("XGROUP CREATECONSUMER s nog c"),
        error("NOGROUP No such consumer group 'nog' for key name 's'")
    );
    assert_eq!(client.cmd("XGROUP DESTROY s nog"), int(0));
    assert_eq!(client.cmd("XGROUP DESTROY nokey g"), error(needs_key));
    assert_eq!(client.cmd("XGROUP CREATECONSUMER s g alice"), int(1));
    assert_eq!(client.cmd("XGROUP CREATECONSUMER s g alice"), int(0));
    assert_eq!(client.cmd("XGROUP DELCONSUMER s g bob"), int(0));
    assert_eq!(client.cmd("XGROUP DELCONSUMER s g alice"), int(0));
    client.cmd("XADD s 1-0 a 1");
    client.cmd("XADD s 2-0 b 2");
    client.cmd("XADD s 3-0 c 3");
    assert_eq!(
        client.cmd("XINFO GROUPS s"),
        array(vec![
            array(vec![
                bulk("name"),
                bulk("g"),
                bulk("consumers"),
                int(0),
                bulk("pending"),
                int(0),
                bulk("last-delivered-id"),
                bulk("0-0"),
                bulk("entries-read"),
                Reply::Nil,
                bulk("lag"),
                int(3),
            ]),
            array(vec![
                bulk("name"),
                bulk("g2"),
                bulk("consumers"),
                int(0),
                bulk("pending"),
                int(0),
                bulk("last-delivered-id"),
                bulk("0-0"),
                bulk("entries-read"),
                int(5),
                bulk("lag"),
                int(-2),
            ]),
        ])
    );
    client.cmd("XREADGROUP GROUP g c1 COUNT 2 STREAMS s >");
    assert_eq!(client.cmd("XGROUP DELCONSUMER s g c1"), int(2));
    assert_eq!(client.cmd("XPENDING s g").items()[0], int(0));
    assert_eq!(client.cmd("XGROUP SETID s g 0 ENTRIESREAD 0"), ok());
    let groups = client.cmd("XINFO GROUPS s").items();
    assert_eq!(groups[0].items()[7], bulk("0-0"));
    assert_eq!(groups[0].items()[11], int(3));
    assert_eq!(client.cmd("XGROUP SETID s g $"), ok());
    assert_eq!(
        client.cmd("XINFO GROUPS s").items()[0].items()[7],
        bulk("3-0")
    );
    assert_eq!(client.cmd("XGROUP DESTROY s g2"), int(1));
    assert_eq!(client.cmd("XINFO GROUPS s").items().len(), 1);
    assert_eq!(client.cmd("XGROUP CREATE s"), arity("xgroup|create"));
    client.cmd("SET str x");
    assert_eq!(client.cmd("XGROUP CREATE str g 0"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XINFO GROUPS str"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XINFO GROUPS nokey"), error("ERR no such key"));
    assert_eq!(
        client.cmd("XINFO CONSUMERS s nog"),
        error("NOGROUP No such consumer group 'nog' for key name 's'")
    );
}

/// The walkthrough of the seeds: a stream read by XREAD, then by two groups.
#[test]
fn seeds_walkthrough() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let first = client.cmd("XADD mqstream * repo 5 stars 10").text();
    let second = client.cmd("XADD mqstream * repo 6 stars 11").text();
    let third = client.cmd("XADD mqstream * repo 7 stars 12").text();
    assert_eq!(
        client.cmd(&format!("XREAD BLOCK 100 STREAMS mqstream {first}")),
        array(vec![array(vec![
            bulk("mqstream"),
            array(vec![
                entry(&second, &["repo", "6", "stars", "11"]),
                entry(&third, &["repo", "7", "stars", "12"])
            ])
        ])])
    );
    assert_eq!(client.cmd("XGROUP CREATE mqstream group1 0"), ok());
    let all = array(vec![array(vec![
        bulk("mqstream"),
        array(vec![
            entry(&first, &["repo", "5", "stars", "10"]),
            entry(&second, &["repo", "6", "stars", "11"]),
            entry(&third, &["repo", "7", "stars", "12"]),
        ]),
    ])]);
    assert_eq!(
        client.cmd("XREADGROUP GROUP group1 consumer1 STREAMS mqstream >"),
        all
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP group1 consumer2 STREAMS mqstream >"),
        Reply::NilArray
    );
    // History of consumer1.
    assert_eq!(
        client.cmd("XREADGROUP GROUP group1 consumer1 STREAMS mqstream 0"),
        all
    );
    assert_eq!(client.cmd("XGROUP CREATE mqstream group2 0"), ok());
    for (consumer, id, fields) in [
        ("consumer1", &first, ["repo", "5", "stars", "10"]),
        ("consumer2", &second, ["repo", "6", "stars", "11"]),
        ("consumer3", &third, ["repo", "7", "stars", "12"]),
    ] {
        assert_eq!(
            client.cmd(&format!(
                "XREADGROUP GROUP group2 {consumer} COUNT 1 STREAMS mqstream >"
            )),
            array(vec![array(vec![
                bulk("mqstream"),
                array(vec![entry(id, &fields)])
            ])])
        );
    }
    assert_eq!(
        client.cmd("XPENDING mqstream group2"),
        array(vec![
            int(3),
            bulk(&first),
            bulk(&third),
            array(vec![
                bulks(&["consumer1", "1"]),
                bulks(&["consumer2", "1"]),
                bulks(&["consumer3", "1"]),
            ])
        ])
    );
    let rows = client
        .cmd("XPENDING mqstream group2 - + 10 consumer2")
        .items();
    assert_eq!(rows.len(), 1);
    let row = rows[0].items();
    assert_eq!(row[0], bulk(&second));
    assert_eq!(row[1], bulk("consumer2"));
    assert_eq!(row[3], int(1));
    assert_eq!(
        client.cmd(&format!("XACK mqstream group2 {second} {second}")),
        int(1)
    );
    assert_eq!(
        client.cmd("XPENDING mqstream group2 - + 10 consumer2"),
        array(vec![])
    );
    assert_eq!(client.cmd("XPENDING mqstream group2").items()[0], int(2));
    assert_eq!(
        client.cmd("XPENDING mqstream group1").items()[3],
        array(vec![bulks(&["consumer1", "3"])])
    );
}

#[test]
fn xreadgroup_errors_and_history() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("XADD s 1-0 a 1");
    client.cmd("XADD s 2-0 b 2");
    client.cmd("XGROUP CREATE s g 0");
    assert_eq!(
        client.cmd("XREADGROUP GROUP nog c STREAMS s >"),
        error("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option")
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS nokey >"),
        error("NOGROUP No such key 'nokey' or consumer group 'g' in XREADGROUP with GROUP option")
    );
    assert_eq!(client.cmd("XREADGROUP GROUP g c STREAMS s $"), error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
    assert_eq!(
        client.cmd("XREADGROUP COUNT 1 NOACK STREAMS s >"),
        error("ERR Missing GROUP option for XREADGROUP")
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS s > 0"),
        error("ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.")
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS s"),
        arity("xreadgroup")
    );
    // NOACK: delivered but not pending.
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s >"),
        array(vec![array(vec![
            bulk("s"),
            array(vec![entry("1-0", &["a", "1"])])
        ])])
    );
    assert_eq!(client.cmd("XPENDING s g").items()[0], int(0));
    client.cmd("XREADGROUP GROUP g c STREAMS s >");
    // History shows deleted entries with a null body and counts deliveries.
    assert_eq!(client.cmd("XDEL s 2-0"), int(1));
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS s 0"),
        array(vec![array(vec![
            bulk("s"),
            array(vec![array(vec![bulk("2-0"), Reply::NilArray])])
        ])])
    );
    assert_eq!(
        client.cmd("XPENDING s g - + 10").items()[0].items()[3],
        int(2)
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS s 2-0"),
        array(vec![array(vec![bulk("s"), array(vec![])])])
    );
    let consumers = client.cmd("XINFO CONSUMERS s g").items();
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0].items()[0], bulk("name"));
    assert_eq!(consumers[0].items()[2], bulk("pending"));
    assert_eq!(consumers[0].items()[3], int(1));
    assert_eq!(consumers[0].items()[6], bulk("inactive"));
    client.cmd("SET str x");
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS str >"),
        error(WRONG_TYPE)
    );
}

#[test]
fn xack_xpending_xclaim_xautoclaim() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for ms in 1..=4 {
        client.cmd(&format!("XADD s {ms}-0 f {ms}"));
    }
    client.cmd("XGROUP CREATE s g 0");
    client.cmd("XREADGROUP GROUP g alice STREAMS s >");
    assert_eq!(client.cmd("XACK s g 1-0 1-0 9-0"), int(1));
    assert_eq!(client.cmd("XACK s g bad"), error(INVALID_ID));
    assert_eq!(client.cmd("XACK s nog 1-0"), int(0));
    assert_eq!(client.cmd("XACK nokey g 1-0"), int(0));
    assert_eq!(client.cmd("XACK s g"), arity("xack"));
    assert_eq!(
        client.cmd("XPENDING s nog"),
        error("NOGROUP No such key 's' or consumer group 'nog'")
    );
    assert_eq!(client.cmd("XPENDING s g - +"), error("ERR syntax error"));
    assert_eq!(
        client.cmd("XPENDING s g IDLE 10 - +"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("XPENDING s g - + abc"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("XPENDING s g (2-0 + 10").items().len(), 2);
    assert_eq!(client.cmd("XPENDING s g - + 10 nobody"), array(vec![]));
    assert_eq!(
        client.cmd("XPENDING s g IDLE 1000000 - + 10"),
        array(vec![])
    );
    assert_eq!(client.cmd("XPENDING s g IDLE 0 - + 1").items().len(), 1);
    // XCLAIM moves entries; JUSTID keeps the delivery count.
    assert_eq!(
        client.cmd("XCLAIM s g bob 0 2-0 3-0 JUSTID"),
        bulks(&["2-0", "3-0"])
    );
    assert_eq!(
        client.cmd("XCLAIM s g bob 0 2-0"),
        array(vec![entry("2-0", &["f", "2"])])
    );
    let rows = client.cmd("XPENDING s g - + 10 bob").items();
    assert_eq!(rows[0].items()[3], int(2));
    assert_eq!(rows[1].items()[3], int(1));
    assert_eq!(client.cmd("XCLAIM s g bob 3600000 2-0"), array(vec![]));
    assert_eq!(
        client.cmd("XCLAIM s g bob 0 3-0 FOO"),
        error("ERR Unrecognized XCLAIM option 'FOO'")
    );
    assert_eq!(
        client.cmd("XCLAIM s g bob abc 3-0"),
        error("ERR Invalid min-idle-time argument for XCLAIM")
    );
    assert_eq!(
        client.cmd("XCLAIM s g bob 0 3-0 IDLE abc"),
        error("ERR Invalid IDLE option argument for XCLAIM")
    );
    assert_eq!(
        client.cmd("XCLAIM s nog bob 0 3-0"),
        error("NOGROUP No such key 's' or consumer group 'nog'")
    );
    // Entries not pending need FORCE.
    client.cmd("XADD s 5-0 f 5");
    assert_eq!(client.cmd("XCLAIM s g carol 0 5-0"), array(vec![]));
    assert_eq!(
        client.cmd("XCLAIM s g carol 0 5-0 FORCE JUSTID RETRYCOUNT 7 LASTID 5-0"),
        bulks(&["5-0"])
    );
    assert_eq!(
        client.cmd("XPENDING s g 5 5 1").items()[0].items()[3],
        int(7)
    );
    assert_eq!(
        client.cmd("XINFO GROUPS s").items()[0].items()[7],
        bulk("5-0")
    );
    // XAUTOCLAIM: cursor, claimed entries, deleted IDs.
    assert_eq!(client.cmd("XDEL s 3-0"), int(1));
    assert_eq!(
        client.cmd("XAUTOCLAIM s g dave 0 0 COUNT 2"),
        array(vec![
            bulk("4-0"),
            array(vec![entry("2-0", &["f", "2"])]),
            bulks(&["3-0"])
        ])
    );
    assert_eq!(
        client.cmd("XAUTOCLAIM s g dave 0 4-0 JUSTID"),
        array(vec![bulk("0-0"), bulks(&["4-0", "5-0"]), array(vec![])])
    );
    assert_eq!(
        client.cmd("XAUTOCLAIM s g dave 0 0 COUNT 0"),
        error("ERR COUNT must be > 0")
    );
    // Arguments are checked before the key and group.
    assert_eq!(
        client.cmd("XAUTOCLAIM nokey g dave 0 0 COUNT 0"),
        error("ERR COUNT must be > 0")
    );
    assert_eq!(
        client.cmd("XAUTOCLAIM s g dave 0 0 FOO"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("XAUTOCLAIM s g dave abc 0"),
        error("ERR Invalid min-idle-time argument for XAUTOCLAIM")
    );
    assert_eq!(
        client.cmd("XAUTOCLAIM s nog dave 0 0"),
        error("NOGROUP No such key 's' or consumer group 'nog'")
    );
    assert_eq!(
        client.cmd("XPENDING s g").items()[3],
        array(vec![bulks(&["dave", "3"])])
    );
    client.cmd("SET str x");
    assert_eq!(client.cmd("XACK str g 1-0"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XPENDING str g"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XCLAIM str g c 0 1-0"), error(WRONG_TYPE));
    assert_eq!(client.cmd("XAUTOCLAIM str g c 0 0"), error(WRONG_TYPE));
}

/// 4 producers, 8 consumers in one group, 100,000 messages; consumers die at random without
/// acknowledging what they hold, and the survivors recover it with XAUTOCLAIM. Every message
/// is acknowledged exactly once.
#[test]
fn work_queue_with_failing_consumers() {
    const MESSAGES: usize = 100_000;
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 8;
    let server = TestServer::start(&[]);
    let port = server.port;
    assert_eq!(server.client().cmd("XGROUP CREATE q g $ MKSTREAM"), ok());
    let acknowledged = Arc::new(Mutex::new(HashSet::<String>::new()));
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for producer in 0..PRODUCERS {
        threads.push(std::thread::spawn(move || {
            let mut client = RawClient::connect(port);
            let per = MESSAGES / PRODUCERS;
            for batch in (0..per).step_by(500) {
                for index in batch..(batch + 500).min(per) {
                    let body = format!("{producer}:{index}");
                    client.send(&[b"XADD", b"q", b"*", b"m", body.as_bytes()]);
                }
                for _ in batch..(batch + 500).min(per) {
                    assert!(matches!(client.read_reply(), Reply::Bulk(_)));
                }
            }
        }));
    }
    for worker in 0..CONSUMERS {
        let acknowledged = acknowledged.clone();
        let acknowledged_count = acknowledged_count.clone();
        threads.push(std::thread::spawn(move || {
            let mut random = 0x2545_F491_4F6C_DD1Du64 ^ ((worker as u64 + 1) * 0x9E37_79B9);
            let mut next = move || {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                random
            };
            let mut generation = 0;
            while acknowledged_count.load(Ordering::SeqCst) < MESSAGES {
                generation += 1;
                let name = format!("worker{worker}-{generation}");
                let mut client = RawClient::connect(port);
                loop {
                    if acknowledged_count.load(Ordering::SeqCst) >= MESSAGES {
                        return;
                    }
                    // Recover what dead consumers left (idle for 200 ms), else read new.
                    let claimed = client.call(&[
                        b"XAUTOCLAIM",
                        b"q",
                        b"g",
                        name.as_bytes(),
                        b"200",
                        b"0-0",
                        b"COUNT",
                        b"50",
                        b"JUSTID",
                    ]);
                    let mut ids: Vec<String> =
                        claimed.items()[1].items().iter().map(Reply::text).collect();
                    if ids.is_empty() {
                        let read = client.call(&[
                            b"XREADGROUP",
                            b"GROUP",
                            b"g",
                            name.as_bytes(),
                            b"COUNT",
                            b"50",
                            b"BLOCK",
                            b"20",
                            b"STREAMS",
                            b"q",
                            b">",
                        ]);
                        if read != Reply::NilArray {
                            let streams = read.items();
                            ids = streams[0].items()[1]
                                .items()
                                .iter()
                                .map(|entry| entry.items()[0].text())
                                .collect();
                        }
                    }
                    // Die now and then, holding what was just read.
                    let dies = !ids.is_empty() && next() % 20 == 0;
                    let keep = if dies {
                        (next() % ids.len() as u64) as usize
                    } else {
                        ids.len()
                    };
                    for id in &ids[..keep] {
                        client.send(&[b"XACK", b"q", b"g", id.as_bytes()]);
                    }
                    for id in &ids[..keep] {
                        if client.read_reply() == int(1) {
                            assert!(
                                acknowledged.lock().unwrap().insert(id.clone()),
                                "{id} acknowledged twice"
                            );
                            acknowledged_count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if dies {
                        break;
                    }
                }
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    let mut client = server.client();
    assert_eq!(acknowledged.lock().unwrap().len(), MESSAGES);
    assert_eq!(client.cmd("XLEN q"), int(MESSAGES as i64));
    assert_eq!(
        client.cmd("XPENDING q g"),
        array(vec![int(0), Reply::Nil, Reply::Nil, Reply::NilArray])
    );
    let group = client.cmd("XINFO GROUPS q").items()[0].items();
    assert_eq!(group[9], int(MESSAGES as i64));
    assert_eq!(group[11], int(0));
}

#[test]
fn keyspace_notifications() {
    let server = TestServer::start(&["--notify-keyspace-events", "Et"]);
    let mut subscriber = server.client();
    let mut client = server.client();
    assert_eq!(
        subscriber.cmd("PSUBSCRIBE __keyevent@0__:*"),
        array(vec![bulk("psubscribe"), bulk("__keyevent@0__:*"), int(1)])
    );
    client.cmd("XADD s MAXLEN 1 1-0 f v");
    client.cmd("XADD s MAXLEN 1 2-0 f v");
    client.cmd("XGROUP CREATE s g 0");
    client.cmd("XREADGROUP GROUP g alice STREAMS s >");
    client.cmd("XDEL s 2-0");
    let mut events = Vec::new();
    for _ in 0..6 {
        let message = subscriber.read_reply().items();
        assert_eq!(message[0], bulk("pmessage"));
        assert_eq!(message[3], bulk("s"));
        events.push(message[2].text());
    }
    assert_eq!(
        events,
        vec![
            "__keyevent@0__:xadd",
            "__keyevent@0__:xadd",
            "__keyevent@0__:xtrim",
            "__keyevent@0__:xgroup-create",
            "__keyevent@0__:xgroup-createconsumer",
            "__keyevent@0__:xdel",
        ]
    );
}

#[test]
fn xread_plus_reads_the_last_entry() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("XREAD STREAMS last +"), Reply::NilArray);
    assert_eq!(client.cmd("XADD last 1-0 a 1"), bulk("1-0"));
    assert_eq!(client.cmd("XADD last 2-0 b 2"), bulk("2-0"));
    assert_eq!(
        client.cmd("XREAD COUNT 5 STREAMS last +"),
        array(vec![array(vec![
            bulk("last"),
            array(vec![array(vec![bulk("2-0"), bulks(&["b", "2"])])])
        ])])
    );
    assert_eq!(
        client.cmd("XREADGROUP GROUP g c STREAMS last +"),
        error("ERR Invalid stream ID specified as stream command argument")
    );
    // On an empty stream `+` blocks like `$`.
    let mut waiter = server.client();
    waiter.send(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"fresh", b"+"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let info = client.cmd("INFO clients").text();
        if info.contains("blocked_clients:1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "reader never blocked");
        std::thread::yield_now();
    }
    assert_eq!(client.cmd("XADD fresh 5-0 x y"), bulk("5-0"));
    assert_eq!(
        waiter.read_reply(),
        array(vec![array(vec![
            bulk("fresh"),
            array(vec![array(vec![bulk("5-0"), bulks(&["x", "y"])])])
        ])])
    );
}

/// Without an AOF or replica, a group read builds no XCLAIM forms, but still counts as a change
/// (the dirty counter) and breaks WATCH on the stream.
#[test]
fn group_reads_count_as_changes_without_propagation() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("XADD s 1-1 f v").text(), "1-1");
    assert_eq!(client.cmd("XADD s 2-1 f v").text(), "2-1");
    assert_eq!(client.cmd("XGROUP CREATE s g 0"), ok());
    let changes = |client: &mut RawClient| -> i64 {
        let info = client.cmd("INFO persistence").text();
        info.lines()
            .find_map(|line| line.strip_prefix("rdb_changes_since_last_save:"))
            .expect("the dirty counter")
            .trim()
            .parse()
            .expect("a number")
    };
    let before = changes(&mut client);
    assert_eq!(client.cmd("WATCH s"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("XLEN s"), status("QUEUED"));
    assert_eq!(
        other
            .cmd("XREADGROUP GROUP g alice COUNT 2 STREAMS s >")
            .items()
            .len(),
        1
    );
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
    // The consumer's creation, two XCLAIMs and the group's position.
    assert!(changes(&mut client) >= before + 3);
}
