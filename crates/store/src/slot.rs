//! Redis Cluster hash slots: CRC16 (XMODEM) of the key, or of its `{hashtag}`, modulo 16384.

pub const SLOT_COUNT: usize = 16384;

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    (crc16(hash_tag(key)) as usize % SLOT_COUNT) as u16
}

/// The part of the key that is hashed: the bytes between the first `{` and the first `}` after
/// it, when that is not empty; otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(length) = memchr::memchr(b'}', &key[open + 1..]) {
            if length > 0 {
                return &key[open + 1..open + 1 + length];
            }
        }
    }
    key
}

/// The CRC16 (XMODEM, polynomial 0x1021) tables for slicing by four: `TABLES[k][x]` is the
/// CRC contribution of byte `x` followed by `k` zero bytes.
const fn crc16_tables() -> [[u16; 256]; 4] {
    let mut tables = [[0u16; 256]; 4];
    let mut index = 0;
    while index < 256 {
        let mut crc = (index as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        tables[0][index] = crc;
        index += 1;
    }
    let mut k = 1;
    while k < 4 {
        let mut index = 0;
        while index < 256 {
            let previous = tables[k - 1][index];
            tables[k][index] = (previous << 8) ^ tables[0][(previous >> 8) as usize];
            index += 1;
        }
        k += 1;
    }
    tables
}

static CRC16_TABLES: [[u16; 256]; 4] = crc16_tables();

/// CRC16-XMODEM, four bytes per step (keys are hashed on every command).
pub fn crc16(bytes: &[u8]) -> u16 {
    let tables = &CRC16_TABLES;
    let mut crc = 0u16;
    let mut chunks = bytes.chunks_exact(4);
    for chunk in &mut chunks {
        crc = tables[3][((crc >> 8) as u8 ^ chunk[0]) as usize]
            ^ tables[2][((crc & 0xff) as u8 ^ chunk[1]) as usize]
            ^ tables[1][chunk[2] as usize]
            ^ tables[0][chunk[3] as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc << 8) ^ tables[0][((crc >> 8) as u8 ^ byte) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliced_crc_equals_the_bytewise_definition() {
        fn bytewise(bytes: &[u8]) -> u16 {
            bytes.iter().fold(0u16, |crc, &byte| {
                (crc << 8) ^ CRC16_TABLES[0][((crc >> 8) as u8 ^ byte) as usize]
            })
        }
        let mut state = 0x1234_5678_9abc_def1u64;
        for length in 0..64 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            assert_eq!(crc16(&bytes), bytewise(&bytes), "length {length}");
        }
    }

    #[test]
    fn slots_match_redis_cluster() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
    }
}
