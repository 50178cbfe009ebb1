//! Generic key commands: DEL, EXISTS, TYPE, expiry and the rest of Redis's generic family.

use crate::command::CommandTable;
use crate::context::{CommandResult, Context};

pub fn register(table: &mut CommandTable) {
    table.handle("del", del);
    table.handle("exists", exists);
}

/// DEL key [key ...]
fn del(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let mut removed = 0;
    for key in &args[1..] {
        if locked
            .shard(database, key)
            .remove(key, context.now_ms)
            .is_some()
        {
            locked.propagate(database, &[b"DEL", key]);
            removed += 1;
        }
    }
    drop(locked);
    context.reply.integer(removed);
    Ok(())
}

/// EXISTS key [key ...]
fn exists(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let database = context.database();
    let mut locked = context.lock_keys(args[1..].iter().copied());
    let mut found = 0;
    for key in &args[1..] {
        if locked.shard(database, key).contains(key, context.now_ms) {
            found += 1;
        }
    }
    drop(locked);
    context.reply.integer(found);
    Ok(())
}
