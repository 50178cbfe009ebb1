//! Expiry: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT and their NX/XX/GT/LT conditions, TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME, PERSIST; lazy and active expiry.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Waits until `condition` holds, failing after a generous deadline.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server's clock in Unix milliseconds.
fn server_time_ms(client: &mut RawClient) -> i64 {
    let time = client.cmd("TIME").items();
    let seconds: i64 = time[0].text().parse().expect("seconds");
    let microseconds: i64 = time[1].text().parse().expect("microseconds");
    seconds * 1000 + microseconds / 1000
}

fn arity(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn in_range(reply: Reply, range: std::ops::RangeInclusive<i64>) -> bool {
    range.contains(&reply.integer())
}

#[test]
fn expire_sets_and_ttl_reports() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET x foobar"), ok());
    assert_eq!(client.cmd("EXPIRE x 5"), int(1));
    assert!(in_range(client.cmd("TTL x"), 4..=5));
    assert_eq!(client.cmd("EXPIRE x 10"), int(1));
    assert_eq!(client.cmd("TTL x"), int(10));
    assert!(in_range(client.cmd("PTTL x"), 9000..=10000));
    assert_eq!(client.cmd("GET x"), bulk("foobar"));
    // EXPIRETIME and PEXPIRETIME are absolute; EXPIRETIME rounds to the nearest second.
    let at_ms = client.cmd("PEXPIRETIME x").integer();
    let now_ms = server_time_ms(&mut client);
    assert!((now_ms + 9000..=now_ms + 10000).contains(&at_ms));
    assert_eq!(client.cmd("EXPIRETIME x"), int((at_ms + 500) / 1000));
    // Milliseconds.
    assert_eq!(client.cmd("PEXPIRE x 100000"), int(1));
    assert!(in_range(client.cmd("PTTL x"), 99000..=100000));
    assert_eq!(client.cmd("TTL x"), int(100));
    // Absolute times.
    let in_a_minute = (now_ms / 1000 + 60).to_string();
    assert_eq!(
        client.call(&[b"EXPIREAT", b"x", in_a_minute.as_bytes()]),
        int(1)
    );
    assert_eq!(
        client.cmd("EXPIRETIME x"),
        int(in_a_minute.parse().expect("time"))
    );
    assert!(in_range(client.cmd("TTL x"), 58..=60));
    assert_eq!(client.cmd("PEXPIREAT x 99999999999999"), int(1));
    assert_eq!(client.cmd("PEXPIRETIME x"), int(99999999999999));
    assert_eq!(client.cmd("EXPIRETIME x"), int(100000000000));
    // Rounding of TTL: (ms + 500) / 1000.
    assert_eq!(client.cmd("PEXPIRE x 1600"), int(1));
    assert_eq!(client.cmd("TTL x"), int(2));
}

#[test]
fn ttl_family_without_key_or_expiry() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(client.call(&[command.as_bytes(), b"nosuch"]), int(-2));
    }
    assert_eq!(client.cmd("SET x hello"), ok());
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(client.call(&[command.as_bytes(), b"x"]), int(-1));
        assert_eq!(
            client.call(&[command.as_bytes()]),
            arity(&command.to_lowercase())
        );
        assert_eq!(
            client.call(&[command.as_bytes(), b"x", b"y"]),
            arity(&command.to_lowercase())
        );
    }
}

#[test]
fn expire_on_missing_keys() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for command in ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"] {
        assert_eq!(client.call(&[command.as_bytes(), b"none", b"100"]), int(0));
        for option in ["NX", "XX", "GT", "LT"] {
            assert_eq!(
                client.call(&[command.as_bytes(), b"none", b"100", option.as_bytes()]),
                int(0)
            );
        }
        // Even a time in the past creates nothing.
        assert_eq!(client.call(&[command.as_bytes(), b"none", b"-1"]), int(0));
        assert_eq!(
            client.call(&[command.as_bytes(), b"none"]),
            arity(&command.to_lowercase())
        );
    }
    assert_eq!(client.cmd("EXISTS none"), int(0));
}

