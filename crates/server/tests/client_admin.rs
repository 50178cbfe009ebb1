//! MONITOR, CLIENT PAUSE / UNPAUSE, CLIENT NO-TOUCH and the CLIENT KILL filters not covered by
//! `clients.rs` (TYPE pubsub, ADDR).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Polls `condition` for up to 20 seconds.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

fn info_field(client: &mut RawClient, name: &str) -> String {
    let info = client.cmd("INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .to_string()
}

/// The `addr=` field of a client's CLIENT INFO: its address as the server sees it.
fn client_address(client: &mut RawClient) -> String {
    let info = client.cmd("CLIENT INFO").text();
    client_field(&info, "addr").to_string()
}

/// A MONITOR line without its timestamp: `[db address] "arg" ...`.
fn monitor_line(monitor: &mut RawClient) -> String {
    let line = monitor.read_reply();
    let Reply::Status(text) = line else {
        panic!("not a monitor line: {line:?}");
    };
    let (time, rest) = text.split_once(' ').expect("time then the rest");
    let (seconds, micros) = time.split_once('.').expect("seconds.micros");
    assert!(
        seconds.parse::<u64>().is_ok() && micros.len() == 6,
        "{time}"
    );
    rest.to_string()
}

#[test]
fn monitor_shows_executed_commands_quoted() {
    let server = TestServer::start(&[]);
    let mut monitor = server.client();
    let mut client = server.client();
    let address = client_address(&mut client);
    assert_eq!(monitor.cmd("MONITOR"), ok());
    assert_eq!(client.call(&[b"SET", b"a b", b"q\"\n\x01"]), ok());
    assert_eq!(client.cmd("GET foo"), Reply::Nil);
    // Rejected and administrative commands are not shown.
    assert_eq!(
        client.cmd("NOSUCH x"),
        error("ERR unknown command 'NOSUCH', with args beginning with: 'x' ")
    );
    assert_eq!(client.cmd("CONFIG GET maxmemory").items().len(), 2);
    assert_eq!(client.cmd("SELECT 2"), ok());
    assert_eq!(client.cmd("AUTH secret"), error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("INCR n"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![int(1)]));
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[0 {address}] \"SET\" \"a b\" \"q\\\"\\n\\x01\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[0 {address}] \"GET\" \"foo\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[2 {address}] \"SELECT\" \"2\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[2 {address}] \"AUTH\" \"(redacted)\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[2 {address}] \"MULTI\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[2 {address}] \"INCR\" \"n\"")
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!("[2 {address}] \"EXEC\"")
    );
}

#[test]
fn monitor_shows_a_blocked_command_once() {
    let server = TestServer::start(&[]);
    let mut monitor = server.client();
    let mut blocked = server.client();
    let mut client = server.client();
    assert_eq!(monitor.cmd("MONITOR"), ok());
    blocked.send(&[b"BLPOP", b"list", b"0"]);
    assert!(eventually(
        || info_field(&mut client, "blocked_clients") == "1"
    ));
    assert_eq!(client.cmd("LPUSH list x"), int(1));
    assert_eq!(blocked.read_reply(), bulks(&["list", "x"]));
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let line = monitor_line(&mut monitor);
        if !line.contains("\"INFO\"") {
            lines.push(line);
        }
    }
    assert!(lines[0].ends_with("\"BLPOP\" \"list\" \"0\""), "{lines:?}");
    assert!(lines[1].ends_with("\"LPUSH\" \"list\" \"x\""), "{lines:?}");
    assert_eq!(client.cmd("PING"), status("PONG"));
    let line = monitor_line(&mut monitor);
    assert!(line.ends_with("\"PING\""), "{line}");
}

