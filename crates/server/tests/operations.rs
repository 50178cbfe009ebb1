//! Operations: `maxmemory` and eviction policies, MEMORY, SLOWLOG, LATENCY, INFO latencystats.

mod common;

use std::time::{Duration, Instant};

use common::*;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn info_field(client: &mut RawClient, section: &str, field: &str) -> Option<String> {
    let text = client.cmd(&format!("INFO {section}")).text();
    text.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
}

fn used_memory(client: &mut RawClient) -> i64 {
    info_field(client, "memory", "used_memory")
        .and_then(|value| value.parse().ok())
        .expect("used_memory")
}

fn evicted_keys(client: &mut RawClient) -> i64 {
    info_field(client, "stats", "evicted_keys")
        .and_then(|value| value.parse().ok())
        .expect("evicted_keys")
}

/// Polls `condition` until it holds or 10 seconds pass.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stores `count` keys `prefix:<i>` of `size` bytes, with a TTL of `ttl(i)` seconds if any.
fn fill(
    client: &mut RawClient,
    prefix: &str,
    count: usize,
    size: usize,
    ttl: impl Fn(usize) -> Option<u64>,
) {
    let value = vec![b'x'; size];
    for index in 0..count {
        let key = format!("{prefix}:{index}");
        let reply = match ttl(index) {
            Some(seconds) => {
                let seconds = seconds.to_string();
                client.call(&[b"SET", key.as_bytes(), &value, b"EX", seconds.as_bytes()])
            }
            None => client.call(&[b"SET", key.as_bytes(), &value]),
        };
        assert_eq!(reply, ok());
    }
}

fn exists(client: &mut RawClient, key: &str) -> bool {
    client.call(&[b"EXISTS", key.as_bytes()]) == int(1)
}

/// Bytes that building an INFO reply allocates before it reads `used_memory`, at most.
const INFO_READING_BYTES: i64 = 16 * 1024;

/// Lowers `maxmemory` to `used - room_bytes` and waits for eviction to bring memory under it.
fn squeeze(client: &mut RawClient, policy: &str, room_bytes: i64) -> i64 {
    assert_eq!(
        client.cmd(&format!("CONFIG SET maxmemory-policy {policy}")),
        ok()
    );
    let limit = used_memory(client) - room_bytes;
    assert_eq!(client.cmd(&format!("CONFIG SET maxmemory {limit}")), ok());
    // INFO reads `used_memory` while it builds its own reply, which the reading then counts.
    wait_until("eviction under the limit", || {
        client.cmd("PING");
        used_memory(client) <= limit + INFO_READING_BYTES
    });
    limit
}

#[test]
fn noeviction_refuses_writes_but_serves_reads() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET kept value"), ok());
    assert_eq!(client.cmd("CONFIG SET maxmemory 1"), ok());
    assert_eq!(client.cmd("SET other value"), error(OOM));
    assert_eq!(client.cmd("LPUSH list a"), error(OOM));
    assert_eq!(client.cmd("GET kept"), bulk("value"));
    assert_eq!(client.cmd("EXISTS kept"), int(1));
    // Commands not flagged denyoom still run (DEL frees memory).
    assert_eq!(client.cmd("DEL kept"), int(1));
    let errors = client.cmd("INFO errorstats").text();
    assert!(errors.contains("errorstat_OOM:count=2"), "{errors}");
    let commandstats = client.cmd("INFO commandstats").text();
    assert!(
        commandstats.contains("cmdstat_set:calls=1,")
            && commandstats.contains("rejected_calls=1,failed_calls=0"),
        "{commandstats}"
    );
    assert_eq!(evicted_keys(&mut client), 0);
    assert_eq!(client.cmd("CONFIG SET maxmemory 0"), ok());
    assert_eq!(client.cmd("SET other value"), ok());
}

