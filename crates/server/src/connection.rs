//! Connections: accepting, reading requests, running commands, writing replies.
//!
//! Model. Each connection is one tokio task. It reads into its query buffer, parses every
//! complete request in it (arguments stay in the buffer: no copies), runs each command to
//! completion on the current worker thread, appends each reply to one output buffer, and sends
//! that buffer with one write per batch. Commands never await: a command holds its shard locks
//! only while it runs. Protocol errors get Redis's `-ERR Protocol error: ...` and close the
//! connection, as Redis does.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use resp::{parse_request, ParseLimits, ReplyWriter, Request, RequestArgs};
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{Client, ClientShared, ReplyMode};
use crate::command::{flags, Command};
use crate::context::{errors, wrong_arity, CommandError, Context};
use crate::server::{unix_time_ms, unix_time_us, Server};

/// Bytes the query buffer grows by when it fills.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Replies past this size are checked against the output buffer limit (Redis checks them once
/// they outgrow its 16 KiB static reply buffer).
const REPLY_CHUNK_BYTES: usize = 16 * 1024;
/// Output past this size is written before more requests of the batch are run.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// An empty query buffer bigger than this is given back (a big request does not keep its
/// memory while the client idles, as Redis's cron shrinks query buffers).
const QUERY_BUFFER_KEEP_BYTES: usize = 64 * 1024;
/// Argument slots kept between requests.
const ARGUMENTS_KEEP: usize = 1024;
/// Longest argument text quoted back in an unknown-command error.
const ERROR_ARGUMENT_BYTES_MAX: usize = 128;

