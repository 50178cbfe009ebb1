//! Server administration commands: INFO, CONFIG, COMMAND, DEBUG, SHUTDOWN, FLUSHALL, FLUSHDB,
//! TIME, DBSIZE, with Redis 7.2's replies and errors.

mod common;

use std::io::{Read, Write};

use common::*;

/// The value of `field` in an INFO text.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
}

fn info(client: &mut RawClient, sections: &str) -> String {
    client.cmd(&format!("INFO {sections}")).text()
}

#[test]
fn info_sections_and_layout() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let default = client.cmd("INFO").text();
    assert!(
        default.starts_with("# Server\r\nredis_version:7.2.4\r\n"),
        "{default}"
    );
    assert!(default.ends_with("\r\n"));
    for header in [
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(
            default.contains(&format!("\r\n\r\n{header}\r\n")),
            "{header}"
        );
    }
    assert!(!default.contains("# Commandstats") && !default.contains("# Latencystats"));
    for field in [
        "redis_mode",
        "os",
        "arch_bits",
        "process_id",
        "run_id",
        "tcp_port",
        "uptime_in_seconds",
        "uptime_in_days",
        "hz",
        "executable",
        "config_file",
        "connected_clients",
        "blocked_clients",
        "used_memory",
        "used_memory_human",
        "used_memory_rss",
        "maxmemory",
        "maxmemory_policy",
        "mem_fragmentation_ratio",
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "rejected_connections",
        "expired_keys",
        "evicted_keys",
        "keyspace_hits",
        "keyspace_misses",
        "total_error_replies",
        "role",
        "connected_slaves",
        "master_repl_offset",
        "used_cpu_sys",
        "used_cpu_user",
        "cluster_enabled",
    ] {
        assert!(info_field(&default, field).is_some(), "missing {field}");
    }
    assert_eq!(info_field(&default, "redis_mode").unwrap(), "standalone");
    assert_eq!(info_field(&default, "role").unwrap(), "master");
    assert_eq!(info_field(&default, "connected_slaves").unwrap(), "0");
    assert_eq!(info_field(&default, "cluster_enabled").unwrap(), "0");
    assert_eq!(
        info_field(&default, "tcp_port").unwrap(),
        server.port.to_string()
    );
    assert_eq!(
        info_field(&default, "maxmemory_policy").unwrap(),
        "noeviction"
    );
    let used: u64 = info_field(&default, "used_memory")
        .unwrap()
        .parse()
        .unwrap();
    assert!(used > 0);
    let cpu = info_field(&default, "used_cpu_user").unwrap();
    assert!(
        cpu.split_once('.')
            .is_some_and(|(_, micros)| micros.len() == 6),
        "{cpu}"
    );

    let cpu_only = info(&mut client, "cpu");
    assert!(cpu_only.starts_with("# CPU\r\nused_cpu_sys:"));
    assert!(!cpu_only.contains("used_memory"));
    // Section names are case-insensitive, unknown ones add nothing, duplicates count once.
    assert_eq!(info(&mut client, "nosuchsection"), "");
    let stats = info(&mut client, "COMMANDSTATS");
    assert!(
        stats.starts_with("# Commandstats\r\ncmdstat_info:calls="),
        "{stats}"
    );
    let twice = info(&mut client, "cpu cpu default");
    assert_eq!(twice.matches("# CPU").count(), 1);
    assert!(twice.contains("# Server") && !twice.contains("rejected_calls"));
    for everything in ["all", "everything"] {
        let text = info(&mut client, everything);
        assert!(text.contains("# Commandstats") && text.contains("# Latencystats"));
        assert!(text.contains("rejected_calls"));
    }
    assert_eq!(
        client
            .cmd("INFO server clients")
            .text()
            .matches("# ")
            .count(),
        2
    );
}

#[test]
fn info_keyspace_and_counters() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(info(&mut client, "keyspace"), "# Keyspace\r\n");
    client.cmd("SET a 1");
    client.cmd("SET b 2");
    client.cmd("SELECT 3");
    client.cmd("SET c 3");
    assert_eq!(
        info(&mut client, "keyspace"),
        "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"
    );
    let before: u64 = info_field(&info(&mut client, "stats"), "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    client.cmd("PING");
    let after: u64 = info_field(&info(&mut client, "stats"), "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, before + 2);
}

#[test]
fn error_and_command_stats() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(info(&mut client, "errorstats"), "# Errorstats\r\n");
    client.cmd("NOSUCH");
    client.cmd("GET");
    client.cmd("SET a b");
    client.cmd("AUTH x");
    assert_eq!(
        info(&mut client, "errorstats"),
        "# Errorstats\r\nerrorstat_ERR:count=3\r\n"
    );
    assert_eq!(
        client.call(&[b"DEBUG", b"ERROR", b"WEIRDO something"]),
        error("WEIRDO something")
    );
    let stats = info(&mut client, "stats errorstats commandstats");
    assert_eq!(info_field(&stats, "total_error_replies").unwrap(), "4");
    assert_eq!(info_field(&stats, "errorstat_WEIRDO").unwrap(), "count=1");
    assert!(info_field(&stats, "cmdstat_get")
        .unwrap()
        .ends_with(",rejected_calls=1,failed_calls=0"));
    let set = info_field(&stats, "cmdstat_set").unwrap();
    assert!(set.starts_with("calls=1,usec=") && set.ends_with(",rejected_calls=0,failed_calls=0"));
    assert!(info_field(&stats, "cmdstat_auth")
        .unwrap()
        .ends_with(",rejected_calls=0,failed_calls=1"));
    assert!(info_field(&stats, "cmdstat_config|resetstat").is_some());
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    let reset = info(&mut client, "stats errorstats commandstats");
    assert_eq!(info_field(&reset, "total_error_replies").unwrap(), "0");
    assert!(info_field(&reset, "errorstat_ERR").is_none());
    assert!(info_field(&reset, "cmdstat_get").is_none());
    // RESETSTAT itself is counted once it finishes, as in Redis.
    assert_eq!(info_field(&reset, "total_commands_processed").unwrap(), "1");
    assert!(info_field(&reset, "cmdstat_config|resetstat")
        .unwrap()
        .starts_with("calls=1,"));
}