#[test]
fn transactions_under_oom() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut other = server.client();
    // A denyoom command queued while out of memory dooms the transaction.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET a 1"), status("QUEUED"));
    assert_eq!(other.cmd("CONFIG SET maxmemory 1"), ok());
    assert_eq!(client.cmd("LPUSH list x"), error(OOM));
    assert_eq!(other.cmd("CONFIG SET maxmemory 0"), ok());
    assert_eq!(
        client.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(client.cmd("EXISTS a"), int(0));
    // DISCARD still works under OOM.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(other.cmd("CONFIG SET maxmemory 1"), ok());
    assert_eq!(client.cmd("SET x 1"), error(OOM));
    assert_eq!(client.cmd("DISCARD"), ok());
    assert_eq!(other.cmd("CONFIG SET maxmemory 0"), ok());
    // EXEC of read commands runs; EXEC holding a denyoom command is refused.
    assert_eq!(client.cmd("SET x value"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("GET x"), status("QUEUED"));
    assert_eq!(client.cmd("PING"), status("QUEUED"));
    assert_eq!(other.cmd("CONFIG SET maxmemory 1"), ok());
    assert_eq!(
        client.cmd("EXEC"),
        array(vec![bulk("value"), status("PONG")])
    );
    assert_eq!(other.cmd("CONFIG SET maxmemory 0"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("SET x 1"), status("QUEUED"));
    assert_eq!(client.cmd("GET x"), status("QUEUED"));
    assert_eq!(other.cmd("CONFIG SET maxmemory 1"), ok());
    assert_eq!(
        client.cmd("EXEC"),
        error(&format!(
            "EXECABORT Transaction discarded because of: {OOM}"
        ))
    );
    assert_eq!(other.cmd("CONFIG SET maxmemory 0"), ok());
    // The transaction is gone.
    assert_eq!(client.cmd("EXEC"), error("ERR EXEC without MULTI"));
    assert_eq!(client.cmd("GET x"), bulk("value"));
}

#[test]
fn allkeys_random_evicts_until_under_the_limit_and_reports_it() {
    let server = TestServer::start(&["--notify-keyspace-events", "Ee"]);
    let mut client = server.client();
    let mut subscriber = server.client();
    assert_eq!(
        subscriber.cmd("SUBSCRIBE __keyevent@0__:evicted"),
        array(vec![
            bulk("subscribe"),
            bulk("__keyevent@0__:evicted"),
            int(1)
        ])
    );
    fill(&mut client, "key", 2000, 1000, |_| None);
    let mut watcher = server.client();
    assert_eq!(
        watcher.cmd("WATCH key:0 key:1 key:2 key:3 key:4 key:5 key:6 key:7"),
        ok()
    );
    let limit = squeeze(&mut client, "allkeys-random", 1_000_000);
    // Read together: a command between the two readings could evict one more key.
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("INFO stats"), status("QUEUED"));
    assert_eq!(client.cmd("DBSIZE"), status("QUEUED"));
    let readings = client.cmd("EXEC").items();
    let stats = readings[0].text();
    let evicted: i64 = stats
        .split("\r\n")
        .find_map(|line| line.strip_prefix("evicted_keys:"))
        .and_then(|count| count.parse().ok())
        .expect("evicted_keys");
    let remaining = readings[1].integer();
    assert!(evicted > 500, "{evicted}");
    assert_eq!(remaining + evicted, 2000);
    // Writes still succeed: they evict to make room.
    fill(&mut client, "more", 500, 1000, |_| None);
    client.cmd("PING");
    assert!(used_memory(&mut client) <= limit + 4096);
    // Each eviction is notified.
    let notice = subscriber.read_reply();
    match notice {
        Reply::Array(items) => {
            assert_eq!(items[0], bulk("message"));
            assert_eq!(items[1], bulk("__keyevent@0__:evicted"));
            assert!(items[2].text().starts_with("key:"));
        }
        other => panic!("unexpected notice {other:?}"),
    }
    // A watched key that was evicted breaks the transaction.
    let any_evicted = (0..8).any(|index| !exists(&mut client, &format!("key:{index}")));
    assert_eq!(watcher.cmd("MULTI"), ok());
    assert_eq!(watcher.cmd("PING"), status("QUEUED"));
    let reply = watcher.cmd("EXEC");
    if any_evicted {
        assert_eq!(reply, Reply::NilArray);
    } else {
        assert_eq!(reply, array(vec![status("PONG")]));
    }
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let server = TestServer::start(&[]);
        let mut client = server.client();
        fill(&mut client, "persistent", 500, 1000, |_| None);
        fill(&mut client, "volatile", 1500, 1000, |_| Some(10_000));
        squeeze(&mut client, policy, 600_000);
        assert!(evicted_keys(&mut client) > 100, "{policy}");
        for index in 0..500 {
            assert!(
                exists(&mut client, &format!("persistent:{index}")),
                "{policy}"
            );
        }
        // Once no key with a TTL is left, writes are refused.
        assert_eq!(client.cmd("CONFIG SET maxmemory 1"), ok());
        wait_until("volatile keys gone", || {
            client.cmd("INFO keyspace").text().contains("expires=0")
                || client.cmd("DBSIZE") == int(500)
        });
        assert_eq!(client.cmd("SET one more"), error(OOM), "{policy}");
        assert_eq!(client.cmd("DBSIZE"), int(500), "{policy}");
        assert_eq!(client.cmd("GET persistent:0").text().len(), 1000);
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // Keys 0..1000 expire in 1000 + i seconds: the lowest indexes go first.
    fill(&mut client, "key", 1000, 1000, |index| {
        Some(1000 + index as u64)
    });
    squeeze(&mut client, "volatile-ttl", 400_000);
    let evicted = evicted_keys(&mut client);
    assert!(evicted > 100, "{evicted}");
    let survivors_low = (0..200)
        .filter(|index| exists(&mut client, &format!("key:{index}")))
        .count();
    let survivors_high = (800..1000)
        .filter(|index| exists(&mut client, &format!("key:{index}")))
        .count();
    // Sampling is approximate: the soon-to-expire half loses far more keys.
    assert!(
        survivors_high >= 190,
        "{survivors_high} {survivors_low} {evicted}"
    );
    assert!(
        survivors_low < survivors_high / 2,
        "{survivors_low} {survivors_high}"
    );
}

#[test]
fn allkeys_lru_keeps_recently_used_keys() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    fill(&mut client, "key", 1000, 1000, |_| None);
    // The access clock counts seconds: wait until the keys look idle.
    wait_until("idle keys", || {
        client.cmd("OBJECT IDLETIME key:999").integer() >= 2
    });
    for index in 0..200 {
        assert_eq!(client.cmd(&format!("GET key:{index}")).text().len(), 1000);
    }
    assert_eq!(client.cmd("OBJECT IDLETIME key:0"), int(0));
    squeeze(&mut client, "allkeys-lru", 400_000);
    let evicted = evicted_keys(&mut client);
    assert!(evicted > 200, "{evicted}");
    let hot = (0..200)
        .filter(|index| exists(&mut client, &format!("key:{index}")))
        .count();
    let cold = (200..1000)
        .filter(|index| exists(&mut client, &format!("key:{index}")))
        .count();
    assert!(hot >= 190, "hot keys kept: {hot}, evicted {evicted}");
    assert!(cold <= 800 - evicted as usize + 10, "{cold} {evicted}");
}

