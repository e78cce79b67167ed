//! One way to read and write every wire structure.
//!
//! rustls's codec is private to rustls and tls-parser cannot write most of
//! what a scanner sends, so `wire` has its own, shaped like rustls's: a
//! [`Codec`] trait with `encode` and `read` over a [`Reader`].
//!
//! The reader makes the distinction a socket loop depends on. Bytes arrive in
//! pieces, so running out of input at the outermost framing (a record header,
//! a handshake header) only means "read more": [`WireError::Incomplete`]. Once
//! a length field has promised that a whole structure is present, running out
//! inside it means the peer lied: [`WireError::Truncated`], a malformed
//! message. A reader made with [`Reader::new`] reports the first, a reader made
//! with [`Reader::complete`] (or carved out of a length with
//! [`Reader::sub`]) reports the second. Conflating the two either hangs a
//! probe waiting for bytes that never come or rejects a server that was only
//! slow.
//!
//! Every length that comes from the network is compared with the bytes
//! actually present before anything is allocated from it, so the memory a
//! message costs is bounded by the bytes it arrived in.

use thiserror::Error;

/// Why bytes could not be read as the structure asked for.
///
/// [`WireError::Incomplete`] is the only variant that means "feed more bytes
/// and retry"; every other variant means the input is not valid and never
/// will be.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    /// The input ends before the structure does; more bytes may complete it.
    #[error("incomplete: {need} bytes needed here, {have} buffered")]
    Incomplete { need: usize, have: usize },
    /// A length field promised more bytes than its enclosing structure holds.
    #[error("{what} truncated: {need} bytes needed, {have} left")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// A length beyond what the protocol or our caps allow.
    #[error("{what} of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { what: &'static str, len: usize, max: usize },
    /// More items than our caps allow (certificates, messages, records).
    #[error("more than {max} {what}")]
    TooMany { what: &'static str, max: usize },
    /// A TLS record longer than the protocol permits (`record_overflow`).
    #[error("record of {len} bytes overflows the {max}-byte limit")]
    RecordOverflow { len: usize, max: usize },
    /// Bytes left over after a structure that must fill its container.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, extra: usize },
    /// A list that must not be empty is.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A field holds a value the protocol does not allow here.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The bytes are not a TLS record at all.
    #[error("not a TLS record: content type {content_type:#04x}, version {version:#06x}")]
    NotTls { content_type: u8, version: u16 },
    /// A message of another kind than the one expected at this point.
    #[error("expected {expected}, got {got}")]
    UnexpectedMessage { expected: &'static str, got: String },
    /// The same extension twice in one message (RFC 8446 §4.2 forbids it);
    /// the extension type's code point (the codec sits below the registries).
    #[error("duplicate extension {0:#06x}")]
    DuplicateExtension(u16),
}

impl WireError {
    /// More bytes may turn this into a success.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, WireError::Incomplete { .. })
    }
}

