//! Arbitrary bytes fed to the AOF loader's parsers: as an AOF file (`CommandReader`, command by
//! command until the end, a truncation or a format error) and as a manifest
//! (`Manifest::parse`), checking `cinnabar::aof::format::check_invariants`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cinnabar::aof::format::check_invariants(data);
});