#[test]
fn evictions_do_not_feed_on_their_own_invalidations() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // Ten clients track 300 keys with long names: evicting one key (about 1 kB) queues ten
    // invalidations of its name (about 10 kB).
    let mut trackers: Vec<RawClient> = (0..10).map(|_| server.client()).collect();
    for tracker in &mut trackers {
        assert!(matches!(tracker.cmd("HELLO 3"), Reply::Map(_)));
        assert_eq!(tracker.cmd("CLIENT TRACKING on"), ok());
    }
    let name = |index: usize| format!("{index}{}", "x".repeat(1000));
    for index in 0..300 {
        let key = name(index);
        assert_eq!(
            client.call(&[b"SET", key.as_bytes(), b"v", b"EX", b"1000"]),
            ok()
        );
        for tracker in &mut trackers {
            assert_eq!(tracker.call(&[b"GET", key.as_bytes()]), bulk("v"));
        }
    }
    // Only the tracked keys can go (volatile-lru; the big value has no TTL), one round has no
    // time limit, and nothing evicts in the background: the limit is above the usage until the
    // big value is written, and the round before the next command evicts.
    assert_eq!(client.cmd("CONFIG SET maxmemory-policy volatile-lru"), ok());
    assert_eq!(
        client.cmd("CONFIG SET maxmemory-eviction-tenacity 100"),
        ok()
    );
    let limit = used_memory(&mut client) + 20_000;
    assert_eq!(client.cmd(&format!("CONFIG SET maxmemory {limit}")), ok());
    // A small request (a large one would fill the query buffer first) for 60 kB.
    assert_eq!(client.cmd("SETRANGE big 60000 b"), int(60_001));
    // The round before DBSIZE frees the 40 kB or so over the limit: a few dozen keys, not every
    // key whose invalidations took the place of the memory it freed (how many of those the
    // trackers' connections have written out by then varies; they never count).
    let evicted = 301 - client.cmd("DBSIZE").integer();
    assert!((1..=80).contains(&evicted), "evicted {evicted}");
}