/// A cursor over received bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The buffer is all there is: running short is malformed, not incomplete.
    complete: bool,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over bytes as they came from the network; more may follow.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            complete: false,
            what: "input",
        }
    }

    /// A reader over a structure known to be whole (its length was framed
    /// elsewhere); `what` names it in errors.
    pub fn complete(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            complete: true,
            what,
        }
    }

    /// Bytes not yet read.
    pub fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Bytes read so far.
    pub fn used(&self) -> usize {
        self.pos
    }

    pub fn any_left(&self) -> bool {
        self.left() > 0
    }

    /// The next `n` bytes, without consuming them.
    pub fn peek(&self, n: usize) -> Option<&'a [u8]> {
        self.buf.get(self.pos..self.pos.checked_add(n)?)
    }

    /// Consumes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let have = self.left();
        if n > have {
            return Err(self.short(n, have));
        }
        let end = self.pos + n;
        let out = self.buf.get(self.pos..end).ok_or_else(|| self.short(n, have))?;
        self.pos = end;
        Ok(out)
    }

    /// Consumes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }

    pub fn u24(&mut self) -> Result<u32, WireError> {
        let [a, b, c] = self.array::<3>()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    /// Consumes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.short(N, bytes.len()))
    }

    /// Carves the next `len` bytes out as a complete reader named `what`.
    ///
    /// If the bytes are not all here this is incomplete (for a streaming
    /// reader) or truncated; inside the sub-reader every shortfall is
    /// truncation, because the length said the bytes would be there.
    pub fn sub(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, WireError> {
        let have = self.left();
        if len > have {
            return Err(match self.complete {
                true => WireError::Truncated { what, need: len, have },
                false => WireError::Incomplete { need: len, have },
            });
        }
        Ok(Reader::complete(self.take(len)?, what))
    }

    /// A `u8` length, then that many bytes as a sub-reader.
    pub fn sub_u8(&mut self, what: &'static str) -> Result<Reader<'a>, WireError> {
        let len = self.u8()?;
        self.sub(usize::from(len), what)
    }

    /// A `u16` length, then that many bytes as a sub-reader.
    pub fn sub_u16(&mut self, what: &'static str) -> Result<Reader<'a>, WireError> {
        let len = self.u16()?;
        self.sub(usize::from(len), what)
    }

    /// A `u24` length (at most `max`), then that many bytes as a sub-reader.
    ///
    /// The cap is checked on the declared length, before any byte is waited
    /// for: a peer announcing a 16 MB message is refused at once.
    pub fn sub_u24(&mut self, what: &'static str, max: usize) -> Result<Reader<'a>, WireError> {
        let len = usize::try_from(self.u24()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(WireError::TooLarge { what, len, max });
        }
        self.sub(len, what)
    }

    /// Fails unless every byte has been consumed.
    pub fn expect_end(&self) -> Result<(), WireError> {
        match self.left() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes { what: self.what, extra }),
        }
    }

    fn short(&self, need: usize, have: usize) -> WireError {
        if self.complete {
            WireError::Truncated {
                what: self.what,
                need,
                have,
            }
        } else {
            WireError::Incomplete { need, have }
        }
    }
}

/// A wire structure: written to and read from bytes.
pub trait Codec: Sized {
    /// Appends the wire form.
    ///
    /// Encoding cannot fail: builders that take lengths from callers check
    /// them before encoding (see `ClientHelloBuilder::build`).
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value from the front of `r`.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// The wire form as a fresh vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Reads a value from bytes that hold exactly it and nothing else.
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let what = std::any::type_name::<Self>().rsplit("::").next().unwrap_or("value");
        let mut r = Reader::complete(bytes, what);
        let value = Self::read(&mut r)?;
        r.expect_end()?;
        Ok(value)
    }
}

impl Codec for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.u8()
    }
}

