//! COMMAND and its subcommands: the command table as clients see it (COMMAND INFO's
//! ten-field layout, COMMAND DOCS's maps, key extraction for GETKEYS), built from the JSON
//! specifications each command was loaded from.

use resp::ReplyWriter;
use serde_json::Value as Json;
use store::glob::glob_match;

use crate::command::{flags, BeginSearch, Command, FindKeys, KeySpec};
use crate::context::{errors, CommandError, CommandResult, Context};
use crate::key_extraction::{
    command_keys, getkeys_function, key_flag, spec_flags, KeyFlags, KEY_FLAGS,
};
use crate::server::Server;

use super::info::all_commands;

/// Command flags COMMAND INFO shows, in Redis's order (the others are hidden on purpose).
const VISIBLE_FLAGS: &[(u32, &str)] = &[
    (flags::WRITE, "write"),
    (flags::READONLY, "readonly"),
    (flags::DENYOOM, "denyoom"),
    (flags::ADMIN, "admin"),
    (flags::PUBSUB, "pubsub"),
    (flags::NOSCRIPT, "noscript"),
    (flags::BLOCKING, "blocking"),
    (flags::LOADING, "loading"),
    (flags::STALE, "stale"),
    (flags::SKIP_MONITOR, "skip_monitor"),
    (flags::SKIP_SLOWLOG, "skip_slowlog"),
    (flags::ASKING, "asking"),
    (flags::FAST, "fast"),
    (flags::NO_AUTH, "no_auth"),
    (flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (flags::NO_ASYNC_LOADING, "no_async_loading"),
    (flags::NO_MULTI, "no_multi"),
    (flags::MOVABLE_KEYS, "movablekeys"),
    (flags::ALLOW_BUSY, "allow_busy"),
];

/// ACL categories in Redis's order.
pub use crate::acl::CATEGORIES as ACL_CATEGORIES;

fn reply_key_flags(reply: &mut ReplyWriter, bits: KeyFlags) {
    let names: Vec<&str> = KEY_FLAGS
        .iter()
        .enumerate()
        .filter(|(index, _)| bits & (1 << index) != 0)
        .map(|(_, (_, name))| *name)
        .collect();
    reply.set(names.len());
    for name in names {
        reply.simple(name.as_bytes());
    }
}

/// COMMAND
pub fn command(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    reply_all_infos(context);
    Ok(())
}

fn reply_all_infos(context: &mut Context) {
    let server = context.server;
    context.reply.array(server.commands.len());
    for command in top_level_commands(server) {
        reply_command_info(&mut context.reply, command);
    }
}

/// The top-level commands, by name.
fn top_level_commands(server: &Server) -> Vec<&Command> {
    let mut commands: Vec<&Command> = server.commands.iter().collect();
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    commands
}

/// COMMAND COUNT
pub fn command_count(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.reply.integer(context.server.commands.len() as i64);
    Ok(())
}

/// A command by its full name (`get`, `config|get`), any case; None for unknown names and for
/// deeper paths.
fn lookup_full_name<'s>(server: &'s Server, name: &[u8]) -> Option<&'s Command> {
    let mut parts = name.split(|&byte| byte == b'|');
    let base = server.commands.get(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) if base.is_container() => base.subcommand(sub),
        _ => None,
    }
}

/// COMMAND INFO [command-name [command-name ...]]
pub fn command_info(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() == 2 {
        reply_all_infos(context);
        return Ok(());
    }
    let server = context.server;
    context.reply.array(args.len() - 2);
    for name in &args[2..] {
        match lookup_full_name(server, name) {
            Some(command) => reply_command_info(&mut context.reply, command),
            None => context.reply.null(),
        }
    }
    Ok(())
}

