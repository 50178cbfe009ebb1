//! The Lua interpreter: sandbox, the `redis` API, the script cache, function libraries, and
//! running a script or function with a script client.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hashbrown::HashMap;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use resp::ReplyWriter;

use super::{conversion, ScriptFlags};
use crate::client::{Client, ClientShared};
use crate::command::flags;
use crate::context::{Context, HeldScope};
use crate::server::{unix_time_ms, Server};

/// Lua instructions between two checks of the clock and the kill flag.
const HOOK_INSTRUCTIONS: u32 = 10_000;
/// Times a busy script hands its thread's other tasks to another worker (see `hook`).
const HANDOFFS: u32 = 10;

/// A cached EVAL script.
pub struct Script {
    pub body: Vec<u8>,
    pub function: Function,
    pub flags: ScriptFlags,
}

/// One function of a library.
pub struct LibraryFunction {
    pub callback: Function,
    pub flags: ScriptFlags,
    pub description: Option<Vec<u8>>,
}

/// A function library (FUNCTION LOAD).
pub struct Library {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, LibraryFunction>,
}

pub struct Engine {
    lua: Lua,
    /// The sandboxed globals scripts see, and the table behind them (KEYS, ARGV).
    env: Table,
    real: Table,
    run: Function,
    /// Switches the sandbox's globals to those of a library's top-level code (true) and back.
    use_load_globals: Function,
    pub scripts: HashMap<String, Script>,
    pub libraries: BTreeMap<String, Library>,
    /// Lower-cased function name (FCALL is case-insensitive) → library name.
    pub functions: HashMap<String, String>,
    script_client: Option<Client>,
    /// "KEYS" and "ARGV", made once (setting a global by a Rust `&str` makes its Lua string
    /// on every call).
    keys_name: mlua::LuaString,
    argv_name: mlua::LuaString,
}

/// Pushes a new array table of `items` (as Lua strings).
///
/// # Safety
/// Raw Lua API use: `state` has room for two more values; called in protected mode.
unsafe fn push_string_array(state: *mut mlua::ffi::lua_State, items: &[&[u8]]) {
    use mlua::ffi;
    // SAFETY: see above; the strings are copied by Lua.
    unsafe {
        ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as i32, 0);
        for (index, item) in items.iter().enumerate() {
            ffi::lua_pushlstring(state, item.as_ptr() as *const _, item.len());
            ffi::lua_rawseti(state, -2, (index + 1) as _);
        }
    }
}

/// What the `redis` API needs while a script runs; reached from Lua through app data.
pub(super) struct CallState<'a> {
    server: &'a Server,
    client: &'a mut Client,
    scope: &'a (dyn HeldScope + 'a),
    replicate: Option<&'a std::cell::Cell<bool>>,
    read_only: bool,
    /// The client that runs the script: what the script reads is tracked for it, what it runs
    /// slowly is logged under its address and name.
    caller: &'a Client,
    caller_id: u64,
    /// Whether that client gave CLIENT CACHING for this command.
    caller_caching: bool,
    /// The time every command of the script sees: frozen at its start, as in Redis (a key
    /// does not expire in the middle of a script).
    now_ms: u64,
}

thread_local! {
    /// The running script's [`CallState`] (null when none runs on this thread): set by
    /// `run_callback` for the call's duration, read by the primitives and the hook, which run
    /// on the script's thread. A thread-local rather than Lua app data: no allocation per call.
    static CURRENT_CALL: std::cell::Cell<*mut CallState<'static>> =
        const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// The running script's state, if a script runs on this thread.
fn current_call() -> Option<*mut CallState<'static>> {
    let pointer = CURRENT_CALL.with(std::cell::Cell::get);
    (!pointer.is_null()).then_some(pointer)
}

/// How long FUNCTION LOAD may run a library's top-level code (Redis's `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// A library being loaded: the functions it registers.
struct Loading {
    functions: BTreeMap<String, LibraryFunction>,
    started: std::time::Instant,
}

/// Redis's PRNG for `math.random` (rand48), reseeded before every script.
struct Rand48(u64);

impl Rand48 {
    fn seed(&mut self, seed: i32) {
        self.0 = ((seed as u32 as u64) << 16) | 0x330E;
    }

    fn next(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        (self.0 >> 17) as i32
    }
}

fn error_table(lua: &Lua, message: &str) -> mlua::Result<(bool, Value)> {
    let table = lua.create_table()?;
    table.raw_set("err", message)?;
    Ok((false, Value::Table(table)))
}

/// `%.14g`, as Lua 5.1 turns numbers into strings.
pub fn lua_number_text(value: f64) -> String {
    super::cjson::format_g(value, 14)
}

