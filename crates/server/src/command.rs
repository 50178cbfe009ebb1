//! The command table: every command's facts (arity, flags, key positions, ACL categories, docs)
//! come from the JSON specifications in `reference/commands/` (Valkey's, embedded at build
//! time); its behaviour comes from the handler a command family registers for it.
//!
//! To add a command: make sure its JSON spec is in `reference/commands/`, write the handler in
//! its family's file with its syntax as the doc line, and register it in the family's
//! `register` function. A command with a spec but no handler does not exist for clients.

use hashbrown::HashMap;
use serde_json::Value as Json;

use crate::context::{CommandResult, Context};

include!(concat!(env!("OUT_DIR"), "/command_specs.rs"));

/// A command implementation: parse the arguments, operate, reply.
pub type Handler = fn(&mut Context<'_>, &[&[u8]]) -> CommandResult;

/// Command flags, from the specs' `command_flags`.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const MAY_REPLICATE: u32 = 1 << 14;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 15;
    pub const PROTECTED: u32 = 1 << 16;
    pub const NO_ASYNC_LOADING: u32 = 1 << 17;
    pub const NO_MULTI: u32 = 1 << 18;
    pub const MOVABLE_KEYS: u32 = 1 << 19;
    pub const ALLOW_BUSY: u32 = 1 << 20;
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 21;
    pub const SENTINEL: u32 = 1 << 22;
    pub const ONLY_SENTINEL: u32 = 1 << 23;
    /// Cinnabar's own: the command runs alone, holding the script barrier exclusively
    /// (scripts, which may touch keys they did not declare). Never shown by COMMAND INFO.
    pub const EXCLUSIVE: u32 = 1 << 24;

    /// Names as COMMAND INFO prints them, in Redis's order.
    pub const NAMES: &[(u32, &str, &str)] = &[
        (WRITE, "WRITE", "write"),
        (READONLY, "READONLY", "readonly"),
        (DENYOOM, "DENYOOM", "denyoom"),
        (0, "MODULE", "module"),
        (ADMIN, "ADMIN", "admin"),
        (PUBSUB, "PUBSUB", "pubsub"),
        (NOSCRIPT, "NOSCRIPT", "noscript"),
        (BLOCKING, "BLOCKING", "blocking"),
        (LOADING, "LOADING", "loading"),
        (STALE, "STALE", "stale"),
        (SKIP_MONITOR, "SKIP_MONITOR", "skip_monitor"),
        (SKIP_SLOWLOG, "SKIP_SLOWLOG", "skip_slowlog"),
        (ASKING, "ASKING", "asking"),
        (FAST, "FAST", "fast"),
        (NO_AUTH, "NO_AUTH", "no_auth"),
        (MAY_REPLICATE, "MAY_REPLICATE", "may_replicate"),
        (NO_MANDATORY_KEYS, "NO_MANDATORY_KEYS", "no_mandatory_keys"),
        (PROTECTED, "PROTECTED", "protected"),
        (NO_ASYNC_LOADING, "NO_ASYNC_LOADING", "no_async_loading"),
        (NO_MULTI, "NO_MULTI", "no_multi"),
        (MOVABLE_KEYS, "MOVABLE_KEYS", "movablekeys"),
        (ALLOW_BUSY, "ALLOW_BUSY", "allow_busy"),
        (
            TOUCHES_ARBITRARY_KEYS,
            "TOUCHES_ARBITRARY_KEYS",
            "touches_arbitrary_keys",
        ),
        (SENTINEL, "SENTINEL", "sentinel"),
        (ONLY_SENTINEL, "ONLY_SENTINEL", "only_sentinel"),
    ];

    pub fn parse(name: &str) -> u32 {
        NAMES
            .iter()
            .find(|(_, spec_name, _)| *spec_name == name)
            .map(|(bit, _, _)| *bit)
            .unwrap_or(0)
    }
}

/// Where a command's keys start.
#[derive(Clone, Debug)]
pub enum BeginSearch {
    Index(i64),
    Keyword { keyword: String, start_from: i64 },
    Unknown,
}

/// How a command's keys continue from where they start.
#[derive(Clone, Debug)]
pub enum FindKeys {
    Range {
        last_key: i64,
        step: i64,
        limit: i64,
    },
    KeyNum {
        key_num_index: i64,
        first_key: i64,
        step: i64,
    },
    Unknown,
}

