//! Differential test for the bitmap, BITFIELD, HyperLogLog and GEO commands: the same seeded random
//! sequences go to cinnabar-server and to a real redis-server (CINNABAR_REFERENCE_SERVER, as in
//! `differential.rs`); every reply and, at the end, the bytes of every value must be identical.
//! Without the variable the test says so and passes.

mod common;

use common::*;

const SEED: u64 = 0x5eed_0009;
const COMMANDS: usize = 3000;
const KEYS: usize = 5;

/// xorshift64*: the same sequence on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn signed(&mut self, magnitude: u64) -> i64 {
        self.below(2 * magnitude + 1) as i64 - magnitude as i64
    }
}

fn field_type(random: &mut Random) -> String {
    if random.below(2) == 0 {
        format!("i{}", 1 + random.below(64))
    } else {
        format!("u{}", 1 + random.below(63))
    }
}

/// One random command of the families under test.
fn command(random: &mut Random, family: usize) -> Vec<String> {
    let key = |random: &mut Random, prefix: &str| format!("{prefix}{}", random.below(KEYS as u64));
    let mut words: Vec<String> = Vec::new();
    match family {
        // Bitmaps.
        0 => match random.below(6) {
            0 | 1 => {
                words.extend(["SETBIT".into(), key(random, "b")]);
                words.push(random.below(400).to_string());
                words.push(random.below(2).to_string());
            }
            2 => {
                words.extend(["BITCOUNT".into(), key(random, "b")]);
                if random.below(2) == 0 {
                    words.push(random.signed(60).to_string());
                    words.push(random.signed(60).to_string());
                    words.push(["BYTE", "BIT"][random.below(2) as usize].into());
                }
            }
            3 => {
                words.extend(["BITPOS".into(), key(random, "b")]);
                words.push(random.below(2).to_string());
                let extra = random.below(4);
                if extra >= 1 {
                    words.push(random.signed(60).to_string());
                }
                if extra >= 2 {
                    words.push(random.signed(60).to_string());
                }
                if extra >= 3 {
                    words.push(["BYTE", "BIT"][random.below(2) as usize].into());
                }
            }
            4 => {
                let operation = ["AND", "OR", "XOR", "NOT"][random.below(4) as usize];
                words.extend(["BITOP".into(), operation.into(), key(random, "b")]);
                let sources = if operation == "NOT" {
                    1
                } else {
                    1 + random.below(3)
                };
                for _ in 0..sources {
                    words.push(key(random, "b"));
                }
            }
            _ => words.extend([
                "GETBIT".into(),
                key(random, "b"),
                random.below(400).to_string(),
            ]),
        },
        // BITFIELD.
        1 => {
            words.extend(["BITFIELD".into(), key(random, "f")]);
            for _ in 0..1 + random.below(4) {
                let field = field_type(random);
                let offset = if random.below(4) == 0 {
                    format!("#{}", random.below(8))
                } else {
                    random.below(200).to_string()
                };
                match random.below(4) {
                    0 => words.extend(["GET".into(), field, offset]),
                    1 => words.extend([
                        "SET".into(),
                        field,
                        offset,
                        (random.next() as i64 >> random.below(64)).to_string(),
                    ]),
                    2 => words.extend([
                        "INCRBY".into(),
                        field,
                        offset,
                        (random.next() as i64 >> random.below(64)).to_string(),
                    ]),
                    _ => words.extend([
                        "OVERFLOW".into(),
                        ["WRAP", "SAT", "FAIL"][random.below(3) as usize].into(),
                    ]),
                }
            }
        }
        // GEO.
        3 => {
            let coordinate = |random: &mut Random, limit: f64| {
                format!(
                    "{:.6}",
                    (random.below(2_000_001) as f64 / 1_000_000.0 - 1.0) * limit
                )
            };
            match random.below(5) {
                0 | 1 => {
                    words.extend(["GEOADD".into(), key(random, "g")]);
                    for _ in 0..1 + random.below(4) {
                        words.push(coordinate(random, 20.0));
                        words.push(coordinate(random, 20.0));
                        words.push(format!("m{}", random.below(200)));
                    }
                }
                2 => words.extend([
                    "GEODIST".into(),
                    key(random, "g"),
                    format!("m{}", random.below(200)),
                    format!("m{}", random.below(200)),
                    ["m", "km", "ft", "mi"][random.below(4) as usize].into(),
                ]),
                3 => {
                    words.extend(["GEOPOS".into(), key(random, "g")]);
                    words.push(format!("m{}", random.below(200)));
                }
                _ => {
                    words.extend(["GEOSEARCH".into(), key(random, "g")]);
                    words.extend([
                        "FROMLONLAT".into(),
                        coordinate(random, 20.0),
                        coordinate(random, 20.0),
                    ]);
                    if random.below(2) == 0 {
                        words.extend([
                            "BYRADIUS".into(),
                            (random.below(3000) + 1).to_string(),
                            "km".into(),
                        ]);
                    } else {
                        words.extend([
                            "BYBOX".into(),
                            (random.below(3000) + 1).to_string(),
                            (random.below(3000) + 1).to_string(),
                            "km".into(),
                        ]);
                    }
                    match random.below(5) {
                        0 => words.push("ASC".into()),
                        1 => words.push("DESC".into()),
                        2 => words.extend(["COUNT".into(), (1 + random.below(5)).to_string()]),
                        3 => words.extend([
                            "COUNT".into(),
                            (1 + random.below(5)).to_string(),
                            "ANY".into(),
                        ]),
                        _ => {}
                    }
                    words.extend(["WITHDIST".into(), "WITHCOORD".into(), "WITHHASH".into()]);
                }
            }
        }
        // HyperLogLog (family 2).
        _ => match random.below(8) {
            0..=4 => {
                words.extend(["PFADD".into(), key(random, "h")]);
                let spread = [50, 1000, 100_000][random.below(3) as usize];
                for _ in 0..random.below(12) {
                    words.push(format!("e{}", random.below(spread)));
                }
            }
            5 => words.extend(["PFCOUNT".into(), key(random, "h")]),
            6 => {
                words.push("PFCOUNT".into());
                for _ in 0..2 + random.below(2) {
                    words.push(key(random, "h"));
                }
            }
            _ => {
                words.extend(["PFMERGE".into(), key(random, "h")]);
                for _ in 0..random.below(3) {
                    words.push(key(random, "h"));
                }
            }
        },
    }
    words
}

