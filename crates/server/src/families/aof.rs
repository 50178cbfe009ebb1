//! Append-only file commands: BGREWRITEAOF.

use std::sync::atomic::Ordering;

use crate::command::CommandTable;
use crate::context::{CommandError, CommandResult, Context};

pub fn register(table: &mut CommandTable) {
    table.handle("bgrewriteaof", bgrewriteaof);
}

/// BGREWRITEAOF
fn bgrewriteaof(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    if context.in_transaction() {
        // Inside EXEC the transaction holds shard locks the rewrite needs: run it afterwards.
        if context.server.aof.rewrite_in_progress() {
            return Err(CommandError::new(
                "ERR Background append only file rewriting already in progress",
            ));
        }
        context
            .server
            .aof
            .rewrite_scheduled
            .store(true, Ordering::Relaxed);
        tracing::info!("Background append only file rewriting scheduled.");
        context
            .reply
            .simple(b"Background append only file rewriting scheduled");
        return Ok(());
    }
    match crate::aof::bgrewriteaof(context.server) {
        Ok(status) => {
            context.reply.simple(status.as_bytes());
            Ok(())
        }
        Err(error) => Err(CommandError::new(error)),
    }
}
