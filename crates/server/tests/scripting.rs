//! Lua scripting: EVAL / EVALSHA / SCRIPT / FUNCTION / FCALL, conversions, the sandbox, the
//! bundled libraries, atomicity under concurrency, and a differential check of library output
//! against a real redis-server (CINNABAR_REFERENCE_SERVER).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The text of an error reply (panics on anything else).
fn error_text(reply: Reply) -> String {
    match reply {
        Reply::Error(text) => text,
        other => panic!("not an error: {other:?}"),
    }
}

fn eval(client: &mut RawClient, script: &str, keys: &[&str], args: &[&str]) -> Reply {
    let numkeys = keys.len().to_string();
    let mut argv: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), numkeys.as_bytes()];
    argv.extend(keys.iter().map(|key| key.as_bytes()));
    argv.extend(args.iter().map(|arg| arg.as_bytes()));
    client.call(&argv)
}

#[test]
fn eval_basics_and_conversions_resp2() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(eval(&mut client, "return 1", &[], &[]), int(1));
    assert_eq!(eval(&mut client, "return 3.99", &[], &[]), int(3));
    assert_eq!(eval(&mut client, "return -2.7", &[], &[]), int(-2));
    assert_eq!(eval(&mut client, "return 'x'", &[], &[]), bulk("x"));
    assert_eq!(eval(&mut client, "return true", &[], &[]), int(1));
    assert_eq!(eval(&mut client, "return false", &[], &[]), Reply::Nil);
    assert_eq!(
        eval(&mut client, "redis.setresp(3) return false", &[], &[]),
        int(0)
    );
    assert_eq!(eval(&mut client, "return nil", &[], &[]), Reply::Nil);
    assert_eq!(
        eval(&mut client, "return {1,'a',{2},nil,5}", &[], &[]),
        array(vec![int(1), bulk("a"), array(vec![int(2)])])
    );
    assert_eq!(
        eval(&mut client, "return {ok='fine'}", &[], &[]),
        status("fine")
    );
    assert_eq!(
        eval(&mut client, "return redis.status_reply('S')", &[], &[]),
        status("S")
    );
    assert_eq!(
        eval(&mut client, "return {err='MY bad'}", &[], &[]),
        error("MY bad")
    );
    assert_eq!(
        eval(&mut client, "return redis.error_reply('')", &[], &[]),
        error("ERR")
    );
    assert_eq!(
        eval(&mut client, "return {double=1.5}", &[], &[]),
        bulk("1.5")
    );
    assert_eq!(
        eval(
            &mut client,
            "return {KEYS[1], ARGV[1], #KEYS, #ARGV}",
            &["k"],
            &["a", "b"]
        ),
        array(vec![bulk("k"), bulk("a"), int(1), int(2)])
    );
    // Reply → Lua.
    client.cmd("SET s x");
    client.cmd("RPUSH l a b");
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('GET', 'nokey') == false",
            &[],
            &[]
        ),
        int(1)
    );
    assert_eq!(
        eval(&mut client, "return redis.call('PING').ok", &[], &[]),
        bulk("PONG")
    );
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('LRANGE', 'l', 0, -1)",
            &[],
            &[]
        ),
        bulks(&["a", "b"])
    );
    assert_eq!(
        eval(&mut client, "return redis.pcall('INCR', 's').err", &[], &[]),
        bulk("ERR value is not an integer or out of range")
    );
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('INCRBY', 'n', 2.0)",
            &[],
            &[]
        ),
        int(2)
    );
    // SELECT inside a script changes only the script's database.
    assert_eq!(
        eval(
            &mut client,
            "redis.call('SELECT', 1); return redis.call('SET', 'k', 'v')",
            &[],
            &[]
        ),
        ok()
    );
    assert_eq!(client.cmd("EXISTS k"), int(0));
    client.cmd("SELECT 1");
    assert_eq!(client.cmd("GET k"), bulk("v"));
}

#[test]
fn conversions_resp3() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("HELLO 3");
    // Booleans follow the script's protocol (redis.setresp), not the client's, as in Redis
    // (checked against redis-server): under RESP2 true is 1 and false is null.
    assert_eq!(eval(&mut client, "return true", &[], &[]), int(1));
    assert_eq!(eval(&mut client, "return false", &[], &[]), Reply::Null);
    assert_eq!(
        eval(&mut client, "redis.setresp(3) return true", &[], &[]),
        Reply::Boolean(true)
    );
    assert_eq!(
        eval(&mut client, "redis.setresp(3) return false", &[], &[]),
        Reply::Boolean(false)
    );
    assert_eq!(eval(&mut client, "return nil", &[], &[]), Reply::Null);
    assert_eq!(
        eval(&mut client, "return {double=1.5}", &[], &[]),
        Reply::Double("1.5".into())
    );
    assert_eq!(
        eval(&mut client, "return {big_number='123'}", &[], &[]),
        Reply::BigNumber("123".into())
    );
    assert_eq!(
        eval(&mut client, "return {map={a=1}}", &[], &[]),
        Reply::Map(vec![(bulk("a"), int(1))])
    );
    assert_eq!(
        eval(&mut client, "return {set={a=true}}", &[], &[]),
        Reply::Set(vec![bulk("a")])
    );
    client.cmd("HSET h f v");
    assert_eq!(
        eval(
            &mut client,
            "redis.setresp(3); local m = redis.call('HGETALL', 'h'); return m.map.f",
            &[],
            &[]
        ),
        bulk("v")
    );
    assert_eq!(
        eval(
            &mut client,
            "redis.setresp(3); return redis.call('GET', 'none') == nil",
            &[],
            &[]
        ),
        Reply::Boolean(true)
    );
}