#[derive(Clone, Debug)]
pub struct KeySpec {
    pub begin_search: BeginSearch,
    pub find_keys: FindKeys,
    pub flags: Vec<String>,
    /// The spec's `notes` (COMMAND INFO), if any.
    pub notes: Option<String>,
}

/// One command (or subcommand).
pub struct Command {
    /// Lower-case full name: `get`, `config|get`.
    pub full_name: String,
    /// Lower-case own name: `get`, `get` (for CONFIG GET).
    pub name: String,
    pub arity: i32,
    pub flags: u32,
    pub acl_categories: Vec<String>,
    pub key_specs: Vec<KeySpec>,
    pub subcommands: HashMap<Vec<u8>, Box<Command>>,
    pub handler: Option<Handler>,
    /// Where the whole JSON specification is (COMMAND DOCS reads it on demand).
    pub spec: SpecSource,
    /// The specification's `command_tips`, lower-case (COMMAND INFO).
    pub tips: Vec<String>,
    /// The name of Redis's key function for commands whose key specs are not enough
    /// (`get_keys_function`: `sortGetKeys`, ...), used by `crate::key_extraction`.
    pub get_keys_function: Option<String>,
    /// Legacy (first key, last key, step) triple for COMMAND INFO.
    pub legacy_range: (i64, i64, i64),
    /// Index in [`CommandTable::by_id`]; 0 until the table is finished.
    pub id: u32,
    pub stats: CommandStats,
}

pub use crate::stats::CommandStats;

/// A command's JSON specification, kept as the compiled-in text it came from: parsed values of
/// every specification would hold about 4 MB for the process's lifetime (counted in
/// `used_memory`, which `maxmemory` compares with), while only COMMAND DOCS and COMMAND
/// GETKEYS need them.
pub struct SpecSource {
    text: &'static str,
    name: String,
}

impl SpecSource {
    /// The parsed specification (`Null` if it cannot be found, which the build rules out).
    pub fn json(&self) -> Json {
        serde_json::from_str::<serde_json::Map<String, Json>>(self.text)
            .ok()
            .and_then(|mut specs| specs.remove(&self.name))
            .unwrap_or(Json::Null)
    }
}

impl Command {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Whether the arity allows `argument_count` arguments (command name included).
    pub fn arity_allows(&self, argument_count: usize) -> bool {
        let arity = self.arity;
        (arity >= 0 && argument_count == arity as usize)
            || (arity < 0 && argument_count >= (-arity) as usize)
    }

    /// Whether a client can call it (it has a handler, or a subcommand with one).
    pub fn is_implemented(&self) -> bool {
        self.handler.is_some() || self.subcommands.values().any(|sub| sub.is_implemented())
    }

    /// Positions of the keys in `args` (command name at 0), from the key specs.
    pub fn key_positions(&self, args: &[&[u8]]) -> Vec<usize> {
        let mut positions = Vec::new();
        self.visit_keys(args, |position, _| positions.push(position));
        positions
    }

    /// Calls `visit` with the position of every key in `args` and the key spec that found it.
    pub fn visit_keys(&self, args: &[&[u8]], mut visit: impl FnMut(usize, &KeySpec)) {
        for spec in &self.key_specs {
            let start = match &spec.begin_search {
                BeginSearch::Index(index) => *index,
                BeginSearch::Keyword {
                    keyword,
                    start_from,
                } => {
                    let found = if *start_from >= 0 {
                        (*start_from as usize..args.len())
                            .find(|&index| args[index].eq_ignore_ascii_case(keyword.as_bytes()))
                    } else {
                        let begin = args.len() as i64 + start_from;
                        (1..=begin.max(0) as usize)
                            .rev()
                            .find(|&index| args[index].eq_ignore_ascii_case(keyword.as_bytes()))
                    };
                    match found {
                        Some(index) => index as i64 + 1,
                        None => continue,
                    }
                }
                BeginSearch::Unknown => continue,
            };
            if start < 1 || start as usize >= args.len() {
                continue;
            }
            let start = start as usize;
            match &spec.find_keys {
                FindKeys::Range {
                    last_key,
                    step,
                    limit,
                } => {
                    let last = if *last_key >= 0 {
                        start + *last_key as usize
                    } else if *limit > 1 {
                        let remaining = args.len() - start;
                        start + remaining / *limit as usize - 1
                    } else {
                        (args.len() as i64 + last_key) as usize
                    };
                    let mut index = start;
                    while index <= last.min(args.len() - 1) {
                        visit(index, spec);
                        index += (*step).max(1) as usize;
                    }
                }
                FindKeys::KeyNum {
                    key_num_index,
                    first_key,
                    step,
                } => {
                    let count_index = start + *key_num_index as usize;
                    let Some(count) = args
                        .get(count_index)
                        .and_then(|count| store::number::parse_i64(count))
                    else {
                        continue;
                    };
                    let first = start + *first_key as usize;
                    for key in 0..count.max(0) as usize {
                        let index = first + key * (*step).max(1) as usize;
                        if index >= args.len() {
                            break;
                        }
                        visit(index, spec);
                    }
                }
                FindKeys::Unknown => {}
            }
        }
    }
}

