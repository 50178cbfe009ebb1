//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, SSUBSCRIBE,
//! SUNSUBSCRIBE, SPUBLISH, PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB.
//! The registry and delivery are in `crate::pubsub`.

use std::sync::Arc;

use resp::Protocol;
use store::glob::Pattern;

use crate::client::Client;
use crate::command::{Command, CommandTable};
use crate::context::{CommandResult, Context};
use crate::pubsub::{MessageKind, PubSub};
use crate::server::Server;

pub fn register(table: &mut CommandTable) {
    table.handle("subscribe", subscribe);
    table.handle("unsubscribe", unsubscribe);
    table.handle("psubscribe", psubscribe);
    table.handle("punsubscribe", punsubscribe);
    table.handle("ssubscribe", ssubscribe);
    table.handle("sunsubscribe", sunsubscribe);
    table.handle("publish", publish);
    table.handle("spublish", spublish);
    table.handle("pubsub|channels", pubsub_channels);
    table.handle("pubsub|shardchannels", pubsub_shardchannels);
    table.handle("pubsub|numsub", pubsub_numsub);
    table.handle("pubsub|shardnumsub", pubsub_shardnumsub);
    table.handle("pubsub|numpat", pubsub_numpat);
    table.handle("pubsub|help", pubsub_help);
}

/// PUBSUB HELP
fn pubsub_help(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    crate::families::server::reply_help(
        context,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

/// Which registry a subscription command works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    ShardChannel,
}

impl Kind {
    fn subscribed_label(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::ShardChannel => b"ssubscribe",
        }
    }

    fn unsubscribed_label(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::ShardChannel => b"sunsubscribe",
        }
    }

    fn list(self, client: &mut Client) -> &mut Vec<Vec<u8>> {
        match self {
            Kind::Channel => &mut client.subscriptions.channels,
            Kind::Pattern => &mut client.subscriptions.patterns,
            Kind::ShardChannel => &mut client.subscriptions.shard_channels,
        }
    }

    fn add(self, pubsub: &PubSub, name: &[u8], client: &Client) -> bool {
        match self {
            Kind::Channel => pubsub.channels.subscribe(name, &client.mailbox),
            Kind::Pattern => pubsub.patterns.subscribe(name, &client.mailbox),
            Kind::ShardChannel => pubsub.shard_channels.subscribe(name, &client.mailbox),
        }
    }

    fn remove(self, pubsub: &PubSub, name: &[u8], client: &Client) -> bool {
        match self {
            Kind::Channel => pubsub.channels.unsubscribe(name, &client.mailbox),
            Kind::Pattern => pubsub.patterns.unsubscribe(name, &client.mailbox),
            Kind::ShardChannel => pubsub.shard_channels.unsubscribe(name, &client.mailbox),
        }
    }

    /// The count reported after each (un)subscription: channels and patterns together, shard
    /// channels on their own (as Redis).
    fn count(self, client: &Client) -> usize {
        match self {
            Kind::Channel | Kind::Pattern => {
                client.subscriptions.channels.len() + client.subscriptions.patterns.len()
            }
            Kind::ShardChannel => client.subscriptions.shard_channels.len(),
        }
    }
}

fn write_confirmation(context: &mut Context, label: &[u8], name: Option<&[u8]>, count: usize) {
    let muted = matches!(
        context.client.reply_mode,
        crate::client::ReplyMode::Off | crate::client::ReplyMode::Skipping
    );
    if muted {
        // Subscription confirmations are pushes, not replies (in RESP2 too, as Redis sends
        // them): CLIENT REPLY OFF does not silence them. They go out through the client's own
        // mailbox.
        let mut push = Vec::new();
        let mut writer = resp::ReplyWriter::new(&mut push, context.client.protocol);
        writer.push(3);
        writer.bulk(label);
        match name {
            Some(name) => writer.bulk(name),
            None => writer.null(),
        }
        writer.integer(count as i64);
        let unlimited = crate::pubsub::BufferLimit::default();
        context
            .client
            .mailbox
            .deliver(&push, unlimited, context.now_ms);
        return;
    }
    context.reply.push(3);
    context.reply.bulk(label);
    match name {
        Some(name) => context.reply.bulk(name),
        None => context.reply.null(),
    }
    context.reply.integer(count as i64);
}

fn subscribe_to(context: &mut Context, args: &[&[u8]], kind: Kind) -> CommandResult {
    context
        .client
        .mailbox
        .set_resp3(context.client.protocol == Protocol::Resp3);
    let pubsub = &context.server.pubsub;
    for name in &args[1..] {
        if kind.add(pubsub, name, context.client) {
            kind.list(context.client).push(name.to_vec());
        }
        let count = kind.count(context.client);
        write_confirmation(context, kind.subscribed_label(), Some(name), count);
    }
    Ok(())
}

fn unsubscribe_from(context: &mut Context, args: &[&[u8]], kind: Kind) -> CommandResult {
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args[1..].iter().map(|name| name.to_vec()).collect()
    } else {
        kind.list(context.client).clone()
    };
    if names.is_empty() {
        let count = kind.count(context.client);
        write_confirmation(context, kind.unsubscribed_label(), None, count);
        return Ok(());
    }
    let pubsub = &context.server.pubsub;
    for name in names {
        kind.remove(pubsub, &name, context.client);
        kind.list(context.client)
            .retain(|existing| *existing != name);
        let count = kind.count(context.client);
        write_confirmation(context, kind.unsubscribed_label(), Some(&name), count);
    }
    Ok(())
}

