//! List commands: LPUSH, RPUSH, LPOP, LRANGE and the rest of Redis's list family, and the
//! blocking pops.

use crate::command::CommandTable;

pub fn register(_table: &mut CommandTable) {}