#[test]
fn expire_conditions() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let with_ttl = |client: &mut RawClient, seconds: &str| {
        assert_eq!(client.cmd("SET foo bar"), ok());
        assert_eq!(
            client.call(&[b"EXPIRE", b"foo", seconds.as_bytes()]),
            int(1)
        );
    };
    // NX
    with_ttl(&mut client, "100");
    assert_eq!(client.cmd("EXPIRE foo 200 NX"), int(0));
    assert!(in_range(client.cmd("TTL foo"), 99..=100));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 200 nx"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 199..=200));
    // XX
    with_ttl(&mut client, "100");
    assert_eq!(client.cmd("EXPIRE foo 200 XX"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 199..=200));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 200 XX"), int(0));
    assert_eq!(client.cmd("TTL foo"), int(-1));
    // GT: no expiry counts as infinite.
    with_ttl(&mut client, "100");
    assert_eq!(client.cmd("EXPIRE foo 200 GT"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 199..=200));
    assert_eq!(client.cmd("EXPIRE foo 100 GT"), int(0));
    assert!(in_range(client.cmd("TTL foo"), 199..=200));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 200 GT"), int(0));
    assert_eq!(client.cmd("TTL foo"), int(-1));
    // LT
    with_ttl(&mut client, "100");
    assert_eq!(client.cmd("EXPIRE foo 200 LT"), int(0));
    assert!(in_range(client.cmd("TTL foo"), 99..=100));
    assert_eq!(client.cmd("EXPIRE foo 50 LT"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 49..=50));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 100 LT"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 99..=100));
    // An equal expiry is neither greater nor less.
    assert_eq!(client.cmd("PEXPIREAT foo 99999999999999"), int(1));
    assert_eq!(client.cmd("PEXPIREAT foo 99999999999999 GT"), int(0));
    assert_eq!(client.cmd("PEXPIREAT foo 99999999999999 LT"), int(0));
    // LT with XX.
    with_ttl(&mut client, "200");
    assert_eq!(client.cmd("EXPIRE foo 100 LT XX"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 99..=100));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 200 LT XX"), int(0));
    assert_eq!(client.cmd("TTL foo"), int(-1));
    // GT with XX, options repeated.
    with_ttl(&mut client, "100");
    assert_eq!(client.cmd("EXPIRE foo 300 xx gt GT"), int(1));
    assert!(in_range(client.cmd("TTL foo"), 299..=300));
}

