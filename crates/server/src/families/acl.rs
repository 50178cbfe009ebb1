//! ACL commands (ACL SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, LOG, DRYRUN,
//! LOAD, SAVE, HELP), the permission check every command passes ([`enforce`]), and what
//! follows a change of users: clients of a deleted user are disconnected, so are subscribers
//! that lost a channel. Users themselves are `crate::acl`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::acl::{self, Denial, LogContext, Refusal, User};
use crate::arguments::{integer, is, text};
use crate::client::{Client, ClientShared};
use crate::command::{Command, CommandTable};
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::server::{unix_time_ms, Server};

pub fn register(table: &mut CommandTable) {
    table.handle("acl|setuser", acl_setuser);
    table.handle("acl|getuser", acl_getuser);
    table.handle("acl|deluser", acl_deluser);
    table.handle("acl|list", acl_list);
    table.handle("acl|users", acl_users);
    table.handle("acl|whoami", acl_whoami);
    table.handle("acl|cat", acl_cat);
    table.handle("acl|genpass", acl_genpass);
    table.handle("acl|log", acl_log);
    table.handle("acl|dryrun", acl_dryrun);
    table.handle("acl|load", acl_load);
    table.handle("acl|save", acl_save);
    table.handle("acl|help", acl_help);
}

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Checks that the client's user may run `command` with `argv`; a refusal is counted, logged
/// (ACL LOG) and returned as the error to reply.
pub fn enforce(
    server: &Server,
    client: &Client,
    user: &User,
    command: &Command,
    argv: &[&[u8]],
    context: LogContext,
) -> Result<(), (Refusal, String)> {
    let Err(refusal) = user.check(command, argv) else {
        return Ok(());
    };
    log_refusal(
        server,
        &client.shared,
        user,
        command,
        argv,
        refusal,
        context,
    );
    let message = refusal.message(user, command, argv, false);
    Err((refusal, message))
}

/// Records a refused command in the ACL log.
pub fn log_refusal(
    server: &Server,
    shared: &ClientShared,
    user: &User,
    command: &Command,
    argv: &[&[u8]],
    refusal: Refusal,
    context: LogContext,
) {
    let object: &[u8] = match refusal.denial {
        Denial::Command | Denial::Auth => command.full_name.as_bytes(),
        Denial::Key | Denial::Channel => argv.get(refusal.position).copied().unwrap_or(b""),
    };
    let now_ms = unix_time_ms();
    server.acl.log_denial(
        refusal.denial,
        context,
        object,
        &user.name,
        crate::families::connection::client_info_line(server, shared, now_ms),
        now_ms,
        log_max_entries(server),
    );
}

fn log_max_entries(server: &Server) -> usize {
    server.config.get_i64("acllog-max-len").max(0) as usize
}

/// Logs a failed authentication (AUTH, HELLO AUTH) for `username`.
pub fn log_failed_auth(server: &Server, client: &Client, username: &[u8], object: &[u8]) {
    let now_ms = unix_time_ms();
    let context = if client.transaction.is_some() {
        LogContext::Multi
    } else {
        LogContext::TopLevel
    };
    server.acl.log_denial(
        Denial::Auth,
        context,
        object,
        username,
        crate::families::connection::client_info_line(server, &client.shared, now_ms),
        now_ms,
        log_max_entries(server),
    );
}

/// Brings the client's user up to date with the latest ACL change (cheap when nothing changed).
#[inline]
pub fn refresh_user(server: &Server, client: &mut Client) {
    let generation = server.acl.generation();
    if client.user_generation == generation {
        return;
    }
    match server.acl.user(&client.user.name) {
        Some(user) => client.user = user,
        None => {
            // Deleted: its connections are being closed; until then it may do nothing.
            client.user = server.acl.default_user();
            client.authenticated = false;
        }
    }
    client.user_generation = generation;
}

/// Authenticates `client` as `username` with `password`: Ok, or Redis's WRONGPASS (logged).
pub fn authenticate(
    server: &Server,
    client: &mut Client,
    username: &[u8],
    password: &[u8],
    object: &[u8],
) -> CommandResult {
    let generation = server.acl.generation();
    match server.acl.user(username) {
        Some(user) if user.accepts(password) => {
            client.set_user(user, generation);
            Ok(())
        }
        _ => {
            log_failed_auth(server, client, username, object);
            Err("WRONGPASS invalid username-password pair or user is disabled.".into())
        }
    }
}

/// Disconnects the clients authenticated as one of `users` (deleted, or replaced by ACL LOAD
/// with none of that name). The calling client is closed after its reply.
fn disconnect_users(context: &mut Context, users: &[Arc<User>]) {
    if users.is_empty() {
        return;
    }
    let me = context.client.id;
    for client in context.server.clients.all() {
        let name = client.user_name.lock().clone();
        if !users.iter().any(|user| user.name == name) {
            continue;
        }
        if client.id == me {
            context.client.close_after_reply = true;
        } else {
            client.kill();
        }
    }
}

