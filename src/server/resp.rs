//! RESP, the Redis serialization protocol: requests in, replies out.
//!
//! A request is an array of bulk strings (`*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n`) or an
//! inline command (`PING hi\r\n`), as Redis accepts. Parsing is incremental: it says
//! "incomplete" until a whole request is buffered, and checks every limit before it
//! trusts a length, so a peer cannot make the server allocate what it did not send.

use std::fmt;

/// Limits on what a peer may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string (a session's JSON, a value), in bytes.
    pub max_bulk: usize,
    /// Most arguments in one request.
    pub max_args: usize,
    /// Longest inline command or length line, in bytes.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 16 * 1024 * 1024,
            max_args: 1024,
            max_line: 64 * 1024,
        }
    }
}

/// Why a buffer does not hold a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not yet: more bytes are needed.
    Incomplete,
    /// The bytes are not RESP, or break a limit. The connection cannot be trusted to be
    /// in step any more: answer with the error and close it.
    Protocol(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Incomplete => f.write_str("incomplete request"),
            ParseError::Protocol(m) => write!(f, "Protocol error: {m}"),
        }
    }
}

fn protocol(m: impl Into<String>) -> ParseError {
    ParseError::Protocol(m.into())
}

/// Finds the end of the line starting at `at`: the index of its `\r`.
fn line_end(buf: &[u8], at: usize, limits: &Limits) -> Result<usize, ParseError> {
    let rest = &buf[at.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i > limits.max_line => Err(protocol("line too long")),
        Some(i) => Ok(at + i),
        // A trailing `\r` may be the start of the CRLF still to come: not part of the line.
        None if rest.strip_suffix(b"\r").unwrap_or(rest).len() > limits.max_line => {
            Err(protocol("line too long"))
        }
        None => Err(ParseError::Incomplete),
    }
}

fn number(line: &[u8], what: &str) -> Result<i64, ParseError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| protocol(format!("invalid {what} length")))
}

/// Parses one request from the start of `buf`: its arguments and how many bytes it took.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
    if buf.is_empty() {
        return Err(ParseError::Incomplete);
    }
    if buf[0] != b'*' {
        return parse_inline(buf, limits);
    }
    let end = line_end(buf, 1, limits)?;
    let n = number(&buf[1..end], "multibulk")?;
    let mut pos = end + 2;
    if n <= 0 {
        return Ok((Vec::new(), pos));
    }
    let n = n as usize;
    if n > limits.max_args {
        return Err(protocol(format!(
            "too many arguments ({n}, the limit is {})",
            limits.max_args
        )));
    }
    let mut args = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        if pos >= buf.len() {
            return Err(ParseError::Incomplete);
        }
        if buf[pos] != b'$' {
            return Err(protocol(format!(
                "expected '$', got '{}'",
                (buf[pos] as char).escape_default()
            )));
        }
        let end = line_end(buf, pos + 1, limits)?;
        let len = number(&buf[pos + 1..end], "bulk")?;
        if len < 0 {
            return Err(protocol("invalid bulk length"));
        }
        let len = len as usize;
        if len > limits.max_bulk {
            return Err(protocol(format!(
                "bulk of {len} bytes is over the limit of {}",
                limits.max_bulk
            )));
        }
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return Err(ParseError::Incomplete);
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return Err(protocol("bulk string not followed by CRLF"));
        }
        args.push(buf[start..start + len].to_vec());
        pos = start + len + 2;
    }
    Ok((args, pos))
}

/// An inline command: words separated by spaces, ended by `\n` or `\r\n`.
fn parse_inline(buf: &[u8], limits: &Limits) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
    let nl = match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > limits.max_line => return Err(protocol("inline command too long")),
        Some(i) => i,
        None if buf.len() > limits.max_line => return Err(protocol("inline command too long")),
        None => return Err(ParseError::Incomplete),
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let args: Vec<Vec<u8>> = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_vec())
        .collect();
    if args.len() > limits.max_args {
        return Err(protocol("too many arguments"));
    }
    Ok((args, nl + 1))
}

