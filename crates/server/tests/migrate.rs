//! MIGRATE between two servers: keys move (or are copied) with their values and time to live,
//! the target's errors and an unreachable target are reported as Redis reports them.

mod common;

use common::*;

fn migrate(source: &mut RawClient, target_port: u16, tail: &[&str]) -> Reply {
    let port = target_port.to_string();
    let mut args: Vec<&[u8]> = vec![b"MIGRATE", b"127.0.0.1", port.as_bytes()];
    args.extend(tail.iter().map(|arg| arg.as_bytes()));
    source.call(&args)
}

#[test]
fn keys_move_with_their_values_and_ttl() {
    let source_server = TestServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let target_server = TestServer::start(&[]);
    let mut source = source_server.client();
    let mut target = target_server.client();
    let port = target_server.port;
    assert_eq!(source.cmd("RPUSH queue a b c"), int(3));
    assert_eq!(source.cmd("SET session token PX 100000"), ok());
    assert_eq!(migrate(&mut source, port, &["queue", "0", "5000"]), ok());
    assert_eq!(source.cmd("EXISTS queue"), int(0));
    assert_eq!(target.cmd("LRANGE queue 0 -1"), bulks(&["a", "b", "c"]));
    // The move reaches the AOF (and replicas) as a DEL of the moved keys.
    let aof_directory = source_server.dir.join("appendonlydir");
    let mut appended = Vec::new();
    for file in std::fs::read_dir(&aof_directory).expect("appendonlydir") {
        let path = file.expect("entry").path();
        if path.to_string_lossy().ends_with(".incr.aof") {
            appended.extend(std::fs::read(&path).expect("incr file"));
        }
    }
    let deletion: &[u8] = b"*2\r\n$3\r\nDEL\r\n$5\r\nqueue\r\n";
    assert!(
        appended
            .windows(deletion.len())
            .any(|window| window == deletion),
        "{}",
        String::from_utf8_lossy(&appended)
    );
    // COPY keeps the source's key; the time to live travels.
    assert_eq!(
        migrate(&mut source, port, &["session", "3", "5000", "COPY"]),
        ok()
    );
    assert_eq!(source.cmd("GET session"), bulk("token"));
    assert_eq!(target.cmd("SELECT 3"), ok());
    assert_eq!(target.cmd("GET session"), bulk("token"));
    let ttl = target.cmd("PTTL session").integer();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    // An existing target key is an error unless REPLACE is given.
    assert_eq!(
        migrate(&mut source, port, &["session", "3", "5000", "COPY"]),
        error("ERR Target instance replied with error: BUSYKEY Target key name already exists.")
    );
    assert_eq!(source.cmd("SET session other"), ok());
    assert_eq!(
        migrate(&mut source, port, &["session", "3", "5000", "REPLACE"]),
        ok()
    );
    assert_eq!(target.cmd("GET session"), bulk("other"));
    assert_eq!(source.cmd("EXISTS session"), int(0));
    // Several keys with KEYS; missing ones are skipped, all missing is NOKEY.
    assert_eq!(source.cmd("MSET k1 v1 k2 v2"), ok());
    assert_eq!(
        migrate(
            &mut source,
            port,
            &["", "0", "5000", "KEYS", "k1", "nosuch", "k2"]
        ),
        ok()
    );
    assert_eq!(source.cmd("EXISTS k1 k2"), int(0));
    assert_eq!(target.cmd("SELECT 0"), ok());
    assert_eq!(target.cmd("MGET k1 k2"), bulks(&["v1", "v2"]));
    assert_eq!(
        migrate(&mut source, port, &["nosuch", "0", "5000"]),
        status("NOKEY")
    );
    assert_eq!(
        migrate(&mut source, port, &["k1", "0", "5000", "KEYS", "k2"]),
        error(
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
        )
    );
    assert_eq!(
        migrate(&mut source, port, &["k1", "0", "5000", "BOGUS"]),
        error("ERR syntax error")
    );
}

#[test]
fn target_authentication_and_failures() {
    let source_server = TestServer::start(&[]);
    let target_server = TestServer::start(&["--requirepass", "secret"]);
    let mut source = source_server.client();
    let port = target_server.port;
    assert_eq!(source.cmd("SET key value"), ok());
    assert_eq!(
        migrate(&mut source, port, &["key", "0", "5000"]),
        error("ERR Target instance replied with error: NOAUTH Authentication required.")
    );
    assert_eq!(source.cmd("EXISTS key"), int(1));
    assert_eq!(
        migrate(&mut source, port, &["key", "0", "5000", "AUTH", "wrong"]),
        error("ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        migrate(
            &mut source,
            port,
            &["key", "0", "5000", "AUTH2", "default", "secret"]
        ),
        ok()
    );
    let mut target = target_server.client();
    assert_eq!(target.cmd("AUTH secret"), ok());
    assert_eq!(target.cmd("GET key"), bulk("value"));
    // Nothing listens on a port just released.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    assert_eq!(source.cmd("SET other value"), ok());
    assert_eq!(
        migrate(&mut source, closed_port, &["other", "0", "1000"]),
        error("IOERR error or timeout connecting to the client")
    );
    assert_eq!(source.cmd("EXISTS other"), int(1));
    // The keys of MIGRATE ... KEYS are those after KEYS (AUTH2's values are not keys).
    assert_eq!(
        source.call(&[
            b"COMMAND", b"GETKEYS", b"MIGRATE", b"host", b"1", b"", b"0", b"5000", b"AUTH2",
            b"KEYS", b"p", b"KEYS", b"a", b"b"
        ]),
        bulks(&["a", "b"])
    );
}
