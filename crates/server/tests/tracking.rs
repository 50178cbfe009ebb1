//! Client-side caching: CLIENT TRACKING in its default, OPTIN, OPTOUT, BCAST, NOLOOP and REDIRECT
//! modes, the invalidation messages (RESP3 pushes, `__redis__:invalidate` messages for a RESP2
//! redirection target), flush invalidations, CLIENT CACHING / GETREDIR / TRACKINGINFO, the table
//! size limit and INFO's tracking fields.

mod common;

use common::*;

/// A RESP3 client: sends `line` and returns its reply with the pushes that came before it.
fn call_collecting(client: &mut RawClient, line: &str) -> (Reply, Vec<Reply>) {
    let words: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    client.send(&words);
    let mut pushes = Vec::new();
    loop {
        match client.read_reply() {
            push @ Reply::Push(_) => pushes.push(push),
            reply => return (reply, pushes),
        }
    }
}

fn invalidate(keys: &[&str]) -> Reply {
    Reply::Push(vec![bulk("invalidate"), bulks(keys)])
}

fn resp3_client(server: &TestServer) -> RawClient {
    let mut client = server.client();
    let hello = client.cmd("HELLO 3");
    assert!(matches!(hello, Reply::Map(_)), "{hello:?}");
    client
}

/// Pushes that arrive before the reply to a PING (everything sent before it).
fn pushes_so_far(client: &mut RawClient) -> Vec<Reply> {
    let (reply, pushes) = call_collecting(client, "PING");
    assert_eq!(reply, status("PONG"));
    pushes
}

#[test]
fn a_read_key_is_invalidated_once_when_written() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut writer = server.client();
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(writer.cmd("SET a 1"), ok());
    assert_eq!(tracked.cmd("GET a"), bulk("1"));
    assert_eq!(
        tracked.cmd("MGET b c"),
        array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(writer.cmd("SET a 2"), ok());
    assert_eq!(writer.cmd("SET a 3"), ok());
    assert_eq!(writer.cmd("DEL c"), int(0));
    assert_eq!(writer.cmd("SET c 1"), ok());
    assert_eq!(
        pushes_so_far(&mut tracked),
        [invalidate(&["a"]), invalidate(&["c"])]
    );
    // Written again without being read again: nothing.
    assert_eq!(writer.cmd("SET a 4"), ok());
    assert!(pushes_so_far(&mut tracked).is_empty());
    // Its own writes invalidate too (after the reply), unless NOLOOP.
    assert_eq!(tracked.cmd("GET a"), bulk("4"));
    assert_eq!(tracked.cmd("SET a 5"), ok());
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["a"])]);
    assert_eq!(tracked.cmd("CLIENT TRACKING ON NOLOOP"), ok());
    assert_eq!(tracked.cmd("GET a"), bulk("5"));
    assert_eq!(tracked.cmd("SET a 6"), ok());
    assert!(pushes_so_far(&mut tracked).is_empty());
    // Off: nothing recorded any more.
    assert_eq!(tracked.cmd("CLIENT TRACKING OFF"), ok());
    assert_eq!(tracked.cmd("GET a"), bulk("6"));
    assert_eq!(writer.cmd("SET a 7"), ok());
    assert!(pushes_so_far(&mut tracked).is_empty());
}

#[test]
fn expiry_and_flush_invalidate() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut writer = server.client();
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(writer.cmd("SET k v PX 1500"), ok());
    assert_eq!(writer.cmd("SET other v"), ok());
    assert_eq!(tracked.cmd("GET other"), bulk("v"));
    assert_eq!(tracked.cmd("GET k"), bulk("v"));
    // Expiry (lazy, on another client's read, or active) invalidates it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while writer.cmd("GET k") != Reply::Nil {
        assert!(std::time::Instant::now() < deadline, "k never expired");
    }
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["k"])]);
    assert_eq!(writer.cmd("FLUSHALL"), ok());
    assert_eq!(
        pushes_so_far(&mut tracked),
        [Reply::Push(vec![bulk("invalidate"), Reply::Null])]
    );
}

