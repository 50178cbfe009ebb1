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
