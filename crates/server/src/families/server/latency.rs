//! SLOWLOG (GET, LEN, RESET, HELP) and LATENCY (LATEST, HISTORY, RESET, GRAPH, DOCTOR,
//! HISTOGRAM, HELP). The logs themselves live in `crate::slowlog` and `crate::latency`.

use crate::command::Command;
use crate::context::{errors, CommandResult, Context};
use crate::server::unix_time_ms;

/// SLOWLOG GET [count]
pub fn slowlog_get(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let count = match args.get(2) {
        None => Some(10),
        Some(arg) => {
            let count = store::number::parse_i64(arg)
                .ok_or(crate::context::CommandError::from(errors::NOT_INTEGER))?;
            if count < -1 {
                return Err("ERR count should be greater than or equal to -1".into());
            }
            (count >= 0).then_some(count as usize)
        }
    };
    let entries = context.server.slowlog.newest(count);
    let reply = &mut context.reply;
    reply.array(entries.len());
    for entry in entries {
        reply.array(6);
        reply.integer(entry.id as i64);
        reply.integer(entry.time_s as i64);
        reply.integer(entry.duration_us as i64);
        reply.bulk_array(entry.arguments.iter().map(Vec::as_slice));
        reply.bulk(entry.peer.as_bytes());
        reply.bulk(&entry.client_name);
    }
    Ok(())
}

/// SLOWLOG LEN
pub fn slowlog_len(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let length = context.server.slowlog.len();
    context.reply.integer(length as i64);
    Ok(())
}

/// SLOWLOG RESET
pub fn slowlog_reset(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context.server.slowlog.reset();
    context.reply.ok();
    Ok(())
}

/// SLOWLOG HELP
pub fn slowlog_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    super::reply_help(
        context,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

/// LATENCY LATEST
pub fn latency_latest(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let all = context.server.latency.all();
    let reply = &mut context.reply;
    reply.array(all.len());
    for (event, series) in all {
        let latest = series.latest();
        reply.array(4);
        reply.bulk(event.as_bytes());
        reply.integer(latest.time_s as i64);
        reply.integer(latest.latency_ms as i64);
        reply.integer(series.max_ms as i64);
    }
    Ok(())
}

/// LATENCY HISTORY event
pub fn latency_history(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let history = context
        .server
        .latency
        .get(args[2])
        .map(|series| series.history())
        .unwrap_or_default();
    let reply = &mut context.reply;
    reply.array(history.len());
    for sample in history {
        reply.array(2);
        reply.integer(sample.time_s as i64);
        reply.integer(sample.latency_ms as i64);
    }
    Ok(())
}

/// LATENCY RESET [event [event ...]]
pub fn latency_reset(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let reset = context.server.latency.reset(&args[2..]);
    context.reply.integer(reset as i64);
    Ok(())
}

/// LATENCY GRAPH event
pub fn latency_graph(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let event = String::from_utf8_lossy(args[2]).into_owned();
    let Some(series) = context.server.latency.get(args[2]) else {
        return Err(format!("ERR No samples available for event '{event}'").into());
    };
    let text = crate::latency::graph(&event, &series, unix_time_ms() / 1000);
    context.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// LATENCY DOCTOR
pub fn latency_doctor(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    let text = crate::latency::doctor(context.server);
    context.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// LATENCY HISTOGRAM [command [command ...]]
pub fn latency_histogram(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let server = context.server;
    let mut commands: Vec<&Command> = Vec::new();
    if args.len() == 2 {
        commands.extend(super::info::all_commands(server));
    } else {
        for name in &args[2..] {
            let Some(command) = lookup_full_name(server, name) else {
                continue;
            };
            commands.push(command);
            let mut subcommands: Vec<&Command> =
                command.subcommands.values().map(|sub| &**sub).collect();
            subcommands.sort_by(|a, b| a.full_name.cmp(&b.full_name));
            commands.extend(subcommands);
        }
    }
    commands.retain(|command| command.stats.latency.count() > 0);
    let reply = &mut context.reply;
    reply.map(commands.len());
    for command in commands {
        let histogram = &command.stats.latency;
        let distribution = histogram.cumulative_microseconds();
        reply.bulk(command.full_name.as_bytes());
        reply.map(2);
        reply.bulk(b"calls");
        reply.integer(histogram.count() as i64);
        reply.bulk(b"histogram_usec");
        reply.map(distribution.len());
        for (microseconds, count) in distribution {
            reply.integer(microseconds as i64);
            reply.integer(count as i64);
        }
    }
    Ok(())
}

/// A command by its full name (`get`, `client|id`), any case.
fn lookup_full_name<'s>(server: &'s crate::server::Server, name: &[u8]) -> Option<&'s Command> {
    let lower = name.to_ascii_lowercase();
    match lower.iter().position(|&byte| byte == b'|') {
        None => server.commands.get(&lower),
        Some(bar) => server
            .commands
            .get(&lower[..bar])?
            .subcommand(&lower[bar + 1..]),
    }
}

/// LATENCY HELP
pub fn latency_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    super::reply_help(
        context,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}
