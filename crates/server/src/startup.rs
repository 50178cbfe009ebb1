//! From a command line to a running server: configuration, logging, runtime, listeners,
//! signals, shutdown.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::command::CommandTable;
use crate::config::{command_line_to_text, Config, ConfigSource, REDIS_VERSION};
use crate::server::Server;

/// Runs the server; returns the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    if matches!(args.first().map(String::as_str), Some("-v" | "--version")) {
        println!(
            "Cinnabar server v={} (Redis {REDIS_VERSION} compatible) bits=64",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("Usage: cinnabar-server [/path/to/redis.conf] [--option value ...]");
        println!("       cinnabar-server --version");
        println!("Examples:\n       cinnabar-server --port 7777\n       cinnabar-server /etc/redis/6379.conf --loglevel verbose");
        return 0;
    }
    let config_file = args
        .first()
        .filter(|first| !first.starts_with("--") && first.as_str() != "-")
        .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| std::path::PathBuf::from(path)));
    let mut config = match load_config(&args) {
        Ok(config) => config,
        Err(report) => {
            eprintln!("{report}");
            return 1;
        }
    };
    if config.get("dir").is_empty() {
        let cwd = std::env::current_dir()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|_| ".".into());
        let _ = config.set_many(&[("dir".into(), vec![cwd])], ConfigSource::Startup);
    } else {
        let dir = config.get("dir");
        if let Err(error) = std::env::set_current_dir(&dir) {
            eprintln!("Can't chdir to '{dir}': {error}");
            return 1;
        }
        if let Ok(absolute) = std::env::current_dir() {
            let _ = config.set_many(
                &[("dir".into(), vec![absolute.display().to_string()])],
                ConfigSource::Startup,
            );
        }
    }
    if let Err(error) = init_logging(&config) {
        eprintln!("Can't open the log file: {error}");
        return 1;
    }
    config.flush_startup_notes();
    let pidfile = create_pidfile(&config.get("pidfile"));
    let configured_workers = config.get_i64("worker-threads") as usize;
    let workers = if configured_workers == 0 {
        std::thread::available_parallelism()
            .map(|count| count.get())
            .unwrap_or(1)
    } else {
        configured_workers
    };
    crate::allocator::register_current_thread();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("cinnabar-worker")
        .on_thread_start(|| {
            crate::allocator::register_current_thread();
            crate::stats::claim_stripe();
        })
        .on_thread_stop(|| {
            crate::stats::release_stripe();
            crate::allocator::unregister_current_thread();
        })
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Failed to start the runtime: {error}");
            return 1;
        }
    };
    config.file = config_file;
    let mut commands = CommandTable::from_specs();
    crate::families::register_all(&mut commands);
    commands.retain_implemented();
    for (name, new_name, error) in config.take_renames() {
        if !commands.rename(&name, &new_name) {
            eprintln!("{}", error.report());
            return 1;
        }
    }
    let server = Arc::new(Server::new(config, commands, workers));
    server.refresh_derived_config();
    server.set_self_reference(Arc::downgrade(&server));
    crate::client_eviction::apply_config(&server);
    if let Err(message) = crate::families::acl::load_users_at_startup(&server) {
        tracing::warn!("{message}");
        eprintln!("{message}");
        return 1;
    }
    let code = runtime.block_on(serve(server));
    if let Some(path) = pidfile {
        tracing::info!("Removing the pid file.");
        let _ = std::fs::remove_file(path);
    }
    code
}

/// Writes the process id to `pidfile` when one is configured, as Redis does (a failure is
/// logged, not fatal). Returns the path to remove at exit.
fn create_pidfile(path: &str) -> Option<std::path::PathBuf> {
    if path.is_empty() {
        return None;
    }
    match std::fs::write(path, format!("{}\n", std::process::id())) {
        Ok(()) => std::fs::canonicalize(path).ok(),
        Err(error) => {
            tracing::warn!("Failed to write PID file: {error}");
            None
        }
    }
}

/// What the server runs with when started without a configuration file: the lines of the
/// `redis.conf` Redis ships that differ from its compiled-in defaults and matter before a
/// client can connect. Options on the command line override them. A configuration file
/// replaces them: like Redis, a file without `bind` listens on every interface (`* -::*`,
/// protected mode still refusing remote clients while no password is set).
const EMBEDDED_DEFAULT_CONFIG: &str = "bind 127.0.0.1 -::1\n";

fn load_config(args: &[String]) -> Result<Config, String> {
    let (file, text) = command_line_to_text(args)?;
    let config = Config::default();
    let mut full = String::new();
    if let Some(path) = &file {
        let content = if path == "-" {
            let mut stdin = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin)
                .map_err(|error| format!("Can't read config from stdin: {error}"))?;
            stdin
        } else {
            std::fs::read_to_string(path)
                .map_err(|error| format!("Fatal error, can't open config file '{path}': {error}"))?
        };
        full.push_str(&content);
        full.push('\n');
    } else {
        full.push_str(EMBEDDED_DEFAULT_CONFIG);
    }
    full.push_str(&text);
    config.load(&full).map_err(|error| error.report())?;
    Ok(config)
}