#[test]
fn expire_option_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET foo bar"), ok());
    let nx_conflict = error("ERR NX and XX, GT or LT options at the same time are not compatible");
    let gt_lt = error("ERR GT and LT options at the same time are not compatible");
    assert_eq!(client.cmd("EXPIRE foo 200 LT GT"), gt_lt);
    assert_eq!(client.cmd("PEXPIRE foo 200 gt lt"), gt_lt);
    assert_eq!(client.cmd("EXPIRE foo 200 NX GT"), nx_conflict);
    assert_eq!(client.cmd("EXPIRE foo 200 NX LT"), nx_conflict);
    assert_eq!(client.cmd("EXPIREAT foo 200 NX XX"), nx_conflict);
    assert_eq!(client.cmd("PEXPIREAT foo 200 XX NX"), nx_conflict);
    // NX with GT and LT reports NX's conflict first.
    assert_eq!(client.cmd("EXPIRE foo 200 NX GT LT"), nx_conflict);
    assert_eq!(
        client.cmd("EXPIRE foo 200 AB"),
        error("ERR Unsupported option AB")
    );
    assert_eq!(
        client.cmd("EXPIRE foo 200 XX AB"),
        error("ERR Unsupported option AB")
    );
    // Options are read before the time.
    assert_eq!(
        client.cmd("EXPIRE foo notanumber AB"),
        error("ERR Unsupported option AB")
    );
    assert_eq!(
        client.cmd("EXPIRE foo notanumber"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.call(&[b"EXPIRE", b"foo", b""]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("EXPIRE foo 1.5"),
        error("ERR value is not an integer or out of range")
    );
    // Nothing changed.
    assert_eq!(client.cmd("TTL foo"), int(-1));
}

#[test]
fn expire_overflows_are_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET foo bar"), ok());
    let invalid = |command: &str| error(&format!("ERR invalid expire time in '{command}' command"));
    // when > LLONG_MAX - basetime
    assert_eq!(client.cmd("EXPIRE foo 9223370399119966"), invalid("expire"));
    // when > LLONG_MAX / 1000
    assert_eq!(client.cmd("EXPIRE foo 9223372036854776"), invalid("expire"));
    assert_eq!(
        client.cmd("EXPIRE foo 10000000000000000"),
        invalid("expire")
    );
    assert_eq!(
        client.cmd("EXPIRE foo 18446744073709561"),
        invalid("expire")
    );
    // when < LLONG_MIN / 1000
    assert_eq!(
        client.cmd("EXPIRE foo -9223372036854776"),
        invalid("expire")
    );
    assert_eq!(
        client.cmd("EXPIRE foo -9999999999999999"),
        invalid("expire")
    );
    assert_eq!(
        client.cmd("PEXPIRE foo 9223372036854770000"),
        invalid("pexpire")
    );
    assert_eq!(
        client.cmd("EXPIREAT foo 9223372036854776"),
        invalid("expireat")
    );
    assert_eq!(
        client.cmd("EXPIREAT foo -9223372036854776"),
        invalid("expireat")
    );
    assert_eq!(client.cmd("TTL foo"), int(-1));
    // Absolute milliseconds cannot overflow.
    assert_eq!(client.cmd("PEXPIREAT foo 9223372036854770000"), int(1));
    assert_eq!(client.cmd("PEXPIRETIME foo"), int(9223372036854770000));
    assert_eq!(client.cmd("PEXPIREAT foo 9223372036854775807"), int(1));
    assert_eq!(client.cmd("PEXPIRETIME foo"), int(9223372036854775807));
}

#[test]
fn a_time_in_the_past_deletes_the_key() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for (command, time) in [
        ("EXPIRE", "0"),
        ("EXPIRE", "-10"),
        ("PEXPIRE", "0"),
        ("PEXPIRE", "-1"),
        ("EXPIREAT", "1"),
        ("EXPIREAT", "-100"),
        ("PEXPIREAT", "1"),
        ("PEXPIREAT", "-9223372036854770000"),
    ] {
        assert_eq!(client.cmd("SET foo bar"), ok());
        assert_eq!(
            client.call(&[command.as_bytes(), b"foo", time.as_bytes()]),
            int(1),
            "{command} {time}"
        );
        assert_eq!(client.cmd("TTL foo"), int(-2), "{command} {time}");
        assert_eq!(client.cmd("EXISTS foo"), int(0));
    }
    // With LT, a key with or without an expiry.
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 100"), int(1));
    assert_eq!(client.cmd("EXPIRE foo -10 LT"), int(1));
    assert_eq!(client.cmd("TTL foo"), int(-2));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo -10 LT"), int(1));
    assert_eq!(client.cmd("TTL foo"), int(-2));
    // Conditions still apply.
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo -10 XX"), int(0));
    assert_eq!(client.cmd("EXPIRE foo -10 GT"), int(0));
    assert_eq!(client.cmd("GET foo"), bulk("bar"));
}

