//! Request parsing over a connection's read buffer.
//!
//! The parser is resumable: a request that arrives over many reads (a huge MSET, a 512 MB
//! value) is scanned once, not from the start at every read. [`RequestArgs`] carries the
//! progress between calls; the caller must only append to the buffer until a request completes.

/// Longest inline request line, or header line, accepted without a newline (as Redis's
/// `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// Before authentication a client may send at most this many arguments per request.
pub const UNAUTHENTICATED_ARGS_MAX: i64 = 10;
/// Before authentication a client may send bulks of at most this many bytes.
pub const UNAUTHENTICATED_BULK_BYTES_MAX: i64 = 16 * 1024;
/// Most arguments one request may carry (Redis: `INT_MAX`).
pub const ARGS_MAX: i64 = i32::MAX as i64;

#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub bulk_bytes_max: i64,
    /// Whether the connection may send big requests (authenticated, or no password set).
    pub authenticated: bool,
}

/// A protocol error: the message (after `-ERR `) and the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(message: &str) -> Self {
        ProtocolError(format!("Protocol error: {message}"))
    }
}

/// What the front of the buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A complete request of `consumed` bytes; its arguments are in the `RequestArgs`.
    Complete { consumed: usize },
    /// `consumed` bytes that carry no command (an empty line, `*0`): skip them.
    Empty { consumed: usize },
    /// More bytes are needed; `bytes_expected` is a hint of how many, when a bulk is under way.
    Incomplete { bytes_expected: usize },
}

/// The arguments of the request being parsed: ranges into the read buffer, or (inline requests)
/// into an owned side buffer.
#[derive(Default, Debug)]
pub struct RequestArgs {
    ranges: Vec<(usize, usize)>,
    inline_storage: Vec<u8>,
    is_inline: bool,
    // Resume state of a multibulk request in progress.
    args_expected: usize,
    position: usize,
    /// Where the unparsed part of a request in progress begins: past its header line, its
    /// complete arguments and, when a bulk's data is awaited, that bulk's length line.
    pending_start: usize,
}

impl RequestArgs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `index` of the completed request; `buffer` is the read buffer it was parsed from.
    #[inline]
    pub fn get<'a>(&'a self, buffer: &'a [u8], index: usize) -> &'a [u8] {
        let (start, end) = self.ranges[index];
        if self.is_inline {
            &self.inline_storage[start..end]
        } else {
            &buffer[start..end]
        }
    }

    /// Every argument of the completed request, in order.
    pub fn iter<'a>(&'a self, buffer: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        (0..self.ranges.len()).map(move |index| self.get(buffer, index))
    }

    /// Bytes at the front of a request in progress that are parsed already (its header line,
    /// its complete arguments, the length line of the bulk being read); 0 when no request is
    /// in progress. What follows them is what Redis shows as the query buffer (`qbuf`).
    pub fn parsed_bytes(&self) -> usize {
        if self.args_expected == 0 {
            0
        } else {
            self.pending_start
        }
    }

    /// Bytes of the complete arguments of a request in progress (Redis's `argv-mem` while a
    /// request is read).
    pub fn parsed_argument_bytes(&self) -> usize {
        if self.args_expected == 0 || self.is_inline {
            0
        } else {
            self.ranges.iter().map(|(start, end)| end - start).sum()
        }
    }

    /// Gives back the memory a big request needed once no request is in progress, keeping
    /// room for `arguments_kept` arguments.
    pub fn shrink(&mut self, arguments_kept: usize) {
        if self.args_expected == 0 {
            self.ranges.shrink_to(arguments_kept);
            self.inline_storage.shrink_to(arguments_kept * 16);
        }
    }

    fn reset(&mut self) {
        self.ranges.clear();
        self.inline_storage.clear();
        self.is_inline = false;
        self.args_expected = 0;
        self.position = 0;
        self.pending_start = 0;
    }
}

