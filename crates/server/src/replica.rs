//! The replica side of replication (REPLICAOF / SLAVEOF, `replicaof` in redis.conf).
//!
//! Model. REPLICAOF host port makes the server a replica: writes from clients are refused
//! (`replica-read-only`), and one task, the link, keeps it in step with the master. The link
//! connects, does Redis's handshake (PING, AUTH with `masteruser`/`masterauth`, REPLCONF
//! listening-port and capa, PSYNC ? -1), receives the full synchronisation's RDB payload
//! (`$<length>` or diskless `$EOF:<mark>`), saves it as the local RDB file, replaces the dataset
//! with it, then applies the master's command stream through `connection::execute` as the
//! master client (which obeys: no ACL, no OOM, no read-only refusal), answering REPLCONF GETACK
//! and sending REPLCONF ACK every second. A broken link is retried every second with a new
//! full synchronisation. REPLICAOF NO ONE (or another master) bumps the link generation: the
//! running link notices and ends.
//!
//! While a replica, the server's own writes (there are none from clients; scripts and
//! transactions are refused) are not passed to its own replicas: a replica feed only forwards
//! what the master client applies ([`applying_master_stream`]).
//!
//! Not yet here (extend here): partial resynchronisation (PSYNC with the cached master's
//! replication id and offset, `+CONTINUE`), a replica of a replica forwarding the master's
//! stream verbatim, `repl-diskless-load`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use resp::{parse_request, ParseLimits, Request, RequestArgs};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Client, ClientShared};
use crate::command::{flags, Command};
use crate::server::{unix_time_ms, Server};

/// The id of the fake client that applies the master's stream.
pub const MASTER_CLIENT_ID: u64 = u64::MAX - 1;
/// Writes refused on a read-only replica.
pub const READONLY_ERROR: &str = "READONLY You can't write against a read only replica.";
/// Commands refused while the link is down and `replica-serve-stale-data` is no.
pub const MASTERDOWN_ERROR: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
/// Time between attempts to reach the master.
const RECONNECT_DELAY: Duration = Duration::from_millis(1000);
/// Time between REPLCONF ACKs.
const ACK_INTERVAL: Duration = Duration::from_millis(1000);
/// Longest line of the handshake (replies, the payload's header).
const HANDSHAKE_LINE_BYTES_MAX: usize = 64 * 1024;
/// Bytes read from the master at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Length of the end mark of a diskless payload (`$EOF:<mark>`).
const EOF_MARK_BYTES: usize = 40;

/// Where the link stands (ROLE's state, INFO's `master_link_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Waiting to connect (or to connect again).
    Connect = 0,
    /// Connected, handshaking.
    Connecting = 1,
    /// Receiving the payload.
    Sync = 2,
    /// Applying the stream.
    Connected = 3,
}

impl LinkState {
    fn from_u8(value: u8) -> LinkState {
        match value {
            1 => LinkState::Connecting,
            2 => LinkState::Sync,
            3 => LinkState::Connected,
            _ => LinkState::Connect,
        }
    }

    /// ROLE's word for it.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replica's side of the link.
#[derive(Default)]
pub struct ReplicaLink {
    /// Whether this server is a replica (hot: every write checks it).
    active: AtomicBool,
    /// Bumped by each REPLICAOF; a link whose generation is old ends.
    generation: AtomicU64,
    master: Mutex<Option<(String, u16)>>,
    state: AtomicU8,
    /// The master's replication id and the offset applied so far.
    master_replication_id: Mutex<String>,
    pub offset: AtomicU64,
    /// Unix ms of the last bytes from the master, and of the link going down.
    last_io_ms: AtomicU64,
    down_since_ms: AtomicU64,
}

thread_local! {
    /// Set while this thread applies the master's stream: what it propagates goes to this
    /// server's own replicas too.
    static APPLYING_MASTER_STREAM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the write being propagated on this thread comes from the master's stream.
pub fn applying_master_stream() -> bool {
    APPLYING_MASTER_STREAM.with(std::cell::Cell::get)
}

impl ReplicaLink {
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn master(&self) -> Option<(String, u16)> {
        self.master.lock().clone()
    }

    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: LinkState) {
        let previous = LinkState::from_u8(self.state.swap(state as u8, Ordering::Relaxed));
        if previous == LinkState::Connected && state != LinkState::Connected {
            self.down_since_ms.store(unix_time_ms(), Ordering::Relaxed);
        }
    }

    pub fn last_io_ms(&self) -> u64 {
        self.last_io_ms.load(Ordering::Relaxed)
    }

    pub fn down_since_ms(&self) -> u64 {
        self.down_since_ms.load(Ordering::Relaxed)
    }

    pub fn master_replication_id(&self) -> String {
        self.master_replication_id.lock().clone()
    }

    fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }
}

