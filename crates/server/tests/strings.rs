//! The string family as clients see it: GET, SET and its options, SETNX, SETEX, PSETEX, GETSET,
//! GETDEL, GETEX, MGET, MSET, MSETNX, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND, STRLEN,
//! GETRANGE, SUBSTR, SETRANGE, LCS; replies, errors and edge cases as Redis 7.2 gives them.
//! (Propagated forms and encodings are checked by the unit tests in `families/strings.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::*;

/// How long a key with a short expiry may take to disappear.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(10);

/// Polls until `key` no longer exists (bounded).
fn wait_until_gone(client: &mut RawClient, key: &str) {
    let deadline = Instant::now() + EXPIRY_DEADLINE;
    while client.call(&[b"EXISTS", key.as_bytes()]) != int(0) {
        assert!(Instant::now() < deadline, "{key} did not expire in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn arity_error(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

#[test]
fn get_and_set() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("GET missing"), Reply::Nil);
    assert_eq!(client.cmd("SET key hello"), ok());
    assert_eq!(client.cmd("GET key"), bulk("hello"));
    assert_eq!(client.cmd("SET key world"), ok());
    assert_eq!(client.cmd("GET key"), bulk("world"));
    assert_eq!(client.call(&[b"SET", b"empty", b""]), ok());
    assert_eq!(client.cmd("GET empty"), bulk(""));
    let binary: &[u8] = b"\x00\xff\r\n\x00binary";
    assert_eq!(client.call(&[b"SET", binary, binary]), ok());
    assert_eq!(client.call(&[b"GET", binary]), Reply::Bulk(binary.to_vec()));
    assert_eq!(client.cmd("SET n -0042"), ok());
    assert_eq!(client.cmd("GET n"), bulk("-0042"));
    assert_eq!(client.cmd("SET n 9223372036854775808"), ok());
    assert_eq!(client.cmd("GET n"), bulk("9223372036854775808"));
    assert_eq!(client.cmd("GET"), arity_error("get"));
    assert_eq!(client.cmd("GET a b"), arity_error("get"));
    assert_eq!(client.cmd("SET a"), arity_error("set"));
}

#[test]
fn set_nx_xx_and_get_options() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET key 1 XX"), Reply::Nil);
    assert_eq!(client.cmd("GET key"), Reply::Nil);
    assert_eq!(client.cmd("SET key 1 NX"), ok());
    assert_eq!(client.cmd("SET key 2 NX"), Reply::Nil);
    assert_eq!(client.cmd("GET key"), bulk("1"));
    assert_eq!(client.cmd("SET key 3 xx"), ok());
    assert_eq!(client.cmd("GET key"), bulk("3"));
    // GET replies with the old value whether or not the value is set.
    assert_eq!(client.cmd("SET key 4 GET"), bulk("3"));
    assert_eq!(client.cmd("SET key 5 NX GET"), bulk("4"));
    assert_eq!(client.cmd("GET key"), bulk("4"));
    assert_eq!(client.cmd("SET other 1 GET"), Reply::Nil);
    assert_eq!(client.cmd("SET nothing 1 XX GET"), Reply::Nil);
    assert_eq!(client.cmd("EXISTS nothing"), int(0));
    assert_eq!(client.cmd("SET fresh 1 NX GET"), Reply::Nil);
    assert_eq!(client.cmd("GET fresh"), bulk("1"));
    assert_eq!(client.cmd("SET key 6 XX GET"), bulk("4"));
    // Repeating an option is allowed.
    assert_eq!(client.cmd("SET key 7 NX NX"), Reply::Nil);
    assert_eq!(client.cmd("SET key 7 GET get"), bulk("6"));
    assert_eq!(client.cmd("SET key 8 KEEPTTL KEEPTTL"), ok());
    assert_eq!(client.cmd("GET key"), bulk("8"));
}

#[test]
fn set_syntax_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for line in [
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v EX",
        "SET k v PX",
        "SET k v EXAT",
        "SET k v PXAT",
        "SET k v EX 10 PX 10",
        "SET k v PX 10 EX 10",
        "SET k v EX 10 EXAT 10",
        "SET k v PXAT 10 EXAT 10",
        "SET k v EX 10 KEEPTTL",
        "SET k v KEEPTTL PX 10",
        "SET k v PERSIST",
        "SET k v foo",
        "SET k v EX abc foo",
        "SET k v NXX",
    ] {
        assert_eq!(client.cmd(line), error(SYNTAX), "{line}");
    }
    assert_eq!(client.cmd("EXISTS k"), int(0));
    for line in [
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v PX 0",
        "SET k v PX -100",
        "SET k v EXAT 0",
        "SET k v PXAT -1",
        "SET k v EX 9223372036854776",
        "SET k v EX 9223372036854775",
        "SET k v PX 9223372036854775807",
    ] {
        assert_eq!(
            client.cmd(line),
            error("ERR invalid expire time in 'set' command"),
            "{line}"
        );
    }
    for line in [
        "SET k v EX abc",
        "SET k v PX 1.5",
        "SET k v EXAT 9223372036854775808",
    ] {
        assert_eq!(client.cmd(line), error(NOT_INTEGER), "{line}");
    }
    // The expiry is checked before anything else, even with NX on an existing key.
    assert_eq!(client.cmd("SET k v"), ok());
    assert_eq!(
        client.cmd("SET k v NX EX 0"),
        error("ERR invalid expire time in 'set' command")
    );
    // Absolute expiries are accepted up to the largest millisecond timestamp.
    assert_eq!(client.cmd("SET k v PXAT 9223372036854775807"), ok());
    assert_eq!(client.cmd("SET k v EXAT 9223372036854775"), ok());
    assert_eq!(client.cmd("GET k"), bulk("v"));
}

