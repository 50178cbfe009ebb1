//! Access control lists: users, what each may run, which keys and channels it may touch, and
//! the security log (ACL LOG).
//!
//! Model. A [`User`] is an immutable value. The registry ([`Acl`]) maps names to `Arc<User>`,
//! replaces a user whole when ACL SETUSER changes it, and bumps a generation counter. A
//! connection keeps its user's `Arc` and looks it up again only when the generation moved, so a
//! change applies from every client's next command and costs one relaxed load when nothing
//! changed. A user holds a root [`Selector`] and any number of extra ones (the `(...)` rules); a
//! command is allowed when one selector allows the command, every key it names (with the access
//! its key specs declare: read, write) and every channel. A user whose selector allows
//! everything is `unrestricted`: the check is then one branch (the default user's case).
//!
//! Rules apply to a copy of the user, which replaces the original only when every rule applied:
//! a bad ACL SETUSER changes nothing. Command rules are kept in the order given (Redis 7.2's
//! `command_rules`); ACL LIST and ACL GETUSER print them back.
//!
//! This module knows users and rules, not RESP nor connections: the ACL command is
//! `families/acl.rs`, the checks before a command runs are in `connection.rs`.
//!
//! To extend: a user-level rule goes in [`User::apply`], a selector rule in
//! [`Selector::apply`]; a new refusal reason in [`Denial`] with its log name.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use crate::command::{flags, Command, CommandTable};

/// Command categories (`+@<category>`), in Redis's order.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Most bits ACL GENPASS makes.
pub const GENPASS_BITS_MAX: i64 = 4096;
/// Bits ACL GENPASS makes by default.
pub const GENPASS_BITS_DEFAULT: i64 = 256;
/// Hexadecimal digits of a password hash (SHA-256).
pub const PASSWORD_HASH_HEX_BYTES: usize = 64;
/// Log entries alike and this close in time are one entry with a count.
pub const LOG_GROUPING_MS: u64 = 60_000;
/// Newest log entries searched for one to merge with.
const LOG_MERGE_SCAN_MAX: usize = 10;

/// Why access was refused. The order is Redis's: when no selector allows a command, the
/// highest reason is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    Command = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Denial {
    /// The `reason` of an ACL LOG entry.
    pub fn log_name(self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key => "key",
            Denial::Auth => "auth",
            Denial::Channel => "channel",
        }
    }
}

/// Where a refused command came from (ACL LOG `context`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    TopLevel,
    Multi,
    Lua,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::TopLevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

/// A refused command: why, and the position of the argument at fault (0 for the command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub denial: Denial,
    pub position: usize,
}

impl Refusal {
    /// The message after `-NOPERM ` (Redis's `getAclErrorMessage`); `verbose` names the key or
    /// channel (ACL DRYRUN).
    pub fn message(&self, user: &User, command: &Command, argv: &[&[u8]], verbose: bool) -> String {
        let name = String::from_utf8_lossy(&user.name);
        let argument = String::from_utf8_lossy(argv.get(self.position).copied().unwrap_or(b""));
        match (self.denial, verbose) {
            (Denial::Key, true) => {
                format!("User {name} has no permissions to access the '{argument}' key")
            }
            (Denial::Key, false) => "No permissions to access a key".to_string(),
            (Denial::Channel, true) => {
                format!("User {name} has no permissions to access the '{argument}' channel")
            }
            (Denial::Channel, false) => "No permissions to access a channel".to_string(),
            (Denial::Command | Denial::Auth, _) => format!(
                "User {name} has no permissions to run the '{}' command",
                command.full_name
            ),
        }
    }
}

/// A rule that cannot apply (Redis's errno cases), with Redis's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownCommand,
    Syntax,
    KeyPatternAfterAll,
    ChannelPatternAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyPatternAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelPatternAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// What rules need besides themselves: the commands, and `acl-pubsub-default`.
pub struct RuleContext<'a> {
    pub commands: &'a CommandTable,
    /// New selectors start with every channel (`acl-pubsub-default allchannels`).
    pub all_channels_by_default: bool,
}

const READ: u8 = 1;
const WRITE: u8 = 2;
const READ_WRITE: u8 = READ | WRITE;

#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    access: u8,
}