/// After `original` became `updated`: disconnects its subscribers whose channels or patterns
/// the new rules no longer allow.
fn disconnect_narrowed_subscribers(context: &mut Context, updated: &User, original: &User) {
    let Some(channels) = updated.narrowed_channels(original) else {
        return;
    };
    let pubsub = &context.server.pubsub;
    let mut doomed: Vec<Arc<ClientShared>> = Vec::new();
    let mut check = |name: &[u8], mailbox: &Arc<crate::pubsub::Mailbox>, is_pattern: bool| {
        let client = &mailbox.client;
        if *client.user_name.lock() != original.name
            || doomed.iter().any(|known| known.id == client.id)
        {
            return;
        }
        if !acl::subscription_allowed(&channels, name, is_pattern) {
            doomed.push(client.clone());
        }
    };
    pubsub
        .channels
        .for_each_subscription(|name, mailbox| check(name, mailbox, false));
    pubsub
        .shard_channels
        .for_each_subscription(|name, mailbox| check(name, mailbox, false));
    pubsub
        .patterns
        .for_each_subscription(|name, mailbox| check(name, mailbox, true));
    let me = context.client.id;
    for client in doomed {
        if client.id == me {
            context.client.close_after_reply = true;
        } else {
            client.kill();
        }
    }
}

/// ACL SETUSER username [rule [rule ...]]
fn acl_setuser(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let name = args[2];
    if acl::has_spaces(name) {
        return Err("ERR Usernames can't contain spaces or null characters".into());
    }
    let server = context.server;
    let _edit = server.acl.edits.lock();
    let rules = server.rule_context();
    let original = server.acl.user(name);
    let user = acl::user_with_rules(original.as_deref(), name, &args[3..], &rules)
        .map_err(|message| CommandError::new(format!("ERR {message}")))?;
    if let Some(original) = &original {
        disconnect_narrowed_subscribers(context, &user, original);
    }
    server.acl.store(user);
    context.reply.ok();
    Ok(())
}

/// Writes the commands, keys and channels of a selector (ACL GETUSER).
fn reply_selector(context: &mut Context, selector: &acl::Selector) {
    context.reply.bulk(b"commands");
    context.reply.bulk(&selector.describe_commands());
    context.reply.bulk(b"keys");
    context.reply.bulk(&selector.describe_keys());
    context.reply.bulk(b"channels");
    context.reply.bulk(&selector.describe_channels());
}

/// ACL GETUSER username
fn acl_getuser(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let Some(user) = context.server.acl.user(args[2]) else {
        context.reply.null();
        return Ok(());
    };
    context.reply.map(6);
    context.reply.bulk(b"flags");
    let flags = user.flag_names();
    context.reply.set(flags.len());
    for flag in flags {
        context.reply.bulk(flag.as_bytes());
    }
    context.reply.bulk(b"passwords");
    context.reply.array(user.passwords().len());
    for password in user.passwords() {
        context.reply.bulk(password.as_bytes());
    }
    reply_selector(context, user.root());
    context.reply.bulk(b"selectors");
    context.reply.array(user.extra_selectors().len());
    for selector in user.extra_selectors() {
        context.reply.map(3);
        reply_selector(context, selector);
    }
    Ok(())
}

/// ACL DELUSER username [username ...]
fn acl_deluser(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let names = &args[2..];
    if names.iter().any(|name| *name == b"default") {
        return Err("ERR The 'default' user cannot be removed".into());
    }
    let removed = {
        let _edit = context.server.acl.edits.lock();
        context.server.acl.remove(names)
    };
    disconnect_users(context, &removed);
    context.reply.integer(removed.len() as i64);
    Ok(())
}

/// `user <name> <rules>` (ACL LIST, the ACL file).
fn user_line(user: &User) -> Vec<u8> {
    let mut line = b"user ".to_vec();
    line.extend_from_slice(&user.name);
    line.push(b' ');
    line.extend_from_slice(&user.describe());
    line
}

/// ACL LIST
fn acl_list(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let users = context.server.acl.users();
    context.reply.array(users.len());
    for user in users {
        context.reply.bulk(&user_line(&user));
    }
    Ok(())
}

/// ACL USERS
fn acl_users(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let users = context.server.acl.users();
    context.reply.array(users.len());
    for user in users {
        context.reply.bulk(&user.name);
    }
    Ok(())
}

/// ACL WHOAMI
fn acl_whoami(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let name = context.client.user.name.clone();
    context.reply.bulk(&name);
    Ok(())
}

