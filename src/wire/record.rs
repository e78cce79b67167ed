//! Records, handshake framing, and reassembly of what a server sends.
//!
//! A server's answer arrives as TCP segments that cut across records, and
//! records that cut across handshake messages: a certificate chain is often
//! split over several records, and one record often carries ServerHello,
//! Certificate and ServerHelloDone together. The probe should not care, so
//! the [`Deframer`] takes bytes as they arrive and hands back whole
//! handshake messages, alerts and ChangeCipherSpec.
//!
//! It is also where a hostile peer is contained: every buffer has a cap
//! checked on the declared length, before bytes are waited for, so a server
//! announcing a 16 MB "certificate" costs an error, not 16 MB. And an SSLv2
//! server, whose records have a different header, is recognised from the
//! first byte instead of being misread as TLS garbage.

use std::collections::VecDeque;

use super::codec::{Codec, LengthPrefix, Reader, WireError, put_u16, with_length};
use super::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType, ProtocolVersion};
use super::sslv2;

/// The largest plaintext fragment a record may carry (2^14).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// The hard cap on any record's length: 2^14 plus the 2048 bytes TLS 1.2
/// allows for compression and MAC expansion of protected records.
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
pub const RECORD_HEADER_LEN: usize = 5;
pub const HANDSHAKE_HEADER_LEN: usize = 4;

/// A TLS record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: ContentType,
    pub version: ProtocolVersion,
    pub len: u16,
}

impl RecordHeader {
    /// Whether the length fits a plaintext record (2^14 bytes); a longer
    /// unprotected record is a `record_overflow`.
    pub fn check_plaintext(&self) -> Result<(), WireError> {
        let len = usize::from(self.len);
        match len > MAX_PLAINTEXT {
            true => Err(WireError::RecordOverflow {
                len,
                max: MAX_PLAINTEXT,
            }),
            false => Ok(()),
        }
    }
}

impl Codec for RecordHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        self.content_type.encode(out);
        self.version.encode(out);
        put_u16(out, self.len);
    }

    /// Validates each field as soon as its bytes are there, so garbage is
    /// rejected from its first byte rather than after five.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let ct = r.u8()?;
        if !(20..=24).contains(&ct) {
            let version = r.clone().u16().unwrap_or(0);
            return Err(WireError::NotTls {
                content_type: ct,
                version,
            });
        }
        let major = r.u8()?;
        if major != 3 {
            return Err(WireError::NotTls {
                content_type: ct,
                version: u16::from(major) << 8,
            });
        }
        let minor = r.u8()?;
        let len = r.u16()?;
        if usize::from(len) > MAX_CIPHERTEXT {
            return Err(WireError::RecordOverflow {
                len: usize::from(len),
                max: MAX_CIPHERTEXT,
            });
        }
        Ok(RecordHeader {
            content_type: ContentType(ct),
            version: ProtocolVersion(u16::from_be_bytes([major, minor])),
            len,
        })
    }
}

/// One whole record, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub header: RecordHeader,
    pub payload: &'a [u8],
}

impl<'a> Record<'a> {
    /// Reads one record; `Incomplete` until header and payload are all here.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let header = RecordHeader::read(r)?;
        let payload = r.take(usize::from(header.len))?;
        Ok(Record { header, payload })
    }
}

/// Frames `payload` as records of `content_type`, splitting it into
/// fragments of at most 2^14 bytes. An empty payload makes one empty record.
pub fn encode_records(content_type: ContentType, version: ProtocolVersion, payload: &[u8], out: &mut Vec<u8>) {
    let mut chunks = payload.chunks(MAX_PLAINTEXT).peekable();
    if chunks.peek().is_none() {
        RecordHeader {
            content_type,
            version,
            len: 0,
        }
        .encode(out);
    }
    for chunk in chunks {
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        RecordHeader {
            content_type,
            version,
            len,
        }
        .encode(out);
        out.extend_from_slice(chunk);
    }
}

/// An alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Alert {
    pub level: AlertLevel,
    pub description: AlertDescription,
}

impl Codec for Alert {
    fn encode(&self, out: &mut Vec<u8>) {
        self.level.encode(out);
        self.description.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Alert {
            level: AlertLevel::read(r)?,
            description: AlertDescription::read(r)?,
        })
    }
}

/// A whole handshake message: its type and body (without the 4-byte header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeMessage {
    pub typ: HandshakeType,
    pub body: Vec<u8>,
}