/// Why a command is refused on a replica: a write on a read-only replica (READONLY), or, with
/// the link down and `replica-serve-stale-data no`, a command not flagged `stale` (MASTERDOWN).
/// EXEC answers for the commands it queued.
pub fn refusal(server: &Server, client: &Client, command: &Command) -> Option<&'static str> {
    if !server.replica_link.is_active() || client.must_obey() {
        return None;
    }
    let is_exec = command.full_name == "exec";
    let writes = command.has(flags::WRITE)
        || (is_exec && crate::eviction::queues_any(server, client, flags::WRITE));
    if writes && server.config.get_bool("replica-read-only") {
        return Some(READONLY_ERROR);
    }
    let stale_refused = server.replica_link.state() != LinkState::Connected
        && !server.config.get_bool("replica-serve-stale-data");
    let needs_fresh_data =
        !command.has(flags::STALE) || (is_exec && queues_without(server, client, flags::STALE));
    if stale_refused && needs_fresh_data {
        return Some(MASTERDOWN_ERROR);
    }
    None
}

/// Whether the client's transaction queued a command without `flag`.
fn queues_without(server: &Server, client: &Client, flag: u32) -> bool {
    client.transaction.as_ref().is_some_and(|transaction| {
        transaction.commands.iter().any(|args| {
            let Some(queued) = server.commands.get(&args[0]) else {
                return false;
            };
            let queued = match args.get(1) {
                Some(sub) if queued.is_container() => queued.subcommand(sub),
                _ => Some(queued),
            };
            queued.is_some_and(|queued| !queued.has(flag))
        })
    })
}

/// REPLICAOF host port: starts (or moves) the link. False when already replicating that master.
pub fn follow(server: &Arc<Server>, host: String, port: u16) -> bool {
    let link = &server.replica_link;
    {
        let mut master = link.master.lock();
        if link.is_active() && master.as_ref() == Some(&(host.clone(), port)) {
            return false;
        }
        *master = Some((host.clone(), port));
        link.active.store(true, Ordering::Release);
        link.set_state(LinkState::Connect);
        link.down_since_ms.store(unix_time_ms(), Ordering::Relaxed);
    }
    let generation = link.generation.fetch_add(1, Ordering::AcqRel) + 1;
    // Clients blocked on keys wait for writes that will now come from the master only.
    server.blocked.unblock_all(Some(
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
            .to_string(),
    ));
    tracing::info!("Connecting to MASTER {host}:{port}");
    tokio::spawn(run_link(server.clone(), generation, host, port));
    true
}

/// REPLICAOF NO ONE: the link ends, the server is a master again with a new replication id
/// (the old one stays as the second, as Redis shifts them).
pub fn stop_following(server: &Server) {
    let link = &server.replica_link;
    if !link.is_active() {
        return;
    }
    link.generation.fetch_add(1, Ordering::AcqRel);
    link.active.store(false, Ordering::Release);
    *link.master.lock() = None;
    link.set_state(LinkState::Connect);
    let master_id = link.master_replication_id();
    let mut ids = server.replication_ids.lock();
    ids.1 = if master_id.is_empty() {
        ids.0.clone()
    } else {
        master_id
    };
    ids.0 = crate::server::random_hex_id();
    tracing::info!("MASTER MODE enabled (user request from REPLICAOF NO ONE)");
}