#[test]
fn errors_as_redis() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    client.cmd("SET s x");
    let script = "return redis.call('incr','s')";
    let sha = client.call(&[b"SCRIPT", b"LOAD", script.as_bytes()]).text();
    assert_eq!(
        eval(&mut client, script, &[], &[]),
        error(&format!(
            "ERR value is not an integer or out of range script: {sha}, on @user_script:1."
        ))
    );
    let sha = client.call(&[b"SCRIPT", b"LOAD", b"return foo"]).text();
    assert_eq!(
        eval(&mut client, "return foo", &[], &[]),
        error(&format!("ERR user_script:1: Script attempted to access nonexistent global variable 'foo' script: {sha}, on @user_script:1."))
    );
    let reply = error_text(eval(&mut client, "foo = 1", &[], &[]));
    assert!(
        reply.starts_with("ERR user_script:1: Attempt to modify a readonly table script: "),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "redis.call = nil", &[], &[]));
    assert!(
        reply.contains("Attempt to modify a readonly table"),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "return redis.call('nosuch')", &[], &[]));
    assert!(
        reply.starts_with("ERR Unknown Redis command called from script script: "),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "return redis.call('get')", &[], &[]));
    assert!(
        reply.starts_with("ERR Wrong number of args calling Redis command from script script: "),
        "{reply}"
    );
    let reply = error_text(eval(
        &mut client,
        "return redis.call('subscribe', 'c')",
        &[],
        &[],
    ));
    assert!(
        reply.starts_with("ERR This Redis command is not allowed from script script: "),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "return redis.call('get', {})", &[], &[]));
    assert!(
        reply.starts_with("ERR Command arguments must be strings or integers script: "),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "return redis.call()", &[], &[]));
    assert!(
        reply.starts_with(
            "ERR Please specify at least one argument for this redis lib call script: "
        ),
        "{reply}"
    );
    assert_eq!(
        eval(&mut client, "return 1 +", &[], &[]),
        error("ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'")
    );
    let reply = error_text(client.call(&[b"EVAL_RO", b"return redis.call('set','a','b')", b"0"]));
    assert!(
        reply.starts_with("ERR Write commands are not allowed from read-only scripts. script: "),
        "{reply}"
    );
    let reply = error_text(eval(
        &mut client,
        "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
        &[],
        &[],
    ));
    assert!(
        reply.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{reply}"
    );
    assert_eq!(
        client.call(&[b"EVAL_RO", b"#!lua\nreturn 1", b"0"]),
        error("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        eval(&mut client, "#!python\nreturn 1", &[], &[]),
        error("ERR Unexpected engine in script shebang: python")
    );
    assert_eq!(
        client.cmd("EVAL return 3 a"),
        error("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        client.cmd("EVAL return -1"),
        error("ERR Number of keys can't be negative")
    );
    assert_eq!(
        client.cmd("EVAL return x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        client.cmd("EVAL return"),
        error("ERR wrong number of arguments for 'eval' command")
    );
    assert_eq!(
        client.cmd("EVALSHA ffffffffffffffffffffffffffffffffffffffff 0"),
        error("NOSCRIPT No matching script. Please use EVAL.")
    );
    let reply = error_text(eval(&mut client, "return redis.setresp(4)", &[], &[]));
    assert!(
        reply.starts_with("ERR RESP version must be 2 or 3. script: "),
        "{reply}"
    );
    // The keyspace keeps what a failing script wrote before failing (no rollback).
    let reply = eval(
        &mut client,
        "redis.call('SET','w','1'); return redis.call('INCR','s')",
        &[],
        &[],
    );
    assert!(error_text(reply).starts_with("ERR value is not an integer"));
    assert_eq!(client.cmd("GET w"), bulk("1"));
}

#[test]
fn script_commands() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let sha = client.call(&[b"SCRIPT", b"LOAD", b"return 7"]);
    let sha = match sha {
        Reply::Bulk(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sha.len(), 40);
    assert_eq!(client.call(&[b"EVALSHA", sha.as_bytes(), b"0"]), int(7));
    assert_eq!(
        client.call(&[b"EVALSHA", sha.to_uppercase().as_bytes(), b"0"]),
        int(7)
    );
    assert_eq!(client.call(&[b"EVALSHA_RO", sha.as_bytes(), b"0"]), int(7));
    assert_eq!(
        client.call(&[b"SCRIPT", b"EXISTS", sha.as_bytes(), b"nope"]),
        array(vec![int(1), int(0)])
    );
    // SCRIPT SHOW (Valkey 8): the body, whatever the SHA's case; NOSCRIPT otherwise.
    assert_eq!(
        client.call(&[b"SCRIPT", b"SHOW", sha.to_uppercase().as_bytes()]),
        bulk("return 7")
    );
    assert_eq!(
        client.call(&[b"SCRIPT", b"SHOW", b"b534286061d4b06c06015ae8"]),
        error("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(
        client.call(&[b"SCRIPT", b"SHOW"]),
        error("ERR wrong number of arguments for 'script|show' command")
    );
    let cached = |client: &mut RawClient| {
        let info = client.cmd("INFO memory").text();
        info.lines()
            .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
            .expect("the field")
            .trim()
            .to_string()
    };
    assert_eq!(cached(&mut client), "1");
    assert_eq!(eval(&mut client, "return 8", &[], &[]), int(8));
    assert_eq!(cached(&mut client), "2");
    assert_eq!(client.cmd("SCRIPT FLUSH ASYNC"), ok());
    assert_eq!(cached(&mut client), "0");
    assert_eq!(
        client.call(&[b"SCRIPT", b"EXISTS", sha.as_bytes()]),
        array(vec![int(0)])
    );
    assert_eq!(client.cmd("SCRIPT FLUSH SYNC"), ok());
    assert_eq!(
        client.cmd("SCRIPT FLUSH BAD"),
        error("ERR SCRIPT FLUSH only supports SYNC|ASYNC option")
    );
    assert_eq!(
        client.cmd("SCRIPT KILL"),
        error("NOTBUSY No scripts in execution right now.")
    );
    assert_eq!(
        client.cmd("SCRIPT LOAD"),
        error("ERR wrong number of arguments for 'script|load' command")
    );
    assert_eq!(
        eval(
            &mut client,
            "return redis.sha1hex('Pizza & Mandolino')",
            &[],
            &[]
        ),
        bulk("74822d82031af7493c20eefa13bd07ec4fada82f")
    );
    assert_eq!(
        eval(&mut client, "return redis.REDIS_VERSION_NUM > 0", &[], &[]),
        int(1)
    );
    assert_eq!(
        eval(&mut client, "return redis.replicate_commands()", &[], &[]),
        int(1)
    );
    assert_eq!(
        eval(&mut client, "return server.call('PING').ok", &[], &[]),
        bulk("PONG")
    );
}

#[test]
fn sandbox() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    for global in ["io", "loadfile", "dofile", "require", "package", "debug"] {
        let reply = error_text(eval(&mut client, &format!("return {global}"), &[], &[]));
        assert!(
            reply.contains("Script attempted to access nonexistent global variable"),
            "{global}: {reply}"
        );
    }
    let reply = error_text(eval(&mut client, "return os.execute()", &[], &[]));
    assert!(reply.contains("attempt to call field 'execute'"), "{reply}");
    assert_eq!(
        eval(&mut client, "return type(os.clock())", &[], &[]),
        bulk("number")
    );
    let reply = error_text(eval(&mut client, "string.len = nil", &[], &[]));
    assert!(
        reply.contains("Attempt to modify a readonly table"),
        "{reply}"
    );
    assert_eq!(eval(&mut client, "local x = 5; return x", &[], &[]), int(5));
    // No print, no precompiled chunks, no new metatable for the protected globals.
    let reply = error_text(eval(&mut client, "print('x')", &[], &[]));
    assert!(
        reply.contains("Script attempted to access nonexistent global variable 'print'"),
        "{reply}"
    );
    let reply = error_text(eval(
        &mut client,
        "return loadstring(string.dump(function() return 1 end))()",
        &[],
        &[],
    ));
    assert!(reply.contains("attempt to call a nil value"), "{reply}");
    assert_eq!(
        eval(&mut client, "return loadstring('return 7')()", &[], &[]),
        int(7)
    );
    for script in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G) g.__index = {}",
    ] {
        let reply = error_text(eval(&mut client, script, &[], &[]));
        assert!(
            reply.contains("Attempt to modify a readonly table"),
            "{script}: {reply}"
        );
    }
    assert_eq!(
        eval(
            &mut client,
            "local t = setmetatable({}, {__index = function() return 3 end}) return t.x",
            &[],
            &[]
        ),
        int(3)
    );
    // DEBUG SET-DISABLE-DENY-SCRIPTS lets scripts run noscript commands (a test knob).
    let reply = error_text(eval(
        &mut client,
        "return redis.call('client', 'id')",
        &[],
        &[],
    ));
    assert!(
        reply.contains("This Redis command is not allowed from script"),
        "{reply}"
    );
}