/// Every command a client can call.
pub struct CommandTable {
    /// Boxed: most of a table's buckets are empty, and a command takes hundreds of bytes.
    commands: HashMap<Vec<u8>, Box<Command>>,
    /// Full names by command id (id 0 is no command).
    by_id: Vec<String>,
}

fn json_i64(value: &Json, field: &str) -> i64 {
    value.get(field).and_then(Json::as_i64).unwrap_or(0)
}

fn parse_key_spec(json: &Json) -> KeySpec {
    let begin = &json["begin_search"];
    let begin_search = if let Some(index) = begin.get("index") {
        BeginSearch::Index(json_i64(index, "pos"))
    } else if let Some(keyword) = begin.get("keyword") {
        BeginSearch::Keyword {
            keyword: keyword["keyword"].as_str().unwrap_or("").to_string(),
            start_from: json_i64(keyword, "startfrom"),
        }
    } else {
        BeginSearch::Unknown
    };
    let find = &json["find_keys"];
    let find_keys = if let Some(range) = find.get("range") {
        FindKeys::Range {
            last_key: json_i64(range, "lastkey"),
            step: json_i64(range, "step"),
            limit: json_i64(range, "limit"),
        }
    } else if let Some(keynum) = find.get("keynum") {
        FindKeys::KeyNum {
            key_num_index: json_i64(keynum, "keynumidx"),
            first_key: json_i64(keynum, "firstkey"),
            step: json_i64(keynum, "step"),
        }
    } else {
        FindKeys::Unknown
    };
    let flags = json["flags"]
        .as_array()
        .map(|flags| {
            flags
                .iter()
                .filter_map(|flag| flag.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    KeySpec {
        begin_search,
        find_keys,
        flags,
        notes: json["notes"].as_str().map(str::to_string),
    }
}

fn build_command(name: &str, container: Option<&str>, spec: Json, source: SpecSource) -> Command {
    let mut flags = 0;
    for flag in spec["command_flags"].as_array().into_iter().flatten() {
        flags |= flags::parse(flag.as_str().unwrap_or(""));
    }
    let key_specs: Vec<KeySpec> = spec["key_specs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_key_spec)
        .collect();
    let (legacy_range, movable) = legacy_key_range(&key_specs);
    if movable {
        flags |= flags::MOVABLE_KEYS;
    }
    let mut categories: Vec<String> = spec["acl_categories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|category| {
            category
                .as_str()
                .map(|category| category.to_ascii_lowercase())
        })
        .collect();
    implicit_categories(flags, &mut categories);
    let tips = spec["command_tips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tip| tip.as_str().map(str::to_ascii_lowercase))
        .collect();
    let lower = name.to_ascii_lowercase();
    Command {
        full_name: match container {
            Some(container) => format!("{}|{}", container.to_ascii_lowercase(), lower),
            None => lower.clone(),
        },
        name: lower,
        arity: spec["arity"].as_i64().unwrap_or(-1) as i32,
        flags,
        acl_categories: categories,
        key_specs,
        subcommands: HashMap::new(),
        handler: None,
        get_keys_function: spec["get_keys_function"].as_str().map(str::to_string),
        spec: source,
        tips,
        legacy_range,
        id: 0,
        stats: CommandStats::default(),
    }
}

/// The categories Redis adds from a command's flags.
fn implicit_categories(flags: u32, categories: &mut Vec<String>) {
    let scripting = categories.iter().any(|category| category == "scripting");
    let mut add = |category: &str| {
        if !categories.iter().any(|existing| existing == category) {
            categories.push(category.to_string());
        }
    };
    if flags & flags::WRITE != 0 {
        add("write");
    }
    if flags & flags::READONLY != 0 && !scripting {
        add("read");
    }
    if flags & flags::ADMIN != 0 {
        add("admin");
        add("dangerous");
    }
    if flags & flags::PUBSUB != 0 {
        add("pubsub");
    }
    if flags & flags::FAST != 0 {
        add("fast");
    }
    if flags & flags::BLOCKING != 0 {
        add("blocking");
    }
    if flags & flags::FAST == 0 {
        add("slow");
    }
}

/// The (first, last, step) triple of COMMAND INFO, derived from the key specs as Redis does,
/// and whether the keys are "movable" (some spec is not a plain consecutive range, or is
/// incomplete), which COMMAND INFO reports as the `movablekeys` flag.
fn legacy_key_range(key_specs: &[KeySpec]) -> ((i64, i64, i64), bool) {
    let incomplete = |spec: &KeySpec| spec.flags.iter().any(|flag| flag == "INCOMPLETE");
    let range = |spec: &KeySpec| match (&spec.begin_search, &spec.find_keys) {
        (BeginSearch::Index(begin), FindKeys::Range { last_key, step, .. }) => {
            Some((*begin, *last_key, *step))
        }
        _ => None,
    };
    if key_specs.is_empty() {
        return ((0, 0, 0), false);
    }
    if key_specs.len() == 1 {
        if let Some((begin, last_key, step)) = range(&key_specs[0]) {
            let last = if last_key >= 0 {
                begin + last_key
            } else {
                last_key
            };
            return ((begin, last, step), incomplete(&key_specs[0]));
        }
    }
    let mut movable = false;
    let mut first = i64::MAX;
    let mut last: i64 = 0;
    let mut previous_last: i64 = 0;
    for spec in key_specs {
        let Some((begin, last_key, step)) = range(spec) else {
            movable = true;
            continue;
        };
        if step != 1 || (previous_last != 0 && previous_last != begin - 1) {
            movable = true;
            continue;
        }
        if incomplete(spec) {
            movable = true;
        }
        first = first.min(begin);
        let absolute_last = if last_key >= 0 {
            last_key + begin
        } else {
            last_key
        };
        // Redis compares as unsigned, so a negative (relative to the end) last key wins.
        if (absolute_last as u64) > (last as u64) {
            last = absolute_last;
        }
        previous_last = last;
    }
    if first == i64::MAX {
        return ((0, 0, 0), true);
    }
    ((first, last, 1), movable)
}

impl CommandTable {
    /// Loads every specification (skipping Sentinel-only commands).
    pub fn from_specs() -> Self {
        let mut commands: HashMap<Vec<u8>, Box<Command>> = HashMap::new();
        let mut subcommands: Vec<(String, String, Json, &'static str)> = Vec::new();
        for text in COMMAND_SPECS {
            let parsed: serde_json::Map<String, Json> =
                serde_json::from_str(text).expect("command specs are valid JSON");
            for (name, spec) in parsed {
                let spec_flags = spec["command_flags"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if spec_flags.iter().any(|flag| flag == "ONLY_SENTINEL") {
                    continue;
                }
                if let Some(container) = spec.get("container").and_then(Json::as_str) {
                    subcommands.push((container.to_string(), name, spec, text));
                } else {
                    let source = SpecSource {
                        text,
                        name: name.clone(),
                    };
                    let command = build_command(&name, None, spec, source);
                    commands.insert(command.name.clone().into_bytes(), Box::new(command));
                }
            }
        }
        for (container, name, spec, text) in subcommands {
            if let Some(parent) = commands.get_mut(container.to_ascii_lowercase().as_bytes()) {
                let source = SpecSource {
                    text,
                    name: name.clone(),
                };
                let command = build_command(&name, Some(&container), spec, source);
                parent
                    .subcommands
                    .insert(command.name.clone().into_bytes(), Box::new(command));
            }
        }
        CommandTable {
            commands,
            by_id: Vec::new(),
        }
    }

    /// `rename-command`: the command `name` is found under `new_name` from now on, or not at
    /// all when `new_name` is empty. It keeps its own name everywhere else (INFO commandstats,
    /// ACL rules, the propagated stream), as in Redis. False when there is no such command.
    pub fn rename(&mut self, name: &str, new_name: &str) -> bool {
        let Some(command) = self.commands.remove(name.as_bytes()) else {
            return false;
        };
        if !new_name.is_empty() {
            self.commands.insert(new_name.as_bytes().to_vec(), command);
        }
        true
    }

    /// Registers the handler of a command (`"get"`) or subcommand (`"config|get"`).
    pub fn handle(&mut self, full_name: &str, handler: Handler) {
        let command = match full_name.split_once('|') {
            Some((container, sub)) => self
                .commands
                .get_mut(container.as_bytes())
                .and_then(|parent| parent.subcommands.get_mut(sub.as_bytes())),
            None => self.commands.get_mut(full_name.as_bytes()),
        };
        let command = command.unwrap_or_else(|| panic!("no spec for command {full_name}"));
        assert!(command.handler.is_none(), "{full_name} registered twice");
        command.handler = Some(handler);
    }

    /// The names of a command's subcommands in the specs (`cluster` → `info`, `nodes`, ...).
    pub fn subcommand_names(&self, container: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .commands
            .get(container.as_bytes())
            .map(|command| {
                command
                    .subcommands
                    .values()
                    .map(|sub| sub.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Registers the handler of a command that runs alone (see [`flags::EXCLUSIVE`]).
    pub fn handle_exclusive(&mut self, full_name: &str, handler: Handler) {
        self.handle(full_name, handler);
        if let Some(command) = self.commands.get_mut(full_name.as_bytes()) {
            command.flags |= flags::EXCLUSIVE;
        }
    }

    /// Drops every command that has no handler, so that clients see only what works.
    pub fn retain_implemented(&mut self) {
        for command in self.commands.values_mut() {
            command.subcommands.retain(|_, sub| sub.handler.is_some());
        }
        self.commands.retain(|_, command| command.is_implemented());
        self.by_id = vec![String::new()];
        for command in self.commands.values_mut() {
            command.id = self.by_id.len() as u32;
            self.by_id.push(command.full_name.clone());
            for sub in command.subcommands.values_mut() {
                sub.id = self.by_id.len() as u32;
                self.by_id.push(sub.full_name.clone());
            }
        }
    }

    /// How many command ids there are (ids run from 1 to this minus 1).
    pub fn id_count(&self) -> usize {
        self.by_id.len()
    }

    /// The full name of command `id` ("" for 0).
    pub fn name_of(&self, id: u32) -> &str {
        self.by_id
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The command named `name`, any case.
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<&Command> {
        let mut lower = [0u8; 32];
        if name.len() > lower.len() {
            return None;
        }
        for (target, byte) in lower.iter_mut().zip(name) {
            *target = byte.to_ascii_lowercase();
        }
        self.commands
            .get(&lower[..name.len()])
            .map(|command| &**command)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.values().map(|command| &**command)
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

impl Command {
    /// The subcommand named `name`, any case.
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        self.subcommands
            .get(&name.to_ascii_lowercase())
            .map(|command| &**command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_load_with_key_positions() {
        let table = CommandTable::from_specs();
        let get = table.get(b"GET").unwrap();
        assert_eq!(get.arity, 2);
        assert!(get.has(flags::READONLY) && get.has(flags::FAST));
        assert_eq!(get.legacy_range, (1, 1, 1));
        let mset = table.get(b"mset").unwrap();
        assert_eq!(mset.legacy_range, (1, -1, 2));
        assert!(!mset.has(flags::MOVABLE_KEYS));
        for name in ["set", "bitfield", "lmove", "rename", "georadius_ro"] {
            assert!(
                !table.get(name.as_bytes()).unwrap().has(flags::MOVABLE_KEYS),
                "{name}"
            );
        }
        for name in [
            "sort",
            "sort_ro",
            "eval",
            "zunionstore",
            "xread",
            "migrate",
            "georadius",
        ] {
            assert!(
                table.get(name.as_bytes()).unwrap().has(flags::MOVABLE_KEYS),
                "{name}"
            );
        }
        assert_eq!(table.get(b"lmove").unwrap().legacy_range, (1, 2, 1));
        assert_eq!(table.get(b"eval").unwrap().legacy_range, (0, 0, 0));
        let args: Vec<&[u8]> = vec![b"MSET", b"a", b"1", b"b", b"2"];
        assert_eq!(mset.key_positions(&args), vec![1, 3]);
        let config = table.get(b"config").unwrap();
        assert!(config.subcommand(b"GET").is_some());
        assert_eq!(config.subcommand(b"get").unwrap().full_name, "config|get");
    }
}
