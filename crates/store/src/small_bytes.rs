//! `SmallBytes`: an owned byte string that keeps up to 22 bytes inline (no allocation) and
//! larger ones in one exact-size heap block. Keys and short values are almost always inline,
//! which is a large part of why a key costs less memory here than in Redis.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest byte string kept inline.
pub const INLINE_BYTES_MAX: usize = 22;

#[derive(Clone)]
pub enum SmallBytes {
    Inline {
        length: u8,
        data: [u8; INLINE_BYTES_MAX],
    },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_BYTES_MAX {
            let mut data = [0u8; INLINE_BYTES_MAX];
            data[..bytes.len()].copy_from_slice(bytes);
            SmallBytes::Inline {
                length: bytes.len() as u8,
                data,
            }
        } else {
            SmallBytes::Heap(bytes.into())
        }
    }

    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_BYTES_MAX {
            Self::new(&bytes)
        } else {
            SmallBytes::Heap(bytes.into_boxed_slice())
        }
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { length, data } => &data[..*length as usize],
            SmallBytes::Heap(bytes) => bytes,
        }
    }

    /// Heap bytes this value owns beyond its own size.
    pub fn heap_bytes(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(bytes) => bytes.len(),
        }
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for SmallBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(bytes: &[u8]) -> Self {
        SmallBytes::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        let short = SmallBytes::new(b"key:000001");
        assert!(matches!(short, SmallBytes::Inline { .. }));
        assert_eq!(&*short, b"key:000001");
        let long = SmallBytes::new(&[7u8; 23]);
        assert!(matches!(long, SmallBytes::Heap(_)));
        assert_eq!(long.len(), 23);
        assert_eq!(SmallBytes::new(b""), SmallBytes::from_vec(Vec::new()));
    }
}