#[test]
fn time_stands_still_while_a_script_runs() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let script = "redis.call('set', KEYS[1], 'v', 'PX', '1') local start = os.clock() while os.clock() - start < 0.02 do end return redis.call('exists', KEYS[1])";
    assert_eq!(eval(&mut client, script, &["k"], &[]), int(1));
    // TIME too is the script's start.
    let script = "local a = redis.call('time') local start = os.clock() while os.clock() - start < 0.02 do end local b = redis.call('time') if a[1] == b[1] and a[2] == b[2] then return 1 end return 0";
    assert_eq!(eval(&mut client, script, &[], &[]), int(1));
    // Once the script is over, the key has expired.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.cmd("EXISTS k") != int(0) {
        assert!(Instant::now() < deadline, "the key never expired");
    }
}

#[test]
fn calls_with_thousands_of_arguments() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    // Up to Lua 5.1's C stack limit (8000 slots), as Redis allows.
    let script = "local a = {} for i = 1, 7999 do a[i] = i end return redis.call('rpush', KEYS[1], unpack(a))";
    assert_eq!(eval(&mut client, script, &["l"], &[]), int(7999));
    let script = "local a = {} for i = 1, 7000 do a[i] = 'x' end return redis.pcall('sadd', KEYS[1], unpack(a))";
    assert_eq!(eval(&mut client, script, &["s"], &[]), int(1));
    assert_eq!(client.cmd("LINDEX l 7998"), bulk("7999"));
    // A bad argument among many is still refused.
    let script = "local a = {} for i = 1, 100 do a[i] = 'x' end a[50] = {} return redis.pcall('sadd', KEYS[1], unpack(a))";
    assert_eq!(
        eval(&mut client, script, &["s"], &[]),
        error("ERR Command arguments must be strings or integers")
    );
}

