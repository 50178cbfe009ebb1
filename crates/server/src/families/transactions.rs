//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Between MULTI and EXEC the connection queues commands (`connection::execute` does the
//! queueing and flags the transaction when a command cannot be queued). EXEC locks, in the
//! global order, every shard any queued command touches plus the shards of the watched keys
//! (every shard when a command's keys cannot be known in advance: whole-keyspace commands,
//! SELECT, MOVE, COPY), checks the watched keys, and runs the commands with those locks lent to
//! them through an `ExecScope`: the transaction is atomic across shards and threads. Its writes
//! are propagated together, wrapped in MULTI/EXEC when there is more than one, and clients
//! blocked on keys it made ready are served after it.
//!
//! WATCH records, per key, the version the key's shard keeps for it (`Shard::watched`); every
//! propagated write of a key bumps it, as does its expiry, flushing and swapping databases.

use std::time::Instant;

use resp::ReplyWriter;
use store::keyspace::shard_index;
use store::SmallBytes;

use crate::client::{Client, WatchedKey};
use crate::command::{flags, Command, CommandTable};
use crate::context::{CommandResult, Context, ExecScope, HeldScope};
use crate::server::{unix_time_ms, Server};

pub fn register(table: &mut CommandTable) {
    table.handle("multi", multi);
    table.handle("exec", exec);
    table.handle("discard", discard);
    table.handle("watch", watch);
    table.handle("unwatch", unwatch);
}

/// Commands that run at once even inside MULTI.
pub fn runs_inside_multi(command: &Command) -> bool {
    matches!(
        command.full_name.as_str(),
        "multi" | "exec" | "discard" | "watch" | "quit" | "reset"
    )
}

/// MULTI
fn multi(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    if let Some(transaction) = context.client.transaction.as_mut() {
        // As in Redis, the nested MULTI also dooms the transaction (EXECABORT).
        transaction.failed = true;
        return Err("ERR MULTI calls can not be nested".into());
    }
    context.client.transaction = Some(Default::default());
    context.reply.ok();
    Ok(())
}

/// DISCARD
fn discard(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    if context.client.transaction.take().is_none() {
        return Err("ERR DISCARD without MULTI".into());
    }
    unwatch_all(context.server, context.client);
    context.reply.ok();
    Ok(())
}

/// WATCH key [key ...]
fn watch(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if context.client.transaction.is_some() {
        return Err("ERR WATCH inside MULTI is not allowed".into());
    }
    let database = context.database();
    for key in &args[1..] {
        let already = context
            .client
            .watched
            .iter()
            .any(|watched| watched.database == database && &*watched.key == *key);
        if already {
            continue;
        }
        let mut shard = context.lock(key);
        // Looked at without expiring it: WATCH itself changes nothing.
        let existed = shard.is_live(key, context.now_ms);
        let stale = !existed && shard.holds(key);
        let version = shard.watched.watch(key);
        drop(shard);
        context.client.watched.push(WatchedKey {
            database,
            key: SmallBytes::new(key),
            version,
            existed,
            stale,
        });
    }
    context.reply.ok();
    Ok(())
}

/// UNWATCH
fn unwatch(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    unwatch_all(context.server, context.client);
    context.reply.ok();
    Ok(())
}

/// Forgets every key the client watches.
pub fn unwatch_all(server: &Server, client: &mut Client) {
    for watched in client.watched.drain(..) {
        let mut shard = server.lock_shard(watched.database, shard_index(&watched.key));
        shard.watched.unwatch(&watched.key);
    }
}

/// Whether the keys a command touches cannot be known from its key specs.
fn needs_every_shard(command: &Command) -> bool {
    let keyless = command.key_specs.is_empty();
    // Keyless commands may read or change the whole keyspace (FLUSHALL, DBSIZE, INFO, DEBUG),
    // except connection and pub/sub commands.
    let harmless = command
        .acl_categories
        .iter()
        .any(|category| category == "connection" || category == "pubsub")
        && !command.has(flags::WRITE);
    (keyless && !harmless)
        || command.has(flags::MOVABLE_KEYS) && command.key_specs.is_empty()
        || command.has(flags::EXCLUSIVE)
        || matches!(
            command.full_name.as_str(),
            "select" | "move" | "copy" | "swapdb"
        )
}

/// Finds the command (or subcommand) a queued request names.
fn queued_command<'a>(table: &'a CommandTable, args: &[Vec<u8>]) -> Option<&'a Command> {
    let command = table.get(&args[0])?;
    if command.is_container() && args.len() >= 2 {
        return command.subcommand(&args[1]);
    }
    Some(command)
}