/// One command's ten-field COMMAND INFO entry.
fn reply_command_info(reply: &mut ReplyWriter, command: &Command) {
    let (first, last, step) = command.legacy_range;
    reply.array(10);
    reply.bulk(command.full_name.as_bytes());
    reply.integer(command.arity as i64);
    let visible: Vec<&str> = VISIBLE_FLAGS
        .iter()
        .filter(|(bit, _)| command.has(*bit))
        .map(|(_, name)| *name)
        .collect();
    reply.set(visible.len());
    for name in visible {
        reply.simple(name.as_bytes());
    }
    reply.integer(first);
    reply.integer(last);
    reply.integer(step);
    let categories: Vec<&str> = ACL_CATEGORIES
        .iter()
        .filter(|category| command.acl_categories.iter().any(|own| own == *category))
        .copied()
        .collect();
    reply.set(categories.len());
    for category in categories {
        reply.simple(format!("@{category}").as_bytes());
    }
    reply.set(command.tips.len());
    for tip in &command.tips {
        reply.bulk(tip.as_bytes());
    }
    reply.set(command.key_specs.len());
    for spec in &command.key_specs {
        reply_key_spec(reply, spec);
    }
    let mut subcommands: Vec<&Command> = command.subcommands.values().map(|sub| &**sub).collect();
    subcommands.sort_by(|a, b| a.name.cmp(&b.name));
    reply.array(subcommands.len());
    for sub in subcommands {
        reply_command_info(reply, sub);
    }
}

fn reply_key_spec(reply: &mut ReplyWriter, spec: &KeySpec) {
    let notes = spec.notes.as_deref();
    reply.map(3 + usize::from(notes.is_some()));
    if let Some(notes) = notes {
        reply.bulk(b"notes");
        reply.bulk(notes.as_bytes());
    }
    reply.bulk(b"flags");
    reply_key_flags(reply, spec_flags(spec));
    reply.bulk(b"begin_search");
    reply.map(2);
    reply.bulk(b"type");
    match &spec.begin_search {
        BeginSearch::Index(position) => {
            reply.bulk(b"index");
            reply.bulk(b"spec");
            reply.map(1);
            reply.bulk(b"index");
            reply.integer(*position);
        }
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => {
            reply.bulk(b"keyword");
            reply.bulk(b"spec");
            reply.map(2);
            reply.bulk(b"keyword");
            reply.bulk(keyword.as_bytes());
            reply.bulk(b"startfrom");
            reply.integer(*start_from);
        }
        BeginSearch::Unknown => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map(0);
        }
    }
    reply.bulk(b"find_keys");
    reply.map(2);
    reply.bulk(b"type");
    match &spec.find_keys {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => {
            reply.bulk(b"range");
            reply.bulk(b"spec");
            reply.map(3);
            reply.bulk(b"lastkey");
            reply.integer(*last_key);
            reply.bulk(b"keystep");
            reply.integer(*step);
            reply.bulk(b"limit");
            reply.integer(*limit);
        }
        FindKeys::KeyNum {
            key_num_index,
            first_key,
            step,
        } => {
            reply.bulk(b"keynum");
            reply.bulk(b"spec");
            reply.map(3);
            reply.bulk(b"keynumidx");
            reply.integer(*key_num_index);
            reply.bulk(b"firstkey");
            reply.integer(*first_key);
            reply.bulk(b"keystep");
            reply.integer(*step);
        }
        FindKeys::Unknown => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map(0);
        }
    }
}

/// COMMAND DOCS [command-name [command-name ...]]
pub fn command_docs(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let commands: Vec<&Command> = if args.len() == 2 {
        top_level_commands(server)
    } else {
        args[2..]
            .iter()
            .filter_map(|name| lookup_full_name(server, name))
            .collect()
    };
    context.reply.map(commands.len());
    for command in commands {
        context.reply.bulk(command.full_name.as_bytes());
        reply_command_docs(&mut context.reply, command);
    }
    Ok(())
}

/// Redis's group names (`sorted-set`, not the specs' `sorted_set`).
fn group_name(group: &str) -> String {
    group.replace('_', "-")
}