#[test]
fn set_expiry_options() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET px value PX 50"), ok());
    assert_eq!(client.cmd("GET px"), bulk("value"));
    wait_until_gone(&mut client, "px");
    assert_eq!(client.cmd("GET px"), Reply::Nil);

    assert_eq!(client.cmd("SET ex value EX 1"), ok());
    wait_until_gone(&mut client, "ex");

    let soon_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 50;
    assert_eq!(client.cmd(&format!("SET pxat value PXAT {soon_ms}")), ok());
    wait_until_gone(&mut client, "pxat");

    // Already past: the key is deleted (or never created), the reply is still OK / the old value.
    assert_eq!(client.cmd("SET old value"), ok());
    assert_eq!(client.cmd("SET old new EXAT 1"), ok());
    assert_eq!(client.cmd("EXISTS old"), int(0));
    assert_eq!(client.cmd("SET old value"), ok());
    assert_eq!(client.cmd("SET old new PXAT 1 GET"), bulk("value"));
    assert_eq!(client.cmd("EXISTS old"), int(0));
    assert_eq!(client.cmd("SET never v PXAT 1000"), ok());
    assert_eq!(client.cmd("EXISTS never"), int(0));

    // KEEPTTL keeps the expiry; a plain SET removes it. A control key set with the same expiry
    // afterwards tells when the first one's expiry has passed.
    assert_eq!(client.cmd("SET kept 1 PX 100"), ok());
    assert_eq!(client.cmd("SET kept 2 KEEPTTL"), ok());
    assert_eq!(client.cmd("GET kept"), bulk("2"));
    wait_until_gone(&mut client, "kept");

    assert_eq!(client.cmd("SET cleared 1 PX 100"), ok());
    assert_eq!(client.cmd("SET cleared 2"), ok());
    assert_eq!(client.cmd("SET control 1 PX 100"), ok());
    wait_until_gone(&mut client, "control");
    assert_eq!(client.cmd("GET cleared"), bulk("2"));

    // XX with an expiry on an existing key replaces both value and expiry.
    assert_eq!(client.cmd("SET both 1"), ok());
    assert_eq!(client.cmd("SET both 2 XX PX 50"), ok());
    assert_eq!(client.cmd("GET both"), bulk("2"));
    wait_until_gone(&mut client, "both");
}

#[test]
fn setnx_setex_psetex() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SETNX key 1"), int(1));
    assert_eq!(client.cmd("SETNX key 2"), int(0));
    assert_eq!(client.cmd("GET key"), bulk("1"));
    assert_eq!(client.cmd("SETNX key"), arity_error("setnx"));
    assert_eq!(client.cmd("SETNX key 1 2"), arity_error("setnx"));

    assert_eq!(client.cmd("SETEX key 100 value"), ok());
    assert_eq!(client.cmd("GET key"), bulk("value"));
    // SETNX sees a key whose expiry has not passed.
    assert_eq!(client.cmd("SETNX key other"), int(0));
    assert_eq!(client.cmd("SETEX short 1 value"), ok());
    wait_until_gone(&mut client, "short");
    assert_eq!(client.cmd("SETNX short again"), int(1));
    assert_eq!(client.cmd("PSETEX fast 50 value"), ok());
    assert_eq!(client.cmd("GET fast"), bulk("value"));
    wait_until_gone(&mut client, "fast");

    for (line, command) in [
        ("SETEX k 0 v", "setex"),
        ("SETEX k -10 v", "setex"),
        ("SETEX k 9223372036854775807 v", "setex"),
        ("PSETEX k 0 v", "psetex"),
        ("PSETEX k -1 v", "psetex"),
        ("PSETEX k 9223372036854775807 v", "psetex"),
    ] {
        assert_eq!(
            client.cmd(line),
            error(&format!("ERR invalid expire time in '{command}' command")),
            "{line}"
        );
    }
    assert_eq!(client.cmd("SETEX k ten v"), error(NOT_INTEGER));
    assert_eq!(client.cmd("PSETEX k 1.5 v"), error(NOT_INTEGER));
    assert_eq!(client.cmd("EXISTS k"), int(0));
    assert_eq!(client.cmd("SETEX k 10"), arity_error("setex"));
    assert_eq!(client.cmd("PSETEX k 10 v extra"), arity_error("psetex"));
}

