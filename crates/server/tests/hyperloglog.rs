//! HyperLogLog commands as clients see them: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, in
//! Redis's exact representation (the bytes a value holds are the bytes Redis would hold).

mod common;

use common::*;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn arity_error(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn bytes_of(reply: Reply) -> Vec<u8> {
    match reply {
        Reply::Bulk(bytes) => bytes,
        other => panic!("not a bulk reply: {other:?}"),
    }
}

#[test]
fn pfadd_and_pfcount() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("PFADD h"), int(1));
    assert_eq!(client.cmd("PFADD h"), int(0));
    assert_eq!(
        bytes_of(client.cmd("GET h")),
        b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
    );
    assert_eq!(client.cmd("PFDEBUG DECODE h"), bulk("Z:16384"));
    assert_eq!(client.cmd("PFADD h a b c d e f g"), int(1));
    assert_eq!(client.cmd("PFADD h a b"), int(0));
    // A stale cached cardinality has the top bit of the header's last byte set.
    assert_eq!(bytes_of(client.cmd("GETRANGE h 15 15")), b"\x80");
    assert_eq!(client.cmd("PFCOUNT h"), int(7));
    assert_eq!(
        bytes_of(client.cmd("GETRANGE h 8 15")),
        b"\x07\0\0\0\0\0\0\0"
    );
    assert_eq!(client.cmd("PFDEBUG ENCODING h"), status("sparse"));
    assert_eq!(client.cmd("PFCOUNT missing"), int(0));
    assert_eq!(client.cmd("PFADD"), arity_error("pfadd"));
    assert_eq!(client.cmd("PFCOUNT"), arity_error("pfcount"));
    let mut elements: Vec<Vec<u8>> = vec![b"PFADD".to_vec(), b"big".to_vec()];
    elements.extend((0..10_000).map(|index| format!("element:{index}").into_bytes()));
    let args: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&args), int(1));
    let estimate = client.cmd("PFCOUNT big").integer();
    assert!((9_700..10_300).contains(&estimate), "{estimate}");
    assert_eq!(client.cmd("PFDEBUG ENCODING big"), status("dense"));
    assert_eq!(client.cmd("STRLEN big"), int(12304));
}

#[test]
fn sparse_limit_promotes_to_dense() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG SET hll-sparse-max-bytes 30"), ok());
    assert_eq!(
        client.cmd("PFADD h a b c d e f g h i j k l m n o p"),
        int(1)
    );
    assert_eq!(client.cmd("PFDEBUG ENCODING h"), status("dense"));
    assert_eq!(client.cmd("PFCOUNT h"), int(16));
}

#[test]
fn pfcount_of_several_keys_and_pfmerge() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("PFADD a 1 2 3 4 5"), int(1));
    assert_eq!(client.cmd("PFADD b 4 5 6 7"), int(1));
    assert_eq!(client.cmd("PFCOUNT a b missing"), int(7));
    // The union does not touch the sources' caches.
    assert_eq!(bytes_of(client.cmd("GETRANGE a 15 15")), b"\x80");
    assert_eq!(client.cmd("PFMERGE d a b"), ok());
    assert_eq!(client.cmd("PFCOUNT d"), int(7));
    assert_eq!(client.cmd("PFMERGE d"), ok());
    assert_eq!(client.cmd("PFCOUNT d"), int(7));
    assert_eq!(client.cmd("PFMERGE empty missing"), ok());
    assert_eq!(client.cmd("PFCOUNT empty"), int(0));
    assert_eq!(client.cmd("PFDEBUG TODENSE b"), int(1));
    assert_eq!(client.cmd("PFDEBUG TODENSE b"), int(0));
    assert_eq!(client.cmd("PFMERGE e a b"), ok());
    assert_eq!(client.cmd("PFDEBUG ENCODING e"), status("dense"));
    assert_eq!(client.cmd("PFCOUNT e"), int(7));
    assert_eq!(client.cmd("PFMERGE"), arity_error("pfmerge"));
}