/// The default cap on one handshake message: certificate chains of a few
/// dozen KB are normal, a quarter megabyte is not.
pub const MAX_HANDSHAKE_MESSAGE: usize = 256 * 1024;

impl HandshakeMessage {
    /// Reads a header and body, refusing a declared length above `max`
    /// before waiting for its bytes.
    pub fn read_with_limit(r: &mut Reader<'_>, max: usize) -> Result<Self, WireError> {
        let typ = HandshakeType::read(r)?;
        let mut body = r.sub_u24("handshake message", max)?;
        Ok(HandshakeMessage {
            typ,
            body: body.rest().to_vec(),
        })
    }

    /// The body, if this is a message of type `typ`; otherwise the error
    /// that says what came instead.
    pub fn expect(&self, typ: HandshakeType) -> Result<&[u8], WireError> {
        match self.typ == typ {
            true => Ok(&self.body),
            false => Err(WireError::UnexpectedMessage {
                expected: typ.name().unwrap_or("handshake message"),
                got: self.typ.to_string(),
            }),
        }
    }

    /// This message framed in records of `version`.
    pub fn to_records(&self, version: ProtocolVersion) -> Vec<u8> {
        let mut out = Vec::new();
        encode_records(ContentType::Handshake, version, &self.to_bytes(), &mut out);
        out
    }
}

impl Codec for HandshakeMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        self.typ.encode(out);
        with_length(out, LengthPrefix::U24, |out| out.extend_from_slice(&self.body));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_with_limit(r, MAX_HANDSHAKE_MESSAGE)
    }
}

/// What the deframer hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole handshake message, reassembled across records if need be.
    Handshake(HandshakeMessage),
    /// An unprotected alert.
    Alert(Alert),
    ChangeCipherSpec,
    /// An unprotected heartbeat message (a reply to a heartbeat request
    /// sent before the handshake finished).
    Heartbeat(Vec<u8>),
    /// A record we cannot read: application data, or anything after the
    /// peer's ChangeCipherSpec. Only its type and length are kept.
    Protected {
        content_type: ContentType,
        len: usize,
    },
    /// One SSLv2 message (the record body; see [`sslv2::Sslv2Message`]).
    Sslv2(Vec<u8>),
}

/// Caps that bound what one connection can make the deframer hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeframerLimits {
    /// Bytes held at once: unparsed input plus partial handshake messages.
    pub max_buffered: usize,
    /// The largest handshake message accepted (checked on its header).
    pub max_message: usize,
    /// Handshake messages over the connection's life.
    pub max_messages: usize,
    /// Records over the connection's life (zero-length records cost bytes
    /// but nothing else, so they are counted too).
    pub max_records: usize,
}

