//! Bitmap commands as clients see them: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO, with Redis 7.2's replies and errors (checked against redis-server).

mod common;

use common::*;

const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_BIT: &str = "ERR bit is not an integer or out of range";
const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn arity_error(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn bytes(value: &[u8]) -> Reply {
    Reply::Bulk(value.to_vec())
}

#[test]
fn setbit_and_getbit() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SETBIT b 7 1"), int(0));
    assert_eq!(client.cmd("SETBIT b 7 1"), int(1));
    assert_eq!(client.cmd("GET b"), bytes(b"\x01"));
    assert_eq!(client.cmd("SETBIT b 17 1"), int(0));
    assert_eq!(client.cmd("GET b"), bytes(b"\x01\x00\x40"));
    assert_eq!(client.cmd("SETBIT b 7 0"), int(1));
    assert_eq!(client.cmd("GETBIT b 17"), int(1));
    assert_eq!(client.cmd("GETBIT b 16"), int(0));
    assert_eq!(client.cmd("GETBIT b 100000"), int(0));
    assert_eq!(client.cmd("GETBIT missing 3"), int(0));
    assert_eq!(client.cmd("SETBIT b -1 1"), error(BAD_OFFSET));
    assert_eq!(client.cmd("SETBIT b 4294967296 1"), error(BAD_OFFSET));
    assert_eq!(client.cmd("SETBIT b x 1"), error(BAD_OFFSET));
    assert_eq!(client.cmd("GETBIT b x"), error(BAD_OFFSET));
    assert_eq!(client.cmd("SETBIT b 1 2"), error(BAD_BIT));
    assert_eq!(client.cmd("SETBIT b 1 x"), error(BAD_BIT));
    assert_eq!(client.cmd("SETBIT b 1"), arity_error("setbit"));
    assert_eq!(client.cmd("GETBIT b"), arity_error("getbit"));
    // Integer- and embstr-encoded values are bit strings of their text; writes make them raw.
    assert_eq!(client.cmd("SET n 123"), ok());
    assert_eq!(client.cmd("GETBIT n 2"), int(1));
    assert_eq!(client.cmd("SETBIT n 0 1"), int(0));
    assert_eq!(client.cmd("GET n"), bytes(b"\xb123"));
    assert_eq!(client.cmd("OBJECT ENCODING n"), bulk("raw"));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("SETBIT l 0 1"), error(WRONG_TYPE));
    assert_eq!(client.cmd("GETBIT l 0"), error(WRONG_TYPE));
}

#[test]
fn bitcount_ranges() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET s foobar"), ok());
    assert_eq!(client.cmd("BITCOUNT s"), int(26));
    assert_eq!(client.cmd("BITCOUNT s 0 0"), int(4));
    assert_eq!(client.cmd("BITCOUNT s 1 1"), int(6));
    assert_eq!(client.cmd("BITCOUNT s 1 1 BYTE"), int(6));
    assert_eq!(client.cmd("BITCOUNT s 5 30 BIT"), int(17));
    assert_eq!(client.cmd("BITCOUNT s 0 -1 bit"), int(26));
    assert_eq!(client.cmd("BITCOUNT s -100 100"), int(26));
    assert_eq!(client.cmd("BITCOUNT s 4 2"), int(0));
    // Redis 7.2 reads every argument before anything else.
    assert_eq!(client.cmd("BITCOUNT s -1 -2 nonsense"), error(SYNTAX));
    assert_eq!(client.cmd("BITCOUNT s -1 -2"), int(0));
    assert_eq!(client.cmd("BITCOUNT s 0 -1 nonsense"), error(SYNTAX));
    // Valkey 8's start-only form counts to the end (Redis 7.2 refused it).
    assert_eq!(client.cmd("BITCOUNT s 0"), int(26));
    assert_eq!(client.cmd("BITCOUNT s 1"), int(22));
    assert_eq!(client.cmd("BITCOUNT s 0 1 BIT x"), error(SYNTAX));
    assert_eq!(client.cmd("BITCOUNT s x 1"), error(NOT_INTEGER));
    // A missing key counts 0, but only with valid arguments (Redis 7.2).
    assert_eq!(client.cmd("BITCOUNT missing 0 1"), int(0));
    assert_eq!(client.cmd("BITCOUNT missing x y"), error(NOT_INTEGER));
    assert_eq!(client.cmd("BITCOUNT missing 0 1 hello"), error(SYNTAX));
    assert_eq!(client.cmd("BITCOUNT"), arity_error("bitcount"));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("BITCOUNT l"), error(WRONG_TYPE));
    let long: Vec<u8> = (0..1000u32).map(|index| (index * 7) as u8).collect();
    let expected: i64 = long.iter().map(|byte| byte.count_ones() as i64).sum();
    assert_eq!(client.call(&[b"SET", b"long", &long]), ok());
    assert_eq!(client.cmd("BITCOUNT long"), int(expected));
    let middle: i64 = long[3..=997].iter().map(|b| b.count_ones() as i64).sum();
    assert_eq!(client.cmd("BITCOUNT long 3 -3"), int(middle));
}