/// ACL CAT [category]
fn acl_cat(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(crate::context::subcommand_syntax_error("ACL", args[1]));
    }
    let Some(wanted) = args.get(2) else {
        context.reply.array(acl::CATEGORIES.len());
        for category in acl::CATEGORIES {
            context.reply.bulk(category.as_bytes());
        }
        return Ok(());
    };
    let wanted = text(wanted).to_ascii_lowercase();
    let Some(category) = acl::CATEGORIES.iter().find(|category| **category == wanted) else {
        let shown: String = text(args[2]).chars().take(128).collect();
        return Err(format!("ERR Unknown category '{shown}'").into());
    };
    let mut names: Vec<&str> = Vec::new();
    for command in context.server.commands.iter() {
        if command.acl_categories.iter().any(|name| name == category) {
            names.push(&command.full_name);
        }
        for sub in command.subcommands.values() {
            if sub.acl_categories.iter().any(|name| name == category) {
                names.push(&sub.full_name);
            }
        }
    }
    context.reply.array(names.len());
    for name in names {
        context.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// ACL GENPASS [bits]
fn acl_genpass(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(crate::context::subcommand_syntax_error("ACL", args[1]));
    }
    let bits = match args.get(2) {
        Some(bits) => integer(bits)?,
        None => acl::GENPASS_BITS_DEFAULT,
    };
    if bits <= 0 || bits > acl::GENPASS_BITS_MAX {
        return Err(format!(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {}",
            acl::GENPASS_BITS_MAX
        )
        .into());
    }
    let digits = (bits as usize).div_ceil(4);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let password: Vec<u8> = (0..digits)
        .map(|_| HEX[rand::random::<u8>() as usize % 16])
        .collect();
    context.reply.bulk(&password);
    Ok(())
}

/// ACL LOG [count | RESET]
fn acl_log(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(crate::context::subcommand_syntax_error("ACL", args[1]));
    }
    let mut count = 10;
    if let Some(argument) = args.get(2) {
        if is(argument, "RESET") {
            context.server.acl.reset_log();
            context.reply.ok();
            return Ok(());
        }
        count = integer(argument).map_err(|_| CommandError::from(errors::NOT_INTEGER))?;
    }
    let entries = context.server.acl.log_entries(count.max(0) as usize);
    let now_ms = unix_time_ms();
    let reply = &mut context.reply;
    reply.array(entries.len());
    for entry in entries {
        reply.map(10);
        reply.bulk(b"count");
        reply.integer(entry.count as i64);
        reply.bulk(b"reason");
        reply.bulk(entry.denial.log_name().as_bytes());
        reply.bulk(b"context");
        reply.bulk(entry.context.name().as_bytes());
        reply.bulk(b"object");
        reply.bulk(&entry.object);
        reply.bulk(b"username");
        reply.bulk(&entry.username);
        reply.bulk(b"age-seconds");
        reply.double(now_ms.saturating_sub(entry.updated_ms) as f64 / 1000.0);
        reply.bulk(b"client-info");
        reply.bulk(entry.client_info.as_bytes());
        reply.bulk(b"entry-id");
        reply.integer(entry.entry_id as i64);
        reply.bulk(b"timestamp-created");
        reply.integer(entry.created_ms as i64);
        reply.bulk(b"timestamp-last-updated");
        reply.integer(entry.updated_ms as i64);
    }
    Ok(())
}

/// ACL DRYRUN username command [arg ...]
fn acl_dryrun(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let Some(user) = server.acl.user(args[2]) else {
        return Err(format!("ERR User '{}' not found", text(args[2])).into());
    };
    let argv = &args[3..];
    let mut command = server.commands.get(argv[0]);
    if let Some(container) = command.filter(|command| command.is_container()) {
        command = argv.get(1).and_then(|sub| container.subcommand(sub));
    }
    let Some(command) = command else {
        return Err(format!("ERR Command '{}' not found", text(argv[0])).into());
    };
    if !command.arity_allows(argv.len()) {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            command.full_name
        )
        .into());
    }
    match user.check(command, argv) {
        Ok(()) => context.reply.ok(),
        Err(refusal) => {
            let message = refusal.message(&user, command, argv, true);
            context.reply.bulk(message.as_bytes());
        }
    }
    Ok(())
}

/// The configured ACL file, if any.
fn acl_file(server: &Server) -> Option<String> {
    let path = server.config.get("aclfile");
    (!path.is_empty()).then_some(path)
}