/// EXEC
fn exec(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let Some(transaction) = context.client.transaction.take() else {
        return Err("ERR EXEC without MULTI".into());
    };
    let server = context.server;
    if transaction.failed {
        unwatch_all(server, context.client);
        return Err("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let database = context.database();
    let queued: Vec<(&Command, Vec<&[u8]>)> = transaction
        .commands
        .iter()
        .filter_map(|args| {
            let command = queued_command(&server.commands, args)?;
            Some((command, args.iter().map(Vec::as_slice).collect()))
        })
        .collect();
    assert_eq!(
        queued.len(),
        transaction.commands.len(),
        "queued commands resolve"
    );
    let everything = queued.iter().any(|(command, _)| needs_every_shard(command));
    let mut keys: Vec<(usize, &[u8])> = Vec::new();
    if !everything {
        for (command, args) in &queued {
            for position in command.key_positions(args) {
                keys.push((database, args[position]));
            }
        }
    }
    let watched: Vec<(usize, SmallBytes, u64, bool, bool)> = context
        .client
        .watched
        .iter()
        .map(|watched| {
            (
                watched.database,
                watched.key.clone(),
                watched.version,
                watched.existed,
                watched.stale,
            )
        })
        .collect();
    for (watched_database, key, _, _, _) in &watched {
        keys.push((*watched_database, key));
    }
    let scope = ExecScope::lock(server, keys.iter().copied(), everything);
    let now_ms = unix_time_ms();
    let broken = watched
        .iter()
        .any(|(watched_database, key, version, existed, stale)| {
            let mut shard = scope.borrow(*watched_database, shard_index(key));
            let alive = shard.peek(key, now_ms).is_some();
            let now = shard.watched.version(key);
            // A key stale when watched may since have been deleted (its one due change).
            let only_its_deletion = *stale && !alive && now == Some(version + 1);
            (now != Some(*version) && !only_its_deletion) || (*existed && !alive)
        });
    if broken {
        scope.finish(server);
        unwatch_all(server, context.client);
        context.reply.null_array();
        return Ok(());
    }
    let protocol = context.client.protocol;
    context.reply.array(queued.len());
    let user = context.client.user.clone();
    for (command, args) in &queued {
        // Permissions are checked again: they may have changed since the command was queued.
        if !user.unrestricted && !context.client.must_obey() {
            let refused = crate::families::acl::enforce(
                server,
                context.client,
                &user,
                command,
                args,
                crate::acl::LogContext::Multi,
            );
            if let Err((refusal, _)) = refused {
                let reason = match refusal.denial {
                    crate::acl::Denial::Command | crate::acl::Denial::Auth => {
                        "no permission to execute the command or subcommand"
                    }
                    crate::acl::Denial::Key => "no permission to touch the specified keys",
                    crate::acl::Denial::Channel => {
                        "no permission to access one of the channels used as arguments"
                    }
                };
                let message = format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}");
                server.stats.count_error(message.as_bytes());
                context.reply.error(message.as_bytes());
                continue;
            }
        }
        let started = Instant::now();
        let buffer = context.reply.buffer();
        let result = {
            let mut inner = Context {
                server,
                client: &mut *context.client,
                reply: ReplyWriter::new(buffer, protocol),
                now_ms: unix_time_ms(),
                command,
                scope: Some(&scope),
            };
            let handler = command.handler.expect("queued commands have handlers");
            handler(&mut inner, args)
        };
        let duration = started.elapsed();
        command.stats.add_calls(1);
        command.stats.add_microseconds(duration.as_micros() as u64);
        crate::latency::record_call(server, context.client, command, args, duration);
        match result {
            Err(error) => {
                command.stats.add_failed();
                server.stats.count_error(error.0.as_bytes());
                context.reply.error(error.0.as_bytes());
            }
            Ok(()) if server.tracking.active() => {
                let caching_given = context.client.tracking_caching;
                crate::connection::track_read(
                    server,
                    context.client.id,
                    caching_given,
                    command,
                    args,
                );
            }
            Ok(()) => {}
        }
        if server.monitors.active() {
            let source = context.client.shared.address_text();
            server
                .monitors
                .feed(command, context.client.database, &source, args);
        }
        // A command inside EXEC never blocks.
        debug_assert!(context.client.blocked.is_none());
    }
    let captured = scope.take_captured();
    server.propagation.append_transaction(&captured);
    scope.finish(server);
    unwatch_all(server, context.client);
    Ok(())
}