/// Parses one request from the front of `buffer`. Ranges are relative to `buffer`'s start.
pub fn parse_request(
    buffer: &[u8],
    limits: &ParseLimits,
    args: &mut RequestArgs,
) -> Result<Request, ProtocolError> {
    if args.args_expected == 0 {
        args.reset();
        if buffer.is_empty() {
            return Ok(Request::Incomplete { bytes_expected: 0 });
        }
        if buffer[0] != b'*' {
            return parse_inline(buffer, args);
        }
        let Some(line_end) = find_cr(buffer, 1) else {
            if buffer.len() > INLINE_BYTES_MAX {
                return Err(ProtocolError::new("too big mbulk count string"));
            }
            return Ok(Request::Incomplete { bytes_expected: 0 });
        };
        if line_end + 1 >= buffer.len() {
            return Ok(Request::Incomplete { bytes_expected: 0 });
        }
        let count = parse_length(&buffer[1..line_end]);
        let count = match count {
            Some(count) if count <= ARGS_MAX => count,
            _ => return Err(ProtocolError::new("invalid multibulk length")),
        };
        if count > UNAUTHENTICATED_ARGS_MAX && !limits.authenticated {
            return Err(ProtocolError::new("unauthenticated multibulk length"));
        }
        let consumed = line_end + 2;
        if count <= 0 {
            return Ok(Request::Empty { consumed });
        }
        args.args_expected = count as usize;
        args.position = consumed;
        args.pending_start = consumed;
        args.ranges.reserve((count as usize).min(1024));
    }
    parse_bulks(buffer, limits, args)
}