#[test]
fn allkeys_lfu_keeps_frequently_used_keys_and_object_freq_follows_the_policy() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET k v"), ok());
    assert_eq!(
        client.cmd("OBJECT FREQ k"),
        error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    );
    assert_eq!(client.cmd("CONFIG SET maxmemory-policy allkeys-lfu"), ok());
    assert_eq!(client.cmd("SET fresh v"), ok());
    assert_eq!(client.cmd("OBJECT FREQ fresh"), int(5));
    assert_eq!(
        client.cmd("OBJECT IDLETIME fresh"),
        error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    );
    fill(&mut client, "key", 1000, 1000, |_| None);
    for _ in 0..20 {
        for index in 0..100 {
            client.cmd(&format!("GET key:{index}"));
        }
    }
    squeeze(&mut client, "allkeys-lfu", 400_000);
    let hot = (0..100)
        .filter(|index| exists(&mut client, &format!("key:{index}")))
        .count();
    assert!(hot >= 95, "frequent keys kept: {hot}");
}

#[test]
fn memory_usage_and_friends() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("SET small v"), ok());
    let small = client.cmd("MEMORY USAGE small").integer();
    assert!((40..=200).contains(&small), "{small}");
    let big_value = vec![b'x'; 100_000];
    assert_eq!(client.call(&[b"SET", b"big", &big_value]), ok());
    let big = client.cmd("MEMORY USAGE big").integer();
    assert!((100_000..=140_000).contains(&big), "{big}");
    for index in 0..100 {
        client.cmd(&format!("HSET hash field{index} value{index}"));
        client.cmd(&format!("RPUSH list element{index}"));
    }
    let hash = client.cmd("MEMORY USAGE hash SAMPLES 0").integer();
    assert!(hash > 1000 && hash < 20_000, "{hash}");
    assert!(client.cmd("MEMORY USAGE list").integer() > 1000);
    assert_eq!(client.cmd("MEMORY USAGE missing"), Reply::Nil);
    assert_eq!(
        client.cmd("MEMORY USAGE small SAMPLES"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("MEMORY USAGE small SAMPLES -1"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("MEMORY USAGE small SAMPLES x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("MEMORY USAGE small FOO 1"),
        error("ERR syntax error")
    );
    assert_eq!(
        client.cmd("MEMORY USAGE"),
        error("ERR wrong number of arguments for 'memory|usage' command")
    );
    let stats = client.cmd("MEMORY STATS").items();
    let names: Vec<String> = stats.iter().step_by(2).map(Reply::text).collect();
    for name in [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "db.0",
        "overhead.total",
        "keys.count",
        "dataset.bytes",
        "fragmentation",
    ] {
        assert!(
            names.iter().any(|found| found == name),
            "{name} in {names:?}"
        );
    }
    let position = names.iter().position(|name| name == "keys.count").unwrap();
    assert_eq!(stats[position * 2 + 1], int(4));
    assert!(client.cmd("MEMORY DOCTOR").text().starts_with("Hi Sam"));
    assert!(client
        .cmd("MEMORY MALLOC-STATS")
        .text()
        .contains("jemalloc"));
    assert_eq!(client.cmd("MEMORY PURGE"), ok());
    let help = client.cmd("MEMORY HELP").items();
    assert_eq!(
        help[0],
        status("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    assert_eq!(
        client.cmd("MEMORY FOO"),
        error("ERR unknown subcommand 'FOO'. Try MEMORY HELP.")
    );
}

/// The slow log's entries (id, time, duration, arguments, peer, name).
fn slowlog(client: &mut RawClient, count: &str) -> Vec<Vec<Reply>> {
    client
        .cmd(&format!("SLOWLOG GET {count}"))
        .items()
        .into_iter()
        .map(|entry| entry.items())
        .collect()
}

#[test]
fn slowlog_entries_and_limits() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    assert_eq!(client.cmd("SLOWLOG LEN"), int(0));
    assert_eq!(
        client.cmd("CONFIG SET slowlog-log-slower-than 100000"),
        ok()
    );
    assert_eq!(client.cmd("PING"), status("PONG"));
    assert_eq!(client.cmd("SLOWLOG LEN"), int(0));
    assert_eq!(client.cmd("CLIENT SETNAME slowpoke"), ok());
    assert_eq!(client.cmd("DEBUG SLEEP 0.2"), ok());
    assert_eq!(client.cmd("SLOWLOG LEN"), int(1));
    let entries = slowlog(&mut client, "");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.len(), 6);
    assert_eq!(entry[0], int(0));
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((entry[1].integer() - now_s).abs() <= 2);
    assert!(entry[2].integer() >= 200_000);
    assert_eq!(entry[3], bulks(&["DEBUG", "SLEEP", "0.2"]));
    assert!(entry[4].text().starts_with("127.0.0.1:"));
    assert_eq!(entry[5], bulk("slowpoke"));
    // EXEC is not logged, the commands it ran are.
    assert_eq!(client.cmd("SLOWLOG RESET"), ok());
    assert_eq!(client.cmd("MULTI"), ok());
    assert_eq!(client.cmd("DEBUG SLEEP 0.2"), status("QUEUED"));
    assert_eq!(client.cmd("EXEC"), array(vec![ok()]));
    let entries = slowlog(&mut client, "");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0][3], bulks(&["DEBUG", "SLEEP", "0.2"]));
    // 0 logs everything; the length is capped.
    assert_eq!(client.cmd("CONFIG SET slowlog-log-slower-than 0"), ok());
    assert_eq!(client.cmd("CONFIG SET slowlog-max-len 10"), ok());
    for _ in 0..100 {
        client.cmd("PING");
    }
    assert_eq!(client.cmd("SLOWLOG LEN"), int(10));
    assert_eq!(slowlog(&mut client, "5").len(), 5);
    assert_eq!(slowlog(&mut client, "-1").len(), 10);
    assert_eq!(slowlog(&mut client, "20").len(), 10);
    assert_eq!(slowlog(&mut client, "0").len(), 0);
    assert_eq!(
        client.cmd("SLOWLOG GET -2"),
        error("ERR count should be greater than or equal to -1")
    );
    assert_eq!(
        client.cmd("SLOWLOG GET x"),
        error("ERR value is not an integer or out of range")
    );
    // Newest first, ids increasing.
    let entries = slowlog(&mut client, "2");
    assert!(entries[0][0].integer() > entries[1][0].integer());
    // Lowering the maximum length trims the log.
    assert_eq!(client.cmd("CONFIG SET slowlog-max-len 3"), ok());
    assert_eq!(client.cmd("SLOWLOG LEN"), int(3));
    // Too many arguments, too long arguments.
    assert_eq!(client.cmd("CONFIG SET slowlog-max-len 10"), ok());
    let mut args: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"set".to_vec()];
    args.extend((3..=33).map(|number: i32| number.to_string().into_bytes()));
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    assert_eq!(client.call(&refs), int(31));
    let entry = &slowlog(&mut client, "1")[0];
    let logged = entry[3].items();
    assert_eq!(logged.len(), 32);
    assert_eq!(logged[30], bulk("31"));
    assert_eq!(logged[31], bulk("... (2 more arguments)"));
    let long = "A".repeat(129);
    assert_eq!(
        client.call(&[b"SADD", b"set", b"foo", long.as_bytes()]),
        int(2)
    );
    let entry = &slowlog(&mut client, "1")[0];
    assert_eq!(
        entry[3].items()[3],
        bulk(&format!("{}... (1 more bytes)", "A".repeat(128)))
    );
    // Secrets are redacted.
    assert_eq!(client.cmd("CONFIG SET requirepass \"\""), ok());
    let entry = &slowlog(&mut client, "1")[0];
    assert_eq!(
        entry[3],
        bulks(&["CONFIG", "SET", "requirepass", "(redacted)"])
    );
    // -1 disables.
    assert_eq!(client.cmd("CONFIG SET slowlog-log-slower-than -1"), ok());
    assert_eq!(client.cmd("SLOWLOG RESET"), ok());
    client.cmd("PING");
    assert_eq!(client.cmd("SLOWLOG LEN"), int(0));
    assert_eq!(client.cmd("SLOWLOG HELP").items().len(), 12);
    assert_eq!(
        client.cmd("SLOWLOG LEN x"),
        error("ERR wrong number of arguments for 'slowlog|len' command")
    );
}

