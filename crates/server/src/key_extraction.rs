//! Which arguments of a command are keys, and with which flags (read, write, ...): Redis's
//! `getKeysFromCommandWithSpecs`. The key specs answer when they are complete and their flags
//! fixed; otherwise the command's own key function (named in its spec, `get_keys_function`)
//! does, as Redis's `*GetKeys` procedures do. COMMAND GETKEYS and the ACL key checks use it.
//!
//! To extend: a command whose keys the specs cannot describe gets an arm in
//! `keys_from_function` under its spec's function name.

use crate::command::{BeginSearch, Command, FindKeys, KeySpec};

/// Key-spec flags: (name in the specs, name in replies), in Redis's order.
pub const KEY_FLAGS: &[(&str, &str)] = &[
    ("RO", "RO"),
    ("RW", "RW"),
    ("OW", "OW"),
    ("RM", "RM"),
    ("ACCESS", "access"),
    ("UPDATE", "update"),
    ("INSERT", "insert"),
    ("DELETE", "delete"),
    ("NOT_KEY", "not_key"),
    ("INCOMPLETE", "incomplete"),
    ("VARIABLE_FLAGS", "variable_flags"),
];

/// Key-spec flags as a bit set over [`KEY_FLAGS`].
pub type KeyFlags = u16;

pub fn key_flag(name: &str) -> KeyFlags {
    KEY_FLAGS
        .iter()
        .position(|(spec_name, _)| *spec_name == name)
        .map(|index| 1 << index)
        .unwrap_or(0)
}

pub fn spec_flags(spec: &KeySpec) -> KeyFlags {
    spec.flags
        .iter()
        .fold(0, |bits, flag| bits | key_flag(flag))
}

pub fn getkeys_function(command: &Command) -> Option<&str> {
    command.get_keys_function.as_deref()
}

/// The keys of a full command line (`args[0]` is the command name) with their flags: from the
/// key specs when they are complete and their flags fixed, else from the command's own key
/// extraction (as Redis's `getKeysFromCommandWithSpecs`).
pub fn command_keys(command: &Command, args: &[&[u8]]) -> Vec<(usize, KeyFlags)> {
    let all_flags = command
        .key_specs
        .iter()
        .fold(0, |bits, spec| bits | spec_flags(spec));
    let has_key_specs = command
        .key_specs
        .iter()
        .any(|spec| spec_flags(spec) & key_flag("NOT_KEY") == 0);
    if has_key_specs && all_flags & key_flag("VARIABLE_FLAGS") == 0 {
        if let Some(keys) = keys_from_specs(command, args) {
            return keys;
        }
    }
    match getkeys_function(command) {
        Some(function) => keys_from_function(function, args),
        None => Vec::new(),
    }
}

