//! Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO.
//!
//! The scripts themselves run in `crate::scripting` (see its model). The script commands carry
//! the `EXCLUSIVE` table flag, so they run alone (the script barrier); SCRIPT KILL and
//! FUNCTION KILL are `allow_busy` and run beside a busy script.

use std::sync::atomic::Ordering;

use store::glob::glob_match;

use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context, HeldScope};
use crate::scripting::engine::ScriptResult;
use crate::scripting::{ScriptFlags, ScriptScope};
use crate::server::unix_time_ms;
use store::number::parse_i64;

pub fn register(table: &mut CommandTable) {
    table.handle_exclusive("eval", eval);
    table.handle_exclusive("eval_ro", eval_ro);
    table.handle_exclusive("evalsha", evalsha);
    table.handle_exclusive("evalsha_ro", evalsha_ro);
    table.handle_exclusive("fcall", fcall);
    table.handle_exclusive("fcall_ro", fcall_ro);
    table.handle("script|load", script_load);
    table.handle("script|exists", script_exists);
    table.handle("script|show", script_show);
    table.handle("script|flush", script_flush);
    table.handle("script|kill", script_kill);
    table.handle("function|load", function_load);
    table.handle("function|delete", function_delete);
    table.handle("function|list", function_list);
    table.handle("function|flush", function_flush);
    table.handle("function|dump", function_dump);
    table.handle("function|restore", function_restore);
    table.handle("function|stats", function_stats);
    table.handle("function|kill", function_kill);
    table.handle("function|help", function_help);
    table.handle("script|help", script_help);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Splits `numkeys key... arg...` (starting at `args[2]`) into keys and arguments.
fn keys_and_args<'a>(
    args: &'a [&'a [u8]],
    not_integer: &'static str,
) -> Result<(&'a [&'a [u8]], &'a [&'a [u8]]), crate::context::CommandError> {
    let count = parse_i64(args[2]).ok_or(not_integer)?;
    if count < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    let rest = &args[3..];
    if count as usize > rest.len() {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    Ok(rest.split_at(count as usize))
}

/// Runs a script or function: marks it running (for BUSY, KILL, FUNCTION STATS), lends it a
/// scope (its own, or EXEC's), and settles the scope after it.
#[allow(clippy::too_many_arguments)]
fn run(
    context: &mut Context,
    callback: mlua::Function,
    flags: ScriptFlags,
    access: Access,
    function_call: bool,
    name: &str,
    keys: &[&[u8]],
    args: &[&[u8]],
    whole: &[&[u8]],
) -> CommandResult {
    if access == Access::ReadOnly && !flags.legacy && !flags.no_writes {
        return Err("ERR Can not execute a script with write flag using *_ro command.".into());
    }
    let read_only = access == Access::ReadOnly || flags.no_writes;
    let server = context.server;
    // A script that may write is refused up front while the dataset cannot be persisted.
    if !flags.legacy && !flags.no_writes && !context.client.must_obey() {
        if let Some(error) = crate::rdb::disk_error(server) {
            return Err(error.script_message().into());
        }
    }
    let out_of_memory = !flags.allow_oom && crate::eviction::out_of_memory(server);
    // A function or a script with a shebang that may write is refused up front when memory is
    // full; a legacy script finds out at its first write.
    if out_of_memory && !flags.legacy && !flags.no_writes {
        return Err(crate::eviction::OOM_ERROR.into());
    }
    // Likewise with too few good replicas: a script that may write is refused up front, a
    // legacy one at its first write.
    if !flags.legacy && !flags.no_writes && crate::replication::refuses_writes(server) {
        return Err(crate::replication::NO_REPLICAS_ERROR.into());
    }
    if server.monitors.active() && !context.client.retrying {
        let source = context.client.shared.address_text();
        server
            .monitors
            .feed_script(context.client.database, &source, whole);
    }
    let running = &server.scripting.running;
    running.deny_oom.store(out_of_memory, Ordering::Relaxed);
    running.function.store(function_call, Ordering::Relaxed);
    running.started_ms.store(unix_time_ms(), Ordering::Relaxed);
    running.busy.store(false, Ordering::Relaxed);
    running.kill_requested.store(false, Ordering::Relaxed);
    running.wrote.store(false, Ordering::Relaxed);
    running.handoffs.store(0, Ordering::Relaxed);
    if function_call {
        *running.description.lock() = Some((
            name.as_bytes().to_vec(),
            whole.iter().map(|arg| arg.to_vec()).collect(),
        ));
    }
    running.active.store(true, Ordering::Release);
    let mut engine = server.scripting.engine();
    let result = match context.scope {
        Some(scope) => engine.run_callback(
            server,
            context.client,
            scope,
            None,
            &callback,
            function_call,
            read_only,
            name,
            keys,
            args,
            &mut context.reply,
        ),
        None => {
            let scope = ScriptScope::new(server);
            let result = engine.run_callback(
                server,
                context.client,
                &scope as &dyn HeldScope,
                Some(&scope.replicate),
                &callback,
                function_call,
                read_only,
                name,
                keys,
                args,
                &mut context.reply,
            );
            drop(engine);
            scope.finish();
            result
        }
    };
    if result == ScriptResult::Failed {
        // Replied an error (already counted in errorstats): a failed call of EVAL / FCALL.
        context.command.stats.add_failed();
    }
    running.active.store(false, Ordering::Release);
    running.busy.store(false, Ordering::Release);
    running.kill_requested.store(false, Ordering::Relaxed);
    if function_call {
        *running.description.lock() = None;
    }
    Ok(())
}

fn eval_common(
    context: &mut Context,
    args: &[&[u8]],
    access: Access,
    by_sha: bool,
) -> CommandResult {
    let (keys, script_args) = keys_and_args(args, errors::NOT_INTEGER)?;
    let (sha, callback, flags) = {
        let mut engine = context.server.scripting.engine();
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
            if !engine.scripts.contains_key(&sha) {
                return Err(NOSCRIPT_ERROR.into());
            }
            sha
        } else {
            load_counted(&context.server.scripting, &mut engine, args[1])?
        };
        let script = &engine.scripts[&sha];
        (sha.clone(), script.function.clone(), script.flags)
    };
    run(
        context,
        callback,
        flags,
        access,
        false,
        &sha,
        keys,
        script_args,
        args,
    )
}

