//! Replication commands, master side: SYNC, PSYNC and REPLCONF (see `crate::replication` for
//! the model: a full resynchronisation, then the propagation stream as RESP commands).

use std::sync::atomic::Ordering;

use crate::arguments::is;
use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};
use crate::replication::ReplicaFeed;
use crate::server::unix_time_ms;

pub fn register(table: &mut CommandTable) {
    table.handle("sync", sync);
    table.handle("psync", psync);
    table.handle("replconf", replconf);
    table.handle("wait", wait);
    table.handle("waitaof", waitaof);
    table.handle("replicaof", replicaof);
    table.handle("slaveof", replicaof);
    table.handle("role", role);
}

/// REPLICAOF host port | REPLICAOF NO ONE (SLAVEOF is the same)
fn replicaof(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    if is(args[1], "NO") && is(args[2], "ONE") {
        crate::replica::stop_following(server);
        let _ = server.config.set_many(
            &[(
                "replicaof".to_string(),
                vec!["no".to_string(), "one".to_string()],
            )],
            crate::config::ConfigSource::Startup,
        );
        context.reply.ok();
        return Ok(());
    }
    let port = store::number::parse_i64(args[2])
        .filter(|port| (0..=65535).contains(port))
        .ok_or("ERR Invalid master port")?;
    let Some(server) = server.arc() else {
        return Err("ERR Replication unavailable".into());
    };
    let host = String::from_utf8_lossy(args[1]).into_owned();
    if !crate::replica::follow(&server, host.clone(), port as u16) {
        tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        context
            .reply
            .simple(b"OK Already connected to specified master");
        return Ok(());
    }
    let _ = server.config.set_many(
        &[("replicaof".to_string(), vec![host, port.to_string()])],
        crate::config::ConfigSource::Startup,
    );
    context.reply.ok();
    Ok(())
}

/// ROLE
fn role(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let link = &server.replica_link;
    if let Some((host, port)) = link.master().filter(|_| link.is_active()) {
        let state = link.state();
        let offset = if state == crate::replica::LinkState::Connected {
            link.offset.load(Ordering::Relaxed) as i64
        } else {
            -1
        };
        context.reply.array(5);
        context.reply.bulk(b"slave");
        context.reply.bulk(host.as_bytes());
        context.reply.integer(i64::from(port));
        context.reply.bulk(state.role_name().as_bytes());
        context.reply.integer(offset);
        return Ok(());
    }
    let views = server.replication.views(unix_time_ms());
    context.reply.array(3);
    context.reply.bulk(b"master");
    context
        .reply
        .integer(server.replication.offset.load(Ordering::Relaxed) as i64);
    context.reply.array(views.len());
    for view in views {
        let address = server
            .clients
            .get(view.client_id)
            .map(|client| client.address.ip().to_string())
            .unwrap_or_default();
        context.reply.array(3);
        context.reply.bulk(address.as_bytes());
        context
            .reply
            .bulk(view.listening_port.to_string().as_bytes());
        context.reply.bulk(view.offset.to_string().as_bytes());
    }
    Ok(())
}

/// Which handshake the replica used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// SYNC: the payload alone.
    Sync,
    /// PSYNC: `+FULLRESYNC <replid> <offset>` first.
    Psync,
}

/// SYNC
fn sync(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    full_resync(context, Handshake::Sync)
}

/// PSYNC replicationid offset
fn psync(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    full_resync(context, Handshake::Psync)
}

