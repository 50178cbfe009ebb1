//! CLIENT subcommands, idle timeouts and connection limits, with Redis 7.2's replies.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The `field=value` pairs of a CLIENT LIST line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("field=value");
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn field(line: &str, name: &str) -> String {
    fields(line)
        .into_iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// Polls `condition` until it holds or five seconds pass.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn client_list_layout() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let id = client.cmd("CLIENT ID").integer();
    let info = client.cmd("CLIENT INFO").text();
    assert!(info.ends_with('\n') && !info.ends_with("\r\n"));
    let line = info.trim_end();
    let names: Vec<String> = fields(line).into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "watch",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp",
            "lib-name",
            "lib-ver",
            "tot-net-in",
            "tot-net-out",
            "tot-cmds"
        ]
    );
    assert_eq!(field(line, "id"), id.to_string());
    assert!(field(line, "addr").starts_with("127.0.0.1:"));
    assert_eq!(field(line, "laddr"), format!("127.0.0.1:{}", server.port));
    assert_eq!(field(line, "name"), "");
    assert_eq!(field(line, "flags"), "N");
    assert_eq!(field(line, "db"), "0");
    assert_eq!(field(line, "multi"), "-1");
    assert_eq!(field(line, "qbuf"), "0");
    assert_eq!(field(line, "argv-mem"), "10");
    assert_eq!(field(line, "events"), "r");
    assert_eq!(field(line, "cmd"), "client|info");
    assert_eq!(field(line, "user"), "default");
    assert_eq!(field(line, "redir"), "-1");
    assert_eq!(field(line, "resp"), "2");
    assert_eq!(field(line, "tot-cmds"), "1");
    // CLIENT INFO is 26 bytes: each call adds them to tot-net-in.
    let next = client.cmd("CLIENT INFO").text().trim_end().to_string();
    let input = |line: &str| field(line, "tot-net-in").parse::<u64>().unwrap();
    assert_eq!(input(&next), input(line) + 26);
    assert_eq!(field(&next, "tot-cmds"), "2");
    assert!(field(&next, "tot-net-out").parse::<u64>().unwrap() > 300);
    // A script's commands count for the client running it: EVAL, PING, then CLIENT INFO.
    assert_eq!(
        client.call(&[b"EVAL", b"return redis.call('ping')", b"0"]),
        status("PONG")
    );
    let after_script = client.cmd("CLIENT INFO").text();
    assert_eq!(field(after_script.trim_end(), "tot-cmds"), "5");

    let mut other = server.client();
    other.cmd("SELECT 2");
    other.cmd("CLIENT SETNAME worker");
    let other_id = other.cmd("CLIENT ID").integer();
    // The start-up probe's connection may still be closing: wait until only these two remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client
        .cmd("INFO clients")
        .text()
        .contains("connected_clients:2\r\n")
    {
        assert!(Instant::now() < deadline, "never 2 clients");
    }
    let list = client.cmd("CLIENT LIST").text();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(list.ends_with('\n'));
    let other_line = lines
        .iter()
        .find(|line| line.starts_with(&format!("id={other_id} ")))
        .unwrap();
    assert_eq!(field(other_line, "name"), "worker");
    assert_eq!(field(other_line, "db"), "2");
    assert_eq!(field(other_line, "cmd"), "client|id");
    assert_eq!(field(other_line, "argv-mem"), "0");
    let by_id = client
        .cmd(&format!("CLIENT LIST ID {other_id} 999999"))
        .text();
    assert_eq!(by_id.lines().count(), 1);
    assert!(by_id.starts_with(&format!("id={other_id} ")));
    assert_eq!(
        client.cmd("CLIENT LIST TYPE normal").text().lines().count(),
        2
    );
    assert_eq!(client.cmd("CLIENT LIST TYPE pubsub").text(), "");
    assert_eq!(client.cmd("CLIENT LIST TYPE master").text(), "");
    assert_eq!(
        client.cmd("CLIENT LIST TYPE nosuch"),
        error("ERR Unknown client type 'nosuch'")
    );
    assert_eq!(
        client.cmd("CLIENT LIST ID abc"),
        error("ERR Invalid client ID")
    );
    assert_eq!(client.cmd("CLIENT LIST bad"), error("ERR syntax error"));
    assert_eq!(client.cmd("CLIENT LIST TYPE"), error("ERR syntax error"));
    client.cmd("HELLO 3");
    assert!(matches!(client.cmd("CLIENT INFO"), Reply::Verbatim(format, _) if format == "txt"));
}