/// EVAL script numkeys [key [key ...]] [arg [arg ...]]
fn eval(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    eval_common(context, args, Access::ReadWrite, false)
}

/// EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]
fn eval_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    eval_common(context, args, Access::ReadOnly, false)
}

/// EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]
fn evalsha(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    eval_common(context, args, Access::ReadWrite, true)
}

/// EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]
fn evalsha_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    eval_common(context, args, Access::ReadOnly, true)
}

fn fcall_common(context: &mut Context, args: &[&[u8]], access: Access) -> CommandResult {
    let (keys, function_args) = keys_and_args(args, "ERR Bad number of keys provided")?;
    let name = String::from_utf8_lossy(args[1]).into_owned();
    let (callback, flags) = {
        let engine = context.server.scripting.engine();
        let Some(library) = engine.functions.get(&name.to_ascii_lowercase()) else {
            return Err("ERR Function not found".into());
        };
        let function = engine.libraries[library]
            .functions
            .iter()
            .find(|(function_name, _)| function_name.eq_ignore_ascii_case(&name))
            .map(|(_, function)| function)
            .expect("the function index matches the libraries");
        (function.callback.clone(), function.flags)
    };
    run(
        context,
        callback,
        flags,
        access,
        true,
        &name,
        keys,
        function_args,
        args,
    )
}

/// FCALL function numkeys [key [key ...]] [arg [arg ...]]
fn fcall(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    fcall_common(context, args, Access::ReadWrite)
}

/// FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]
fn fcall_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    fcall_common(context, args, Access::ReadOnly)
}

/// The reply to a SHA1 no cached script has.
const NOSCRIPT_ERROR: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Caches a script's `body` (EVAL, SCRIPT LOAD) and keeps INFO's count of cached scripts
/// true; returns its SHA1.
fn load_counted(
    scripting: &crate::scripting::Scripting,
    engine: &mut crate::scripting::engine::Engine,
    body: &[u8],
) -> Result<String, String> {
    let sha = engine.load_script(body)?;
    scripting
        .script_count
        .store(engine.scripts.len(), Ordering::Relaxed);
    Ok(sha)
}

/// SCRIPT LOAD script
fn script_load(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let sha = {
        let mut engine = context.server.scripting.engine();
        load_counted(&context.server.scripting, &mut engine, args[2])?
    };
    context.reply.bulk(sha.as_bytes());
    Ok(())
}

/// SCRIPT EXISTS sha1 [sha1 ...]
fn script_exists(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let engine = context.server.scripting.engine();
    let found: Vec<bool> = args[2..]
        .iter()
        .map(|sha| {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            engine.scripts.contains_key(&sha)
        })
        .collect();
    drop(engine);
    context.reply.array(found.len());
    for exists in found {
        context.reply.integer(exists as i64);
    }
    Ok(())
}