#[test]
fn blocked_commands_are_logged_when_served() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let mut blocked = server.client();
    assert_eq!(client.cmd("CONFIG SET slowlog-log-slower-than 0"), ok());
    assert_eq!(client.cmd("SLOWLOG RESET"), ok());
    let id = blocked.cmd("CLIENT ID").integer();
    let commands_of_blocked = |client: &mut RawClient| -> String {
        let list = client.cmd("CLIENT LIST").text();
        let line = list
            .lines()
            .find(|line| line.starts_with(&format!("id={id} ")))
            .expect("the blocked client's line")
            .to_string();
        client_field(&line, "tot-cmds").to_string()
    };
    assert_eq!(commands_of_blocked(&mut client), "1");
    blocked.send(&[b"BLPOP", b"queue", b"0"]);
    wait_until("a blocked client", || {
        client
            .cmd("INFO clients")
            .text()
            .contains("blocked_clients:1")
    });
    // A blocked command counts for its client once served (as in Redis).
    assert_eq!(commands_of_blocked(&mut client), "1");
    let logged = |client: &mut RawClient| {
        slowlog(client, "-1")
            .iter()
            .filter(|entry| entry[3].items()[0] == bulk("BLPOP"))
            .count()
    };
    assert_eq!(logged(&mut client), 0);
    assert_eq!(client.cmd("LPUSH queue a"), int(1));
    assert_eq!(blocked.read_reply(), bulks(&["queue", "a"]));
    wait_until("the served command logged", || logged(&mut client) == 1);
    assert_eq!(commands_of_blocked(&mut client), "2");
    let latency = client.cmd("INFO latencystats").text();
    assert!(
        latency.contains("latency_percentiles_usec_blpop:p50="),
        "{latency}"
    );
}

