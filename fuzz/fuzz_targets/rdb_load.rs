//! Arbitrary bytes loaded as an RDB file (after a valid header, so the fuzzer reaches the
//! records): decoding must return `Ok` or `Err`, never panic or allocate without bound. Every
//! value that decodes is encoded again and must decode to a value of the same type.

#![no_main]

use libfuzzer_sys::fuzz_target;
use persist::rdb::{self, EncodeOptions, LoadedEntry, Sink};

struct Check;

impl Sink for Check {
    fn entry(&mut self, entry: LoadedEntry) -> Result<(), persist::Error> {
        let payload = rdb::dump_payload(&entry.value, &EncodeOptions::default());
        let again = rdb::decode_payload(&payload, &limits()).expect("our own payload decodes");
        assert_eq!(again.type_name(), entry.value.type_name());
        Ok(())
    }
}

fn limits() -> persist::Limits {
    persist::Limits {
        databases: 16,
        ..persist::Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut file = b"REDIS0011".to_vec();
    file.extend_from_slice(data);
    let _ = rdb::load(&file, &limits(), &mut Check);
});
