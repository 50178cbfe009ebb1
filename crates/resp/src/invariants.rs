//! Invariant checks of the request parser, shared by the fuzz target (`fuzz/`) and the seeded
//! random test (`tests/parser_invariants.rs`).
//!
//! [`check_stream`] feeds a byte stream to [`parse_request`] the way a connection does: bytes
//! arrive in chunks and are appended to a read buffer; every complete request is consumed from
//! its front, an incomplete one stays until more bytes arrive, and a protocol error ends the
//! connection. Any broken invariant panics with a description.

use crate::parse::INLINE_BYTES_MAX;
use crate::{parse_request, ParseLimits, Request, RequestArgs};

/// How a connection fed with a stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every byte was consumed.
    Drained,
    /// This many bytes remain, waiting for the rest of a request.
    Incomplete { remaining: usize },
    /// The connection was closed with this protocol error.
    Error(String),
}

/// What a connection parsed from a stream: the requests' arguments, in order, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOutcome {
    pub requests: Vec<Vec<Vec<u8>>>,
    pub end: StreamEnd,
}

/// Interprets arbitrary bytes as a test case: byte 0 chooses the read sizes, byte 1 the limits,
/// the rest is the stream. Checks [`check_stream`] with those read sizes and, for streams short
/// enough that no size limit depends on how the bytes arrive, that reading it whole gives the
/// same outcome.
pub fn check_arbitrary(data: &[u8]) {
    let (chunking, flags, stream) = match data {
        [chunking, flags, stream @ ..] => (*chunking, *flags, stream),
        _ => return,
    };
    let limits = ParseLimits {
        bulk_bytes_max: if flags & 2 != 0 {
            (flags >> 2) as i64
        } else {
            512 * 1024 * 1024
        },
        authenticated: flags & 1 == 0,
    };
    let chunk_sizes = chunk_sizes(chunking);
    let outcome = check_stream(stream, &chunk_sizes, &limits);
    if stream.len() <= INLINE_BYTES_MAX {
        let whole = check_stream(stream, &[stream.len().max(1)], &limits);
        assert_eq!(
            outcome, whole,
            "reading in chunks of {chunk_sizes:?} and reading whole disagree"
        );
    }
}

/// Read sizes chosen by one byte: 0 is "everything at once", others a short repeating pattern.
fn chunk_sizes(selector: u8) -> Vec<usize> {
    match selector {
        0 => vec![usize::MAX],
        1..=16 => vec![selector as usize],
        _ => {
            let mut state = selector as u32;
            (0..7)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    1 + (state >> 16) as usize % 40
                })
                .collect()
        }
    }
}

/// Feeds `stream` to the parser in reads of `chunk_sizes` (cycled), as a connection does, and
/// checks every result against the buffer it came from. Panics when an invariant breaks.
pub fn check_stream(stream: &[u8], chunk_sizes: &[usize], limits: &ParseLimits) -> StreamOutcome {
    assert!(chunk_sizes.iter().all(|&size| size > 0));
    let mut buffer: Vec<u8> = Vec::new();
    let mut args = RequestArgs::new();
    let mut requests = Vec::new();
    let mut fed = 0;
    let mut sizes = chunk_sizes.iter().cycle();
    loop {
        loop {
            let result = parse_request(&buffer, limits, &mut args);
            match result {
                Ok(Request::Complete { consumed }) => {
                    assert!(
                        consumed > 0 && consumed <= buffer.len(),
                        "consumed {consumed} of {} bytes",
                        buffer.len()
                    );
                    assert!(!args.is_empty(), "a complete request without arguments");
                    let request: Vec<Vec<u8>> =
                        args.iter(&buffer).map(|arg| arg.to_vec()).collect();
                    check_complete(&buffer[..consumed], &args, &buffer, &request, limits);
                    requests.push(request);
                    buffer.drain(..consumed);
                }
                Ok(Request::Empty { consumed }) => {
                    assert!(
                        consumed > 0 && consumed <= buffer.len(),
                        "empty request consumed {consumed} of {} bytes",
                        buffer.len()
                    );
                    check_empty(&buffer[..consumed]);
                    buffer.drain(..consumed);
                }
                Ok(Request::Incomplete { bytes_expected }) => {
                    assert!(
                        bytes_expected as u128 <= limits.bulk_bytes_max.max(0) as u128 + 2,
                        "expects {bytes_expected} more bytes, above the bulk limit"
                    );
                    break;
                }
                Err(error) => {
                    assert!(
                        error.0.starts_with("Protocol error: "),
                        "protocol error without Redis's prefix: {:?}",
                        error.0
                    );
                    return StreamOutcome {
                        requests,
                        end: StreamEnd::Error(error.0),
                    };
                }
            }
        }
        if fed == stream.len() {
            let end = if buffer.is_empty() {
                StreamEnd::Drained
            } else {
                StreamEnd::Incomplete {
                    remaining: buffer.len(),
                }
            };
            return StreamOutcome { requests, end };
        }
        let size = (*sizes.next().expect("cycled")).min(stream.len() - fed);
        buffer.extend_from_slice(&stream[fed..fed + size]);
        fed += size;
    }
}

