//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET, CLIENT (ID, SETNAME,
//! GETNAME, REPLY, LIST, INFO, KILL, SETINFO, NO-EVICT, NO-TOUCH, HELP).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use resp::Protocol;

use crate::arguments::{database_index, is, text};
use crate::client::{ClientShared, ReplyMode};
use crate::command::CommandTable;
use crate::config::REDIS_VERSION;
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::server::Server;

pub fn register(table: &mut CommandTable) {
    table.handle("ping", ping);
    table.handle("echo", echo);
    table.handle("quit", quit);
    table.handle("select", select);
    table.handle("hello", hello);
    table.handle("auth", auth);
    table.handle("reset", reset);
    table.handle("client|id", client_id);
    table.handle("client|setname", client_setname);
    table.handle("client|getname", client_getname);
    table.handle("client|reply", client_reply);
    table.handle("client|list", client_list);
    table.handle("client|info", client_info);
    table.handle("client|kill", client_kill);
    table.handle("client|setinfo", client_setinfo);
    table.handle("client|no-evict", client_no_evict);
    table.handle("client|no-touch", client_no_touch);
    table.handle("client|help", client_help);
    table.handle("client|tracking", client_tracking);
    table.handle("client|pause", client_pause);
    table.handle("client|unpause", client_unpause);
    table.handle("monitor", monitor);
    table.handle("client|caching", client_caching);
    table.handle("client|getredir", client_getredir);
    table.handle("client|trackinginfo", client_trackinginfo);
    table.handle("client|unblock", client_unblock);
}