#[test]
fn libraries() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let cases: &[(&str, Reply)] = &[
        ("return cjson.encode({1,2,3})", bulk("[1,2,3]")),
        ("return cjson.encode({})", bulk("{}")),
        ("return cjson.encode({a='x/y'})", bulk("{\"a\":\"x\\/y\"}")),
        ("return cjson.encode(0.1)", bulk("0.1")),
        ("return cjson.encode(1e15)", bulk("1e+15")),
        (
            "return cjson.encode(cjson.decode('[1,null,\"\\\\u00e9\"]'))",
            bulk("[1,null,\"é\"]"),
        ),
        ("return cjson.decode('{\"a\":[1,2]}').a[2]", int(2)),
        ("return cmsgpack.unpack(cmsgpack.pack({1,2,3}))[3]", int(3)),
        (
            "local a, b = cmsgpack.unpack(cmsgpack.pack('x', 300)); return {a, b}",
            array(vec![bulk("x"), int(300)]),
        ),
        ("return bit.band(0xff, 0x0f)", int(15)),
        ("return bit.tohex(255, 4)", bulk("00ff")),
        ("return bit.tohex(-1, -4)", bulk("FFFF")),
        ("return bit.bnot(0)", int(-1)),
        ("return bit.lshift(1, 33)", int(2)),
        ("return bit.bswap(0x12345678) == 0x78563412", int(1)),
        ("return struct.size('>hI')", int(6)),
        (
            "return {struct.unpack('<hi', struct.pack('<hi', -5, 70000))}",
            array(vec![int(-5), int(70000), int(7)]),
        ),
    ];
    for (script, expected) in cases {
        assert_eq!(&eval(&mut client, script, &[], &[]), expected, "{script}");
    }
    let reply = error_text(eval(
        &mut client,
        "return cjson.encode(function() end)",
        &[],
        &[],
    ));
    assert!(
        reply.contains("Cannot serialise function: type not supported"),
        "{reply}"
    );
    let reply = error_text(eval(&mut client, "return cjson.decode('[1,')", &[], &[]));
    assert!(reply.contains("Expected value but found"), "{reply}");
}