/// What a script or function call produced: its reply bytes.
pub enum Outcome {
    Reply(Vec<u8>),
}

impl Engine {
    pub fn new() -> Self {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::DEBUG;
        // SAFETY: `debug` is loaded only for the bootstrap's error handler, which keeps
        // `debug.getinfo` in an upvalue; scripts never see the `debug` table.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::default()) };
        let (env, real, run, apis) = bootstrap(&lua).expect("the Lua bootstrap runs");
        let use_load_globals = apis
            .raw_get("use_load_globals")
            .expect("the bootstrap returns its switch of globals");
        let mut random = Rand48(0);
        random.seed(0);
        lua.set_app_data(random);
        install_regular_hook(&lua).expect("the Lua hook installs");
        let keys_name = lua.create_string("KEYS").expect("a Lua string");
        let argv_name = lua.create_string("ARGV").expect("a Lua string");
        Engine {
            lua,
            env,
            real,
            run,
            use_load_globals,
            scripts: HashMap::new(),
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
            script_client: None,
            keys_name,
            argv_name,
        }
    }

    /// Compiles and caches an EVAL script; returns its SHA1.
    pub fn load_script(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = super::sha1::hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, compiled) = super::parse_eval_shebang(body)?;
        let function = self
            .lua
            .load(&compiled[..])
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|error| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    compile_message(&error)
                )
            })?;
        self.scripts.insert(
            sha.clone(),
            Script {
                body: body.to_vec(),
                function,
                flags,
            },
        );
        Ok(sha)
    }

    /// SCRIPT FLUSH.
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        let _ = self.lua.gc_collect();
    }

    /// Compiles a library and runs its registration code. Returns its name.
    /// The name of the library `code` defines, when one of that name is loaded already.
    pub fn existing_library(&self, code: &[u8]) -> Option<String> {
        let (name, _) = parse_library_shebang(code).ok()?;
        self.libraries.contains_key(&name).then_some(name)
    }

    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, body) = parse_library_shebang(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let function = self
            .lua
            .load(&body[..])
            .set_name("@user_function")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|error| {
                format!("ERR Error compiling function: {}", compile_message(&error))
            })?;
        self.lua.set_app_data(Loading {
            functions: BTreeMap::new(),
            started: std::time::Instant::now(),
        });
        let _ = self.use_load_globals.call::<()>(true);
        let result: mlua::Result<MultiValue> = self.run.call((function, Value::Nil, Value::Nil));
        let _ = self.use_load_globals.call::<()>(false);
        let loading = self
            .lua
            .remove_app_data::<Loading>()
            .expect("the loading state is set");
        let values = result.map_err(|error| format!("ERR Error registering functions: {error}"))?;
        let mut values = values.into_iter();
        if let Some(Value::Boolean(false)) = values.next() {
            let message = match values.next() {
                Some(Value::Table(table)) => table
                    .get::<String>("err")
                    .unwrap_or_else(|_| "ERR unknown error".into()),
                _ => "ERR unknown error".into(),
            };
            return Err(format!("ERR Error registering functions: {message}"));
        }
        if loading.functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for function_name in loading.functions.keys() {
            if let Some(owner) = self.functions.get(&function_name.to_ascii_lowercase()) {
                if *owner != name {
                    return Err(format!("ERR Function {function_name} already exists"));
                }
            }
        }
        if let Some(previous) = self.libraries.remove(&name) {
            for function_name in previous.functions.keys() {
                self.functions.remove(&function_name.to_ascii_lowercase());
            }
        }
        for function_name in loading.functions.keys() {
            self.functions
                .insert(function_name.to_ascii_lowercase(), name.clone());
        }
        self.libraries.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code: code.to_vec(),
                functions: loading.functions,
            },
        );
        Ok(name)
    }

    /// Deletes a library; false when there is none by that name.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(library) = self.libraries.remove(name) else {
            return false;
        };
        for function_name in library.functions.keys() {
            self.functions.remove(&function_name.to_ascii_lowercase());
        }
        true
    }

    pub fn flush_libraries(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        let _ = self.lua.gc_collect();
    }

    /// Counts for FUNCTION STATS.
    pub fn counts(&self) -> (usize, usize) {
        (self.libraries.len(), self.functions.len())
    }

    /// Runs a cached script or a function with `keys` and `args`; the reply is written in the
    /// caller's protocol into `reply`. `name` is the SHA1 or the function name (for errors).
    #[allow(clippy::too_many_arguments)]
    pub fn run_callback(
        &mut self,
        server: &Server,
        caller: &Client,
        scope: &(dyn HeldScope + '_),
        replicate: Option<&std::cell::Cell<bool>>,
        callback: &Function,
        function_call: bool,
        read_only: bool,
        name: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
        reply: &mut ReplyWriter,
    ) -> ScriptResult {
        if server
            .scripting
            .running
            .hook_escalated
            .swap(false, Ordering::Relaxed)
        {
            // The previous script was killed: back to the cheap hook.
            let _ = install_regular_hook(&self.lua);
        }
        let lua = &self.lua;
        // SAFETY: the closure runs protected (a memory error comes back as an Err) and owns
        // nothing: it only reads the borrowed keys and arguments.
        let tables = unsafe {
            lua.exec_raw::<(Table, Table)>((), |state| {
                push_string_array(state, keys);
                push_string_array(state, args);
            })
        };
        let Ok((keys_table, args_table)) = tables else {
            return fail_counted(
                server,
                reply,
                b"ERR out of memory creating the script's arguments",
            );
        };
        let mut client = self.script_client.take().unwrap_or_else(|| {
            let address = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
            let shared = Arc::new(ClientShared::new(
                crate::client::SCRIPT_CLIENT_ID,
                address,
                address,
                -1,
                unix_time_ms(),
            ));
            Client::new(shared, true, server.acl.default_user())
        });
        client.database = caller.database;
        client.protocol = resp::Protocol::Resp2;
        if !Arc::ptr_eq(&client.user, &caller.user) {
            client.user = caller.user.clone();
        }
        let mut state = CallState {
            server,
            client: &mut client,
            scope,
            replicate,
            read_only,
            caller,
            caller_id: caller.id,
            caller_caching: caller.tracking_caching,
            now_ms: unix_time_ms(),
        };
        let pointer = &mut state as *mut CallState<'_> as *mut CallState<'static>;
        CURRENT_CALL.with(|current| current.set(pointer));
        let result: mlua::Result<MultiValue> = if function_call {
            self.run.call((callback.clone(), keys_table, args_table))
        } else {
            let _ = self.real.raw_set(self.keys_name.clone(), keys_table);
            let _ = self.real.raw_set(self.argv_name.clone(), args_table);
            self.run.call((callback.clone(), Value::Nil, Value::Nil))
        };
        CURRENT_CALL.with(|current| current.set(std::ptr::null_mut()));
        drop(state);
        // What redis.setresp chose last: it decides how false converts (null under RESP2).
        let script_resp3 = client.protocol == resp::Protocol::Resp3;
        self.script_client = Some(client);
        let running = &server.scripting.running;
        if running.kill_requested.load(Ordering::Acquire) {
            let command = if function_call { "FUNCTION" } else { "SCRIPT" };
            let message = format!("ERR Script killed by user with {command} KILL...");
            return fail_counted(server, reply, message.as_bytes());
        }
        match result {
            Err(error) => fail_counted(server, reply, format!("ERR {error}").as_bytes()),
            Ok(values) => {
                let mut values = values.into_iter();
                match values.next() {
                    Some(Value::Boolean(true)) => {
                        let value = values.next().unwrap_or(Value::Nil);
                        conversion::lua_to_reply(&value, reply, script_resp3);
                        match conversion::top_level_error(&value) {
                            None => ScriptResult::Succeeded,
                            Some((message, counted)) => {
                                if !counted {
                                    server.stats.count_error(&message);
                                }
                                ScriptResult::Failed
                            }
                        }
                    }
                    _ => match values.next() {
                        Some(Value::Table(table)) => {
                            let message = script_error(&table, name);
                            reply.error(message.as_bytes());
                            if !conversion::error_already_counted(&table) {
                                server.stats.count_error(message.as_bytes());
                            }
                            ScriptResult::Failed
                        }
                        _ => fail_counted(server, reply, b"ERR unknown error"),
                    },
                }
            }
        }
    }
}

