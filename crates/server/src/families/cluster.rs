//! Cluster commands (CLUSTER ..., READONLY, READWRITE, ASKING) on a server that runs standalone:
//! each answers as Redis does with `cluster-enabled no`, so that clients and tools probing for
//! cluster mode get the reply they know rather than "unknown command".

use crate::command::CommandTable;
use crate::context::{CommandResult, Context};

/// Redis's reply to every cluster command when cluster support is off.
pub const CLUSTER_DISABLED_ERROR: &str = "ERR This instance has cluster support disabled";

/// Subcommands Valkey added after Redis 7.2: not offered.
const NOT_IN_REDIS_7_2: &[&str] = &["slot-stats"];

pub fn register(table: &mut CommandTable) {
    for sub in table.subcommand_names("cluster") {
        if !NOT_IN_REDIS_7_2.contains(&sub.as_str()) {
            table.handle(&format!("cluster|{sub}"), cluster_disabled);
        }
    }
    table.handle("readonly", cluster_disabled);
    table.handle("readwrite", cluster_disabled);
    table.handle("asking", cluster_disabled);
}

/// CLUSTER <subcommand> [...] | READONLY | READWRITE | ASKING
fn cluster_disabled(_context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    Err(CLUSTER_DISABLED_ERROR.into())
}