/// Reads an ACL file: every user it defines, or every problem found (nothing applies then).
pub fn read_acl_file(server: &Server, path: &str) -> Result<BTreeMap<Vec<u8>, Arc<User>>, String> {
    let content = std::fs::read(path)
        .map_err(|error| format!("Error loading ACLs, opening file '{path}': {error}"))?;
    let rules = server.rule_context();
    let mut users: BTreeMap<Vec<u8>, Arc<User>> = BTreeMap::new();
    let mut problems = String::new();
    for (index, line) in content.split(|&byte| byte == b'\n').enumerate() {
        let number = index + 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&[u8]> = line
            .split(|&byte| byte == b' ')
            .filter(|word| !word.is_empty())
            .collect();
        if words.len() < 2 || words[0] != b"user" {
            problems.push_str(&format!(
                "{path}:{number} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = words[1];
        if acl::has_spaces(name) {
            problems.push_str(&format!(
                "'{path}:{number}: username '{}' contains invalid characters. ",
                text(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            problems.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {number}. ",
                text(name)
            ));
            continue;
        }
        let merged = match acl::merge_selector_arguments(&words[2..]) {
            Ok(merged) => merged,
            Err(_) => {
                problems.push_str(&format!(
                    "{path}:{number}: Unmatched parenthesis in selector definition."
                ));
                continue;
            }
        };
        let mut user = User::new(name, &rules);
        let mut syntax_error = false;
        for rule in &merged {
            let rule = rule.trim_ascii();
            if let Err(error) = user.apply(rule, &rules) {
                if error == acl::RuleError::UnknownCommand {
                    problems.push_str(&format!(
                        "{path}:{number}: Error in applying operation '{}': {}. ",
                        text(rule),
                        error.message()
                    ));
                } else if !syntax_error {
                    problems.push_str(&format!("{path}:{number}: {}. ", error.message()));
                    syntax_error = true;
                }
            }
        }
        users.insert(name.to_vec(), Arc::new(user));
    }
    if problems.is_empty() {
        Ok(users)
    } else {
        problems.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(problems)
    }
}

/// ACL LOAD
fn acl_load(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let Some(path) = acl_file(server) else {
        return Err(NO_ACL_FILE.into());
    };
    let _edit = server.acl.edits.lock();
    let users = read_acl_file(server, &path).map_err(|problems| format!("ERR {problems}"))?;
    let before = server.acl.users();
    server.acl.replace_all(users, &server.rule_context());
    let mut gone = Vec::new();
    for original in before {
        match server.acl.user(&original.name) {
            None => gone.push(original),
            Some(updated) => disconnect_narrowed_subscribers(context, &updated, &original),
        }
    }
    disconnect_users(context, &gone);
    context.reply.ok();
    Ok(())
}

/// Writes every user to the ACL file (through a temporary file renamed over it).
pub fn save_acl_file(server: &Server, path: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut content = Vec::new();
    for user in server.acl.users() {
        content.extend_from_slice(&user_line(&user));
        content.push(b'\n');
    }
    let temporary = format!("{path}.tmp-{}-{}", std::process::id(), unix_time_ms());
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// ACL SAVE
fn acl_save(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let Some(path) = acl_file(context.server) else {
        return Err(NO_ACL_FILE.into());
    };
    if let Err(error) = save_acl_file(context.server, &path) {
        tracing::warn!("Writing ACL file for ACL SAVE: {error}");
        return Err("ERR There was an error trying to save the ACLs. Please check the server logs for more information".into());
    }
    context.reply.ok();
    Ok(())
}

/// Loads the users of `user` directives and of the ACL file at start-up (not both: Redis
/// refuses that).
pub fn load_users_at_startup(server: &Server) -> Result<(), String> {
    let directives = server.config.user_directives();
    let file = acl_file(server);
    if file.is_some() && !directives.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let rules = server.rule_context();
    for words in &directives {
        let Some((name, rule_words)) = words.split_first() else {
            continue;
        };
        if acl::has_spaces(name) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        let original = server.acl.user(name);
        let mut user = match original {
            Some(existing) => {
                let mut user = (*existing).clone();
                let reset = user.apply(b"reset", &rules);
                assert!(reset.is_ok(), "reset applies");
                user
            }
            None => User::new(name, &rules),
        };
        let rule_words: Vec<&[u8]> = rule_words.iter().map(Vec::as_slice).collect();
        let merged = acl::merge_selector_arguments(&rule_words)
            .map_err(|_| "Unmatched parenthesis in ACL selector".to_string())?;
        for rule in &merged {
            user.apply(rule, &rules).map_err(|error| {
                format!(
                    "Error loading ACL rule '{}' for the user named '{}': {}",
                    text(rule),
                    text(name),
                    error.message()
                )
            })?;
        }
        if !user.enabled() {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                text(name)
            );
        }
        server.acl.store(user);
    }
    if let Some(path) = file {
        let users = read_acl_file(server, &path).map_err(|problems| {
            format!("Aborting Redis startup because of ACL errors: {problems}")
        })?;
        server.acl.replace_all(users, &rules);
    }
    Ok(())
}

/// ACL HELP
fn acl_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}