/// How a script or function call ended, for its command's `failed_calls`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScriptResult {
    Succeeded,
    /// It replied an error: counted in INFO errorstats once, where it arose (an error a
    /// command inside the script replied was counted when that command ran).
    Failed,
}

/// Replies `message` as an error and counts it (INFO errorstats).
fn fail_counted(server: &Server, reply: &mut ReplyWriter, message: &[u8]) -> ScriptResult {
    server.stats.count_error(message);
    reply.error(message);
    ScriptResult::Failed
}

/// The error a failed script replies: the error text, then where it happened.
fn script_error(table: &Table, name: &str) -> String {
    let message = table
        .get::<mlua::LuaString>("err")
        .map(|text| String::from_utf8_lossy(&text.as_bytes()).into_owned())
        .unwrap_or_else(|_| "ERR unknown error".into());
    let message = message.replace(['\r', '\n'], " ");
    match (
        table.get::<mlua::LuaString>("source"),
        table.get::<i64>("line"),
    ) {
        (Ok(source), Ok(line)) => format!(
            "{message} script: {name}, on {}:{line}.",
            String::from_utf8_lossy(&source.as_bytes())
        ),
        _ => message,
    }
}

/// A compile error's message as Lua prints it (`user_script:1: ...`).
fn compile_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `#!lua name=<library>`: the library's name and the code to compile (the shebang line
/// emptied so line numbers stay right).
fn parse_library_shebang(code: &[u8]) -> Result<(String, Vec<u8>), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(code.len());
    // The shebang splits as Redis's `sdssplitargs` does (quotes allowed).
    let mut storage = Vec::new();
    let mut ranges = Vec::new();
    if resp::split_arguments(&code[..end], &mut storage, &mut ranges).is_err() {
        return Err("ERR Invalid library metadata".into());
    }
    let parts: Vec<&[u8]> = ranges
        .iter()
        .map(|&(start, end)| &storage[start..end])
        .collect();
    let engine = parts
        .first()
        .map_or(&b""[..], |first| &first[2.min(first.len())..]);
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut name = None;
    for part in parts.iter().skip(1) {
        match part.strip_prefix(b"name=") {
            Some(_) if name.is_some() => {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                )
            }
            Some(value) => name = Some(value.to_vec()),
            None => {
                return Err(format!(
                    "ERR Invalid metadata value given: {}",
                    String::from_utf8_lossy(part)
                ))
            }
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    let mut body = code[end..].to_vec();
    if body.is_empty() {
        body.push(b'\n');
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), body))
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The Lua hook: marks the script busy past the threshold and obeys SCRIPT/FUNCTION KILL.
fn hook(lua: &Lua) -> mlua::Result<VmState> {
    let Some(current) = current_call() else {
        // A library's top-level code may not run forever.
        if let Some(loading) = lua.app_data_ref::<Loading>() {
            if loading.started.elapsed() >= LOAD_TIMEOUT {
                return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
            }
        }
        return Ok(VmState::Continue);
    };
    // SAFETY: see `CURRENT_CALL`.
    let server = unsafe { (*current).server };
    let running = &server.scripting.running;
    if !running.busy.load(Ordering::Relaxed) {
        let threshold_ms = server.config.get_i64("busy-reply-threshold").max(0) as u64;
        let elapsed_ms = unix_time_ms().saturating_sub(running.started_ms.load(Ordering::Relaxed));
        if threshold_ms > 0 && elapsed_ms >= threshold_ms {
            tracing::warn!(
                "Slow script detected: still in execution after {elapsed_ms} milliseconds. You can try killing the script using the SCRIPT KILL command."
            );
            running.busy.store(true, Ordering::Release);
        }
    }
    if running.busy.load(Ordering::Relaxed) && running.handoffs.load(Ordering::Relaxed) < HANDOFFS {
        // The script keeps this worker thread: hand the thread's other tasks (queued
        // connections, including the one tokio would poll next) to another worker, so that
        // their clients get BUSY instead of waiting for the script. The pause lets the new
        // worker take the queues before this thread could reclaim them; it is repeated a few
        // times because that is not guaranteed.
        running.handoffs.fetch_add(1, Ordering::Relaxed);
        if tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        }) {
            tokio::task::block_in_place(|| std::thread::sleep(std::time::Duration::from_millis(1)));
        }
    }
    if running.kill_requested.load(Ordering::Acquire) {
        // From now on the hook runs on every line, so that a script catching the error with
        // pcall gets it again as soon as it leaves the pcall (Redis does the same).
        if !running.hook_escalated.swap(true, Ordering::Relaxed) {
            lua.set_hook(HookTriggers::new().every_line(), |lua, _debug| hook(lua))?;
        }
        return Err(mlua::Error::RuntimeError("Script killed by user".into()));
    }
    Ok(VmState::Continue)
}