#[test]
fn functions() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let library = "#!lua name=mylib\nredis.register_function('incr_by', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads'}";
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", library.as_bytes()]),
        bulk("mylib")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", library.as_bytes()]),
        error("ERR Library 'mylib' already exists")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", b"REPLACE", library.as_bytes()]),
        bulk("mylib")
    );
    assert_eq!(client.cmd("FCALL incr_by 1 counter 5"), int(5));
    assert_eq!(client.cmd("FCALL_RO ro 1 counter"), bulk("5"));
    assert_eq!(
        client.cmd("FCALL_RO incr_by 1 counter 5"),
        error("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(client.cmd("FCALL nope 0"), error("ERR Function not found"));
    let reply = client.cmd("FUNCTION LIST WITHCODE");
    let libraries = reply.items();
    assert_eq!(libraries.len(), 1);
    assert_eq!(libraries[0].items()[1], bulk("mylib"));
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", b"return 1"]),
        error("ERR Missing library metadata")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", b"#!lua name=empty\nreturn 1"]),
        error("ERR No functions registered")
    );
    // register_function exists only while a library loads.
    assert_eq!(
        client.call(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=nested\nserver.register_function('outer', function() server.register_function('inner', function() return 2 end) return 1 end)",
        ]),
        bulk("nested")
    );
    let reply = error_text(client.cmd("FCALL outer 0"));
    assert!(
        reply.contains("attempt to call field 'register_function' (a nil value)"),
        "{reply}"
    );
    assert_eq!(
        eval(
            &mut client,
            "return type(redis.register_function)",
            &[],
            &[]
        ),
        bulk("nil")
    );
    assert_eq!(client.cmd("FUNCTION DELETE nested"), ok());
    // A library's top-level code sees only register_function, log and the version.
    for (code, missing) in [
        ("return math.random()", "math"),
        ("return redis.call('ping')", "call"),
        ("return redis.setresp(3)", "setresp"),
    ] {
        let library = format!("#!lua name=loadtime\n{code}");
        let reply = error_text(client.call(&[b"FUNCTION", b"LOAD", library.as_bytes()]));
        assert!(
            reply.contains(&format!(
                "Script attempted to access nonexistent global variable '{missing}'"
            )),
            "{code}: {reply}"
        );
    }
    assert_eq!(
        client.call(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=helper\nlocal function get(k) return redis.call('get', k) end\nredis.log(redis.LOG_NOTICE, 'loading ' .. redis.REDIS_VERSION)\nredis.register_function('helped', function(keys) return get(keys[1]) end)",
        ]),
        bulk("helper")
    );
    // Its functions run with the full API, helpers defined at load time included.
    assert_eq!(client.cmd("SET h v"), ok());
    assert_eq!(client.cmd("FCALL helped 1 h"), bulk("v"));
    assert_eq!(client.cmd("FUNCTION DELETE helper"), ok());
    // The shebang splits like a command line; each metadata key once.
    assert_eq!(
        client.call(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=\"quoted\"\nredis.register_function('q', function() return 1 end)",
        ]),
        bulk("quoted")
    );
    assert_eq!(client.cmd("FUNCTION DELETE quoted"), ok());
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", b"#! name=x\nreturn 1"]),
        error("ERR Engine '' not found")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"LOAD", b"#!lua name=a name=b\nreturn 1"]),
        error("ERR Invalid metadata value, name argument was given multiple times")
    );
    // A library's top-level code gets 500 ms.
    let reply = error_text(client.call(&[
        b"FUNCTION",
        b"LOAD",
        b"#!lua name=forever\nlocal a = 1 while true do a = a + 1 end",
    ]));
    assert!(reply.contains("FUNCTION LOAD timeout"), "{reply}");
    assert_eq!(
        client.call(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=other\nredis.register_function('incr_by', function() end)"
        ]),
        error("ERR Function incr_by already exists")
    );
    let dump = match client.cmd("FUNCTION DUMP") {
        Reply::Bulk(bytes) => bytes,
        other => panic!("{other:?}"),
    };
    assert_eq!(client.cmd("FUNCTION DELETE mylib"), ok());
    assert_eq!(
        client.cmd("FUNCTION DELETE mylib"),
        error("ERR Library not found")
    );
    assert_eq!(client.call(&[b"FUNCTION", b"RESTORE", &dump]), ok());
    assert_eq!(client.cmd("FCALL incr_by 1 counter 1"), int(6));
    assert_eq!(
        client.call(&[b"FUNCTION", b"RESTORE", b"garbage"]),
        error("ERR payload version or checksum are wrong")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"restore", &dump, b"FLUSH", b"extra"]),
        error(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP."
        )
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"RESTORE", &dump, b"SOMETIMES"]),
        error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    );
    assert_eq!(
        client.call(&[b"FUNCTION", b"RESTORE", &dump]),
        error("ERR Library mylib already exists")
    );
    assert_eq!(
        client.cmd("FUNCTION flush sync extra"),
        error(
            "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP."
        )
    );
    assert_eq!(client.cmd("FUNCTION FLUSH"), ok());
    assert_eq!(client.cmd("FUNCTION LIST"), array(vec![]));
    assert_eq!(
        client.cmd("FUNCTION KILL"),
        error("NOTBUSY No scripts in execution right now.")
    );
    let stats = client.cmd("FUNCTION STATS").items();
    assert_eq!(stats[0], bulk("running_script"));
}

/// Pings until the server answers BUSY (a script is past busy-reply-threshold).
fn wait_until_busy(client: &mut RawClient) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client.cmd("PING");
        if matches!(&reply, Reply::Error(text) if text.starts_with("BUSY")) {
            return;
        }
        assert!(Instant::now() < deadline, "never BUSY: {reply:?}");
    }
}

#[test]
fn busy_script_and_kill() {
    let server = TestServer::start(&["--busy-reply-threshold", "100"]);
    let mut runner = server.client();
    runner.send(&[b"EVAL", b"while true do end", b"0"]);
    let mut other = server.client();
    wait_until_busy(&mut other);
    // An EVAL is killed by SCRIPT KILL only.
    assert_eq!(
        other.cmd("FUNCTION KILL"),
        error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    );
    assert_eq!(other.cmd("SCRIPT KILL"), ok());
    let reply = error_text(runner.read_reply());
    assert!(
        reply.contains("Script killed by user with SCRIPT KILL"),
        "{reply}"
    );
    assert_eq!(other.cmd("PING"), status("PONG"));
    // A script that catches the kill with pcall is killed all the same.
    runner.send(&[
        b"EVAL",
        b"local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
        b"0",
    ]);
    wait_until_busy(&mut other);
    assert_eq!(other.cmd("SCRIPT KILL"), ok());
    let reply = error_text(runner.read_reply());
    assert!(
        reply.contains("Script killed by user with SCRIPT KILL"),
        "{reply}"
    );
    assert_eq!(other.cmd("PING"), status("PONG"));
    assert_eq!(eval(&mut runner, "return 1", &[], &[]), int(1));
}

