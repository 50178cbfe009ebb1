//! Arbitrary bytes fed to `resp::parse_request` as a connection would (in reads of varying sizes,
//! consuming complete requests, keeping incomplete ones, stopping at a protocol error), checking
//! the parser's invariants: see `resp::invariants`. Byte 0 chooses the read sizes, byte 1 the
//! limits (authenticated or not, a small proto-max-bulk-len), the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    resp::invariants::check_arbitrary(data);
});