/// The hook every script starts with: a look at the clock and the kill flag every
/// [`HOOK_INSTRUCTIONS`] instructions.
fn install_regular_hook(lua: &Lua) -> mlua::Result<()> {
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
        |lua, _debug| hook(lua),
    )
}

/// Runs one command for a script: Redis's checks for scripts, then the handler with the
/// script client; returns the reply as RESP.
pub(super) fn call_command(state: &mut CallState, argv: &[&[u8]]) -> Vec<u8> {
    let server = state.server;
    let mut output = Vec::new();
    let protocol = state.client.protocol;
    // A command refused before it runs is counted as Redis's `scriptCall` counts it: in INFO
    // errorstats and, when the command exists, its `rejected_calls`.
    let fail = |output: &mut Vec<u8>, message: &str| {
        server.stats.count_error(message.as_bytes());
        ReplyWriter::new(output, protocol).error(message.as_bytes());
    };
    let Some(mut command) = server.commands.get(argv[0]) else {
        fail(&mut output, "ERR Unknown Redis command called from script");
        return output;
    };
    if command.is_container() && argv.len() >= 2 {
        match command.subcommand(argv[1]) {
            Some(sub) => command = sub,
            None => {
                fail(&mut output, "ERR Unknown Redis command called from script");
                return output;
            }
        }
    }
    if !command.arity_allows(argv.len()) {
        fail(
            &mut output,
            "ERR Wrong number of args calling Redis command from script",
        );
        command.stats.add_rejected();
        return output;
    }
    let noscript_allowed = server
        .scripting
        .running
        .noscript_allowed
        .load(Ordering::Relaxed);
    // Never, whatever the knob: a script inside a script (the engine is busy with this one),
    // nor DEBUG LOADAOF (its replay locks shards this script's scope may hold).
    let never = matches!(
        command.full_name.as_str(),
        "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro"
    ) || (command.full_name == "debug"
        && argv
            .get(1)
            .is_some_and(|sub| sub.eq_ignore_ascii_case(b"loadaof")));
    if (command.has(flags::NOSCRIPT) && !noscript_allowed) || never {
        fail(
            &mut output,
            "ERR This Redis command is not allowed from script",
        );
        command.stats.add_rejected();
        return output;
    }
    let user = &state.caller.user;
    if !user.unrestricted && !state.caller.must_obey() {
        let refused = crate::families::acl::enforce(
            server,
            state.caller,
            user,
            command,
            argv,
            crate::acl::LogContext::Lua,
        );
        if let Err((_, message)) = refused {
            fail(
                &mut output,
                &format!("ERR ACL failure in script: {message}"),
            );
            command.stats.add_rejected();
            return output;
        }
    }
    if command.has(flags::WRITE) && state.read_only {
        fail(
            &mut output,
            "ERR Write commands are not allowed from read-only scripts.",
        );
        command.stats.add_rejected();
        return output;
    }
    if command.has(flags::WRITE) && !state.caller.must_obey() {
        if let Some(error) = crate::rdb::disk_error(server) {
            fail(&mut output, &error.message());
            command.stats.add_rejected();
            return output;
        }
    }
    if command.has(flags::WRITE) && crate::replication::refuses_writes(server) {
        fail(&mut output, crate::replication::NO_REPLICAS_ERROR);
        command.stats.add_rejected();
        return output;
    }
    let running = &server.scripting.running;
    if command.has(flags::DENYOOM)
        && running.deny_oom.load(Ordering::Relaxed)
        && !running.wrote.load(Ordering::Relaxed)
    {
        fail(&mut output, crate::eviction::OOM_ERROR);
        command.stats.add_rejected();
        return output;
    }
    let handler = command
        .handler
        .expect("the table holds only commands with handlers");
    let started = std::time::Instant::now();
    let result = {
        let mut context = Context {
            server,
            client: &mut *state.client,
            reply: ReplyWriter::new(&mut output, protocol),
            now_ms: state.now_ms,
            command,
            scope: Some(state.scope),
        };
        handler(&mut context, argv)
    };
    if server.monitors.active() {
        server
            .monitors
            .feed(command, state.client.database, "lua", argv);
    }
    let elapsed = started.elapsed();
    command.stats.add_calls(1);
    command.stats.add_microseconds(elapsed.as_micros() as u64);
    crate::latency::record_call(server, state.caller, command, argv, elapsed);
    // The caller's `tot-cmds` (CLIENT LIST) counts what its scripts run.
    state
        .caller
        .shared
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    server
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    match result {
        Err(error) => {
            command.stats.add_failed();
            server.stats.count_error(error.0.as_bytes());
            ReplyWriter::new(&mut output, protocol).error(error.0.as_bytes());
        }
        Ok(()) => {
            if command.has(flags::WRITE) {
                server
                    .scripting
                    .running
                    .wrote
                    .store(true, Ordering::Relaxed);
            }
            if server.tracking.active() {
                crate::connection::track_read(
                    server,
                    state.caller_id,
                    state.caller_caching,
                    command,
                    argv,
                );
            }
        }
    }
    // Commands inside a script never block (the scope makes them behave as in EXEC).
    state.client.blocked = None;
    output
}