#[test]
fn redirection_to_a_resp2_subscriber_uses_the_invalidate_channel() {
    let server = TestServer::start(&[]);
    let mut receiver = server.client();
    let receiver_id = receiver.cmd("CLIENT ID").integer();
    assert_eq!(
        receiver.cmd("SUBSCRIBE __redis__:invalidate"),
        array(vec![
            bulk("subscribe"),
            bulk("__redis__:invalidate"),
            int(1)
        ])
    );
    let mut tracked = server.client();
    assert_eq!(
        tracked.cmd(&format!("CLIENT TRACKING ON REDIRECT {receiver_id}")),
        ok()
    );
    assert_eq!(tracked.cmd("CLIENT GETREDIR"), int(receiver_id));
    assert_eq!(tracked.cmd("GET k"), Reply::Nil);
    assert_eq!(tracked.cmd("SET k v"), ok());
    assert_eq!(
        receiver.read_reply(),
        array(vec![
            bulk("message"),
            bulk("__redis__:invalidate"),
            bulks(&["k"])
        ])
    );
    assert_eq!(
        tracked.cmd("CLIENT TRACKING ON REDIRECT 999999"),
        error("ERR The client ID you want redirect to does not exist")
    );
}

#[test]
fn bcast_prefixes_and_optin_optout() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut writer = server.client();
    assert_eq!(
        tracked.cmd("CLIENT TRACKING ON BCAST PREFIX user: PREFIX obj:"),
        ok()
    );
    assert_eq!(writer.cmd("SET user:1 a"), ok());
    assert_eq!(writer.cmd("SET other b"), ok());
    assert_eq!(writer.cmd("SET obj:2 c"), ok());
    assert_eq!(
        pushes_so_far(&mut tracked),
        [invalidate(&["user:1"]), invalidate(&["obj:2"])]
    );
    assert_eq!(
        tracked.cmd("CLIENT TRACKINGINFO"),
        Reply::Map(vec![
            (bulk("flags"), Reply::Set(vec![bulk("on"), bulk("bcast")])),
            (bulk("redirect"), int(0)),
            (bulk("prefixes"), bulks(&["obj:", "user:"])),
        ])
    );
    assert_eq!(tracked.cmd("CLIENT TRACKING OFF"), ok());

    assert_eq!(tracked.cmd("CLIENT TRACKING ON OPTIN"), ok());
    assert_eq!(tracked.cmd("GET a"), Reply::Null);
    assert_eq!(tracked.cmd("CLIENT CACHING YES"), ok());
    assert_eq!(tracked.cmd("GET b"), Reply::Null);
    assert_eq!(tracked.cmd("GET c"), Reply::Null);
    assert_eq!(writer.cmd("MSET a 1 b 1 c 1"), ok());
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["b"])]);
    assert_eq!(tracked.cmd("CLIENT TRACKING OFF"), ok());

    assert_eq!(tracked.cmd("CLIENT TRACKING ON OPTOUT"), ok());
    assert_eq!(tracked.cmd("CLIENT CACHING NO"), ok());
    assert_eq!(tracked.cmd("GET a"), bulk("1"));
    assert_eq!(tracked.cmd("GET b"), bulk("1"));
    assert_eq!(writer.cmd("MSET a 2 b 2"), ok());
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["b"])]);
}

#[test]
fn tracking_errors_and_introspection() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CLIENT GETREDIR"), int(-1));
    assert_eq!(
        client.cmd("CLIENT TRACKINGINFO"),
        array(vec![
            bulk("flags"),
            bulks(&["off"]),
            bulk("redirect"),
            int(-1),
            bulk("prefixes"),
            array(vec![]),
        ])
    );
    assert_eq!(
        client.cmd("CLIENT CACHING YES"),
        error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON PREFIX a"),
        error("ERR PREFIX option requires BCAST mode to be enabled")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON OPTIN OPTOUT"),
        error("ERR You can't specify both OPTIN mode and OPTOUT mode")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON BCAST OPTIN"),
        error("ERR OPTIN and OPTOUT are not compatible with BCAST")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON BCAST PREFIX ab PREFIX abc"),
        error("ERR Prefix 'ab' overlaps with another provided prefix 'abc'. Prefixes for a single client must not overlap.")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING MAYBE"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON FOO"),
        error("ERR syntax error")
    );
    assert_eq!(client.cmd("CLIENT TRACKING ON OPTIN"), ok());
    assert_eq!(
        client.cmd("CLIENT CACHING NO"),
        error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON OPTOUT"),
        error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
    );
    assert_eq!(
        client.cmd("CLIENT TRACKING ON BCAST"),
        error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
    );
}