#[test]
fn client_pause_write_holds_writes_until_unpause() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    let mut writer = server.client();
    assert_eq!(
        admin.cmd("CLIENT PAUSE 100000 MAYBE"),
        error("ERR CLIENT PAUSE mode must be WRITE or ALL")
    );
    assert_eq!(
        admin.cmd("CLIENT PAUSE abc"),
        error("ERR timeout is not an integer or out of range")
    );
    assert_eq!(
        admin.cmd("CLIENT PAUSE -1"),
        error("ERR timeout is negative")
    );
    assert_eq!(writer.cmd("SET k before"), ok());
    assert_eq!(admin.cmd("CLIENT PAUSE 100000 WRITE"), ok());
    // Reads go on; writes (and PUBLISH) wait.
    assert_eq!(writer.cmd("GET k"), bulk("before"));
    writer.send(&[b"SET", b"k", b"after"]);
    assert!(eventually(
        || info_field(&mut admin, "blocked_clients") == "1"
    ));
    assert_eq!(admin.cmd("GET k"), bulk("before"));
    let mut publisher = server.client();
    publisher.send(&[b"PUBLISH", b"ch", b"m"]);
    assert!(eventually(
        || info_field(&mut admin, "blocked_clients") == "2"
    ));
    // Queuing a write in MULTI is fine; its EXEC waits.
    let mut transaction = server.client();
    assert_eq!(transaction.cmd("MULTI"), ok());
    assert_eq!(transaction.cmd("SET t 1"), status("QUEUED"));
    transaction.send(&[b"EXEC"]);
    assert!(eventually(
        || info_field(&mut admin, "blocked_clients") == "3"
    ));
    assert_eq!(admin.cmd("CLIENT UNPAUSE"), ok());
    assert_eq!(writer.read_reply(), ok());
    assert_eq!(publisher.read_reply(), int(0));
    assert_eq!(transaction.read_reply(), array(vec![ok()]));
    assert_eq!(admin.cmd("GET k"), bulk("after"));
}

#[test]
fn client_pause_all_holds_every_command_until_it_ends() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    let mut reader = server.client();
    let started = Instant::now();
    assert_eq!(admin.cmd("CLIENT PAUSE 300 ALL"), ok());
    assert_eq!(reader.cmd("PING"), status("PONG"));
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[test]
fn no_touch_reads_keep_the_idle_time_but_touch_resets_it() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET k v"), ok());
    assert_eq!(client.cmd("HSET h f v"), int(1));
    // Wait until the keys have been idle for at least two seconds.
    assert!(eventually(|| client.cmd("OBJECT IDLETIME h").integer() >= 2));
    assert_eq!(client.cmd("CLIENT NO-TOUCH ON"), ok());
    assert_eq!(client.cmd("GET k"), bulk("v"));
    assert_eq!(client.cmd("HGET h f"), bulk("v"));
    assert!(client.cmd("OBJECT IDLETIME k").integer() >= 2);
    assert!(client.cmd("OBJECT IDLETIME h").integer() >= 2);
    assert_eq!(client.cmd("TOUCH k"), int(1));
    assert!(client.cmd("OBJECT IDLETIME k").integer() < 2);
    assert_eq!(client.cmd("CLIENT NO-TOUCH OFF"), ok());
    assert_eq!(client.cmd("HGET h f"), bulk("v"));
    assert!(client.cmd("OBJECT IDLETIME h").integer() < 2);
}

#[test]
fn client_kill_by_type_pubsub_and_address() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    let mut subscriber = server.client();
    assert_eq!(
        subscriber.cmd("SUBSCRIBE ch"),
        array(vec![bulk("subscribe"), bulk("ch"), int(1)])
    );
    let mut other = server.client();
    assert_eq!(admin.cmd("CLIENT KILL TYPE pubsub"), int(1));
    assert!(subscriber.is_closed());
    let address = client_address(&mut other);
    assert_eq!(admin.cmd(&format!("CLIENT KILL ADDR {address}")), int(1));
    assert!(other.is_closed());
    assert_eq!(admin.cmd("CLIENT KILL ADDR 1.2.3.4:5"), int(0));
}

#[test]
fn monitor_shows_scripts_then_the_commands_they_run() {
    let server = TestServer::start(&[]);
    let mut monitor = server.client();
    let mut client = server.client();
    let address = client_address(&mut client);
    assert_eq!(monitor.cmd("MONITOR"), ok());
    let script: &[u8] = b"redis.call('set', KEYS[1], ARGV[1])";
    assert_eq!(
        client.call(&[b"EVAL", script, b"1", b"foo", b"bar"]),
        Reply::Nil
    );
    assert_eq!(
        monitor_line(&mut monitor),
        format!(
            "[0 {address}] \"EVAL\" \"redis.call('set', KEYS[1], ARGV[1])\" \"1\" \"foo\" \"bar\""
        )
    );
    assert_eq!(
        monitor_line(&mut monitor),
        "[0 lua] \"set\" \"foo\" \"bar\""
    );
}