impl KeyPattern {
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.access {
            READ => b"%R~",
            WRITE => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// One set of permissions: commands, key patterns, channel patterns.
#[derive(Clone, Debug)]
pub struct Selector {
    /// A bit per command id (see `CommandTable`).
    allowed: Vec<u64>,
    /// Set by `+@all`: commands added later are allowed too; printed as `+@all`.
    future_commands: bool,
    /// Every bit is set and none was cleared since `+@all`: the bitmap need not be read.
    all_commands: bool,
    /// First arguments allowed for commands otherwise denied (`+select|0`), by command id.
    first_arguments: BTreeMap<u32, Vec<Vec<u8>>>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
    /// The command rules in the order given, lower case, without `+@all`/`-@all`.
    rules: Vec<(bool, Vec<u8>)>,
}

/// Looks a command up as ACL rules name it: `get`, `config|get` (any case).
fn lookup<'a>(commands: &'a CommandTable, name: &[u8]) -> Option<&'a Command> {
    let mut parts = name.split(|&byte| byte == b'|');
    let base = commands.get(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) if base.is_container() => base.subcommand(sub),
        _ => None,
    }
}

/// Whether a pattern or user name has a space or a NUL (which ACL files could not hold).
pub fn has_spaces(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&byte| byte.is_ascii_whitespace() || byte == 0 || byte == 0x0b)
}

