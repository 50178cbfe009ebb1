-- Cinnabar's Lua bootstrap: the sandbox and the Lua side of the `redis` API.
-- Called once with the Rust primitives; returns the sandboxed globals (what scripts see), the
-- real globals table behind them, the error handler and the runner.
local primitives, libraries = ...
local G = _G
local error, type, tostring, setmetatable, xpcall, pairs = error, type, tostring, setmetatable, xpcall, pairs
local getinfo, sub = debug.getinfo, string.sub

-- Read-only proxies, and what they stand for (so that pairs and next see through them).
local proxied = setmetatable({}, { __mode = "k" })
local next_raw, pairs_raw = next, pairs

local function readonly(t)
    local proxy = {}
    proxied[proxy] = t
    return setmetatable(proxy, {
        __index = t,
        __newindex = function()
            error("Attempt to modify a readonly table", 2)
        end,
        __metatable = false,
    })
end

local redis = {}
local call_raw = primitives.call
redis.call = primitives.raising.call
redis.pcall = function(...)
    local ok, value = call_raw(...)
    return value
end
redis.error_reply = function(text)
    if type(text) ~= "string" then
        return { err = "ERR wrong number or type of arguments" }
    end
    return { err = text }
end
redis.status_reply = function(text)
    if type(text) ~= "string" then
        return { err = "ERR wrong number or type of arguments" }
    end
    return { ok = text }
end
for _, name in pairs({ "sha1hex", "log", "setresp", "set_repl", "acl_check_cmd", "register_function" }) do
    redis[name] = primitives.raising[name]
end
redis.replicate_commands = function()
    return true
end
redis.breakpoint = function()
    return false
end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = primitives.version
redis.REDIS_VERSION_NUM = primitives.version_number

G.math.random = primitives.random
G.math.randomseed = primitives.randomseed

local real = {}
G.next = function(t, key)
    return next_raw(proxied[t] or t, key)
end
G.pairs = function(t)
    local target = proxied[t]
    if target ~= nil then
        return next_raw, target, nil
    end
    return pairs_raw(t)
end

for _, name in pairs_raw({
    "xpcall", "tostring", "getfenv", "setmetatable", "next", "assert", "tonumber", "rawequal",
    "collectgarbage", "getmetatable", "rawset", "pcall", "coroutine", "type", "select", "unpack",
    "gcinfo", "pairs", "loadstring", "ipairs", "error", "_VERSION", "rawget", "setfenv", "load",
    "newproxy", "rawlen",
}) do
    real[name] = G[name]
end
-- Precompiled (binary) chunks are refused, as Redis does: loadstring gives nil.
local loadstring_raw = G.loadstring
real.loadstring = function(text, name)
    if type(text) == "string" and sub(text, 1, 1) == "\27" then
        return nil, "binary chunks are not allowed"
    end
    return loadstring_raw(text, name)
end
-- The sandbox's protected tables cannot get another metatable.
real.setmetatable = function(t, metatable)
    if proxied[t] ~= nil then
        error("Attempt to modify a readonly table", 2)
    end
    return setmetatable(t, metatable)
end
for _, name in pairs({ "string", "math", "table" }) do
    real[name] = readonly(G[name])
end
real.os = readonly({ clock = G.os.clock })
for name, library in pairs(libraries) do
    real[name] = readonly(library)
end
-- Scripts and functions run with `redis` (alias `server`) without register_function.
local redis_run = {}
for name, value in pairs(redis) do
    if name ~= "register_function" then
        redis_run[name] = value
    end
end
real.redis = readonly(redis_run)
real.server = real.redis

-- A library's top-level code, while FUNCTION LOAD runs it, sees only `redis` (alias `server`)
-- with register_function, log and the version, as Redis's load run does: anything else is a
-- nonexistent global.
local function nonexistent(_, key)
    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
end
local function strict(t)
    return setmetatable(t, {
        __index = nonexistent,
        __newindex = function()
            error("Attempt to modify a readonly table", 2)
        end,
        __metatable = false,
    })
end
local load_api = {
    register_function = redis.register_function,
    log = redis.log,
    LOG_DEBUG = redis.LOG_DEBUG,
    LOG_VERBOSE = redis.LOG_VERBOSE,
    LOG_NOTICE = redis.LOG_NOTICE,
    LOG_WARNING = redis.LOG_WARNING,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
strict(load_api)
local load_globals = strict({ redis = load_api, server = load_api })
-- Where the sandbox's globals come from: `real`, or `load_globals` during FUNCTION LOAD.
local current = { globals = real }
local apis = {
    use_load_globals = function(loading)
        if loading then
            current.globals = load_globals
        else
            current.globals = real
        end
    end,
}

local env = setmetatable({}, {
    __index = function(_, key)
        local value = current.globals[key]
        if value == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
        end
        return value
    end,
    __newindex = function()
        error("Attempt to modify a readonly table", 2)
    end,
    -- What getmetatable(_G) gives: itself read-only.
    __metatable = readonly({}),
})
real._G = env
proxied[env] = real

-- Finds the user's frame (not this file's wrappers) and turns any error into a table.
local function handler(err)
    local level = 2
    local info
    while true do
        info = getinfo(level, "Sl")
        if info == nil or (info.what ~= "C" and sub(info.source, 1, 6) == "@user_") then
            break
        end
        level = level + 1
    end
    if type(err) ~= "table" then
        err = { err = "ERR " .. tostring(err) }
    elseif type(err.err) ~= "string" then
        err = { err = "ERR unknown error" }
    end
    if info ~= nil and err.source == nil then
        err.source = info.source
        err.line = info.currentline
    end
    return err
end

local function run(f, a, b)
    if a == nil then
        -- A script (KEYS and ARGV are globals) or a library's code: called with no arguments,
        -- as Redis calls them, and no closure to make per call.
        return xpcall(f, handler)
    end
    return xpcall(function()
        return f(a, b)
    end, handler)
end

return env, real, run, apis
