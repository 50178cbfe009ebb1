//! Reply encoding for RESP2 and RESP3.

/// The protocol a client speaks, chosen with HELLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// Appends replies to an output buffer in the client's protocol.
pub struct ReplyWriter<'a> {
    out: &'a mut Vec<u8>,
    protocol: Protocol,
}

impl<'a> ReplyWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>, protocol: Protocol) -> Self {
        ReplyWriter { out, protocol }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn is_resp3(&self) -> bool {
        self.protocol == Protocol::Resp3
    }

    /// The raw output buffer, for callers that splice preformatted replies.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// How many bytes the buffer holds.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply. Newlines would break the protocol and are replaced by spaces.
    pub fn simple(&mut self, text: &[u8]) {
        self.out.push(b'+');
        self.push_line(text);
    }

    /// An error reply; `message` is the whole text, code included (`ERR ...`, `WRONGTYPE ...`).
    pub fn error(&mut self, message: &[u8]) {
        self.out.push(b'-');
        self.push_line(message);
    }

    fn push_line(&mut self, text: &[u8]) {
        let start = self.out.len();
        self.out.extend_from_slice(text);
        for byte in &mut self.out[start..] {
            if *byte == b'\r' || *byte == b'\n' {
                *byte = b' ';
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn integer(&mut self, value: i64) {
        self.out.push(b':');
        self.push_number(value);
        self.out.extend_from_slice(b"\r\n");
    }

    fn push_number(&mut self, value: i64) {
        let mut formatter = itoa::Buffer::new();
        self.out
            .extend_from_slice(formatter.format(value).as_bytes());
    }

    fn header(&mut self, kind: u8, length: usize) {
        self.out.push(kind);
        let mut formatter = itoa::Buffer::new();
        self.out
            .extend_from_slice(formatter.format(length).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn bulk(&mut self, value: &[u8]) {
        self.header(b'$', value.len());
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of an integer.
    pub fn bulk_integer(&mut self, value: i64) {
        let mut formatter = itoa::Buffer::new();
        self.bulk(formatter.format(value).as_bytes());
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.protocol {
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, length: usize) {
        self.header(b'*', length);
    }

    /// A map of `pairs` entries: `%` in RESP3, a flat array of twice the length in RESP2.
    pub fn map(&mut self, pairs: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', pairs * 2),
            Protocol::Resp3 => self.header(b'%', pairs),
        }
    }

    /// A set: `~` in RESP3, an array in RESP2.
    pub fn set(&mut self, length: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', length),
            Protocol::Resp3 => self.header(b'~', length),
        }
    }

    /// An out-of-band push (RESP3 `>`); RESP2 clients see an array.
    pub fn push(&mut self, length: usize) {
        match self.protocol {
            Protocol::Resp2 => self.header(b'*', length),
            Protocol::Resp3 => self.header(b'>', length),
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, value: bool) {
        match (self.protocol, value) {
            (Protocol::Resp2, true) => self.out.extend_from_slice(b":1\r\n"),
            (Protocol::Resp2, false) => self.out.extend_from_slice(b":0\r\n"),
            (Protocol::Resp3, true) => self.out.extend_from_slice(b"#t\r\n"),
            (Protocol::Resp3, false) => self.out.extend_from_slice(b"#f\r\n"),
        }
    }

    /// A double: `,` in RESP3, a bulk string in RESP2, formatted as Redis 7.2 does.
    pub fn double(&mut self, value: f64) {
        let text = format_double(value);
        match self.protocol {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.out.push(b',');
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Verbatim text (`=` with a format in RESP3), a bulk string in RESP2.
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        match self.protocol {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.header(b'=', text.len() + 4);
                self.out.extend_from_slice(format);
                self.out.push(b':');
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A list of bulk strings.
    pub fn bulk_array<'b>(&mut self, values: impl ExactSizeIterator<Item = &'b [u8]>) {
        self.array(values.len());
        for value in values {
            self.bulk(value);
        }
    }
}

/// Formats a double as Redis 7.2 does (`%.17g` layout with the shortest digits that round-trip;
/// `inf`, `-inf`, `nan`).
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "d.ddde±x".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("scientific formatting has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut text = String::with_capacity(24);
    if negative {
        text.push('-');
    }
    if !(-4..17).contains(&exponent) {
        text.push_str(&digits[..1]);
        if digits.len() > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        text.push('e');
        text.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            text.push('0');
        }
        text.push_str(&magnitude.to_string());
    } else if exponent < 0 {
        text.push_str("0.");
        for _ in 0..(-exponent - 1) {
            text.push('0');
        }
        text.push_str(&digits);
    } else {
        let integer_digits = exponent as usize + 1;
        if digits.len() <= integer_digits {
            text.push_str(&digits);
            for _ in digits.len()..integer_digits {
                text.push('0');
            }
        } else {
            text.push_str(&digits[..integer_digits]);
            text.push('.');
            text.push_str(&digits[integer_digits..]);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(10.0), "10");
        assert_eq!(format_double(-0.0001), "-0.0001");
        assert_eq!(
            format_double(0.00001),
            "1.0000000000000001e-05".replace("1.0000000000000001", "1")
        );
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(12345678901234567.0), "12345678901234568");
        assert_eq!(format_double(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(3.0e-300), "3e-300");
    }

    #[test]
    fn resp2_and_resp3_forms() {
        let mut out = Vec::new();
        let mut writer = ReplyWriter::new(&mut out, Protocol::Resp2);
        writer.null();
        writer.map(1);
        writer.boolean(true);
        writer.double(2.5);
        assert_eq!(out, b"$-1\r\n*2\r\n:1\r\n$3\r\n2.5\r\n");
        let mut out = Vec::new();
        let mut writer = ReplyWriter::new(&mut out, Protocol::Resp3);
        writer.null();
        writer.map(1);
        writer.boolean(true);
        writer.double(2.5);
        assert_eq!(out, b"_\r\n%1\r\n#t\r\n,2.5\r\n");
    }

    #[test]
    fn status_lines_never_break_the_protocol() {
        let mut out = Vec::new();
        ReplyWriter::new(&mut out, Protocol::Resp2).error(b"ERR bad\r\nthing");
        assert_eq!(out, b"-ERR bad  thing\r\n");
    }
}