fn reply_command_docs(reply: &mut ReplyWriter, command: &Command) {
    let spec = &command.spec.json();
    let text = |field: &str| spec[field].as_str().filter(|text| !text.is_empty());
    let doc_flags: Vec<String> = spec["doc_flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|flag| flag.as_str().map(str::to_ascii_lowercase))
        .collect();
    let history = spec["history"].as_array().filter(|list| !list.is_empty());
    let arguments = spec["arguments"].as_array().filter(|list| !list.is_empty());
    let fields = 1
        + [
            "summary",
            "since",
            "complexity",
            "deprecated_since",
            "replaced_by",
        ]
        .iter()
        .filter(|field| text(field).is_some())
        .count()
        + usize::from(!doc_flags.is_empty())
        + usize::from(history.is_some())
        + usize::from(arguments.is_some())
        + usize::from(command.is_container());
    reply.map(fields);
    for field in ["summary", "since"] {
        if let Some(value) = text(field) {
            reply.bulk(field.as_bytes());
            reply.bulk(value.as_bytes());
        }
    }
    reply.bulk(b"group");
    reply.bulk(group_name(spec["group"].as_str().unwrap_or("generic")).as_bytes());
    if let Some(complexity) = text("complexity") {
        reply.bulk(b"complexity");
        reply.bulk(complexity.as_bytes());
    }
    if !doc_flags.is_empty() {
        reply.bulk(b"doc_flags");
        reply.set(doc_flags.len());
        for flag in &doc_flags {
            reply.simple(flag.as_bytes());
        }
    }
    for field in ["deprecated_since", "replaced_by"] {
        if let Some(value) = text(field) {
            reply.bulk(field.as_bytes());
            reply.bulk(value.as_bytes());
        }
    }
    if let Some(history) = history {
        reply.bulk(b"history");
        reply.set(history.len());
        for entry in history {
            reply.array(2);
            for part in 0..2 {
                reply.bulk(entry[part].as_str().unwrap_or("").as_bytes());
            }
        }
    }
    if let Some(arguments) = arguments {
        reply.bulk(b"arguments");
        reply_arguments(reply, arguments);
    }
    if command.is_container() {
        reply.bulk(b"subcommands");
        let mut subcommands: Vec<&Command> =
            command.subcommands.values().map(|sub| &**sub).collect();
        subcommands.sort_by(|a, b| a.name.cmp(&b.name));
        reply.map(subcommands.len());
        for sub in subcommands {
            reply.bulk(sub.full_name.as_bytes());
            reply_command_docs(reply, sub);
        }
    }
}

fn reply_arguments(reply: &mut ReplyWriter, arguments: &[Json]) {
    reply.array(arguments.len());
    for argument in arguments {
        let kind = argument["type"].as_str().unwrap_or("string");
        let nested = matches!(kind, "oneof" | "block");
        let optional_text = |field: &str| argument[field].as_str();
        let argument_flags: Vec<&str> = ["optional", "multiple", "multiple_token"]
            .into_iter()
            .filter(|flag| argument[*flag].as_bool() == Some(true))
            .collect();
        let key_spec_index = argument["key_spec_index"].as_i64();
        let fields = 2
            + usize::from(!nested)
            + usize::from(key_spec_index.is_some())
            + ["token", "summary", "since", "deprecated_since"]
                .iter()
                .filter(|field| optional_text(field).is_some())
                .count()
            + usize::from(!argument_flags.is_empty())
            + usize::from(nested);
        let name = argument["name"].as_str().unwrap_or("");
        reply.map(fields);
        reply.bulk(b"name");
        reply.bulk(name.as_bytes());
        reply.bulk(b"type");
        reply.bulk(kind.as_bytes());
        if !nested {
            reply.bulk(b"display_text");
            reply.bulk(optional_text("display").unwrap_or(name).as_bytes());
        }
        if let Some(index) = key_spec_index {
            reply.bulk(b"key_spec_index");
            reply.integer(index);
        }
        for field in ["token", "summary", "since", "deprecated_since"] {
            if let Some(value) = optional_text(field) {
                reply.bulk(field.as_bytes());
                reply.bulk(value.as_bytes());
            }
        }
        if !argument_flags.is_empty() {
            reply.bulk(b"flags");
            reply.set(argument_flags.len());
            for flag in argument_flags {
                reply.simple(flag.as_bytes());
            }
        }
        if nested {
            reply.bulk(b"arguments");
            let empty = Vec::new();
            reply_arguments(reply, argument["arguments"].as_array().unwrap_or(&empty));
        }
    }
}

/// How GETKEYS and GETKEYSANDFLAGS reply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeysReply {
    Names,
    NamesAndFlags,
}