fn call(client: &mut RawClient, words: &[String]) -> Reply {
    let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    client.call(&args)
}

#[test]
fn same_replies_and_bytes_as_redis() {
    let Some(binary) = reference_binary() else {
        return;
    };
    let reference = ReferenceServer::start(&binary, &[]);
    let server = TestServer::start(&[]);
    let mut cinnabar = server.client();
    let mut redis = RawClient::connect(reference.port);
    // A small sparse limit so that promotions to dense happen within the run.
    for client in [&mut cinnabar, &mut redis] {
        assert_eq!(client.cmd("CONFIG SET hll-sparse-max-bytes 400"), ok());
    }
    let mut random = Random(SEED);
    for index in 0..COMMANDS {
        let words = command(&mut random, index % 4);
        let expected = call(&mut redis, &words);
        let actual = call(&mut cinnabar, &words);
        assert_eq!(actual, expected, "command {index}: {}", words.join(" "));
    }
    for prefix in ["b", "f", "h"] {
        // (Geo sets are compared through GEOPOS and GEOSEARCH replies.)
        for index in 0..KEYS {
            let key = format!("{prefix}{index}");
            let words = ["GET".to_string(), key.clone()];
            assert_eq!(
                call(&mut cinnabar, &words),
                call(&mut redis, &words),
                "value of {key}"
            );
        }
    }
}
