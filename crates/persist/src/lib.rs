//! Redis-compatible persistence formats: RDB files and DUMP payloads, decoded into and encoded
//! from the store's own values (`store::Value`). No sockets, no server: the server crate reads
//! and writes the files and runs the commands.
//!
//! # Model
//!
//! An RDB file is a header (`REDIS` + four-digit version), then a sequence of records, each
//! introduced by an opcode byte: auxiliary fields (`AUX`), database selection (`SELECTDB`),
//! size hints (`RESIZEDB`), per-key metadata that precedes the key (`EXPIRETIME_MS`,
//! `EXPIRETIME`, `IDLE`, `FREQ`), function libraries (`FUNCTION2`), and key-value records whose
//! opcode is the value's *type* byte (`RDB_TYPE_*`), followed by the key and the serialized
//! object. `EOF` ends the file, followed (version 5 and later) by a CRC-64 of everything
//! before it (0 when checksums are disabled). A DUMP payload is one type byte + serialized
//! object, then the 2-byte RDB version and the CRC-64 of all that.
//!
//! * [`rdb::load`] decodes a whole file and hands every key to a [`rdb::Sink`]; values are
//!   rebuilt through the store's own constructors with the configured encoding [`Limits`], so
//!   a big ziplist from an old file becomes a hashtable exactly as the same writes would.
//! * [`rdb::decode_payload`] / [`rdb::dump_payload`] are DUMP and RESTORE's halves.
//! * [`rdb::FileWriter`] writes a file record by record (streaming, with the running CRC).
//! * [`packed`] reads and writes the blobs inside values (listpack, ziplist, zipmap, intset),
//!   [`lzf`] compresses strings, [`crc64`] checksums.
//!
//! Every length read from input is checked against the bytes that remain before anything is
//! allocated, counts never pre-allocate more than the input could hold, and any inconsistency
//! is an [`Error`] with a message: corrupt input never panics.
//!
//! # Adding an encoding
//!
//! Give its type byte a constant in [`rdb`], a decoding arm in `Decoder::object` (read with the
//! `Input` helpers, build the value through the store's constructors so limits apply), and if
//! Cinnabar should write it, an arm in `encode_object` (choose the type byte there). Add a
//! fixture or a round-trip test in `rdb`'s tests.

pub mod crc64;
pub mod lzf;
pub mod packed;
pub mod rdb;

use std::fmt;

pub use rdb::Limits;

/// A decoding failure: what was wrong, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