const PROTECTED_MODE_MESSAGE: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Accepts connections until shutdown, or until the server listens elsewhere (CONFIG SET port
/// or bind moves the listeners to a new `generation`).
pub async fn accept_loop(
    server: Arc<Server>,
    listener: TcpListener,
    mut generation: tokio::sync::watch::Receiver<u64>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = server.shutdown.notified() => return,
            _ = generation.changed() => return,
        };
        if server.is_shutting_down() {
            return;
        }
        match accepted {
            Ok((stream, address)) => {
                let server = server.clone();
                tokio::spawn(async move {
                    serve_tcp(server, stream, address).await;
                });
            }
            Err(error) => {
                tracing::warn!("Accepting client connection: {error}");
                // Out of file descriptors and similar: back off briefly instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// A connection's byte stream: TCP, or a Unix socket (`unixsocket`).
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + std::os::fd::AsRawFd {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + std::os::fd::AsRawFd> ClientStream for S {}

/// Accepts connections on the `unixsocket` listener until shutdown.
pub async fn accept_unix_loop(
    server: Arc<Server>,
    listener: tokio::net::UnixListener,
    path: Arc<str>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = server.shutdown.notified() => return,
        };
        if server.is_shutting_down() {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let server = server.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    // A Unix socket client is local: a loopback placeholder stands for it.
                    let local = SocketAddr::from(([127, 0, 0, 1], 0));
                    serve(server, stream, local, local, Some(path)).await;
                });
            }
            Err(error) => {
                tracing::warn!("Accepting client connection: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_tcp(server: Arc<Server>, stream: TcpStream, address: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let local_address = stream.local_addr().unwrap_or(address);
    serve(server, stream, address, local_address, None).await;
}

async fn serve<S: ClientStream>(
    server: Arc<Server>,
    mut stream: S,
    address: SocketAddr,
    local_address: SocketAddr,
    unix_socket: Option<Arc<str>>,
) {
    let hot = &server.config.hot;
    let no_password = !server.acl.auth_required();
    if hot.protected_mode.load(Ordering::Relaxed) && no_password && !address.ip().is_loopback() {
        let _ = stream.write_all(PROTECTED_MODE_MESSAGE.as_bytes()).await;
        server
            .clients
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    if server.clients.len() as i64 >= hot.maxclients.load(Ordering::Relaxed) {
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        server
            .clients
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    let file_descriptor = stream.as_raw_fd();
    let mut shared = ClientShared::new(
        server.clients.next_id(),
        address,
        local_address,
        file_descriptor,
        unix_time_ms(),
    );
    shared.unix_socket = unix_socket;
    let shared = Arc::new(shared);
    server.clients.register(shared.clone());
    let mut client = Client::new(shared.clone(), no_password, server.acl.default_user());
    server.tracking.register_mailbox(&client.mailbox);
    let _ = run_connection(&server, &mut stream, &mut client).await;
    // Whatever still feeds this client (a replica's stream) sees it gone.
    shared.kill();
    crate::families::transactions::unwatch_all(&server, &mut client);
    crate::families::pubsub::unsubscribe_all(&server, &mut client);
    server.tracking.unregister(shared.id);
    server.monitors.remove(shared.id);
    server.clients.unregister(shared.id);
}

async fn run_connection<S: ClientStream>(
    server: &Server,
    stream: &mut S,
    client: &mut Client,
) -> std::io::Result<()> {
    let mut query = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut args = RequestArgs::new();
    let shared = client.shared.clone();
    loop {
        if query.capacity() - query.len() < READ_CHUNK_BYTES / 4 {
            query.reserve(READ_CHUNK_BYTES);
        }
        let mailbox = client.mailbox.clone();
        let read = tokio::select! {
            read = stream.read_buf(&mut query) => read?,
            _ = shared.kill.notified() => return Ok(()),
            _ = mailbox.notify.notified() => {
                // Let the publishers whose requests are ready run first (a yield waits until
                // the runtime has polled its sockets): their messages then leave in this
                // write, as Redis writes a subscriber once per event-loop iteration, instead
                // of one small write (and one wake-up of the subscriber) per publish.
                tokio::task::yield_now().await;
                let mut messages = mailbox.take();
                let length = messages.len();
                if length > 0 {
                    let outcome = tokio::select! {
                        written = write_output(server, &shared, stream, &mut messages) => Some(written),
                        _ = shared.kill.notified() => None,
                    };
                    // Written or given up (killed, or the socket failed): either way the
                    // messages leave the client's accounts now.
                    drop(messages);
                    mailbox.written(length);
                    match outcome {
                        Some(written) => written?,
                        None => return Ok(()),
                    }
                }
                continue;
            }
        };
        if read == 0 || shared.is_killed() {
            return Ok(());
        }
        let batch_started_us = unix_time_us();
        crate::stats::take_batch_commands();
        // Pushes delivered before these requests arrived go out before their replies.
        let early = mailbox.take();
        if !early.is_empty() {
            output.extend_from_slice(&early);
            mailbox.written(early.len());
        }
        server
            .stats
            .net_input_bytes
            .fetch_add(read as u64, Ordering::Relaxed);
        server.stats.reads_processed.fetch_add(1, Ordering::Relaxed);
        shared
            .net_input_bytes
            .fetch_add(read as u64, Ordering::Relaxed);
        shared
            .last_interaction_ms
            .store(batch_started_us / 1000, Ordering::Relaxed);
        let mut clock = CommandClock {
            now_us: batch_started_us,
        };
        let query_limit = server
            .config
            .hot
            .client_query_buffer_limit
            .load(Ordering::Relaxed);
        if query.len() as i64 > query_limit {
            tracing::warn!(
                "Closing client that reached max query buffer length (id={})",
                client.id
            );
            crate::stats::QUERY_BUFFER_LIMIT_DISCONNECTIONS.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut consumed = 0;
        let mut close = false;
        // Commands run without awaiting until the next reply write, so what this thread
        // appends from here is this connection's (see `write_replies`).
        crate::propagation::take_thread_sequence();
        // Scripts of this batch may keep the script barrier for the scripts right after them;
        // it is released before every await below, and when the batch ends.
        let batch = server.barrier.batch();
        loop {
            let limits = ParseLimits {
                bulk_bytes_max: server.config.hot.proto_max_bulk_len.load(Ordering::Relaxed),
                authenticated: client.authenticated || !server.acl.auth_required(),
            };
            match parse_request(&query[consumed..], &limits, &mut args) {
                Ok(Request::Complete { consumed: length }) => {
                    if server.pause.is_set() && server.pause.is_paused(unix_time_ms()) {
                        let buffer = &query[consumed..consumed + length];
                        let argv: SmallVec<[&[u8]; 8]> = args.iter(buffer).collect();
                        if let Some(end_ms) = pause_end_for(server, client, &argv) {
                            drop(argv);
                            batch.release();
                            if !output.is_empty() {
                                write_replies(server, &shared, stream, &mut output).await?;
                            }
                            if !wait_for_unpause(server, &shared, end_ms).await {
                                return Ok(());
                            }
                            clock.read();
                            // Parse the request again: the pause may have changed.
                            continue;
                        }
                    }
                    let blocked_argv: Option<Vec<Vec<u8>>> = {
                        let buffer = &query[consumed..consumed + length];
                        let argv: SmallVec<[&[u8]; 8]> = args.iter(buffer).collect();
                        let _flushes = crate::propagation::CallerFlushes::enter();
                        run_request(
                            server,
                            client,
                            &argv,
                            &mut output,
                            AfterScript::KeepForBatch,
                            &mut clock,
                        );
                        client
                            .blocked
                            .is_some()
                            .then(|| argv.iter().map(|arg| arg.to_vec()).collect())
                    };
                    if let Some(owned) = blocked_argv {
                        batch.release();
                        if !output.is_empty() {
                            write_replies(server, &shared, stream, &mut output).await?;
                        }
                        let blocked = wait_while_blocked(
                            server,
                            client,
                            owned,
                            &mut output,
                            stream,
                            &mut query,
                            query_limit,
                        );
                        if !blocked.await {
                            return Ok(());
                        }
                        clock.read();
                    }
                    consumed += length;
                    if client.close_after_reply || shared.is_killed() {
                        close = true;
                        break;
                    }
                    if output.len() > REPLY_CHUNK_BYTES
                        && over_output_limit(server, client, &output)
                    {
                        return Ok(());
                    }
                    if output.len() >= OUTPUT_FLUSH_BYTES {
                        batch.release();
                        write_replies(server, &shared, stream, &mut output).await?;
                        clock.read();
                    }
                }
                Ok(Request::Empty { consumed: length }) => consumed += length,
                Ok(Request::Incomplete { bytes_expected }) => {
                    if bytes_expected > 0 && (client.authenticated || !server.acl.auth_required()) {
                        let wanted = bytes_expected.min(query_limit.max(0) as usize);
                        let available = query.capacity() - query.len();
                        if wanted > available {
                            query.reserve(wanted);
                        }
                    }
                    break;
                }
                Err(error) => {
                    let mut writer = ReplyWriter::new(&mut output, client.protocol);
                    writer.error(format!("ERR {}", error.0).as_bytes());
                    tracing::debug!("Protocol error from client id={}: {}", client.id, error.0);
                    close = true;
                    break;
                }
            }
        }
        drop(batch);
        query.advance(consumed);
        if query.is_empty() && query.capacity() > QUERY_BUFFER_KEEP_BYTES {
            query = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
        args.shrink(ARGUMENTS_KEEP);
        // As Redis shows a request being read: its parsed part (header, complete arguments) as
        // arguments (`argv-mem`), the rest as the query buffer (`qbuf`).
        let parsed = args.parsed_bytes().min(query.len());
        shared
            .query_buffer_bytes
            .store(query.len() - parsed, Ordering::Relaxed);
        shared
            .argument_bytes
            .store(args.parsed_argument_bytes(), Ordering::Relaxed);
        shared
            .query_buffer_free_bytes
            .store(query.capacity() - query.len(), Ordering::Relaxed);
        shared
            .reply_buffer_bytes
            .store(output.capacity(), Ordering::Relaxed);
        shared
            .reply_buffer_peak_bytes
            .fetch_max(output.capacity(), Ordering::Relaxed);
        let (command_us, commands) = crate::stats::take_batch_commands();
        server.stats.event_loop.record_batch(
            clock.now_us.saturating_sub(batch_started_us).max(1),
            command_us,
            commands,
        );
        crate::client_eviction::after_activity(server, &shared);
        if shared.is_killed() {
            return Ok(());
        }
        if !output.is_empty() {
            write_replies(server, &shared, stream, &mut output).await?;
        } else {
            // No reply to send (CLIENT REPLY OFF): the batch's writes still reach the AOF now.
            let sequence = crate::propagation::take_thread_sequence();
            server.aof.wait_durable(sequence).await;
        }
        if close {
            return Ok(());
        }
    }
}

/// Whether the replies pending for a normal client exceed `client-output-buffer-limit normal`'s
/// hard limit: then the client is closed without them, as Redis does. (Replies leave after
/// each batch, or every `OUTPUT_FLUSH_BYTES`, and reading waits for them: only one big reply
/// can come near a limit. The soft limit, which needs replies to stay pending for seconds, is
/// not applied.)
fn over_output_limit(server: &Server, client: &Client, output: &[u8]) -> bool {
    let hard_bytes = server.clients.normal_output_limit.load().hard_bytes;
    if hard_bytes == 0 || output.len() <= hard_bytes || client.shared.is_pubsub() {
        return false;
    }
    tracing::warn!(
        "Client id={} scheduled to be closed ASAP for overcoming of output buffer limits (hard limit, {} bytes pending).",
        client.id,
        output.len()
    );
    crate::stats::OUTPUT_BUFFER_LIMIT_DISCONNECTIONS.fetch_add(1, Ordering::Relaxed);
    client.shared.kill();
    true
}

/// When the request `argv` must wait for a CLIENT PAUSE to end: the pause's end (ms).
fn pause_end_for(server: &Server, client: &Client, argv: &[&[u8]]) -> Option<u64> {
    let now_ms = unix_time_ms();
    let command = resolve(server, client, argv).ok()?;
    let writes = if client.transaction.is_some() {
        // Queued commands run at EXEC: only EXEC of writes waits (and DISCARD never).
        if command.full_name != "exec" {
            return None;
        }
        client.transaction.as_ref().is_some_and(|transaction| {
            transaction.commands.iter().any(|queued| {
                let queued: SmallVec<[&[u8]; 8]> = queued.iter().map(Vec::as_slice).collect();
                resolve(server, client, &queued).is_ok_and(crate::pause::is_write)
            })
        })
    } else {
        crate::pause::is_write(command)
    };
    server.pause.must_wait(writes, now_ms)
}

/// Waits until the pause ends (CLIENT UNPAUSE or its end time). Returns false when the client
/// was killed meanwhile. The client counts as blocked while it waits (as in Redis).
async fn wait_for_unpause(server: &Server, shared: &ClientShared, end_ms: u64) -> bool {
    shared.blocked.store(true, Ordering::Relaxed);
    let changed = server.pause.changed.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    let still_paused = server.pause.current(unix_time_ms()).map(|(_, end)| end) == Some(end_ms);
    let alive = if still_paused {
        let wait_ms = end_ms.saturating_sub(unix_time_ms());
        tokio::select! {
            _ = changed => true,
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait_ms)) => true,
            _ = shared.kill.notified() => false,
        }
    } else {
        true
    };
    shared.blocked.store(false, Ordering::Relaxed);
    alive && !shared.is_killed()
}

/// Waits for the blocked command to be served, time out or be unblocked, running it again
/// when asked to. Returns false when the connection must close.
async fn wait_while_blocked<S: ClientStream>(
    server: &Server,
    client: &mut Client,
    argv: Vec<Vec<u8>>,
    output: &mut Vec<u8>,
    stream: &mut S,
    query: &mut BytesMut,
    query_limit: i64,
) -> bool {
    let shared = client.shared.clone();
    while let Some(waiter) = client.blocked.take() {
        shared.blocked.store(true, Ordering::Relaxed);
        // While blocked the connection keeps reading (requests wait in the query buffer, as in
        // Redis), so that a client that goes away is noticed.
        let disconnected = async {
            loop {
                if query.capacity() - query.len() < READ_CHUNK_BYTES / 4 {
                    query.reserve(READ_CHUNK_BYTES);
                }
                match stream.read_buf(query).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) if query.len() as i64 > query_limit => return,
                    Ok(_) => {}
                }
            }
        };
        let outcome = crate::blocking::wait(server, waiter, &shared.kill, disconnected).await;
        shared.blocked.store(false, Ordering::Relaxed);
        match outcome {
            crate::blocking::WaitOutcome::Reply(reply) => {
                // Served by another client's write (and its propagated pop): the reply waits
                // for that write to be durable like the writer's own.
                crate::propagation::note_thread_sequence(server.propagation.sequence());
                if let Some(command) = server.commands.get(&argv[0]) {
                    command.stats.add_calls(1);
                    shared.commands_processed.fetch_add(1, Ordering::Relaxed);
                    // Logged when served, as Redis logs a blocked command once it is unblocked.
                    let args: SmallVec<[&[u8]; 8]> = argv.iter().map(Vec::as_slice).collect();
                    crate::latency::record_call(
                        server,
                        client,
                        command,
                        &args,
                        std::time::Duration::ZERO,
                    );
                    if reply.first() == Some(&b'-') {
                        command.stats.add_failed();
                    }
                }
                output.extend_from_slice(&reply);
            }
            crate::blocking::WaitOutcome::Retry => {
                let args: SmallVec<[&[u8]; 8]> = argv.iter().map(Vec::as_slice).collect();
                client.retrying = true;
                let _flushes = crate::propagation::CallerFlushes::enter();
                execute(server, client, &args, output);
                client.retrying = false;
            }
            crate::blocking::WaitOutcome::Closed => return false,
        }
    }
    !shared.is_killed()
}

/// Writes a batch of replies, first waiting (with `appendfsync always`) until the writes that
/// produced them are on disk. Batches that wrote nothing do not wait.
async fn write_replies<S: ClientStream>(
    server: &Server,
    shared: &ClientShared,
    stream: &mut S,
    output: &mut Vec<u8>,
) -> std::io::Result<()> {
    let sequence = crate::propagation::take_thread_sequence();
    server.aof.wait_durable(sequence).await;
    write_output(server, shared, stream, output).await
}

async fn write_output<S: ClientStream>(
    server: &Server,
    shared: &ClientShared,
    stream: &mut S,
    output: &mut Vec<u8>,
) -> std::io::Result<()> {
    stream.write_all(output).await?;
    server
        .stats
        .net_output_bytes
        .fetch_add(output.len() as u64, Ordering::Relaxed);
    server
        .stats
        .writes_processed
        .fetch_add(1, Ordering::Relaxed);
    shared
        .net_output_bytes
        .fetch_add(output.len() as u64, Ordering::Relaxed);
    output.clear();
    // A big batch's buffer is given back; a replica's at once (the full-sync payload went
    // through it, and a replica gets almost no replies after it).
    if output.capacity() > 4 * OUTPUT_FLUSH_BYTES
        || (output.capacity() > READ_CHUNK_BYTES && shared.replica.load(Ordering::Relaxed))
    {
        output.shrink_to(READ_CHUNK_BYTES);
    }
    Ok(())
}

/// What a script does with the script barrier when it ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterScript {
    /// Releases it (a command run on its own).
    Release,
    /// Keeps it for the scripts that follow in the same pipelined batch (see
    /// [`crate::barrier`]): the connection's read loop releases it.
    KeepForBatch,
}

/// Looks the command up, checks it may run, runs it and accounts for it.
pub fn execute(server: &Server, client: &mut Client, argv: &[&[u8]], output: &mut Vec<u8>) {
    let mut clock = CommandClock {
        now_us: unix_time_us(),
    };
    run_request(
        server,
        client,
        argv,
        output,
        AfterScript::Release,
        &mut clock,
    );
}

/// The wall clock as commands of one batch see it. It is read when the batch starts, when a
/// command ends (which is when the next one starts: one clock read per command, not two), and
/// after anything that awaits; a command starts at `now_us`.
struct CommandClock {
    now_us: u64,
}

impl CommandClock {
    fn read(&mut self) -> u64 {
        self.now_us = unix_time_us();
        self.now_us
    }
}

/// [`execute`], with a choice of what a script does with the barrier when it ends.
fn run_request(
    server: &Server,
    client: &mut Client,
    argv: &[&[u8]],
    output: &mut Vec<u8>,
    after_script: AfterScript,
    clock: &mut CommandClock,
) {
    let mut reply_start = output.len();
    let started_us = clock.now_us;
    let now_ms = if server.aof.is_loading() {
        0
    } else {
        started_us / 1000
    };
    client
        .shared
        .last_interaction_ms
        .store(now_ms, Ordering::Relaxed);
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::Skipping;
    }
    if server.tracking.active() {
        server.tracking.enforce_limit();
    }
    crate::families::acl::refresh_user(server, client);
    let resolved = resolve(server, client, argv).and_then(|command| {
        // Redis's order of refusals: OOM, MISCONF, NOREPLICAS, READONLY / MASTERDOWN, LOADING.
        let refusal: std::borrow::Cow<'static, str> =
            if crate::eviction::rejects(server, client, command) {
                crate::eviction::OOM_ERROR.into()
            } else if let Some(error) = disk_refusal(server, client, command) {
                error.into()
            } else if crate::replication::rejects(server, client, command) {
                crate::replication::NO_REPLICAS_ERROR.into()
            } else if let Some(refusal) = crate::replica::refusal(server, client, command) {
                refusal.into()
            } else if server.loading.is_active()
                && !command.has(flags::LOADING)
                && !client.must_obey()
            {
                crate::loading::LOADING_ERROR.into()
            } else {
                return Ok(command);
            };
        // Refused (too few good replicas, or no memory): a transaction being queued is doomed
        // (EXECABORT); EXEC itself discards it.
        if command.full_name == "exec" {
            client.transaction = None;
            crate::families::transactions::unwatch_all(server, client);
            let message = format!("EXECABORT Transaction discarded because of: {refusal}");
            return Err((Some(command), CommandError::new(message)));
        }
        Err((Some(command), CommandError::new(refusal.into_owned())))
    });
    // Pushes delivered before the command runs (invalidations of keys evicted just now, among
    // others) go out before its reply, as Redis writes them into the client's buffer at once.
    if client.mailbox.pending_bytes() > 0 {
        let pending = client.mailbox.take();
        output.extend_from_slice(&pending);
        client.mailbox.written(pending.len());
        reply_start = output.len();
    }
    if client.transaction.is_some() {
        let queue = match &resolved {
            Ok(command) => !crate::families::transactions::runs_inside_multi(command),
            Err(_) => false,
        };
        if let Err((command, error)) = &resolved {
            if let Some(transaction) = client.transaction.as_mut() {
                transaction.failed = true;
            }
            if let Some(command) = command {
                command.stats.add_rejected();
            }
            reply_error(server, client, output, error);
            client.sync_shared();
            return;
        }
        if queue {
            let command = resolved.as_ref().ok().copied().expect("resolved");
            // A busy script refuses what would run beside it: refused, not queued, and the
            // transaction is doomed, as Redis rejects before queuing.
            if let Some(busy) = server.scripting.running.busy_error() {
                if !command.has(flags::ALLOW_BUSY) {
                    if let Some(transaction) = client.transaction.as_mut() {
                        transaction.failed = true;
                    }
                    command.stats.add_rejected();
                    reply_error(server, client, output, &CommandError::new(busy));
                    client.sync_shared();
                    return;
                }
            }
            let mut writer = ReplyWriter::new(output, client.protocol);
            let transaction = client.transaction.as_mut().expect("in a transaction");
            if command.has(flags::NO_MULTI) {
                transaction.failed = true;
                writer.error(b"ERR Command not allowed inside a transaction");
            } else {
                transaction.queue(argv);
                writer.simple(b"QUEUED");
            }
            client.sync_shared();
            return;
        }
    }
    match resolved {
        Ok(command) => {
            client
                .shared
                .last_command
                .store(command.id, Ordering::Relaxed);
            let handler = command
                .handler
                .expect("the table holds only commands with handlers");
            let argument_bytes: usize = argv.iter().map(|arg| arg.len()).sum();
            client
                .shared
                .argument_bytes
                .store(argument_bytes, Ordering::Relaxed);
            let barrier = match enter_barrier(server, command, after_script) {
                Ok(guard) => guard,
                Err(error) => {
                    command.stats.add_rejected();
                    // EXEC refused discards its transaction (Redis's `execCommandAbort`).
                    let error = if command.full_name == "exec" && client.transaction.is_some() {
                        client.transaction = None;
                        crate::families::transactions::unwatch_all(server, client);
                        CommandError::new(format!(
                            "EXECABORT Transaction discarded because of: {}",
                            error.0
                        ))
                    } else {
                        error
                    };
                    reply_error(server, client, output, &error);
                    client.sync_shared();
                    return;
                }
            };
            crate::tracking::set_current_client(client.id);
            // CLIENT NO-TOUCH: reads do not count as accesses, except TOUCH's.
            let no_touch = client.shared.no_touch.load(Ordering::Relaxed);
            if no_touch {
                store::keyspace::set_no_touch(command.full_name != "touch");
            }
            let protocol = client.protocol;
            let mut context = Context {
                server,
                client,
                reply: ReplyWriter::new(output, protocol),
                now_ms,
                command,
                scope: None,
            };
            let result = handler(&mut context, argv);
            if no_touch {
                store::keyspace::set_no_touch(false);
            }
            server.notify_created(client.database);
            if server.tracking.active() {
                remember_read_keys(server, client, command, argv, result.is_ok());
                server.tracking.flush_broadcasts();
            }
            if server.monitors.active() && !client.retrying {
                let source = client.shared.address_text();
                server
                    .monitors
                    .feed(command, client.database, &source, argv);
            }
            let elapsed = clock.read().saturating_sub(started_us);
            let duration = std::time::Duration::from_micros(elapsed);
            // A command that blocked is counted when its wait ends (as Redis does).
            if client.blocked.is_none() {
                command.stats.add_calls(1);
                client
                    .shared
                    .commands_processed
                    .fetch_add(1, Ordering::Relaxed);
                crate::latency::record_call(server, client, command, argv, duration);
            }
            if client.blocked.is_none() {
                command.stats.add_microseconds(elapsed);
            }
            crate::stats::count_batch_command(elapsed.max(1));
            server
                .stats
                .commands_processed
                .fetch_add(1, Ordering::Relaxed);
            client.shared.argument_bytes.store(0, Ordering::Relaxed);
            if let Err(error) = result {
                command.stats.add_failed();
                reply_error(server, client, output, &error);
            }
            match barrier {
                BarrierHold::Exclusive(guard) if after_script == AfterScript::KeepForBatch => {
                    guard.keep()
                }
                hold => drop(hold),
            }
        }
        Err((command, error)) => {
            if let Some(command) = command {
                command.stats.add_rejected();
            }
            reply_error(server, client, output, &error);
        }
    }
    client.sync_shared();
    crate::client_eviction::after_activity(server, &client.shared);
    match client.reply_mode {
        ReplyMode::Off => output.truncate(reply_start),
        ReplyMode::Skipping => {
            output.truncate(reply_start);
            client.reply_mode = ReplyMode::On;
        }
        ReplyMode::On | ReplyMode::SkipNext => {}
    }
}

/// MISCONF: while the dataset cannot be persisted, write commands (EXEC of a transaction that
/// queued one) and PING are refused, except for the master and the AOF loader.
fn disk_refusal(server: &Server, client: &Client, command: &Command) -> Option<String> {
    let error = crate::rdb::disk_error(server)?;
    let writes = command.has(flags::WRITE)
        || command.full_name == "ping"
        || (command.full_name == "exec"
            && crate::eviction::queues_any(server, client, flags::WRITE));
    (writes && !client.must_obey()).then(|| error.message())
}

/// How a command holds the script barrier while it runs.
enum BarrierHold<'a> {
    Shared(#[allow(dead_code)] crate::barrier::SharedGuard<'a>),
    Exclusive(crate::barrier::ExclusiveGuard<'a>),
    /// An `allow_busy` command (SCRIPT KILL ...) while a script is busy, or a command nested
    /// in an exclusive one.
    Bypassed,
}

enum GiveUp {
    Busy(&'static str),
    Bypass,
}

/// Enters the script barrier: exclusively for scripts, shared for everything else. While a
/// script is past `busy-reply-threshold`, waiting commands get BUSY, except `allow_busy` ones,
/// which run beside it.
fn enter_barrier<'a>(
    server: &'a Server,
    command: &Command,
    after_script: AfterScript,
) -> Result<BarrierHold<'a>, CommandError> {
    if server.barrier.kept_here() {
        // The batch's previous command was a script that kept the barrier: another script
        // runs on under it; an ordinary command at the top of the batch ends it.
        if command.has(flags::EXCLUSIVE) || after_script == AfterScript::Release {
            return Ok(BarrierHold::Bypassed);
        }
        server.barrier.release_kept();
    }
    if server.barrier.held_exclusively_here() {
        // A command run by an exclusive one (DEBUG LOADAOF replaying the AOF).
        return Ok(BarrierHold::Bypassed);
    }
    let running = &server.scripting.running;
    let give_up = || match running.busy_error() {
        None => Ok(()),
        Some(_) if command.has(flags::ALLOW_BUSY) => Err(GiveUp::Bypass),
        // A slow script replayed from the AOF (DEBUG LOADAOF): Redis answers LOADING then.
        Some(_) if server.aof.is_loading() && !command.has(flags::LOADING) => {
            Err(GiveUp::Busy(crate::loading::LOADING_ERROR))
        }
        Some(error) => Err(GiveUp::Busy(error)),
    };
    let entered = if command.has(flags::EXCLUSIVE) {
        server
            .barrier
            .enter_exclusive(give_up)
            .map(BarrierHold::Exclusive)
    } else {
        server
            .barrier
            .enter_shared(give_up)
            .map(BarrierHold::Shared)
    };
    match entered {
        Ok(hold) => Ok(hold),
        Err(GiveUp::Bypass) => Ok(BarrierHold::Bypassed),
        Err(GiveUp::Busy(error)) => Err(CommandError::new(error)),
    }
}

/// Client tracking after a top-level command: a read records its keys (see [`track_read`]);
/// the CLIENT CACHING choice lasts one command (the commands of a transaction or a script
/// included).
fn remember_read_keys(
    server: &Server,
    client: &mut Client,
    command: &Command,
    argv: &[&[u8]],
    succeeded: bool,
) {
    if command.full_name == "client|caching" {
        return;
    }
    let caching_given = std::mem::take(&mut client.tracking_caching);
    if succeeded {
        track_read(server, client.id, caching_given, command, argv);
    }
}

/// Client tracking: a read-only command run for a tracking client (directly, inside EXEC, or
/// by its script) records its keys, unless the client tracks by prefix (BCAST), or OPTIN without
/// CLIENT CACHING YES, or OPTOUT after CLIENT CACHING NO. A read-only script call itself records
/// nothing: the commands it runs do.
pub(crate) fn track_read(
    server: &Server,
    client_id: u64,
    caching_given: bool,
    command: &Command,
    argv: &[&[u8]],
) {
    let Some(tracker) = server.tracking.tracker(client_id) else {
        return;
    };
    let options = &tracker.options;
    if options.bcast
        || !command.has(flags::READONLY)
        || command.has(flags::PUBSUB)
        || matches!(
            command.full_name.as_str(),
            "eval_ro" | "evalsha_ro" | "fcall_ro"
        )
        || (options.optin && !caching_given)
        || (options.optout && caching_given)
    {
        return;
    }
    let keys: SmallVec<[&[u8]; 4]> = command
        .key_positions(argv)
        .into_iter()
        .map(|position| argv[position])
        .collect();
    if keys.is_empty() {
        return;
    }
    let max_keys = server.tracking.keys_max.load(Ordering::Relaxed);
    server.tracking.remember(client_id, &keys, max_keys);
}

/// Replies with an error and counts it (INFO stats `total_error_replies`, INFO errorstats).
fn reply_error(server: &Server, client: &Client, output: &mut Vec<u8>, error: &CommandError) {
    server.stats.count_error(error.0.as_bytes());
    ReplyWriter::new(output, client.protocol).error(error.0.as_bytes());
}

/// Closes the clients idle for longer than `timeout` seconds (none when it is 0), except those
/// waiting in a blocking command or subscribed to channels, as Redis does.
pub fn close_idle_clients(server: &Server, now_ms: u64) {
    let timeout_s = server.config.hot.timeout_s.load(Ordering::Relaxed);
    if timeout_s == 0 {
        return;
    }
    for client in server.clients.all() {
        let idle_s = (now_ms / 1000)
            .saturating_sub(client.last_interaction_ms.load(Ordering::Relaxed) / 1000);
        if idle_s > timeout_s && !client.blocked.load(Ordering::Relaxed) && !client.is_pubsub() {
            tracing::debug!("Closing idle client id={}", client.id);
            client.kill();
        }
    }
}

type Rejection<'a> = (Option<&'a Command>, CommandError);

