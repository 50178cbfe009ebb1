//! The master side of replication: a replica's full synchronisation and its command feed.
//!
//! Model. A replica (or a tool such as Valkey's test suite, or `redis-cli --replica`) sends
//! `SYNC` or `PSYNC <replid> <offset>`. Cinnabar always answers with a full resynchronisation:
//! while holding every shard, it encodes the dataset as an RDB payload and attaches a
//! [`ReplicaFeed`] to the propagation stream, so that the payload and the feed meet at exactly
//! one point of the stream's order; then it sends `+FULLRESYNC <replid> <offset>` (PSYNC only),
//! `$<length>\r\n` and the payload, and from then on every propagated write, as RESP commands
//! with a `SELECT` whenever the database changes. The feed goes through the replica client's
//! mailbox, bounded by the `replica` class of `client-output-buffer-limit`; a replica that
//! falls behind that limit is disconnected, as Redis does.
//!
//! Replicas' acknowledgements (REPLCONF ACK; the synchronisation counts as the first) are
//! tracked per replica client: `min-replicas-to-write` refuses writes while too few are recent
//! ([`rejects`]).
//!
//! PUBLISH reaches replicas (never the AOF) through `Propagation::append_to_replicas`. The
//! replica side (REPLICAOF) is `crate::replica`.
//!
//! Not yet here (extend here): partial resynchronisation from a backlog (PSYNC `+CONTINUE`),
//! diskless/disk-based transfer choices, REPLCONF GETACK and a WAIT that waits for the tracked
//! offsets. The encoding of the payload holds every shard while it runs: the fork-less
//! point-in-time `snapshot` (as BGSAVE uses) is the next step for big datasets.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::propagation::PropagationSink;
use crate::pubsub::{BufferLimit, Mailbox};
use crate::server::{unix_time_ms, Server};

/// What INFO replication reports about the attached replicas.
#[derive(Default)]
pub struct ReplicationState {
    /// Replicas currently fed.
    pub replicas: AtomicUsize,
    /// Bytes of the replication stream produced so far (`master_repl_offset`).
    pub offset: AtomicU64,
    /// The `replica` class of `client-output-buffer-limit`.
    pub limit: parking_lot::Mutex<BufferLimit>,
    /// The attached replicas' acknowledgements, by client id.
    acks: parking_lot::Mutex<hashbrown::HashMap<u64, Acknowledgement>>,
    /// The ports replicas said they listen on (REPLCONF listening-port), by client id.
    listening_ports: parking_lot::Mutex<hashbrown::HashMap<u64, u16>>,
}

/// An attached replica as INFO replication and ROLE show it.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaView {
    pub client_id: u64,
    pub listening_port: u16,
    pub offset: u64,
    /// Seconds since its last acknowledgement.
    pub lag_s: u64,
}

/// What a replica acknowledged last (REPLCONF ACK).
#[derive(Clone, Copy, Debug)]
struct Acknowledgement {
    offset: u64,
    /// Unix milliseconds of the last ACK (or of the synchronisation, before any).
    at_ms: u64,
}

/// The error of a write refused for `min-replicas-to-write`.
pub const NO_REPLICAS_ERROR: &str = "NOREPLICAS Not enough good replicas to write.";

impl ReplicationState {
    /// Starts following a replica's acknowledgements (its synchronisation counts as one, as in
    /// Redis).
    pub fn track(&self, client_id: u64, offset: u64, now_ms: u64) {
        self.acks.lock().insert(
            client_id,
            Acknowledgement {
                offset,
                at_ms: now_ms,
            },
        );
    }

    /// Stops following a replica (its feed closed).
    pub fn untrack(&self, client_id: u64) {
        self.acks.lock().remove(&client_id);
        self.listening_ports.lock().remove(&client_id);
    }

    /// REPLCONF listening-port.
    pub fn record_listening_port(&self, client_id: u64, port: u16) {
        self.listening_ports.lock().insert(client_id, port);
    }

    /// The attached replicas, by client id.
    pub fn views(&self, now_ms: u64) -> Vec<ReplicaView> {
        let ports = self.listening_ports.lock();
        let mut views: Vec<ReplicaView> = self
            .acks
            .lock()
            .iter()
            .map(|(&client_id, ack)| ReplicaView {
                client_id,
                listening_port: ports.get(&client_id).copied().unwrap_or(0),
                offset: ack.offset,
                lag_s: (now_ms / 1000).saturating_sub(ack.at_ms / 1000),
            })
            .collect();
        views.sort_by_key(|view| view.client_id);
        views
    }