impl Selector {
    fn new(words: usize, all_channels: bool) -> Selector {
        Selector {
            allowed: vec![0; words],
            future_commands: false,
            all_commands: false,
            first_arguments: BTreeMap::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn allows_everything(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    fn bit(&self, id: u32) -> bool {
        let word = id as usize / 64;
        self.allowed
            .get(word)
            .is_some_and(|bits| bits & (1u64 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: u32, allow: bool) {
        let word = id as usize / 64;
        let Some(bits) = self.allowed.get_mut(word) else {
            return;
        };
        if allow {
            *bits |= 1u64 << (id % 64);
        } else {
            *bits &= !(1u64 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Allows or denies a command, and all its subcommands when it has some.
    fn change_command(&mut self, command: &Command, allow: bool) {
        self.set_bit(command.id, allow);
        self.first_arguments.remove(&command.id);
        for sub in command.subcommands.values() {
            self.set_bit(sub.id, allow);
        }
    }

    /// Records a command rule, dropping earlier rules about the same command (or its
    /// subcommands) so that the list stays short and replays to the same bitmap.
    fn record_rule(&mut self, rule: &[u8], allow: bool) {
        let rule = rule.to_ascii_lowercase();
        self.rules.retain(|(_, existing)| {
            let same = existing == &rule
                || (existing.len() > rule.len()
                    && existing.starts_with(&rule)
                    && existing[rule.len()] == b'|');
            !same
        });
        self.rules.push((allow, rule));
    }

    fn set_category(&mut self, commands: &CommandTable, category: &str, allow: bool) {
        for command in commands.iter() {
            if command.acl_categories.iter().any(|name| name == category) {
                self.change_command(command, allow);
            }
            for sub in command.subcommands.values() {
                if sub.acl_categories.iter().any(|name| name == category) {
                    self.change_command(sub, allow);
                }
            }
        }
    }

    /// Applies one selector rule (keys, channels, commands).
    pub fn apply(&mut self, op: &[u8], context: &RuleContext) -> Result<(), RuleError> {
        let keyword = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if keyword("allkeys") || op == b"~*" {
            self.all_keys = true;
            self.keys.clear();
        } else if keyword("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if keyword("allchannels") || op == b"&*" {
            self.all_channels = true;
            self.channels.clear();
        } else if keyword("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if keyword("allcommands") || keyword("+@all") {
            self.allowed.iter_mut().for_each(|bits| *bits = u64::MAX);
            self.future_commands = true;
            self.all_commands = true;
            self.rules.clear();
            self.first_arguments.clear();
        } else if keyword("nocommands") || keyword("-@all") {
            self.allowed.iter_mut().for_each(|bits| *bits = 0);
            self.future_commands = false;
            self.all_commands = false;
            self.rules.clear();
            self.first_arguments.clear();
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            self.add_key_pattern(op)?;
        } else if op.first() == Some(&b'&') {
            if self.all_channels {
                return Err(RuleError::ChannelPatternAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|existing| existing == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.all_channels = false;
        } else if op.len() >= 2 && (op[0] == b'+' || op[0] == b'-') && op[1] == b'@' {
            let allow = op[0] == b'+';
            let name = String::from_utf8_lossy(&op[2..]).to_ascii_lowercase();
            let Some(category) = CATEGORIES.iter().find(|category| **category == name) else {
                return Err(RuleError::UnknownCommand);
            };
            self.record_rule(&op[1..], allow);
            self.set_category(context.commands, category, allow);
        } else if op.first() == Some(&b'+') {
            self.allow_command(&op[1..], context)?;
        } else if op.first() == Some(&b'-') {
            let command = lookup(context.commands, &op[1..]).ok_or(RuleError::UnknownCommand)?;
            self.change_command(command, false);
            self.record_rule(command.full_name.as_bytes(), false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// `~pattern`, `%R~pattern`, `%W~pattern`, `%RW~pattern`.
    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyPatternAfterAll);
        }
        let mut access = 0;
        let mut offset = 1;
        if op[0] == b'%' {
            while offset < op.len() {
                let byte = op[offset];
                if byte.eq_ignore_ascii_case(&b'R') && access & READ == 0 {
                    access |= READ;
                } else if byte.eq_ignore_ascii_case(&b'W') && access & WRITE == 0 {
                    access |= WRITE;
                } else if byte == b'~' && access != 0 {
                    offset += 1;
                    break;
                } else {
                    return Err(RuleError::Syntax);
                }
                offset += 1;
            }
        } else {
            access = READ_WRITE;
        }
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|key| key.pattern == pattern) {
            Some(existing) => existing.access |= access,
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                access,
            }),
        }
        self.all_keys = false;
        Ok(())
    }

    /// `+command`, `+command|subcommand`, `+command|first-argument`.
    fn allow_command(&mut self, name: &[u8], context: &RuleContext) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&byte| byte == b'|') else {
            let command = lookup(context.commands, name).ok_or(RuleError::UnknownCommand)?;
            self.change_command(command, true);
            self.record_rule(command.full_name.as_bytes(), true);
            return Ok(());
        };
        let (base, sub) = (&name[..bar], &name[bar + 1..]);
        let command = lookup(context.commands, base).ok_or(RuleError::UnknownCommand)?;
        if command.full_name.contains('|') {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if command.is_container() {
            let sub = command.subcommand(sub).ok_or(RuleError::UnknownCommand)?;
            self.change_command(sub, true);
        } else {
            tracing::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            let allowed = self.first_arguments.entry(command.id).or_default();
            if !allowed
                .iter()
                .any(|existing| existing.eq_ignore_ascii_case(sub))
            {
                allowed.push(sub.to_vec());
            }
        }
        self.record_rule(name, true);
        Ok(())
    }

    /// The command rules as ACL GETUSER prints them: `+@all` or `-@all`, then the rest.
    pub fn describe_commands(&self) -> Vec<u8> {
        let mut out: Vec<u8> = if self.future_commands {
            b"+@all".to_vec()
        } else {
            b"-@all".to_vec()
        };
        for (allow, rule) in &self.rules {
            out.push(b' ');
            out.push(if *allow { b'+' } else { b'-' });
            out.extend_from_slice(rule);
        }
        out
    }

    /// The key patterns as ACL GETUSER prints them.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (index, key) in self.keys.iter().enumerate() {
            if index > 0 {
                out.push(b' ');
            }
            key.describe(&mut out);
        }
        out
    }

    /// The channel patterns as ACL GETUSER prints them.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (index, channel) in self.channels.iter().enumerate() {
            if index > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(channel);
        }
        out
    }

    /// The whole selector as ACL LIST prints it.
    fn describe(&self, out: &mut Vec<u8>) {
        if self.all_keys {
            out.extend_from_slice(b"~* ");
        } else {
            for key in &self.keys {
                key.describe(out);
                out.push(b' ');
            }
        }
        if self.all_channels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for channel in &self.channels {
                out.push(b'&');
                out.extend_from_slice(channel);
                out.push(b' ');
            }
        }
        out.extend_from_slice(&self.describe_commands());
    }

    fn allows_command(&self, command: &Command, argv: &[&[u8]]) -> bool {
        if self.all_commands || command.has(flags::NO_AUTH) || self.bit(command.id) {
            return true;
        }
        let Some(allowed) = self.first_arguments.get(&command.id) else {
            return false;
        };
        let position = if command.full_name.contains('|') {
            2
        } else {
            1
        };
        argv.get(position).is_some_and(|argument| {
            allowed
                .iter()
                .any(|first| first.eq_ignore_ascii_case(argument))
        })
    }

    fn allows_key(&self, key: &[u8], access: u8) -> bool {
        self.all_keys
            || self.keys.iter().any(|pattern| {
                pattern.access & access == access
                    && store::glob::glob_match(&pattern.pattern, key, false)
            })
    }

    /// Whether a channel (or, for PSUBSCRIBE, a pattern, compared literally) is allowed.
    fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels || channel_in_list(&self.channels, channel, is_pattern)
    }