/// Finds the command (or subcommand) to run and checks arity and authentication.
fn resolve<'a>(
    server: &'a Server,
    client: &Client,
    argv: &[&[u8]],
) -> Result<&'a Command, Rejection<'a>> {
    let Some(mut command) = server.commands.get(argv[0]) else {
        return Err((None, unknown_command(argv)));
    };
    if command.is_container() && argv.len() >= 2 {
        match command.subcommand(argv[1]) {
            Some(sub) => command = sub,
            None => {
                let message = format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    truncated(argv[1]),
                    command.name.to_ascii_uppercase()
                );
                return Err((Some(command), CommandError::new(message)));
            }
        }
    }
    // The last command of CLIENT LIST (and of the ACL log's client info) is this one, even
    // when it is refused, as in Redis.
    client
        .shared
        .last_command
        .store(command.id, Ordering::Relaxed);
    if !command.arity_allows(argv.len()) {
        return Err((Some(command), wrong_arity(&command.full_name)));
    }
    if command.has(flags::PROTECTED) {
        check_protected(server, client, command)?;
    }
    if !client.authenticated && server.acl.auth_required() && !command.has(flags::NO_AUTH) {
        return Err((Some(command), errors::NO_AUTH.into()));
    }
    if !client.user.unrestricted && !client.must_obey() {
        let context = if client.transaction.is_some() {
            crate::acl::LogContext::Multi
        } else {
            crate::acl::LogContext::TopLevel
        };
        let user = client.user.clone();
        if let Err((_, message)) =
            crate::families::acl::enforce(server, client, &user, command, argv, context)
        {
            return Err((
                Some(command),
                CommandError::new(format!("NOPERM {message}")),
            ));
        }
    }
    if client.protocol == resp::Protocol::Resp2
        && client.subscriptions.count() > 0
        && !crate::families::pubsub::allowed_while_subscribed(command)
    {
        let message = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            command.full_name
        );
        return Err((Some(command), CommandError::new(message)));
    }
    Ok(command)
}