impl CallState<'_> {
    /// Whether the script chose RESP3 (redis.setresp(3)): replies convert accordingly.
    pub(super) fn speaks_resp3(&self) -> bool {
        self.client.protocol == resp::Protocol::Resp3
    }
}

pub(super) fn with_state<R>(f: impl FnOnce(&mut CallState) -> R) -> Option<R> {
    let current = current_call()?;
    // SAFETY: see `CURRENT_CALL`; the state is not otherwise borrowed while Lua calls back.
    let state = unsafe { &mut *current };
    Some(f(state))
}

fn primitive_sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return error_table(lua, "ERR wrong number of arguments");
    }
    let text = match &args[0] {
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Integer(value) => value.to_string().into_bytes(),
        Value::Number(value) => lua_number_text(*value).into_bytes(),
        _ => Vec::new(),
    };
    Ok((
        true,
        Value::String(lua.create_string(super::sha1::hex(&text))?),
    ))
}

fn primitive_log(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() < 2 {
        return error_table(lua, "ERR redis.log() requires two arguments or more.");
    }
    let level = match &args[0] {
        Value::Integer(level) => *level as i64,
        Value::Number(level) => *level as i64,
        _ => return error_table(lua, "ERR First argument must be a number (log level)."),
    };
    if !(0..=3).contains(&level) {
        return error_table(lua, "ERR Invalid debug level.");
    }
    let mut message = String::new();
    for (index, arg) in args.iter().skip(1).enumerate() {
        if index > 0 {
            message.push(' ');
        }
        match arg {
            Value::String(text) => message.push_str(&String::from_utf8_lossy(&text.as_bytes())),
            Value::Integer(value) => message.push_str(&value.to_string()),
            Value::Number(value) => message.push_str(&lua_number_text(*value)),
            _ => {}
        }
    }
    match level {
        0 => tracing::debug!("{message}"),
        1 => tracing::debug!("{message}"),
        2 => tracing::info!("{message}"),
        _ => tracing::warn!("{message}"),
    }
    Ok((true, Value::Nil))
}