/// SCRIPT SHOW sha1 (Valkey 8): the body of a cached script.
fn script_show(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let sha = String::from_utf8_lossy(args[2]).to_ascii_lowercase();
    let body = context
        .server
        .scripting
        .engine()
        .scripts
        .get(&sha)
        .map(|script| script.body.clone());
    match body {
        Some(body) => {
            context.reply.bulk(&body);
            Ok(())
        }
        None => Err(NOSCRIPT_ERROR.into()),
    }
}

/// Reads the optional `ASYNC | SYNC` of SCRIPT FLUSH and FUNCTION FLUSH.
fn flush_mode(args: &[&[u8]], command: &str) -> CommandResult {
    match args.get(2) {
        None => Ok(()),
        Some(mode) if args.len() == 3 && (is(mode, "ASYNC") || is(mode, "SYNC")) => Ok(()),
        Some(_) => Err(format!("ERR {command} only supports SYNC|ASYNC option").into()),
    }
}

/// SCRIPT FLUSH [ASYNC | SYNC]
fn script_flush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    flush_mode(args, "SCRIPT FLUSH")?;
    context.server.scripting.engine().flush_scripts();
    context
        .server
        .scripting
        .script_count
        .store(0, Ordering::Relaxed);
    context.reply.ok();
    Ok(())
}

/// SCRIPT KILL and FUNCTION KILL: only while a script (or function) that wrote nothing runs.
/// What SCRIPT KILL and FUNCTION KILL may stop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Killable {
    Eval,
    Function,
}

fn kill(context: &mut Context, target: Killable) -> CommandResult {
    let running = &context.server.scripting.running;
    if !running.active.load(Ordering::Acquire) {
        return Err("NOTBUSY No scripts in execution right now.".into());
    }
    let running_kind = if running.function.load(Ordering::Relaxed) {
        Killable::Function
    } else {
        Killable::Eval
    };
    if running_kind != target {
        // Each kind is killed by its own command only; the error names that command.
        return Err(match running_kind {
            Killable::Function => "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            Killable::Eval => "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        }
        .into());
    }
    if running.wrote.load(Ordering::Relaxed) {
        return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into());
    }
    running.kill_requested.store(true, Ordering::Release);
    context.reply.ok();
    Ok(())
}

/// SCRIPT KILL
fn script_kill(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    kill(context, Killable::Eval)
}

/// FUNCTION KILL
fn function_kill(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    kill(context, Killable::Function)
}

fn update_counts(context: &Context, engine: &crate::scripting::engine::Engine) {
    crate::rdb::libraries_changed(context.server, engine);
}

/// FUNCTION LOAD [REPLACE] function-code
fn function_load(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut replace = false;
    for option in &args[2..args.len() - 1] {
        if is(option, "REPLACE") {
            replace = true;
        } else {
            return Err(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(option)
            )
            .into());
        }
    }
    let code = args[args.len() - 1];
    let mut engine = context.server.scripting.engine();
    let name = engine.load_library(code, replace)?;
    update_counts(context, &engine);
    drop(engine);
    context.propagate(args);
    context.reply.bulk(name.as_bytes());
    Ok(())
}

/// FUNCTION DELETE library-name
fn function_delete(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let name = String::from_utf8_lossy(args[2]).into_owned();
    let mut engine = context.server.scripting.engine();
    if !engine.delete_library(&name) {
        return Err("ERR Library not found".into());
    }
    update_counts(context, &engine);
    drop(engine);
    context.propagate(args);
    context.reply.ok();
    Ok(())
}

/// FUNCTION FLUSH [ASYNC | SYNC]
fn function_flush(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(crate::context::subcommand_syntax_error("FUNCTION", args[1]));
    }
    flush_mode(args, "FUNCTION FLUSH")?;
    let mut engine = context.server.scripting.engine();
    engine.flush_libraries();
    update_counts(context, &engine);
    drop(engine);
    context.propagate(args);
    context.reply.ok();
    Ok(())
}

/// FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]
fn function_list(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut index = 2;
    while index < args.len() {
        if is(args[index], "WITHCODE") {
            if with_code {
                return Err("ERR Unknown argument withcode".into());
            }
            with_code = true;
        } else if is(args[index], "LIBRARYNAME") {
            if pattern.is_some() {
                return Err("ERR library name argument was already given".into());
            }
            let Some(value) = args.get(index + 1) else {
                return Err("ERR library name argument was not given".into());
            };
            pattern = Some(value);
            index += 1;
        } else {
            return Err(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(args[index])
            )
            .into());
        }
        index += 1;
    }
    let engine = context.server.scripting.engine();
    let libraries: Vec<_> = engine
        .libraries
        .values()
        .filter(|library| {
            pattern.is_none_or(|pattern| glob_match(pattern, library.name.as_bytes(), false))
        })
        .collect();
    let reply = &mut context.reply;
    reply.array(libraries.len());
    for library in libraries {
        reply.map(if with_code { 4 } else { 3 });
        reply.bulk(b"library_name");
        reply.bulk(library.name.as_bytes());
        reply.bulk(b"engine");
        reply.bulk(b"LUA");
        reply.bulk(b"functions");
        reply.array(library.functions.len());
        for (name, function) in &library.functions {
            reply.map(3);
            reply.bulk(b"name");
            reply.bulk(name.as_bytes());
            reply.bulk(b"description");
            match &function.description {
                Some(description) => reply.bulk(description),
                None => reply.null(),
            }
            reply.bulk(b"flags");
            let names = function.flags.names();
            reply.set(names.len());
            for name in names {
                reply.bulk(name.as_bytes());
            }
        }
        if with_code {
            reply.bulk(b"library_code");
            reply.bulk(&library.code);
        }
    }
    Ok(())
}

/// FUNCTION DUMP: every library in Redis's payload format (FUNCTION2 records, RDB version,
/// CRC64), so that payloads move between Cinnabar and Redis.
fn function_dump(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let options = crate::rdb::encode_options(context.server);
    let engine = context.server.scripting.engine();
    let payload = persist::rdb::functions_payload(
        engine.libraries.values().map(|library| &library.code[..]),
        &options,
    );
    drop(engine);
    context.reply.bulk(&payload);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]
fn function_restore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let policy =
        match args.get(3) {
            None => RestorePolicy::Append,
            Some(word) if args.len() == 4 && is(word, "FLUSH") => RestorePolicy::Flush,
            Some(word) if args.len() == 4 && is(word, "APPEND") => RestorePolicy::Append,
            Some(word) if args.len() == 4 && is(word, "REPLACE") => RestorePolicy::Replace,
            Some(_) if args.len() > 4 => {
                return Err(crate::context::subcommand_syntax_error("FUNCTION", args[1]))
            }
            Some(_) => return Err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                    .into(),
            ),
        };
    let codes = persist::rdb::decode_functions_payload(args[2]).map_err(|error| match error {
        persist::rdb::PayloadError::VersionOrChecksum => {
            crate::context::CommandError::from("ERR payload version or checksum are wrong")
        }
        persist::rdb::PayloadError::BadFormat(error) => {
            crate::context::CommandError::from(format!("ERR {error}"))
        }
    })?;
    let mut engine = context.server.scripting.engine();
    if policy == RestorePolicy::Flush {
        engine.flush_libraries();
    }
    for code in &codes {
        if policy == RestorePolicy::Append {
            if let Some(name) = engine.existing_library(code) {
                update_counts(context, &engine);
                return Err(format!("ERR Library {name} already exists").into());
            }
        }
        if let Err(error) = engine.load_library(code, policy != RestorePolicy::Append) {
            update_counts(context, &engine);
            return Err(error.into());
        }
    }
    update_counts(context, &engine);
    drop(engine);
    context.propagate(args);
    context.reply.ok();
    Ok(())
}

/// FUNCTION STATS
fn function_stats(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let scripting = &context.server.scripting;
    let running = &scripting.running;
    let description =
        if running.active.load(Ordering::Acquire) && running.function.load(Ordering::Relaxed) {
            running.description.lock().clone()
        } else {
            None
        };
    let started_ms = running.started_ms.load(Ordering::Relaxed);
    let reply = &mut context.reply;
    reply.map(2);
    reply.bulk(b"running_script");
    match description {
        None => reply.null(),
        Some((name, command)) => {
            reply.map(3);
            reply.bulk(b"name");
            reply.bulk(&name);
            reply.bulk(b"command");
            reply.array(command.len());
            for arg in &command {
                reply.bulk(arg);
            }
            reply.bulk(b"duration_ms");
            reply.integer(unix_time_ms().saturating_sub(started_ms) as i64);
        }
    }
    reply.bulk(b"engines");
    reply.map(1);
    reply.bulk(b"LUA");
    reply.map(2);
    reply.bulk(b"libraries_count");
    reply.integer(scripting.library_count.load(Ordering::Relaxed) as i64);
    reply.bulk(b"functions_count");
    reply.integer(scripting.function_count.load(Ordering::Relaxed) as i64);
    Ok(())
}

/// SCRIPT HELP
fn script_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "SHOW <sha1>",
            "    Show a script from the scripts cache.",
        ],
    );
    Ok(())
}

/// FUNCTION HELP
fn function_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}