#[test]
fn keys_expire_lazily_when_read() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET x somevalue"), ok());
    assert_eq!(client.cmd("PEXPIRE x 50"), int(1));
    assert_eq!(client.cmd("GET x"), bulk("somevalue"));
    wait_until("x to expire", || client.cmd("EXISTS x") == int(0));
    assert_eq!(client.cmd("GET x"), Reply::Nil);
    assert_eq!(client.cmd("TTL x"), int(-2));
    assert_eq!(client.cmd("PTTL x"), int(-2));
    assert_eq!(client.cmd("TYPE x"), status("none"));
    assert_eq!(client.cmd("DEL x"), int(0));
}

#[test]
fn expire_does_not_resurrect_keys() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET foo bar"), ok());
    let expire_at = server_time_ms(&mut client) + 30;
    let expire_at_text = expire_at.to_string();
    assert_eq!(
        client.call(&[b"PEXPIREAT", b"foo", expire_at_text.as_bytes()]),
        int(1)
    );
    wait_until("the expiry to pass", || {
        server_time_ms(&mut client) > expire_at
    });
    assert_eq!(client.cmd("EXPIRE foo 10"), int(0));
    assert_eq!(client.cmd("PERSIST foo"), int(0));
    assert_eq!(client.cmd("EXISTS foo"), int(0));
}

#[test]
fn keys_nobody_reads_expire_actively() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for index in 0..100 {
        let key = format!("volatile:{index}");
        assert_eq!(client.call(&[b"SET", key.as_bytes(), b"v"]), ok());
        assert_eq!(client.call(&[b"PEXPIRE", key.as_bytes(), b"100"]), int(1));
    }
    assert_eq!(client.cmd("SET persistent v"), ok());
    assert_eq!(client.cmd("DBSIZE"), int(101));
    // DBSIZE counts keys without looking them up, so only active expiry can bring it down.
    wait_until("active expiry", || client.cmd("DBSIZE") == int(1));
    assert_eq!(client.cmd("GET persistent"), bulk("v"));
}

#[test]
fn persist_removes_the_expiry() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET x foo"), ok());
    assert_eq!(client.cmd("EXPIRE x 50"), int(1));
    assert_eq!(client.cmd("TTL x"), int(50));
    assert_eq!(client.cmd("PERSIST x"), int(1));
    assert_eq!(client.cmd("TTL x"), int(-1));
    assert_eq!(client.cmd("GET x"), bulk("foo"));
    assert_eq!(client.cmd("PERSIST x"), int(0));
    assert_eq!(client.cmd("PERSIST nokeyatall"), int(0));
    assert_eq!(client.cmd("PERSIST"), arity("persist"));
    assert_eq!(client.cmd("PERSIST a b"), arity("persist"));
    // A persisted key no longer expires.
    assert_eq!(client.cmd("PEXPIRE x 20"), int(1));
    assert_eq!(client.cmd("PERSIST x"), int(1));
    let deadline = server_time_ms(&mut client) + 50;
    wait_until("the old expiry to pass", || {
        server_time_ms(&mut client) > deadline
    });
    assert_eq!(client.cmd("GET x"), bulk("foo"));
}

#[test]
fn set_without_options_clears_the_expiry() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("EXPIRE foo 100"), int(1));
    assert_eq!(client.cmd("SET foo bar"), ok());
    assert_eq!(client.cmd("TTL foo"), int(-1));
}

#[test]
fn expiry_in_other_databases() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET k zero"), ok());
    assert_eq!(client.cmd("SELECT 5"), ok());
    assert_eq!(client.cmd("SET k five"), ok());
    assert_eq!(client.cmd("PEXPIRE k 30"), int(1));
    assert_eq!(client.cmd("SELECT 0"), ok());
    assert_eq!(client.cmd("TTL k"), int(-1));
    assert_eq!(client.cmd("SELECT 5"), ok());
    wait_until("the key in database 5 to expire", || {
        client.cmd("EXISTS k") == int(0)
    });
    assert_eq!(client.cmd("SELECT 0"), ok());
    assert_eq!(client.cmd("GET k"), bulk("zero"));
}
