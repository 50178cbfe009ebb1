//! Parsing *replies* (RESP2 and RESP3) back into values: what a script sees of the commands it
//! calls. The input is always complete (a reply the server just wrote), so there is no
//! resumable state; malformed input is reported, never trusted.

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyValue {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    /// RESP2 null bulk / null array, RESP3 `_`.
    Nil,
    Array(Vec<ReplyValue>),
    Map(Vec<(ReplyValue, ReplyValue)>),
    Set(Vec<ReplyValue>),
    Double(f64),
    Boolean(bool),
    BigNumber(Vec<u8>),
    /// Format (`txt`, `mkd`) and text.
    Verbatim([u8; 3], Vec<u8>),
    Push(Vec<ReplyValue>),
}

/// A reply that could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedReply;

/// Parses the reply at the start of `input`; returns it and how many bytes it used.
pub fn parse_reply(input: &[u8]) -> Result<(ReplyValue, usize), MalformedReply> {
    let mut position = 0;
    let value = parse_at(input, &mut position, 0)?;
    Ok((value, position))
}

/// Deepest nesting accepted (replies the server writes are far shallower).
const DEPTH_MAX: usize = 1024;

fn line<'a>(input: &'a [u8], position: &mut usize) -> Result<&'a [u8], MalformedReply> {
    let rest = input.get(*position..).ok_or(MalformedReply)?;
    let end = rest
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .ok_or(MalformedReply)?;
    *position += end + 2;
    Ok(&rest[..end])
}

fn integer(text: &[u8]) -> Result<i64, MalformedReply> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(MalformedReply)
}

fn blob(input: &[u8], position: &mut usize, length: i64) -> Result<Vec<u8>, MalformedReply> {
    let length = usize::try_from(length).map_err(|_| MalformedReply)?;
    let end = position.checked_add(length).ok_or(MalformedReply)?;
    if input.get(end..end + 2) != Some(b"\r\n".as_slice()) {
        return Err(MalformedReply);
    }
    let data = input[*position..end].to_vec();
    *position = end + 2;
    Ok(data)
}

fn elements(
    input: &[u8],
    position: &mut usize,
    count: usize,
    depth: usize,
) -> Result<Vec<ReplyValue>, MalformedReply> {
    let mut values = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        values.push(parse_at(input, position, depth + 1)?);
    }
    Ok(values)
}