#[test]
fn latency_monitor_events() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    assert!(client
        .cmd("LATENCY DOCTOR")
        .text()
        .starts_with("I'm sorry, Dave, I can't do that."));
    assert_eq!(client.cmd("CONFIG SET latency-monitor-threshold 100"), ok());
    assert_eq!(client.cmd("LATENCY LATEST"), array(vec![]));
    assert_eq!(
        client.cmd("LATENCY GRAPH command"),
        error("ERR No samples available for event 'command'")
    );
    assert_eq!(client.cmd("DEBUG SLEEP 0.15"), ok());
    let latest = client.cmd("LATENCY LATEST").items();
    assert_eq!(latest.len(), 1);
    let event = latest[0].items();
    assert_eq!(event[0], bulk("command"));
    assert!(
        event[2].integer() >= 150 && event[3].integer() >= 150,
        "{event:?}"
    );
    let history = client.cmd("LATENCY HISTORY command").items();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].items()[0], event[1]);
    let graph = client.cmd("LATENCY GRAPH command").text();
    assert!(graph.starts_with("command - high "), "{graph}");
    assert!(graph.contains(" ms, low "), "{graph}");
    assert!(client
        .cmd("LATENCY DOCTOR")
        .text()
        .contains("1. command: 1 latency spikes"));
    // Fast commands below the threshold are not recorded.
    client.cmd("PING");
    assert_eq!(client.cmd("LATENCY LATEST").items().len(), 1);
    assert_eq!(client.cmd("LATENCY HISTORY nosuchevent"), array(vec![]));
    assert_eq!(client.cmd("LATENCY RESET nosuchevent"), int(0));
    assert_eq!(client.cmd("LATENCY RESET"), int(1));
    assert_eq!(client.cmd("LATENCY LATEST"), array(vec![]));
    assert_eq!(
        client.cmd("LATENCY HELP xxx"),
        error("ERR wrong number of arguments for 'latency|help' command")
    );
    assert!(client.cmd("LATENCY HELP").items().len() > 10);
}

