//! Clients: the state a connection keeps for itself ([`Client`]), and the part other
//! connections may read or act on ([`ClientShared`]: CLIENT LIST, CLIENT KILL), registered in
//! the server's [`ClientRegistry`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::Mutex;
use resp::Protocol;
use tokio::sync::Notify;

/// CLIENT REPLY modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// Skipping the reply of the current command.
    Skipping,
}

/// The id of the fake client that replays the AOF.
pub const LOADER_CLIENT_ID: u64 = u64::MAX;
/// The id of the fake client that runs the commands of scripts (no connection has id 0).
pub const SCRIPT_CLIENT_ID: u64 = 0;

/// What other connections may see of a client.

pub struct ClientShared {
    pub id: u64,
    /// The peer's address; a Unix socket client has a loopback placeholder here (it is local)
    /// and its socket's path in `unix_socket`.
    pub address: SocketAddr,
    pub local_address: SocketAddr,
    /// The `unixsocket` path the client connected through, if it did.
    pub unix_socket: Option<Arc<str>>,
    pub file_descriptor: i32,
    pub created_ms: u64,
    pub last_interaction_ms: AtomicU64,
    pub database: AtomicUsize,
    /// Id of the last command run (see `CommandTable::name_of`); 0 for none.
    pub last_command: AtomicU32,
    pub name: Mutex<Vec<u8>>,
    /// The user the client is authenticated as (CLIENT LIST `user`, CLIENT KILL USER, users
    /// deleted or narrowed by ACL commands).
    pub user_name: Mutex<Vec<u8>>,
    pub library_name: Mutex<Vec<u8>>,
    pub library_version: Mutex<Vec<u8>>,
    pub protocol_version: AtomicU32,
    pub query_buffer_bytes: AtomicUsize,
    /// Unused capacity of the query buffer (CLIENT LIST `qbuf-free`).
    pub query_buffer_free_bytes: AtomicUsize,
    /// Bytes of push messages (or, for a replica, of the replication stream) queued for the
    /// client and not yet written (CLIENT LIST `omem`), mirrored by its mailbox.
    pub output_bytes: AtomicUsize,
    /// Heap bytes those take (buffer capacities), mirrored by its mailbox: INFO's
    /// `mem_clients_*` sums them.
    pub output_allocated_bytes: AtomicUsize,
    /// Whether the client is a replica fed by the replication stream (CLIENT LIST flag `S`).
    pub replica: AtomicBool,
    /// Capacity of the reply buffer (CLIENT LIST `rbs`) and its peak (`rbp`).
    pub reply_buffer_bytes: AtomicUsize,
    pub reply_buffer_peak_bytes: AtomicUsize,
    /// Bytes of the arguments of the command running now (CLIENT LIST `argv-mem`).
    pub argument_bytes: AtomicUsize,
    /// Bytes read from and written to this client, and commands it ran (`tot-net-in`,
    /// `tot-net-out`, `tot-cmds`).
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub commands_processed: AtomicU64,
    /// CLIENT NO-EVICT and CLIENT NO-TOUCH.
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    /// Subscriptions (CLIENT LIST `sub`, `psub`, `ssub`), kept by the pub/sub commands.
    pub channel_subscriptions: AtomicUsize,
    pub pattern_subscriptions: AtomicUsize,
    pub shard_channel_subscriptions: AtomicUsize,
    /// Commands queued in MULTI, or -1 outside a transaction (`multi`), and watched keys.
    pub multi_commands: AtomicI64,
    /// Bytes the queued commands take (`multi-mem`).
    pub multi_bytes: AtomicUsize,
    /// Bytes the client's CLIENT TRACKING BCAST prefixes take.
    pub tracking_prefix_bytes: AtomicUsize,
    pub watched_keys: AtomicUsize,
    /// Whether the client waits in a blocking command (flag `b`; idle timeouts skip it).
    pub blocked: AtomicBool,
    /// Set when the connection must close (CLIENT KILL, shutdown); `kill` wakes it.
    pub killed: AtomicBool,
    pub kill: Notify,
    /// This client's share of the clients' memory total that `maxmemory-clients` limits (see
    /// `crate::client_eviction`).
    pub counted_memory_bytes: AtomicUsize,
}

/// Fixed bytes a connection costs beyond its buffers (CLIENT LIST `tot-mem`).
pub const CLIENT_OVERHEAD_BYTES: usize = 1024;
/// Bytes one watched key costs a client beyond the key (its entry in the client's list and in
/// the key's watcher list), one subscription (its entry in the client's set), and one command
/// queued in MULTI beyond its arguments.
pub const WATCHED_KEY_BYTES: usize = 64;
pub const SUBSCRIPTION_BYTES: usize = 32;
pub const QUEUED_COMMAND_BYTES: usize = 48;
/// Bytes one CLIENT TRACKING prefix costs beyond its text (its node in the prefix tree).
pub const TRACKING_PREFIX_BYTES: usize = 32;

