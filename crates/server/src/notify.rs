//! Keyspace notifications (`notify-keyspace-events`): Pub/Sub messages on
//! `__keyspace@<db>__:<key>` (the event as payload) and `__keyevent@<db>__:<event>` (the key as
//! payload) for every change of a key, when its class is enabled.
//!
//! How a command emits its events: after the change, with its shard guard still held, call
//! `context.notify(EventClass::List, "lpush", key)` with Redis's event name for that command,
//! once per key and in Redis's order (for example RPOPLPUSH emits `rpop` on the source then
//! `lpush` on the destination, and `del` when the source became empty). Expiry (`expired`) and
//! eviction (`evicted`) are emitted by the server itself.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::pubsub::MessageKind;
use crate::server::Server;

/// An event class: the letter that enables it in `notify-keyspace-events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventClass {
    Generic = 1 << 2,
    String = 1 << 3,
    List = 1 << 4,
    Set = 1 << 5,
    Hash = 1 << 6,
    SortedSet = 1 << 7,
    Expired = 1 << 8,
    Evicted = 1 << 9,
    Stream = 1 << 10,
    KeyMiss = 1 << 11,
    New = 1 << 14,
}

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
const MODULE: u32 = 1 << 13;
/// What `A` stands for (not `m`, not `n`).
pub const ALL: u32 = EventClass::Generic as u32
    | EventClass::String as u32
    | EventClass::List as u32
    | EventClass::Set as u32
    | EventClass::Hash as u32
    | EventClass::SortedSet as u32
    | EventClass::Expired as u32
    | EventClass::Evicted as u32
    | EventClass::Stream as u32
    | MODULE;

/// Parses the option's letters; None for an unknown letter.
pub fn parse_flags(text: &str) -> Option<u32> {
    let mut flags = 0;
    for letter in text.chars() {
        flags |= match letter {
            'A' => ALL,
            'g' => EventClass::Generic as u32,
            '$' => EventClass::String as u32,
            'l' => EventClass::List as u32,
            's' => EventClass::Set as u32,
            'h' => EventClass::Hash as u32,
            'z' => EventClass::SortedSet as u32,
            'x' => EventClass::Expired as u32,
            'e' => EventClass::Evicted as u32,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => EventClass::Stream as u32,
            'm' => EventClass::KeyMiss as u32,
            'd' => MODULE,
            'n' => EventClass::New as u32,
            _ => return None,
        };
    }
    Some(flags)
}

/// The canonical letters of `flags`, as CONFIG GET prints them.
pub fn format_flags(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        let classes: [(u32, char); 11] = [
            (EventClass::Generic as u32, 'g'),
            (EventClass::String as u32, '$'),
            (EventClass::List as u32, 'l'),
            (EventClass::Set as u32, 's'),
            (EventClass::Hash as u32, 'h'),
            (EventClass::SortedSet as u32, 'z'),
            (EventClass::Expired as u32, 'x'),
            (EventClass::Evicted as u32, 'e'),
            (EventClass::Stream as u32, 't'),
            (MODULE, 'd'),
            (EventClass::New as u32, 'n'),
        ];
        for (bit, letter) in classes {
            if flags & bit != 0 {
                text.push(letter);
            }
        }
    }
    if flags & KEYSPACE != 0 {
        text.push('K');
    }
    if flags & KEYEVENT != 0 {
        text.push('E');
    }
    if flags & EventClass::KeyMiss as u32 != 0 {
        text.push('m');
    }
    text
}

/// The enabled classes, read on every write.
#[derive(Default)]
pub struct Notifications {
    flags: AtomicU32,
}

impl Notifications {
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
        store::keyspace::record_created_keys(
            flags & EventClass::New as u32 != 0 && flags & (KEYSPACE | KEYEVENT) != 0,
        );
    }

    /// Whether any event is published.
    #[inline]
    pub fn active(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & (KEYSPACE | KEYEVENT) != 0
    }

    /// Whether `class` events are published at all.
    #[inline]
    pub fn enabled(&self, class: EventClass) -> bool {
        let flags = self.flags.load(Ordering::Relaxed);
        flags & class as u32 != 0 && flags & (KEYSPACE | KEYEVENT) != 0
    }
}

impl Server {
    /// Publishes the keyspace and keyevent messages of one event, if its class is enabled.
    /// Keys the command created since its last event are announced first (`new`, in
    /// `database`), as Redis announces a key when it is added.
    pub fn notify(&self, class: EventClass, event: &str, database: usize, key: &[u8]) {
        self.notify_created(database);
        self.publish_event(class, event, database, key);
    }

    /// Publishes `new` for the keys this thread created since the last event (they belong to
    /// `database`). Commands that create keys in another database (MOVE, COPY) call it with
    /// that database first; the connection calls it after every command.
    pub fn notify_created(&self, database: usize) {
        if !store::keyspace::recording_created_keys() {
            return;
        }
        for key in store::keyspace::take_created() {
            self.publish_event(EventClass::New, "new", database, &key);
        }
    }

    /// Publishes `event` for `key`, then `del` when the key is gone from `shard` (the command
    /// emptied it): the pattern of every command that removes elements.
    pub fn notify_removal(
        &self,
        class: EventClass,
        event: &str,
        database: usize,
        shard: &store::Shard,
        key: &[u8],
        now_ms: u64,
    ) {
        if !self.notifications.active() {
            return;
        }
        self.notify(class, event, database, key);
        if !shard.is_live(key, now_ms) {
            self.notify(EventClass::Generic, "del", database, key);
        }
    }

    fn publish_event(&self, class: EventClass, event: &str, database: usize, key: &[u8]) {
        if !self.notifications.enabled(class) {
            return;
        }
        let flags = self.notifications.flags.load(Ordering::Relaxed);
        let now_ms = crate::server::unix_time_ms();
        let mut unused = Vec::new();
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{database}__:").into_bytes();
            channel.extend_from_slice(key);
            self.pubsub.publish(
                MessageKind::Message,
                &channel,
                event.as_bytes(),
                None,
                &mut unused,
                now_ms,
            );
        }
        if flags & KEYEVENT != 0 {
            let channel = format!("__keyevent@{database}__:{event}");
            self.pubsub.publish(
                MessageKind::Message,
                channel.as_bytes(),
                key,
                None,
                &mut unused,
                now_ms,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(
            parse_flags("KEA").map(format_flags),
            Some("AKE".to_string())
        );
        assert_eq!(
            parse_flags("Ex$").map(format_flags),
            Some("$xE".to_string())
        );
        assert_eq!(
            parse_flags("Kmn").map(format_flags),
            Some("nKm".to_string())
        );
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(parse_flags("Q"), None);
    }
}