/// SUBSCRIBE channel [channel ...]
fn subscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    subscribe_to(context, args, Kind::Channel)
}

/// UNSUBSCRIBE [channel [channel ...]]
fn unsubscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    unsubscribe_from(context, args, Kind::Channel)
}

/// PSUBSCRIBE pattern [pattern ...]
fn psubscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    subscribe_to(context, args, Kind::Pattern)
}

/// PUNSUBSCRIBE [pattern [pattern ...]]
fn punsubscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    unsubscribe_from(context, args, Kind::Pattern)
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
fn ssubscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    if !same_slot(&args[1..]) {
        return Err("CROSSSLOT Keys in request don't hash to the same slot".into());
    }
    subscribe_to(context, args, Kind::ShardChannel)
}

/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
fn sunsubscribe(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    unsubscribe_from(context, args, Kind::ShardChannel)
}

fn same_slot(names: &[&[u8]]) -> bool {
    let mut slots = names.iter().map(|name| store::slot::key_slot(name));
    match slots.next() {
        Some(first) => slots.all(|slot| slot == first),
        None => true,
    }
}

fn publish_to(context: &mut Context, args: &[&[u8]], kind: MessageKind) -> CommandResult {
    let sender = context.client.mailbox.clone();
    let subscribed = context.client.subscriptions.count() > 0;
    let now_ms = context.now_ms;
    let mut own_copies = Vec::new();
    let receivers = context.server.pubsub.publish(
        kind,
        args[1],
        args[2],
        // Inside EXEC the client's own copies go through its mailbox, after EXEC's reply (as
        // Redis sends them), not into the middle of it.
        (subscribed && !context.in_transaction()).then_some(&sender),
        &mut own_copies,
        now_ms,
    );
    // Replicas publish it too, for their own subscribers (never the AOF).
    context
        .server
        .propagation
        .append_to_replicas(context.client.database, args);
    context.reply.integer(receivers as i64);
    // A client's own copies follow the reply to its PUBLISH (Redis 7.2).
    context.reply.buffer().extend_from_slice(&own_copies);
    Ok(())
}

/// PUBLISH channel message
fn publish(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    publish_to(context, args, MessageKind::Message)
}

/// SPUBLISH shardchannel message
fn spublish(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    publish_to(context, args, MessageKind::ShardMessage)
}

fn list_channels(context: &mut Context, args: &[&[u8]], kind: Kind) -> CommandResult {
    let pattern = args.get(2).map(|pattern| Pattern::new(pattern, false));
    let registry = match kind {
        Kind::ShardChannel => &context.server.pubsub.shard_channels,
        _ => &context.server.pubsub.channels,
    };
    let channels = registry.channels(pattern.as_ref());
    context.reply.array(channels.len());
    for channel in channels {
        context.reply.bulk(&channel);
    }
    Ok(())
}

/// PUBSUB CHANNELS [pattern]
fn pubsub_channels(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    list_channels(context, args, Kind::Channel)
}

/// PUBSUB SHARDCHANNELS [pattern]
fn pubsub_shardchannels(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    list_channels(context, args, Kind::ShardChannel)
}

fn count_subscribers(context: &mut Context, args: &[&[u8]], kind: Kind) -> CommandResult {
    let registry = match kind {
        Kind::ShardChannel => &context.server.pubsub.shard_channels,
        _ => &context.server.pubsub.channels,
    };
    context.reply.map(args.len() - 2);
    for channel in &args[2..] {
        context.reply.bulk(channel);
        context
            .reply
            .integer(registry.subscriber_count(channel) as i64);
    }
    Ok(())
}

/// PUBSUB NUMSUB [channel [channel ...]]
fn pubsub_numsub(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    count_subscribers(context, args, Kind::Channel)
}

/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
fn pubsub_shardnumsub(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    count_subscribers(context, args, Kind::ShardChannel)
}

/// PUBSUB NUMPAT
fn pubsub_numpat(context: &mut Context, _args: &[&[u8]]) -> CommandResult {
    context
        .reply
        .integer(context.server.pubsub.patterns.len() as i64);
    Ok(())
}

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_while_subscribed(command: &Command) -> bool {
    matches!(
        command.full_name.as_str(),
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Drops every subscription of a client (disconnection, RESET).
pub fn unsubscribe_all(server: &Server, client: &mut Client) {
    let pubsub = &server.pubsub;
    let mailbox: Arc<crate::pubsub::Mailbox> = client.mailbox.clone();
    for channel in client.subscriptions.channels.drain(..) {
        pubsub.channels.unsubscribe(&channel, &mailbox);
    }
    for pattern in client.subscriptions.patterns.drain(..) {
        pubsub.patterns.unsubscribe(&pattern, &mailbox);
    }
    for channel in client.subscriptions.shard_channels.drain(..) {
        pubsub.shard_channels.unsubscribe(&channel, &mailbox);
    }
}