fn check_complete(
    request_bytes: &[u8],
    args: &RequestArgs,
    buffer: &[u8],
    request: &[Vec<u8>],
    limits: &ParseLimits,
) {
    let consumed = request_bytes.len();
    if request_bytes[0] == b'*' {
        // Multibulk: every argument is a slice of this request's bytes, framed as
        // `$<length>\r?<argument>??`, one after the other, and the request ends after the last.
        let header_end = position(request_bytes, b'\r').expect("multibulk header has a CR") + 2;
        let count = decimal(&request_bytes[1..header_end - 2]).expect("valid count");
        assert_eq!(count, request.len() as i64, "argument count");
        let base = buffer.as_ptr() as usize;
        let mut next_header = header_end;
        for index in 0..args.len() {
            let arg = args.get(buffer, index);
            let start = (arg.as_ptr() as usize)
                .checked_sub(base)
                .expect("a multibulk argument points into the read buffer");
            let end = start + arg.len();
            assert!(
                end <= consumed,
                "argument {index} at {start}..{end} outside the request's {consumed} bytes"
            );
            assert!(
                start >= next_header + 4,
                "argument {index} overlaps its header"
            );
            assert_eq!(request_bytes[next_header], b'$', "argument {index} header");
            assert_eq!(
                request_bytes[start - 2],
                b'\r',
                "argument {index} header end"
            );
            let length = decimal(&request_bytes[next_header + 1..start - 2]);
            assert_eq!(length, Some(arg.len() as i64), "argument {index} length");
            assert!(
                arg.len() as i64 <= limits.bulk_bytes_max,
                "bulk over the limit"
            );
            if !limits.authenticated {
                assert!(arg.len() <= 16 * 1024, "unauthenticated bulk over 16 KiB");
            }
            next_header = end + 2;
        }
        assert_eq!(next_header, consumed, "bytes after the last argument");
        if !limits.authenticated {
            assert!(
                request.len() <= 10,
                "unauthenticated request over 10 arguments"
            );
        }
    } else {
        // Inline: one line up to and including the first newline; the arguments are unescaped
        // copies, never longer than the line.
        assert_eq!(
            position(request_bytes, b'\n'),
            Some(consumed - 1),
            "an inline request is one line"
        );
        let total: usize = request.iter().map(Vec::len).sum();
        assert!(total < consumed, "inline arguments longer than their line");
    }
    // What was parsed survives a round trip through its canonical encoding.
    let encoded = encode(request);
    let mut again = RequestArgs::new();
    let unlimited = ParseLimits {
        bulk_bytes_max: i64::MAX,
        authenticated: true,
    };
    let reparsed = parse_request(&encoded, &unlimited, &mut again).expect("canonical form parses");
    assert_eq!(
        reparsed,
        Request::Complete {
            consumed: encoded.len()
        },
        "canonical form"
    );
    let arguments: Vec<&[u8]> = again.iter(&encoded).collect();
    assert_eq!(
        arguments,
        request.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
}

fn check_empty(request_bytes: &[u8]) {
    if request_bytes[0] == b'*' {
        let header_end = position(request_bytes, b'\r').expect("header has a CR") + 2;
        assert_eq!(
            header_end,
            request_bytes.len(),
            "empty multibulk is its header"
        );
        let count = decimal(&request_bytes[1..header_end - 2]).expect("valid count");
        assert!(count <= 0, "a skipped multibulk of {count} arguments");
    } else {
        assert_eq!(
            position(request_bytes, b'\n'),
            Some(request_bytes.len() - 1),
            "an empty inline request is one line"
        );
    }
}

fn position(bytes: &[u8], needle: u8) -> Option<usize> {
    bytes.iter().position(|&byte| byte == needle)
}

/// Redis's `string2ll` for lengths: an optional `-`, digits, no leading zero, no `-0`.
fn decimal(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty()
        || (digits[0] == b'0' && (digits.len() > 1 || digits.len() < text.len()))
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn encode(request: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", request.len()).into_bytes();
    for arg in request {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