impl Default for DeframerLimits {
    fn default() -> Self {
        DeframerLimits {
            max_buffered: 256 * 1024,
            max_message: MAX_HANDSHAKE_MESSAGE,
            max_messages: 64,
            max_records: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Unknown,
    Tls,
    Sslv2,
}

/// Turns the bytes a server sends into [`Event`]s.
///
/// ```text
/// loop {
///     match deframer.next_event()? {
///         Some(event) => /* act on it */,
///         None => deframer.feed(&read_some_bytes()?)?,
///     }
/// }
/// ```
///
/// After the first error the deframer is spent: every later call returns the
/// same error. It never reads protected records; after the peer's
/// ChangeCipherSpec every record is [`Event::Protected`].
#[derive(Clone, Debug)]
pub struct Deframer {
    limits: DeframerLimits,
    /// Input; bytes before `consumed` are parsed and dropped on the next feed,
    /// so a burst of small records costs one move of the buffer, not one each.
    input: Vec<u8>,
    consumed: usize,
    /// Handshake bytes not yet forming a whole message.
    handshake: Vec<u8>,
    /// An alert split across records (legal before TLS 1.3) leaves one byte here.
    alert: Vec<u8>,
    ready: VecDeque<Event>,
    mode: Mode,
    protected: bool,
    first_version: Option<ProtocolVersion>,
    records: usize,
    messages: usize,
    failed: Option<WireError>,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    pub fn new() -> Self {
        Self::with_limits(DeframerLimits::default())
    }

    pub fn with_limits(limits: DeframerLimits) -> Self {
        Deframer {
            limits,
            input: Vec::new(),
            consumed: 0,
            handshake: Vec::new(),
            alert: Vec::new(),
            ready: VecDeque::new(),
            mode: Mode::Unknown,
            protected: false,
            first_version: None,
            records: 0,
            messages: 0,
            failed: None,
        }
    }

    /// Appends bytes read from the peer. Fails if holding them would pass
    /// `max_buffered`; [`Deframer::room`] says how much fits.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let len = self.buffered().saturating_add(bytes.len());
        if len > self.limits.max_buffered {
            return Err(self.fail(WireError::TooLarge {
                what: "buffered input",
                len,
                max: self.limits.max_buffered,
            }));
        }
        self.input.drain(..self.consumed);
        self.consumed = 0;
        self.input.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes held: unparsed input and partial messages.
    pub fn buffered(&self) -> usize {
        self.unparsed().len() + self.handshake.len() + self.alert.len()
    }

    fn unparsed(&self) -> &[u8] {
        self.input.get(self.consumed..).unwrap_or_default()
    }

    /// How many more bytes [`Deframer::feed`] accepts now.
    pub fn room(&self) -> usize {
        self.limits.max_buffered.saturating_sub(self.buffered())
    }

    /// The version in the first TLS record header (servers that answer a
    /// TLS 1.2 hello with TLS 1.0 records show here).
    pub fn first_record_version(&self) -> Option<ProtocolVersion> {
        self.first_version
    }

    /// The peer speaks SSLv2 (decided on its first byte).
    pub fn is_sslv2(&self) -> bool {
        self.mode == Mode::Sslv2
    }

    /// Records seen so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Treat records as unprotected again, as after a HelloRetryRequest in
    /// middlebox-compatibility mode: the server's dummy ChangeCipherSpec
    /// follows the HRR, yet its next ServerHello is plaintext.
    pub fn expect_plaintext(&mut self) {
        self.protected = false;
    }

    /// The next event, or `None` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(ev) => Ok(ev),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: WireError) -> WireError {
        self.failed = Some(e.clone());
        self.input = Vec::new();
        self.consumed = 0;
        self.handshake = Vec::new();
        self.ready.clear();
        e
    }

    fn step(&mut self) -> Result<Option<Event>, WireError> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Ok(Some(ev));
            }
            if let Some(msg) = self.take_handshake_message()? {
                return Ok(Some(Event::Handshake(msg)));
            }
            if !self.next_record()? {
                return Ok(None);
            }
        }
    }

    fn take_handshake_message(&mut self) -> Result<Option<HandshakeMessage>, WireError> {
        let mut r = Reader::new(&self.handshake);
        let msg = match HandshakeMessage::read_with_limit(&mut r, self.limits.max_message) {
            Ok(m) => m,
            Err(e) if e.is_incomplete() => return Ok(None),
            Err(e) => return Err(e),
        };
        let used = r.used();
        self.messages += 1;
        if self.messages > self.limits.max_messages {
            return Err(WireError::TooMany {
                what: "handshake messages",
                max: self.limits.max_messages,
            });
        }
        self.handshake.drain(..used);
        Ok(Some(msg))
    }

    /// Parses one record from the input; false if it is not all here yet.
    fn next_record(&mut self) -> Result<bool, WireError> {
        if self.mode == Mode::Unknown {
            match self.unparsed().first() {
                None => return Ok(false),
                Some(b) if b & 0x80 != 0 => self.mode = Mode::Sslv2,
                Some(_) => self.mode = Mode::Tls,
            }
        }
        // An unprotected record longer than 2^14 is refused on its header,
        // before its body arrives: a server that announces one and then
        // trickles bytes must not hold the connection open for 16 KiB.
        if self.mode == Mode::Tls && !self.protected {
            let mut hr = Reader::new(self.input.get(self.consumed..).unwrap_or_default());
            if let Ok(h) = RecordHeader::read(&mut hr)
                && h.content_type != ContentType::ApplicationData
            {
                h.check_plaintext()?;
            }
        }
        let mut r = Reader::new(self.input.get(self.consumed..).unwrap_or_default());
        let parsed = match self.mode {
            Mode::Sslv2 => sslv2::read_record(&mut r).map(|body| (None, body)),
            _ => Record::read(&mut r).map(|rec| (Some(rec.header), rec.payload)),
        };
        let (header, payload) = match parsed {
            Ok(p) => p,
            Err(e) if e.is_incomplete() => return Ok(false),
            Err(e) => return Err(e),
        };
        self.records += 1;
        if self.records > self.limits.max_records {
            return Err(WireError::TooMany {
                what: "records",
                max: self.limits.max_records,
            });
        }
        let used = r.used();
        let payload = payload.to_vec();
        self.consumed += used;
        match header {
            None => self.ready.push_back(Event::Sslv2(payload)),
            Some(h) => self.dispatch(h, payload)?,
        }
        Ok(true)
    }

    fn dispatch(&mut self, header: RecordHeader, payload: Vec<u8>) -> Result<(), WireError> {
        self.first_version.get_or_insert(header.version);
        let ct = header.content_type;
        if self.protected || ct == ContentType::ApplicationData {
            self.ready.push_back(Event::Protected {
                content_type: ct,
                len: payload.len(),
            });
            return Ok(());
        }
        header.check_plaintext()?;
        match ct {
            ContentType::Handshake => self.handshake.extend_from_slice(&payload),
            ContentType::Alert => {
                self.alert.extend_from_slice(&payload);
                let mut pairs = self.alert.chunks_exact(2);
                for pair in &mut pairs {
                    self.ready.push_back(Event::Alert(Alert::from_bytes(pair)?));
                }
                self.alert = pairs.remainder().to_vec();
            }
            ContentType::ChangeCipherSpec => {
                if payload != [1] {
                    return Err(WireError::Invalid("change_cipher_spec record"));
                }
                self.protected = true;
                self.ready.push_back(Event::ChangeCipherSpec);
            }
            _ => self.ready.push_back(Event::Heartbeat(payload)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, version: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_records(ContentType(ct), ProtocolVersion(version), payload, &mut out);
        out
    }

    fn drain(d: &mut Deframer) -> Result<Vec<Event>, WireError> {
        let mut out = Vec::new();
        while let Some(ev) = d.next_event()? {
            out.push(ev);
        }
        Ok(out)
    }

    fn hs(typ: u8, body: &[u8]) -> Vec<u8> {
        HandshakeMessage {
            typ: HandshakeType(typ),
            body: body.to_vec(),
        }
        .to_bytes()
    }

    #[test]
    fn can_round_trip_record_header() {
        let h = RecordHeader {
            content_type: ContentType::Handshake,
            version: ProtocolVersion::TLSv1_2,
            len: 300,
        };
        assert_eq!(h.to_bytes(), [22, 3, 3, 1, 44]);
        assert_eq!(RecordHeader::from_bytes(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn rejects_non_tls_record_headers() {
        assert!(matches!(
            RecordHeader::read(&mut Reader::new(b"HTTP/1.1")),
            Err(WireError::NotTls { .. })
        ));
        assert!(matches!(
            RecordHeader::read(&mut Reader::new(&[22, 2, 0, 0, 1])),
            Err(WireError::NotTls { .. })
        ));
        // Garbage is refused on its first byte, not after waiting for five.
        assert!(matches!(
            RecordHeader::read(&mut Reader::new(b"S")),
            Err(WireError::NotTls { .. })
        ));
        assert!(RecordHeader::read(&mut Reader::new(&[22])).unwrap_err().is_incomplete());
    }

    #[test]
    fn rejects_records_beyond_the_hard_cap() {
        let too_long = (MAX_CIPHERTEXT + 1) as u16;
        let bytes = [23, 3, 3, (too_long >> 8) as u8, too_long as u8];
        assert_eq!(
            RecordHeader::from_bytes(&bytes),
            Err(WireError::RecordOverflow {
                len: MAX_CIPHERTEXT + 1,
                max: MAX_CIPHERTEXT
            })
        );
    }

    #[test]
    fn rejects_plaintext_record_over_2_14_as_record_overflow() {
        let mut bytes = vec![22, 3, 3, 0x40, 0x01];
        bytes.resize(5 + MAX_PLAINTEXT + 1, 0);
        let mut d = Deframer::new();
        d.feed(&bytes).unwrap();
        assert_eq!(
            d.next_event(),
            Err(WireError::RecordOverflow {
                len: MAX_PLAINTEXT + 1,
                max: MAX_PLAINTEXT
            })
        );
        // The deframer is spent.
        assert!(d.next_event().is_err());
        assert!(d.feed(&[1]).is_err());
    }

    #[test]
    fn encode_records_fragments_at_2_14() {
        let payload = vec![7u8; MAX_PLAINTEXT + 10];
        let out = record(22, 0x0303, &payload);
        assert_eq!(out.len(), payload.len() + 10);
        let mut r = Reader::complete(&out, "records");
        assert_eq!(Record::read(&mut r).unwrap().payload.len(), MAX_PLAINTEXT);
        assert_eq!(Record::read(&mut r).unwrap().payload.len(), 10);
        assert!(!r.any_left());
        assert_eq!(record(21, 0x0301, &[]), [21, 3, 1, 0, 0]);
    }

    #[test]
    fn reassembles_a_message_split_across_records_and_reads() {
        let body: Vec<u8> = (0..=255).cycle().take(40_000).collect();
        let msg = hs(11, &body);
        let wire = record(22, 0x0303, &msg);
        assert!(wire.len() > 2 * MAX_PLAINTEXT);
        // Feed in awkward slices.
        let mut d = Deframer::new();
        let mut events = Vec::new();
        for chunk in wire.chunks(777) {
            d.feed(chunk).unwrap();
            events.extend(drain(&mut d).unwrap());
        }
        assert_eq!(
            events,
            [Event::Handshake(HandshakeMessage {
                typ: HandshakeType::Certificate,
                body
            })]
        );
        assert_eq!(d.records(), 3);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn expect_names_what_came_instead() {
        let msg = HandshakeMessage {
            typ: HandshakeType::Certificate,
            body: vec![1],
        };
        assert_eq!(msg.expect(HandshakeType::Certificate), Ok(&[1][..]));
        assert_eq!(
            msg.expect(HandshakeType::ServerHello),
            Err(WireError::UnexpectedMessage {
                expected: "server_hello",
                got: "certificate".into()
            })
        );
    }

    #[test]
    fn splits_several_messages_in_one_record() {
        let mut flight = hs(2, &[1, 2, 3]);
        flight.extend(hs(14, &[]));
        let mut d = Deframer::new();
        d.feed(&record(22, 0x0301, &flight)).unwrap();
        let events = drain(&mut d).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            Event::Handshake(HandshakeMessage {
                typ: HandshakeType::ServerHelloDone,
                body: vec![]
            })
        );
        assert_eq!(d.first_record_version(), Some(ProtocolVersion::TLSv1_0));
    }

    #[test]
    fn surfaces_alerts_ccs_and_protected_records() {
        let mut wire = record(21, 0x0303, &[2, 40]);
        wire.extend(record(20, 0x0303, &[1]));
        wire.extend(record(22, 0x0303, &[0xde, 0xad, 0xbe, 0xef]));
        wire.extend(record(23, 0x0303, &[0; 30]));
        let mut d = Deframer::new();
        d.feed(&wire).unwrap();
        let events = drain(&mut d).unwrap();
        assert_eq!(
            events,
            [
                Event::Alert(Alert {
                    level: AlertLevel::Fatal,
                    description: AlertDescription::HandshakeFailure
                }),
                Event::ChangeCipherSpec,
                Event::Protected {
                    content_type: ContentType::Handshake,
                    len: 4
                },
                Event::Protected {
                    content_type: ContentType::ApplicationData,
                    len: 30
                },
            ]
        );
    }

    #[test]
    fn reassembles_an_alert_split_across_records() {
        let mut wire = record(21, 0x0301, &[1]);
        wire.extend(record(21, 0x0301, &[0, 2, 70]));
        let mut d = Deframer::new();
        d.feed(&wire).unwrap();
        let events = drain(&mut d).unwrap();
        assert_eq!(
            events,
            [
                Event::Alert(Alert {
                    level: AlertLevel::Warning,
                    description: AlertDescription::CloseNotify
                }),
                Event::Alert(Alert {
                    level: AlertLevel::Fatal,
                    description: AlertDescription::ProtocolVersion
                }),
            ]
        );
    }

    #[test]
    fn rejects_bad_change_cipher_spec() {
        let mut d = Deframer::new();
        d.feed(&record(20, 0x0303, &[2])).unwrap();
        assert_eq!(d.next_event(), Err(WireError::Invalid("change_cipher_spec record")));
    }

    #[test]
    fn refuses_a_giant_message_on_its_header() {
        // A handshake header announcing 16 MB: refused before any body arrives.
        let mut d = Deframer::new();
        d.feed(&record(22, 0x0303, &[11, 0xff, 0xff, 0xff])).unwrap();
        assert_eq!(
            d.next_event(),
            Err(WireError::TooLarge {
                what: "handshake message",
                len: 0xff_ffff,
                max: MAX_HANDSHAKE_MESSAGE
            })
        );
    }

    #[test]
    fn bounds_a_giant_chain_by_buffered_bytes() {
        let limits = DeframerLimits {
            max_buffered: 64 * 1024,
            ..DeframerLimits::default()
        };
        let mut d = Deframer::with_limits(limits);
        // A message header declaring 200 KB, then records of filler.
        d.feed(&record(22, 0x0303, &[11, 0x03, 0x0d, 0x40])).unwrap();
        let filler = record(22, 0x0303, &[0u8; 16_000]);
        let mut fed = 0;
        let err = loop {
            if let Err(e) = d.next_event() {
                break e;
            }
            match d.feed(&filler) {
                Ok(()) => fed += 1,
                Err(e) => break e,
            }
            assert!(fed < 20, "never stopped");
        };
        assert!(
            matches!(
                err,
                WireError::TooLarge {
                    what: "buffered input",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(d.buffered() <= 64 * 1024);
    }

    #[test]
    fn caps_message_count() {
        let limits = DeframerLimits {
            max_messages: 3,
            ..DeframerLimits::default()
        };
        let mut d = Deframer::with_limits(limits);
        let flight: Vec<u8> = (0..4).flat_map(|_| hs(0, &[])).collect();
        d.feed(&record(22, 0x0303, &flight)).unwrap();
        assert!(d.next_event().unwrap().is_some());
        assert!(d.next_event().unwrap().is_some());
        assert!(d.next_event().unwrap().is_some());
        assert_eq!(
            d.next_event(),
            Err(WireError::TooMany {
                what: "handshake messages",
                max: 3
            })
        );
    }

    #[test]
    fn caps_record_count() {
        let limits = DeframerLimits {
            max_records: 10,
            ..DeframerLimits::default()
        };
        let mut d = Deframer::with_limits(limits);
        let empty: Vec<u8> = (0..11).flat_map(|_| record(22, 0x0303, &[])).collect();
        d.feed(&empty).unwrap();
        assert_eq!(
            d.next_event(),
            Err(WireError::TooMany {
                what: "records",
                max: 10
            })
        );
    }

    #[test]
    fn recognises_sslv2_from_the_first_byte() {
        let mut d = Deframer::new();
        d.feed(&[0x80, 0x03, 0x00]).unwrap();
        assert_eq!(d.next_event(), Ok(None));
        assert!(d.is_sslv2());
        d.feed(&[0x00, 0x01]).unwrap();
        assert_eq!(d.next_event(), Ok(Some(Event::Sslv2(vec![0, 0, 1]))));
    }

    #[test]
    fn rejects_garbage() {
        let mut d = Deframer::new();
        d.feed(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
        assert!(matches!(
            d.next_event(),
            Err(WireError::NotTls { content_type: b'S', .. })
        ));
    }

    #[test]
    fn expect_plaintext_after_hrr_ccs() {
        let mut d = Deframer::new();
        d.feed(&record(20, 0x0303, &[1])).unwrap();
        assert_eq!(d.next_event(), Ok(Some(Event::ChangeCipherSpec)));
        d.expect_plaintext();
        d.feed(&record(22, 0x0303, &hs(2, &[9]))).unwrap();
        assert!(matches!(d.next_event(), Ok(Some(Event::Handshake(_)))));
    }

    #[test]
    fn every_prefix_of_a_record_is_incomplete() {
        let wire = record(22, 0x0303, &hs(2, &[1, 2, 3, 4, 5]));
        for n in 0..wire.len() {
            let err = Record::read(&mut Reader::new(&wire[..n])).unwrap_err();
            assert!(err.is_incomplete(), "prefix {n}: {err:?}");
            let err = HandshakeMessage::read(&mut Reader::new(&wire[5..n.max(5)])).unwrap_err();
            assert!(err.is_incomplete(), "prefix {n}: {err:?}");
            let mut d = Deframer::new();
            d.feed(&wire[..n]).unwrap();
            assert_eq!(d.next_event(), Ok(None), "prefix {n}");
        }
    }

    #[test]
    fn rejects_an_oversized_plaintext_record_on_its_header() {
        let mut d = Deframer::new();
        d.feed(&[0x16, 0x03, 0x03, 0x40, 0x01, 0x02]).unwrap();
        assert!(matches!(
            d.next_event(),
            Err(WireError::RecordOverflow { len: 16385, .. })
        ));
    }
}