fn parse_bulks(
    buffer: &[u8],
    limits: &ParseLimits,
    args: &mut RequestArgs,
) -> Result<Request, ProtocolError> {
    while args.ranges.len() < args.args_expected {
        let position = args.position;
        if position >= buffer.len() {
            return Ok(Request::Incomplete { bytes_expected: 0 });
        }
        if buffer[position] != b'$' {
            let got = buffer[position] as char;
            args.reset();
            return Err(ProtocolError(format!(
                "Protocol error: expected '$', got '{got}'"
            )));
        }
        let Some(line_end) = find_cr(buffer, position + 1) else {
            if buffer.len() - position > INLINE_BYTES_MAX {
                args.reset();
                return Err(ProtocolError::new("too big bulk count string"));
            }
            return Ok(Request::Incomplete { bytes_expected: 0 });
        };
        if line_end + 1 >= buffer.len() {
            return Ok(Request::Incomplete { bytes_expected: 0 });
        }
        let length = match parse_length(&buffer[position + 1..line_end]) {
            Some(length) if length >= 0 && length <= limits.bulk_bytes_max => length,
            _ => {
                args.reset();
                return Err(ProtocolError::new("invalid bulk length"));
            }
        };
        if length > UNAUTHENTICATED_BULK_BYTES_MAX && !limits.authenticated {
            args.reset();
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        let start = line_end + 2;
        let end = start + length as usize;
        if end + 2 > buffer.len() {
            args.pending_start = start;
            return Ok(Request::Incomplete {
                bytes_expected: end + 2 - buffer.len(),
            });
        }
        args.ranges.push((start, end));
        args.position = end + 2;
        args.pending_start = args.position;
    }
    let consumed = args.position;
    args.args_expected = 0;
    args.position = 0;
    Ok(Request::Complete { consumed })
}

fn parse_inline(buffer: &[u8], args: &mut RequestArgs) -> Result<Request, ProtocolError> {
    let Some(newline) = memchr(b'\n', buffer) else {
        if buffer.len() > INLINE_BYTES_MAX {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(Request::Incomplete { bytes_expected: 0 });
    };
    let consumed = newline + 1;
    let mut line = &buffer[..newline];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    args.is_inline = true;
    if split_arguments(line, &mut args.inline_storage, &mut args.ranges).is_err() {
        args.reset();
        return Err(ProtocolError::new("unbalanced quotes in request"));
    }
    if args.ranges.is_empty() {
        args.reset();
        return Ok(Request::Empty { consumed });
    }
    Ok(Request::Complete { consumed })
}

/// Splits a line into arguments as a shell would (Redis's `sdssplitargs`): spaces separate,
/// "double quotes" understand `\n \r \t \b \a \\ \" \xHH`, 'single quotes' understand `\'`. A
/// closing quote must be followed by a space or the end of the line.
pub fn split_arguments(
    line: &[u8],
    storage: &mut Vec<u8>,
    ranges: &mut Vec<(usize, usize)>,
) -> Result<(), ()> {
    let mut index = 0;
    loop {
        while index < line.len() && is_space(line[index]) {
            index += 1;
        }
        if index >= line.len() {
            return Ok(());
        }
        let start = storage.len();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if index >= line.len() {
                    return Err(());
                }
                let byte = line[index];
                if byte == b'\\'
                    && index + 3 < line.len()
                    && line[index + 1] == b'x'
                    && line[index + 2].is_ascii_hexdigit()
                    && line[index + 3].is_ascii_hexdigit()
                {
                    storage.push(hex_value(line[index + 2]) * 16 + hex_value(line[index + 3]));
                    index += 3;
                } else if byte == b'\\' && index + 1 < line.len() {
                    index += 1;
                    storage.push(match line[index] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if byte == b'"' {
                    if index + 1 < line.len() && !is_space(line[index + 1]) {
                        return Err(());
                    }
                    index += 1;
                    break;
                } else {
                    storage.push(byte);
                }
                index += 1;
            } else if in_single {
                if index >= line.len() {
                    return Err(());
                }
                let byte = line[index];
                if byte == b'\\' && index + 1 < line.len() && line[index + 1] == b'\'' {
                    index += 1;
                    storage.push(b'\'');
                } else if byte == b'\'' {
                    if index + 1 < line.len() && !is_space(line[index + 1]) {
                        return Err(());
                    }
                    index += 1;
                    break;
                } else {
                    storage.push(byte);
                }
                index += 1;
            } else {
                if index >= line.len() {
                    break;
                }
                match line[index] {
                    byte if is_space(byte) => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    byte => storage.push(byte),
                }
                index += 1;
            }
        }
        ranges.push((start, storage.len()));
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

fn find_cr(buffer: &[u8], from: usize) -> Option<usize> {
    memchr(b'\r', buffer.get(from..)?).map(|offset| offset + from)
}

#[inline]
fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

/// Parses a decimal length as Redis's `string2ll` does: optional `-`, no `+`, no leading zeros,
/// no `-0`, no spaces.
fn parse_length(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    // Redis's string2ll rejects leading zeros and "-0".
    if digits.is_empty()
        || digits.len() > 19
        || (digits[0] == b'0' && (digits.len() > 1 || negative))
    {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add((digit - b'0') as i64)?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        bulk_bytes_max: 512 * 1024 * 1024,
        authenticated: true,
    };

    fn parse_all(input: &[u8]) -> Result<(Request, Vec<Vec<u8>>), ProtocolError> {
        let mut args = RequestArgs::new();
        let request = parse_request(input, &LIMITS, &mut args)?;
        let values = match request {
            Request::Complete { .. } => args.iter(input).map(|arg| arg.to_vec()).collect(),
            _ => Vec::new(),
        };
        Ok((request, values))
    }

    #[test]
    fn the_parsed_prefix_of_a_request_in_progress() {
        let mut args = RequestArgs::new();
        let mut input = b"*3\r\n$3\r\nSET\r\n$5\r\nbig".to_vec();
        let request = parse_request(&input, &LIMITS, &mut args).unwrap();
        assert_eq!(request, Request::Incomplete { bytes_expected: 4 });
        // `*3`, `SET` and the length line of the bulk being read are parsed.
        assert_eq!(args.parsed_bytes(), b"*3\r\n$3\r\nSET\r\n$5\r\n".len());
        assert_eq!(args.parsed_argument_bytes(), 3);
        input.extend_from_slice(b"ky\r\n$1");
        parse_request(&input, &LIMITS, &mut args).unwrap();
        // An unfinished length line is not parsed.
        assert_eq!(args.parsed_bytes(), input.len() - 2);
        assert_eq!(args.parsed_argument_bytes(), 8);
        input.extend_from_slice(b"\r\nv\r\n");
        let request = parse_request(&input, &LIMITS, &mut args).unwrap();
        assert_eq!(
            request,
            Request::Complete {
                consumed: input.len()
            }
        );
        assert_eq!(args.parsed_bytes(), 0);
        assert_eq!(args.parsed_argument_bytes(), 0);
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        let (request, values) = parse_all(input).unwrap();
        assert_eq!(
            request,
            Request::Complete {
                consumed: input.len()
            }
        );
        assert_eq!(values, vec![b"GET".to_vec(), b"key".to_vec()]);
        for cut in 0..input.len() {
            let (request, _) = parse_all(&input[..cut]).unwrap();
            assert!(matches!(request, Request::Incomplete { .. }), "cut {cut}");
        }
    }

    #[test]
    fn resumes_across_reads() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut args = RequestArgs::new();
        for cut in [5, 12, 20, 30] {
            let request = parse_request(&input[..cut], &LIMITS, &mut args).unwrap();
            assert!(matches!(request, Request::Incomplete { .. }));
        }
        let request = parse_request(input, &LIMITS, &mut args).unwrap();
        assert_eq!(
            request,
            Request::Complete {
                consumed: input.len()
            }
        );
        assert_eq!(args.get(input, 2), b"hello");
    }

    #[test]
    fn protocol_errors_carry_redis_messages() {
        let cases: [(&[u8], &str); 6] = [
            (b"*x\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n+3\r\n", "Protocol error: expected '+', got '+'"),
            (b"*1\r\n$-3\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
            (
                b"\"unbalanced\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"*3000000000\r\n",
                "Protocol error: invalid multibulk length",
            ),
        ];
        for (input, message) in cases {
            let error = parse_all(input).unwrap_err();
            let expected = message.replace("expected '+'", "expected '$'");
            assert_eq!(error.0, expected);
        }
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = ParseLimits {
            authenticated: false,
            ..LIMITS
        };
        let mut args = RequestArgs::new();
        let error = parse_request(b"*11\r\n", &limits, &mut args).unwrap_err();
        assert_eq!(error.0, "Protocol error: unauthenticated multibulk length");
        let error = parse_request(b"*1\r\n$16385\r\n", &limits, &mut args).unwrap_err();
        assert_eq!(error.0, "Protocol error: unauthenticated bulk length");
    }

    #[test]
    fn oversized_headers_without_newline() {
        let mut input = b"*".to_vec();
        input.extend(std::iter::repeat(b'1').take(INLINE_BYTES_MAX + 1));
        assert_eq!(
            parse_all(&input).unwrap_err().0,
            "Protocol error: too big mbulk count string"
        );
        let inline = vec![b'a'; INLINE_BYTES_MAX + 1];
        assert_eq!(
            parse_all(&inline).unwrap_err().0,
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn inline_requests_split_like_a_shell() {
        let (request, values) = parse_all(b"SET  a \"b c\\x41\\n\" 'it\\'s'\r\n").unwrap();
        assert!(matches!(request, Request::Complete { .. }));
        assert_eq!(
            values,
            vec![
                b"SET".to_vec(),
                b"a".to_vec(),
                b"b cA\n".to_vec(),
                b"it's".to_vec()
            ]
        );
        assert_eq!(
            parse_all(b"\r\n").unwrap().0,
            Request::Empty { consumed: 2 }
        );
        assert_eq!(
            parse_all(b"*0\r\n").unwrap().0,
            Request::Empty { consumed: 4 }
        );
        assert!(parse_all(b"\"a\"b\n").is_err());
    }

    #[test]
    fn strict_lengths() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"-1"), Some(-1));
        assert_eq!(parse_length(b"01"), None);
        assert_eq!(parse_length(b"-0"), None);
        assert_eq!(parse_length(b"-01"), None);
        assert_eq!(parse_length(b"+1"), None);
        assert_eq!(parse_length(b""), None);
        assert_eq!(parse_length(b"99999999999999999999"), None);
    }
}
