//! MULTI / EXEC / DISCARD / WATCH / UNWATCH, and the atomicity of transactions across shards
//! and threads.

mod common;

use common::*;

#[test]
fn exec_runs_queued_commands_in_order() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET a 1"), status("QUEUED"));
    assert_eq!(client.cmd("GET a"), status("QUEUED"));
    assert_eq!(client.cmd("DEL a"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok(), bulk("1"), int(1)]));
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("EXEC"), array(vec![]));
}

#[test]
fn transaction_errors() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("EXEC"), error("ERR EXEC without MULTI"));
    assert_eq!(client.cmd("DISCARD"), error("ERR DISCARD without MULTI"));
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(
        client.cmd("WATCH x"),
        error("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(client.cmd("SET a 1"), status("QUEUED"));
    // WATCH inside MULTI does not abort the transaction.
    assert_eq!(client.cmd("EXEC"), array(vec![ok()]));
    // A nested MULTI does.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(
        client.cmd("MULTI"),
        error("ERR MULTI calls can not be nested")
    );
    assert_eq!(
        client.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    // A command that cannot be queued aborts EXEC.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET b 2"), status("QUEUED"));
    assert_eq!(
        client.cmd("NOSUCH x"),
        error("ERR unknown command 'NOSUCH', with args beginning with: 'x' ")
    );
    assert_eq!(
        client.cmd("GET"),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        client.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(client.cmd("GET b"), Reply::Nil);
    // DISCARD drops the queue.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET c 3"), status("QUEUED"));
    assert_eq!(client.cmd("DISCARD"), ok());
    assert_eq!(client.cmd("GET c"), Reply::Nil);
}

#[test]
fn runtime_errors_do_not_abort_the_transaction() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET a 1"), status("QUEUED"));
    assert_eq!(client.cmd("SELECT 99"), status("QUEUED"));
    assert_eq!(client.cmd("GET a"), status("QUEUED"));
    assert_eq!(
        client.cmd("EXEC"),
        array(vec![ok(), error("ERR DB index is out of range"), bulk("1")])
    );
}

#[test]
fn watch_aborts_when_a_watched_key_changes() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("SET x 1"), ok());
    assert_eq!(client.cmd("WATCH x"), ok());
    assert_eq!(other.cmd("SET x 2"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET x 3"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
    assert_eq!(client.cmd("GET x"), bulk("2"));
    // After EXEC nothing is watched any more.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET x 4"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok()]));
}

#[test]
fn watch_ignores_other_keys_and_unwatch_forgets() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("WATCH x y z"), ok());
    for index in 0..300 {
        assert_eq!(other.cmd(&format!("SET unrelated{index} v")), ok());
    }
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET x 1"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok()]));
    assert_eq!(client.cmd("WATCH x"), ok());
    assert_eq!(other.cmd("SET x 2"), ok());
    assert_eq!(client.cmd("UNWATCH"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET x 3"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok()]));
}

#[test]
fn watch_of_a_missing_key_is_broken_by_its_creation_and_discard_unwatches() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("WATCH fresh"), ok());
    assert_eq!(other.cmd("SET fresh 1"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
    assert_eq!(client.cmd("WATCH fresh"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("DISCARD"), ok());
    assert_eq!(other.cmd("SET fresh 2"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![status("PONG")]));
}

#[test]
fn flush_breaks_watches_of_existing_keys_only() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("SET present 1"), ok());
    assert_eq!(client.cmd("WATCH absent"), ok());
    assert_eq!(other.cmd("FLUSHALL"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![status("PONG")]));
    assert_eq!(client.cmd("SET present 1"), ok());
    assert_eq!(client.cmd("WATCH present"), ok());
    assert_eq!(other.cmd("FLUSHDB"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
}

#[test]
fn transactions_are_atomic_across_shards_and_threads() {
    // Writers set two keys of different shards to the same value in one transaction; readers
    // read both in one transaction and must never see them differ.
    let server = TestServer::start(&[]);
    let port = server.port;
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                for round in 0..1500 {
                    let value = format!("{writer}-{round}");
                    assert_eq!(client.cmd("MULTI"), ok());
                    assert_eq!(client.cmd(&format!("SET left {value}")), status("QUEUED"));
                    assert_eq!(client.cmd(&format!("SET right {value}")), status("QUEUED"));
                    assert_eq!(client.cmd("EXEC"), array(vec![ok(), ok()]));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                for _ in 0..1500 {
                    assert_eq!(client.cmd("MULTI"), ok());
                    assert_eq!(client.cmd("GET left"), status("QUEUED"));
                    assert_eq!(client.cmd("GET right"), status("QUEUED"));
                    let items = client.cmd("EXEC").items();
                    assert_eq!(items[0], items[1], "a transaction saw a half-done one");
                }
            })
        })
        .collect();
    for thread in writers.into_iter().chain(readers) {
        thread.join().expect("thread");
    }
}

