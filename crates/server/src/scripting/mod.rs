//! Lua scripting (EVAL, EVALSHA, FCALL and their `_RO` forms) and function libraries.
//!
//! Model.
//! - One Lua 5.1 interpreter (`engine::Engine`) serves the whole server, behind a mutex. Scripts
//!   are compiled once and cached by SHA1 (`SCRIPT LOAD`, `EVAL`); function libraries
//!   (`FUNCTION LOAD`) register their callbacks in the same interpreter.
//! - Atomicity: a script may touch keys it did not declare, so it runs alone. `EVAL` and friends
//!   carry the table flag `EXCLUSIVE`: `connection::execute` enters the script barrier
//!   (`crate::barrier`) in exclusive mode for them, every other command in shared mode. While
//!   exclusive, the script locks shards on demand through a [`ScriptScope`] and keeps them to
//!   its end, so its writes, the expired keys it met and the blocked clients it made ready are
//!   settled exactly as for EXEC: its writes are propagated together (wrapped in MULTI/EXEC when
//!   several) and blocked clients are served after it. Inside EXEC (which holds every shard when
//!   it queues a script) the script borrows EXEC's scope instead.
//! - Commands called from Lua run through [`engine`]'s `call_command`: the same handlers, with
//!   a script client (the caller's database; SELECT changes only the script's), their reply
//!   written as RESP and parsed back (`resp::parse_reply`) into Lua values (`conversion`).
//! - Timeouts: a Lua hook checks the clock; past `busy-reply-threshold` the script is marked
//!   busy in [`Running`] (atomics, readable without any lock), and other clients waiting at the
//!   barrier give up with BUSY. SCRIPT KILL / FUNCTION KILL (`allow_busy`, they bypass the
//!   barrier) set the kill flag the hook obeys.
//! - Libraries exposed to Lua, in Rust: `cjson`, `cmsgpack`, `bit`, `struct`.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod conversion;
pub mod engine;
pub mod sha1;
mod stack_call;
pub mod structs;

use std::cell::{RefCell, RefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use store::Shard;

use crate::context::HeldScope;
use crate::server::Server;

/// What the rest of the server sees of scripting.
#[derive(Default)]
pub struct Scripting {
    pub engine: Mutex<Option<engine::Engine>>,
    pub running: Running,
    /// FUNCTION STATS counts, readable while a script runs.
    pub library_count: AtomicUsize,
    /// Scripts in the EVAL cache (INFO memory `number_of_cached_scripts`).
    pub script_count: AtomicUsize,
    pub function_count: AtomicUsize,
}

impl Scripting {
    /// The interpreter, created on first use.
    pub fn engine(&self) -> parking_lot::MappedMutexGuard<'_, engine::Engine> {
        MutexGuard::map(self.engine.lock(), |engine| {
            engine.get_or_insert_with(engine::Engine::new)
        })
    }
}

/// The script running now (if any), in atomics so that other threads can read it without locks.
#[derive(Default)]
pub struct Running {
    pub active: AtomicBool,
    /// Whether it is a function (FCALL) rather than a script (EVAL).
    pub function: AtomicBool,
    pub started_ms: AtomicU64,
    /// Past `busy-reply-threshold`: other clients get BUSY.
    pub busy: AtomicBool,
    pub kill_requested: AtomicBool,
    /// How often the busy script handed its thread's tasks to another worker.
    pub handoffs: std::sync::atomic::AtomicU32,
    /// It ran a write command (SCRIPT KILL refuses: UNKILLABLE).
    pub wrote: AtomicBool,
    /// Memory was over `maxmemory` when it started and it may not ignore that (no `allow-oom`):
    /// its first write command is refused with OOM, as Redis does.
    pub deny_oom: AtomicBool,
    /// The Lua hook runs on every line (set once a kill was requested; see `engine::hook`).
    pub hook_escalated: AtomicBool,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may run `noscript` commands (a test knob).
    pub noscript_allowed: AtomicBool,
    /// Name and command of the running function (FUNCTION STATS).
    pub description: Mutex<Option<(Vec<u8>, Vec<Vec<u8>>)>>,
}

impl Running {
    /// The BUSY error other clients get, if the running script is past its threshold.
    pub fn busy_error(&self) -> Option<&'static str> {
        if !self.busy.load(Ordering::Acquire) {
            return None;
        }
        Some(if self.function.load(Ordering::Relaxed) {
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        } else {
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        })
    }
}