#[test]
fn getset_and_getdel() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("GETSET key new"), Reply::Nil);
    assert_eq!(client.cmd("GET key"), bulk("new"));
    assert_eq!(client.cmd("GETSET key newer"), bulk("new"));
    assert_eq!(client.cmd("GET key"), bulk("newer"));
    assert_eq!(client.cmd("GETSET key"), arity_error("getset"));
    // GETSET removes the expiry.
    assert_eq!(client.cmd("SET volatile 1 PX 100"), ok());
    assert_eq!(client.cmd("GETSET volatile 2"), bulk("1"));
    assert_eq!(client.cmd("SET control 1 PX 100"), ok());
    wait_until_gone(&mut client, "control");
    assert_eq!(client.cmd("GET volatile"), bulk("2"));

    assert_eq!(client.cmd("GETDEL key"), bulk("newer"));
    assert_eq!(client.cmd("EXISTS key"), int(0));
    assert_eq!(client.cmd("GETDEL key"), Reply::Nil);
    assert_eq!(client.cmd("SET number 12"), ok());
    assert_eq!(client.cmd("GETDEL number"), bulk("12"));
    assert_eq!(client.cmd("GETDEL"), arity_error("getdel"));
    assert_eq!(client.cmd("GETDEL a b"), arity_error("getdel"));
}

#[test]
fn getex_options() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("GETEX missing"), Reply::Nil);
    // A missing key replies nil before the expiry is even read.
    assert_eq!(client.cmd("GETEX missing EX -1"), Reply::Nil);
    assert_eq!(client.cmd("GETEX missing EX abc"), Reply::Nil);
    assert_eq!(client.cmd("GETEX missing foo"), error(SYNTAX));
    assert_eq!(client.cmd("SET key value"), ok());
    assert_eq!(client.cmd("GETEX key"), bulk("value"));
    for line in [
        "GETEX key foo",
        "GETEX key EX",
        "GETEX key EX 10 PX 10",
        "GETEX key PERSIST EX 10",
        "GETEX key EXAT 10 PERSIST",
        "GETEX key KEEPTTL",
        "GETEX key NX",
        "GETEX key GET",
    ] {
        assert_eq!(client.cmd(line), error(SYNTAX), "{line}");
    }
    for line in ["GETEX key EX 0", "GETEX key PX -5", "GETEX key EXAT 0"] {
        assert_eq!(
            client.cmd(line),
            error("ERR invalid expire time in 'getex' command"),
            "{line}"
        );
    }
    assert_eq!(client.cmd("GETEX key PX abc"), error(NOT_INTEGER));
    assert_eq!(client.cmd("GETEX key PERSIST PERSIST"), bulk("value"));
    assert_eq!(client.cmd("GETEX"), arity_error("getex"));

    assert_eq!(client.cmd("GETEX key PX 50"), bulk("value"));
    wait_until_gone(&mut client, "key");

    // PERSIST removes the expiry.
    assert_eq!(client.cmd("SET key value EX 100"), ok());
    assert_eq!(client.cmd("GETEX key PX 100"), bulk("value"));
    assert_eq!(client.cmd("GETEX key PERSIST"), bulk("value"));
    assert_eq!(client.cmd("SET control 1 PX 100"), ok());
    wait_until_gone(&mut client, "control");
    assert_eq!(client.cmd("GET key"), bulk("value"));

    // An absolute expiry already past deletes the key after replying with its value.
    assert_eq!(client.cmd("GETEX key EXAT 1"), bulk("value"));
    assert_eq!(client.cmd("EXISTS key"), int(0));
    assert_eq!(client.cmd("SET key value"), ok());
    assert_eq!(client.cmd("GETEX key PXAT 1000"), bulk("value"));
    assert_eq!(client.cmd("EXISTS key"), int(0));
}