/// (a) The delayed queue: due jobs are claimed by a Lua script (ZRANGEBYSCORE + ZREM) by 8
/// concurrent consumers on 4 threads; every job is claimed exactly once.
#[test]
fn delayed_queue_claimed_exactly_once() {
    let server = TestServer::start(&["--worker-threads", "4"]);
    let mut producer = server.client();
    let jobs = 2000;
    for job in 0..jobs {
        producer.call(&[
            b"ZADD",
            b"queue",
            job.to_string().as_bytes(),
            format!("job{job}").as_bytes(),
        ]);
    }
    let claim =
        "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]) \
                 for _, job in ipairs(due) do redis.call('ZREM', KEYS[1], job) end return due";
    let port = server.port;
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                let mut claimed = Vec::new();
                loop {
                    let reply =
                        client.call(&[b"EVAL", claim.as_bytes(), b"1", b"queue", b"1000000", b"7"]);
                    let items = reply.items();
                    if items.is_empty() {
                        return claimed;
                    }
                    claimed.extend(items.into_iter().map(|item| item.text()));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = consumers
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(all.len(), jobs);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), jobs);
}

/// (b) WATCH-based optimistic increments under contention never lose an update.
#[test]
fn watch_transactions_never_lose_updates() {
    let server = TestServer::start(&["--worker-threads", "4"]);
    let port = server.port;
    let clients = 4;
    let increments = 100_000 / clients;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                let mut done = 0;
                while done < increments {
                    client.cmd("WATCH counter");
                    let value = match client.cmd("GET counter") {
                        Reply::Bulk(bytes) => {
                            String::from_utf8(bytes).unwrap().parse::<i64>().unwrap()
                        }
                        _ => 0,
                    };
                    let next = (value + 1).to_string();
                    client.send(&[b"MULTI"]);
                    client.send(&[b"SET", b"counter", next.as_bytes()]);
                    client.send(&[b"EXEC"]);
                    client.read_reply();
                    client.read_reply();
                    if client.read_reply() != Reply::NilArray {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let mut client = server.client();
    assert_eq!(client.cmd("GET counter"), bulk("100000"));
}

/// Pipelined batches mixing scripts and ordinary commands, from several connections at once: a
/// script that keeps the script barrier for the next scripts of its batch stays atomic (its
/// read-then-write never loses an update), and the ordinary commands between them still run.
#[test]
fn pipelined_scripts_and_commands_stay_atomic() {
    let server = TestServer::start(&["--worker-threads", "4"]);
    let port = server.port;
    let script = "local value = tonumber(redis.call('GET', KEYS[1]) or '0') \
                  redis.call('SET', KEYS[1], value + 1) return value + 1";
    let clients = 4;
    let rounds = 300;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port);
                let eval: [&[u8]; 4] = [b"EVAL", script.as_bytes(), b"1", b"scripted"];
                for _ in 0..rounds {
                    client.send(&eval);
                    client.send(&eval);
                    client.send(&[b"INCR", b"plain"]);
                    client.send(&eval);
                    client.send(&[b"GET", b"plain"]);
                    client.send(&eval);
                    for index in 0..6 {
                        let reply = client.read_reply();
                        match index {
                            4 => assert!(matches!(reply, Reply::Bulk(_)), "{reply:?}"),
                            _ => assert!(matches!(reply, Reply::Integer(_)), "{reply:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let mut client = server.client();
    let scripted = (clients * rounds * 4).to_string();
    assert_eq!(client.cmd("GET scripted"), bulk(&scripted));
    let plain = (clients * rounds).to_string();
    assert_eq!(client.cmd("GET plain"), bulk(&plain));
}

/// INFO errorstats and commandstats count a script's errors once, where they arise, as Redis
/// does: a command's error when the command runs (a refused command as rejected), an error
/// the script makes itself when EVAL replies it; EVAL's call fails when it replies an error.
#[test]
fn script_errors_are_counted_once() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    fn info_line(client: &mut RawClient, section: &str, prefix: &str) -> Option<String> {
        let info = client.cmd(&format!("INFO {section}")).text();
        info.lines().find_map(|line| {
            line.strip_prefix(prefix)
                .map(|rest| rest.trim().to_string())
        })
    }
    let reset = |client: &mut RawClient| assert_eq!(client.cmd("CONFIG RESETSTAT"), ok());

    reset(&mut client);
    assert_eq!(
        eval(
            &mut client,
            "return redis.error_reply('MY_CODE custom')",
            &[],
            &[]
        ),
        error("MY_CODE custom")
    );
    let count = info_line(&mut client, "errorstats", "errorstat_MY_CODE:");
    assert_eq!(count.as_deref(), Some("count=1"));
    let eval_stats = info_line(&mut client, "commandstats", "cmdstat_eval:").unwrap();
    assert!(eval_stats.ends_with("failed_calls=1"), "{eval_stats}");

    // An error raised by redis.call: counted when INCR ran, not again when EVAL replies it.
    assert_eq!(client.cmd("SET text x"), ok());
    reset(&mut client);
    let raised = error_text(eval(
        &mut client,
        "return redis.call('INCR', KEYS[1])",
        &["text"],
        &[],
    ));
    assert!(
        raised.starts_with("ERR value is not an integer"),
        "{raised}"
    );
    let count = info_line(&mut client, "errorstats", "errorstat_ERR:");
    assert_eq!(count.as_deref(), Some("count=1"));
    let total = info_line(&mut client, "stats", "total_error_replies:");
    assert_eq!(total.as_deref(), Some("1"));
    let incr_stats = info_line(&mut client, "commandstats", "cmdstat_incr:").unwrap();
    assert!(
        incr_stats.ends_with("rejected_calls=0,failed_calls=1"),
        "{incr_stats}"
    );
    let eval_stats = info_line(&mut client, "commandstats", "cmdstat_eval:").unwrap();
    assert!(eval_stats.ends_with("failed_calls=1"), "{eval_stats}");

    // Caught with pcall and not returned: the script did not fail.
    reset(&mut client);
    let caught = "local reply = redis.pcall('INCR', KEYS[1]) return type(reply)";
    assert_eq!(eval(&mut client, caught, &["text"], &[]), bulk("table"));
    let count = info_line(&mut client, "errorstats", "errorstat_ERR:");
    assert_eq!(count.as_deref(), Some("count=1"));
    let eval_stats = info_line(&mut client, "commandstats", "cmdstat_eval:").unwrap();
    assert!(eval_stats.ends_with("failed_calls=0"), "{eval_stats}");

    // Refused before running (wrong arity): a rejected call of GET, counted once.
    reset(&mut client);
    let refused = error_text(eval(&mut client, "return redis.pcall('GET')", &[], &[]));
    assert!(refused.starts_with("ERR Wrong number of args"), "{refused}");
    let count = info_line(&mut client, "errorstats", "errorstat_ERR:");
    assert_eq!(count.as_deref(), Some("count=1"));
    let get_stats = info_line(&mut client, "commandstats", "cmdstat_get:").unwrap();
    assert!(
        get_stats.ends_with("rejected_calls=1,failed_calls=0"),
        "{get_stats}"
    );

    // A Lua runtime error: counted when EVAL replies it.
    reset(&mut client);
    let runtime = error_text(eval(&mut client, "return nosuchfunction()", &[], &[]));
    assert!(runtime.starts_with("ERR user_script:1:"), "{runtime}");
    let count = info_line(&mut client, "errorstats", "errorstat_ERR:");
    assert_eq!(count.as_deref(), Some("count=1"));
}

/// (c) cjson and cmsgpack round trips, byte-identical to a real redis-server.
#[test]
fn differential_libraries() {
    let Ok(reference) = std::env::var("CINNABAR_REFERENCE_SERVER") else {
        eprintln!("CINNABAR_REFERENCE_SERVER not set: differential scripting test skipped");
        return;
    };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = Command::new(&reference)
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the reference server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_pid_matches(port, child.id()) != Some(true) {
        assert!(Instant::now() < deadline, "reference server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = TestServer::start(&[]);
    let mut ours = server.client();
    let mut theirs = RawClient::connect(port);
    let scripts = [
        "return cjson.encode({user={id=42, name='ann', tags={'a','b'}, score=3.25, ratio=1/3}})",
        "return cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\\\\n\"}'))",
        "return cjson.encode({1e100, -0.5, 123456789012345, 2^53})",
        "return cjson.encode({'x', 'y\\\"z', '\\1\\127'})",
        "local t = cjson.decode(ARGV[1]); t.count = t.count + 1; return cjson.encode(t)",
        "return cmsgpack.pack({1, -1, 127, 128, 255, 256, 65535, 65536, -32, -33, -129, -32769, 2^32, -2^31 - 1})",
        "return cmsgpack.pack('short', string.rep('x', 40), string.rep('y', 300), 1.5, 0.1, true, false)",
        "return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack({a=1}, {1,2,{3}})))",
        "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', 3.5))}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 0)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}",
        "return cjson.encode(cmsgpack.unpack(cmsgpack.pack({list={1,2,3}, n=7})))",
        "return bit.tohex(bit.bxor(0x12345678, 0xff00ff00)) .. bit.tohex(bit.rol(1, 31)) .. bit.arshift(-256, 4)",
        "return struct.pack('>iHbc3', -2, 513, 7, 'abc')",
        "return {struct.unpack('>iHb', struct.pack('>iHb', -2, 513, 7))}",
    ];
    for script in scripts {
        let argv: [&[u8]; 4] = [b"EVAL", script.as_bytes(), b"0", b"{\"count\":1}"];
        let expected = theirs.call(&argv);
        let actual = ours.call(&argv);
        assert_eq!(actual, expected, "{script}");
    }
    // FUNCTION DUMP payloads are Redis's: each side restores the other's.
    let library = b"#!lua name=queue\nredis.register_function('claim', function(keys, args) return redis.call('zrangebyscore', keys[1], '-inf', args[1], 'LIMIT', 0, 1) end)";
    assert_eq!(theirs.call(&[b"FUNCTION", b"LOAD", library]), bulk("queue"));
    let dumped = theirs.call(&[b"FUNCTION", b"DUMP"]);
    let Reply::Bulk(redis_payload) = dumped else {
        panic!("FUNCTION DUMP replied {dumped:?}");
    };
    assert_eq!(ours.call(&[b"FUNCTION", b"RESTORE", &redis_payload]), ok());
    assert_eq!(ours.cmd("ZADD jobs 5 due"), int(1));
    assert_eq!(ours.cmd("FCALL claim 1 jobs 10"), bulks(&["due"]));
    let Reply::Bulk(our_payload) = ours.call(&[b"FUNCTION", b"DUMP"]) else {
        panic!("FUNCTION DUMP is not a bulk");
    };
    assert_eq!(theirs.cmd("FUNCTION FLUSH"), ok());
    assert_eq!(theirs.call(&[b"FUNCTION", b"RESTORE", &our_payload]), ok());
    assert_eq!(
        theirs.cmd("FUNCTION LIST").items()[0].items()[1],
        bulk("queue")
    );
    let mut corrupt = our_payload.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(
        ours.call(&[b"FUNCTION", b"RESTORE", &corrupt]),
        error("ERR payload version or checksum are wrong")
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn scripts_that_may_write_are_refused_when_memory_is_full() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    let library = b"#!lua name=oom\nserver.register_function('writes', function() return redis.call('set', 'x', '1') end)\nserver.register_function{function_name='reads', callback=function() return 'hello' end, flags={'no-writes'}}\nserver.register_function{function_name='anyway', callback=function() return redis.call('set', 'x', '2') end, flags={'allow-oom'}}";
    assert_eq!(client.call(&[b"FUNCTION", b"LOAD", library]), bulk("oom"));
    assert_eq!(client.cmd("CONFIG SET maxmemory 1"), ok());
    let oom = error("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(client.cmd("FCALL writes 1 x"), oom);
    assert_eq!(client.cmd("FCALL reads 1 x"), bulk("hello"));
    assert_eq!(client.cmd("FCALL_RO reads 1 x"), bulk("hello"));
    assert_eq!(client.cmd("FCALL anyway 1 x"), ok());
    // A script without a shebang finds out at its first write.
    let reply = error_text(eval(
        &mut client,
        "return redis.call('set', KEYS[1], 'y')",
        &["x"],
        &[],
    ));
    assert!(reply.starts_with("OOM command not allowed"), "{reply}");
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('get', KEYS[1])",
            &["x"],
            &[]
        ),
        bulk("2")
    );
    assert_eq!(client.cmd("CONFIG SET maxmemory 0"), ok());
    assert_eq!(client.cmd("FCALL writes 1 x"), ok());
}

#[test]
fn debug_knob_lets_scripts_run_noscript_commands() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    let script = "return redis.call('client', 'id')";
    let reply = error_text(eval(&mut client, script, &[], &[]));
    assert!(
        reply.contains("This Redis command is not allowed from script"),
        "{reply}"
    );
    assert_eq!(client.cmd("DEBUG SET-DISABLE-DENY-SCRIPTS 1"), ok());
    assert!(matches!(
        eval(&mut client, script, &[], &[]),
        Reply::Integer(_)
    ));
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('debug', 'protocol', 'bignum')",
            &[],
            &[]
        ),
        bulk("1234567999999999999999999999999999999")
    );
    // A script inside a script and DEBUG LOADAOF stay refused.
    for script in [
        "return redis.call('eval', 'return 1', '0')",
        "return redis.call('debug', 'loadaof')",
    ] {
        let reply = error_text(eval(&mut client, script, &[], &[]));
        assert!(
            reply.contains("not allowed from script"),
            "{script}: {reply}"
        );
    }
    assert_eq!(client.cmd("DEBUG SET-DISABLE-DENY-SCRIPTS 0"), ok());
}

#[test]
fn a_script_deletes_a_key_found_expired() {
    let server = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut client = server.client();
    let server_ms = |client: &mut RawClient| {
        let time = client.cmd("TIME").items();
        time[0].text().parse::<u64>().expect("seconds") * 1000
            + time[1].text().parse::<u64>().expect("microseconds") / 1000
    };
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), ok());
    assert_eq!(client.cmd("SET key value PX 1"), ok());
    // The key expires at most 1 ms after this reading (the SET ran before it). Wait past that
    // without touching the key (a lookup would expire it).
    let after_set = server_ms(&mut client);
    while server_ms(&mut client) < after_set + 2 {}
    // DEBUG OBJECT looks at the table as it is: the expired key is still there.
    assert!(matches!(client.cmd("DEBUG OBJECT key"), Reply::Status(_)));
    assert_eq!(
        eval(
            &mut client,
            "return redis.call('exists', KEYS[1])",
            &["key"],
            &[]
        ),
        int(0)
    );
    assert!(matches!(client.cmd("DEBUG OBJECT key"), Reply::Error(_)));
    assert_eq!(client.cmd("DEBUG SET-ACTIVE-EXPIRE 1"), ok());
}