impl Codec for u16 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.u16()
    }
}

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes the low 24 bits of `v`.
pub fn put_u24(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Width of a length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthPrefix {
    U8,
    U16,
    U24,
}

impl LengthPrefix {
    /// The largest length the prefix can express.
    pub const fn max(self) -> usize {
        match self {
            LengthPrefix::U8 => 0xff,
            LengthPrefix::U16 => 0xffff,
            LengthPrefix::U24 => 0xff_ffff,
        }
    }

    const fn width(self) -> usize {
        match self {
            LengthPrefix::U8 => 1,
            LengthPrefix::U16 => 2,
            LengthPrefix::U24 => 3,
        }
    }
}

/// Writes a length prefix, lets `body` append the content, then fills in
/// the length.
///
/// A body longer than the prefix can express is a bug in the caller (the
/// builders check sizes first); it is written with a saturated length, which
/// any reader rejects, rather than panicking.
pub fn with_length(out: &mut Vec<u8>, prefix: LengthPrefix, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    let width = prefix.width();
    out.resize(at + width, 0);
    body(out);
    let len = out.len() - at - width;
    let len = u32::try_from(len.min(prefix.max())).unwrap_or(u32::MAX);
    let be = len.to_be_bytes();
    if let (Some(slot), Some(src)) = (out.get_mut(at..at + width), be.get(4 - width..)) {
        slot.copy_from_slice(src);
    }
}

/// Writes `bytes` behind a length prefix.
pub fn put_bytes(out: &mut Vec<u8>, prefix: LengthPrefix, bytes: &[u8]) {
    with_length(out, prefix, |out| out.extend_from_slice(bytes));
}

/// Writes `items` behind a length prefix counting bytes, as TLS lists are.
pub fn put_list<T: Codec>(out: &mut Vec<u8>, prefix: LengthPrefix, items: &[T]) {
    with_length(out, prefix, |out| items.iter().for_each(|i| i.encode(out)));
}

/// Reads `opaque<..2^8-1>` and similar: a length prefix and that many bytes.
pub fn read_bytes<'a>(r: &mut Reader<'a>, prefix: LengthPrefix, what: &'static str) -> Result<&'a [u8], WireError> {
    let mut sub = match prefix {
        LengthPrefix::U8 => r.sub_u8(what)?,
        LengthPrefix::U16 => r.sub_u16(what)?,
        LengthPrefix::U24 => r.sub_u24(what, LengthPrefix::U24.max())?,
    };
    Ok(sub.rest())
}

/// Reads a length-prefixed list of `T`; the length counts bytes.
///
/// Items are read until the list's bytes are used up, so a length that is
/// not a whole number of items is reported as truncation.
pub fn read_list<T: Codec>(r: &mut Reader<'_>, prefix: LengthPrefix, what: &'static str) -> Result<Vec<T>, WireError> {
    let mut sub = match prefix {
        LengthPrefix::U8 => r.sub_u8(what)?,
        LengthPrefix::U16 => r.sub_u16(what)?,
        LengthPrefix::U24 => r.sub_u24(what, LengthPrefix::U24.max())?,
    };
    let mut items = Vec::new();
    while sub.any_left() {
        items.push(T::read(&mut sub)?);
    }
    Ok(items)
}

/// GREASE values (RFC 8701): reserved so that peers learn to ignore the
/// unknown; a scanner must not mistake them for real choices.
pub fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_big_endian() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u24(), Ok(0x040506));
        assert_eq!(r.u32(), Ok(0x0708090a));
        assert!(!r.any_left());
        assert_eq!(r.used(), 10);
    }

    #[test]
    fn streaming_reader_says_incomplete() {
        let mut r = Reader::new(&[0, 5, 1, 2]);
        assert_eq!(
            r.sub_u16("list").unwrap_err(),
            WireError::Incomplete { need: 5, have: 2 }
        );
        let mut r = Reader::new(&[0]);
        assert_eq!(r.u16(), Err(WireError::Incomplete { need: 2, have: 1 }));
    }

    #[test]
    fn complete_reader_says_truncated() {
        let mut r = Reader::complete(&[0, 5, 1, 2], "body");
        assert_eq!(
            r.sub_u16("list").unwrap_err(),
            WireError::Truncated {
                what: "list",
                need: 5,
                have: 2
            }
        );
        let mut r = Reader::complete(&[0, 3, 1, 2, 3], "body");
        let mut list = r.sub_u16("list").unwrap();
        assert_eq!(list.u16(), Ok(0x0102));
        assert_eq!(
            list.u16(),
            Err(WireError::Truncated {
                what: "list",
                need: 2,
                have: 1
            })
        );
    }

    #[test]
    fn sub_reader_of_streaming_input_is_complete() {
        // Once the outer length is satisfied, shortfalls inside are malformed.
        let mut r = Reader::new(&[0, 1, 7, 0xff]);
        let mut inner = r.sub_u16("item").unwrap();
        assert_eq!(inner.u8(), Ok(7));
        assert!(matches!(inner.u8(), Err(WireError::Truncated { .. })));
    }

    #[test]
    fn rejects_u24_beyond_cap_before_waiting() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff]);
        assert_eq!(
            r.sub_u24("chain", 1000).unwrap_err(),
            WireError::TooLarge {
                what: "chain",
                len: 0xff_ffff,
                max: 1000
            }
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(
            u16::from_bytes(&[1, 2, 3]),
            Err(WireError::TrailingBytes { what: "u16", extra: 1 })
        );
        assert_eq!(
            u16::from_bytes(&[1]),
            Err(WireError::Truncated {
                what: "u16",
                need: 2,
                have: 1
            })
        );
    }

    #[test]
    fn can_round_trip_lists() {
        let items: Vec<u16> = vec![0x1301, 0xc02f, 0x00ff];
        for prefix in [LengthPrefix::U8, LengthPrefix::U16, LengthPrefix::U24] {
            let mut out = Vec::new();
            put_list(&mut out, prefix, &items);
            assert_eq!(out.len(), prefix.width() + 6);
            let mut r = Reader::complete(&out, "test");
            assert_eq!(read_list::<u16>(&mut r, prefix, "list").unwrap(), items);
            assert!(r.expect_end().is_ok());
        }
        let mut out = Vec::new();
        put_bytes(&mut out, LengthPrefix::U24, b"abc");
        assert_eq!(out, [0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(
            read_bytes(&mut Reader::complete(&out, "t"), LengthPrefix::U24, "b").unwrap(),
            b"abc"
        );
    }

    #[test]
    fn rejects_list_with_partial_item() {
        let mut r = Reader::complete(&[0, 3, 0x13, 0x01, 0xc0], "test");
        assert!(matches!(
            read_list::<u16>(&mut r, LengthPrefix::U16, "suites"),
            Err(WireError::Truncated { what: "suites", .. })
        ));
    }

    #[test]
    fn knows_grease() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x001d) && !is_grease(0x1301));
    }
}