#[test]
fn mget_mset_msetnx() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("MSET a 1 b 2 c 3"), ok());
    assert_eq!(
        client.cmd("MGET a b missing c"),
        array(vec![bulk("1"), bulk("2"), Reply::Nil, bulk("3")])
    );
    assert_eq!(client.cmd("MGET missing"), array(vec![Reply::Nil]));
    assert_eq!(client.cmd("MSET a 10 a 11"), ok());
    assert_eq!(client.cmd("GET a"), bulk("11"));
    assert_eq!(client.cmd("MSET a 1 b"), arity_error("mset"));
    assert_eq!(client.cmd("MSET a"), arity_error("mset"));
    assert_eq!(client.cmd("MSET"), arity_error("mset"));
    assert_eq!(client.cmd("MGET"), arity_error("mget"));

    assert_eq!(client.cmd("MSETNX x 1 a 2"), int(0));
    assert_eq!(client.cmd("EXISTS x"), int(0));
    assert_eq!(client.cmd("GET a"), bulk("11"));
    assert_eq!(client.cmd("MSETNX x 1 y 2"), int(1));
    assert_eq!(client.cmd("MGET x y"), bulks(&["1", "2"]));
    assert_eq!(client.cmd("MSETNX z 1 z 2"), int(1));
    assert_eq!(client.cmd("GET z"), bulk("2"));
    assert_eq!(client.cmd("MSETNX z 3 z 4"), int(0));
    assert_eq!(client.cmd("GET z"), bulk("2"));
    assert_eq!(client.cmd("MSETNX x 1 y"), arity_error("msetnx"));
    assert_eq!(client.cmd("MSETNX x"), arity_error("msetnx"));

    // MSET removes expiries; MSETNX sees keys until they expire.
    assert_eq!(client.cmd("SET volatile 1 PX 100"), ok());
    assert_eq!(client.cmd("MSETNX volatile 2"), int(0));
    assert_eq!(client.cmd("MSET volatile 3"), ok());
    assert_eq!(client.cmd("SET control 1 PX 100"), ok());
    wait_until_gone(&mut client, "control");
    assert_eq!(client.cmd("GET volatile"), bulk("3"));
    assert_eq!(client.cmd("SET short 1 PX 20"), ok());
    wait_until_gone(&mut client, "short");
    assert_eq!(client.cmd("MSETNX short 2"), int(1));
}

#[test]
fn mset_and_mget_are_atomic_across_shards() {
    let server = TestServer::start(&[]);
    let keys: Vec<String> = (0..8).map(|index| format!("atomic:{index}")).collect();
    let port = server.port;
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                for round in 0..300 {
                    let value = format!("{writer}-{round}");
                    let mut args: Vec<&[u8]> = vec![b"MSET"];
                    for key in &keys {
                        args.push(key.as_bytes());
                        args.push(value.as_bytes());
                    }
                    assert_eq!(client.call(&args), ok());
                }
            })
        })
        .collect();
    let mut reader = server.client();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|key| key.as_bytes()));
    for _ in 0..300 {
        let values = reader.call(&args).items();
        assert!(
            values.iter().all(|value| *value == values[0]),
            "torn MSET seen by MGET: {values:?}"
        );
    }
    for writer in writers {
        writer.join().expect("writer");
    }
}

#[test]
fn incr_decr_incrby_decrby() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("INCR counter"), int(1));
    assert_eq!(client.cmd("INCR counter"), int(2));
    assert_eq!(client.cmd("GET counter"), bulk("2"));
    assert_eq!(client.cmd("DECR counter"), int(1));
    assert_eq!(client.cmd("DECR fresh"), int(-1));
    assert_eq!(client.cmd("INCRBY counter 100"), int(101));
    assert_eq!(client.cmd("INCRBY counter -200"), int(-99));
    assert_eq!(client.cmd("DECRBY counter -99"), int(0));
    assert_eq!(client.cmd("DECRBY other 5"), int(-5));
    assert_eq!(client.cmd("SET big 17179869184"), ok());
    assert_eq!(client.cmd("INCRBY big 17179869184"), int(34359738368));
    assert_eq!(client.cmd("DECRBY big 34359738369"), int(-1));

    for value in [
        "  1",
        "1 ",
        "1.0",
        "abc",
        "",
        "+1",
        "01",
        "-0",
        "0x10",
        "99999999999999999999",
    ] {
        assert_eq!(client.call(&[b"SET", b"bad", value.as_bytes()]), ok());
        assert_eq!(client.cmd("INCR bad"), error(NOT_INTEGER), "{value:?}");
        assert_eq!(client.cmd("DECRBY bad 1"), error(NOT_INTEGER), "{value:?}");
        assert_eq!(client.cmd("GET bad").text(), value);
    }
    for increment in ["abc", "1.5", "", " 1", "9223372036854775808"] {
        assert_eq!(
            client.call(&[b"INCRBY", b"counter", increment.as_bytes()]),
            error(NOT_INTEGER)
        );
        assert_eq!(
            client.call(&[b"DECRBY", b"counter", increment.as_bytes()]),
            error(NOT_INTEGER)
        );
    }

    assert_eq!(client.cmd("SET max 9223372036854775806"), ok());
    assert_eq!(client.cmd("INCR max"), int(i64::MAX));
    assert_eq!(client.cmd("INCR max"), error(OVERFLOW));
    assert_eq!(client.cmd("INCRBY max 1"), error(OVERFLOW));
    assert_eq!(client.cmd("DECRBY max -1"), error(OVERFLOW));
    assert_eq!(client.cmd("GET max"), bulk("9223372036854775807"));
    assert_eq!(client.cmd("INCRBY max -9223372036854775808"), int(-1));
    assert_eq!(client.cmd("SET min -9223372036854775807"), ok());
    assert_eq!(client.cmd("DECR min"), int(i64::MIN));
    assert_eq!(client.cmd("DECR min"), error(OVERFLOW));
    assert_eq!(client.cmd("INCRBY min -1"), error(OVERFLOW));
    assert_eq!(client.cmd("INCRBY min 9223372036854775807"), int(-1));
    assert_eq!(
        client.cmd("DECRBY x -9223372036854775808"),
        error("ERR decrement would overflow")
    );
    assert_eq!(client.cmd("EXISTS x"), int(0));
    assert_eq!(client.cmd("DECRBY x 9223372036854775807"), int(-i64::MAX));
    assert_eq!(client.cmd("DECR x"), int(i64::MIN));

    // INCR on a value changed by APPEND.
    assert_eq!(client.cmd("SET appended 1"), ok());
    assert_eq!(client.cmd("APPEND appended 2"), int(2));
    assert_eq!(client.cmd("INCR appended"), int(13));

    // INCR keeps the expiry.
    assert_eq!(client.cmd("SET volatile 1 PX 50"), ok());
    assert_eq!(client.cmd("INCR volatile"), int(2));
    wait_until_gone(&mut client, "volatile");

    for command in ["incr", "decr"] {
        assert_eq!(client.cmd(command), arity_error(command));
        assert_eq!(client.cmd(&format!("{command} a b")), arity_error(command));
    }
    for command in ["incrby", "decrby"] {
        assert_eq!(client.cmd(&format!("{command} a")), arity_error(command));
        assert_eq!(
            client.cmd(&format!("{command} a 1 2")),
            arity_error(command)
        );
    }
}