impl ClientShared {
    /// The peer as Redis shows it (CLIENT LIST `addr`, MONITOR, SLOWLOG): `ip:port`, or
    /// `<socket path>:0` for a Unix socket client.
    pub fn address_text(&self) -> String {
        match &self.unix_socket {
            Some(path) => format!("{path}:0"),
            None => self.address.to_string(),
        }
    }

    /// The local end as Redis shows it (CLIENT LIST `laddr`).
    pub fn local_address_text(&self) -> String {
        match &self.unix_socket {
            Some(path) => format!("{path}:0"),
            None => self.local_address.to_string(),
        }
    }

    pub fn new(
        id: u64,
        address: SocketAddr,
        local_address: SocketAddr,
        file_descriptor: i32,
        now_ms: u64,
    ) -> Self {
        ClientShared {
            id,
            address,
            local_address,
            unix_socket: None,
            file_descriptor,
            created_ms: now_ms,
            last_interaction_ms: now_ms.into(),
            database: 0.into(),
            last_command: 0.into(),
            name: Default::default(),
            user_name: Mutex::new(b"default".to_vec()),
            library_name: Default::default(),
            library_version: Default::default(),
            protocol_version: 2.into(),
            query_buffer_bytes: 0.into(),
            query_buffer_free_bytes: 0.into(),
            output_bytes: 0.into(),
            output_allocated_bytes: 0.into(),
            replica: false.into(),
            reply_buffer_bytes: 0.into(),
            reply_buffer_peak_bytes: 0.into(),
            argument_bytes: 0.into(),
            net_input_bytes: 0.into(),
            net_output_bytes: 0.into(),
            commands_processed: 0.into(),
            no_evict: false.into(),
            no_touch: false.into(),
            channel_subscriptions: 0.into(),
            pattern_subscriptions: 0.into(),
            shard_channel_subscriptions: 0.into(),
            multi_commands: (-1).into(),
            multi_bytes: 0.into(),
            tracking_prefix_bytes: 0.into(),
            watched_keys: 0.into(),
            blocked: false.into(),
            killed: false.into(),
            kill: Default::default(),
            counted_memory_bytes: 0.into(),
        }
    }

    /// The memory the client takes (CLIENT LIST `tot-mem`, INFO `mem_clients_*`, client
    /// eviction): its query buffer, arguments, reply buffer, queued push messages (or
    /// replication stream), transaction queue, watched keys, subscriptions, tracking prefixes
    /// and a fixed overhead for its own state. Like Redis, it counts what the client holds,
    /// not the keys and channels it shares with others.
    pub fn memory_bytes(&self) -> usize {
        let load = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
        let subscriptions = load(&self.channel_subscriptions)
            + load(&self.pattern_subscriptions)
            + load(&self.shard_channel_subscriptions);
        load(&self.query_buffer_bytes)
            + load(&self.query_buffer_free_bytes)
            + load(&self.argument_bytes)
            + load(&self.reply_buffer_bytes)
            + load(&self.output_allocated_bytes)
            + load(&self.multi_bytes)
            + load(&self.tracking_prefix_bytes)
            + load(&self.watched_keys) * WATCHED_KEY_BYTES
            + subscriptions * SUBSCRIPTION_BYTES
            + CLIENT_OVERHEAD_BYTES
    }

    /// Whether the client is subscribed to anything (type `pubsub`, flag `P`).
    pub fn is_pubsub(&self) -> bool {
        self.channel_subscriptions.load(Ordering::Relaxed) > 0
            || self.pattern_subscriptions.load(Ordering::Relaxed) > 0
            || self.shard_channel_subscriptions.load(Ordering::Relaxed) > 0
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

/// A connection's own state.
pub struct Client {
    pub id: u64,
    pub database: usize,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// The client's user as of ACL generation `user_generation` (see `crate::acl`).
    pub user: Arc<crate::acl::User>,
    pub user_generation: u64,
    pub reply_mode: ReplyMode,
    /// Close the connection once the replies so far are written.
    pub close_after_reply: bool,
    pub shared: Arc<ClientShared>,
    /// Set by a blocking command that must wait; the connection takes it and waits.
    pub blocked: Option<Arc<crate::blocking::Waiter>>,
    /// Commands queued since MULTI.
    pub transaction: Option<Transaction>,
    /// Keys watched by WATCH.
    pub watched: Vec<WatchedKey>,
    /// Where published messages for this client wait to be written.
    pub mailbox: Arc<crate::pubsub::Mailbox>,
    pub subscriptions: Subscriptions,
    /// CLIENT CACHING YES/NO was given for the next command (client tracking).
    pub tracking_caching: bool,
    /// Set while a blocked command runs again (MONITOR shows it only the first time).
    pub retrying: bool,
}

/// What a client is subscribed to, in subscription order.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: Vec<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub shard_channels: Vec<Vec<u8>>,
}

impl Subscriptions {
    /// Every subscription (a RESP2 client with any is in subscribed mode).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// A transaction being queued.
#[derive(Default)]
pub struct Transaction {
    pub commands: Vec<Vec<Vec<u8>>>,
    /// A command failed to queue: EXEC will refuse (EXECABORT).
    pub failed: bool,
    /// Bytes the queued commands take (CLIENT LIST `multi-mem`, client eviction).
    pub bytes: usize,
}

impl Transaction {
    /// Queues one command.
    pub fn queue(&mut self, argv: &[&[u8]]) {
        let argument_bytes: usize = argv.iter().map(|arg| arg.len()).sum();
        self.bytes += argument_bytes
            + argv.len() * std::mem::size_of::<Vec<u8>>()
            + crate::client::QUEUED_COMMAND_BYTES;
        self.commands
            .push(argv.iter().map(|arg| arg.to_vec()).collect());
    }
}

/// A key watched by WATCH, with what the client saw.
pub struct WatchedKey {
    pub database: usize,
    pub key: store::SmallBytes,
    pub version: u64,
    /// Whether the key existed (unexpired) when watched: its expiry later breaks the watch.
    pub existed: bool,
    /// Whether the key was stale when watched (expired, not yet deleted): its deletion, the one
    /// change it was due, does not break the watch (Redis 7's `expired` watched-key flag).
    pub stale: bool,
}

impl Client {
    /// Whether the client replays writes that were already accepted (the AOF loader): Redis's
    /// `mustObeyClient`, which skips limits meant for live callers.
    pub fn must_obey(&self) -> bool {
        self.id == LOADER_CLIENT_ID || self.id == crate::replica::MASTER_CLIENT_ID
    }

