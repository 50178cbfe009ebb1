//! Access control lists as clients see them: users and their rules, AUTH and HELLO, refusals
//! (commands, keys, channels) at top level, in transactions and in scripts, the ACL log,
//! deleting users, requirepass, the ACL file and `user` directives.

mod common;

use common::*;

fn sha256_hex(password: &str) -> String {
    // Known answers keep the test independent of the server's hashing code.
    match password {
        "p1" => "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a".into(),
        "secret" => "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b".into(),
        other => panic!("no known hash for {other}"),
    }
}

fn log_field(entry: &Reply, name: &str) -> Reply {
    let items = entry.items();
    let index = items
        .iter()
        .position(|item| *item == bulk(name))
        .unwrap_or_else(|| panic!("no field {name} in {entry:?}"));
    items[index + 1].clone()
}

#[test]
fn users_rules_and_their_descriptions() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("ACL LIST"),
        bulks(&["user default on nopass sanitize-payload ~* &* +@all"])
    );
    assert_eq!(client.cmd("ACL WHOAMI"), bulk("default"));
    assert_eq!(
        client.cmd("ACL SETUSER alice on >p1 ~cached:* +get +info -@all +@string -set +client|id"),
        ok()
    );
    assert_eq!(
        client.cmd("ACL LIST").items()[0],
        bulk(&format!(
            "user alice on sanitize-payload #{} ~cached:* resetchannels -@all +@string -set +client|id",
            sha256_hex("p1")
        ))
    );
    // A later mention of a command replaces the earlier one (subcommands included).
    assert_eq!(client.cmd("ACL SETUSER alice +set -client"), ok());
    let user = client.cmd("ACL GETUSER alice").items();
    assert_eq!(user[0], bulk("flags"));
    assert_eq!(user[1], bulks(&["on", "sanitize-payload"]));
    assert_eq!(user[3], bulks(&[&sha256_hex("p1")]));
    assert_eq!(user[5], bulk("-@all +@string +set -client"));
    assert_eq!(user[7], bulk("~cached:*"));
    assert_eq!(user[9], bulk(""));
    assert_eq!(user[11], array(vec![]));
    assert_eq!(client.cmd("ACL GETUSER nobody"), Reply::Nil);
    assert_eq!(client.cmd("ACL USERS"), bulks(&["alice", "default"]));
    // Selectors, in one argument or spread over several.
    assert_eq!(
        client.call(&[b"ACL", b"SETUSER", b"bob", b"on", b"nopass", b"(+get ~x*)"]),
        ok()
    );
    assert_eq!(client.cmd("ACL SETUSER bob (+set ~y*)"), ok());
    assert_eq!(
        client.cmd("ACL LIST").items()[1],
        bulk("user bob on nopass sanitize-payload resetchannels -@all (~x* resetchannels -@all +get) (~y* resetchannels -@all +set)")
    );
    assert_eq!(
        client.cmd("ACL SETUSER bob clearselectors (+get ~x*)"),
        ok()
    );
    assert_eq!(
        client.cmd("ACL LIST").items()[1],
        bulk("user bob on nopass sanitize-payload resetchannels -@all (~x* resetchannels -@all +get)")
    );
    // Errors change nothing.
    assert_eq!(
        client.cmd("ACL SETUSER bob +get +nosuch"),
        error(
            "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        )
    );
    assert_eq!(
        client.cmd("ACL SETUSER bob ~* ~x"),
        error("ERR Error in ACL SETUSER modifier '~x': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
    );
    assert_eq!(
        client.cmd("ACL SETUSER bob #abc"),
        error("ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
    );
    assert_eq!(
        client.cmd("ACL SETUSER bob +config|get|x"),
        error("ERR Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported")
    );
    assert_eq!(
        client.call(&[b"ACL", b"SETUSER", b"b b"]),
        error("ERR Usernames can't contain spaces or null characters")
    );
    assert_eq!(
        client.cmd("ACL SETUSER bob (+get"),
        error("ERR Unmatched parenthesis in acl selector starting at '(+get'.")
    );
    assert_eq!(
        client.cmd("ACL LIST").items()[1],
        bulk("user bob on nopass sanitize-payload resetchannels -@all (~x* resetchannels -@all +get)")
    );
    assert_eq!(
        client.cmd("ACL DELUSER default"),
        error("ERR The 'default' user cannot be removed")
    );
    assert_eq!(client.cmd("ACL DELUSER bob nobody"), int(1));
    assert_eq!(client.cmd("ACL CAT").items().len(), 21);
    assert!(client
        .cmd("ACL CAT scripting")
        .items()
        .contains(&bulk("script|load")));
    assert_eq!(
        client.cmd("ACL CAT nosuch"),
        error("ERR Unknown category 'nosuch'")
    );
    assert_eq!(
        client.cmd("ACL CAT a b"),
        error("ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP.")
    );
    assert_eq!(client.cmd("ACL GENPASS").text().len(), 64);
    assert_eq!(client.cmd("ACL GENPASS 5").text().len(), 2);
    assert_eq!(
        client.cmd("ACL GENPASS 5000"),
        error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
    );
}

#[test]
fn authentication_and_refusals() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    assert_eq!(
        admin.cmd("ACL SETUSER alice on >p1 ~cached:* %R~ro:* &news.* +get +set +publish +subscribe +psubscribe +multi +exec"),
        ok()
    );
    let mut alice = server.client();
    assert_eq!(
        alice.cmd("AUTH alice wrong"),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(
        alice.cmd("AUTH p1"),
        error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
    assert_eq!(alice.cmd("AUTH alice p1"), ok());
    assert_eq!(
        alice.cmd("ACL WHOAMI"),
        error("NOPERM User alice has no permissions to run the 'acl|whoami' command")
    );
    assert_eq!(alice.cmd("SET cached:1 v"), ok());
    assert_eq!(alice.cmd("GET cached:1"), bulk("v"));
    assert_eq!(
        alice.cmd("GET other"),
        error("NOPERM No permissions to access a key")
    );
    assert_eq!(alice.cmd("GET ro:1"), Reply::Nil);
    assert_eq!(
        alice.cmd("SET ro:1 v"),
        error("NOPERM No permissions to access a key")
    );
    assert_eq!(
        alice.cmd("DEL cached:1"),
        error("NOPERM User alice has no permissions to run the 'del' command")
    );
    assert_eq!(alice.cmd("PUBLISH news.today hi"), int(0));
    assert_eq!(
        alice.cmd("PUBLISH sport hi"),
        error("NOPERM No permissions to access a channel")
    );
    // A pattern must be allowed literally.
    assert_eq!(
        alice.cmd("PSUBSCRIBE news.?"),
        error("NOPERM No permissions to access a channel")
    );
    // In a transaction a refusal dooms it.
    assert_eq!(alice.cmd("MULTI"), ok());
    assert_eq!(
        alice.cmd("GET other"),
        error("NOPERM No permissions to access a key")
    );
    assert_eq!(
        alice.cmd("EXEC"),
        error("EXECABORT Transaction discarded because of previous errors.")
    );
    // Permissions changed between queuing and EXEC are checked again.
    assert_eq!(alice.cmd("MULTI"), ok());
    assert_eq!(alice.cmd("GET cached:1"), status("QUEUED"));
    assert_eq!(admin.cmd("ACL SETUSER alice -get"), ok());
    assert_eq!(
        alice.cmd("EXEC"),
        array(vec![error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand")])
    );
    // The log: newest first, alike entries merged.
    let log = admin.cmd("ACL LOG");
    let entries = log.items();
    assert_eq!(log_field(&entries[0], "reason"), bulk("command"));
    assert_eq!(log_field(&entries[0], "context"), bulk("multi"));
    assert_eq!(log_field(&entries[0], "object"), bulk("get"));
    assert_eq!(log_field(&entries[0], "username"), bulk("alice"));
    assert!(log_field(&entries[0], "client-info")
        .text()
        .contains(" user=alice "));
    let key_entry = entries
        .iter()
        .find(|entry| log_field(entry, "object") == bulk("other"))
        .expect("key refusal logged");
    assert_eq!(log_field(key_entry, "reason"), bulk("key"));
    assert_eq!(log_field(key_entry, "count"), int(1));
    let auth_entry = entries.last().expect("entries");
    assert_eq!(log_field(auth_entry, "reason"), bulk("auth"));
    assert_eq!(log_field(auth_entry, "object"), bulk("AUTH"));
    let stats = admin.cmd("INFO stats").text();
    assert!(stats.contains("acl_access_denied_auth:1\r\n"), "{stats}");
    assert!(stats.contains("acl_access_denied_key:3\r\n"), "{stats}");
    assert!(stats.contains("acl_access_denied_channel:2\r\n"), "{stats}");
    assert_eq!(admin.cmd("ACL LOG RESET"), ok());
    assert_eq!(admin.cmd("ACL LOG"), array(vec![]));
    assert_eq!(
        admin.cmd("ACL DRYRUN alice set other v"),
        bulk("User alice has no permissions to access the 'other' key")
    );
    assert_eq!(admin.cmd("ACL DRYRUN alice set cached:2 v"), ok());
    assert_eq!(
        admin.cmd("ACL DRYRUN nobody get x"),
        error("ERR User 'nobody' not found")
    );
    // CLIENT LIST shows the user; deleting it disconnects its clients.
    assert!(admin.cmd("CLIENT LIST").text().contains(" user=alice "));
    assert_eq!(
        admin.cmd("CLIENT KILL USER nobody"),
        error("ERR No such user 'nobody'")
    );
    assert_eq!(admin.cmd("ACL DELUSER alice"), int(1));
    assert!(alice.is_closed());
}

#[test]
fn hello_auth_reset_and_the_default_user() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    assert_eq!(admin.cmd("ACL SETUSER carol on >secret +@all ~*"), ok());
    let mut carol = server.client();
    assert_eq!(
        carol.cmd("HELLO 3 AUTH carol bad"),
        error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert!(matches!(
        carol.cmd("HELLO 3 AUTH carol secret"),
        Reply::Map(_)
    ));
    assert_eq!(carol.cmd("ACL WHOAMI"), bulk("carol"));
    assert_eq!(carol.cmd("RESET"), status("RESET"));
    assert_eq!(carol.cmd("ACL WHOAMI"), bulk("default"));
    // requirepass is the default user's password.
    assert_eq!(admin.cmd("CONFIG SET requirepass secret"), ok());
    assert_eq!(
        admin.cmd("ACL LIST").items()[1],
        bulk(&format!(
            "user default on sanitize-payload #{} ~* &* +@all",
            sha256_hex("secret")
        ))
    );
    let mut stranger = server.client();
    assert_eq!(
        stranger.cmd("GET x"),
        error("NOAUTH Authentication required.")
    );
    assert_eq!(stranger.cmd("AUTH secret"), ok());
    assert_eq!(stranger.cmd("GET x"), Reply::Nil);
    assert_eq!(admin.call(&[b"CONFIG", b"SET", b"requirepass", b""]), ok());
    let mut free = server.client();
    assert_eq!(free.cmd("GET x"), Reply::Nil);
    // A default user that is off makes new connections authenticate.
    assert_eq!(admin.cmd("ACL SETUSER default off"), ok());
    let mut locked_out = server.client();
    assert_eq!(
        locked_out.cmd("GET x"),
        error("NOAUTH Authentication required.")
    );
    assert_eq!(locked_out.cmd("AUTH carol secret"), ok());
    assert_eq!(locked_out.cmd("GET x"), Reply::Nil);
    assert_eq!(admin.cmd("ACL SETUSER default on"), ok());
}

#[test]
fn scripts_run_with_the_callers_permissions() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    assert_eq!(
        admin.cmd("ACL SETUSER dave on nopass +@scripting +set ~x*"),
        ok()
    );
    let mut dave = server.client();
    assert_eq!(dave.cmd("AUTH dave any"), ok());
    let eval =
        |client: &mut RawClient, script: &str| client.call(&[b"EVAL", script.as_bytes(), b"0"]);
    assert_eq!(eval(&mut dave, "return redis.call('set','x1','v')"), ok());
    let refused = eval(&mut dave, "return redis.call('set','y1','v')");
    assert_eq!(
        refused,
        error("ERR ACL failure in script: No permissions to access a key script: 5635fce1f2b27568f0e3f42da8aae95a66ef94ee, on @user_script:1.")
    );
    assert_eq!(
        eval(&mut dave, "return redis.acl_check_cmd('set','xx','1')"),
        int(1)
    );
    assert_eq!(
        eval(&mut dave, "return redis.acl_check_cmd('hset','xx','f','1')"),
        Reply::Nil
    );
    assert_eq!(
        eval(&mut dave, "return redis.acl_check_cmd('set','yy','1')"),
        Reply::Nil
    );
    let log = admin.cmd("ACL LOG 1").items();
    assert_eq!(log_field(&log[0], "context"), bulk("lua"));
    assert_eq!(log_field(&log[0], "object"), bulk("y1"));
}

#[test]
fn a_blocked_command_is_checked_again_when_rules_change() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    assert_eq!(admin.cmd("ACL SETUSER erin on nopass +@all allkeys"), ok());
    let mut erin = server.client();
    assert_eq!(erin.cmd("AUTH erin x"), ok());
    erin.send(&[b"BLPOP", b"queue", b"0"]);
    wait_for_blocked_clients(&mut admin, 1);
    assert_eq!(admin.cmd("ACL SETUSER erin resetkeys"), ok());
    assert_eq!(admin.cmd("LPUSH queue job"), int(1));
    assert_eq!(
        erin.read_reply(),
        error("NOPERM No permissions to access a key")
    );
    assert_eq!(admin.cmd("LLEN queue"), int(1));
}

#[test]
fn subscribers_that_lose_their_channel_are_disconnected() {
    let server = TestServer::start(&[]);
    let mut admin = server.client();
    assert_eq!(
        admin.cmd("ACL SETUSER frank on nopass +@all &news &sport"),
        ok()
    );
    let mut frank = server.client();
    assert_eq!(frank.cmd("AUTH frank x"), ok());
    assert_eq!(
        frank.cmd("SUBSCRIBE news"),
        array(vec![bulk("subscribe"), bulk("news"), int(1)])
    );
    // Keeping its channel (and gaining one) keeps it.
    assert_eq!(admin.cmd("ACL SETUSER frank &weather"), ok());
    assert_eq!(admin.cmd("PUBLISH news hi"), int(1));
    assert_eq!(
        frank.read_reply(),
        array(vec![bulk("message"), bulk("news"), bulk("hi")])
    );
    assert_eq!(admin.cmd("ACL SETUSER frank resetchannels &sport"), ok());
    assert!(frank.is_closed());
}

#[test]
fn users_from_the_configuration_and_the_acl_file() {
    let server = TestServer::start(&["--user", "gina", "on", ">secret", "~*", "+@read"]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("ACL LIST").items()[1],
        bulk(&format!(
            "user gina on sanitize-payload #{} ~* resetchannels -@all +@read",
            sha256_hex("secret")
        ))
    );
    assert_eq!(
        client.cmd("ACL SAVE"),
        error("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
    );

    let directory = std::env::temp_dir().join(format!("cinnabar-acl-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("directory");
    let file = directory.join("users.acl");
    std::fs::write(
        &file,
        "user hank on nopass ~h* +get\nuser default on nopass ~* &* +@all\n",
    )
    .expect("acl file");
    let path = file.display().to_string();
    let server = TestServer::start(&["--aclfile", &path]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("ACL LIST"),
        bulks(&[
            "user default on nopass sanitize-payload ~* &* +@all",
            "user hank on nopass sanitize-payload ~h* resetchannels -@all +get",
        ])
    );
    assert_eq!(client.cmd("ACL SETUSER ivan on nopass +ping"), ok());
    assert_eq!(client.cmd("ACL SAVE"), ok());
    let saved = std::fs::read_to_string(&file).expect("saved file");
    assert_eq!(
        saved,
        "user default on nopass sanitize-payload ~* &* +@all\nuser hank on nopass sanitize-payload ~h* resetchannels -@all +get\nuser ivan on nopass sanitize-payload resetchannels -@all +ping\n"
    );
    let mut ivan = server.client();
    assert_eq!(ivan.cmd("AUTH ivan x"), ok());
    // A bad file changes nothing; a good one replaces every user, and disconnects the
    // clients of users it no longer has.
    std::fs::write(&file, "user hank on nopass +nosuch\n").expect("acl file");
    assert_eq!(
        client.cmd("ACL LOAD"),
        error(&format!("ERR {path}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"))
    );
    assert_eq!(client.cmd("ACL USERS"), bulks(&["default", "hank", "ivan"]));
    std::fs::write(&file, "user hank on nopass ~* +@all\n").expect("acl file");
    assert_eq!(client.cmd("ACL LOAD"), ok());
    assert_eq!(client.cmd("ACL USERS"), bulks(&["default", "hank"]));
    assert!(ivan.is_closed());
    let _ = std::fs::remove_dir_all(&directory);
}