    fn check(
        &self,
        command: &Command,
        argv: &[&[u8]],
        keys: &mut Option<Vec<(usize, u8)>>,
    ) -> Result<(), Refusal> {
        if !self.allows_command(command, argv) {
            return Err(Refusal {
                denial: Denial::Command,
                position: 0,
            });
        }
        if !self.all_keys && !command.key_specs.is_empty() {
            let keys = keys.get_or_insert_with(|| key_accesses(command, argv));
            for &(position, access) in keys.iter() {
                if !self.allows_key(argv[position], access) {
                    return Err(Refusal {
                        denial: Denial::Key,
                        position,
                    });
                }
            }
        }
        if !self.all_channels {
            if let Some((positions, is_pattern)) = channel_positions(command, argv.len()) {
                for position in positions {
                    if !self.allows_channel(argv[position], is_pattern) {
                        return Err(Refusal {
                            denial: Denial::Channel,
                            position,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

fn channel_in_list(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|pattern| {
        if is_pattern {
            pattern == channel
        } else {
            store::glob::glob_match(pattern, channel, false)
        }
    })
}

/// The keys of a command with the access each needs (read: the value is read; write: it is
/// inserted, updated or deleted), as Redis finds them (`crate::key_extraction`).
fn key_accesses(command: &Command, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    use crate::key_extraction::{command_keys, key_flag};
    let read = key_flag("ACCESS");
    let write = key_flag("INSERT") | key_flag("DELETE") | key_flag("UPDATE");
    command_keys(command, argv)
        .into_iter()
        .map(|(position, flags)| {
            let mut access = 0;
            if flags & read != 0 {
                access |= READ;
            }
            if flags & write != 0 {
                access |= WRITE;
            }
            (position, access)
        })
        .collect()
}

/// The channels a command publishes to or subscribes to (positions in argv), and whether they
/// are patterns. Unsubscribing needs no permission.
fn channel_positions(
    command: &Command,
    argument_count: usize,
) -> Option<(std::ops::Range<usize>, bool)> {
    match command.full_name.as_str() {
        "subscribe" | "ssubscribe" => Some((1..argument_count, false)),
        "psubscribe" => Some((1..argument_count, true)),
        "publish" | "spublish" => Some((1..2.min(argument_count), false)),
        _ => None,
    }
}

/// SHA-256 of a password, in lower-case hexadecimal (how users keep passwords).
pub fn hash_password(password: &[u8]) -> String {
    let digest = Sha256::digest(password);
    let mut hex = String::with_capacity(PASSWORD_HASH_HEX_BYTES);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

fn valid_hash(hash: &[u8]) -> bool {
    hash.len() == PASSWORD_HASH_HEX_BYTES
        && hash
            .iter()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
}

/// Compares in time that does not depend on where the strings differ.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A user: flags, passwords and selectors (the first is the root one).
#[derive(Clone, Debug)]
pub struct User {
    pub name: Vec<u8>,
    enabled: bool,
    no_password: bool,
    skip_sanitize_payload: bool,
    /// SHA-256 hashes, hexadecimal, in the order added.
    passwords: Vec<String>,
    selectors: Vec<Selector>,
    /// A selector allows every command, key and channel: checks can be skipped.
    pub unrestricted: bool,
}

impl User {
    /// A new user as Redis creates one: off, no password, no permissions.
    pub fn new(name: &[u8], context: &RuleContext) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            no_password: false,
            skip_sanitize_payload: false,
            passwords: Vec::new(),
            selectors: vec![Selector::new(
                command_words(context.commands),
                context.all_channels_by_default,
            )],
            unrestricted: false,
        }
    }

    /// The default user: on, no password, everything allowed.
    pub fn new_default(context: &RuleContext) -> User {
        let mut user = User::new(b"default", context);
        for rule in ["+@all", "~*", "&*", "on", "nopass"] {
            let applied = user.apply(rule.as_bytes(), context);
            assert!(applied.is_ok(), "default user rule {rule}");
        }
        user
    }

    /// Whether the user may log in without a password.
    pub fn no_password(&self) -> bool {
        self.no_password
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `password` logs this user in.
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.no_password {
            return true;
        }
        let hash = hash_password(password);
        self.passwords
            .iter()
            .any(|known| equal_in_constant_time(known.as_bytes(), hash.as_bytes()))
    }

    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// The selectors besides the root one.
    pub fn extra_selectors(&self) -> &[Selector] {
        &self.selectors[1..]
    }

    /// The flags ACL GETUSER lists, in Redis's order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = vec![if self.enabled { "on" } else { "off" }];
        if self.no_password {
            names.push("nopass");
        }
        names.push(if self.skip_sanitize_payload {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        names
    }

    /// The user's rules as ACL LIST and the ACL file write them (without `user <name> `).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for flag in self.flag_names() {
            out.extend_from_slice(flag.as_bytes());
            out.push(b' ');
        }
        for password in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(password.as_bytes());
            out.push(b' ');
        }
        self.selectors[0].describe(&mut out);
        for selector in &self.selectors[1..] {
            out.extend_from_slice(b" (");
            selector.describe(&mut out);
            out.push(b')');
        }
        out
    }

    /// Applies one rule: a user-level one (on, off, passwords, reset, selectors) or one of the
    /// root selector's.
    pub fn apply(&mut self, op: &[u8], context: &RuleContext) -> Result<(), RuleError> {
        let result = self.apply_rule(op, context);
        self.unrestricted = self.selectors.iter().any(Selector::allows_everything);
        result
    }

    fn apply_rule(&mut self, op: &[u8], context: &RuleContext) -> Result<(), RuleError> {
        let keyword = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if op.is_empty() {
            return Ok(());
        }
        if keyword("on") {
            self.enabled = true;
        } else if keyword("off") {
            self.enabled = false;
        } else if keyword("skip-sanitize-payload") {
            self.skip_sanitize_payload = true;
        } else if keyword("sanitize-payload") {
            self.skip_sanitize_payload = false;
        } else if keyword("nopass") {
            self.no_password = true;
            self.passwords.clear();
        } else if keyword("resetpass") {
            self.no_password = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.no_password = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            let index = self
                .passwords
                .iter()
                .position(|known| *known == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(index);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let selector = selector_from_rules(&op[1..op.len() - 1], context)?;
            self.selectors.push(selector);
        } else if keyword("clearselectors") {
            self.selectors.truncate(1);
        } else if keyword("reset") {
            for rule in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "sanitize-payload",
                "clearselectors",
                "-@all",
            ] {
                let applied = self.apply_rule(rule.as_bytes(), context);
                assert!(applied.is_ok(), "reset rule {rule}");
                if rule == "resetchannels" && context.all_channels_by_default {
                    let applied = self.apply_rule(b"allchannels", context);
                    assert!(applied.is_ok(), "reset rule allchannels");
                }
            }
        } else {
            self.selectors[0].apply(op, context)?;
        }
        Ok(())
    }

    /// Checks a command against every selector: allowed when one selector allows it. The
    /// refusal reported is the highest reason, at the last position, as Redis picks it.
    pub fn check(&self, command: &Command, argv: &[&[u8]]) -> Result<(), Refusal> {
        if self.unrestricted {
            return Ok(());
        }
        let mut keys = None;
        let mut relevant = Refusal {
            denial: Denial::Command,
            position: 0,
        };
        for selector in &self.selectors {
            match selector.check(command, argv, &mut keys) {
                Ok(()) => return Ok(()),
                Err(refusal) => {
                    if refusal.denial > relevant.denial
                        || (refusal.denial == relevant.denial
                            && refusal.position > relevant.position)
                    {
                        relevant = refusal;
                    }
                }
            }
        }
        Err(relevant)
    }

    /// Whether a selector that allows the command also reads every key (`allkeys`, `~*`,
    /// `%R~*`): SORT's BY and GET read keys named by patterns.
    pub fn reads_every_key(&self, command: &Command, argv: &[&[u8]]) -> bool {
        if self.unrestricted {
            return true;
        }
        let mut keys = None;
        self.selectors.iter().any(|selector| {
            selector.check(command, argv, &mut keys).is_ok()
                && (selector.all_keys
                    || selector
                        .keys
                        .iter()
                        .any(|key| key.pattern == b"*" && key.access & READ == READ))
        })
    }

    /// Whether the user may hear `channel` (a pattern, compared literally, for PSUBSCRIBE).
    pub fn allows_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|selector| selector.allows_channel(channel, is_pattern))
    }

    /// The channel patterns this user allows, or None when it allows every channel.
    fn channel_list(&self) -> Option<Vec<Vec<u8>>> {
        if self.selectors.iter().any(|selector| selector.all_channels) {
            return None;
        }
        Some(
            self.selectors
                .iter()
                .flat_map(|selector| selector.channels.iter().cloned())
                .collect(),
        )
    }

    /// When `self` replaces `original`: the channels the new user still allows, if it lost
    /// some (its subscribers must then be checked), None if it allows all it allowed before.
    pub fn narrowed_channels(&self, original: &User) -> Option<Vec<Vec<u8>>> {
        let upcoming = self.channel_list()?;
        let before = match original.channel_list() {
            None => return Some(upcoming),
            Some(before) => before,
        };
        if before.iter().all(|channel| upcoming.contains(channel)) {
            None
        } else {
            Some(upcoming)
        }
    }
}

/// Whether a subscription stays allowed among `channels` (see [`User::narrowed_channels`]).
pub fn subscription_allowed(channels: &[Vec<u8>], name: &[u8], is_pattern: bool) -> bool {
    channel_in_list(channels, name, is_pattern)
}

fn command_words(commands: &CommandTable) -> usize {
    commands.id_count().div_ceil(64)
}

/// A selector from the rules inside `( ... )`.
fn selector_from_rules(rules: &[u8], context: &RuleContext) -> Result<Selector, RuleError> {
    let mut selector = Selector::new(
        command_words(context.commands),
        context.all_channels_by_default,
    );
    let mut storage = Vec::new();
    let mut ranges = Vec::new();
    if resp::split_arguments(rules, &mut storage, &mut ranges).is_err() {
        return Err(RuleError::Syntax);
    }
    for &(start, end) in &ranges {
        selector.apply(&storage[start..end], context)?;
    }
    Ok(selector)
}

/// Joins selector rules spread over several arguments (`(+get` `~key)`) into one, as Redis
/// accepts them. Err: the argument where an unclosed parenthesis starts.
pub fn merge_selector_arguments(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut merged = Vec::with_capacity(args.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (index, arg) in args.iter().enumerate() {
        if let Some((start, mut selector)) = open.take() {
            selector.push(b' ');
            selector.extend_from_slice(arg);
            if arg.last() == Some(&b')') {
                merged.push(selector);
            } else {
                open = Some((start, selector));
            }
            continue;
        }
        if arg.first() == Some(&b'(') && arg.last() != Some(&b')') {
            open = Some((index, arg.to_vec()));
            continue;
        }
        merged.push(arg.to_vec());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(merged),
    }
}

/// Applies rules to a copy of `user` (or to a new user named `name`): the copy, or the
/// message of the first rule that failed.
pub fn user_with_rules(
    user: Option<&User>,
    name: &[u8],
    rules: &[&[u8]],
    context: &RuleContext,
) -> Result<User, String> {
    let merged = merge_selector_arguments(rules).map_err(|start| {
        format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(rules[start])
        )
    })?;
    let mut user = match user {
        Some(user) => user.clone(),
        None => User::new(name, context),
    };
    for rule in &merged {
        user.apply(rule, context).map_err(|error| {
            format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(rule),
                error.message()
            )
        })?;
    }
    Ok(user)
}

/// One ACL LOG entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub denial: Denial,
    pub context: LogContext,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub updated_ms: u64,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
}