/// Binds a listener on every `bind` address at `port`; addresses marked optional (`-::1`) may
/// fail. None for port 0 (no TCP listener).
pub fn bind_listeners(binds: &str, port: u16) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    if port == 0 {
        return Ok(listeners);
    }
    for address in binds.split_whitespace() {
        let (optional, address) = match address.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, address),
        };
        let ip = match address {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        let socket: SocketAddr = match format!("{ip}:{port}")
            .parse()
            .or_else(|_| format!("[{ip}]:{port}").parse())
        {
            Ok(socket) => socket,
            Err(_) => {
                tracing::warn!("Invalid bind address '{address}'");
                if optional {
                    continue;
                }
                return Err(format!("Invalid bind address '{address}'"));
            }
        };
        match bind(socket) {
            Ok(listener) => listeners.push(listener),
            Err(error) if optional => {
                tracing::debug!("Skipping optional bind address {address}: {error}");
            }
            Err(error) => {
                tracing::warn!(
                    "Warning: Could not create server TCP listening socket {address}:{port}: {error}"
                );
                return Err(format!("Failed listening on port {port} (tcp)"));
            }
        }
    }
    Ok(listeners)
}

async fn serve(server: Arc<Server>) -> i32 {
    let port = server.config.get_i64("port") as u16;
    let binds = server.config.get("bind");
    let listeners = match bind_listeners(&binds, port) {
        Ok(listeners) => listeners,
        Err(message) => {
            tracing::warn!("{message}, aborting.");
            return 1;
        }
    };
    server
        .port
        .store(port as u64, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        "Cinnabar {} (Redis {REDIS_VERSION} compatible), {} worker threads, port {port}, PID: {}",
        env!("CARGO_PKG_VERSION"),
        server.worker_threads,
        std::process::id()
    );
    tracing::info!("Server initialized");
    let unix_socket = match bind_unix_socket(&server) {
        Ok(unix_socket) => unix_socket,
        Err(message) => {
            tracing::warn!("{message}");
            return 1;
        }
    };
    // Clients may connect while the dataset loads: they get LOADING until it is done.
    server.loading.begin();
    server.start_accepting(listeners);
    if let Some((listener, path)) = unix_socket {
        tokio::spawn(crate::connection::accept_unix_loop(
            server.clone(),
            listener,
            path,
        ));
    }
    let loader = server.clone();
    let loaded = tokio::task::spawn_blocking(move || load_dataset(&loader)).await;
    if !matches!(loaded, Ok(true)) {
        // Still loading, as clients see it, until the process exits: a dataset that failed
        // to load is never served, not even for the moment before the exit.
        return 1;
    }
    server.loading.end();
    let replicaof = server.config.get("replicaof");
    if let Some((host, port)) = replicaof.split_once(' ') {
        if let Ok(port) = port.parse::<u16>() {
            crate::replica::follow(&server, host.to_string(), port);
        }
    }
    tokio::spawn(crate::expiry::active_expiry_loop(server.clone()));
    tokio::spawn(crate::server::cron(server.clone()));
    tracing::info!("Ready to accept connections tcp");
    loop {
        match wait_for_shutdown(&server).await {
            ShutdownCause::Command => break,
            ShutdownCause::Signal(name) => {
                if final_save_on_signal(&server, name) {
                    server.request_shutdown();
                    break;
                }
                tracing::warn!(
                    "{name} received but errors trying to shut down the server, check the logs for more information"
                );
            }
        }
    }
    crate::aof::shutdown(&server);
    let unix_socket = server.config.get("unixsocket");
    if !unix_socket.is_empty() {
        tracing::info!("Removing the unix socket file.");
        let _ = std::fs::remove_file(&unix_socket);
    }
    tracing::warn!("Redis is now ready to exit, bye bye...");
    0
}

/// Listens on `unixsocket` when set, as Redis does: a file already at the path is removed
/// first, and `unixsocketperm` (when not 0) sets the socket's permissions.
fn bind_unix_socket(
    server: &Server,
) -> Result<Option<(tokio::net::UnixListener, Arc<str>)>, String> {
    let path = server.config.get("unixsocket");
    if path.is_empty() {
        return Ok(None);
    }
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|error| format!("Failed opening Unix socket: {error}"))?;
    let permissions = u32::from_str_radix(&server.config.get("unixsocketperm"), 8).unwrap_or(0);
    if permissions != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(permissions))
            .map_err(|error| format!("Failed opening Unix socket: {error}"))?;
    }
    tracing::info!("The server is now ready to accept connections at {path}");
    Ok(Some((listener, Arc::from(path.as_str()))))
}