/// PING [message]
fn ping(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 2 {
        return Err(crate::context::wrong_arity("ping"));
    }
    if context.client.subscriptions.count() > 0 && context.client.protocol == Protocol::Resp2 {
        context.reply.array(2);
        context.reply.bulk(b"pong");
        context.reply.bulk(args.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match args.get(1) {
        Some(message) => context.reply.bulk(message),
        None => context.reply.simple(b"PONG"),
    }
    Ok(())
}

/// ECHO message
fn echo(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    context.reply.bulk(args[1]);
    Ok(())
}

/// QUIT
fn quit(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.reply.ok();
    context.client.close_after_reply = true;
    Ok(())
}

/// SELECT index
fn select(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = database_index(args[1], context.server.keyspace.database_count())?;
    context.client.select(database);
    context.reply.ok();
    Ok(())
}

/// AUTH [username] password
fn auth(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let (user, password) = match args {
        [_, password] => (&b"default"[..], *password),
        [_, user, password] => (*user, *password),
        _ => return Err(errors::SYNTAX.into()),
    };
    if args.len() == 2 && context.server.acl.default_user().no_password() {
        return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
    }
    crate::families::acl::authenticate(context.server, context.client, user, password, args[0])?;
    context.reply.ok();
    Ok(())
}

/// Whether a client name is acceptable: printable ASCII without spaces.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

const INVALID_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut protocol = None;
    let mut index = 1;
    if let Some(version) = args.get(1) {
        let version = store::number::parse_i64(version).ok_or_else(|| {
            CommandError::from("ERR Protocol version is not an integer or out of range")
        })?;
        protocol = match version {
            2 => Some(Protocol::Resp2),
            3 => Some(Protocol::Resp3),
            _ => return Err("NOPROTO unsupported protocol version".into()),
        };
        index = 2;
    }
    let mut credentials = None;
    let mut name = None;
    while index < args.len() {
        let remaining = args.len() - index - 1;
        if is(args[index], "AUTH") && remaining >= 2 {
            credentials = Some((args[index + 1], args[index + 2]));
            index += 3;
        } else if is(args[index], "SETNAME") && remaining >= 1 {
            let requested = args[index + 1];
            if !valid_client_name(requested) {
                return Err(INVALID_NAME.into());
            }
            name = Some(requested);
            index += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", text(args[index])).into());
        }
    }
    if let Some((user, password)) = credentials {
        crate::families::acl::authenticate(
            context.server,
            context.client,
            user,
            password,
            args[0],
        )?;
    }
    if !context.client.authenticated && context.server.acl.auth_required() {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        *context.client.shared.name.lock() = name.to_vec();
    }
    if let Some(protocol) = protocol {
        context.client.protocol = protocol;
        context
            .client
            .mailbox
            .set_resp3(protocol == Protocol::Resp3);
        let version = if protocol == Protocol::Resp3 { 3 } else { 2 };
        context
            .client
            .shared
            .protocol_version
            .store(version, Ordering::Relaxed);
    }
    let mut reply = resp::ReplyWriter::new(context.reply.buffer(), context.client.protocol);
    reply.map(7);
    reply.bulk(b"server");
    reply.bulk(b"redis");
    reply.bulk(b"version");
    reply.bulk(REDIS_VERSION.as_bytes());
    reply.bulk(b"proto");
    reply.integer(if context.client.protocol == Protocol::Resp3 {
        3
    } else {
        2
    });
    reply.bulk(b"id");
    reply.integer(context.client.id as i64);
    reply.bulk(b"mode");
    reply.bulk(b"standalone");
    reply.bulk(b"role");
    reply.bulk(if context.server.replica_link.is_active() {
        b"replica"
    } else {
        b"master"
    });
    reply.bulk(b"modules");
    reply.array(0);
    Ok(())
}

/// RESET
fn reset(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.client.transaction = None;
    crate::families::transactions::unwatch_all(context.server, context.client);
    crate::families::pubsub::unsubscribe_all(context.server, context.client);
    let client = &mut *context.client;
    client.select(0);
    client.protocol = Protocol::Resp2;
    client.mailbox.set_resp3(false);
    context.server.tracking.disable(client.id);
    context.server.monitors.remove(client.id);
    client.tracking_caching = false;
    client.shared.protocol_version.store(2, Ordering::Relaxed);
    client.reply_mode = ReplyMode::On;
    client.shared.name.lock().clear();
    client.shared.no_evict.store(false, Ordering::Relaxed);
    client.shared.no_touch.store(false, Ordering::Relaxed);
    let server = context.server;
    let generation = server.acl.generation();
    client.set_user(server.acl.default_user(), generation);
    client.authenticated = !server.acl.auth_required();
    let mut reply = resp::ReplyWriter::new(context.reply.buffer(), Protocol::Resp2);
    reply.simple(b"RESET");
    Ok(())
}

/// CLIENT ID
fn client_id(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.reply.integer(context.client.id as i64);
    Ok(())
}

/// CLIENT SETNAME connection-name
fn client_setname(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if !valid_client_name(args[2]) {
        return Err(INVALID_NAME.into());
    }
    *context.client.shared.name.lock() = args[2].to_vec();
    context.reply.ok();
    Ok(())
}

/// CLIENT GETNAME
fn client_getname(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let name = context.client.shared.name.lock().clone();
    if name.is_empty() {
        context.reply.null();
    } else {
        context.reply.bulk(&name);
    }
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP
fn client_reply(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if is(args[2], "ON") {
        context.client.reply_mode = ReplyMode::On;
        context.reply.ok();
    } else if is(args[2], "OFF") {
        context.client.reply_mode = ReplyMode::Off;
    } else if is(args[2], "SKIP") {
        if context.client.reply_mode != ReplyMode::Off {
            context.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(errors::SYNTAX.into());
    }
    Ok(())
}

/// One client's CLIENT LIST line (without the line end), in Redis's field order, followed by
/// the `tot-net-in`, `tot-net-out` and `tot-cmds` counters newer servers add.
pub fn client_info_line(server: &Server, client: &ClientShared, now_ms: u64) -> String {
    let load = |counter: &std::sync::atomic::AtomicUsize| counter.load(Ordering::Relaxed);
    let multi = client.multi_commands.load(Ordering::Relaxed);
    let mut flags = String::new();
    if server.monitors.contains(client.id) {
        flags.push('O');
    }
    if client.is_pubsub() {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if client.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if let Some(tracker) = server.tracking.tracker(client.id) {
        flags.push('t');
        let redirect = tracker.options.redirect;
        if redirect != 0 && !server.tracking.exists(redirect) {
            flags.push('R');
        }
        if tracker.options.bcast {
            flags.push('B');
        }
    }
    if client.is_killed() {
        flags.push('A');
    }
    if client.unix_socket.is_some() {
        flags.push('U');
    }
    if client.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if client.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if client.replica.load(Ordering::Relaxed) {
        flags.push('S');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let command = match client.last_command.load(Ordering::Relaxed) {
        0 => "NULL",
        id => server.commands.name_of(id),
    };
    let query_bytes = load(&client.query_buffer_bytes);
    let query_free_bytes = load(&client.query_buffer_free_bytes);
    let argument_bytes = load(&client.argument_bytes);
    let reply_bytes = load(&client.reply_buffer_bytes);
    let output_bytes = load(&client.output_bytes);
    let total_memory = client.memory_bytes();
    let multi_bytes = load(&client.multi_bytes);
    let text =
        |bytes: &parking_lot::Mutex<Vec<u8>>| String::from_utf8_lossy(&bytes.lock()).into_owned();
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi={multi} watch={} qbuf={query_bytes} qbuf-free={query_free_bytes} argv-mem={argument_bytes} multi-mem={multi_bytes} rbs={reply_bytes} rbp={} obl=0 oll=0 omem={output_bytes} tot-mem={total_memory} events=r cmd={command} user={} redir=-1 resp={} lib-name={} lib-ver={} tot-net-in={} tot-net-out={} tot-cmds={}",
        client.id,
        client.address_text(),
        client.local_address_text(),
        client.file_descriptor,
        text(&client.name),
        (now_ms / 1000).saturating_sub(client.created_ms / 1000),
        (now_ms / 1000).saturating_sub(client.last_interaction_ms.load(Ordering::Relaxed) / 1000),
        load(&client.database),
        load(&client.channel_subscriptions),
        load(&client.pattern_subscriptions),
        load(&client.shard_channel_subscriptions),
        load(&client.watched_keys),
        load(&client.reply_buffer_peak_bytes),
        text(&client.user_name),
        client.protocol_version.load(Ordering::Relaxed),
        text(&client.library_name),
        text(&client.library_version),
        client.net_input_bytes.load(Ordering::Relaxed),
        client.net_output_bytes.load(Ordering::Relaxed),
        client.commands_processed.load(Ordering::Relaxed),
    )
}

/// Client types (CLIENT LIST TYPE, CLIENT KILL TYPE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

fn client_type(name: &[u8]) -> Result<ClientType, CommandError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"normal" => Ok(ClientType::Normal),
        b"slave" | b"replica" => Ok(ClientType::Replica),
        b"master" | b"primary" => Ok(ClientType::Master),
        b"pubsub" => Ok(ClientType::PubSub),
        _ => Err(format!("ERR Unknown client type '{}'", text(name)).into()),
    }
}

fn type_of(client: &ClientShared) -> ClientType {
    if client.replica.load(Ordering::Relaxed) {
        ClientType::Replica
    } else if client.is_pubsub() {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

/// CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]
fn client_list(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let clients: Vec<Arc<ClientShared>> = if args.len() == 4 && is(args[2], "TYPE") {
        let wanted = client_type(args[3])?;
        server
            .clients
            .all()
            .into_iter()
            .filter(|client| type_of(client) == wanted)
            .collect()
    } else if args.len() > 3 && is(args[2], "ID") {
        let mut found = Vec::new();
        for id in &args[3..] {
            let id = store::number::parse_i64(id)
                .ok_or_else(|| CommandError::from("ERR Invalid client ID"))?;
            if let Some(client) = u64::try_from(id).ok().and_then(|id| server.clients.get(id)) {
                found.push(client);
            }
        }
        found
    } else if args.len() == 2 {
        server.clients.all()
    } else {
        return Err(errors::SYNTAX.into());
    };
    let mut text = String::new();
    // A killed client is on its way out (Redis frees it at once); only the caller itself
    // shows as closing (flag `A`).
    let me = context.client.id;
    for client in clients {
        if client.is_killed() && client.id != me {
            continue;
        }
        text.push_str(&client_info_line(server, &client, context.now_ms));
        text.push('\n');
    }
    context.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// CLIENT INFO
fn client_info(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let mut line = client_info_line(context.server, &context.client.shared, context.now_ms);
    line.push('\n');
    context.reply.verbatim(b"txt", line.as_bytes());
    Ok(())
}

/// What CLIENT KILL's filters select.
#[derive(Default)]
struct KillFilter {
    address: Option<String>,
    local_address: Option<String>,
    client_type: Option<ClientType>,
    id: Option<u64>,
    max_age_s: Option<u64>,
    user: Option<Vec<u8>>,
    skip_me: bool,
}

impl KillFilter {
    fn parse(server: &Server, args: &[&[u8]]) -> Result<KillFilter, CommandError> {
        let mut filter = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        let mut pairs = args.chunks(2);
        for pair in &mut pairs {
            let [option, value] = pair else {
                return Err(errors::SYNTAX.into());
            };
            if is(option, "ID") {
                let id = store::number::parse_i64(value)
                    .filter(|id| *id > 0)
                    .ok_or_else(|| CommandError::from("ERR client-id should be greater than 0"))?;
                filter.id = Some(id as u64);
            } else if is(option, "MAXAGE") {
                let age = store::number::parse_i64(value).ok_or_else(|| {
                    CommandError::from("ERR maxage is not an integer or out of range")
                })?;
                if age <= 0 {
                    return Err("ERR maxage should be greater than 0".into());
                }
                filter.max_age_s = Some(age as u64);
            } else if is(option, "TYPE") {
                filter.client_type = Some(client_type(value)?);
            } else if is(option, "ADDR") {
                filter.address = Some(text(value));
            } else if is(option, "LADDR") {
                filter.local_address = Some(text(value));
            } else if is(option, "USER") {
                if server.acl.user(value).is_none() {
                    return Err(format!("ERR No such user '{}'", text(value)).into());
                }
                filter.user = Some(value.to_vec());
            } else if is(option, "SKIPME") {
                filter.skip_me = if is(value, "YES") {
                    true
                } else if is(value, "NO") {
                    false
                } else {
                    return Err(errors::SYNTAX.into());
                };
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
        Ok(filter)
    }

    fn matches(&self, client: &ClientShared, me: u64, now_ms: u64) -> bool {
        if self
            .address
            .as_ref()
            .is_some_and(|address| *address != client.address_text())
        {
            return false;
        }
        if self
            .local_address
            .as_ref()
            .is_some_and(|address| *address != client.local_address_text())
        {
            return false;
        }
        if self
            .client_type
            .is_some_and(|wanted| wanted != type_of(client))
        {
            return false;
        }
        if self.id.is_some_and(|id| id != client.id) {
            return false;
        }
        if self
            .user
            .as_ref()
            .is_some_and(|user| *user != *client.user_name.lock())
        {
            return false;
        }
        if self.skip_me && client.id == me {
            return false;
        }
        let age_s = (now_ms / 1000).saturating_sub(client.created_ms / 1000);
        if self.max_age_s.is_some_and(|max_age_s| age_s < max_age_s) {
            return false;
        }
        true
    }
}

/// CLIENT KILL ip:port | CLIENT KILL [ID client-id] [TYPE NORMAL|MASTER|REPLICA|PUBSUB]
/// [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME YES|NO] [MAXAGE maxage] ...
fn client_kill(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter {
            address: Some(text(args[2])),
            skip_me: false,
            ..KillFilter::default()
        }
    } else {
        KillFilter::parse(context.server, &args[2..])?
    };
    let me = context.client.id;
    let mut killed = 0;
    for client in context.server.clients.all() {
        if !filter.matches(&client, me, context.now_ms) {
            continue;
        }
        if client.id == me {
            context.client.close_after_reply = true;
        } else {
            client.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err("ERR No such client".into());
        }
        context.reply.ok();
    } else {
        context.reply.integer(killed);
    }
    Ok(())
}

/// CLIENT SETINFO LIB-NAME libname | LIB-VER libver
fn client_setinfo(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let shared = &context.client.shared;
    let target = if is(args[2], "LIB-NAME") {
        &shared.library_name
    } else if is(args[2], "LIB-VER") {
        &shared.library_version
    } else {
        return Err(format!("ERR Unrecognized option '{}'", text(args[2])).into());
    };
    if !valid_client_name(args[3]) {
        return Err(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            text(args[2])
        )
        .into());
    }
    *target.lock() = args[3].to_vec();
    context.reply.ok();
    Ok(())
}

/// Parses ON|OFF.
fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "ON") {
        Ok(true)
    } else if is(arg, "OFF") {
        Ok(false)
    } else {
        Err(errors::SYNTAX.into())
    }
}

/// CLIENT NO-EVICT ON|OFF
fn client_no_evict(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let on = on_off(args[2])?;
    context.client.shared.no_evict.store(on, Ordering::Relaxed);
    context.reply.ok();
    Ok(())
}

/// CLIENT NO-TOUCH ON|OFF
fn client_no_touch(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let on = on_off(args[2])?;
    context.client.shared.no_touch.store(on, Ordering::Relaxed);
    context.reply.ok();
    Ok(())
}

/// CLIENT HELP
fn client_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "    * MAXAGE <maxage>",
            "      Kill connections older than the specified age.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
fn client_unblock(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let id = crate::arguments::integer(args[2])?;
    let error = match args.get(3) {
        None => None,
        Some(mode) if is(mode, "TIMEOUT") => None,
        Some(mode) if is(mode, "ERROR") => {
            Some("UNBLOCKED client unblocked via CLIENT UNBLOCK".to_string())
        }
        Some(_) => return Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into()),
    };
    let unblocked = id > 0 && context.server.blocked.unblock(id as u64, error);
    context.reply.integer(unblocked as i64);
    Ok(())
}

/// CLIENT TRACKING <ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
fn client_tracking(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let tracking = &context.server.tracking;
    let mut options = crate::tracking::Options::default();
    let mut index = 3;
    while index < args.len() {
        let more = index + 1 < args.len();
        let word = args[index];
        if is(word, "REDIRECT") && more {
            index += 1;
            if options.redirect != 0 {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let id = crate::arguments::integer(args[index])?;
            if id <= 0 || !tracking.exists(id as u64) {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
            options.redirect = id as u64;
        } else if is(word, "BCAST") {
            options.bcast = true;
        } else if is(word, "OPTIN") {
            options.optin = true;
        } else if is(word, "OPTOUT") {
            options.optout = true;
        } else if is(word, "NOLOOP") {
            options.noloop = true;
        } else if is(word, "PREFIX") && more {
            index += 1;
            options.prefixes.push(args[index].to_vec());
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let id = context.client.id;
    if is(args[2], "ON") {
        if !options.bcast && !options.prefixes.is_empty() {
            return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
        }
        let current = tracking.tracker(id);
        if let Some(current) = &current {
            if current.options.bcast != options.bcast {
                return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
            }
        }
        if options.bcast && (options.optin || options.optout) {
            return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
        }
        if options.optin && options.optout {
            return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
        }
        if let Some(current) = &current {
            if (options.optin && current.options.optout)
                || (options.optout && current.options.optin)
            {
                return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
            }
        }
        if options.bcast {
            let existing: &[Vec<u8>] = match &current {
                Some(current) => &current.options.prefixes,
                None => &[],
            };
            check_prefix_collisions(existing, &options.prefixes)?;
        }
        tracking.enable(&context.client.mailbox, options);
    } else if is(args[2], "OFF") {
        tracking.disable(id);
        context.client.tracking_caching = false;
    } else {
        return Err(errors::SYNTAX.into());
    }
    context.reply.ok();
    Ok(())
}

/// Redis refuses BCAST prefixes of one client that overlap (one a prefix of another).
fn check_prefix_collisions(existing: &[Vec<u8>], new: &[Vec<u8>]) -> CommandResult {
    let overlaps = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (position, prefix) in new.iter().enumerate() {
        if let Some(collision) = existing
            .iter()
            .find(|other| *other != prefix && overlaps(prefix, other))
        {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(collision)
            )
            .into());
        }
        for other in &new[position + 1..] {
            if other != prefix && overlaps(prefix, other) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    text(prefix),
                    text(other)
                )
                .into());
            }
        }
    }
    Ok(())
}

/// CLIENT CACHING <YES | NO>
fn client_caching(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let Some(tracker) = context.server.tracking.tracker(context.client.id) else {
        return Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into());
    };
    if is(args[2], "YES") {
        if !tracker.options.optin {
            return Err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                    .into(),
            );
        }
    } else if is(args[2], "NO") {
        if !tracker.options.optout {
            return Err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                    .into(),
            );
        }
    } else {
        return Err(errors::SYNTAX.into());
    }
    context.client.tracking_caching = true;
    context.reply.ok();
    Ok(())
}