    /// Whether the client runs a script's commands (Redis's `CLIENT_SCRIPT`).
    pub fn is_script(&self) -> bool {
        self.id == SCRIPT_CLIENT_ID
    }

    pub fn new(
        shared: Arc<ClientShared>,
        authenticated: bool,
        user: Arc<crate::acl::User>,
    ) -> Self {
        Client {
            id: shared.id,
            database: 0,
            protocol: Protocol::Resp2,
            authenticated,
            user,
            user_generation: 0,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            blocked: None,
            transaction: None,
            watched: Vec::new(),
            mailbox: Arc::new(crate::pubsub::Mailbox::new(shared.clone())),
            subscriptions: Subscriptions::default(),
            tracking_caching: false,
            retrying: false,
            shared,
        }
    }

    /// Publishes the client's subscription, transaction and watch state for CLIENT LIST and
    /// INFO (cheap relaxed stores; called after every command).
    pub fn sync_shared(&self) {
        let shared = &self.shared;
        shared
            .channel_subscriptions
            .store(self.subscriptions.channels.len(), Ordering::Relaxed);
        shared
            .pattern_subscriptions
            .store(self.subscriptions.patterns.len(), Ordering::Relaxed);
        shared
            .shard_channel_subscriptions
            .store(self.subscriptions.shard_channels.len(), Ordering::Relaxed);
        let (multi, multi_bytes) = self.transaction.as_ref().map_or((-1, 0), |transaction| {
            (transaction.commands.len() as i64, transaction.bytes)
        });
        shared.multi_commands.store(multi, Ordering::Relaxed);
        shared.multi_bytes.store(multi_bytes, Ordering::Relaxed);
        shared
            .watched_keys
            .store(self.watched.len(), Ordering::Relaxed);
    }

    /// Authenticates the client as `user`.
    pub fn set_user(&mut self, user: Arc<crate::acl::User>, generation: u64) {
        if *self.shared.user_name.lock() != user.name {
            *self.shared.user_name.lock() = user.name.clone();
        }
        self.user = user;
        self.user_generation = generation;
        self.authenticated = true;
    }

    pub fn select(&mut self, database: usize) {
        self.database = database;
        self.shared.database.store(database, Ordering::Relaxed);
    }
}

/// Every connected client.
#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    pub connected: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// `client-output-buffer-limit normal`: replies a normal client has pending past the hard
    /// limit close it.
    pub normal_output_limit: crate::pubsub::SharedLimit,
}

impl ClientRegistry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn register(&self, client: Arc<ClientShared>) {
        self.clients.lock().insert(client.id, client);
        self.connected.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unregister(&self, id: u64) {
        let removed = self.clients.lock().remove(&id);
        if let Some(client) = removed {
            self.connected.fetch_sub(1, Ordering::Relaxed);
            crate::client_eviction::forget(&client);
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.clients.lock().get(&id).cloned()
    }

    /// Every client, by ascending id.
    pub fn all(&self) -> Vec<Arc<ClientShared>> {
        let mut clients: Vec<_> = self.clients.lock().values().cloned().collect();
        clients.sort_by_key(|client| client.id);
        clients
    }

    pub fn len(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT: zeroes the connection counters.
    pub fn reset_stats(&self) {
        self.total_connections.store(0, Ordering::Relaxed);
        self.rejected_connections.store(0, Ordering::Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