#[derive(Default)]
struct Log {
    /// Newest first.
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

/// Counters of refusals (INFO stats `acl_access_denied_*`).
#[derive(Default)]
pub struct DenialCounts {
    pub auth: AtomicU64,
    pub command: AtomicU64,
    pub key: AtomicU64,
    pub channel: AtomicU64,
}

/// The users and the security log.
pub struct Acl {
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    /// Bumped by every change of a user: connections then look theirs up again.
    generation: AtomicU64,
    /// The default user has a password or is off: new connections must authenticate.
    auth_required: AtomicBool,
    log: Mutex<Log>,
    pub denials: DenialCounts,
    /// Held by a command that reads a user, changes it and stores it back (ACL SETUSER and
    /// the like), so that two changes never lose one another.
    pub edits: Mutex<()>,
}

impl Acl {
    pub fn new(context: &RuleContext) -> Acl {
        let default = Arc::new(User::new_default(context));
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), default);
        Acl {
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            auth_required: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            denials: DenialCounts::default(),
            edits: Mutex::new(()),
        }
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a connection that did not authenticate may run only NO_AUTH commands.
    #[inline]
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.user(b"default")
            .expect("the default user always exists")
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Stores a user (new or replacing one of the same name).
    pub fn store(&self, user: User) {
        let mut users = self.users.write();
        users.insert(user.name.clone(), Arc::new(user));
        self.changed(&users);
    }

