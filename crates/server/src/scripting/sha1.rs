//! SHA-1 names for scripts (`redis.sha1hex`, EVALSHA): the store's SHA-1 (`store::digest`,
//! also behind DEBUG DIGEST), in the forms scripting needs.

/// The SHA-1 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 20] {
    store::digest::sha1(data)
}

/// The SHA-1 of `data` as 40 lower-case hexadecimal digits.
pub fn hex(data: &[u8]) -> String {
    let mut text = String::with_capacity(40);
    for byte in digest(data) {
        text.push(char::from_digit(u32::from(byte >> 4), 16).expect("a hex digit"));
        text.push(char::from_digit(u32::from(byte & 0xf), 16).expect("a hex digit"));
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digests() {
        assert_eq!(super::hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            super::hex(b"Pizza & Mandolino"),
            "74822d82031af7493c20eefa13bd07ec4fada82f"
        );
    }
}