#[test]
fn expire_cycle_latency_and_lazy_expiry() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    // 100,000 keys expire at the same moment while active expiry is off; the first cycle after
    // it is back on removes them. They share a hash tag, so one shard holds them all and one
    // visit removes them without yielding in between: well over a millisecond of busy time
    // however loaded the machine is (spread over every shard, a loaded machine could spend
    // the cycle's budget in yields and record no event).
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), ok());
    let time = client.cmd("TIME").items();
    let now_ms = time[0].text().parse::<u64>().unwrap() * 1000
        + time[1].text().parse::<u64>().unwrap() / 1000;
    // Far enough ahead that every key is written before it (a debug build on a loaded machine
    // needs a second or two for 100,000 SETs): a key written after it would expire on arrival.
    let at_ms = now_ms + 3000;
    let at = at_ms.to_string();
    // Values of their own allocation, so that freeing each costs what a real value does.
    let value = vec![b'x'; 64];
    for batch in 0..100 {
        for index in 0..1000 {
            let key = format!("{{cycle}}k:{}", batch * 1000 + index);
            client.send(&[b"SET", key.as_bytes(), &value, b"PXAT", at.as_bytes()]);
        }
        for _ in 0..1000 {
            assert_eq!(client.read_reply(), ok());
        }
    }
    assert_eq!(client.cmd("DBSIZE"), int(100_000));
    assert_eq!(client.cmd("CONFIG SET latency-monitor-threshold 1"), ok());
    wait_until("the keys' expiry time", || {
        let time = client.cmd("TIME").items();
        time[0].text().parse::<u64>().unwrap() * 1000
            + time[1].text().parse::<u64>().unwrap() / 1000
            > at_ms
    });
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 1"), ok());
    wait_until("active expiry", || client.cmd("DBSIZE") == int(0));
    // The cycle records its event when it ends, after visiting the other shards: the keys can
    // be gone before the event is there.
    wait_until("the expire-cycle latency event", || {
        client
            .cmd("LATENCY LATEST")
            .items()
            .iter()
            .any(|event| event.items()[0] == bulk("expire-cycle"))
    });
    // With lazyfree-lazy-expire, a value that takes long to free is freed by the lazyfree
    // thread when it expires.
    assert_eq!(client.cmd("CONFIG SET lazyfree-lazy-expire yes"), ok());
    let members: Vec<String> = (0..1000).map(|member| member.to_string()).collect();
    let mut sadd: Vec<&[u8]> = vec![b"SADD", b"big"];
    sadd.extend(members.iter().map(|member| member.as_bytes()));
    assert_eq!(client.call(&sadd), int(1000));
    assert_eq!(client.cmd("PEXPIRE big 1"), int(1));
    wait_until("the set to be freed", || {
        client.cmd("DBSIZE") == int(0)
            && info_field(&mut client, "memory", "lazyfreed_objects").as_deref() == Some("1")
    });
}

/// LATENCY HISTOGRAM's reply as (command, calls).
fn histogram_calls(client: &mut RawClient, args: &str) -> Vec<(String, i64)> {
    let items = client.cmd(&format!("LATENCY HISTOGRAM {args}")).items();
    items
        .chunks(2)
        .map(|pair| {
            let details = pair[1].items();
            assert_eq!(details[0], bulk("calls"));
            assert_eq!(details[2], bulk("histogram_usec"));
            let buckets = details[3].items();
            assert!(!buckets.is_empty() && buckets.len() % 2 == 0);
            (pair[0].text(), details[1].integer())
        })
        .collect()
}