/// CLIENT GETREDIR
fn client_getredir(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let redirect = match context.server.tracking.tracker(context.client.id) {
        Some(tracker) => tracker.options.redirect as i64,
        None => -1,
    };
    context.reply.integer(redirect);
    Ok(())
}

/// CLIENT TRACKINGINFO
fn client_trackinginfo(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let tracking = &context.server.tracking;
    let tracker = tracking.tracker(context.client.id);
    let mut flags: Vec<&[u8]> = Vec::new();
    match &tracker {
        None => flags.push(b"off"),
        Some(tracker) => {
            let options = &tracker.options;
            flags.push(b"on");
            if options.bcast {
                flags.push(b"bcast");
            }
            if options.optin {
                flags.push(b"optin");
                if context.client.tracking_caching {
                    flags.push(b"caching-yes");
                }
            }
            if options.optout {
                flags.push(b"optout");
                if context.client.tracking_caching {
                    flags.push(b"caching-no");
                }
            }
            if options.noloop {
                flags.push(b"noloop");
            }
            if options.redirect != 0 && !tracking.exists(options.redirect) {
                flags.push(b"broken_redirect");
            }
        }
    }
    let reply = &mut context.reply;
    reply.map(3);
    reply.bulk(b"flags");
    reply.set(flags.len());
    for flag in flags {
        reply.bulk(flag);
    }
    reply.bulk(b"redirect");
    match &tracker {
        Some(tracker) => reply.integer(tracker.options.redirect as i64),
        None => reply.integer(-1),
    }
    reply.bulk(b"prefixes");
    match &tracker {
        Some(tracker) if tracker.options.bcast => {
            reply.array(tracker.options.prefixes.len());
            for prefix in &tracker.options.prefixes {
                reply.bulk(prefix);
            }
        }
        _ => reply.array(0),
    }
    Ok(())
}

/// MONITOR
fn monitor(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.server.monitors.add(&context.client.mailbox);
    context.reply.ok();
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE | ALL]
fn client_pause(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 4 {
        return Err(errors::SYNTAX.into());
    }
    let mode = match args.get(3) {
        None => crate::pause::PauseMode::All,
        Some(word) if is(word, "WRITE") => crate::pause::PauseMode::Write,
        Some(word) if is(word, "ALL") => crate::pause::PauseMode::All,
        Some(_) => return Err("ERR CLIENT PAUSE mode must be WRITE or ALL".into()),
    };
    let timeout_ms = store::number::parse_i64(args[2])
        .ok_or_else(|| CommandError::from("ERR timeout is not an integer or out of range"))?;
    if timeout_ms < 0 {
        return Err("ERR timeout is negative".into());
    }
    let end_ms = (context.now_ms as i64)
        .checked_add(timeout_ms)
        .ok_or_else(|| CommandError::from("ERR timeout is out of range"))?;
    context.server.pause.pause(end_ms as u64, mode);
    context.reply.ok();
    Ok(())
}

/// CLIENT UNPAUSE
fn client_unpause(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.server.pause.unpause();
    context.reply.ok();
    Ok(())
}