#[test]
fn incrbyfloat() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("INCRBYFLOAT f 10.5"), bulk("10.5"));
    assert_eq!(client.cmd("INCRBYFLOAT f 1.1"), bulk("11.6"));
    // Redis computes in long double and prints 17 decimals.
    assert_eq!(
        client.cmd("INCRBYFLOAT f 5.0e3"),
        bulk("5011.60000000000000009")
    );
    assert_eq!(client.cmd("GET f"), bulk("5011.60000000000000009"));
    assert_eq!(client.cmd("SET f 0.1"), ok());
    assert_eq!(client.cmd("INCRBYFLOAT f 0.2"), bulk("0.3"));
    assert_eq!(client.cmd("SET f 1"), ok());
    assert_eq!(client.cmd("INCRBYFLOAT f -1.1"), bulk("-0.1"));
    assert_eq!(client.cmd("SET f 17179869184"), ok());
    assert_eq!(client.cmd("INCRBYFLOAT f 1.5"), bulk("17179869185.5"));
    assert_eq!(client.cmd("INCRBYFLOAT f 3"), bulk("17179869188.5"));
    assert_eq!(client.cmd("SET f 5"), ok());
    assert_eq!(client.cmd("INCRBYFLOAT f 0x10"), bulk("21"));
    assert_eq!(client.cmd("INCRBYFLOAT f -21"), bulk("0"));
    assert_eq!(client.cmd("INCRBYFLOAT f 1e-20"), bulk("0"));
    assert_eq!(client.cmd("INCRBYFLOAT f -1e-20"), bulk("0"));
    assert_eq!(client.cmd("INCRBYFLOAT f 1.5e1"), bulk("15"));
    assert_eq!(client.cmd("INCRBYFLOAT f .5"), bulk("15.5"));
    assert_eq!(client.cmd("INCRBYFLOAT f 5."), bulk("20.5"));
    assert_eq!(client.cmd("INCRBYFLOAT f -0.5"), bulk("20"));

    // Beyond double range, still within long double range.
    assert_eq!(client.cmd("SET huge 1e308"), ok());
    let sum = client.cmd("INCRBYFLOAT huge 1e308").text();
    assert_eq!(sum.len(), 309);
    assert!(
        sum.starts_with("1999999999999999999933717593116912913211"),
        "{sum}"
    );
    assert_eq!(client.cmd("INCRBYFLOAT huge 1e4932").text().len(), 4933);
    assert_eq!(
        client.cmd("INCRBYFLOAT huge 1e4932"),
        error("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(client.cmd("INCRBYFLOAT huge 1e5000"), error(NOT_FLOAT));

    assert_eq!(client.cmd("SET f 0"), ok());
    for infinite in ["inf", "+inf", "-inf", "Infinity"] {
        assert_eq!(
            client.cmd(&format!("INCRBYFLOAT f {infinite}")),
            error("ERR increment would produce NaN or Infinity")
        );
    }
    for bad in [
        "abc", "nan", "-nan", "1e", "1.2.3", " 1", "1 ", "", "0x", "1e-5000", "1,5",
    ] {
        assert_eq!(
            client.call(&[b"INCRBYFLOAT", b"f", bad.as_bytes()]),
            error(NOT_FLOAT),
            "{bad:?}"
        );
    }
    for stored in ["    11", "11    ", " 11 ", "abc", "1\u{0}2"] {
        assert_eq!(client.call(&[b"SET", b"bad", stored.as_bytes()]), ok());
        assert_eq!(
            client.cmd("INCRBYFLOAT bad 1.0"),
            error(NOT_FLOAT),
            "{stored:?}"
        );
    }
    // No negative zero.
    assert_eq!(
        client.cmd("INCRBYFLOAT nz 0.024390243902439025"),
        bulk("0.02439024390243902")
    );
    assert_eq!(
        client.cmd("INCRBYFLOAT nz -0.024390243902439025"),
        bulk("0")
    );
    assert_eq!(client.cmd("GET nz"), bulk("0"));
    // The expiry is kept.
    assert_eq!(client.cmd("SET volatile 1 PX 50"), ok());
    assert_eq!(client.cmd("INCRBYFLOAT volatile 1"), bulk("2"));
    wait_until_gone(&mut client, "volatile");

    assert_eq!(client.cmd("INCRBYFLOAT f"), arity_error("incrbyfloat"));
    assert_eq!(client.cmd("INCRBYFLOAT f 1 2"), arity_error("incrbyfloat"));
}

#[test]
fn append_and_strlen() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("STRLEN missing"), int(0));
    assert_eq!(client.cmd("APPEND key Hello"), int(5));
    assert_eq!(client.cmd("APPEND key World"), int(10));
    assert_eq!(client.call(&[b"APPEND", b"key", b""]), int(10));
    assert_eq!(client.cmd("GET key"), bulk("HelloWorld"));
    assert_eq!(client.cmd("STRLEN key"), int(10));
    assert_eq!(client.call(&[b"APPEND", b"empty", b""]), int(0));
    assert_eq!(client.cmd("EXISTS empty"), int(1));
    assert_eq!(client.cmd("STRLEN empty"), int(0));
    assert_eq!(client.cmd("SET number -555"), ok());
    assert_eq!(client.cmd("STRLEN number"), int(4));
    assert_eq!(client.cmd("APPEND number 5"), int(5));
    assert_eq!(client.cmd("GET number"), bulk("-5555"));
    assert_eq!(client.cmd("APPEND key"), arity_error("append"));
    assert_eq!(client.cmd("STRLEN"), arity_error("strlen"));
    assert_eq!(client.cmd("STRLEN a b"), arity_error("strlen"));
    // APPEND keeps the expiry.
    assert_eq!(client.cmd("SET volatile 1 PX 50"), ok());
    assert_eq!(client.cmd("APPEND volatile 2"), int(2));
    wait_until_gone(&mut client, "volatile");
}