/// Keys found by the specs, or None when a spec cannot be applied (Redis's `invalid_spec`).
fn keys_from_specs(command: &Command, args: &[&[u8]]) -> Option<Vec<(usize, KeyFlags)>> {
    let argc = args.len() as i64;
    let mut keys = Vec::new();
    for spec in &command.key_specs {
        let bits = spec_flags(spec);
        if bits & key_flag("NOT_KEY") != 0 {
            continue;
        }
        let first = match &spec.begin_search {
            BeginSearch::Index(position) => *position,
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let start = if *start_from > 0 {
                    *start_from
                } else {
                    argc + start_from
                };
                let end = if *start_from > 0 { argc - 1 } else { 1 };
                let mut found = 0;
                let mut index = start;
                while index != end {
                    if index >= argc || index < 1 {
                        break;
                    }
                    if args[index as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = index + 1;
                        break;
                    }
                    index += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match &spec.find_keys {
            FindKeys::Range {
                last_key,
                step,
                limit,
            } => {
                let last = if *last_key >= 0 {
                    first + last_key
                } else if *limit == 0 {
                    argc + last_key
                } else {
                    first + ((argc - first) / limit + last_key)
                };
                (last, *step)
            }
            FindKeys::KeyNum {
                key_num_index,
                first_key,
                step,
            } => {
                if *key_num_index >= argc {
                    return None;
                }
                let count = args
                    .get((first + key_num_index) as usize)
                    .and_then(|text| store::number::parse_i64(text))
                    .filter(|count| *count >= 0)?;
                let first_key_index = first + first_key;
                let last = first_key_index + count - 1;
                if last >= argc || last < first_key_index || first_key_index >= argc {
                    return None;
                }
                push_keys(&mut keys, first_key_index, last, *step, argc, bits);
                if bits & key_flag("INCOMPLETE") != 0 {
                    return None;
                }
                continue;
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        push_keys(&mut keys, first, last, step, argc, bits);
        if bits & key_flag("INCOMPLETE") != 0 {
            return None;
        }
    }
    Some(keys)
}

fn push_keys(
    keys: &mut Vec<(usize, KeyFlags)>,
    first: i64,
    last: i64,
    step: i64,
    argc: i64,
    bits: KeyFlags,
) {
    let mut index = first;
    while index <= last {
        if index < argc && index >= first {
            keys.push((index as usize, bits));
        }
        index += step.max(1);
    }
}

/// Leading decimal digits as C's `atoi` reads them.
fn atoi(text: &[u8]) -> i64 {
    let text = std::str::from_utf8(text).unwrap_or("").trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<i64>().map(|value| sign * value).unwrap_or(0)
}

/// Redis's `genericGetKeys`: a key count at `count_index`, keys from `first_index`, an
/// optional destination key at `store_index` (0 for none).
fn counted_keys(
    args: &[&[u8]],
    store_index: usize,
    count_index: usize,
    first_index: usize,
) -> Vec<(usize, KeyFlags)> {
    let Some(count) = args.get(count_index).map(|text| atoi(text)) else {
        return Vec::new();
    };
    if count < 1 || count > (args.len().saturating_sub(first_index)) as i64 {
        return Vec::new();
    }
    let mut keys: Vec<(usize, KeyFlags)> = (0..count as usize)
        .map(|key| (first_index + key, 0))
        .collect();
    if store_index != 0 {
        keys.push((store_index, 0));
    }
    keys
}

fn keys_from_function(function: &str, args: &[&[u8]]) -> Vec<(usize, KeyFlags)> {
    let flag = |names: &[&str]| names.iter().fold(0, |bits, name| bits | key_flag(name));
    let is = |index: usize, keyword: &str| args[index].eq_ignore_ascii_case(keyword.as_bytes());
    match function {
        "setGetKeys" => {
            let get = (3..args.len()).any(|index| is(index, "GET"));
            let bits = if get {
                flag(&["RW", "ACCESS", "UPDATE"])
            } else {
                flag(&["OW", "UPDATE"])
            };
            vec![(1, bits)]
        }
        "bitfieldGetKeys" => {
            let mut readonly = true;
            let mut index = 2;
            while index < args.len() {
                let remaining = args.len() - index - 1;
                if is(index, "GET") && remaining >= 2 {
                    index += 3;
                } else if (is(index, "SET") || is(index, "INCRBY")) && remaining >= 3 {
                    readonly = false;
                    break;
                } else if is(index, "OVERFLOW") && remaining >= 1 {
                    index += 2;
                } else {
                    readonly = false;
                    break;
                }
            }
            let bits = if readonly {
                flag(&["RO", "ACCESS"])
            } else {
                flag(&["RW", "ACCESS", "UPDATE"])
            };
            vec![(1, bits)]
        }
        "sortROGetKeys" => vec![(1, flag(&["RO", "ACCESS"]))],
        "sortGetKeys" => {
            let mut keys = vec![(1, flag(&["RO", "ACCESS"]))];
            let mut store = None;
            let mut index = 2;
            while index < args.len() {
                if is(index, "LIMIT") {
                    index += 2;
                } else if is(index, "GET") || is(index, "BY") {
                    index += 1;
                } else if is(index, "STORE") && index + 1 < args.len() {
                    store = Some(index + 1);
                }
                index += 1;
            }
            if let Some(position) = store {
                keys.push((position, flag(&["OW", "UPDATE"])));
            }
            keys
        }
        "migrateGetKeys" => {
            let mut first = 3;
            let mut count = 1;
            if args.len() > 6 {
                let mut index = 6;
                while index < args.len() {
                    if is(index, "KEYS") {
                        if args[3].is_empty() {
                            first = index + 1;
                            count = args.len() - first;
                        } else {
                            count = 0;
                        }
                        break;
                    }
                    if is(index, "AUTH") {
                        index += 1;
                    } else if is(index, "AUTH2") {
                        index += 2;
                    }
                    index += 1;
                }
            }
            let bits = flag(&["RW", "ACCESS", "DELETE"]);
            (first..first + count).map(|index| (index, bits)).collect()
        }
        "georadiusGetKeys" => {
            let mut keys = vec![(1, 0)];
            let mut stored = None;
            let mut index = 5;
            while index < args.len() {
                if (is(index, "STORE") || is(index, "STOREDIST")) && index + 1 < args.len() {
                    stored = Some(index + 1);
                    index += 1;
                }
                index += 1;
            }
            keys.extend(stored.map(|index| (index, 0)));
            keys
        }
        "xreadGetKeys" => {
            let mut streams = None;
            let mut index = 1;
            while index < args.len() {
                if is(index, "BLOCK") || is(index, "COUNT") {
                    index += 1;
                } else if is(index, "GROUP") {
                    index += 2;
                } else if is(index, "NOACK") {
                } else if is(index, "STREAMS") {
                    streams = Some(index);
                    break;
                } else {
                    break;
                }
                index += 1;
            }
            let Some(streams) = streams else {
                return Vec::new();
            };
            let rest = args.len() - streams - 1;
            if rest == 0 || rest % 2 != 0 {
                return Vec::new();
            }
            (streams + 1..streams + 1 + rest / 2)
                .map(|index| (index, 0))
                .collect()
        }
        "zunionInterDiffStoreGetKeys" => counted_keys(args, 1, 2, 3),
        "evalGetKeys" | "functionGetKeys" | "blmpopGetKeys" => counted_keys(args, 0, 2, 3),
        "zunionInterDiffGetKeys" | "sintercardGetKeys" | "lmpopGetKeys" | "zmpopGetKeys" => {
            counted_keys(args, 0, 1, 2)
        }
        _ => Vec::new(),
    }
}
