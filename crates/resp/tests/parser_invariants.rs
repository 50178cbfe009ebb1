//! The request parser's invariants (`resp::invariants`) over a few thousand seeded random
//! streams, so CI exercises what the `resp_request` fuzz target checks without cargo-fuzz.
//! Set RESP_INVARIANTS_SEED / RESP_INVARIANTS_CASES to explore further.

use resp::invariants::check_arbitrary;

/// SplitMix64: small, seeded, good enough to pick fragments.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, choices: &[&'a [u8]]) -> &'a [u8] {
        choices[self.below(choices.len())]
    }

    fn bytes(&mut self, length: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..length)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

const PROTOCOL_BYTES: &[u8] = b"*$\r\n\r\n0123456789-+ \"'\\xaZ\t";

fn multibulk(random: &mut Random, out: &mut Vec<u8>) {
    let count = random.below(5);
    out.extend_from_slice(format!("*{count}\r\n").as_bytes());
    for _ in 0..count {
        let length = random.below(24);
        out.extend_from_slice(format!("${length}\r\n").as_bytes());
        let alphabet: &[u8] = if random.below(4) == 0 {
            PROTOCOL_BYTES
        } else {
            b"abcdefghijklmnopqrstuvwxyz0123456789"
        };
        out.extend(random.bytes(length, alphabet));
        out.extend_from_slice(b"\r\n");
    }
}

fn inline(random: &mut Random, out: &mut Vec<u8>) {
    let words = random.below(5);
    for index in 0..words {
        if index > 0 {
            out.extend_from_slice(random.pick(&[b" ", b"  ", b"\t"]));
        }
        match random.below(6) {
            0 => {
                out.push(b'"');
                let length = random.below(8);
                out.extend(random.bytes(length, b"ab \\nx41\"'"));
                out.push(b'"');
            }
            1 => {
                out.push(b'\'');
                let length = random.below(8);
                out.extend(random.bytes(length, b"ab \\'\""));
                out.push(b'\'');
            }
            _ => {
                let length = 1 + random.below(8);
                out.extend(random.bytes(length, b"abcdefGHIJ0123"));
            }
        }
    }
    out.extend_from_slice(random.pick(&[b"\r\n", b"\n", b"\r\n", b""]));
}

fn odd_header(random: &mut Random, out: &mut Vec<u8>) {
    out.extend_from_slice(random.pick(&[
        b"*0\r\n",
        b"*-1\r\n",
        b"*-0\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"*abc\r\n",
        b"*99999999999999999999\r\n",
        b"*3000000000\r\n",
        b"*1\r\n$-0\r\n\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$99999999999\r\n",
        b"*1\r\n$3\r\nabcXY",
        b"*2\r\n$1\r\na\r\n:1\r\n",
        b"*1\r\n$1\ra\r\n",
        b"*1\n$1\r\na\r\n",
        b"*1\r",
        b"\r\n",
        b"\n",
        b"*11\r\n",
        b"*1\r\n$16385\r\n",
    ]));
}

fn stream(random: &mut Random) -> Vec<u8> {
    let mut out = vec![random.next() as u8, random.next() as u8];
    for _ in 0..1 + random.below(6) {
        match random.below(10) {
            0..=3 => multibulk(random, &mut out),
            4..=6 => inline(random, &mut out),
            7 | 8 => odd_header(random, &mut out),
            _ => {
                let length = random.below(16);
                out.extend(random.bytes(length, PROTOCOL_BYTES));
            }
        }
    }
    // Sometimes damage one byte past the two control bytes.
    if out.len() > 2 && random.below(3) == 0 {
        let index = 2 + random.below(out.len() - 2);
        match random.below(3) {
            0 => out[index] = PROTOCOL_BYTES[random.below(PROTOCOL_BYTES.len())],
            1 => {
                out.remove(index);
            }
            _ => out.insert(index, PROTOCOL_BYTES[random.below(PROTOCOL_BYTES.len())]),
        }
    }
    out
}

fn environment_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_streams_keep_parser_invariants() {
    let seed = environment_number("RESP_INVARIANTS_SEED", 0x5eed_c1aa_ba12);
    let cases = environment_number("RESP_INVARIANTS_CASES", 20_000);
    let mut random = Random(seed);
    for case in 0..cases {
        let input = stream(&mut random);
        let result = std::panic::catch_unwind(|| check_arbitrary(&input));
        if let Err(panic) = result {
            // The inner panic was printed above; this names the case to reproduce it.
            panic!(
                "seed {seed:#x}, case {case}: invariant broken on input {:?}: {}",
                String::from_utf8_lossy(&input).escape_debug().to_string(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic)")
            );
        }
    }
}

#[test]
fn known_inputs_keep_parser_invariants() {
    let streams: [&[u8]; 6] = [
        b"\x00\x00*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n",
        b"\x03\x00*1\r\n$4\r\nPING\r\n\r\n*0\r\nECHO \"a b\"\n",
        b"\x01\x01*11\r\n",
        b"\x05\x0e*1\r\n$4\r\nPING\r\n",
        b"\x00\x00*-0\r\n",
        b"\x00\x00*1\r\n$-0\r\n\r\n",
    ];
    for input in streams {
        check_arbitrary(input);
    }
}