/// Loads the RDB file, or the AOF when `appendonly` is on; false (logged) when the server
/// must stop.
fn load_dataset(server: &Server) -> bool {
    match crate::rdb::load_at_startup(server) {
        Ok(()) => {}
        Err(crate::rdb::StartupLoadError::Unreadable(error)) => {
            tracing::warn!("Fatal error loading the DB: {error}. Exiting.");
            return false;
        }
        Err(crate::rdb::StartupLoadError::Corrupt(reason)) => {
            // Redis's wording (operators and tests look for "Internal error in RDB"), then,
            // as Redis runs redis-check-rdb on the file, the checker's report.
            tracing::warn!("Internal error in RDB reading the file -> {reason}");
            let (_, lines) = crate::check::rdb::report(&crate::rdb::rdb_path(server));
            for line in lines {
                tracing::warn!("{line}");
            }
            tracing::warn!("Terminating server after rdb file reading failure.");
            return false;
        }
    }
    if let Err(message) = crate::aof::open_at_startup(server) {
        tracing::warn!("{message}");
        eprintln!("{message}");
        return false;
    }
    true
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    if address.is_ipv6() {
        // Keep the IPv6 socket IPv6-only, as Redis does, so `* -::*` can bind both.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a valid socket with a pointer to a live c_int of the right size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    socket.bind(address)?;
    socket.listen(511)
}

/// What ended the wait for shutdown.
enum ShutdownCause {
    /// SHUTDOWN (it saved, if asked, and requested the shutdown itself).
    Command,
    /// SIGTERM or SIGINT: the server saves per `shutdown-on-sigterm` / `shutdown-on-sigint`.
    Signal(&'static str),
}

async fn wait_for_shutdown(server: &Server) -> ShutdownCause {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let shutdown = server.shutdown.notified();
    tokio::pin!(shutdown);
    if server.is_shutting_down() {
        return ShutdownCause::Command;
    }
    tokio::select! {
        _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending().await } } => {
            tracing::warn!("Received SIGTERM scheduling shutdown...");
            ShutdownCause::Signal("SIGTERM")
        }
        _ = async { match interrupt.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending().await } } => {
            tracing::warn!("Received SIGINT scheduling shutdown...");
            ShutdownCause::Signal("SIGINT")
        }
        _ = &mut shutdown => ShutdownCause::Command,
    }
}

/// A signal's final save, as Redis's `prepareForShutdown`: with save points (or the `save`
/// flag of `shutdown-on-sig*`), unless `nosave`, the dataset is saved; a failed save keeps the
/// server running unless `force`. Returns whether the server may exit.
fn final_save_on_signal(server: &Server, signal: &str) -> bool {
    let option = if signal == "SIGINT" {
        "shutdown-on-sigint"
    } else {
        "shutdown-on-sigterm"
    };
    let flags = server.config.get(option);
    let has = |flag: &str| flags.split_whitespace().any(|word| word == flag);
    let save_points = crate::rdb::has_save_points(server);
    if has("nosave") || !(has("save") || save_points) {
        return true;
    }
    tracing::warn!("Saving the final RDB snapshot before exiting.");
    match crate::rdb::save_everything(server) {
        Ok(()) => true,
        Err(error) if has("force") => {
            tracing::warn!("Error trying to save the DB ({error}). Exit anyway.");
            true
        }
        Err(error) => {
            tracing::warn!("Error trying to save the DB ({error}), can't exit.");
            false
        }
    }
}

/// Log lines in Redis's layout: `pid:M 21 Nov 2026 23:02:01.123 * message`.
struct RedisFormat;

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::TRACE | Level::DEBUG => '.',
            Level::INFO => '*',
            Level::WARN | Level::ERROR => '#',
        };
        write!(
            writer,
            "{}:M {} {} ",
            std::process::id(),
            format_log_time(std::time::SystemTime::now()),
            level
        )?;
        context.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `21 Nov 2026 23:02:01.123` in UTC.
fn format_log_time(time: std::time::SystemTime) -> String {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs() as i64;
    let milliseconds = since_epoch.subsec_millis();
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{day:02} {} {year} {:02}:{:02}:{:02}.{milliseconds:03}",
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

fn init_logging(config: &Config) -> std::io::Result<()> {
    let level = match config.get("loglevel").as_str() {
        "debug" | "verbose" => Some(Level::DEBUG),
        "notice" => Some(Level::INFO),
        "warning" => Some(Level::WARN),
        _ => None,
    };
    let Some(level) = level else {
        return Ok(());
    };
    let logfile = config.get("logfile");
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(RedisFormat);
    if logfile.is_empty() {
        let _ = builder.with_writer(std::io::stdout).try_init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logfile)?;
        let file = std::sync::Mutex::new(file);
        let _ = builder.with_writer(file).try_init();
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_log_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn log_time_is_civil_utc() {
        let time = UNIX_EPOCH + Duration::from_millis(1_795_302_121_123);
        assert_eq!(format_log_time(time), "21 Nov 2026 23:02:01.123");
        assert_eq!(format_log_time(UNIX_EPOCH), "01 Jan 1970 00:00:00.000");
    }
}