/// COMMAND GETKEYS command [arg [arg ...]]
pub fn command_getkeys(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    get_keys(context, args, KeysReply::Names)
}

/// COMMAND GETKEYSANDFLAGS command [arg [arg ...]]
pub fn command_getkeysandflags(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    get_keys(context, args, KeysReply::NamesAndFlags)
}

fn get_keys(context: &mut Context, args: &[&[u8]], shape: KeysReply) -> CommandResult {
    let full = &args[2..];
    let server = context.server;
    let Some(base) = server.commands.get(full[0]) else {
        return Err("ERR Invalid command specified".into());
    };
    let command = if full.len() > 1 && base.is_container() {
        base.subcommand(full[1])
            .ok_or_else(|| CommandError::from("ERR Invalid command specified"))?
    } else {
        base
    };
    let has_key_specs = command
        .key_specs
        .iter()
        .any(|spec| spec_flags(spec) & key_flag("NOT_KEY") == 0);
    if !has_key_specs && getkeys_function(command).is_none() {
        return Err("ERR The command has no key arguments".into());
    }
    if !command.arity_allows(full.len()) {
        return Err("ERR Invalid number of arguments specified for command".into());
    }
    let keys = command_keys(command, full);
    if keys.is_empty() && !command.has(flags::NO_MANDATORY_KEYS) {
        return Err("ERR Invalid arguments specified for command".into());
    }
    context.reply.array(keys.len());
    for (position, key_flags) in keys {
        match shape {
            KeysReply::Names => context.reply.bulk(full[position]),
            KeysReply::NamesAndFlags => {
                context.reply.array(2);
                context.reply.bulk(full[position]);
                reply_key_flags(&mut context.reply, key_flags);
            }
        }
    }
    Ok(())
}

/// What COMMAND LIST keeps.
enum ListFilter {
    All,
    Module,
    Category(String),
    Pattern(Vec<u8>),
}

/// COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]
pub fn command_list(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let filter = match &args[2..] {
        [] => ListFilter::All,
        [filterby, kind, value] if crate::arguments::is(filterby, "FILTERBY") => {
            if crate::arguments::is(kind, "MODULE") {
                ListFilter::Module
            } else if crate::arguments::is(kind, "ACLCAT") {
                ListFilter::Category(String::from_utf8_lossy(value).to_ascii_lowercase())
            } else if crate::arguments::is(kind, "PATTERN") {
                ListFilter::Pattern(value.to_vec())
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
        _ => return Err(errors::SYNTAX.into()),
    };
    let names: Vec<&str> = all_commands(context.server)
        .into_iter()
        .filter(|command| match &filter {
            ListFilter::All => true,
            ListFilter::Module => false,
            ListFilter::Category(category) => {
                command.acl_categories.iter().any(|own| own == category)
            }
            ListFilter::Pattern(pattern) => glob_match(pattern, command.full_name.as_bytes(), true),
        })
        .map(|command| command.full_name.as_str())
        .collect();
    context.reply.array(names.len());
    for name in names {
        context.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// COMMAND HELP
pub fn command_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    super::reply_help(
        context,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}
