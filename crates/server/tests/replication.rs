//! Replication. The master side as a replica sees it: SYNC / PSYNC give an RDB payload, then
//! every write as it was propagated (deterministic forms, SELECT on database changes). The
//! replica side: REPLICAOF another Cinnabar or a real Redis, reads served, writes refused,
//! REPLICAOF NO ONE.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn words(reply: &Reply) -> Vec<String> {
    reply.items().iter().map(Reply::text).collect()
}

fn poll(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// A field of any INFO section.
fn info_field(client: &mut RawClient, field: &str) -> String {
    let text = client.cmd("INFO everything").text();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from {text}"))
        .to_string()
}

#[test]
fn sync_sends_the_dataset_then_the_stream() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET before sync"), ok());
    let mut replica = server.client();
    replica.send(&[b"SYNC"]);
    let payload = replica.read_sync_payload();
    assert!(payload.starts_with(b"REDIS0010"), "{payload:?}");
    assert!(payload.windows(6).any(|window| window == b"before"));
    assert_eq!(info_field(&mut client, "connected_slaves"), "1");

    // Writes arrive in their deterministic form, with SELECT when the database changes (inside
    // a transaction, after its MULTI, as Redis).
    assert_eq!(client.cmd("MULTI"), ok());
    client.cmd("SET first 1");
    client.cmd("SET second 2");
    assert_eq!(client.cmd("EXEC").items().len(), 2);
    for expected in [
        vec!["MULTI"],
        vec!["SELECT", "0"],
        vec!["SET", "first", "1"],
        vec!["SET", "second", "2"],
        vec!["EXEC"],
    ] {
        assert_eq!(words(&replica.read_reply()), expected);
    }
    assert_eq!(client.cmd("SET k v EX 100"), ok());
    let set = words(&replica.read_reply());
    assert_eq!(set[..4], ["SET", "k", "v", "PXAT"]);
    assert!(set[4].parse::<u64>().expect("absolute time") > 1_700_000_000_000);
    // A transaction's writes are wrapped in MULTI/EXEC; reads propagate nothing.
    assert_eq!(client.cmd("MULTI"), ok());
    client.cmd("INCR counter");
    client.cmd("GET k");
    client.cmd("RPUSH list a");
    assert_eq!(client.cmd("EXEC").items().len(), 3);
    for expected in [
        vec!["MULTI"],
        vec!["INCR", "counter"],
        vec!["RPUSH", "list", "a"],
        vec!["EXEC"],
    ] {
        assert_eq!(words(&replica.read_reply()), expected);
    }
    assert_eq!(client.cmd("SELECT 3"), ok());
    assert_eq!(client.cmd("SET other 1"), ok());
    assert_eq!(words(&replica.read_reply()), ["SELECT", "3"]);
    assert_eq!(words(&replica.read_reply()), ["SET", "other", "1"]);

    // An expired key found by a lookup is propagated as DEL, or UNLINK under
    // lazyfree-lazy-expire yes.
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), ok());
    for (lazy, deletion) in [("no", "DEL"), ("yes", "UNLINK")] {
        assert_eq!(
            client.cmd(&format!("CONFIG SET lazyfree-lazy-expire {lazy}")),
            ok()
        );
        assert_eq!(client.cmd("SET short v PX 1"), ok());
        assert_eq!(words(&replica.read_reply())[..2], ["SET", "short"]);
        poll("the key to expire", || client.cmd("EXISTS short") == int(0));
        assert_eq!(words(&replica.read_reply()), [deletion, "short"]);
    }
    let offset: u64 = info_field(&mut client, "master_repl_offset")
        .parse()
        .expect("offset");
    assert!(offset > 100, "{offset}");

    // A replica that goes away is dropped (at the next write).
    drop(replica);
    poll("the replica to be dropped", || {
        client.cmd("INCR tick");
        info_field(&mut client, "connected_slaves") == "0"
    });
}

