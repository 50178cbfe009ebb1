//! Keys watched by WATCH, as the shard sees them.
//!
//! Model. For every key some client watches, the shard keeps a version number and how many
//! watchers it has. Every change to a watched key bumps its version (the server calls
//! [`WatchedKeys::touch`] for each key a write propagates, under the shard lock); EXEC compares
//! the versions its client saw at WATCH time. Keys nobody watches cost nothing: the check is one
//! branch on an empty map.

use hashbrown::HashMap;

use crate::small_bytes::SmallBytes;

#[derive(Default)]
pub struct WatchedKeys {
    keys: HashMap<SmallBytes, Watched>,
}

struct Watched {
    version: u64,
    watchers: u32,
}

impl WatchedKeys {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Starts watching `key`; returns its current version.
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        if !self.keys.contains_key(key) {
            self.keys.insert(
                SmallBytes::from(key),
                Watched {
                    version: 0,
                    watchers: 0,
                },
            );
        }
        let watched = self.keys.get_mut(key).expect("just inserted");
        watched.watchers += 1;
        watched.version
    }

    /// Stops one watcher of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(watched) = self.keys.get_mut(key) {
            watched.watchers -= 1;
            if watched.watchers == 0 {
                self.keys.remove(key);
            }
        }
    }

    /// The current version of a watched key (None when nobody watches it).
    pub fn version(&self, key: &[u8]) -> Option<u64> {
        self.keys.get(key).map(|watched| watched.version)
    }

    /// Records a change to `key`.
    #[inline]
    pub fn touch(&mut self, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(watched) = self.keys.get_mut(key) {
            watched.version += 1;
        }
    }

    /// Records a change to every watched key for which `affected` is true (FLUSHDB, SWAPDB).
    pub fn touch_where(&mut self, mut affected: impl FnMut(&[u8]) -> bool) {
        for (key, watched) in self.keys.iter_mut() {
            if affected(key) {
                watched.version += 1;
            }
        }
    }

    /// Every watched key.
    pub fn keys(&self) -> Vec<SmallBytes> {
        self.keys.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_only_for_watched_keys() {
        let mut watched = WatchedKeys::default();
        watched.touch(b"a");
        assert_eq!(watched.watch(b"a"), 0);
        assert_eq!(watched.watch(b"a"), 0);
        watched.touch(b"a");
        watched.touch(b"b");
        assert_eq!(watched.version(b"a"), Some(1));
        assert_eq!(watched.version(b"b"), None);
        watched.unwatch(b"a");
        assert_eq!(watched.version(b"a"), Some(1));
        watched.unwatch(b"a");
        assert!(watched.is_empty());
    }
}