    /// Removes users; the removed ones.
    pub fn remove(&self, names: &[&[u8]]) -> Vec<Arc<User>> {
        let mut users = self.users.write();
        let removed: Vec<Arc<User>> = names
            .iter()
            .filter_map(|name| {
                assert!(*name != b"default", "the default user is never removed");
                users.remove(*name)
            })
            .collect();
        self.changed(&users);
        removed
    }

    /// Replaces every user (ACL LOAD); a set without `default` gets a fresh one.
    pub fn replace_all(&self, mut new_users: BTreeMap<Vec<u8>, Arc<User>>, context: &RuleContext) {
        new_users
            .entry(b"default".to_vec())
            .or_insert_with(|| Arc::new(User::new_default(context)));
        let mut users = self.users.write();
        *users = new_users;
        self.changed(&users);
    }

    fn changed(&self, users: &BTreeMap<Vec<u8>, Arc<User>>) {
        let default = users.get(&b"default"[..]).expect("default user");
        self.auth_required
            .store(!default.no_password || !default.enabled, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// `requirepass`: the default user's only password, or none (`nopass`).
    pub fn set_default_password(&self, password: &[u8], context: &RuleContext) {
        let _edit = self.edits.lock();
        let mut user = (*self.default_user()).clone();
        let mut rule = b">".to_vec();
        rule.extend_from_slice(password);
        let rules: [&[u8]; 2] = if password.is_empty() {
            [b"resetpass", b"nopass"]
        } else {
            [b"resetpass", &rule]
        };
        for rule in rules {
            let applied = user.apply(rule, context);
            assert!(applied.is_ok(), "requirepass rules apply");
        }
        self.store(user);
    }

    /// Counts a refusal and records it in the log (unless `max_entries` is 0), merged with a
    /// recent alike entry when there is one.
    #[allow(clippy::too_many_arguments)]
    pub fn log_denial(
        &self,
        denial: Denial,
        context: LogContext,
        object: &[u8],
        username: &[u8],
        client_info: String,
        now_ms: u64,
        max_entries: usize,
    ) {
        let counter = match denial {
            Denial::Auth => &self.denials.auth,
            Denial::Command => &self.denials.command,
            Denial::Key => &self.denials.key,
            Denial::Channel => &self.denials.channel,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock();
        if max_entries == 0 {
            log.entries.clear();
            return;
        }
        let alike = log
            .entries
            .iter()
            .take(LOG_MERGE_SCAN_MAX)
            .position(|entry| {
                entry.denial == denial
                    && entry.context == context
                    && entry.updated_ms.abs_diff(now_ms) <= LOG_GROUPING_MS
                    && entry.object == object
                    && entry.username == username
            });
        if let Some(index) = alike {
            let mut entry = log.entries.remove(index).expect("found");
            entry.count += 1;
            entry.updated_ms = now_ms;
            entry.client_info = client_info;
            log.entries.push_front(entry);
            return;
        }
        let entry_id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(LogEntry {
            count: 1,
            denial,
            context,
            object: object.to_vec(),
            username: username.to_vec(),
            updated_ms: now_ms,
            client_info,
            entry_id,
            created_ms: now_ms,
        });
        log.entries.truncate(max_entries);
    }

    /// The newest `count` log entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log
            .lock()
            .entries
            .iter()
            .take(count)
            .cloned()
            .collect()
    }

    pub fn reset_log(&self) {
        self.log.lock().entries.clear();
    }

    /// INFO stats' counters back to zero (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        for counter in [
            &self.denials.auth,
            &self.denials.command,
            &self.denials.key,
            &self.denials.channel,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CommandTable {
        let mut table = CommandTable::from_specs();
        crate::families::register_all(&mut table);
        table.retain_implemented();
        table
    }

    fn apply_all(user: &mut User, rules: &[&str], context: &RuleContext) {
        for rule in rules {
            user.apply(rule.as_bytes(), context).unwrap();
        }
    }

    #[test]
    fn command_rules_keep_their_order_and_replace_earlier_mentions() {
        let table = table();
        let context = RuleContext {
            commands: &table,
            all_channels_by_default: false,
        };
        let mut user = User::new(b"alice", &context);
        apply_all(
            &mut user,
            &["+@all", "-client", "+client|id", "+client|setname"],
            &context,
        );
        assert_eq!(
            user.root().describe_commands(),
            b"+@all -client +client|id +client|setname"
        );
        user.apply(b"-client", &context).unwrap();
        assert_eq!(user.root().describe_commands(), b"+@all -client");
        user.apply(b"-@all", &context).unwrap();
        user.apply(b"+select|0", &context).unwrap();
        let select = table.get(b"select").unwrap();
        assert!(user.check(select, &[b"select", b"0"]).is_ok());
        assert_eq!(
            user.check(select, &[b"select", b"1"]),
            Err(Refusal {
                denial: Denial::Command,
                position: 0
            })
        );
        assert_eq!(
            user.apply(b"+config|get|x", &context),
            Err(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(
            user.apply(b"+nosuch", &context),
            Err(RuleError::UnknownCommand)
        );
        assert_eq!(
            user.apply(b"+@nosuch", &context),
            Err(RuleError::UnknownCommand)
        );
        assert_eq!(
            user.apply(b"-select|0", &context),
            Err(RuleError::UnknownCommand)
        );
    }

    #[test]
    fn keys_are_checked_with_the_access_their_specs_declare() {
        let table = table();
        let context = RuleContext {
            commands: &table,
            all_channels_by_default: false,
        };
        let mut user = User::new(b"bob", &context);
        apply_all(
            &mut user,
            &["on", "+@all", "%R~read*", "%W~write*", "~both*"],
            &context,
        );
        let get = table.get(b"get").unwrap();
        let set = table.get(b"set").unwrap();
        assert!(user.check(get, &[b"get", b"read1"]).is_ok());
        assert!(user.check(get, &[b"get", b"both1"]).is_ok());
        assert_eq!(
            user.check(get, &[b"get", b"write1"]).map_err(|r| r.denial),
            Err(Denial::Key)
        );
        assert!(user.check(set, &[b"set", b"write1", b"v"]).is_ok());
        assert_eq!(
            user.check(set, &[b"set", b"read1", b"v"])
                .map_err(|r| r.position),
            Err(1)
        );
        assert_eq!(
            user.describe(),
            b"on sanitize-payload %R~read* %W~write* ~both* resetchannels +@all"
        );
        assert_eq!(
            user.apply(b"~*", &context)
                .and_then(|_| user.apply(b"~x", &context)),
            Err(RuleError::KeyPatternAfterAll)
        );
    }

    #[test]
    fn selectors_channels_and_passwords() {
        let table = table();
        let context = RuleContext {
            commands: &table,
            all_channels_by_default: false,
        };
        let user = user_with_rules(
            None,
            b"carol",
            &[
                b"on",
                b">secret",
                b"&news.*",
                b"+publish",
                b"(+get",
                b"~cache:*)",
            ],
            &context,
        )
        .unwrap();
        assert!(user.accepts(b"secret"));
        assert!(!user.accepts(b"other"));
        let publish = table.get(b"publish").unwrap();
        let psubscribe = table.get(b"psubscribe").unwrap();
        let get = table.get(b"get").unwrap();
        assert!(user
            .check(publish, &[b"publish", b"news.today", b"m"])
            .is_ok());
        assert_eq!(
            user.check(publish, &[b"publish", b"sports", b"m"])
                .map_err(|r| r.denial),
            Err(Denial::Channel)
        );
        assert!(user.check(get, &[b"get", b"cache:1"]).is_ok());
        assert_eq!(
            user.check(get, &[b"get", b"other"]).map_err(|r| r.denial),
            Err(Denial::Key)
        );
        assert!(user.check(psubscribe, &[b"psubscribe", b"news.*"]).is_err());
        assert!(user.allows_channel(b"news.*", true));
        assert!(!user.allows_channel(b"news.?", true));
        let described = String::from_utf8(user.describe()).unwrap();
        assert_eq!(
            described,
            format!(
                "on sanitize-payload #{} resetchannels &news.* -@all +publish (~cache:* resetchannels -@all +get)",
                hash_password(b"secret")
            )
        );
        assert_eq!(
            user_with_rules(None, b"x", &[b"(+get", b"~a"], &context).unwrap_err(),
            "Unmatched parenthesis in acl selector starting at '(+get'."
        );
        assert_eq!(
            user_with_rules(Some(&user), b"carol", &[b"<nosuch"], &context).unwrap_err(),
            "Error in ACL SETUSER modifier '<nosuch': The password you are trying to remove from the user does not exist"
        );
    }
}
