//! String commands: GET, SET and the rest of Redis's string family.

use store::{StringValue, Value};

use crate::command::CommandTable;
use crate::context::{errors, CommandResult, Context};

pub fn register(table: &mut CommandTable) {
    table.handle("get", get);
    table.handle("set", set);
}

/// GET key
fn get(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    match shard.lookup(args[1], context.now_ms) {
        None => context.reply.null(),
        Some(entry) => match entry.value() {
            Value::String(string) => {
                let mut scratch = itoa::Buffer::new();
                context.reply.bulk(string.as_bytes(&mut scratch));
            }
            #[allow(unreachable_patterns)]
            _ => return Err(errors::WRONG_TYPE.into()),
        },
    }
    Ok(())
}

/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
fn set(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if args.len() != 3 {
        return Err(errors::SYNTAX.into());
    }
    let mut shard = context.lock(args[1]);
    shard.insert(
        args[1],
        Value::String(StringValue::from_bytes(args[2])),
        None,
        context.now_ms,
    );
    shard.propagate(args);
    context.reply.ok();
    Ok(())
}