fn parse_at(
    input: &[u8],
    position: &mut usize,
    depth: usize,
) -> Result<ReplyValue, MalformedReply> {
    if depth > DEPTH_MAX {
        return Err(MalformedReply);
    }
    let kind = *input.get(*position).ok_or(MalformedReply)?;
    *position += 1;
    let header = line(input, position)?;
    Ok(match kind {
        b'+' => ReplyValue::Simple(header.to_vec()),
        b'-' => ReplyValue::Error(header.to_vec()),
        b':' => ReplyValue::Integer(integer(header)?),
        b'$' => match integer(header)? {
            -1 => ReplyValue::Nil,
            length => ReplyValue::Bulk(blob(input, position, length)?),
        },
        b'*' | b'~' | b'>' => match integer(header)? {
            -1 => ReplyValue::Nil,
            count => {
                let count = usize::try_from(count).map_err(|_| MalformedReply)?;
                let values = elements(input, position, count, depth)?;
                match kind {
                    b'*' => ReplyValue::Array(values),
                    b'~' => ReplyValue::Set(values),
                    _ => ReplyValue::Push(values),
                }
            }
        },
        b'%' => {
            let count = usize::try_from(integer(header)?).map_err(|_| MalformedReply)?;
            let mut flat = elements(input, position, count * 2, depth)?.into_iter();
            let mut pairs = Vec::with_capacity(count);
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((key, value));
            }
            ReplyValue::Map(pairs)
        }
        b'_' => ReplyValue::Nil,
        b'#' => match header {
            b"t" => ReplyValue::Boolean(true),
            b"f" => ReplyValue::Boolean(false),
            _ => return Err(MalformedReply),
        },
        b',' => {
            let text = std::str::from_utf8(header).map_err(|_| MalformedReply)?;
            let value = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                _ => text.parse().map_err(|_| MalformedReply)?,
            };
            ReplyValue::Double(value)
        }
        b'(' => ReplyValue::BigNumber(header.to_vec()),
        b'=' => {
            let data = blob(input, position, integer(header)?)?;
            if data.len() < 4 || data[3] != b':' {
                return Err(MalformedReply);
            }
            ReplyValue::Verbatim([data[0], data[1], data[2]], data[4..].to_vec())
        }
        b'!' => ReplyValue::Error(blob(input, position, integer(header)?)?),
        b'|' => {
            // Attributes (RESP3): key/value pairs about the reply that follows; not exposed,
            // the reply itself is what counts.
            let count = usize::try_from(integer(header)?).map_err(|_| MalformedReply)?;
            let pairs = count.checked_mul(2).ok_or(MalformedReply)?;
            elements(input, position, pairs, depth)?;
            parse_at(input, position, depth + 1)?
        }
        _ => return Err(MalformedReply),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> ReplyValue {
        let (value, used) = parse_reply(input).unwrap();
        assert_eq!(used, input.len());
        value
    }

    #[test]
    fn attributes_are_skipped() {
        assert_eq!(
            parse(b"|1\r\n+key-popularity\r\n*1\r\n:1\r\n$4\r\nreal\r\n"),
            ReplyValue::Bulk(b"real".to_vec())
        );
        assert_eq!(parse_reply(b"|1\r\n+key\r\n"), Err(MalformedReply));
    }

    #[test]
    fn resp2_types() {
        assert_eq!(parse(b"+OK\r\n"), ReplyValue::Simple(b"OK".to_vec()));
        assert_eq!(
            parse(b"-ERR bad\r\n"),
            ReplyValue::Error(b"ERR bad".to_vec())
        );
        assert_eq!(parse(b":-42\r\n"), ReplyValue::Integer(-42));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n"),
            ReplyValue::Bulk(b"a\r\n".to_vec())
        );
        assert_eq!(parse(b"$-1\r\n"), ReplyValue::Nil);
        assert_eq!(parse(b"*-1\r\n"), ReplyValue::Nil);
        assert_eq!(
            parse(b"*2\r\n:1\r\n*1\r\n$0\r\n\r\n"),
            ReplyValue::Array(vec![
                ReplyValue::Integer(1),
                ReplyValue::Array(vec![ReplyValue::Bulk(Vec::new())])
            ])
        );
    }

    #[test]
    fn resp3_types() {
        assert_eq!(
            parse(b"%1\r\n+a\r\n:1\r\n"),
            ReplyValue::Map(vec![(
                ReplyValue::Simple(b"a".to_vec()),
                ReplyValue::Integer(1)
            )])
        );
        assert_eq!(
            parse(b"~1\r\n_\r\n"),
            ReplyValue::Set(vec![ReplyValue::Nil])
        );
        assert_eq!(parse(b",1.5\r\n"), ReplyValue::Double(1.5));
        assert_eq!(parse(b",-inf\r\n"), ReplyValue::Double(f64::NEG_INFINITY));
        assert_eq!(parse(b"#t\r\n"), ReplyValue::Boolean(true));
        assert_eq!(parse(b"(123\r\n"), ReplyValue::BigNumber(b"123".to_vec()));
        assert_eq!(
            parse(b"=7\r\ntxt:abc\r\n"),
            ReplyValue::Verbatim(*b"txt", b"abc".to_vec())
        );
        assert_eq!(
            parse(b">1\r\n:1\r\n"),
            ReplyValue::Push(vec![ReplyValue::Integer(1)])
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(parse_reply(b"$5\r\nab\r\n"), Err(MalformedReply));
        assert_eq!(parse_reply(b"*2\r\n:1\r\n"), Err(MalformedReply));
        assert_eq!(parse_reply(b"?\r\n"), Err(MalformedReply));
        assert_eq!(parse_reply(b":x\r\n"), Err(MalformedReply));
        assert_eq!(parse_reply(b""), Err(MalformedReply));
    }

    #[test]
    fn consumes_one_reply() {
        assert_eq!(
            parse_reply(b":1\r\n:2\r\n"),
            Ok((ReplyValue::Integer(1), 4))
        );
    }
}
