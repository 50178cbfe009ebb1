//! MONITOR: every command a client runs, after it ran, as one line to every monitoring client:
//! `+<unix seconds>.<micros> [<db> <address>] "arg" ...` with arguments quoted as Redis's
//! `sdscatrepr` quotes them. Administrative commands and SKIP_MONITOR commands are not shown;
//! secrets (AUTH, HELLO ... AUTH, MIGRATE ... AUTH/AUTH2) are shown as `(redacted)`.
//!
//! Cost when nobody monitors: one relaxed atomic load per command.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::arguments::is;
use crate::command::{flags, Command};
use crate::pubsub::{BufferLimit, Mailbox};

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    mailboxes: Mutex<Vec<Arc<Mailbox>>>,
}

impl Monitors {
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn add(&self, mailbox: &Arc<Mailbox>) {
        let mut mailboxes = self.mailboxes.lock();
        if !mailboxes.iter().any(|other| Arc::ptr_eq(other, mailbox)) {
            mailboxes.push(mailbox.clone());
            self.count.store(mailboxes.len(), Ordering::Relaxed);
        }
    }

    pub fn remove(&self, id: u64) {
        let mut mailboxes = self.mailboxes.lock();
        mailboxes.retain(|mailbox| mailbox.client.id != id);
        self.count.store(mailboxes.len(), Ordering::Relaxed);
    }

    /// Whether `id` is a monitoring client.
    pub fn contains(&self, id: u64) -> bool {
        self.active()
            && self
                .mailboxes
                .lock()
                .iter()
                .any(|mailbox| mailbox.client.id == id)
    }

    /// Shows `args` (a command that ran) from `source` (`ip:port`, `lua`) in `database`.
    pub fn feed(&self, command: &Command, database: usize, source: &str, args: &[&[u8]]) {
        if !self.active() || command.has(flags::ADMIN) || command.has(flags::SKIP_MONITOR) {
            return;
        }
        self.feed_line(database, source, args);
    }

    /// Feeds a script's own call (EVAL, FCALL ...: flagged skip-monitor, they show themselves
    /// before the commands they run, as Redis does).
    pub fn feed_script(&self, database: usize, source: &str, args: &[&[u8]]) {
        if self.active() {
            self.feed_line(database, source, args);
        }
    }

    fn feed_line(&self, database: usize, source: &str, args: &[&[u8]]) {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_micros() as u64)
            .unwrap_or(0);
        let line = format_line(now_us, database, source, args);
        let mailboxes: Vec<Arc<Mailbox>> = self.mailboxes.lock().clone();
        for mailbox in mailboxes {
            mailbox.deliver(&line, BufferLimit::default(), now_us / 1000);
        }
    }
}

/// Which arguments of `args` are secrets.
fn redacted(args: &[&[u8]]) -> Vec<bool> {
    let mut hidden = vec![false; args.len()];
    let name = args[0];
    if is(name, "AUTH") {
        for flag in hidden.iter_mut().skip(1) {
            *flag = true;
        }
    } else if is(name, "HELLO") {
        let mut index = 2;
        while index < args.len() {
            if is(args[index], "AUTH") && index + 2 < args.len() {
                hidden[index + 1] = true;
                hidden[index + 2] = true;
                index += 3;
            } else {
                index += if is(args[index], "SETNAME") { 2 } else { 1 };
            }
        }
    } else if is(name, "MIGRATE") {
        let mut index = 6;
        while index < args.len() {
            if is(args[index], "AUTH") && index + 1 < args.len() {
                hidden[index + 1] = true;
                index += 2;
            } else if is(args[index], "AUTH2") && index + 2 < args.len() {
                hidden[index + 1] = true;
                hidden[index + 2] = true;
                index += 3;
            } else if is(args[index], "KEYS") {
                break;
            } else {
                index += 1;
            }
        }
    }
    hidden
}

/// One MONITOR line.
pub fn format_line(now_us: u64, database: usize, source: &str, args: &[&[u8]]) -> Vec<u8> {
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now_us / 1_000_000,
        now_us % 1_000_000,
        database,
        source
    )
    .into_bytes();
    let hidden = redacted(args);
    for (arg, hide) in args.iter().zip(hidden) {
        line.push(b' ');
        if hide {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(&mut line, arg);
        }
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Appends `bytes` quoted as Redis's `sdscatrepr`.
pub fn quote(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(byte),
            _ => out.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_as_sdscatrepr_and_redact_secrets() {
        let line = format_line(
            1_700_000_000_123_456,
            0,
            "127.0.0.1:12345",
            &[b"SET", b"a b", b"q\"\\\n\r\t\x07\x08\x00\xff"],
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+1700000000.123456 [0 127.0.0.1:12345] \"SET\" \"a b\" \"q\\\"\\\\\\n\\r\\t\\a\\b\\x00\\xff\"\r\n"
        );
        let line = format_line(5, 2, "lua", &[b"auth", b"user", b"secret"]);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+0.000005 [2 lua] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
        let line = format_line(0, 0, "x", &[b"hello", b"3", b"AUTH", b"u", b"p"]);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+0.000000 [0 x] \"hello\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"
        );
    }
}
