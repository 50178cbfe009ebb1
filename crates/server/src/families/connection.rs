//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET, CLIENT.

use std::sync::atomic::Ordering;

use resp::Protocol;

use crate::arguments::{database_index, is, text};
use crate::client::ReplyMode;
use crate::command::CommandTable;
use crate::config::REDIS_VERSION;
use crate::context::{errors, CommandError, CommandResult, Context};

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

/// Checks a password for the default user (the only user until ACLs exist).
fn check_password(context: &mut Context, user: &[u8], password: &[u8]) -> CommandResult {
    let required = context.server.config.get("requirepass");
    if user == b"default" && password == required.as_bytes() && !required.is_empty() {
        context.client.authenticated = true;
        return Ok(());
    }
    if user == b"default" && required.is_empty() {
        context.client.authenticated = true;
        return Ok(());
    }
    Err("WRONGPASS invalid username-password pair or user is disabled.".into())
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
    if args.len() == 2 && context.server.config.get("requirepass").is_empty() {
        return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
    }
    check_password(context, user, password)?;
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
        check_password(context, user, password)?;
    }
    if !context.client.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        *context.client.shared.name.lock() = name.to_vec();
    }
    if let Some(protocol) = protocol {
        context.client.protocol = protocol;
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
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(())
}

/// RESET
fn reset(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let client = &mut *context.client;
    client.select(0);
    client.protocol = Protocol::Resp2;
    client.shared.protocol_version.store(2, Ordering::Relaxed);
    client.reply_mode = ReplyMode::On;
    client.shared.name.lock().clear();
    client.authenticated = !context
        .server
        .config
        .hot
        .requirepass_set
        .load(Ordering::Relaxed);
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
        context.client.reply_mode = ReplyMode::SkipNext;
    } else {
        return Err(errors::SYNTAX.into());
    }
    Ok(())
}