/// Writes replies in RESP2, or RESP3 after `HELLO 3`.
#[derive(Debug, Default)]
pub struct Out {
    /// The bytes to send.
    pub buf: Vec<u8>,
    /// Speak RESP3 (maps, nulls, …) instead of RESP2.
    pub resp3: bool,
}

impl Out {
    /// `+OK`-style status.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf
            .extend_from_slice(s.replace(['\r', '\n'], " ").as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error, `CODE message`.
    pub fn error(&mut self, s: &str) {
        self.buf.push(b'-');
        self.buf
            .extend_from_slice(s.replace(['\r', '\n'], " ").as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer.
    pub fn int(&mut self, n: i64) {
        self.buf.extend_from_slice(format!(":{n}\r\n").as_bytes());
    }

    /// A bulk string.
    pub fn bulk(&mut self, b: &[u8]) {
        self.buf
            .extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The null value.
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The header of an array of `n` items (write the items next).
    pub fn array(&mut self, n: usize) {
        self.buf.extend_from_slice(format!("*{n}\r\n").as_bytes());
    }

    /// The header of a map of `n` pairs (an array of 2n items in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.buf.extend_from_slice(format!("%{n}\r\n").as_bytes());
        } else {
            self.array(2 * n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8]) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
        parse_request(b, &Limits::default())
    }

    #[test]
    fn arrays_and_inline_commands() {
        let (a, n) = parse(b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\nrest").unwrap();
        assert_eq!(a, vec![b"PING".to_vec(), b"hi".to_vec()]);
        assert_eq!(n, 22);
        let (a, n) = parse(b"SET  k v\r\n").unwrap();
        assert_eq!(a, vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(n, 10);
        assert_eq!(parse(b"*0\r\n").unwrap(), (vec![], 4));
    }

    #[test]
    fn incomplete_until_whole() {
        let full = b"*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse(&full[..cut]),
                Err(ParseError::Incomplete),
                "cut at {cut}"
            );
        }
        assert!(parse(full).is_ok());
    }

    #[test]
    fn malformed_and_oversized_frames_are_protocol_errors() {
        let small = Limits {
            max_bulk: 10,
            max_args: 3,
            max_line: 32,
        };
        let bad = |b: &[u8]| matches!(parse_request(b, &small), Err(ParseError::Protocol(_)));
        assert!(bad(b"*x\r\n"));
        assert!(bad(b"*1\r\n+PING\r\n"));
        assert!(bad(b"*1\r\n$-3\r\n"));
        assert!(
            bad(b"*1\r\n$11\r\n"),
            "a bulk over the limit is refused before it arrives"
        );
        assert!(bad(b"*4\r\n"));
        assert!(bad(b"*1\r\n$2\r\nabcd\r\n"));
        assert!(bad(&[b'x'; 40]));
        assert!(bad(b"*99999999999999999999999\r\n"));
    }

    #[test]
    fn a_line_of_the_longest_length_is_incomplete_until_its_crlf_is_whole() {
        // Found by the resp fuzz target: a length line of exactly max_line bytes was
        // accepted whole but refused as "too long" when a read ended between its \r and
        // its \n.
        let small = Limits {
            max_bulk: 64,
            max_args: 8,
            max_line: 32,
        };
        let mut frame = b"*".to_vec();
        frame.extend_from_slice(&[b'0'; 32]);
        frame.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&frame, &small), Ok((vec![], 35)));
        for cut in 0..frame.len() {
            assert_eq!(
                parse_request(&frame[..cut], &small),
                Err(ParseError::Incomplete),
                "cut at {cut}"
            );
        }
        frame.insert(1, b'0');
        assert!(matches!(
            parse_request(&frame[..34], &small),
            Err(ParseError::Protocol(_))
        ));
    }
}