    /// Records REPLCONF ACK from `client_id`, if it is a replica.
    pub fn acknowledge(&self, client_id: u64, offset: u64, now_ms: u64) {
        if let Some(ack) = self.acks.lock().get_mut(&client_id) {
            ack.offset = ack.offset.max(offset);
            ack.at_ms = now_ms;
        }
    }

    /// Replicas whose last acknowledgement is at most `max_lag_s` seconds old (Redis's "good
    /// replicas", lag counted in whole seconds).
    pub fn good_replicas(&self, now_ms: u64, max_lag_s: u64) -> usize {
        self.acks
            .lock()
            .values()
            .filter(|ack| now_ms / 1000 - (ack.at_ms / 1000).min(now_ms / 1000) <= max_lag_s)
            .count()
    }
}

/// Whether `client`'s `command` is refused for `min-replicas-to-write`: a write (or EXEC of a
/// transaction holding one) while too few replicas are good. Cheap when the option is 0.
pub fn rejects(
    server: &Server,
    client: &crate::client::Client,
    command: &crate::command::Command,
) -> bool {
    use crate::command::flags;
    if server
        .config
        .hot
        .min_replicas_to_write
        .load(Ordering::Relaxed)
        == 0
        || client.must_obey()
    {
        return false;
    }
    let writes = command.has(flags::WRITE)
        || (command.full_name == "exec"
            && crate::eviction::queues_any(server, client, flags::WRITE));
    writes && refuses_writes(server)
}

/// Whether writes are refused now for `min-replicas-to-write`: fewer replicas than it asks
/// acknowledged within `min-replicas-max-lag` seconds (either set to 0 turns the check off).
pub fn refuses_writes(server: &Server) -> bool {
    let hot = &server.config.hot;
    let wanted = hot.min_replicas_to_write.load(Ordering::Relaxed);
    let max_lag_s = hot.min_replicas_max_lag_s.load(Ordering::Relaxed);
    if wanted == 0 || max_lag_s == 0 {
        return false;
    }
    (server.replication.good_replicas(unix_time_ms(), max_lag_s) as u64) < wanted
}

/// Appends RESP `*<n>` ... for `args` to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut number = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(number.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(number.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// A replica's share of the propagation stream.
pub struct ReplicaFeed {
    server: Arc<Server>,
    mailbox: Arc<Mailbox>,
    limit: BufferLimit,
    database: Option<usize>,
    encoded: Vec<u8>,
    closed: bool,
}

impl ReplicaFeed {
    pub fn new(server: Arc<Server>, mailbox: Arc<Mailbox>, limit: BufferLimit) -> Self {
        server.replication.replicas.fetch_add(1, Ordering::Relaxed);
        ReplicaFeed {
            server,
            mailbox,
            limit,
            database: None,
            encoded: Vec::new(),
            closed: false,
        }
    }
}

impl PropagationSink for ReplicaFeed {
    fn write_to_replicas(&mut self, sequence: u64, database: usize, args: &[&[u8]]) {
        self.write(sequence, database, args);
    }

    fn write(&mut self, _sequence: u64, database: usize, args: &[&[u8]]) {
        if self.closed {
            return;
        }
        // A replica forwards only what its master sent (writes of its own, from a transaction
        // that made it a replica midway, stay local).
        if self.server.replica_link.is_active() && !crate::replica::applying_master_stream() {
            return;
        }
        self.encoded.clear();
        if self.database != Some(database) && !crate::propagation::is_transaction_bracket(args) {
            let number = database.to_string();
            encode_command(&mut self.encoded, &[b"SELECT", number.as_bytes()]);
            self.database = Some(database);
        }
        encode_command(&mut self.encoded, args);
        self.server
            .replication
            .offset
            .fetch_add(self.encoded.len() as u64, Ordering::Relaxed);
        if !self
            .mailbox
            .deliver(&self.encoded, self.limit, unix_time_ms())
        {
            self.closed = true;
        }
    }

    fn is_closed(&self) -> bool {
        self.closed || self.mailbox.client.is_killed()
    }
}

impl Drop for ReplicaFeed {
    fn drop(&mut self) {
        let replication = &self.server.replication;
        replication.untrack(self.mailbox.client.id);
        replication.replicas.fetch_sub(1, Ordering::Relaxed);
    }
}