fn info_field(client: &mut RawClient, name: &str) -> String {
    let info = client.cmd("INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .to_string()
}

#[test]
fn table_size_limit_evicts_with_invalidations_and_info_counts() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut other = server.client();
    assert_eq!(info_field(&mut other, "tracking_clients"), "0");
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(other.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(
        tracked.cmd("MGET a b"),
        array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(other.cmd("GET a"), Reply::Nil);
    assert_eq!(info_field(&mut other, "tracking_clients"), "2");
    assert_eq!(info_field(&mut other, "tracking_total_keys"), "2");
    assert_eq!(info_field(&mut other, "tracking_total_items"), "3");
    assert_eq!(other.cmd("CLIENT TRACKING OFF"), ok());
    assert_eq!(other.cmd("CONFIG SET tracking-table-max-keys 1"), ok());
    // The limit applies before every command (and after it remembers a key).
    let (reply, mut pushes) = call_collecting(&mut tracked, "GET c");
    assert_eq!(reply, Reply::Null);
    assert_eq!(info_field(&mut other, "tracking_total_keys"), "1");
    // Two of a, b, c were forgotten: their readers were told.
    pushes.extend(pushes_so_far(&mut tracked));
    assert_eq!(pushes.len(), 2, "{pushes:?}");
}

#[test]
fn client_list_shows_tracking_flags() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let flags = |client: &mut RawClient| {
        let info = client.cmd("CLIENT INFO").text();
        client_field(&info, "flags").to_string()
    };
    assert_eq!(flags(&mut client), "N");
    assert_eq!(client.cmd("CLIENT TRACKING ON BCAST"), ok());
    assert_eq!(flags(&mut client), "tB");
    assert_eq!(client.cmd("CLIENT TRACKING OFF"), ok());
    let mut target = server.client();
    let target_id = target.cmd("CLIENT ID").integer();
    assert_eq!(
        client.cmd(&format!("CLIENT TRACKING ON REDIRECT {target_id}")),
        ok()
    );
    assert_eq!(flags(&mut client), "t");
    drop(target);
    let mut other = server.client();
    assert!((0..100_000).any(|_| other
        .cmd("INFO clients")
        .text()
        .contains("connected_clients:2")));
    assert_eq!(flags(&mut client), "tR");
    assert_eq!(
        client.cmd("CLIENT TRACKINGINFO"),
        array(vec![
            bulk("flags"),
            bulks(&["on", "broken_redirect"]),
            bulk("redirect"),
            int(target_id),
            bulk("prefixes"),
            array(vec![]),
        ])
    );
}

#[test]
fn bcast_invalidations_of_one_command_come_in_one_message_per_prefix() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut writer = server.client();
    assert_eq!(
        tracked.cmd("CLIENT TRACKING ON BCAST PREFIX a: PREFIX b:"),
        ok()
    );
    assert_eq!(writer.cmd("MULTI"), ok());
    for line in ["INCR a:1", "INCR a:2", "INCR b:1", "INCR c:1"] {
        assert_eq!(writer.cmd(line), status("QUEUED"));
    }
    assert_eq!(writer.cmd("EXEC").items().len(), 4);
    assert_eq!(writer.cmd("MSET b:2 x b:3 y"), ok());
    assert_eq!(
        pushes_so_far(&mut tracked),
        [
            invalidate(&["a:1", "a:2"]),
            invalidate(&["b:1"]),
            invalidate(&["b:2", "b:3"])
        ]
    );
}

#[test]
fn expired_keys_are_invalidated_even_with_noloop() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    assert_eq!(tracked.cmd("CLIENT TRACKING ON BCAST NOLOOP"), ok());
    assert_eq!(tracked.cmd("SET mykey v PX 1"), ok());
    assert_eq!(tracked.cmd("SET other v"), ok());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut pushes = Vec::new();
    while pushes.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no invalidation");
        pushes = pushes_so_far(&mut tracked);
    }
    assert_eq!(pushes, [invalidate(&["mykey"])]);
}

