//! The slow log: the last `slowlog-max-len` commands that ran for at least
//! `slowlog-log-slower-than` microseconds (-1: never, 0: every command), as Redis keeps them.
//!
//! Recording costs one atomic load and a comparison when the command was fast; only slow
//! commands take the log's lock. An entry keeps at most [`ARGUMENTS_MAX`] arguments (the last
//! one then says how many more there were) and at most [`ARGUMENT_BYTES_MAX`] bytes of each
//! (followed by how many more bytes there were), with secrets redacted (the values of sensitive
//! CONFIG SET options, AUTH and HELLO passwords, MIGRATE credentials, ACL user definitions).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::client::Client;
use crate::server::Server;

/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const ARGUMENTS_MAX: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const ARGUMENT_BYTES_MAX: usize = 128;

const REDACTED: &[u8] = b"(redacted)";

/// One logged command.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: u64,
    /// Unix time (seconds) when it was logged.
    pub time_s: u64,
    pub duration_us: u64,
    pub arguments: Vec<Vec<u8>>,
    /// `ip:port` of the client.
    pub peer: String,
    pub client_name: Vec<u8>,
}

#[derive(Default)]
pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
}

impl SlowLog {
    /// Logs the command when it was slow enough.
    pub fn record_if_slow(
        &self,
        server: &Server,
        client: &Client,
        argv: &[&[u8]],
        duration_us: u64,
    ) {
        let hot = &server.config.hot;
        let threshold_us = hot.slowlog_log_slower_than_us.load(Ordering::Relaxed);
        if threshold_us < 0 || duration_us < threshold_us as u64 {
            return;
        }
        let max_len = hot.slowlog_max_len.load(Ordering::Relaxed) as usize;
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time_s: crate::server::unix_time_ms() / 1000,
            duration_us,
            arguments: logged_arguments(server, argv),
            peer: client.shared.address_text(),
            client_name: client.shared.name.lock().clone(),
        };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// The newest `count` entries (all of them for `None`), newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let entries = self.entries.lock();
        let count = count.unwrap_or(entries.len());
        entries.iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// Drops the oldest entries beyond `max_len` (after CONFIG SET slowlog-max-len).
    pub fn trim(&self, max_len: usize) {
        self.entries.lock().truncate(max_len);
    }
}

/// Which arguments of a command are secrets (positions in `argv`).
fn redacted_positions(server: &Server, argv: &[&[u8]]) -> Vec<usize> {
    let is = |index: usize, word: &str| {
        argv.get(index)
            .is_some_and(|arg| arg.eq_ignore_ascii_case(word.as_bytes()))
    };
    let mut positions = Vec::new();
    if is(0, "auth") {
        positions.extend(1..argv.len());
    } else if is(0, "hello") {
        let mut index = 2;
        while index < argv.len() {
            if is(index, "auth") {
                positions.extend([index + 1, index + 2]);
                index += 3;
            } else if is(index, "setname") {
                index += 2;
            } else {
                index += 1;
            }
        }
    } else if is(0, "migrate") {
        for index in 6..argv.len() {
            if is(index, "auth") {
                positions.push(index + 1);
                break;
            }
            if is(index, "auth2") {
                positions.extend([index + 1, index + 2]);
                break;
            }
        }
    } else if is(0, "acl") && (is(1, "setuser") || is(1, "getuser") || is(1, "deluser")) {
        positions.extend(2..argv.len());
    } else if is(0, "config") && is(1, "set") {
        for pair in (2..argv.len()).step_by(2) {
            let name = String::from_utf8_lossy(argv[pair]);
            let sensitive = crate::config::find_option(&name)
                .is_some_and(|spec| spec.has(crate::config::option_flags::SENSITIVE));
            if sensitive {
                positions.push(pair + 1);
            }
        }
    }
    let _ = server;
    positions.retain(|&position| position < argv.len());
    positions
}

/// The arguments as an entry keeps them: redacted, at most [`ARGUMENTS_MAX`], each at most
/// [`ARGUMENT_BYTES_MAX`] bytes.
fn logged_arguments(server: &Server, argv: &[&[u8]]) -> Vec<Vec<u8>> {
    let redacted = redacted_positions(server, argv);
    let kept = argv.len().min(ARGUMENTS_MAX);
    (0..kept)
        .map(|index| {
            if index == kept - 1 && argv.len() > kept {
                return format!("... ({} more arguments)", argv.len() - kept + 1).into_bytes();
            }
            if redacted.contains(&index) {
                return REDACTED.to_vec();
            }
            let arg = argv[index];
            if arg.len() > ARGUMENT_BYTES_MAX {
                let mut truncated = arg[..ARGUMENT_BYTES_MAX].to_vec();
                truncated.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - ARGUMENT_BYTES_MAX).as_bytes(),
                );
                return truncated;
            }
            arg.to_vec()
        })
        .collect()
}