fn full_resync(context: &mut Context, handshake: Handshake) -> CommandResult {
    if context.in_transaction() {
        return Err("ERR Replica can't interact with the keyspace".into());
    }
    let Some(server) = context.server.arc() else {
        return Err("ERR Replication unavailable".into());
    };
    let limit = *server.replication.limit.lock();
    let mailbox = context.client.mailbox.clone();
    mailbox.mark_replica();
    // Every shard held: the payload is the state at one point of the stream, where the feed
    // starts.
    let mut everything = context.lock_everything();
    let encoded = crate::rdb::encode_dataset(
        &server,
        everything
            .iter_mut()
            .map(|(database, _, shard)| (database, &*shard)),
        false,
    );
    let payload = match encoded {
        Ok(payload) => payload,
        Err(error) => return Err(format!("ERR Replication payload failed: {error}").into()),
    };
    let offset = server.replication.offset.load(Ordering::Relaxed);
    server
        .replication
        .track(context.client.id, offset, unix_time_ms());
    server
        .propagation
        .attach(Box::new(ReplicaFeed::new(server.clone(), mailbox, limit)));
    drop(everything);
    tracing::info!(
        "Replica {} asks for synchronization; full resync with {} bytes of payload",
        context.client.shared.address_text(),
        payload.len()
    );
    if handshake == Handshake::Psync {
        let (replication_id, _) = server.replication_ids.lock().clone();
        context
            .reply
            .simple(format!("FULLRESYNC {replication_id} {offset}").as_bytes());
    }
    // The payload is a bulk without the trailing CRLF, as Redis sends it.
    let buffer = context.reply.buffer();
    buffer.push(b'$');
    buffer.extend_from_slice(payload.len().to_string().as_bytes());
    buffer.extend_from_slice(b"\r\n");
    buffer.extend_from_slice(&payload);
    Ok(())
}

/// REPLCONF <option> <value> [<option> <value> ...]
fn replconf(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() % 2 == 0 {
        return Err(errors::SYNTAX.into());
    }
    for pair in args[1..].chunks(2) {
        let option = pair[0];
        if is(option, "ack") || is(option, "fack") {
            // Acknowledgements get no reply; a replica's ACK offset counts for
            // `min-replicas-to-write`.
            if is(option, "ack") {
                if let Some(offset) = store::number::parse_i64(pair[1]) {
                    context.server.replication.acknowledge(
                        context.client.id,
                        offset.max(0) as u64,
                        unix_time_ms(),
                    );
                }
            }
            return Ok(());
        }
        if is(option, "listening-port") {
            let port = store::number::parse_i64(pair[1])
                .and_then(|port| u16::try_from(port).ok())
                .ok_or("ERR value is not an integer or out of range")?;
            context
                .server
                .replication
                .record_listening_port(context.client.id, port);
        }
        let known = ["listening-port", "ip-address", "capa", "getack", "rdb-only"];
        if !known.iter().any(|name| is(option, name)) {
            return Err(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(option)
            )
            .into());
        }
    }
    context.reply.ok();
    Ok(())
}

/// WAIT numreplicas timeout
///
/// Replies how many replicas are attached to the stream. WAIT does not yet block for the
/// acknowledged offsets (`replication::ReplicationState` tracks them): with no replica it
/// answers 0 at once, as a script's WAIT does in Redis.
fn wait(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    crate::arguments::integer(args[1])?;
    let timeout_ms =
        store::number::parse_i64(args[2]).ok_or("ERR timeout is not an integer or out of range")?;
    if timeout_ms < 0 {
        return Err("ERR timeout is negative".into());
    }
    let replicas = context.server.replication.replicas.load(Ordering::Relaxed);
    context.reply.integer(replicas as i64);
    Ok(())
}

/// WAITAOF numlocal numreplicas timeout
///
/// Replies `[local, replicas]`: 1 when the AOF is on (its writer makes every acknowledged
/// write durable under `appendfsync always`), and the attached replicas. Like WAIT it does not
/// block yet.
fn waitaof(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let local = crate::arguments::integer(args[1])?;
    crate::arguments::integer(args[2])?;
    let timeout_ms =
        store::number::parse_i64(args[3]).ok_or("ERR timeout is not an integer or out of range")?;
    if timeout_ms < 0 {
        return Err("ERR timeout is negative".into());
    }
    let aof_on = context.server.aof.is_on();
    if local > 0 && !aof_on {
        return Err(
            "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.".into(),
        );
    }
    let replicas = context.server.replication.replicas.load(Ordering::Relaxed);
    context.reply.array(2);
    context.reply.integer(i64::from(aof_on));
    context.reply.integer(replicas as i64);
    Ok(())
}