#[test]
fn reads_inside_scripts_and_transactions_are_tracked_for_the_caller() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut writer = server.client();
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    // A script that only writes tracks nothing, not even its declared keys.
    assert_eq!(
        tracked.call(&[b"EVAL", b"redis.call('set','k3','bar')", b"2", b"k1", b"k2"]),
        Reply::Null
    );
    assert_eq!(writer.cmd("MSET k1 1 k2 1 k3 1"), ok());
    assert_eq!(pushes_so_far(&mut tracked), []);
    // A script's reads are tracked, its undeclared and unread keys are not.
    assert_eq!(
        tracked.call(&[
            b"EVAL",
            b"return redis.call('get','k2')",
            b"2",
            b"k1",
            b"k2"
        ]),
        bulk("1")
    );
    assert_eq!(
        tracked.call(&[b"EVAL_RO", b"return redis.call('ping')", b"1", b"k1"]),
        status("PONG")
    );
    assert_eq!(writer.cmd("MSET k1 2 k2 2"), ok());
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["k2"])]);
    // The reads of a transaction are tracked.
    assert_eq!(tracked.cmd("MULTI"), ok());
    assert_eq!(tracked.cmd("GET k1"), status("QUEUED"));
    assert_eq!(tracked.cmd("SET k3 x"), status("QUEUED"));
    assert_eq!(tracked.cmd("EXEC"), array(vec![bulk("2"), ok()]));
    assert_eq!(writer.cmd("SET k1 3"), ok());
    assert_eq!(pushes_so_far(&mut tracked), [invalidate(&["k1"])]);
    // OPTIN: CLIENT CACHING YES covers every read of the next command, a script's included.
    assert_eq!(tracked.cmd("CLIENT TRACKING OFF"), ok());
    assert_eq!(tracked.cmd("CLIENT TRACKING ON OPTIN"), ok());
    assert_eq!(
        tracked.call(&[b"EVAL", b"return redis.call('get','k1')", b"0"]),
        bulk("3")
    );
    assert_eq!(tracked.cmd("CLIENT CACHING YES"), ok());
    assert_eq!(
        tracked.call(&[
            b"EVAL",
            b"redis.call('get','k1') return redis.call('get','k2')",
            b"0"
        ]),
        bulk("2")
    );
    assert_eq!(writer.cmd("MSET k1 4 k2 4"), ok());
    assert_eq!(
        pushes_so_far(&mut tracked),
        [invalidate(&["k1"]), invalidate(&["k2"])]
    );
}

#[test]
fn a_served_blocking_move_invalidates_what_it_wrote_after_its_reply() {
    let server = TestServer::start(&[]);
    let mut writer = server.client();
    assert_eq!(writer.cmd("RPUSH list2{t} a"), int(1));
    let mut tracked = resp3_client(&server);
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(tracked.cmd("LRANGE list2{t} 0 -1"), bulks(&["a"]));
    tracked.send(&[b"BLMOVE", b"list1{t}", b"list2{t}", b"LEFT", b"LEFT", b"0"]);
    wait_for_blocked_clients(&mut writer, 1);
    assert_eq!(writer.cmd("RPUSH list1{t} foo"), int(1));
    assert_eq!(tracked.read_reply(), bulk("foo"));
    assert_eq!(tracked.read_reply(), invalidate(&["list2{t}"]));
}

#[test]
fn a_lowered_table_size_limit_applies_without_further_reads() {
    let server = TestServer::start(&[]);
    let mut tracked = resp3_client(&server);
    let mut other = server.client();
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(
        tracked.cmd("MGET a b"),
        array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(other.cmd("CONFIG SET tracking-table-max-keys 1"), ok());
    // The server's periodic task forgets one key and tells its reader.
    let push = tracked.read_reply();
    assert!(
        push == invalidate(&["a"]) || push == invalidate(&["b"]),
        "{push:?}"
    );
    assert_eq!(info_field(&mut other, "tracking_total_keys"), "1");
}

#[test]
fn a_lowered_table_size_limit_applies_before_a_queued_command() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut tracked = resp3_client(&server);
    let mut other = server.client();
    assert_eq!(other.cmd("CONFIG SET tracking-table-max-keys 2"), ok());
    assert_eq!(other.cmd("DEBUG PAUSE-CRON 1"), ok());
    assert_eq!(tracked.cmd("CLIENT TRACKING ON"), ok());
    assert_eq!(
        tracked.cmd("MGET 1{tag} 2{tag}"),
        array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(tracked.cmd("MULTI"), ok());
    assert_eq!(other.cmd("CONFIG SET tracking-table-max-keys 1"), ok());
    // Queued, but the limit applies first: the invalidation comes before QUEUED.
    let (reply, pushes) = call_collecting(&mut tracked, "PING");
    assert_eq!(reply, status("QUEUED"));
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(tracked.cmd("EXEC"), array(vec![status("PONG")]));
    assert_eq!(other.cmd("DEBUG PAUSE-CRON 0"), ok());
}