#[test]
fn big_values() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let payload = "abcd".repeat(1_000_000);
    assert_eq!(client.call(&[b"SET", b"big", payload.as_bytes()]), ok());
    assert_eq!(client.cmd("GET big"), bulk(&payload));
    assert_eq!(client.cmd("STRLEN big"), int(4_000_000));
    let chunk = "x".repeat(300_000);
    let mut expected = String::new();
    for _ in 0..5 {
        expected.push_str(&chunk);
        assert_eq!(
            client.call(&[b"APPEND", b"grown", chunk.as_bytes()]),
            int(expected.len() as i64)
        );
    }
    assert_eq!(client.cmd("GET grown"), bulk(&expected));
    assert_eq!(client.cmd("GETRANGE grown 1499998 -1"), bulk("xx"));
    assert_eq!(client.cmd("SETRANGE padded 2000000 end"), int(2_000_003));
    let padded = client.cmd("GET padded");
    let Reply::Bulk(bytes) = padded else {
        panic!("{padded:?}")
    };
    assert!(bytes[..2_000_000].iter().all(|byte| *byte == 0));
    assert_eq!(&bytes[2_000_000..], b"end");
    assert_eq!(
        client.call(&[b"MSET", b"m1", payload.as_bytes(), b"m2", b"small"]),
        ok()
    );
    assert_eq!(
        client.cmd("MGET m1 m2"),
        array(vec![bulk(&payload), bulk("small")])
    );
}

#[test]
fn string_size_limit() {
    let server = TestServer::start(&["--proto-max-bulk-len", "1mb"]);
    let mut client = server.client();
    let limit = 1024 * 1024;
    let almost = "a".repeat(limit - 1);
    assert_eq!(client.call(&[b"SET", b"key", almost.as_bytes()]), ok());
    assert_eq!(client.cmd("APPEND key b"), int(limit as i64));
    assert_eq!(client.cmd("APPEND key c"), error(TOO_LONG));
    assert_eq!(client.call(&[b"APPEND", b"key", b""]), int(limit as i64));
    assert_eq!(client.cmd("STRLEN key"), int(limit as i64));
    assert_eq!(
        client.cmd(&format!("SETRANGE key {} z", limit - 1)),
        int(limit as i64)
    );
    assert_eq!(
        client.cmd(&format!("SETRANGE key {limit} z")),
        error(TOO_LONG)
    );
    assert_eq!(
        client.cmd(&format!("SETRANGE new {limit} z")),
        error(TOO_LONG)
    );
    assert_eq!(client.cmd("EXISTS new"), int(0));
    assert_eq!(client.cmd("SETRANGE new 1048575 z"), int(limit as i64));
    // LCS refuses tables beyond the limit (4 bytes a cell).
    let side = "a".repeat(600);
    assert_eq!(
        client.call(&[b"MSET", b"l1", side.as_bytes(), b"l2", side.as_bytes()]),
        ok()
    );
    assert_eq!(
        client.cmd("LCS l1 l2 LEN"),
        error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    );
    assert_eq!(client.cmd("SET l2 aaa"), ok());
    assert_eq!(client.cmd("LCS l1 l2 LEN"), int(3));
}