async fn run_link(server: Arc<Server>, generation: u64, host: String, port: u16) {
    let link = &server.replica_link;
    while link.is_current(generation) {
        link.set_state(LinkState::Connect);
        match synchronize_and_follow(&server, generation, &host, port).await {
            Ok(()) => return,
            Err(message) => {
                if link.is_current(generation) {
                    tracing::warn!("{message}");
                    link.set_state(LinkState::Connect);
                }
            }
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Reads one line (without CRLF) from the master, keeping what follows it in `buffer`.
async fn read_line(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<Vec<u8>, String> {
    loop {
        if let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
            let mut line = buffer.split_to(end + 1).to_vec();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if buffer.len() > HANDSHAKE_LINE_BYTES_MAX {
            return Err("Master sent a line too long during the handshake".to_string());
        }
        read_more(stream, buffer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<(), String> {
    buffer.reserve(READ_CHUNK_BYTES);
    match stream.read_buf(buffer).await {
        Ok(0) => Err("Master closed the connection".to_string()),
        Ok(_) => Ok(()),
        Err(error) => Err(format!("Error reading from MASTER: {error}")),
    }
}

async fn send(stream: &mut TcpStream, args: &[&[u8]]) -> Result<(), String> {
    let mut request = Vec::new();
    crate::replication::encode_command(&mut request, args);
    stream
        .write_all(&request)
        .await
        .map_err(|error| format!("Error writing to MASTER: {error}"))
}

/// Sends a handshake command and reads its one-line reply.
async fn ask(
    stream: &mut TcpStream,
    buffer: &mut BytesMut,
    args: &[&[u8]],
) -> Result<Vec<u8>, String> {
    send(stream, args).await?;
    read_line(stream, buffer).await
}

/// Reads the full synchronisation's payload: `$<length>` then the bytes, or `$EOF:<mark>` then
/// bytes up to the mark. Newlines the master sends while it prepares are skipped.
async fn read_payload(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<Vec<u8>, String> {
    let header = loop {
        let line = read_line(stream, buffer).await?;
        if !line.is_empty() {
            break line;
        }
    };
    if header.first() != Some(&b'$') {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{}'), are you sure the host and port are right?",
            String::from_utf8_lossy(&header)
        ));
    }
    if let Some(mark) = header.strip_prefix(b"$EOF:") {
        if mark.len() != EOF_MARK_BYTES {
            return Err("Bad diskless payload mark from MASTER".to_string());
        }
        loop {
            if buffer.len() >= mark.len() && buffer.ends_with(mark) {
                let mut payload = buffer.split().to_vec();
                payload.truncate(payload.len() - mark.len());
                return Ok(payload);
            }
            read_more(stream, buffer).await?;
        }
    }
    let length = std::str::from_utf8(&header[1..])
        .ok()
        .and_then(|text| text.parse::<usize>().ok())
        .ok_or_else(|| "Bad payload length from MASTER".to_string())?;
    while buffer.len() < length {
        read_more(stream, buffer).await?;
    }
    Ok(buffer.split_to(length).to_vec())
}

async fn synchronize_and_follow(
    server: &Arc<Server>,
    generation: u64,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let link = &server.replica_link;
    let timeout = Duration::from_secs(server.config.get_i64("repl-timeout").max(1) as u64);
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
        .map_err(|error| format!("Error condition on socket for SYNC: {error}"))?;
    let _ = stream.set_nodelay(true);
    link.set_state(LinkState::Connecting);
    tracing::info!("MASTER <-> REPLICA sync started");
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let handshake = async {
        let pong = ask(&mut stream, &mut buffer, &[b"PING"]).await?;
        let accepted = pong.starts_with(b"+")
            || pong.starts_with(b"-NOAUTH")
            || pong.starts_with(b"-NOPERM")
            || pong.starts_with(b"-ERR operation not permitted");
        if !accepted {
            return Err(format!(
                "Error reply to PING from master: '{}'",
                String::from_utf8_lossy(&pong)
            ));
        }
        let password = server.config.get("masterauth");
        if !password.is_empty() {
            let user = server.config.get("masteruser");
            let reply = if user.is_empty() {
                ask(&mut stream, &mut buffer, &[b"AUTH", password.as_bytes()]).await?
            } else {
                ask(
                    &mut stream,
                    &mut buffer,
                    &[b"AUTH", user.as_bytes(), password.as_bytes()],
                )
                .await?
            };
            if reply.first() == Some(&b'-') {
                return Err(format!(
                    "Unable to AUTH to MASTER: {}",
                    String::from_utf8_lossy(&reply)
                ));
            }
        }
        let own_port = server.port.load(Ordering::Relaxed).to_string();
        ask(
            &mut stream,
            &mut buffer,
            &[b"REPLCONF", b"listening-port", own_port.as_bytes()],
        )
        .await?;
        ask(
            &mut stream,
            &mut buffer,
            &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
        )
        .await?;
        // The master may send empty lines (keep-alives) before its answer.
        let mut reply = ask(&mut stream, &mut buffer, &[b"PSYNC", b"?", b"-1"]).await?;
        while reply.is_empty() {
            reply = read_line(&mut stream, &mut buffer).await?;
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        let mut words = text.split(' ');
        if words.next() != Some("+FULLRESYNC") {
            return Err(format!("Unexpected reply to PSYNC from master: {text}"));
        }
        let replication_id = words.next().unwrap_or("").to_string();
        let offset = words
            .next()
            .and_then(|offset| offset.parse::<u64>().ok())
            .unwrap_or(0);
        tracing::info!("Full resync from master: {replication_id}:{offset}");
        Ok((replication_id, offset))
    };
    let (replication_id, offset) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| "Timeout during the handshake with MASTER".to_string())??;
    link.set_state(LinkState::Sync);
    let payload = read_payload(&mut stream, &mut buffer).await?;
    if !link.is_current(generation) {
        return Ok(());
    }
    tracing::info!(
        "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
        payload.len()
    );
    // The load blocks its thread for as long as it takes: tokio moves this worker's other
    // tasks to another thread meanwhile.
    tokio::task::block_in_place(|| load_payload(server, &payload))?;
    *link.master_replication_id.lock() = replication_id;
    link.offset.store(offset, Ordering::Relaxed);
    link.last_io_ms.store(unix_time_ms(), Ordering::Relaxed);
    link.set_state(LinkState::Connected);
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    follow_stream(server, generation, stream, buffer).await
}

/// Replaces the dataset with the master's payload, saved first as the local RDB file.
fn load_payload(server: &Server, payload: &[u8]) -> Result<(), String> {
    let path = crate::rdb::rdb_path(server);
    let temporary = path.with_file_name(format!(
        "temp-{}.{}.rdb",
        unix_time_ms() / 1000,
        std::process::id()
    ));
    let saved =
        std::fs::write(&temporary, payload).and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = saved {
        let _ = std::fs::remove_file(&temporary);
        tracing::warn!("Failed trying to save the MASTER synchronization DB to disk: {error}");
    }
    // As a command would (invariant 17), then a load as at start-up: other clients get
    // LOADING until it is done, and the keys are locked shard by shard.
    let _shared = server.barrier.enter_shared(|| Ok::<(), ()>(()));
    server.loading.begin();
    tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
    {
        let mut guards = server.keyspace.lock_everything();
        for shard in guards.iter_mut().flatten() {
            shard.watched.touch_where(|_| true);
            shard.clear();
        }
    }
    server.tracking.invalidate_all();
    tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
    let loaded = crate::rdb::load_rdb_bytes(server, payload)
        .map_err(|error| format!("Failed trying to load the MASTER synchronization DB: {error}"));
    server.loading.end();
    loaded.map(|_| ())
}

fn master_client(server: &Server) -> Client {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let shared = Arc::new(ClientShared::new(
        MASTER_CLIENT_ID,
        address,
        address,
        -1,
        unix_time_ms(),
    ));
    Client::new(shared, true, server.acl.default_user())
}

/// Applies the master's stream until the link breaks or is replaced.
async fn follow_stream(
    server: &Arc<Server>,
    generation: u64,
    mut stream: TcpStream,
    mut buffer: BytesMut,
) -> Result<(), String> {
    let link = &server.replica_link;
    let mut client = master_client(server);
    let mut args = RequestArgs::default();
    let mut ack = tokio::time::interval(ACK_INTERVAL);
    let limits = ParseLimits {
        bulk_bytes_max: i64::MAX,
        authenticated: true,
    };
    let mut output = Vec::new();
    loop {
        if !link.is_current(generation) {
            return Ok(());
        }
        // Apply every complete command in the buffer.
        let mut consumed = 0;
        let mut acks: Vec<u64> = Vec::new();
        loop {
            match parse_request(&buffer[consumed..], &limits, &mut args) {
                Ok(Request::Complete { consumed: length }) => {
                    let request = &buffer[consumed..consumed + length];
                    let argv: SmallVec<[&[u8]; 8]> = args.iter(request).collect();
                    let get_ack = argv.len() >= 2
                        && argv[0].eq_ignore_ascii_case(b"REPLCONF")
                        && argv[1].eq_ignore_ascii_case(b"GETACK");
                    if !get_ack {
                        APPLYING_MASTER_STREAM.with(|flag| flag.set(true));
                        crate::connection::execute(server, &mut client, &argv, &mut output);
                        APPLYING_MASTER_STREAM.with(|flag| flag.set(false));
                        output.clear();
                    }
                    consumed += length;
                    let offset =
                        link.offset.fetch_add(length as u64, Ordering::Relaxed) + length as u64;
                    if get_ack {
                        // The ACK counts the GETACK itself, as Redis's does.
                        acks.push(offset);
                    }
                }
                Ok(Request::Empty { consumed: length }) => {
                    consumed += length;
                    link.offset.fetch_add(length as u64, Ordering::Relaxed);
                }
                Ok(Request::Incomplete { .. }) => break,
                Err(error) => return Err(format!("Error from MASTER's stream: {}", error.0)),
            }
        }
        let _ = buffer.split_to(consumed);
        for offset in acks {
            let offset = offset.to_string();
            send(&mut stream, &[b"REPLCONF", b"ACK", offset.as_bytes()]).await?;
        }
        tokio::select! {
            read = stream.read_buf(&mut buffer) => match read {
                Ok(0) => return Err("Connection with master lost.".to_string()),
                Ok(_) => link.last_io_ms.store(unix_time_ms(), Ordering::Relaxed),
                Err(error) => return Err(format!("Connection with master lost: {error}")),
            },
            _ = ack.tick() => {
                let offset = link.offset.load(Ordering::Relaxed).to_string();
                send(&mut stream, &[b"REPLCONF", b"ACK", offset.as_bytes()]).await?;
            }
        }
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
    }
}