#[test]
fn latency_histograms_and_info_latencystats() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(
        histogram_calls(&mut client, ""),
        vec![("config|resetstat".to_string(), 1)]
    );
    assert_eq!(client.cmd("SET a b"), ok());
    assert_eq!(client.cmd("SET c d"), ok());
    assert_eq!(client.cmd("CLIENT ID").integer() > 0, true);
    assert_eq!(
        histogram_calls(&mut client, "set blabla"),
        vec![("set".to_string(), 2)]
    );
    assert_eq!(
        histogram_calls(&mut client, "client"),
        vec![("client|id".to_string(), 1)]
    );
    assert_eq!(
        histogram_calls(&mut client, "client|id"),
        vec![("client|id".to_string(), 1)]
    );
    assert_eq!(histogram_calls(&mut client, "blabla"), vec![]);
    let info = client.cmd("INFO latencystats").text();
    let line = info
        .split("\r\n")
        .find(|line| line.starts_with("latency_percentiles_usec_set:"))
        .expect("set's percentiles");
    assert!(
        line.contains(":p50=") && line.contains(",p99=") && line.contains(",p99.9="),
        "{line}"
    );
    assert_eq!(
        client.call(&[
            b"CONFIG",
            b"SET",
            b"latency-tracking-info-percentiles",
            b"0.0 50.0 100.0"
        ]),
        ok()
    );
    let info = client.cmd("INFO latencystats").text();
    assert!(info.contains("latency_percentiles_usec_set:p0="), "{info}");
    assert!(info.contains(",p100="), "{info}");
    assert_eq!(client.cmd("CONFIG SET latency-tracking no"), ok());
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(client.cmd("SET a b"), ok());
    assert_eq!(client.cmd("INFO latencystats").text(), "# Latencystats\r\n");
    assert_eq!(histogram_calls(&mut client, ""), vec![]);
}

#[test]
fn slowlog_records_the_commands_a_script_runs() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("CLIENT SETNAME runner"), ok());
    assert_eq!(client.cmd("CONFIG SET slowlog-log-slower-than 0"), ok());
    assert_eq!(client.cmd("SLOWLOG RESET"), ok());
    assert_eq!(
        client.call(&[b"EVAL", b"return redis.call('ping')", b"0"]),
        status("PONG")
    );
    let entries = client.cmd("SLOWLOG GET 2").items();
    assert_eq!(entries.len(), 2);
    // Newest first: the script, then the command it ran, both under the caller's name.
    assert_eq!(
        entries[0].items()[3],
        bulks(&["EVAL", "return redis.call('ping')", "0"])
    );
    assert_eq!(entries[1].items()[3], bulks(&["ping"]));
    assert_eq!(entries[1].items()[5], bulk("runner"));
}

/// Writing three times `maxmemory` under allkeys-lru: memory stays at the limit (used_memory
/// over it by at most the last write, as eviction runs before each command; resident memory
/// near it), keys are evicted, and the last keys written are there.
#[test]
fn resident_memory_stays_near_maxmemory_while_evicting() {
    const LIMIT_BYTES: i64 = 32 << 20;
    let server = TestServer::start(&["--maxmemory", "32mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut client = server.client();
    let baseline = server.resident_bytes() as i64;
    let value = vec![b'v'; 500];
    // 96 MB of values, 100 keys per MSET.
    common::fill(&mut client, 2_000, 100, &value);
    let used = used_memory(&mut client);
    assert!(used <= LIMIT_BYTES + (256 << 10), "used_memory {used}");
    assert!(evicted_keys(&mut client) > 100_000);
    let keys = client.cmd("DBSIZE").integer();
    assert!((40_000..100_000).contains(&keys), "{keys} keys");
    assert!(exists(&mut client, "filler:1999:99"));
    let growth = server.resident_bytes() as i64 - baseline;
    // Redis 7.0 grows by 34 MB here; Cinnabar by 41-58 MB: freed blocks go back to the
    // jemalloc arena of the thread that allocated them, so each worker's arena keeps its own
    // free pages (one arena matches Redis, at a cost in allocation contention).
    assert!(
        growth <= LIMIT_BYTES * 2,
        "resident memory grew by {growth} bytes for a {LIMIT_BYTES}-byte limit"
    );
}
