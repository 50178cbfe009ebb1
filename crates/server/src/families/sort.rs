//! SORT and SORT_RO.
//!
//! Sorts a list, set or sorted set numerically (Redis's `strtod` rules, ties broken by the
//! elements' bytes) or with ALPHA (bytes; the C locale's `strcoll`), optionally by the values
//! of other keys (`BY pattern`, `*` replaced by the element, `key->field` reading a hash field)
//! and returning other keys' values (`GET pattern`, `GET #` the element itself). `BY` without
//! `*` does not sort: lists and sorted sets keep their order (LIMIT then reads only its range),
//! sets are sorted with ALPHA when the result is stored (so the stored list is deterministic).
//! STORE replaces the destination with a list (or deletes it when empty) and is propagated
//! verbatim. Patterns read keys that key specs cannot name, so a SORT with patterns locks its
//! whole database; otherwise only its keys.

use store::hash::Element;
use store::list::End;
use store::{List, Shard, Value};

use crate::arguments;
use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};
use crate::families::lists;
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("sort", sort);
    table.handle("sort_ro", sort_ro);
}

const NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA] [STORE destination]
fn sort(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    sort_generic(context, args, Access::ReadWrite)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]
fn sort_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    sort_generic(context, args, Access::ReadOnly)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// Whether a pattern names other keys (has a `*`; `#` alone is the element itself).
fn is_pattern(pattern: &[u8]) -> bool {
    pattern.contains(&b'*')
}