#[test]
fn getrange_and_substr() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET key Hello_World"), ok());
    for command in ["GETRANGE", "SUBSTR"] {
        let mut range =
            |start: &str, end: &str| client.cmd(&format!("{command} key {start} {end}"));
        assert_eq!(range("0", "3"), bulk("Hell"));
        assert_eq!(range("0", "-1"), bulk("Hello_World"));
        assert_eq!(range("-4", "-1"), bulk("orld"));
        assert_eq!(range("5", "3"), bulk(""));
        assert_eq!(range("-1", "-5"), bulk(""));
        assert_eq!(range("5", "5000"), bulk("_World"));
        assert_eq!(range("-5000", "10000"), bulk("Hello_World"));
        assert_eq!(range("-5000", "-4000"), bulk("H"));
        assert_eq!(range("100", "200"), bulk(""));
        assert_eq!(range("0", "4294967297"), bulk("Hello_World"));
        assert_eq!(
            range("-9223372036854775808", "9223372036854775807"),
            bulk("Hello_World")
        );
        assert_eq!(range("a", "1"), error(NOT_INTEGER));
        assert_eq!(range("0", "1.5"), error(NOT_INTEGER));
    }
    assert_eq!(client.cmd("SET number 1234"), ok());
    assert_eq!(client.cmd("GETRANGE number 0 2"), bulk("123"));
    assert_eq!(client.cmd("GETRANGE number -3 -1"), bulk("234"));
    assert_eq!(client.cmd("GETRANGE number 3 5000"), bulk("4"));
    assert_eq!(client.cmd("GETRANGE missing 0 -1"), bulk(""));
    assert_eq!(client.cmd("GETRANGE missing a 1"), error(NOT_INTEGER));
    assert_eq!(client.call(&[b"SET", b"empty", b""]), ok());
    assert_eq!(client.cmd("GETRANGE empty 0 -1"), bulk(""));
    assert_eq!(client.cmd("GETRANGE empty -1 0"), bulk(""));
    assert_eq!(client.cmd("GETRANGE key 0"), arity_error("getrange"));
    assert_eq!(client.cmd("SUBSTR key 0 1 2"), arity_error("substr"));
}

#[test]
fn setrange() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SETRANGE key 0 foo"), int(3));
    assert_eq!(client.cmd("GET key"), bulk("foo"));
    assert_eq!(client.cmd("SETRANGE key 1 b"), int(3));
    assert_eq!(client.cmd("GET key"), bulk("fbo"));
    assert_eq!(client.cmd("SETRANGE key 4 bar"), int(7));
    assert_eq!(client.cmd("GET key"), Reply::Bulk(b"fbo\0bar".to_vec()));
    assert_eq!(client.cmd("SETRANGE padded 3 x"), int(4));
    assert_eq!(client.cmd("GET padded"), Reply::Bulk(b"\0\0\0x".to_vec()));
    assert_eq!(client.cmd("SET number 1234"), ok());
    assert_eq!(client.cmd("SETRANGE number 5 2"), int(6));
    assert_eq!(client.cmd("GET number"), Reply::Bulk(b"1234\x002".to_vec()));
    // Setting nothing: the length, and no key is created.
    assert_eq!(client.call(&[b"SETRANGE", b"key", b"100", b""]), int(7));
    assert_eq!(client.call(&[b"SETRANGE", b"missing", b"5", b""]), int(0));
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    // Offsets.
    assert_eq!(
        client.cmd("SETRANGE key -1 x"),
        error("ERR offset is out of range")
    );
    assert_eq!(client.cmd("SETRANGE key abc x"), error(NOT_INTEGER));
    assert_eq!(client.cmd("SETRANGE key 1.5 x"), error(NOT_INTEGER));
    let limit = 512 * 1024 * 1024;
    for offset in [limit - 4, limit, i64::MAX as usize] {
        for key in ["key", "missing"] {
            assert_eq!(
                client.cmd(&format!("SETRANGE {key} {offset} world")),
                error(TOO_LONG),
                "{key} {offset}"
            );
        }
    }
    assert_eq!(
        client.call(&[b"SETRANGE", b"missing", b"9223372036854775807", b""]),
        int(0)
    );
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    assert_eq!(client.cmd("SETRANGE key 0"), arity_error("setrange"));
    // SETRANGE keeps the expiry.
    assert_eq!(client.cmd("SET volatile abc PX 50"), ok());
    assert_eq!(client.cmd("SETRANGE volatile 1 x"), int(3));
    assert_eq!(client.cmd("GET volatile"), bulk("axc"));
    wait_until_gone(&mut client, "volatile");
}

const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
const RNA_LCS: &str = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";
const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

