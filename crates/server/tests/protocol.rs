//! The protocol as clients see it: RESP2/RESP3, inline commands, pipelining, protocol errors,
//! unknown commands, arity, authentication.

mod common;

use common::*;

#[test]
fn ping_echo_and_inline_commands() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("PING"), status("PONG"));
    assert_eq!(client.cmd("ping hello"), bulk("hello"));
    assert_eq!(client.cmd("ECHO abc"), bulk("abc"));
    assert_eq!(
        client.cmd("PING a b"),
        error("ERR wrong number of arguments for 'ping' command")
    );
    client.send_raw(b"SET greeting \"hello world\"\r\n");
    assert_eq!(client.read_reply(), ok());
    client.send_raw(b"GET greeting\n");
    assert_eq!(client.read_reply(), bulk("hello world"));
    // An empty inline line is skipped without a reply.
    client.send_raw(b"\r\nPING\r\n");
    assert_eq!(client.read_reply(), status("PONG"));
}

#[test]
fn unknown_commands_and_arity() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("NOSUCHCOMMAND a b"),
        error("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        client.cmd("GET"),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        client.cmd("CONFIG NOSUCH"),
        error("ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.")
    );
    assert_eq!(
        client.cmd("CONFIG GET"),
        error("ERR wrong number of arguments for 'config|get' command")
    );
    // The connection survives user errors.
    assert_eq!(client.cmd("PING"), status("PONG"));
}

#[test]
fn pipelining_thousands_of_commands_in_one_write() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut batch = Vec::new();
    for index in 0..5000 {
        let key = format!("key:{index}");
        batch.extend(RawClient::encode(&[b"SET", key.as_bytes(), key.as_bytes()]));
        batch.extend(RawClient::encode(&[b"GET", key.as_bytes()]));
    }
    client.send_raw(&batch);
    for index in 0..5000 {
        assert_eq!(client.read_reply(), ok());
        assert_eq!(client.read_reply(), bulk(&format!("key:{index}")));
    }
}

#[test]
fn protocol_errors_close_the_connection() {
    let server = TestServer::start(&[]);
    let cases: [(&[u8], &str); 5] = [
        (
            b"*1\r\n+PING\r\n",
            "ERR Protocol error: expected '$', got '+'",
        ),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"SET a \"b\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (
            b"*1\r\n$600000000\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
    ];
    for (input, message) in cases {
        let mut client = server.client();
        client.send_raw(input);
        assert_eq!(client.read_reply(), error(message));
        assert!(client.is_closed(), "connection stays open after {message}");
    }
    // The server is still fine.
    assert_eq!(server.client().cmd("PING"), status("PONG"));
}

#[test]
fn a_bulk_split_over_many_writes_is_reassembled() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let value = vec![b'x'; 1 << 20];
    let request = RawClient::encode(&[b"SET", b"big", &value]);
    for chunk in request.chunks(4093) {
        client.send_raw(chunk);
    }
    assert_eq!(client.read_reply(), ok());
    assert_eq!(client.cmd("GET big"), Reply::Bulk(value));
}

#[test]
fn hello_switches_protocol() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let reply = client.cmd("HELLO 3");
    let Reply::Map(fields) = reply else {
        panic!("HELLO 3 replies with a map: {reply:?}");
    };
    assert_eq!(fields[0], (bulk("server"), bulk("redis")));
    assert_eq!(fields[1], (bulk("version"), bulk("7.2.4")));
    assert_eq!(fields[2], (bulk("proto"), int(3)));
    assert_eq!(client.cmd("GET nosuchkey"), Reply::Null);
    assert_eq!(
        client.cmd("HELLO 4"),
        error("NOPROTO unsupported protocol version")
    );
    assert_eq!(
        client.cmd("HELLO x"),
        error("ERR Protocol version is not an integer or out of range")
    );
    let reply = client.cmd("HELLO 2 SETNAME myname");
    assert!(
        matches!(reply, Reply::Array(ref items) if items.len() == 14),
        "{reply:?}"
    );
    assert_eq!(client.cmd("CLIENT GETNAME"), bulk("myname"));
    assert_eq!(client.cmd("GET nosuchkey"), Reply::Nil);
}

#[test]
fn requirepass_and_auth() {
    let server = TestServer::start(&["--requirepass", "secret"]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("GET a"),
        error("NOAUTH Authentication required.")
    );
    assert_eq!(
        client.cmd("AUTH wrong"),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    // Unauthenticated clients may not send big requests.
    let mut big = server.client();
    big.send_raw(b"*1\r\n$100000\r\n");
    assert_eq!(
        big.read_reply(),
        error("ERR Protocol error: unauthenticated bulk length")
    );
    assert!(big.is_closed());
    assert_eq!(client.cmd("AUTH secret"), ok());
    assert_eq!(client.cmd("SET a 1"), ok());
    let mut other = server.client();
    let reply = other.cmd("HELLO 3 AUTH default secret");
    assert!(matches!(reply, Reply::Map(_)), "{reply:?}");
    assert_eq!(other.cmd("GET a"), bulk("1"));
}

#[test]
fn auth_without_a_password_configured() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("AUTH foo"),
        error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
}

#[test]
fn quit_replies_then_closes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("QUIT"), ok());
    assert!(client.is_closed());
}

#[test]
fn select_and_database_isolation() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET k zero"), ok());
    assert_eq!(client.cmd("SELECT 1"), ok());
    assert_eq!(client.cmd("GET k"), Reply::Nil);
    assert_eq!(
        client.cmd("SELECT 16"),
        error("ERR DB index is out of range")
    );
    assert_eq!(
        client.cmd("SELECT x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("SELECT 0"), ok());
    assert_eq!(client.cmd("GET k"), bulk("zero"));
}

#[test]
fn the_redis_crate_works() {
    let server = TestServer::start(&[]);
    let mut connection = server.redis();
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg(42)
        .query(&mut connection)
        .unwrap();
    let value: i64 = redis::cmd("GET").arg("a").query(&mut connection).unwrap();
    assert_eq!(value, 42);
}