#[test]
fn config_get_and_set() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("CONFIG GET maxmemory"),
        bulks(&["maxmemory", "0"])
    );
    assert_eq!(
        client.cmd("CONFIG GET MAXMEMORY"),
        bulks(&["MAXMEMORY", "0"])
    );
    assert_eq!(client.cmd("CONFIG GET nosuch"), array(vec![]));
    assert_eq!(
        client.cmd("CONFIG GET hash-max-ziplist-entries"),
        bulks(&["hash-max-ziplist-entries", "128"])
    );
    let pattern = client.cmd("CONFIG GET *of").items();
    assert_eq!(
        pattern,
        vec![bulk("replicaof"), bulk(""), bulk("slaveof"), bulk("")]
    );
    assert_eq!(client.cmd("CONFIG SET maxmemory 10mb"), ok());
    assert_eq!(
        client.cmd("CONFIG GET maxmemory"),
        bulks(&["maxmemory", "10485760"])
    );
    assert_eq!(client.cmd("CONFIG SET hz 1000 timeout 30"), ok());
    assert_eq!(
        client.cmd("CONFIG GET hz timeout"),
        bulks(&["hz", "500", "timeout", "30"])
    );
    let cases = [
        ("CONFIG SET nosuch 1", "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
        ("CONFIG SET maxmemory 1 maxmemory 2", "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"),
        ("CONFIG SET daemonize yes", "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
        ("CONFIG SET dir /tmp", "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
        ("CONFIG SET port abc", "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"),
        ("CONFIG SET maxmemory-clients 200%", "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"),
        ("CONFIG SET maxmemory", "ERR wrong number of arguments for 'config|set' command"),
        ("CONFIG SET maxmemory 1 timeout", "ERR wrong number of arguments for 'config|set' command"),
        ("CONFIG GET", "ERR wrong number of arguments for 'config|get' command"),
    ];
    for (command, expected) in cases {
        assert_eq!(client.cmd(command), error(expected), "{command}");
    }
    // A failing pair leaves every other pair unapplied.
    assert_eq!(
        client.cmd("CONFIG SET maxmemory 1 maxmemory-clients 200% timeout 5"),
        error("ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100")
    );
    assert_eq!(
        client.cmd("CONFIG GET maxmemory timeout"),
        bulks(&["maxmemory", "10485760", "timeout", "30"])
    );
    // Every option CONFIG GET lists can be set back to the value it shows.
    let all = client.cmd("CONFIG GET *").items();
    let immutable = [
        "daemonize",
        "databases",
        "io-threads",
        "io-threads-do-reads",
        "logfile",
        "pidfile",
        "supervised",
        "syslog-enabled",
        "syslog-facility",
        "syslog-ident",
        "unixsocket",
        "unixsocketperm",
        "cluster-enabled",
        "cluster-config-file",
        "cluster-port",
        "tcp-backlog",
        "always-show-logo",
        "set-proc-title",
        "appendfilename",
        "appenddirname",
        "aclfile",
        "rdbchecksum",
        "enable-protected-configs",
        "enable-debug-command",
        "enable-module-command",
        "replicaof",
        "slaveof",
        "dir",
        "dbfilename",
        "disable-thp",
        "socket-mark-id",
        "worker-threads",
        "server_cpulist",
        "bio_cpulist",
        "aof_rewrite_cpulist",
        "bgsave_cpulist",
        "server-cpulist",
        "bio-cpulist",
        "aof-rewrite-cpulist",
        "bgsave-cpulist",
    ];
    for pair in all.chunks(2) {
        let name = pair[0].text();
        if immutable.contains(&name.as_str()) {
            continue;
        }
        let value = pair[1].text();
        assert_eq!(
            client.call(&[b"CONFIG", b"SET", name.as_bytes(), value.as_bytes()]),
            ok(),
            "CONFIG SET {name} {value}"
        );
    }
}

#[test]
fn config_protected_and_help() {
    let server = TestServer::start(&["--enable-protected-configs", "yes"]);
    let mut client = server.client();
    let directory = server.dir.join("elsewhere");
    std::fs::create_dir_all(&directory).unwrap();
    let directory = directory.canonicalize().unwrap().display().to_string();
    assert_eq!(
        client.call(&[b"CONFIG", b"SET", b"dir", directory.as_bytes()]),
        ok()
    );
    assert_eq!(client.cmd("CONFIG GET dir"), bulks(&["dir", &directory]));
    assert_eq!(
        client.cmd("CONFIG SET dir /nonexistent/path"),
        error("ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory")
    );
    assert_eq!(client.cmd("CONFIG GET dir"), bulks(&["dir", &directory]));
    let help = client.cmd("CONFIG HELP").items();
    assert_eq!(
        help[0],
        status("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    assert_eq!(help.last().unwrap(), &status("    Prints this help."));
    assert_eq!(help.len(), 11);
    assert_eq!(
        client.cmd("CONFIG REWRITE"),
        error("ERR The server is running without a config file")
    );
}

/// A server started from a configuration file (which must come first on the command line).
struct ServerWithFile {
    child: std::process::Child,
    port: u16,
}

impl ServerWithFile {
    fn start(path: &std::path::Path) -> ServerWithFile {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cinnabar-server"))
            .arg(path)
            .args(["--port", &port.to_string(), "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while server_pid_matches(port, child.id()) != Some(true) {
            assert!(std::time::Instant::now() < deadline, "server did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        ServerWithFile { child, port }
    }
}

impl Drop for ServerWithFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn config_rewrite_preserves_the_file() {
    let directory = std::env::temp_dir().join(format!("cinnabar-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("redis.conf");
    std::fs::write(
        &path,
        "# Top comment\nmaxmemory 1mb\n\n# keep me\nhash-max-ziplist-entries 20\nsave 100 10\nsave 200 20\nrename-command KEYS \"\"\n",
    )
    .unwrap();
    let server = ServerWithFile::start(&path);
    let mut client = RawClient::connect(server.port);
    let info_text = info(&mut client, "server");
    assert_eq!(
        info_field(&info_text, "config_file").unwrap(),
        path.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(
        client.cmd("CONFIG GET hash-max-listpack-entries"),
        bulks(&["hash-max-listpack-entries", "20"])
    );
    assert_eq!(client.cmd("CONFIG SET maxmemory 2gb maxclients 50"), ok());
    assert_eq!(
        client.cmd("CONFIG SET hash-max-listpack-entries 100 save"),
        error("ERR wrong number of arguments for 'config|set' command")
    );
    assert_eq!(client.cmd("CONFIG SET hash-max-listpack-entries 100"), ok());
    assert_eq!(client.call(&[b"CONFIG", b"SET", b"save", b"300 30"]), ok());
    assert_eq!(client.cmd("CONFIG REWRITE"), ok());
    let rewritten = std::fs::read_to_string(&path).unwrap();
    let generated = "# Generated by CONFIG REWRITE\n";
    let (kept, appended) = rewritten.split_once(generated).expect("signature");
    assert_eq!(
        kept,
        "# Top comment\nmaxmemory 2gb\n\n# keep me\nhash-max-listpack-entries 100\nsave 300 30\n\nrename-command KEYS \"\"\n"
    );
    let appended: Vec<&str> = appended.lines().collect();
    assert!(appended.contains(&"maxclients 50"), "{appended:?}");
    assert!(
        appended.iter().any(|line| line.starts_with("dir \"")),
        "{appended:?}"
    );
    assert!(!appended
        .iter()
        .any(|line| line.starts_with("maxmemory-policy")));
    // A second rewrite with nothing changed leaves the file as it is.
    assert_eq!(client.cmd("CONFIG REWRITE"), ok());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
    drop(client);
    drop(server);
    // The rewritten file starts a server with the same settings.
    let server = ServerWithFile::start(&path);
    let mut client = RawClient::connect(server.port);
    assert_eq!(
        client.cmd("CONFIG GET maxmemory maxclients save"),
        bulks(&[
            "maxmemory",
            "2147483648",
            "maxclients",
            "50",
            "save",
            "300 30"
        ])
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn command_introspection() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let count = client.cmd("COMMAND COUNT").integer();
    assert!(count > 10);
    assert_eq!(client.cmd("COMMAND").items().len() as i64, count);
    assert_eq!(client.cmd("COMMAND INFO").items().len() as i64, count);
    let get = client.cmd("COMMAND INFO get").items();
    let get = get[0].items();
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], int(2));
    assert_eq!(get[2], array(vec![status("readonly"), status("fast")]));
    assert_eq!(&get[3..6], &[int(1), int(1), int(1)]);
    assert_eq!(
        get[6],
        array(vec![status("@read"), status("@string"), status("@fast")])
    );
    assert_eq!(get[7], array(vec![]));
    assert_eq!(
        get[8],
        array(vec![array(vec![
            bulk("flags"),
            array(vec![status("RO"), status("access")]),
            bulk("begin_search"),
            array(vec![
                bulk("type"),
                bulk("index"),
                bulk("spec"),
                array(vec![bulk("index"), int(1)])
            ]),
            bulk("find_keys"),
            array(vec![
                bulk("type"),
                bulk("range"),
                bulk("spec"),
                array(vec![
                    bulk("lastkey"),
                    int(0),
                    bulk("keystep"),
                    int(1),
                    bulk("limit"),
                    int(0)
                ]),
            ]),
        ])])
    );
    assert_eq!(get[9], array(vec![]));
    assert_eq!(
        client.cmd("COMMAND INFO get|key config|get|key nosuch"),
        array(vec![Reply::Nil, Reply::Nil, Reply::Nil])
    );
    let config_get = client.cmd("COMMAND INFO CONFIG|GET").items()[0].items();
    assert_eq!(config_get[0], bulk("config|get"));
    assert_eq!(config_get[1], int(-3));
    let config = client.cmd("COMMAND INFO config").items()[0].items();
    assert!(config[9].items().len() >= 5);
    // GETKEYS and GETKEYSANDFLAGS.
    assert_eq!(client.cmd("COMMAND GETKEYS get key"), bulks(&["key"]));
    assert_eq!(
        client.cmd("COMMAND GETKEYSANDFLAGS set k1 v1"),
        array(vec![array(vec![
            bulk("k1"),
            array(vec![status("OW"), status("update")])
        ])])
    );
    assert_eq!(
        client.cmd("COMMAND GETKEYSANDFLAGS set k1 v1 get"),
        array(vec![array(vec![
            bulk("k1"),
            array(vec![status("RW"), status("access"), status("update")])
        ])])
    );
    assert_eq!(
        client.cmd("COMMAND GETKEYS del a b c"),
        bulks(&["a", "b", "c"])
    );
    let cases = [
        ("COMMAND GETKEYS nosuch a", "ERR Invalid command specified"),
        (
            "COMMAND GETKEYS config nosuch",
            "ERR Invalid command specified",
        ),
        (
            "COMMAND GETKEYS get",
            "ERR Invalid number of arguments specified for command",
        ),
        (
            "COMMAND GETKEYS ping",
            "ERR The command has no key arguments",
        ),
        (
            "COMMAND GETKEYS",
            "ERR wrong number of arguments for 'command|getkeys' command",
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(client.cmd(command), error(expected), "{command}");
    }
    // LIST and its filters.
    let all = client.cmd("COMMAND LIST").items();
    assert!(all.contains(&bulk("get")) && all.contains(&bulk("client|list")));
    assert_eq!(
        client.cmd("COMMAND LIST FILTERBY PATTERN get"),
        bulks(&["get"])
    );
    let config = client
        .cmd("COMMAND LIST FILTERBY PATTERN config|*re*")
        .items();
    assert!(config.contains(&bulk("config|resetstat")) && config.contains(&bulk("config|rewrite")));
    let admin = client.cmd("COMMAND LIST FILTERBY ACLCAT admin").items();
    assert!(admin.contains(&bulk("config|set")) && !admin.contains(&bulk("get")));
    assert_eq!(
        client.cmd("COMMAND LIST FILTERBY ACLCAT nosuch"),
        array(vec![])
    );
    assert_eq!(
        client.cmd("COMMAND LIST FILTERBY MODULE nosuch"),
        array(vec![])
    );
    for bad in [
        "COMMAND LIST bad",
        "COMMAND LIST FILTERBY bad x",
        "COMMAND LIST FILTERBY PATTERN",
    ] {
        assert_eq!(client.cmd(bad), error("ERR syntax error"), "{bad}");
    }
    // DOCS.
    let docs = client.cmd("COMMAND DOCS get nosuch").items();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], bulk("get"));
    let fields = docs[1].items();
    assert_eq!(fields[0], bulk("summary"));
    assert!(fields.contains(&bulk("group")) && fields.contains(&bulk("string")));
    assert!(fields.contains(&bulk("arguments")));
    let help = client.cmd("COMMAND HELP").items();
    assert_eq!(
        help[0],
        status("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
}

#[test]
fn debug_requires_the_option() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("DEBUG HELP"),
        error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.")
    );
    let local = TestServer::start(&["--enable-debug-command", "local"]);
    let mut client = local.client();
    assert_eq!(
        client.cmd("DEBUG HELP").items()[0],
        status("DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
}

#[test]
fn debug_subcommands() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    // POPULATE creates what is missing, with Redis's names and values.
    assert_eq!(client.cmd("SET key:1 mine"), ok());
    assert_eq!(client.cmd("DEBUG POPULATE 3"), ok());
    assert_eq!(client.cmd("DBSIZE"), int(3));
    assert_eq!(
        client.cmd("MGET key:0 key:1 key:2"),
        bulks(&["value:0", "mine", "value:2"])
    );
    assert_eq!(client.cmd("DEBUG POPULATE 2 p 9"), ok());
    assert_eq!(client.cmd("GET p:1"), Reply::Bulk(b"value:1\0\0".to_vec()));
    assert_eq!(client.cmd("DEBUG POPULATE 1 q 3"), ok());
    assert_eq!(client.cmd("GET q:0"), bulk("val"));
    assert_eq!(
        client.cmd("DEBUG POPULATE -1"),
        error("ERR value is out of range, must be positive")
    );
    assert_eq!(client.cmd("FLUSHALL"), ok());
    assert_eq!(client.cmd("DEBUG DIGEST"), status(&"0".repeat(40)));
    client.cmd("SET foo bar");
    // Values computed by redis-server for the same dataset.
    assert_eq!(
        client.cmd("DEBUG DIGEST"),
        status("d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a")
    );
    assert_eq!(
        client.cmd("DEBUG DIGEST-VALUE foo nokey"),
        array(vec![
            status("68467c70ae30376e7ce005bcc8827f5ba7fd67dc"),
            status(&"0".repeat(40))
        ])
    );
    let object = client.cmd("DEBUG OBJECT foo").text();
    assert!(object.starts_with("Value at:0x"), "{object}");
    assert!(object.contains(" refcount:1 encoding:embstr serializedlength:4 lru:"));
    assert!(object.ends_with(" lru_seconds_idle:0"));
    assert_eq!(client.cmd("DEBUG OBJECT nokey"), error("ERR no such key"));
    assert_eq!(client.cmd("DEBUG SLEEP 0"), ok());
    assert_eq!(client.cmd("DEBUG SLEEP 0.01"), ok());
    assert_eq!(client.cmd("DEBUG LOG hello"), ok());
    assert_eq!(client.cmd("DEBUG JMAP"), ok());
    assert_eq!(client.cmd("DEBUG CHANGE-REPL-ID"), ok());
    assert_eq!(client.cmd("DEBUG QUICKLIST-PACKED-THRESHOLD 1k"), ok());
    assert_eq!(
        client.cmd("DEBUG QUICKLIST-PACKED-THRESHOLD abc"),
        error("ERR argument must be a memory value bigger than 1 and smaller than 4gb")
    );
    assert_eq!(
        client.cmd("DEBUG STRINGMATCH-TEST"),
        status("Apparently Redis did not crash: test passed")
    );
    assert_eq!(
        client.cmd("DEBUG SLEEP"),
        error("ERR unknown subcommand or wrong number of arguments for 'SLEEP'. Try DEBUG HELP.")
    );
    assert_eq!(
        client.cmd("DEBUG NOSUCH"),
        error("ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP.")
    );
    assert_eq!(
        client.cmd("DEBUG"),
        error("ERR wrong number of arguments for 'debug' command")
    );
    // PROTOCOL in RESP2 and RESP3.
    assert_eq!(client.cmd("DEBUG PROTOCOL string"), bulk("Hello World"));
    assert_eq!(client.cmd("DEBUG PROTOCOL integer"), int(12345));
    assert_eq!(client.cmd("DEBUG PROTOCOL double"), bulk("3.141"));
    assert_eq!(
        client.cmd("DEBUG PROTOCOL bignum"),
        bulk("1234567999999999999999999999999999999")
    );
    assert_eq!(client.cmd("DEBUG PROTOCOL null"), Reply::Nil);
    assert_eq!(client.cmd("DEBUG PROTOCOL true"), int(1));
    assert_eq!(client.cmd("DEBUG PROTOCOL false"), int(0));
    assert_eq!(
        client.cmd("DEBUG PROTOCOL array"),
        array(vec![int(0), int(1), int(2)])
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL map"),
        array(vec![int(0), int(0), int(1), int(1), int(2), int(0)])
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL attrib"),
        bulk("Some real reply following the attribute")
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL verbatim"),
        bulk("This is a verbatim\nstring")
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL push"),
        error("ERR RESP2 is not supported by this command")
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL nosuch"),
        error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
    );
    client.cmd("HELLO 3");
    assert_eq!(
        client.cmd("DEBUG PROTOCOL bignum"),
        Reply::BigNumber("1234567999999999999999999999999999999".into())
    );
    assert_eq!(client.cmd("DEBUG PROTOCOL true"), Reply::Boolean(true));
    assert_eq!(
        client.cmd("DEBUG PROTOCOL double"),
        Reply::Double("3.141".into())
    );
    assert_eq!(client.cmd("DEBUG PROTOCOL null"), Reply::Null);
    assert_eq!(
        client.cmd("DEBUG PROTOCOL set"),
        Reply::Set(vec![int(0), int(1), int(2)])
    );
    assert_eq!(
        client.cmd("DEBUG PROTOCOL verbatim"),
        Reply::Verbatim("txt".into(), b"This is a verbatim\nstring".to_vec())
    );
    drop(client);
    // The attribute as raw bytes (clients without RESP3 attribute support skip it).
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut request = RawClient::encode(&[b"HELLO", b"3"]);
    request.extend(RawClient::encode(&[b"DEBUG", b"PROTOCOL", b"attrib"]));
    stream.write_all(&request).unwrap();
    let expected: &[u8] = b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n";
    let mut raw = Vec::new();
    while !raw.ends_with(expected) {
        let mut buffer = [0u8; 4096];
        let read = stream.read(&mut buffer).unwrap();
        assert!(
            read > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buffer[..read]);
    }
}

#[test]
fn flush_time_dbsize() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SET a 1");
    client.cmd("SET b 2");
    assert_eq!(client.cmd("DBSIZE"), int(2));
    assert_eq!(
        client.cmd("DBSIZE x"),
        error("ERR wrong number of arguments for 'dbsize' command")
    );
    for bad in [
        "FLUSHDB x",
        "FLUSHDB ASYNC SYNC",
        "FLUSHALL x",
        "FLUSHALL SYNC ASYNC",
    ] {
        assert_eq!(client.cmd(bad), error("ERR syntax error"), "{bad}");
    }
    assert_eq!(client.cmd("DBSIZE"), int(2));
    assert_eq!(client.cmd("FLUSHDB async"), ok());
    assert_eq!(client.cmd("DBSIZE"), int(0));
    client.cmd("SET a 1");
    client.cmd("SELECT 1");
    client.cmd("SET a 1");
    assert_eq!(client.cmd("FLUSHALL SYNC"), ok());
    assert_eq!(client.cmd("DBSIZE"), int(0));
    client.cmd("SELECT 0");
    assert_eq!(client.cmd("DBSIZE"), int(0));
    let time = client.cmd("TIME").items();
    assert_eq!(time.len(), 2);
    let seconds: u64 = time[0].text().parse().unwrap();
    let micros: u64 = time[1].text().parse().unwrap();
    assert!(seconds > 1_700_000_000 && micros < 1_000_000);
    assert_eq!(
        client.cmd("TIME x"),
        error("ERR wrong number of arguments for 'time' command")
    );
}

#[test]
fn shutdown_options_and_errors() {
    let mut server = TestServer::start(&[]);
    let mut client = server.client();
    for bad in [
        "SHUTDOWN bad",
        "SHUTDOWN SAVE NOSAVE",
        "SHUTDOWN ABORT NOW",
        "SHUTDOWN ABORT SAVE",
    ] {
        assert_eq!(client.cmd(bad), error("ERR syntax error"), "{bad}");
    }
    assert_eq!(
        client.cmd("SHUTDOWN ABORT"),
        error("ERR No shutdown in progress.")
    );
    // A save that fails (the RDB file's name is taken by a directory) keeps the server up.
    std::fs::create_dir_all(server.dir.join("dump.rdb")).unwrap();
    assert_eq!(
        client.cmd("SHUTDOWN SAVE"),
        error("ERR Errors trying to SHUTDOWN. Check logs.")
    );
    assert_eq!(client.cmd("PING"), status("PONG"));
    client.send(&[b"SHUTDOWN", b"NOSAVE", b"NOW"]);
    assert!(client.is_closed());
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn shutdown_save_force_exits() {
    let mut server = TestServer::start(&[]);
    let mut client = server.client();
    client.send(&[b"SHUTDOWN", b"SAVE", b"FORCE"]);
    assert!(client.is_closed());
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn config_set_port_moves_the_listener() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    assert_eq!(
        client.call(&[b"CONFIG", b"SET", b"maxmemory", b"10000001", b"port", taken_port.as_bytes()]),
        error("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.")
    );
    // Rolled back: every value, and the listener.
    assert_eq!(
        client.cmd("CONFIG GET maxmemory port"),
        bulks(&["maxmemory", "0", "port", &server.port.to_string()])
    );
    assert_eq!(server.client().cmd("PING"), status("PONG"));
    drop(taken);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new_port = free.local_addr().unwrap().port();
    drop(free);
    assert_eq!(
        client.call(&[b"CONFIG", b"SET", b"port", new_port.to_string().as_bytes()]),
        ok()
    );
    // The connection that asked stays open; new ones go to the new port.
    assert_eq!(client.cmd("PING"), status("PONG"));
    let mut moved = RawClient::connect(new_port);
    let info_text = info(&mut moved, "server");
    assert_eq!(
        info_field(&info_text, "tcp_port").unwrap(),
        new_port.to_string()
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[test]
fn container_commands_have_help_and_modules_are_refused() {
    let server = TestServer::start(&["--enable-module-command", "yes"]);
    let mut client = server.client();
    for name in [
        "OBJECT", "MEMORY", "PUBSUB", "SLOWLOG", "CLIENT", "COMMAND", "CONFIG", "FUNCTION",
        "MODULE", "XINFO", "XGROUP", "LATENCY", "SCRIPT",
    ] {
        let help = client.cmd(&format!("{name} HELP")).items();
        assert_eq!(
            help[0].text(),
            format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(help[help.len() - 2].text(), "HELP");
    }
    assert_eq!(client.cmd("MODULE LIST"), array(vec![]));
    assert_eq!(
        client.cmd("MODULE LOAD /tmp/nothing.so"),
        error("ERR Error loading the extension. Please check the server logs.")
    );
    assert_eq!(
        client.cmd("MODULE UNLOAD nothing"),
        error("ERR Error unloading module: no such module with that name")
    );
}

/// A server started from a configuration file with its log on stdout: the log lines up to
/// `Ready to accept connections`, and a client.
struct LoggedServer {
    child: std::process::Child,
    port: u16,
    directory: std::path::PathBuf,
    log: Vec<String>,
}

impl LoggedServer {
    /// Starts `cinnabar-server <file> --port <free> --dir <temporary> --pidfile <temporary>`
    /// and reads its log until it is ready (failing if it exits first).
    fn start(file: &str, name: &str) -> LoggedServer {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let directory =
            std::env::temp_dir().join(format!("cinnabar-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cinnabar-server"))
            .arg(&path)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&directory)
            .arg("--pidfile")
            .arg(directory.join("server.pid"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.contains("Ready to accept connections");
                    log.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let mut errors = String::new();
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some(mut stderr) = child.stderr.take() {
                        let _ = stderr.read_to_string(&mut errors);
                    }
                    panic!("{file}: the server was not ready; log {log:#?}, stderr {errors}");
                }
            }
        }
        LoggedServer {
            child,
            port,
            directory,
            log,
        }
    }

    /// The index of the first log line containing `text`.
    fn line_with(&self, text: &str) -> usize {
        self.log
            .iter()
            .position(|line| line.contains(text))
            .unwrap_or_else(|| panic!("no log line with {text:?} in {:#?}", self.log))
    }

    /// Checks the lines Valkey's suite and start-up scripts wait for: the banner's
    /// ` PID: <pid>`, then `Server initialized`, then `Ready to accept connections`; and the
    /// pid file.
    fn check_startup_lines(&self) {
        let pid = self.child.id();
        let banner = self.line_with(&format!(" PID: {pid}"));
        let initialized = self.line_with("Server initialized");
        let ready = self.line_with("Ready to accept connections");
        assert!(
            banner < initialized && initialized < ready,
            "{:#?}",
            self.log
        );
        assert_eq!(
            std::fs::read_to_string(self.directory.join("server.pid")).unwrap(),
            format!("{pid}\n")
        );
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[test]
fn starts_with_the_stock_redis_conf() {
    let server = LoggedServer::start("tests/fixtures/config/redis-7.2-stock.conf", "stock-conf");
    server.check_startup_lines();
    // Options that cannot apply say so once, after logging is set up.
    server
        .line_with("Option 'cluster-config-file' is accepted for compatibility and has no effect");
    let mut client = RawClient::connect(server.port);
    let expected = [
        ("maxmemory-policy", "noeviction"),
        ("hash-max-listpack-entries", "512"),
        ("hash-max-ziplist-entries", "512"),
        ("save", "3600 1 300 100 60 10000"),
        ("auto-aof-rewrite-min-size", "67108864"),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        ),
        ("proc-title-template", "{title} {listen-addr} {server-mode}"),
        ("busy-reply-threshold", "5000"),
        ("latency-tracking-info-percentiles", "50 99 99.9"),
        ("bind", "127.0.0.1 -::1"),
        ("appenddirname", "appendonlydir"),
        ("oom-score-adj-values", "0 200 800"),
    ];
    for (name, value) in expected {
        assert_eq!(
            client.cmd(&format!("CONFIG GET {name}")),
            bulks(&[name, value]),
            "{name}"
        );
    }
    assert_eq!(client.cmd("SET k v"), ok());
    assert_eq!(client.cmd("GET k"), bulk("v"));
}

#[test]
fn starts_with_valkeys_test_configuration() {
    let server = LoggedServer::start(
        "tests/fixtures/config/valkey-test-default.conf",
        "valkey-test-conf",
    );
    server.check_startup_lines();
    let mut client = RawClient::connect(server.port);
    let expected = [
        ("notify-keyspace-events", "AKE"),
        ("latency-monitor-threshold", "1"),
        ("save", ""),
        ("enable-debug-command", "yes"),
        ("shutdown-on-sigterm", "force"),
        ("replica-serve-stale-data", "yes"),
    ];
    for (name, value) in expected {
        assert_eq!(
            client.cmd(&format!("CONFIG GET {name}")),
            bulks(&[name, value]),
            "{name}"
        );
    }
    assert_eq!(client.cmd("DEBUG SLEEP 0"), ok());
}

/// This machine's address on its default route (not a loopback address). Connecting a UDP
/// socket sends nothing; it only picks the route.
fn non_loopback_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket.connect("192.0.2.1:9").expect("a default route");
    let address = socket.local_addr().expect("local address").ip();
    assert!(
        !address.is_loopback() && !address.is_unspecified(),
        "{address}"
    );
    address
}

/// Without a configuration file the server listens on the loopback addresses only (its
/// embedded default). A file without `bind` listens on every interface, as Redis's compiled-in
/// default does, and protected mode refuses remote clients while no password is set, with
/// Redis's message, until it is turned off.
#[test]
fn bind_defaults_and_protected_mode() {
    let address = non_loopback_address();
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("CONFIG GET bind"),
        bulks(&["bind", "127.0.0.1 -::1"])
    );
    assert!(std::net::TcpStream::connect((address, server.port)).is_err());

    let directory = std::env::temp_dir().join(format!("cinnabar-bind-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("minimal.conf");
    std::fs::write(&file, "loglevel verbose\n").unwrap();
    let logged = LoggedServer::start(file.to_str().unwrap(), "no-bind");
    let mut local = RawClient::connect(logged.port);
    assert_eq!(local.cmd("CONFIG GET bind"), bulks(&["bind", "* -::*"]));
    // Refused at once, before any request.
    let mut remote = std::net::TcpStream::connect((address, logged.port)).expect("connect");
    let mut refusal = String::new();
    remote.read_to_string(&mut refusal).unwrap();
    assert!(
        refusal.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.")
            && refusal.ends_with("\r\n"),
        "{refusal}"
    );
    assert_eq!(local.cmd("CONFIG SET protected-mode no"), ok());
    let mut remote = std::net::TcpStream::connect((address, logged.port)).expect("connect");
    remote.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    remote.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
    let _ = std::fs::remove_dir_all(&directory);
}

/// `rename-command`: the command answers to its new name only, or to none when renamed to "";
/// CONFIG REWRITE keeps the directive; a command that does not exist stops start-up with
/// Redis's report.
#[test]
fn rename_command() {
    let directory =
        std::env::temp_dir().join(format!("cinnabar-rename-conf-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("renames.conf");
    std::fs::write(
        &file,
        "rename-command flushdb badger\nrename-command SWAPDB \"\"\n",
    )
    .unwrap();
    let server = LoggedServer::start(file.to_str().unwrap(), "rename");
    let mut client = RawClient::connect(server.port);
    assert_eq!(client.cmd("SET k v"), ok());
    assert_eq!(
        client.cmd("FLUSHDB"),
        error("ERR unknown command 'FLUSHDB', with args beginning with: ")
    );
    assert_eq!(
        client.cmd("SWAPDB 0 1"),
        error("ERR unknown command 'SWAPDB', with args beginning with: '0' '1' ")
    );
    assert_eq!(client.cmd("BADGER"), ok());
    assert_eq!(client.cmd("DBSIZE"), int(0));
    assert_eq!(client.cmd("CONFIG REWRITE"), ok());
    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert!(
        rewritten.contains("rename-command flushdb badger\n"),
        "{rewritten}"
    );
    drop(server);

    std::fs::write(&file, "port 0\nrename-command nosuchcommand other\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cinnabar-server"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        report.contains("at line 2\n>>> 'rename-command nosuchcommand other'\nNo such command in rename-command"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

fn info_number(client: &mut RawClient, section: &str, field: &str) -> u64 {
    let info = client.cmd(&format!("INFO {section}")).text();
    info_field(&info, field)
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .parse()
        .expect("a number")
}

/// Redis's event loop figures, for a server of many workers: a cycle is one connection's batch
/// or one cron tick (INFO stats `eventloop_*`, the hidden INFO debug section).
#[test]
fn event_loop_metrics() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let cycles = info_number(&mut client, "stats", "eventloop_cycles");
    let command_us = info_number(&mut client, "stats", "eventloop_duration_cmd_sum");
    assert!(cycles > 0);
    // One batch of three commands: one cycle, three commands' time.
    client.send_raw(b"SET a 1\r\nINCR a\r\nINCR a\r\n");
    for _ in 0..3 {
        client.read_reply();
    }
    assert!(info_number(&mut client, "stats", "eventloop_cycles") >= cycles + 2);
    assert!(info_number(&mut client, "stats", "eventloop_duration_cmd_sum") > command_us);
    assert!(info_number(&mut client, "debug", "eventloop_cmd_per_cycle_max") >= 3);
    assert!(info_number(&mut client, "debug", "eventloop_duration_max") > 0);
    assert_eq!(
        info_number(&mut client, "debug", "eventloop_duration_aof_sum"),
        0
    );
    // The cron's ticks count too (ten a second).
    let cron_us = info_number(&mut client, "debug", "eventloop_duration_cron_sum");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while info_number(&mut client, "debug", "eventloop_duration_cron_sum") == cron_us {
        assert!(std::time::Instant::now() < deadline, "no cron tick counted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The debug section shows only when asked for by name.
    for request in ["INFO", "INFO all", "INFO everything"] {
        let info = client.cmd(request).text();
        assert!(
            !info.contains("# Debug") && !info.contains("eventloop_duration_max"),
            "{request}"
        );
    }
    assert!(client.cmd("INFO debug").text().starts_with("# Debug\r\n"));
    assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());
    assert_eq!(
        info_number(&mut client, "debug", "eventloop_cmd_per_cycle_max"),
        1
    );
}