#[test]
fn psync_answers_with_a_full_resync_whose_payload_loads() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("RPUSH queue job:1 job:2");
    client.cmd("HSET h f v");
    client.cmd("SELECT 5");
    client.cmd("SET five 5");
    let mut replica = server.client();
    assert_eq!(replica.cmd("REPLCONF listening-port 6380"), ok());
    assert_eq!(replica.cmd("REPLCONF capa eof capa psync2"), ok());
    assert_eq!(
        replica.cmd("REPLCONF nonsense 1"),
        error("ERR Unrecognized REPLCONF option: nonsense")
    );
    replica.send(&[b"PSYNC", b"?", b"-1"]);
    let Reply::Status(header) = replica.read_reply() else {
        panic!("PSYNC did not answer with a status");
    };
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts[0], "FULLRESYNC");
    assert_eq!(parts[1].len(), 40);
    assert!(parts[2].parse::<u64>().is_ok());
    let payload = replica.read_sync_payload();
    // The payload is an RDB file another server starts from.
    let directory = std::env::temp_dir().join(format!("cinnabar-sync-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("mkdir");
    std::fs::write(directory.join("dump.rdb"), &payload).expect("write payload");
    let directory_text = directory.to_string_lossy().into_owned();
    let copy = TestServer::start(&["--dir", &directory_text, "--dbfilename", "dump.rdb"]);
    let mut copy_client = copy.client();
    assert_eq!(
        copy_client.cmd("LRANGE queue 0 -1"),
        bulks(&["job:1", "job:2"])
    );
    assert_eq!(copy_client.cmd("HGET h f"), bulk("v"));
    assert_eq!(copy_client.cmd("SELECT 5"), ok());
    assert_eq!(copy_client.cmd("GET five"), bulk("5"));
    drop(copy);
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn wait_counts_attached_replicas_and_checks_its_arguments() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("WAIT 0 0"), int(0));
    assert_eq!(client.cmd("WAIT 1 -1"), error("ERR timeout is negative"));
    assert_eq!(
        client.cmd("WAIT x 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("WAIT 1 x"),
        error("ERR timeout is not an integer or out of range")
    );
    assert_eq!(client.cmd("WAITAOF 0 0 0"), array(vec![int(0), int(0)]));
    assert_eq!(
        client.cmd("WAITAOF 1 0 0"),
        error("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
    );
    let mut replica = server.client();
    replica.send(&[b"SYNC"]);
    replica.read_sync_payload();
    assert_eq!(client.cmd("WAIT 1 0"), int(1));
    assert_eq!(client.cmd("WAITAOF 0 1 0"), array(vec![int(0), int(1)]));
}

#[test]
fn served_blocking_moves_propagate_as_the_client_wrote_their_sides() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut replica = server.client();
    replica.send(&[b"SYNC"]);
    replica.read_sync_payload();
    let mut first = server.client();
    first.send(&[b"BLMOVE", b"src", b"dst", b"left", b"Right", b"0"]);
    let mut second = server.client();
    second.send(&[b"BRPOPLPUSH", b"dst", b"src", b"0"]);
    wait_for_blocked_clients(&mut client, 2);
    assert_eq!(client.cmd("LPUSH src job"), int(1));
    assert_eq!(first.read_reply(), bulk("job"));
    assert_eq!(second.read_reply(), bulk("job"));
    assert_eq!(words(&replica.read_reply()), ["SELECT", "0"]);
    assert_eq!(words(&replica.read_reply()), ["LPUSH", "src", "job"]);
    assert_eq!(
        words(&replica.read_reply()),
        ["LMOVE", "src", "dst", "left", "Right"]
    );
    assert_eq!(words(&replica.read_reply()), ["RPOPLPUSH", "dst", "src"]);
}

/// `min-replicas-to-write`: writes (EXEC of a transaction with one, a script that may write,
/// a legacy script's first write) are refused with NOREPLICAS while fewer replicas than asked
/// acknowledged within `min-replicas-max-lag` seconds; a synchronisation counts as an
/// acknowledgement, REPLCONF ACK renews it, a replica that leaves no longer counts.
#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET x before"), ok());
    assert_eq!(client.cmd("CONFIG SET min-replicas-to-write 1"), ok());
    let refused = error("NOREPLICAS Not enough good replicas to write.");
    assert_eq!(client.cmd("SET x y"), refused);
    assert_eq!(client.cmd("GET x"), bulk("before"));
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("GET x"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![bulk("before")]));
    // Queued while refused: the transaction is discarded.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("INCR counter"), refused);
    assert_eq!(
        client.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    // Scripts: one that declares no writes runs, a legacy one runs until it writes, one with
    // a shebang (it may write) is refused up front.
    let eval = |client: &mut RawClient, script: &str| {
        client.call(&[b"EVAL", script.as_bytes(), b"1", b"x"])
    };
    assert_eq!(
        eval(
            &mut client,
            "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])"
        ),
        bulk("before")
    );
    assert_eq!(
        eval(&mut client, "return redis.call('GET', KEYS[1])"),
        bulk("before")
    );
    assert_eq!(
        eval(&mut client, "#!lua\nreturn redis.call('GET', KEYS[1])"),
        refused
    );
    let Reply::Error(raised) = eval(&mut client, "return redis.call('SET', KEYS[1], 'z')") else {
        panic!("a legacy script's write must be refused");
    };
    assert!(raised.starts_with("NOREPLICAS "), "{raised}");
    // A replica that synchronised is good: writes go through.
    let mut replica = server.client();
    replica.send(&[b"SYNC"]);
    replica.read_sync_payload();
    assert_eq!(client.cmd("SET x with-replica"), ok());
    assert_eq!(
        replica.call(&[b"REPLCONF", b"ACK", b"0"]),
        // An acknowledgement gets no reply: the next reply is the stream's first command.
        array(vec![bulk("SELECT"), bulk("0")])
    );
    // Two good replicas asked for, one attached: refused again.
    assert_eq!(client.cmd("CONFIG SET min-replicas-to-write 2"), ok());
    assert_eq!(client.cmd("SET x two"), refused);
    assert_eq!(client.cmd("CONFIG SET min-replicas-to-write 1"), ok());
    // The replica leaves: no good replica any more.
    drop(replica);
    poll("the replica to be gone", || {
        client.cmd("SET x after") == refused
    });
    assert_eq!(client.cmd("CONFIG SET min-replicas-to-write 0"), ok());
    assert_eq!(client.cmd("SET x after"), ok());
}