#[test]
fn bitpos_searches() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"SET", b"s", b"\xff\xf0\x00"]), ok());
    assert_eq!(client.cmd("BITPOS s 0"), int(12));
    assert_eq!(client.cmd("BITPOS s 1"), int(0));
    assert_eq!(client.cmd("BITPOS s 1 2"), int(-1));
    assert_eq!(client.cmd("BITPOS s 0 2"), int(16));
    assert_eq!(client.cmd("BITPOS s 1 7 15 BIT"), int(7));
    assert_eq!(client.cmd("BITPOS s 0 0 11 BIT"), int(-1));
    assert_eq!(client.call(&[b"SET", b"ones", b"\xff\xff"]), ok());
    // Looking for a 0 without an explicit end finds the first bit past the string.
    assert_eq!(client.cmd("BITPOS ones 0"), int(16));
    assert_eq!(client.cmd("BITPOS ones 0 0"), int(16));
    assert_eq!(client.cmd("BITPOS ones 0 0 -1"), int(-1));
    assert_eq!(client.cmd("BITPOS missing 0"), int(0));
    assert_eq!(client.cmd("BITPOS missing 1"), int(-1));
    // Redis 7.2 checks the range before the key.
    assert_eq!(client.cmd("BITPOS missing 0 x"), error(NOT_INTEGER));
    assert_eq!(client.cmd("BITPOS missing 0 1 2 hello"), error(SYNTAX));
    assert_eq!(client.call(&[b"SET", b"empty", b""]), ok());
    assert_eq!(client.cmd("BITPOS empty 0"), int(-1));
    assert_eq!(
        client.cmd("BITPOS s 2"),
        error("ERR The bit argument must be 1 or 0.")
    );
    assert_eq!(client.cmd("BITPOS s x"), error(NOT_INTEGER));
    assert_eq!(client.cmd("BITPOS s 1 x"), error(NOT_INTEGER));
    assert_eq!(client.cmd("BITPOS s 1 0 1 WORD"), error(SYNTAX));
    assert_eq!(client.cmd("BITPOS s 1 0 1 BIT 5"), error(SYNTAX));
    assert_eq!(client.cmd("BITPOS s"), arity_error("bitpos"));
    let mut long = vec![0u8; 100];
    long[77] = 0x08;
    assert_eq!(client.call(&[b"SET", b"long", &long]), ok());
    assert_eq!(client.cmd("BITPOS long 1"), int(77 * 8 + 4));
    assert_eq!(client.cmd("BITPOS long 1 3 -1"), int(77 * 8 + 4));
    assert_eq!(client.cmd("BITPOS long 1 621 -1 BIT"), int(-1));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("BITPOS l 1"), error(WRONG_TYPE));
}

#[test]
fn bitop_combines() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"SET", b"a", b"\xff\x0f"]), ok());
    assert_eq!(client.call(&[b"SET", b"b", b"\x0f"]), ok());
    assert_eq!(client.cmd("BITOP AND d a b"), int(2));
    assert_eq!(client.cmd("GET d"), bytes(b"\x0f\x00"));
    assert_eq!(client.cmd("BITOP or d a b missing"), int(2));
    assert_eq!(client.cmd("GET d"), bytes(b"\xff\x0f"));
    assert_eq!(client.cmd("BITOP XOR d a b"), int(2));
    assert_eq!(client.cmd("GET d"), bytes(b"\xf0\x0f"));
    assert_eq!(client.cmd("BITOP NOT d a"), int(2));
    assert_eq!(client.cmd("GET d"), bytes(b"\x00\xf0"));
    assert_eq!(client.cmd("OBJECT ENCODING d"), bulk("raw"));
    // The destination loses its expiry; an empty result deletes it.
    assert_eq!(client.cmd("EXPIRE d 100"), int(1));
    assert_eq!(client.cmd("BITOP AND d a"), int(2));
    assert_eq!(client.cmd("TTL d"), int(-1));
    assert_eq!(client.cmd("BITOP OR d missing other"), int(0));
    assert_eq!(client.cmd("EXISTS d"), int(0));
    assert_eq!(
        client.cmd("BITOP NOT d a b"),
        error("ERR BITOP NOT must be called with a single source key.")
    );
    assert_eq!(client.cmd("BITOP NAND d a"), error(SYNTAX));
    assert_eq!(client.cmd("BITOP AND d"), arity_error("bitop"));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("BITOP AND d a l"), error(WRONG_TYPE));
    // The destination's type does not matter: it is replaced.
    assert_eq!(client.cmd("BITOP AND l a"), int(2));
    assert_eq!(client.cmd("TYPE l"), status("string"));
}