#[test]
fn client_names_and_library_info() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CLIENT GETNAME"), Reply::Nil);
    assert_eq!(client.cmd("CLIENT SETNAME myname"), ok());
    assert_eq!(client.cmd("CLIENT GETNAME"), bulk("myname"));
    assert_eq!(
        client.call(&[b"CLIENT", b"SETNAME", b"foo bar"]),
        error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(client.call(&[b"CLIENT", b"SETNAME", b""]), ok());
    assert_eq!(client.cmd("CLIENT GETNAME"), Reply::Nil);
    assert_eq!(client.cmd("CLIENT SETINFO lib-name redis.py"), ok());
    assert_eq!(client.cmd("CLIENT SETINFO LIB-VER 1.2.3"), ok());
    let info = client.cmd("CLIENT INFO").text();
    assert!(info.contains(" lib-name=redis.py lib-ver=1.2.3 "), "{info}");
    assert_eq!(
        client.call(&[b"CLIENT", b"SETINFO", b"lib-name", b"redis py"]),
        error("ERR lib-name cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(
        client.call(&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis.py\n"]),
        error("ERR LIB-NAME cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(
        client.cmd("CLIENT SETINFO badger hamster"),
        error("ERR Unrecognized option 'badger'")
    );
    assert_eq!(
        client.cmd("CLIENT SETINFO lib-name"),
        error("ERR wrong number of arguments for 'client|setinfo' command")
    );
    // RESET keeps the library name, and an empty value clears it.
    assert_eq!(client.cmd("RESET"), status("RESET"));
    assert!(client
        .cmd("CLIENT INFO")
        .text()
        .contains(" lib-name=redis.py "));
    assert_eq!(
        client.call(&[b"CLIENT", b"SETINFO", b"lib-name", b""]),
        ok()
    );
    assert!(client
        .cmd("CLIENT INFO")
        .text()
        .contains(" lib-name= lib-ver=1.2.3 "));
}

#[test]
fn client_flags() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CLIENT NO-EVICT on"), ok());
    assert_eq!(
        field(client.cmd("CLIENT INFO").text().trim_end(), "flags"),
        "e"
    );
    assert_eq!(client.cmd("CLIENT NO-TOUCH ON"), ok());
    assert_eq!(
        field(client.cmd("CLIENT INFO").text().trim_end(), "flags"),
        "eT"
    );
    assert_eq!(client.cmd("CLIENT NO-EVICT off"), ok());
    assert_eq!(client.cmd("CLIENT NO-TOUCH OFF"), ok());
    assert_eq!(
        field(client.cmd("CLIENT INFO").text().trim_end(), "flags"),
        "N"
    );
    assert_eq!(
        client.cmd("CLIENT NO-EVICT maybe"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("CLIENT NO-TOUCH maybe"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("CLIENT NO-EVICT"),
        error("ERR wrong number of arguments for 'client|no-evict' command")
    );
    assert_eq!(client.cmd("CLIENT REPLY wrong"), error("ERR syntax error"));
    let help = client.cmd("CLIENT HELP").items();
    assert_eq!(
        help[0],
        status("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    assert!(help.contains(&status("NO-TOUCH (ON|OFF)")));
    assert_eq!(help.last().unwrap(), &status("    Prints this help."));
    assert_eq!(
        client.cmd("CLIENT NOSUCH"),
        error("ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")
    );
}

#[test]
fn client_kill_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let cases = [
        (
            "CLIENT KILL",
            "ERR wrong number of arguments for 'client|kill' command",
        ),
        ("CLIENT KILL id 10 wrong_arg", "ERR syntax error"),
        (
            "CLIENT KILL id str",
            "ERR client-id should be greater than 0",
        ),
        (
            "CLIENT KILL id -1",
            "ERR client-id should be greater than 0",
        ),
        ("CLIENT KILL id 0", "ERR client-id should be greater than 0"),
        (
            "CLIENT KILL type wrong_type",
            "ERR Unknown client type 'wrong_type'",
        ),
        (
            "CLIENT KILL user wrong_user",
            "ERR No such user 'wrong_user'",
        ),
        ("CLIENT KILL skipme yes_or_no", "ERR syntax error"),
        (
            "CLIENT KILL maxage str",
            "ERR maxage is not an integer or out of range",
        ),
        (
            "CLIENT KILL maxage 9999999999999999999",
            "ERR maxage is not an integer or out of range",
        ),
        (
            "CLIENT KILL maxage -1",
            "ERR maxage should be greater than 0",
        ),
        ("CLIENT KILL nosuch value", "ERR syntax error"),
        ("CLIENT KILL 000.123.321.567:0000", "ERR No such client"),
        ("CLIENT KILL 127.0.0.1:", "ERR No such client"),
    ];
    for (command, expected) in cases {
        assert_eq!(client.cmd(command), error(expected), "{command}");
    }
    assert_eq!(client.cmd("CLIENT KILL id 999999"), int(0));
    assert_eq!(client.cmd("PING"), status("PONG"));
}

fn connected_clients(client: &mut RawClient) -> i64 {
    let info = client.cmd("INFO clients").text();
    info.split("\r\n")
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn client_kill_filters() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut victim = server.client();
    let victim_id = victim.cmd("CLIENT ID").integer();
    let victim_address = field(victim.cmd("CLIENT INFO").text().trim_end(), "addr");
    // Old form: by address, with an OK reply.
    assert_eq!(
        client.call(&[b"CLIENT", b"KILL", victim_address.as_bytes()]),
        ok()
    );
    assert!(victim.is_closed());
    // By ID.
    let mut victim = server.client();
    let victim_id_2 = victim.cmd("CLIENT ID").integer();
    assert!(victim_id_2 > victim_id);
    assert_eq!(client.cmd(&format!("CLIENT KILL ID {victim_id_2}")), int(1));
    assert!(victim.is_closed());
    // By local address, skipping the caller.
    let mut a = server.client();
    let mut b = server.client();
    a.cmd("PING");
    b.cmd("PING");
    assert!(eventually(|| connected_clients(&mut client) == 3));
    let local = format!("127.0.0.1:{}", server.port);
    assert_eq!(
        client.cmd(&format!("CLIENT KILL LADDR {local} SKIPME yes")),
        int(2)
    );
    assert!(a.is_closed() && b.is_closed());
    assert!(eventually(|| connected_clients(&mut client) == 1));
    // MAXAGE: nobody is that old yet.
    assert_eq!(client.cmd("CLIENT KILL MAXAGE 100 SKIPME no"), int(0));
    // TYPE normal without SKIPME kills everyone but the caller; SKIPME no kills the caller
    // after its reply.
    let mut c = server.client();
    c.cmd("PING");
    assert_eq!(client.cmd("CLIENT KILL TYPE normal"), int(1));
    assert!(c.is_closed());
    assert_eq!(client.cmd("CLIENT KILL USER default SKIPME no"), int(1));
    assert!(client.is_closed());
    let mut fresh = server.client();
    assert_eq!(fresh.cmd("PING"), status("PONG"));
}

#[test]
fn idle_clients_time_out() {
    let server = TestServer::start(&["--timeout", "1"]);
    let mut idle = server.client();
    assert_eq!(idle.cmd("PING"), status("PONG"));
    let started = Instant::now();
    assert!(idle.is_closed());
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG SET timeout 0"), ok());
    assert_eq!(client.cmd("CONFIG GET timeout"), bulks(&["timeout", "0"]));
}

#[test]
fn connection_limits() {
    let server = TestServer::start(&["--maxclients", "2"]);
    let mut first = server.client();
    assert_eq!(first.cmd("PING"), status("PONG"));
    // The start-up probe's connection counts until the server has seen it close.
    assert!(eventually(|| connected_clients(&mut first) == 1));
    let mut second = server.client();
    assert_eq!(second.cmd("PING"), status("PONG"));
    let mut third = server.client();
    assert_eq!(
        third.read_reply(),
        error("ERR max number of clients reached")
    );
    assert!(third.is_closed());
    let stats = first.cmd("INFO stats").text();
    assert!(stats.contains("\r\nrejected_connections:1\r\n"), "{stats}");
}

#[test]
fn a_big_request_does_not_keep_its_query_buffer() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let big = vec![b'x'; 4 << 20];
    assert_eq!(client.call(&[b"SET", b"big", &big]), ok());
    let line = client.cmd("CLIENT INFO").text();
    let free: usize = client_field(&line, "qbuf-free").parse().expect("qbuf-free");
    assert!(free <= 64 * 1024, "{line}");
}

/// `unixsocket`: clients connect through the socket file (created with `unixsocketperm`,
/// replacing a stale file), CLIENT LIST shows them as Redis does (`<path>:0`, flag `U`), and
/// the file is removed at shutdown.
#[test]
fn unix_socket_clients() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("cinnabar-{}.sock", std::process::id()));
    std::fs::write(&path, b"stale").unwrap();
    let path_text = path.to_str().unwrap().to_string();
    let mut server = TestServer::start(&["--unixsocket", &path_text, "--unixsocketperm", "700"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut ask = |request: &[u8]| -> String {
        stream.write_all(request).unwrap();
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        // Replies here are one read: a status, or a bulk that ends its line.
        loop {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the server closed the socket");
            reply.extend_from_slice(&buffer[..read]);
            if reply.ends_with(b"\r\n")
                && (reply[0] != b'$' || reply.iter().filter(|&&b| b == b'\n').count() >= 2)
            {
                return String::from_utf8(reply).unwrap();
            }
        }
    };
    assert_eq!(ask(b"PING\r\n"), "+PONG\r\n");
    let list = ask(b"CLIENT LIST ID 2 3 4 5 6 7 8 9 10\r\n");
    let expected = format!("addr={path_text}:0 laddr={path_text}:0 ");
    let line = list
        .lines()
        .find(|line| line.contains(&expected))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains(" flags=U "), "{line}");
    assert_eq!(
        server.client().cmd("CONFIG GET unixsocketperm"),
        bulks(&["unixsocketperm", "700"])
    );
    assert_eq!(
        server.client().call(&[
            b"CLIENT",
            b"KILL",
            b"ADDR",
            format!("{path_text}:0").as_bytes()
        ]),
        int(1)
    );
    server.client().send(&[b"SHUTDOWN", b"NOSAVE"]);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(!path.exists());
}

/// A request announcing one bulk of `size` bytes and sending all but its last byte: the
/// connection holds it in its query buffer, waiting for the rest.
fn partial_request(size: usize) -> Vec<u8> {
    let mut request = format!("*2\r\n${size}\r\n").into_bytes();
    request.resize(request.len() + size - 1, b'v');
    request
}

/// The CLIENT LIST line of the client named `name`, if it is connected.
fn client_line(control: &mut RawClient, name: &str) -> Option<String> {
    let list = control.cmd("CLIENT LIST").text();
    let wanted = format!(" name={name} ");
    list.lines()
        .find(|line| line.contains(&wanted))
        .map(str::to_string)
}

/// A client named `name` holding a partial request of `size` bytes, once the server counts it.
fn client_holding(
    server: &TestServer,
    control: &mut RawClient,
    name: &str,
    size: usize,
) -> RawClient {
    let mut client = server.client();
    assert_eq!(client.cmd(&format!("CLIENT SETNAME {name}")), ok());
    client.send_raw(&partial_request(size));
    assert!(
        eventually(|| client_line(control, name)
            .is_some_and(
                |line| field(&line, "tot-mem").parse::<usize>().expect("tot-mem") >= size
            )),
        "{name} never held its request"
    );
    client
}

fn evicted_clients(control: &mut RawClient) -> i64 {
    let stats = control.cmd("INFO stats").text();
    let line = stats
        .lines()
        .find(|line| line.starts_with("evicted_clients:"))
        .expect("evicted_clients in INFO stats");
    line["evicted_clients:".len()..].parse().expect("count")
}

/// `maxmemory-clients`: when the clients together reach the limit, the biggest evictable
/// client is closed, and only as many as needed; CLIENT NO-EVICT clients stay; a percentage
/// applies to `maxmemory` and means nothing without it; INFO counts the evictions.
#[test]
fn clients_over_maxmemory_clients_are_evicted_biggest_first() {
    let server = TestServer::start(&[]);
    let mut control = server.client();
    assert_eq!(control.cmd("CLIENT NO-EVICT ON"), ok());
    assert_eq!(control.cmd("CLIENT SETNAME control"), ok());
    let mut small = server.client();
    assert_eq!(small.cmd("CLIENT SETNAME small"), ok());
    let _medium = client_holding(&server, &mut control, "medium", 300_000);
    let mut big = client_holding(&server, &mut control, "big", 600_000);

    // Without a limit nobody is evicted; with one that only the big client's going satisfies,
    // it alone goes, at once.
    let list = control.cmd("CLIENT LIST").text();
    let total: usize = list
        .lines()
        .map(|line| field(line, "tot-mem").parse::<usize>().expect("tot-mem"))
        .sum();
    let big_bytes: usize = field(&client_line(&mut control, "big").expect("big"), "tot-mem")
        .parse()
        .expect("tot-mem");
    let limit = total - big_bytes / 2;
    assert_eq!(
        control.cmd(&format!("CONFIG SET maxmemory-clients {limit}")),
        ok()
    );
    assert!(client_line(&mut control, "big").is_none());
    assert!(client_line(&mut control, "medium").is_some());
    assert!(client_line(&mut control, "small").is_some());
    assert!(big.is_closed());
    assert_eq!(evicted_clients(&mut control), 1);

    // A CLIENT NO-EVICT client going over the limit is kept; the others go, biggest first.
    let mut guarded = server.client();
    assert_eq!(guarded.cmd("CLIENT NO-EVICT ON"), ok());
    assert_eq!(guarded.cmd("CLIENT SETNAME guarded"), ok());
    guarded.send_raw(&partial_request(900_000));
    assert!(eventually(|| evicted_clients(&mut control) == 3));
    assert!(client_line(&mut control, "medium").is_none());
    assert!(client_line(&mut control, "small").is_none());
    assert!(small.is_closed());
    assert!(client_line(&mut control, "guarded").is_some());
    assert!(client_line(&mut control, "control").is_some());
    drop(guarded);

    // A percentage of an unset maxmemory is no limit; setting maxmemory makes it one.
    assert_eq!(control.cmd("CONFIG SET maxmemory-clients 10%"), ok());
    let mut held = client_holding(&server, &mut control, "held", 600_000);
    assert_eq!(control.cmd("CONFIG SET maxmemory 4mb"), ok());
    assert!(client_line(&mut control, "held").is_none());
    assert!(held.is_closed());
    assert_eq!(evicted_clients(&mut control), 4);

    // CONFIG RESETSTAT zeroes the count; a limit of 0 evicts nobody.
    assert_eq!(control.cmd("CONFIG SET maxmemory-clients 0"), ok());
    assert_eq!(control.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(evicted_clients(&mut control), 0);
    let _kept = client_holding(&server, &mut control, "kept", 600_000);
    assert_eq!(control.cmd("PING"), status("PONG"));
    assert!(client_line(&mut control, "kept").is_some());
}

/// Sends `request(0)`, `request(1)` ... (at most `count`), each after the previous reply, until
/// the server closes the connection: the index of the request it closed on, if it did.
fn requests_until_closed(
    client: &mut RawClient,
    count: usize,
    request: impl Fn(usize) -> Vec<Vec<u8>>,
) -> Option<usize> {
    (0..count).find(|&index| {
        let args = request(index);
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        client.send(&args);
        client.is_closed_or_reply()
    })
}

/// What a client holds besides its buffers counts too: a transaction's queue, watched keys,
/// subscriptions (CLIENT LIST `multi-mem` and `tot-mem`).
#[test]
fn transactions_watches_and_subscriptions_count_in_client_memory() {
    let server = TestServer::start(&["--maxmemory-clients", "200000"]);
    let mut control = server.client();
    assert_eq!(control.cmd("CLIENT NO-EVICT ON"), ok());

    let mut queued = server.client();
    assert_eq!(queued.cmd("CLIENT SETNAME queued"), ok());
    assert_eq!(queued.cmd("MULTI"), ok());
    let value = vec![b'v'; 50_000];
    assert_eq!(queued.call(&[b"SET", b"k", &value]), status("QUEUED"));
    let line = client_line(&mut control, "queued").expect("queued");
    let multi_bytes: usize = field(&line, "multi-mem").parse().expect("multi-mem");
    assert!((50_000..51_000).contains(&multi_bytes), "{line}");
    // The fifth queued value takes the client past the limit.
    let closed = requests_until_closed(&mut queued, 4, |_| {
        vec![b"SET".to_vec(), b"k".to_vec(), value.clone()]
    });
    assert!(closed.is_some(), "the queueing client was never evicted");
    assert!(client_line(&mut control, "queued").is_none());

    let mut watcher = server.client();
    let watched = requests_until_closed(&mut watcher, 20_000, |key| {
        vec![b"WATCH".to_vec(), format!("key:{key}").into_bytes()]
    });
    let watched = watched.expect("the watching client was never evicted");
    assert!(watched > 1000, "evicted after {watched} watched keys");

    let mut subscriber = server.client();
    let subscribed = requests_until_closed(&mut subscriber, 20_000, |channel| {
        vec![
            b"SUBSCRIBE".to_vec(),
            format!("channel:{channel}").into_bytes(),
        ]
    });
    let subscribed = subscribed.expect("the subscribing client was never evicted");
    assert!(
        subscribed > 1000,
        "evicted after {subscribed} subscriptions"
    );
    assert_eq!(evicted_clients(&mut control), 3);
}

/// A subscriber that stops reading is evicted once its queued messages reach
/// `maxmemory-clients`, well before its pub/sub output limit (32 MB) would close it.
#[test]
fn a_subscriber_that_stops_reading_is_evicted_at_maxmemory_clients() {
    let server = TestServer::start(&["--maxmemory-clients", "2mb"]);
    let mut publisher = server.client();
    assert_eq!(publisher.cmd("CLIENT NO-EVICT ON"), ok());
    let mut subscriber = server.client();
    subscriber.cmd("SUBSCRIBE channel");
    let message = vec![b'm'; 64 * 1024];
    let mut published = 0;
    while evicted_clients(&mut publisher) == 0 && published < 2_000 {
        publisher.call(&[b"PUBLISH", b"channel", &message]);
        published += 1;
    }
    assert_eq!(
        evicted_clients(&mut publisher),
        1,
        "after {published} messages"
    );
    assert!(published * message.len() < 32 << 20, "{published} messages");
    assert_eq!(publisher.call(&[b"PUBLISH", b"channel", b"x"]), int(0));
}

/// A request being read shows as Redis shows it: its complete arguments in `argv-mem`, the
/// rest (without the length line of the bulk being read) in `qbuf`.
#[test]
fn a_request_being_read_shows_in_qbuf_and_argv_mem() {
    let server = TestServer::start(&[]);
    let mut control = server.client();
    let mut reader = server.client();
    assert_eq!(reader.cmd("CLIENT SETNAME reading"), ok());
    let mut request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n".to_vec();
    request.resize(request.len() + 5_000, b'v');
    reader.send_raw(&request);
    assert!(
        eventually(|| client_line(&mut control, "reading")
            .is_some_and(|line| field(&line, "qbuf") == "5000")),
        "{:?}",
        client_line(&mut control, "reading")
    );
    let line = client_line(&mut control, "reading").expect("reading");
    assert_eq!(field(&line, "argv-mem"), "4", "{line}");
    let total: usize = field(&line, "tot-mem").parse().expect("tot-mem");
    assert!(total > 100_000, "{line}");
    let mut rest = vec![b'v'; 95_000];
    rest.extend_from_slice(b"\r\n");
    reader.send_raw(&rest);
    assert_eq!(reader.read_reply(), ok());
    let line = client_line(&mut control, "reading").expect("reading");
    assert_eq!(field(&line, "qbuf"), "0", "{line}");
    assert_eq!(field(&line, "argv-mem"), "0", "{line}");
}

/// `client-output-buffer-limit normal`: a reply bigger than the hard limit closes the client
/// without it; smaller replies, and other clients, are unaffected.
#[test]
fn a_reply_over_the_normal_output_limit_closes_the_client() {
    let server = TestServer::start(&["--client-output-buffer-limit", "normal 1mb 0 0"]);
    let mut client = server.client();
    assert_eq!(client.cmd("SETRANGE big 2000000 x"), int(2_000_001));
    assert_eq!(client.cmd("SETRANGE small 500000 x"), int(500_001));
    let mut reader = server.client();
    assert_eq!(reader.cmd("STRLEN small"), int(500_001));
    match reader.cmd("GET small") {
        Reply::Bulk(value) => assert_eq!(value.len(), 500_001),
        other => panic!("{other:?}"),
    }
    reader.send(&[b"GET", b"big"]);
    assert!(reader.is_closed_or_reply(), "the 2 MB reply was sent");
    assert_eq!(client.cmd("DBSIZE"), int(2));
    let stats = client.cmd("INFO stats").text();
    assert!(
        stats.contains("\r\nclient_output_buffer_limit_disconnections:1\r\n"),
        "{stats}"
    );
    // A query past `client-query-buffer-limit` closes its client, and is counted too.
    assert_eq!(client.cmd("CONFIG SET client-query-buffer-limit 1mb"), ok());
    let mut writer = server.client();
    let value = vec![b'a'; 1 << 20];
    writer.send(&[b"SET", b"key", &value]);
    assert!(writer.is_closed_or_reply(), "the 1 MB query was run");
    let stats = client.cmd("INFO stats").text();
    assert!(
        stats.contains("\r\nclient_query_buffer_limit_disconnections:1\r\n"),
        "{stats}"
    );
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    let stats = client.cmd("INFO stats").text();
    assert!(
        stats.contains("\r\nclient_output_buffer_limit_disconnections:0\r\n")
            && stats.contains("\r\nclient_query_buffer_limit_disconnections:0\r\n"),
        "{stats}"
    );
    assert_eq!(
        client.call(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"normal 0 0 0"
        ]),
        ok()
    );
    let mut reader = server.client();
    match reader.cmd("GET big") {
        Reply::Bulk(value) => assert_eq!(value.len(), 2_000_001),
        other => panic!("{other:?}"),
    }
}