/// DEBUG and MODULE run only where `enable-debug-command` / `enable-module-command` allow.
fn check_protected<'a>(
    server: &Server,
    client: &Client,
    command: &'a Command,
) -> Result<(), Rejection<'a>> {
    let (name, option) = if command.name == "debug" {
        ("DEBUG", "enable-debug-command")
    } else {
        ("MODULE", "enable-module-command")
    };
    let allowed = match server.config.get(option).as_str() {
        "yes" => true,
        "local" => client.shared.address.ip().is_loopback(),
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    Err((
        Some(command),
        CommandError::new(format!(
            "ERR {name} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
        )),
    ))
}

fn truncated(bytes: &[u8]) -> String {
    let end = bytes.len().min(ERROR_ARGUMENT_BYTES_MAX);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Redis's error for an unknown command: the name and the first arguments, quoted.
fn unknown_command(argv: &[&[u8]]) -> CommandError {
    let mut arguments = String::new();
    for arg in &argv[1..] {
        if arguments.len() >= ERROR_ARGUMENT_BYTES_MAX {
            break;
        }
        let room = ERROR_ARGUMENT_BYTES_MAX - arguments.len();
        let text = String::from_utf8_lossy(&arg[..arg.len().min(room)]).into_owned();
        arguments.push('\'');
        arguments.push_str(&text);
        arguments.push_str("' ");
    }
    CommandError::new(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncated(argv[0]),
        arguments
    ))
}