#[test]
fn bitfield_operations() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd(
            "BITFIELD f SET i8 0 100 GET i8 0 INCRBY i8 0 100 OVERFLOW SAT INCRBY i8 0 100 \
             OVERFLOW FAIL INCRBY i8 0 100"
        ),
        array(vec![int(0), int(100), int(-56), int(44), Reply::Nil])
    );
    assert_eq!(client.cmd("GET f"), bytes(b"\x2c"));
    assert_eq!(
        client.cmd("BITFIELD f SET u8 #1 -1 GET u8 #1 OVERFLOW SAT SET u4 #0 -1 GET u4 0"),
        array(vec![int(0), int(255), int(2), int(15)])
    );
    assert_eq!(client.cmd("GET f"), bytes(b"\xfc\xff"));
    assert_eq!(
        client.cmd(
            "BITFIELD g SET i64 0 -9223372036854775808 INCRBY i64 0 -1 OVERFLOW SAT \
             INCRBY i64 0 -1 GET u63 1"
        ),
        array(vec![
            int(0),
            int(9223372036854775807),
            int(9223372036854775806),
            int(9223372036854775806),
        ])
    );
    assert_eq!(
        client.cmd("BITFIELD w INCRBY u2 100 1 OVERFLOW WRAP INCRBY u2 100 7"),
        array(vec![int(1), int(0)])
    );
    assert_eq!(client.cmd("STRLEN w"), int(13));
    // Reads past the end are zeros and do not create the key.
    assert_eq!(
        client.cmd("BITFIELD missing GET u8 0 GET i5 100"),
        array(vec![int(0), int(0)])
    );
    assert_eq!(client.cmd("EXISTS missing"), int(0));
    assert_eq!(client.cmd("BITFIELD f"), array(vec![]));
    assert_eq!(client.cmd("BITFIELD f GET u64 0"), error(BAD_TYPE));
    assert_eq!(client.cmd("BITFIELD f GET i65 0"), error(BAD_TYPE));
    assert_eq!(client.cmd("BITFIELD f GET i0 0"), error(BAD_TYPE));
    assert_eq!(client.cmd("BITFIELD f GET x8 0"), error(BAD_TYPE));
    assert_eq!(client.cmd("BITFIELD f GET i8 -1"), error(BAD_OFFSET));
    assert_eq!(client.cmd("BITFIELD f GET i8 #x"), error(BAD_OFFSET));
    assert_eq!(
        client.cmd("BITFIELD f GET i8 4294967296"),
        error(BAD_OFFSET)
    );
    assert_eq!(client.cmd("BITFIELD f SET i8 0 x"), error(NOT_INTEGER));
    assert_eq!(
        client.cmd("BITFIELD f OVERFLOW maybe"),
        error("ERR Invalid OVERFLOW type specified")
    );
    assert_eq!(client.cmd("BITFIELD f FOO"), error(SYNTAX));
    assert_eq!(client.cmd("BITFIELD f GET i8"), error(SYNTAX));
    assert_eq!(client.cmd("BITFIELD"), arity_error("bitfield"));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("BITFIELD l GET u8 0"), error(WRONG_TYPE));
    assert_eq!(client.cmd("BITFIELD l SET u8 0 1"), error(WRONG_TYPE));
}

#[test]
fn bitfield_read_only() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"SET", b"f", b"\x2c\xff"]), ok());
    assert_eq!(
        client.cmd("BITFIELD_RO f GET i8 0 GET u4 #3 OVERFLOW FAIL"),
        array(vec![int(44), int(15)])
    );
    assert_eq!(
        client.cmd("BITFIELD_RO f GET i8 0 SET i8 0 1"),
        error("ERR BITFIELD_RO only supports the GET subcommand")
    );
    assert_eq!(client.cmd("BITFIELD_RO f GET i8 0 FOO"), error(SYNTAX));
    assert_eq!(client.cmd("GET f"), bytes(b"\x2c\xff"));
    assert_eq!(client.cmd("BITFIELD_RO"), arity_error("bitfield_ro"));
}