/// Shard locks a script takes on demand (it holds the barrier exclusively, so no other command
/// holds or waits for shard locks), kept until the script ends, plus its captured writes.
pub struct ScriptScope<'s> {
    server: &'s Server,
    /// Boxed so that a borrowed guard never moves when more shards are locked.
    held: RefCell<Vec<Box<((usize, usize), RefCell<MutexGuard<'s, Shard>>)>>>,
    captured: RefCell<Vec<(usize, Vec<Vec<u8>>)>>,
    /// `redis.set_repl`: whether writes are propagated at all.
    pub replicate: std::cell::Cell<bool>,
}

impl<'s> ScriptScope<'s> {
    pub fn new(server: &'s Server) -> Self {
        ScriptScope {
            server,
            held: RefCell::new(Vec::new()),
            captured: RefCell::new(Vec::new()),
            replicate: std::cell::Cell::new(true),
        }
    }

    /// Ends the script: propagates its writes, then expired keys and blocked clients, unlocks.
    pub fn finish(self) {
        let server = self.server;
        let captured = self.captured.into_inner();
        server.propagation.append_transaction(&captured);
        let now_ms = crate::server::unix_time_ms();
        for held in self.held.into_inner() {
            let ((database, _), guard) = *held;
            let mut guard = guard.into_inner();
            if guard.has_expired() {
                server.propagate_expired(database, &mut guard);
            }
            if guard.blocked.has_ready() {
                crate::blocking::serve_ready(server, database, &mut guard, now_ms);
            }
        }
    }
}

impl HeldScope for ScriptScope<'_> {
    fn borrow(&self, database: usize, index: usize) -> RefMut<'_, Shard> {
        let cell: *const RefCell<MutexGuard<'_, Shard>> = {
            let mut held = self.held.borrow_mut();
            let position = match held.iter().position(|entry| entry.0 == (database, index)) {
                Some(position) => position,
                None => {
                    let guard = self.server.keyspace.database(database).lock_shard(index);
                    held.push(Box::new(((database, index), RefCell::new(guard))));
                    held.len() - 1
                }
            };
            &held[position].1
        };
        // SAFETY: every entry is boxed and none is removed or replaced before `finish` consumes
        // the scope, so the cell outlives `&self` even when the vector grows.
        let cell = unsafe { &*cell };
        RefMut::map(cell.borrow_mut(), |guard| &mut **guard)
    }

    fn capture(&self, database: usize, args: &[&[u8]]) {
        if self.replicate.get() {
            self.captured
                .borrow_mut()
                .push((database, args.iter().map(|arg| arg.to_vec()).collect()));
        }
    }
}

/// Script flags (the `#!lua flags=...` shebang, function flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
    /// A script without a shebang (EVAL's legacy mode).
    pub legacy: bool,
}

impl ScriptFlags {
    /// Sets one flag by its name; false for an unknown name.
    pub fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot_keys = true,
            _ => return false,
        }
        true
    }

    /// The flags' names, in Redis's order (FUNCTION LIST).
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (set, name) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ] {
            if set {
                names.push(name);
            }
        }
        names
    }
}

/// Reads an EVAL script's shebang: its flags and the body to compile (the shebang line
/// becomes empty, so that line numbers stay right).
pub fn parse_eval_shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        let flags = ScriptFlags {
            legacy: true,
            ..Default::default()
        };
        return Ok((flags, body.to_vec()));
    }
    let end = body
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(body.len());
    let line = &body[2..end];
    let mut parts = line
        .split(|&byte| byte == b' ')
        .filter(|part| !part.is_empty());
    let engine = parts.next().unwrap_or(b"");
    if engine != b"lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for name in list
            .split(|&byte| byte == b',')
            .filter(|name| !name.is_empty())
        {
            if !flags.set(name) {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    let mut compiled = body[end..].to_vec();
    if compiled.is_empty() {
        compiled.push(b'\n');
    }
    Ok((flags, compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang() {
        let (flags, body) = parse_eval_shebang(b"return 1").unwrap();
        assert!(flags.legacy);
        assert_eq!(body, b"return 1");
        let (flags, body) =
            parse_eval_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.no_writes && flags.allow_oom && !flags.legacy);
        assert_eq!(body, b"\nreturn 1");
        assert_eq!(
            parse_eval_shebang(b"#!python\n").unwrap_err(),
            "ERR Unexpected engine in script shebang: python"
        );
        assert_eq!(
            parse_eval_shebang(b"#!lua foo=bar\n").unwrap_err(),
            "ERR Unknown lua shebang option: foo=bar"
        );
        assert_eq!(
            parse_eval_shebang(b"#!lua flags=bad\n").unwrap_err(),
            "ERR Unexpected flag in script shebang: bad"
        );
    }
}