/// The value a pattern names for `element`: a string key's value, or a hash field's.
fn lookup_by_pattern(
    read: &mut dyn FnMut(&[u8], Option<&[u8]>) -> Option<Vec<u8>>,
    pattern: &[u8],
    element: &[u8],
) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&byte| byte == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|window| window == b"->")
        .filter(|&position| position + 2 < after.len());
    let (suffix, field) = match arrow {
        Some(position) => (&after[..position], Some(&after[position + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    read(&key, field)
}

/// A string key's value (`field` None) or a hash field's value, as patterns read them.
fn read_value(shard: &mut Shard, key: &[u8], field: Option<&[u8]>, now_ms: u64) -> Option<Vec<u8>> {
    let entry = shard.lookup(key, now_ms)?;
    match (field, entry.value()) {
        (None, Value::String(string)) => Some(string.to_vec()),
        (Some(field), Value::Hash(hash)) => hash.get(field).map(|element| element.to_vec()),
        _ => None,
    }
}

/// Redis's `strtod` check: the whole text must be a number (an empty text is 0), not NaN and
/// not out of range.
fn sort_score(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text
        .iter()
        .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))?;
    let text = std::str::from_utf8(&text[start..]).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let spelled_infinite = lower.trim_start_matches(['+', '-']).starts_with("inf");
    if value.is_infinite() && !spelled_infinite {
        return None;
    }
    Some(value)
}

struct Item {
    element: Vec<u8>,
    score: f64,
    compare: Option<Vec<u8>>,
}

/// Whether the client's user may read any key (BY and GET patterns name keys the ACL check
/// before the command could not see).
fn reads_every_key(context: &Context, args: &[&[u8]]) -> bool {
    let user = &context.client.user;
    user.unrestricted || user.reads_every_key(context.command, args)
}

fn sort_generic(context: &mut Context, args: &[&[u8]], access: Access) -> CommandResult {
    let key = args[1];
    let mut descending = false;
    let mut alpha = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut dont_sort = false;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut index = 2;
    while index < args.len() {
        let left = args.len() - index - 1;
        let arg = args[index];
        if arguments::is(arg, "ASC") {
            descending = false;
        } else if arguments::is(arg, "DESC") {
            descending = true;
        } else if arguments::is(arg, "ALPHA") {
            alpha = true;
        } else if arguments::is(arg, "LIMIT") && left >= 2 {
            let start = arguments::integer(args[index + 1])?;
            let count = arguments::integer(args[index + 2])?;
            limit = Some((start, count));
            index += 2;
        } else if access == Access::ReadWrite && arguments::is(arg, "STORE") && left >= 1 {
            store = Some(args[index + 1]);
            index += 1;
        } else if arguments::is(arg, "BY") && left >= 1 {
            by = Some(args[index + 1]);
            dont_sort = !is_pattern(args[index + 1]);
            if !dont_sort && !reads_every_key(context, args) {
                return Err(
                    "ERR BY option of SORT denied due to insufficient ACL permissions.".into(),
                );
            }
            index += 1;
        } else if arguments::is(arg, "GET") && left >= 1 {
            if !reads_every_key(context, args) {
                return Err(
                    "ERR GET option of SORT denied due to insufficient ACL permissions.".into(),
                );
            }
            gets.push(args[index + 1]);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    let database = context.database();
    let now_ms = context.now_ms;
    let reads_patterns =
        by.is_some_and(is_pattern) || gets.iter().any(|get| *get != b"#" && is_pattern(get));
    let mut locked = if reads_patterns {
        context.lock_databases(&[database])
    } else {
        context.lock_keys(std::iter::once(key).chain(store))
    };
    let list_limits = lists::limits(context.server);

    // Read the elements (as Redis's vector), honouring the direct-range cases.
    let mut elements: Vec<Vec<u8>> = Vec::new();
    let (mut start, mut end): (i64, i64);
    {
        let shard: &mut Shard = locked.shard(database, key);
        let entry = shard.lookup(key, now_ms);
        let value: Option<&Value> = entry.as_ref().map(|entry| entry.value());
        let length = match &value {
            None => 0,
            Some(Value::List(list)) => list.len(),
            Some(Value::Set(set)) => set.len(),
            Some(Value::SortedSet(set)) => set.len(),
            Some(_) => return Err(errors::WRONG_TYPE.into()),
        } as i64;
        // A set has no order of its own: what is stored or given to a script must not depend
        // on its layout (replicas and AOF replay the same command), so it comes sorted.
        let deterministic = store.is_some() || context.client.is_script();
        if matches!(value, Some(Value::Set(_))) && dont_sort && deterministic {
            dont_sort = false;
            alpha = true;
            by = None;
        }
        let (limit_start, limit_count) = limit.unwrap_or((0, -1));
        start = limit_start.max(0).min(length);
        let count = limit_count.max(-1).min(length);
        end = if count < 0 {
            length - 1
        } else {
            start + count - 1
        };
        if start >= length {
            start = length - 1;
            end = length - 2;
        }
        if end >= length {
            end = length - 1;
        }
        let direct = dont_sort && matches!(value, Some(Value::List(_) | Value::SortedSet(_)));
        match &value {
            None => {}
            Some(Value::List(list)) => {
                let all = list.to_vec();
                if direct {
                    if end >= start {
                        let range: Vec<Vec<u8>> = if descending {
                            all.into_iter()
                                .rev()
                                .skip(start as usize)
                                .take((end - start + 1) as usize)
                                .collect()
                        } else {
                            all.into_iter()
                                .skip(start as usize)
                                .take((end - start + 1) as usize)
                                .collect()
                        };
                        elements = range;
                        end -= start;
                        start = 0;
                    }
                } else {
                    elements = all;
                }
            }
            Some(Value::Set(set)) => {
                elements = set.iter().map(|member: Element| member.to_vec()).collect();
            }
            Some(Value::SortedSet(set)) => {
                if direct {
                    let count = (end - start + 1).max(0) as usize;
                    elements = set
                        .range(0..set.len(), descending)
                        .skip(start as usize)
                        .take(count)
                        .map(|(member, _)| member.to_vec())
                        .collect();
                    end -= start;
                    start = 0;
                } else {
                    elements = set.iter().map(|(member, _)| member.to_vec()).collect();
                }
            }
            Some(_) => unreachable!("checked above"),
        }
    }

    let mut read_key = |wanted: &[u8], field: Option<&[u8]>| -> Option<Vec<u8>> {
        read_value(locked.shard(database, wanted), wanted, field, now_ms)
    };
    let mut items: Vec<Item> = elements
        .into_iter()
        .map(|element| Item {
            element,
            score: 0.0,
            compare: None,
        })
        .collect();
    let mut conversion_error = false;
    if !dont_sort {
        for item in &mut items {
            let by_value = match by {
                Some(pattern) => match lookup_by_pattern(&mut read_key, pattern, &item.element) {
                    Some(value) => value,
                    None => continue,
                },
                None => item.element.clone(),
            };
            if alpha {
                if by.is_some() {
                    item.compare = Some(by_value);
                }
            } else {
                match sort_score(&by_value) {
                    Some(score) => item.score = score,
                    None => conversion_error = true,
                }
            }
        }
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let order = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                match (&a.compare, &b.compare) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                }
            } else {
                a.element.cmp(&b.element)
            };
            if descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    if conversion_error {
        return Err(NOT_DOUBLE.into());
    }
    let selected: &[Item] = if end >= start && start >= 0 {
        &items[start as usize..=(end as usize).min(items.len().saturating_sub(1))]
    } else {
        &[]
    };
    let mut output: Vec<Option<Vec<u8>>> = Vec::new();
    for item in selected {
        if gets.is_empty() {
            output.push(Some(item.element.clone()));
        }
        for get in &gets {
            output.push(lookup_by_pattern(&mut read_key, get, &item.element));
        }
    }
    match store {
        None => {
            drop(locked);
            context.reply.array(output.len());
            for value in output {
                match value {
                    Some(bytes) => context.reply.bulk(&bytes),
                    None => context.reply.null(),
                }
            }
        }
        Some(destination) => {
            let stored = output.len();
            let shard = locked.shard(database, destination);
            let changed = if stored > 0 {
                let mut list = List::new();
                let values: Vec<Vec<u8>> =
                    output.into_iter().map(Option::unwrap_or_default).collect();
                let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                list.push_values(End::Right, &slices, &list_limits);
                shard.remove(destination, now_ms);
                shard.insert(destination, Value::List(Box::new(list)), None, now_ms);
                shard.blocked.signal(destination);
                Some("sortstore")
            } else if shard.remove(destination, now_ms).is_some() {
                Some("del")
            } else {
                None
            };
            if changed.is_some() {
                locked.propagate(database, args);
            }
            drop(locked);
            match changed {
                Some("sortstore") => context.notify(EventClass::List, "sortstore", destination),
                Some(event) => context.notify(EventClass::Generic, event, destination),
                None => {}
            }
            context.reply.integer(stored as i64);
        }
    }
    Ok(())
}
