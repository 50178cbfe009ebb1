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
//! Not yet here (extend here): partial resynchronisation from a backlog (PSYNC `+CONTINUE`),
//! diskless/disk-based transfer choices, REPLCONF GETACK / WAIT, and the replica side
//! (REPLICAOF). The encoding of the payload holds every shard while it runs: the fork-less
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
    fn write(&mut self, _sequence: u64, database: usize, args: &[&[u8]]) {
        if self.closed {
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
        self.server
            .replication
            .replicas
            .fetch_sub(1, Ordering::Relaxed);
    }
}
