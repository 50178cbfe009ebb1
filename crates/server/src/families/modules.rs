//! MODULE: Cinnabar loads no modules (their C API is Redis's own process), so MODULE LIST is
//! empty and loading fails with Redis's error for a module that cannot be loaded. Extending:
//! a native extension mechanism would register its commands here.

use crate::command::CommandTable;
use crate::context::{CommandResult, Context};

pub fn register(table: &mut CommandTable) {
    table.handle("module|help", module_help);
    table.handle("module|list", module_list);
    table.handle("module|load", module_load);
    table.handle("module|loadex", module_load);
    table.handle("module|unload", module_unload);
}

/// MODULE HELP
fn module_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
    Ok(())
}

/// MODULE LIST
fn module_list(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.reply.array(0);
    Ok(())
}

/// MODULE LOAD path [arg ...] / MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]
fn module_load(_context: &mut Context, args: &[&[u8]]) -> CommandResult {
    tracing::warn!(
        "Module {} failed to load: Cinnabar does not load Redis modules",
        String::from_utf8_lossy(args[2])
    );
    Err("ERR Error loading the extension. Please check the server logs.".into())
}

/// MODULE UNLOAD name
fn module_unload(_context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    Err("ERR Error unloading module: no such module with that name".into())
}