fn integer_argument(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(value) => Some(*value as i64),
        Value::Number(value) => Some(*value as i64),
        Value::String(text) => std::str::from_utf8(&text.as_bytes())
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|value| value as i64),
        _ => None,
    }
}

fn primitive_setresp(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return error_table(lua, "ERR redis.setresp() requires one argument.");
    }
    let protocol = match integer_argument(&args[0]) {
        Some(2) => resp::Protocol::Resp2,
        Some(3) => resp::Protocol::Resp3,
        _ => return error_table(lua, "ERR RESP version must be 2 or 3."),
    };
    with_state(|state| state.client.protocol = protocol);
    Ok((true, Value::Nil))
}

fn primitive_set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return error_table(lua, "ERR redis.set_repl() requires one argument.");
    }
    let Some(flags @ 0..=3) = integer_argument(&args[0]) else {
        return error_table(
            lua,
            "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    };
    with_state(|state| {
        if let Some(replicate) = state.replicate {
            replicate.set(flags != 0);
        }
    });
    Ok((true, Value::Nil))
}

fn primitive_acl_check_cmd(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.is_empty() {
        return error_table(
            lua,
            "ERR Please specify at least one argument for this redis lib call",
        );
    }
    let mut words: Vec<Vec<u8>> = Vec::with_capacity(args.len());
    for value in args.iter() {
        match value {
            Value::String(text) => words.push(text.as_bytes().to_vec()),
            Value::Integer(number) => words.push(number.to_string().into_bytes()),
            Value::Number(number) => words.push(lua_number_text(*number).into_bytes()),
            _ => {
                return error_table(
                    lua,
                    "ERR Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    let argv: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
    let allowed = with_state(|state| {
        let mut command = state.server.commands.get(argv[0])?;
        if command.is_container() && argv.len() >= 2 {
            command = command.subcommand(argv[1])?;
        }
        Some(state.caller.user.check(command, &argv).is_ok())
    })
    .flatten();
    match allowed {
        Some(allowed) => Ok((true, Value::Boolean(allowed))),
        None => error_table(lua, "ERR Invalid command passed to redis.acl_check_cmd()"),
    }
}

fn primitive_register_function(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if lua.app_data_ref::<Loading>().is_none() {
        return error_table(
            lua,
            "ERR redis.register_function can only be called on FUNCTION LOAD command",
        );
    }
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Value::Table(table) = &args[0] else {
                return error_table(lua, "ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let mut name = None;
            let mut callback = None;
            let mut flags = ScriptFlags::default();
            let mut description = None;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                let key = match &key {
                    Value::String(key) => key.as_bytes().to_vec(),
                    _ => return error_table(
                        lua,
                        "ERR named argument key given to redis.register_function is not a string",
                    ),
                };
                match &key[..] {
                    b"function_name" => match value {
                        Value::String(text) => name = Some(text.as_bytes().to_vec()),
                        _ => return error_table(lua, "ERR function_name argument given to redis.register_function must be a string"),
                    },
                    b"callback" => match value {
                        Value::Function(function) => callback = Some(function),
                        _ => return error_table(lua, "ERR callback argument given to redis.register_function must be a function"),
                    },
                    b"description" => match value {
                        Value::String(text) => description = Some(text.as_bytes().to_vec()),
                        _ => return error_table(lua, "ERR description argument given to redis.register_function must be a string"),
                    },
                    b"flags" => {
                        let Value::Table(list) = value else {
                            return error_table(lua, "ERR flags argument to redis.register_function must be a table representing function flags");
                        };
                        for flag in list.sequence_values::<Value>() {
                            let ok = match flag? {
                                Value::String(text) => flags.set(&text.as_bytes()),
                                _ => false,
                            };
                            if !ok {
                                return error_table(lua, "ERR unknown flag given");
                            }
                        }
                    }
                    _ => return error_table(lua, "ERR unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return error_table(
                    lua,
                    "ERR redis.register_function must get a function name argument",
                );
            };
            let Some(callback) = callback else {
                return error_table(
                    lua,
                    "ERR redis.register_function must get a callback argument",
                );
            };
            (name, callback, flags, description)
        }
        2 => {
            let name = match &args[0] {
                Value::String(text) => text.as_bytes().to_vec(),
                _ => {
                    return error_table(
                        lua,
                        "ERR first argument to redis.register_function must be a string",
                    )
                }
            };
            let Value::Function(callback) = args[1].clone() else {
                return error_table(
                    lua,
                    "ERR second argument to redis.register_function must be a function",
                );
            };
            (name, callback, ScriptFlags::default(), None)
        }
        _ => {
            return error_table(
                lua,
                "ERR wrong number of arguments to redis.register_function",
            )
        }
    };
    if !valid_name(&name) {
        return error_table(lua, "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let mut loading = lua.app_data_mut::<Loading>().expect("checked above");
    if loading
        .functions
        .keys()
        .any(|existing| existing.eq_ignore_ascii_case(&name))
    {
        drop(loading);
        return error_table(lua, "ERR Function already exists in the library");
    }
    loading.functions.insert(
        name,
        LibraryFunction {
            callback,
            flags,
            description,
        },
    );
    Ok((true, Value::Nil))
}

fn primitive_random(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let next = lua
        .app_data_mut::<Rand48>()
        .map(|mut random| random.next())
        .unwrap_or(0);
    let ratio = (next % i32::MAX) as f64 / i32::MAX as f64;
    let integer = |value: &Value| -> mlua::Result<i64> {
        match value {
            Value::Integer(value) => Ok(*value as i64),
            Value::Number(value) => Ok(*value as i64),
            _ => Err(mlua::Error::RuntimeError(
                "bad argument to 'random' (number expected)".into(),
            )),
        }
    };
    match args.len() {
        0 => Ok(ratio),
        1 => {
            let upper = integer(&args[0])?;
            if upper < 1 {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to 'random' (interval is empty)".into(),
                ));
            }
            Ok((ratio * upper as f64).floor() + 1.0)
        }
        2 => {
            let lower = integer(&args[0])?;
            let upper = integer(&args[1])?;
            if lower > upper {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #2 to 'random' (interval is empty)".into(),
                ));
            }
            Ok((ratio * (upper - lower + 1) as f64).floor() + lower as f64)
        }
        _ => Err(mlua::Error::RuntimeError(
            "wrong number of arguments".into(),
        )),
    }
}

fn primitive_randomseed(lua: &Lua, seed: f64) -> mlua::Result<()> {
    if let Some(mut random) = lua.app_data_mut::<Rand48>() {
        random.seed(seed as i64 as i32);
    }
    Ok(())
}

/// Defines a C function that calls the Rust primitive registered as `cinnabar.<name>` and
/// raises the error table it returns. A C function (unlike a Lua wrapper) keeps the caller's
/// frame on the stack even in `return redis.call(...)`, so errors name the script's line.
macro_rules! raising {
    ($function:ident, $key:literal) => {
        unsafe extern "C-unwind" fn $function(
            state: *mut mlua::ffi::lua_State,
        ) -> std::os::raw::c_int {
            use mlua::ffi;
            // SAFETY: plain Lua C API use on the calling state; no Rust value with a destructor
            // lives in this frame when `lua_error` unwinds through it.
            unsafe {
                let count = ffi::lua_gettop(state);
                ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, $key.as_ptr());
                ffi::lua_insert(state, 1);
                ffi::lua_call(state, count, 2);
                if ffi::lua_toboolean(state, -2) == 0 {
                    ffi::lua_error(state);
                }
                1
            }
        }
    };
}

/// Calls `redis.call`'s primitive ([`super::stack_call`]) with the arguments on the stack,
/// leaving (ok, value) on the stack.
///
/// # Safety
/// `state` is the calling Lua state, inside a C function call.
unsafe fn call_primitive(state: *mut mlua::ffi::lua_State) {
    // SAFETY: forwarded.
    unsafe { super::stack_call::call(state) }
}

/// `redis.pcall`'s core: (ok, value).
unsafe extern "C-unwind" fn calling_call(state: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    // SAFETY: called by Lua as a C function.
    unsafe { call_primitive(state) };
    2
}

/// `redis.call`: the reply, or the error table raised.
unsafe extern "C-unwind" fn raising_call(state: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C function; nothing with a destructor lives in this frame when
    // `lua_error` unwinds through it.
    unsafe {
        call_primitive(state);
        if ffi::lua_toboolean(state, -2) == 0 {
            ffi::lua_error(state);
        }
    }
    1
}

raising!(raising_sha1hex, c"cinnabar.sha1hex");
raising!(raising_log, c"cinnabar.log");
raising!(raising_setresp, c"cinnabar.setresp");
raising!(raising_set_repl, c"cinnabar.set_repl");
raising!(raising_acl_check_cmd, c"cinnabar.acl_check_cmd");
raising!(raising_register_function, c"cinnabar.register_function");

fn bootstrap(lua: &Lua) -> mlua::Result<(Table, Table, Function, Table)> {
    let primitives = lua.create_table()?;
    let raising_functions: [(&str, mlua::ffi::lua_CFunction, Function); 6] = [
        (
            "sha1hex",
            raising_sha1hex,
            lua.create_function(primitive_sha1hex)?,
        ),
        ("log", raising_log, lua.create_function(primitive_log)?),
        (
            "setresp",
            raising_setresp,
            lua.create_function(primitive_setresp)?,
        ),
        (
            "set_repl",
            raising_set_repl,
            lua.create_function(primitive_set_repl)?,
        ),
        (
            "acl_check_cmd",
            raising_acl_check_cmd,
            lua.create_function(primitive_acl_check_cmd)?,
        ),
        (
            "register_function",
            raising_register_function,
            lua.create_function(primitive_register_function)?,
        ),
    ];
    let raising = lua.create_table()?;
    for (name, c_function, primitive) in raising_functions {
        lua.set_named_registry_value(&format!("cinnabar.{name}"), primitive)?;
        // SAFETY: the C functions only use the Lua API on the state they are given.
        raising.set(name, unsafe { lua.create_c_function(c_function)? })?;
    }
    // SAFETY: as above.
    raising.set("call", unsafe { lua.create_c_function(raising_call)? })?;
    primitives.set("raising", raising)?;
    // SAFETY: as above.
    primitives.set("call", unsafe { lua.create_c_function(calling_call)? })?;
    primitives.set("sha1hex", lua.create_function(primitive_sha1hex)?)?;
    primitives.set("log", lua.create_function(primitive_log)?)?;
    primitives.set("setresp", lua.create_function(primitive_setresp)?)?;
    primitives.set("set_repl", lua.create_function(primitive_set_repl)?)?;
    primitives.set(
        "acl_check_cmd",
        lua.create_function(primitive_acl_check_cmd)?,
    )?;
    primitives.set(
        "register_function",
        lua.create_function(primitive_register_function)?,
    )?;
    primitives.set("random", lua.create_function(primitive_random)?)?;
    primitives.set("randomseed", lua.create_function(primitive_randomseed)?)?;
    primitives.set("version", crate::config::REDIS_VERSION)?;
    let number = crate::config::REDIS_VERSION
        .split('.')
        .map(|part| part.parse::<i64>().unwrap_or(0))
        .fold(0, |total, part| total * 256 + part);
    primitives.set("version_number", number)?;
    let libraries = lua.create_table()?;
    libraries.set("cjson", super::cjson::create(lua)?)?;
    libraries.set("bit", super::bit::create(lua)?)?;
    libraries.set("struct", super::structs::create(lua)?)?;
    libraries.set("cmsgpack", super::cmsgpack::create(lua)?)?;
    let (env, real, run, apis): (Table, Table, Function, Table) = lua
        .load(include_str!("bootstrap.lua"))
        .set_name("=cinnabar")
        .call((primitives, libraries))?;
    Ok((env, real, run, apis))
}
