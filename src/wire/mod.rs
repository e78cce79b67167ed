//! Bytes on the wire, with no I/O and no async runtime.
//!
//! Everything a probe learns about a server comes through here, so this layer
//! is pure, bounded and total: it can be fed any bytes from the network and
//! answers with a value or a typed error, never a panic. Keeping sockets and
//! clocks out is what lets it be tested byte for byte against captures and
//! fuzzed without a network.
//!
//! - [`codec`]: the `Codec` trait and the reader every parser uses.
//! - [`enums`]: the IANA registries (versions, groups, signature schemes, …).
//! - [`suites`]: the cipher-suite registry with its properties.
//! - [`record`]: records, handshake framing, and the [`Deframer`].
//! - [`hello`]: hand-built ClientHellos.
//! - [`server`]: ServerHello, Certificate, ServerKeyExchange and friends.
//! - [`sslv2`]: the SSLv2 hello pair.
//! - [`ech`]: ECH configuration lists (a made-up one to offer, the server's retry configs).

pub mod codec;
pub mod ech;
pub mod enums;
pub mod hello;
pub mod record;
pub mod server;
pub mod sslv2;
pub mod suites;

pub use codec::{Codec, Reader, WireError};
pub use enums::{
    AlertDescription, AlertLevel, Compression, ContentType, EcPointFormat, ExtensionType, HandshakeType, HeartbeatMode,
    NamedGroup, ProtocolVersion, SignatureScheme,
};
pub use hello::{ClientExtension, ClientHello, ClientHelloBuilder, DnsName, KeyShareEntry, Padding, Random};
pub use record::{Alert, Deframer, DeframerLimits, Event, HandshakeMessage, Record, RecordHeader};
pub use server::{
    Certificate13, CertificateChain, CertificateStatus, DhParams, DigitallySigned, EcdhParams, KeyExchangeParams,
    RsaParams, ServerExtension, ServerHello, ServerHelloDone, ServerKeyExchange, SrpParams,
};
pub use sslv2::{Sslv2CipherSpec, Sslv2ClientHello, Sslv2Message, Sslv2ServerHello};
pub use suites::{CipherSuite, SuiteInfo};
