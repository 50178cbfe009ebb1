//! Arbitrary bytes as a RESTORE payload body (the footer is added with a correct CRC so the
//! decoder is reached): `Ok` or `Err`, never a panic; what decodes re-encodes and decodes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use persist::rdb::{self, EncodeOptions};

fuzz_target!(|data: &[u8]| {
    let limits = persist::Limits {
        databases: 16,
        ..persist::Limits::default()
    };
    let mut payload = data.to_vec();
    payload.extend_from_slice(&11u16.to_le_bytes());
    let crc = persist::crc64::update(0, &payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(value) = rdb::decode_payload(&payload, &limits) {
        let again = rdb::dump_payload(&value, &EncodeOptions::default());
        let decoded = rdb::decode_payload(&again, &limits).expect("our own payload decodes");
        assert_eq!(decoded.type_name(), value.type_name());
    }
});
