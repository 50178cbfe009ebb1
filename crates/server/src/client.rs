//! Clients: the state a connection keeps for itself ([`Client`]), and the part other
//! connections may read or act on ([`ClientShared`]: CLIENT LIST, CLIENT KILL), registered in
//! the server's [`ClientRegistry`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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

/// What other connections may see of a client.
pub struct ClientShared {
    pub id: u64,
    pub address: SocketAddr,
    pub local_address: SocketAddr,
    pub file_descriptor: i32,
    pub created_ms: u64,
    pub last_interaction_ms: AtomicU64,
    pub database: AtomicUsize,
    /// Id of the last command run (see `CommandTable::name_of`); 0 for none.
    pub last_command: AtomicU32,
    pub name: Mutex<Vec<u8>>,
    pub library_name: Mutex<Vec<u8>>,
    pub library_version: Mutex<Vec<u8>>,
    pub protocol_version: AtomicU32,
    pub query_buffer_bytes: AtomicUsize,
    pub output_bytes: AtomicUsize,
    /// Set when the connection must close (CLIENT KILL, shutdown); `kill` wakes it.
    pub killed: AtomicBool,
    pub kill: Notify,
}

impl ClientShared {
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
    pub user: &'static str,
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
}

/// A key watched by WATCH, with what the client saw.
pub struct WatchedKey {
    pub database: usize,
    pub key: store::SmallBytes,
    pub version: u64,
    /// Whether the key existed (unexpired) when watched: its expiry later breaks the watch.
    pub existed: bool,
}

impl Client {
    pub fn new(shared: Arc<ClientShared>, authenticated: bool) -> Self {
        Client {
            id: shared.id,
            database: 0,
            protocol: Protocol::Resp2,
            authenticated,
            user: "default",
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            blocked: None,
            transaction: None,
            watched: Vec::new(),
            mailbox: Arc::new(crate::pubsub::Mailbox::new(shared.clone())),
            subscriptions: Subscriptions::default(),
            shared,
        }
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
        if self.clients.lock().remove(&id).is_some() {
            self.connected.fetch_sub(1, Ordering::Relaxed);
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