#[test]
fn optimistic_increments_through_watch_never_lose_an_update() {
    let server = TestServer::start(&[]);
    let port = server.port;
    const THREADS: usize = 4;
    const INCREMENTS: usize = 1000;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                let mut done = 0;
                while done < INCREMENTS {
                    assert_eq!(client.cmd("WATCH counter"), ok());
                    let current = match client.cmd("GET counter") {
                        Reply::Nil => 0,
                        reply => reply.text().parse::<i64>().expect("number"),
                    };
                    assert_eq!(client.cmd("MULTI"), ok());
                    assert_eq!(
                        client.cmd(&format!("SET counter {}", current + 1)),
                        status("QUEUED")
                    );
                    match client.cmd("EXEC") {
                        Reply::NilArray => {}
                        reply => {
                            assert_eq!(reply, array(vec![ok()]));
                            done += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let mut client = server.client();
    assert_eq!(
        client.cmd("GET counter"),
        bulk(&(THREADS * INCREMENTS).to_string())
    );
}

#[test]
fn errors_inside_exec_are_counted_by_code() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET a b"), status("QUEUED"));
    assert_eq!(client.cmd("LPUSH a x"), status("QUEUED"));
    assert_eq!(
        client.cmd("EXEC"),
        array(vec![
            ok(),
            error("WRONGTYPE Operation against a key holding the wrong kind of value")
        ])
    );
    let info = client.cmd("INFO errorstats").text();
    assert!(info.contains("errorstat_WRONGTYPE:count=1"), "{info}");
    let stats = client.cmd("INFO stats").text();
    assert!(stats.contains("total_error_replies:1\r\n"), "{stats}");
}

/// Waits until the server's clock is past `unix_ms` (TIME polled with a deadline).
fn wait_for_server_time_past(client: &mut RawClient, unix_ms: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let time = client.cmd("TIME").items();
        let now_ms = time[0].text().parse::<u64>().expect("seconds") * 1000
            + time[1].text().parse::<u64>().expect("microseconds") / 1000;
        if now_ms > unix_ms {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
    }
}

#[test]
fn watch_of_a_stale_key_survives_its_deletion_not_its_rewrite() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), ok());
    let expired_at_ms = 1_000_000_000_000u64;
    let stale = |client: &mut RawClient| {
        let time = client.cmd("TIME").items();
        let now_ms = time[0].text().parse::<u64>().expect("seconds") * 1000
            + time[1].text().parse::<u64>().expect("microseconds") / 1000;
        assert_eq!(client.cmd("SET x foo PX 2"), ok());
        wait_for_server_time_past(client, now_ms + 3);
        assert!(now_ms > expired_at_ms);
    };
    // Watched while stale: EXEC runs (its lazy deletion is no change).
    stale(&mut client);
    assert_eq!(client.cmd("WATCH x"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![status("PONG")]));
    // Deleted by another client meanwhile: still no change.
    stale(&mut client);
    assert_eq!(client.cmd("WATCH x"), ok());
    assert_eq!(other.cmd("DEL x"), int(0));
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![status("PONG")]));
    // Written again meanwhile: a change.
    stale(&mut client);
    assert_eq!(client.cmd("WATCH x"), ok());
    assert_eq!(other.cmd("SET x new"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
}

#[test]
fn watch_is_broken_only_by_writes_that_change_the_key() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    assert_eq!(client.cmd("SADD src a b"), int(2));
    assert_eq!(client.cmd("SADD dst a"), int(1));
    // SMOVE of a member the destination already holds leaves the destination untouched.
    assert_eq!(client.cmd("WATCH dst"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SADD dst c"), status("QUEUED"));
    assert_eq!(other.cmd("SMOVE src dst a"), int(1));
    assert_eq!(client.cmd("EXEC"), array(vec![int(1)]));
    assert_eq!(client.cmd("SCARD dst"), int(2));
    // A new member changes it.
    assert_eq!(client.cmd("WATCH dst"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SADD dst d"), status("QUEUED"));
    assert_eq!(other.cmd("SMOVE src dst b"), int(1));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
}

#[test]
fn a_served_blocking_move_breaks_watch_of_its_destination() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut waiter = server.client();
    let mut other = server.client();
    waiter.send(&[b"BLMOVE", b"src{t}", b"dst{t}", b"LEFT", b"RIGHT", b"0"]);
    wait_for_blocked_clients(&mut other, 1);
    assert_eq!(client.cmd("WATCH dst{t}"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("LLEN dst{t}"), status("QUEUED"));
    // The push names src only; the waiter served by it writes dst.
    assert_eq!(other.cmd("LPUSH src{t} job"), int(1));
    assert_eq!(waiter.read_reply(), bulk("job"));
    assert_eq!(client.cmd("EXEC"), Reply::NilArray);
}