fn wait_for_link(replica: &mut RawClient) {
    poll("the replica's link to come up", || {
        replica
            .cmd("INFO replication")
            .text()
            .contains("master_link_status:up\r\n")
    });
}

#[test]
fn a_replica_follows_its_master_and_refuses_writes() {
    let master_server = TestServer::start(&[]);
    let replica_server = TestServer::start(&[]);
    let mut master = master_server.client();
    let mut replica = replica_server.client();
    assert_eq!(master.cmd("RPUSH queue a b"), int(2));
    assert_eq!(master.cmd("SELECT 2"), ok());
    assert_eq!(master.cmd("SET other-db 1"), ok());
    let port = master_server.port.to_string();
    assert_eq!(replica.cmd(&format!("REPLICAOF 127.0.0.1 {port}")), ok());
    wait_for_link(&mut replica);
    // Asked again once linked (while it loads the master's payload, REPLICAOF gets LOADING,
    // as in Redis, where the command has no `loading` flag).
    assert_eq!(
        replica.cmd(&format!("REPLICAOF 127.0.0.1 {port}")),
        status("OK Already connected to specified master")
    );
    assert_eq!(replica.cmd("LRANGE queue 0 -1"), bulks(&["a", "b"]));
    assert_eq!(
        replica.cmd("SET x 1"),
        error("READONLY You can't write against a read only replica.")
    );
    assert_eq!(replica.cmd("MULTI"), ok());
    assert_eq!(
        replica.cmd("INCR x"),
        error("READONLY You can't write against a read only replica.")
    );
    assert_eq!(
        replica.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    // The stream: writes, expiries as absolute times, transactions, and PUBLISH for the
    // replica's own subscribers.
    let mut subscriber = replica_server.client();
    assert_eq!(
        subscriber.cmd("SUBSCRIBE news"),
        array(vec![bulk("subscribe"), bulk("news"), int(1)])
    );
    assert_eq!(master.cmd("SELECT 0"), ok());
    assert_eq!(master.cmd("SET session token EX 100"), ok());
    assert_eq!(master.cmd("MULTI"), ok());
    assert_eq!(master.cmd("LPOP queue"), status("QUEUED"));
    assert_eq!(master.cmd("INCR counter"), status("QUEUED"));
    assert_eq!(master.cmd("EXEC"), array(vec![bulk("a"), int(1)]));
    assert_eq!(master.cmd("PUBLISH news hello"), int(0));
    assert_eq!(
        subscriber.read_reply(),
        array(vec![bulk("message"), bulk("news"), bulk("hello")])
    );
    // The PUBLISH came after the transaction: the replica has applied it.
    assert_eq!(replica.cmd("LRANGE queue 0 -1"), bulks(&["b"]));
    assert_eq!(replica.cmd("GET counter"), bulk("1"));
    let ttl = replica.cmd("TTL session").integer();
    assert!((90..=100).contains(&ttl), "{ttl}");
    assert_eq!(replica.cmd("SELECT 2"), ok());
    assert_eq!(replica.cmd("GET other-db"), bulk("1"));
    // ROLE and INFO on both sides.
    let role = replica.cmd("ROLE").items();
    assert_eq!(role[0], bulk("slave"));
    assert_eq!(role[1], bulk("127.0.0.1"));
    assert_eq!(role[2], int(master_server.port as i64));
    assert_eq!(role[3], bulk("connected"));
    assert_eq!(info_field(&mut replica, "role"), "slave");
    assert_eq!(info_field(&mut replica, "master_port"), port);
    let replica_port = replica_server.port.to_string();
    poll("the master to list its replica", || {
        master.cmd("INFO replication").text().contains(&format!(
            "slave0:ip=127.0.0.1,port={replica_port},state=online"
        ))
    });
    let master_role = master.cmd("ROLE").items();
    assert_eq!(master_role[0], bulk("master"));
    assert_eq!(master_role[2].items()[0].items()[1], bulk(&replica_port));
    // Back to master: writable, with a new replication id.
    let old_id = info_field(&mut replica, "master_replid");
    assert_eq!(replica.cmd("REPLICAOF NO ONE"), ok());
    assert_eq!(replica.cmd("SET x 1"), ok());
    assert_eq!(info_field(&mut replica, "role"), "master");
    assert_eq!(info_field(&mut replica, "master_replid2"), old_id);
    assert_ne!(info_field(&mut replica, "master_replid"), old_id);
    assert_eq!(
        replica.cmd("REPLICAOF 127.0.0.1 notaport"),
        error("ERR Invalid master port")
    );
}

#[test]
fn a_replica_with_its_link_down_can_refuse_stale_reads() {
    let replica_server = TestServer::start(&["--replica-serve-stale-data", "no"]);
    let mut replica = replica_server.client();
    assert_eq!(replica.cmd("SET before 1"), ok());
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    assert_eq!(
        replica.cmd(&format!("REPLICAOF 127.0.0.1 {closed_port}")),
        ok()
    );
    assert_eq!(
        replica.cmd("GET before"),
        error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    );
    // Commands flagged `stale` (INFO, CONFIG) still answer.
    assert_eq!(info_field(&mut replica, "master_link_status"), "down");
    assert_eq!(replica.cmd("CONFIG SET replica-serve-stale-data yes"), ok());
    assert_eq!(replica.cmd("GET before"), bulk("1"));
    assert_eq!(replica.cmd("REPLICAOF NO ONE"), ok());
}

#[test]
fn a_replica_of_real_redis() {
    let Some(binary) = reference_binary() else {
        return;
    };
    let master_server = ReferenceServer::start(&binary, &["--repl-diskless-sync-delay", "0"]);
    let replica_server = TestServer::start(&[]);
    let mut master = master_server.client();
    let mut replica = replica_server.client();
    assert_eq!(master.cmd("HSET job:1 state queued tries 0"), int(2));
    assert_eq!(master.cmd("XADD events 1-1 kind created"), bulk("1-1"));
    assert_eq!(master.cmd("ZADD delayed 100 job:1"), int(1));
    assert_eq!(
        replica.cmd(&format!("REPLICAOF 127.0.0.1 {}", master_server.port)),
        ok()
    );
    wait_for_link(&mut replica);
    assert_eq!(
        replica.cmd("HGETALL job:1"),
        bulks(&["state", "queued", "tries", "0"])
    );
    assert_eq!(replica.cmd("XLEN events"), int(1));
    assert_eq!(master.cmd("HINCRBY job:1 tries 1"), int(1));
    assert_eq!(
        master.call(&[
            b"EVAL",
            b"redis.call('zrem', KEYS[1], 'job:1') return redis.call('rpush', 'ready', 'job:1')",
            b"1",
            b"delayed"
        ]),
        int(1)
    );
    assert_eq!(master.cmd("SET marker done"), ok());
    poll("the replica to apply the stream", || {
        replica.cmd("GET marker") == bulk("done")
    });
    assert_eq!(replica.cmd("HGET job:1 tries"), bulk("1"));
    assert_eq!(replica.cmd("ZCARD delayed"), int(0));
    assert_eq!(replica.cmd("LRANGE ready 0 -1"), bulks(&["job:1"]));
    poll("real Redis to see its replica online", || {
        master
            .cmd("INFO replication")
            .text()
            .contains(",state=online,")
    });
}

/// A replica loading its master's payload answers LOADING (after READONLY, in Redis's order)
/// until the load is done.
#[test]
fn a_replica_answers_loading_while_it_loads_the_payload() {
    let master_server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut master = master_server.client();
    assert_eq!(master.cmd("DEBUG POPULATE 50"), ok());
    // A second per key: the load outlasts the test.
    let replica_server = TestServer::start(&["--key-load-delay", "1000000"]);
    let mut replica = replica_server.client();
    let port = master_server.port.to_string();
    assert_eq!(replica.cmd(&format!("REPLICAOF 127.0.0.1 {port}")), ok());
    poll("the replica to start loading", || {
        replica
            .cmd("INFO persistence")
            .text()
            .contains("\r\nloading:1\r\n")
    });
    assert_eq!(
        replica.cmd("GET key:1"),
        error("LOADING Redis is loading the dataset in memory")
    );
    assert_eq!(
        replica.cmd("SET x 1"),
        error("READONLY You can't write against a read only replica.")
    );
    assert_eq!(replica.cmd("ECHO still"), bulk("still"));
}

#[test]
fn a_stalled_replica_buffer_is_counted_apart_and_never_causes_eviction() {
    let server = TestServer::start(&["--maxmemory-policy", "allkeys-random"]);
    let mut client = server.client();
    for index in 0..100 {
        assert_eq!(client.cmd(&format!("SET key:{index} value")), ok());
    }
    // A replica that synchronizes, then never reads: its stream piles up in the master.
    let mut replica = server.client();
    replica.send(&[b"SYNC"]);
    replica.read_sync_payload();
    let listed = client.cmd("CLIENT LIST TYPE replica").text();
    assert!(listed.contains("flags=S"), "{listed}");
    // The limit: what the data uses now, plus a little; the stream must not count against it.
    let used: u64 = info_field(&mut client, "used_memory").parse().unwrap();
    let not_counted: u64 = info_field(&mut client, "mem_not_counted_for_evict")
        .parse()
        .unwrap();
    let limit = used - not_counted + 256 * 1024;
    assert_eq!(client.cmd(&format!("CONFIG SET maxmemory {limit}")), ok());
    let payload = vec![b'A'; 1000];
    let mut batch = Vec::new();
    // Batches of 100 KB, so that this client's own query buffer stays under the margin.
    for _ in 0..200 {
        for _ in 0..100 {
            batch.extend(RawClient::encode(&[b"SETRANGE", b"key:0", b"0", &payload]));
        }
        client.send_raw(&batch);
        batch.clear();
        for _ in 0..100 {
            assert_eq!(client.read_reply(), int(1000));
        }
    }
    // 20 MB of stream: beyond what the sockets hold, so most of it waits in the master.
    let replicas: u64 = info_field(&mut client, "mem_clients_slaves")
        .parse()
        .unwrap();
    let not_counted: u64 = info_field(&mut client, "mem_not_counted_for_evict")
        .parse()
        .unwrap();
    assert!(replicas > 4 * 1024 * 1024, "mem_clients_slaves {replicas}");
    assert!(
        not_counted >= replicas,
        "not counted {not_counted}, replicas {replicas}"
    );
    let listed = client.cmd("CLIENT LIST TYPE replica").text();
    let omem: u64 = client_field(&listed, "omem").parse().expect("omem");
    assert!(omem > 4 * 1024 * 1024, "{listed}");
    assert_eq!(client.cmd("DBSIZE"), int(100));
    assert_eq!(info_field(&mut client, "evicted_keys"), "0");
    // Once the replica is gone, its buffer is no longer reported.
    assert_eq!(client.cmd("CLIENT KILL TYPE replica"), int(1));
    assert_eq!(info_field(&mut client, "mem_clients_slaves"), "0");
    drop(replica);
}
