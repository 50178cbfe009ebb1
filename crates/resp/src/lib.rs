//! RESP, the Redis serialisation protocol: request parsing and reply encoding. No I/O, no storage.
//!
//! Model: a connection owns a read buffer. [`parse_request`] looks at the front of that buffer
//! and either finds one complete request (returning how many bytes it used and where each
//! argument lies inside the buffer, so arguments are never copied), asks for more bytes, or
//! reports a protocol error with Redis's exact message. Inline requests (a person typing into
//! telnet) are the one case that needs unescaping; their arguments are copied into an owned
//! side buffer.
//!
//! Replies are written with [`ReplyWriter`], which knows the client's protocol version (RESP2 or
//! RESP3) and picks the wire form of each reply type, so command code never branches on the
//! protocol. To add a reply type, add a method to `ReplyWriter` with both wire forms.

pub mod invariants;
mod parse;
mod reply;
mod value;

pub use parse::{parse_request, split_arguments, ParseLimits, ProtocolError, Request, RequestArgs};
pub use reply::{format_double, Protocol, ReplyWriter};
pub use value::{parse_reply, MalformedReply, ReplyValue};