#[test]
fn invalid_values_are_refused() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET s foo"), ok());
    assert_eq!(client.cmd("PFADD s a"), error(NOT_HLL));
    assert_eq!(client.cmd("PFCOUNT s"), error(NOT_HLL));
    assert_eq!(client.cmd("PFCOUNT s missing"), error(NOT_HLL));
    assert_eq!(client.cmd("PFMERGE d s"), error(NOT_HLL));
    assert_eq!(client.cmd("SET n 12345678901234567"), ok());
    assert_eq!(client.cmd("PFADD n a"), error(NOT_HLL));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("PFADD l a"), error(WRONG_TYPE));
    assert_eq!(client.cmd("PFCOUNT l"), error(WRONG_TYPE));
    // A dense value of the wrong length is not a HyperLogLog.
    assert_eq!(client.cmd("PFADD h a"), int(1));
    assert_eq!(client.cmd("PFDEBUG TODENSE h"), int(1));
    assert_eq!(client.cmd("APPEND h x"), int(12305));
    assert_eq!(client.cmd("PFCOUNT h"), error(NOT_HLL));
    // Sparse registers that do not add up to 16384 are corrupt.
    assert_eq!(client.cmd("PFADD c a b c"), int(1));
    assert_eq!(client.cmd("APPEND c hello"), int(32));
    assert_eq!(client.cmd("PFCOUNT c"), error(CORRUPT));
    assert_eq!(client.cmd("PFCOUNT h c"), error(NOT_HLL));
    assert_eq!(client.cmd("PFCOUNT c c"), error(CORRUPT));
    assert_eq!(client.cmd("PFDEBUG TODENSE c"), error(CORRUPT));
    // Registers before the damage still update, as in Redis.
    assert_eq!(client.cmd("PFADD c zzz"), int(1));
    // Random damage is detected or tolerated, never a crash.
    for round in 0..200u32 {
        client.cmd("DEL f");
        assert_eq!(client.cmd("PFADD f 1 2 3 4 5 6 7 8 9 10"), int(1));
        let length = bytes_of(client.cmd("GET f")).len() as u32;
        let offset = 16 + round * 7 % (length - 16);
        let byte = [(round * 37 % 256) as u8];
        client.call(&[b"SETRANGE", b"f", offset.to_string().as_bytes(), &byte]);
        let reply = client.cmd("PFADD f x y z");
        assert!(
            matches!(&reply, Reply::Integer(_)) || reply == error(CORRUPT),
            "{reply:?}"
        );
        let reply = client.cmd("PFCOUNT f");
        assert!(
            matches!(&reply, Reply::Integer(_)) || reply == error(CORRUPT),
            "{reply:?}"
        );
    }
    assert_eq!(client.cmd("PING"), status("PONG"));
}

#[test]
fn pfdebug_and_pfselftest() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("PFDEBUG GETREG missing"),
        error("ERR The specified key does not exist")
    );
    assert_eq!(client.cmd("PFADD h a"), int(1));
    assert_eq!(
        client.cmd("PFDEBUG FOO h"),
        error("ERR Unknown PFDEBUG subcommand 'FOO'")
    );
    let registers = client.cmd("PFDEBUG GETREG h").items();
    assert_eq!(registers.len(), 16384);
    let set: Vec<&Reply> = registers.iter().filter(|r| **r != int(0)).collect();
    assert_eq!(set.len(), 1);
    // GETREG converted the value to dense.
    assert_eq!(client.cmd("PFDEBUG ENCODING h"), status("dense"));
    assert_eq!(
        client.cmd("PFDEBUG DECODE h"),
        error("ERR HLL encoding is not sparse")
    );
    assert_eq!(client.cmd("PFDEBUG GETREG"), arity_error("pfdebug"));
    assert_eq!(client.cmd("PFSELFTEST"), ok());
}