fn range_pair(a: (i64, i64), b: (i64, i64)) -> Vec<Reply> {
    vec![
        array(vec![int(a.0), int(a.1)]),
        array(vec![int(b.0), int(b.1)]),
    ]
}

#[test]
fn lcs() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("MSET key1 ohmytext key2 mynewtext"), ok());
    assert_eq!(client.cmd("LCS key1 key2"), bulk("mytext"));
    assert_eq!(client.cmd("LCS key1 key2 LEN"), int(6));
    let first = range_pair((4, 7), (5, 8));
    let second = range_pair((2, 3), (0, 1));
    assert_eq!(
        client.cmd("LCS key1 key2 IDX"),
        array(vec![
            bulk("matches"),
            array(vec![array(first.clone()), array(second.clone())]),
            bulk("len"),
            int(6),
        ])
    );
    let with_length = |mut pair: Vec<Reply>, length: i64| {
        pair.push(int(length));
        array(pair)
    };
    assert_eq!(
        client.cmd("LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN"),
        array(vec![
            bulk("matches"),
            array(vec![with_length(first.clone(), 4)]),
            bulk("len"),
            int(6),
        ])
    );
    assert_eq!(
        client.cmd("lcs key1 key2 withmatchlen idx minmatchlen -3"),
        array(vec![
            bulk("matches"),
            array(vec![
                with_length(first.clone(), 4),
                with_length(second.clone(), 2)
            ]),
            bulk("len"),
            int(6),
        ])
    );
    // Missing keys read as empty strings.
    assert_eq!(client.cmd("LCS key1 missing"), bulk(""));
    assert_eq!(client.cmd("LCS missing key1 LEN"), int(0));
    assert_eq!(
        client.cmd("LCS missing other IDX"),
        array(vec![bulk("matches"), array(vec![]), bulk("len"), int(0)])
    );
    assert_eq!(client.cmd("LCS key1 key1 LEN"), int(8));
    assert_eq!(client.cmd("SET number 1234"), ok());
    assert_eq!(client.cmd("SET other 2345"), ok());
    assert_eq!(client.cmd("LCS number other"), bulk("234"));
    // Errors.
    assert_eq!(client.cmd("LCS key1 key2 FOO"), error(SYNTAX));
    assert_eq!(client.cmd("LCS key1 key2 MINMATCHLEN"), error(SYNTAX));
    assert_eq!(
        client.cmd("LCS key1 key2 MINMATCHLEN x"),
        error(NOT_INTEGER)
    );
    assert_eq!(
        client.cmd("LCS key1 key2 LEN IDX"),
        error("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(client.cmd("LCS key1"), arity_error("lcs"));

    // Redis's own test data.
    assert_eq!(
        client.call(&[b"MSET", b"v1", RNA1.as_bytes(), b"v2", RNA2.as_bytes()]),
        ok()
    );
    assert_eq!(client.cmd("LCS v1 v2"), bulk(RNA_LCS));
    assert_eq!(client.cmd("LCS v1 v2 LEN"), int(227));
    let matches = client.cmd("LCS v1 v2 IDX WITHMATCHLEN").items();
    assert_eq!(
        matches[1],
        array(vec![
            with_length(range_pair((238, 238), (239, 239)), 1),
            with_length(range_pair((236, 236), (238, 238)), 1),
            with_length(range_pair((229, 230), (236, 237)), 2),
            with_length(range_pair((224, 224), (235, 235)), 1),
            with_length(range_pair((1, 222), (13, 234)), 222),
        ])
    );
    assert_eq!(matches[3], int(227));
}

#[test]
fn resp3_replies() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let Reply::Map(_) = client.cmd("HELLO 3") else {
        panic!("HELLO 3 did not reply with a map")
    };
    assert_eq!(client.cmd("GET missing"), Reply::Null);
    assert_eq!(client.cmd("SET key value"), ok());
    assert_eq!(
        client.cmd("MGET key missing"),
        array(vec![bulk("value"), Reply::Null])
    );
    assert_eq!(client.cmd("SET key other XX GET"), bulk("value"));
    assert_eq!(client.cmd("SET missing v XX"), Reply::Null);
    assert_eq!(client.cmd("GETDEL missing"), Reply::Null);
    assert_eq!(client.cmd("GETEX missing"), Reply::Null);
    assert_eq!(client.cmd("INCRBYFLOAT float 2.5"), bulk("2.5"));
    assert_eq!(client.cmd("MSET key1 ohmytext key2 mynewtext"), ok());
    assert_eq!(
        client.cmd("LCS key1 key2 IDX WITHMATCHLEN"),
        Reply::Map(vec![
            (
                bulk("matches"),
                array(vec![
                    array(vec![
                        array(vec![int(4), int(7)]),
                        array(vec![int(5), int(8)]),
                        int(4),
                    ]),
                    array(vec![
                        array(vec![int(2), int(3)]),
                        array(vec![int(0), int(1)]),
                        int(2),
                    ]),
                ]),
            ),
            (bulk("len"), int(6)),
        ])
    );
}
