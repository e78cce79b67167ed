//! The IANA registries a scanner reads values from, as open newtypes.
//!
//! A server may answer with a value no library has heard of, and that value
//! is itself the finding. So every registry is `struct X(pub u16)` with named
//! constants (the rustls shape) rather than a closed `enum`: unknown values
//! survive parsing, compare, hash, and print in hex instead of being dropped
//! or mapped to "unknown". Names are the registry's spelling, which is what
//! peers' reports and our JSON use.

use std::fmt;

use super::codec::{Codec, Reader, WireError};

/// Defines a registry newtype with named constants, `name()`, `KNOWN`,
/// `Debug`/`Display` (name, or hex for unassigned values) and `Codec`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $konst:ident = $val:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        #[allow(non_upper_case_globals)]
        impl $name {
            $( pub const $konst: Self = Self($val); )*

            /// Every value the registry names, in registry order.
            pub const KNOWN: &'static [Self] = &[$(Self($val)),*];

            /// The registry's name, or `None` for an unassigned value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }

            /// The value a registry name stands for.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::KNOWN.iter().copied().find(|v| v.name() == Some(name))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(
                        f,
                        concat!(stringify!($name), "({:#0w$x})"),
                        self.0,
                        w = 2 + 2 * std::mem::size_of::<$int>()
                    ),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{:#0w$x}", self.0, w = 2 + 2 * std::mem::size_of::<$int>()),
                }
            }
        }

        impl Codec for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                self.0.encode(out);
            }

            fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
                <$int>::read(r).map(Self)
            }
        }
    };
}

registry! {
    /// A protocol version as it appears in records and hellos.
    ///
    /// SSLv2 is `0x0002`, the value SSLv2 messages carry. Names are the
    /// record's spelling: `SSLv2` … `TLSv1.3`.
    pub struct ProtocolVersion(u16) {
        SSLv2 = 0x0002 => "SSLv2",
        SSLv3 = 0x0300 => "SSLv3",
        TLSv1_0 = 0x0301 => "TLSv1.0",
        TLSv1_1 = 0x0302 => "TLSv1.1",
        TLSv1_2 = 0x0303 => "TLSv1.2",
        TLSv1_3 = 0x0304 => "TLSv1.3",
        DTLSv1_0 = 0xfeff => "DTLSv1.0",
        DTLSv1_2 = 0xfefd => "DTLSv1.2",
        DTLSv1_3 = 0xfefc => "DTLSv1.3",
    }
}

impl ProtocolVersion {
    /// The TLS-family versions a scanner probes, oldest first.
    pub const PROBED: [ProtocolVersion; 6] = [
        Self::SSLv2,
        Self::SSLv3,
        Self::TLSv1_0,
        Self::TLSv1_1,
        Self::TLSv1_2,
        Self::TLSv1_3,
    ];
}

registry! {
    /// TLS record content types.
    pub struct ContentType(u8) {
        ChangeCipherSpec = 20 => "change_cipher_spec",
        Alert = 21 => "alert",
        Handshake = 22 => "handshake",
        ApplicationData = 23 => "application_data",
        Heartbeat = 24 => "heartbeat",
    }
}

registry! {
    /// Handshake message types.
    pub struct HandshakeType(u8) {
        HelloRequest = 0 => "hello_request",
        ClientHello = 1 => "client_hello",
        ServerHello = 2 => "server_hello",
        HelloVerifyRequest = 3 => "hello_verify_request",
        NewSessionTicket = 4 => "new_session_ticket",
        EndOfEarlyData = 5 => "end_of_early_data",
        HelloRetryRequest = 6 => "hello_retry_request",
        EncryptedExtensions = 8 => "encrypted_extensions",
        RequestConnectionId = 9 => "request_connection_id",
        NewConnectionId = 10 => "new_connection_id",
        Certificate = 11 => "certificate",
        ServerKeyExchange = 12 => "server_key_exchange",
        CertificateRequest = 13 => "certificate_request",
        ServerHelloDone = 14 => "server_hello_done",
        CertificateVerify = 15 => "certificate_verify",
        ClientKeyExchange = 16 => "client_key_exchange",
        ClientCertificateRequest = 17 => "client_certificate_request",
        Finished = 20 => "finished",
        CertificateUrl = 21 => "certificate_url",
        CertificateStatus = 22 => "certificate_status",
        SupplementalData = 23 => "supplemental_data",
        KeyUpdate = 24 => "key_update",
        CompressedCertificate = 25 => "compressed_certificate",
        EktKey = 26 => "ekt_key",
        MessageHash = 254 => "message_hash",
    }
}

registry! {
    pub struct AlertLevel(u8) {
        Warning = 1 => "warning",
        Fatal = 2 => "fatal",
    }
}

registry! {
    /// Alert descriptions; what a server says when it refuses a hello is
    /// how enumeration learns "not supported" from "broken".
    pub struct AlertDescription(u8) {
        CloseNotify = 0 => "close_notify",
        UnexpectedMessage = 10 => "unexpected_message",
        BadRecordMac = 20 => "bad_record_mac",
        DecryptionFailed = 21 => "decryption_failed",
        RecordOverflow = 22 => "record_overflow",
        DecompressionFailure = 30 => "decompression_failure",
        HandshakeFailure = 40 => "handshake_failure",
        NoCertificate = 41 => "no_certificate",
        BadCertificate = 42 => "bad_certificate",
        UnsupportedCertificate = 43 => "unsupported_certificate",
        CertificateRevoked = 44 => "certificate_revoked",
        CertificateExpired = 45 => "certificate_expired",
        CertificateUnknown = 46 => "certificate_unknown",
        IllegalParameter = 47 => "illegal_parameter",
        UnknownCa = 48 => "unknown_ca",
        AccessDenied = 49 => "access_denied",
        DecodeError = 50 => "decode_error",
        DecryptError = 51 => "decrypt_error",
        TooManyCidsRequested = 52 => "too_many_cids_requested",
        ExportRestriction = 60 => "export_restriction",
        ProtocolVersion = 70 => "protocol_version",
        InsufficientSecurity = 71 => "insufficient_security",
        InternalError = 80 => "internal_error",
        InappropriateFallback = 86 => "inappropriate_fallback",
        UserCanceled = 90 => "user_canceled",
        NoRenegotiation = 100 => "no_renegotiation",
        MissingExtension = 109 => "missing_extension",
        UnsupportedExtension = 110 => "unsupported_extension",
        CertificateUnobtainable = 111 => "certificate_unobtainable",
        UnrecognizedName = 112 => "unrecognized_name",
        BadCertificateStatusResponse = 113 => "bad_certificate_status_response",
        BadCertificateHashValue = 114 => "bad_certificate_hash_value",
        UnknownPskIdentity = 115 => "unknown_psk_identity",
        CertificateRequired = 116 => "certificate_required",
        GeneralError = 117 => "general_error",
        NoApplicationProtocol = 120 => "no_application_protocol",
        EchRequired = 121 => "ech_required",
    }
}

registry! {
    /// TLS extension types (the IANA ExtensionType registry, plus NPN,
    /// which was never registered but is still seen).
    pub struct ExtensionType(u16) {
        ServerName = 0 => "server_name",
        MaxFragmentLength = 1 => "max_fragment_length",
        ClientCertificateUrl = 2 => "client_certificate_url",
        TrustedCaKeys = 3 => "trusted_ca_keys",
        TruncatedHmac = 4 => "truncated_hmac",
        StatusRequest = 5 => "status_request",
        UserMapping = 6 => "user_mapping",
        ClientAuthz = 7 => "client_authz",
        ServerAuthz = 8 => "server_authz",
        CertType = 9 => "cert_type",
        SupportedGroups = 10 => "supported_groups",
        EcPointFormats = 11 => "ec_point_formats",
        Srp = 12 => "srp",
        SignatureAlgorithms = 13 => "signature_algorithms",
        UseSrtp = 14 => "use_srtp",
        Heartbeat = 15 => "heartbeat",
        ApplicationLayerProtocolNegotiation = 16 => "application_layer_protocol_negotiation",
        StatusRequestV2 = 17 => "status_request_v2",
        SignedCertificateTimestamp = 18 => "signed_certificate_timestamp",
        ClientCertificateType = 19 => "client_certificate_type",
        ServerCertificateType = 20 => "server_certificate_type",
        Padding = 21 => "padding",
        EncryptThenMac = 22 => "encrypt_then_mac",
        ExtendedMasterSecret = 23 => "extended_master_secret",
        TokenBinding = 24 => "token_binding",
        CachedInfo = 25 => "cached_info",
        TlsLts = 26 => "tls_lts",
        CompressCertificate = 27 => "compress_certificate",
        RecordSizeLimit = 28 => "record_size_limit",
        PwdProtect = 29 => "pwd_protect",
        PwdClear = 30 => "pwd_clear",
        PasswordSalt = 31 => "password_salt",
        TicketPinning = 32 => "ticket_pinning",
        TlsCertWithExternPsk = 33 => "tls_cert_with_extern_psk",
        DelegatedCredential = 34 => "delegated_credential",
        SessionTicket = 35 => "session_ticket",
        Tlmsp = 36 => "TLMSP",
        TlmspProxying = 37 => "TLMSP_proxying",
        TlmspDelegate = 38 => "TLMSP_delegate",
        SupportedEktCiphers = 39 => "supported_ekt_ciphers",
        PreSharedKey = 41 => "pre_shared_key",
        EarlyData = 42 => "early_data",
        SupportedVersions = 43 => "supported_versions",
        Cookie = 44 => "cookie",
        PskKeyExchangeModes = 45 => "psk_key_exchange_modes",
        CertificateAuthorities = 47 => "certificate_authorities",
        OidFilters = 48 => "oid_filters",
        PostHandshakeAuth = 49 => "post_handshake_auth",
        SignatureAlgorithmsCert = 50 => "signature_algorithms_cert",
        KeyShare = 51 => "key_share",
        TransparencyInfo = 52 => "transparency_info",
        ConnectionId = 54 => "connection_id",
        ExternalIdHash = 55 => "external_id_hash",
        ExternalSessionId = 56 => "external_session_id",
        QuicTransportParameters = 57 => "quic_transport_parameters",
        TicketRequest = 58 => "ticket_request",
        DnssecChain = 59 => "dnssec_chain",
        SequenceNumberEncryptionAlgorithms = 60 => "sequence_number_encryption_algorithms",
        Rrc = 61 => "rrc",
        TlsFlags = 62 => "tls_flags",
        NextProtocolNegotiation = 0x3374 => "next_protocol_negotiation",
        EchOuterExtensions = 0xfd00 => "ech_outer_extensions",
        EncryptedClientHello = 0xfe0d => "encrypted_client_hello",
        RenegotiationInfo = 0xff01 => "renegotiation_info",
    }
}

registry! {
    /// Key-exchange groups: the full IANA TLS Supported Groups registry
    /// (formerly "EC named curves"), legacy binary curves and all.
    pub struct NamedGroup(u16) {
        SECT163K1 = 1 => "sect163k1",
        SECT163R1 = 2 => "sect163r1",
        SECT163R2 = 3 => "sect163r2",
        SECT193R1 = 4 => "sect193r1",
        SECT193R2 = 5 => "sect193r2",
        SECT233K1 = 6 => "sect233k1",
        SECT233R1 = 7 => "sect233r1",
        SECT239K1 = 8 => "sect239k1",
        SECT283K1 = 9 => "sect283k1",
        SECT283R1 = 10 => "sect283r1",
        SECT409K1 = 11 => "sect409k1",
        SECT409R1 = 12 => "sect409r1",
        SECT571K1 = 13 => "sect571k1",
        SECT571R1 = 14 => "sect571r1",
        SECP160K1 = 15 => "secp160k1",
        SECP160R1 = 16 => "secp160r1",
        SECP160R2 = 17 => "secp160r2",
        SECP192K1 = 18 => "secp192k1",
        SECP192R1 = 19 => "secp192r1",
        SECP224K1 = 20 => "secp224k1",
        SECP224R1 = 21 => "secp224r1",
        SECP256K1 = 22 => "secp256k1",
        SECP256R1 = 23 => "secp256r1",
        SECP384R1 = 24 => "secp384r1",
        SECP521R1 = 25 => "secp521r1",
        BRAINPOOLP256R1 = 26 => "brainpoolP256r1",
        BRAINPOOLP384R1 = 27 => "brainpoolP384r1",
        BRAINPOOLP512R1 = 28 => "brainpoolP512r1",
        X25519 = 29 => "x25519",
        X448 = 30 => "x448",
        BRAINPOOLP256R1TLS13 = 31 => "brainpoolP256r1tls13",
        BRAINPOOLP384R1TLS13 = 32 => "brainpoolP384r1tls13",
        BRAINPOOLP512R1TLS13 = 33 => "brainpoolP512r1tls13",
        GC256A = 34 => "GC256A",
        GC256B = 35 => "GC256B",
        GC256C = 36 => "GC256C",
        GC256D = 37 => "GC256D",
        GC512A = 38 => "GC512A",
        GC512B = 39 => "GC512B",
        GC512C = 40 => "GC512C",
        CURVESM2 = 41 => "curveSM2",
        FFDHE2048 = 0x0100 => "ffdhe2048",
        FFDHE3072 = 0x0101 => "ffdhe3072",
        FFDHE4096 = 0x0102 => "ffdhe4096",
        FFDHE6144 = 0x0103 => "ffdhe6144",
        FFDHE8192 = 0x0104 => "ffdhe8192",
        MLKEM512 = 0x0200 => "MLKEM512",
        MLKEM768 = 0x0201 => "MLKEM768",
        MLKEM1024 = 0x0202 => "MLKEM1024",
        SECP256R1MLKEM768 = 0x11eb => "SecP256r1MLKEM768",
        X25519MLKEM768 = 0x11ec => "X25519MLKEM768",
        SECP384R1MLKEM1024 = 0x11ed => "SecP384r1MLKEM1024",
        CURVESM2MLKEM768 = 0x11ee => "curveSM2MLKEM768",
        X25519KYBER768DRAFT00 = 0x6399 => "X25519Kyber768Draft00",
        SECP256R1KYBER768DRAFT00 = 0x639a => "SecP256r1Kyber768Draft00",
        ARBITRARY_EXPLICIT_PRIME_CURVES = 0xff01 => "arbitrary_explicit_prime_curves",
        ARBITRARY_EXPLICIT_CHAR2_CURVES = 0xff02 => "arbitrary_explicit_char2_curves",
    }
}

impl NamedGroup {
    /// A finite-field (DHE) group rather than an elliptic curve or a KEM.
    pub fn is_ffdhe(self) -> bool {
        (0x0100..=0x01ff).contains(&self.0)
    }

    /// A group whose security rests at least partly on ML-KEM (or Kyber).
    pub fn is_post_quantum(self) -> bool {
        matches!(self.0, 0x0200..=0x0202 | 0x11eb..=0x11ee | 0x6399 | 0x639a)
    }
}

registry! {
    /// Signature schemes (TLS 1.3 names), including the TLS 1.2
    /// hash/signature pairs that never got a scheme name (MD5, SHA-224, DSA).
    pub struct SignatureScheme(u16) {
        RSA_MD5 = 0x0101 => "rsa_md5",
        DSA_MD5 = 0x0102 => "dsa_md5",
        ECDSA_MD5 = 0x0103 => "ecdsa_md5",
        RSA_PKCS1_SHA1 = 0x0201 => "rsa_pkcs1_sha1",
        DSA_SHA1 = 0x0202 => "dsa_sha1",
        ECDSA_SHA1 = 0x0203 => "ecdsa_sha1",
        RSA_SHA224 = 0x0301 => "rsa_sha224",
        DSA_SHA224 = 0x0302 => "dsa_sha224",
        ECDSA_SHA224 = 0x0303 => "ecdsa_sha224",
        RSA_PKCS1_SHA256 = 0x0401 => "rsa_pkcs1_sha256",
        DSA_SHA256 = 0x0402 => "dsa_sha256",
        ECDSA_SECP256R1_SHA256 = 0x0403 => "ecdsa_secp256r1_sha256",
        RSA_PKCS1_SHA256_LEGACY = 0x0420 => "rsa_pkcs1_sha256_legacy",
        RSA_PKCS1_SHA384 = 0x0501 => "rsa_pkcs1_sha384",
        DSA_SHA384 = 0x0502 => "dsa_sha384",
        ECDSA_SECP384R1_SHA384 = 0x0503 => "ecdsa_secp384r1_sha384",
        RSA_PKCS1_SHA384_LEGACY = 0x0520 => "rsa_pkcs1_sha384_legacy",
        RSA_PKCS1_SHA512 = 0x0601 => "rsa_pkcs1_sha512",
        DSA_SHA512 = 0x0602 => "dsa_sha512",
        ECDSA_SECP521R1_SHA512 = 0x0603 => "ecdsa_secp521r1_sha512",
        RSA_PKCS1_SHA512_LEGACY = 0x0620 => "rsa_pkcs1_sha512_legacy",
        ECCSI_SHA256 = 0x0704 => "eccsi_sha256",
        ISO_IBS1 = 0x0705 => "iso_ibs1",
        ISO_IBS2 = 0x0706 => "iso_ibs2",
        ISO_CHINESE_IBS = 0x0707 => "iso_chinese_ibs",
        SM2SIG_SM3 = 0x0708 => "sm2sig_sm3",
        GOSTR34102012_256A = 0x0709 => "gostr34102012_256a",
        GOSTR34102012_256B = 0x070a => "gostr34102012_256b",
        GOSTR34102012_256C = 0x070b => "gostr34102012_256c",
        GOSTR34102012_256D = 0x070c => "gostr34102012_256d",
        GOSTR34102012_512A = 0x070d => "gostr34102012_512a",
        GOSTR34102012_512B = 0x070e => "gostr34102012_512b",
        GOSTR34102012_512C = 0x070f => "gostr34102012_512c",
        RSA_PSS_RSAE_SHA256 = 0x0804 => "rsa_pss_rsae_sha256",
        RSA_PSS_RSAE_SHA384 = 0x0805 => "rsa_pss_rsae_sha384",
        RSA_PSS_RSAE_SHA512 = 0x0806 => "rsa_pss_rsae_sha512",
        ED25519 = 0x0807 => "ed25519",
        ED448 = 0x0808 => "ed448",
        RSA_PSS_PSS_SHA256 = 0x0809 => "rsa_pss_pss_sha256",
        RSA_PSS_PSS_SHA384 = 0x080a => "rsa_pss_pss_sha384",
        RSA_PSS_PSS_SHA512 = 0x080b => "rsa_pss_pss_sha512",
        ECDSA_BRAINPOOLP256R1TLS13_SHA256 = 0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        ECDSA_BRAINPOOLP384R1TLS13_SHA384 = 0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        ECDSA_BRAINPOOLP512R1TLS13_SHA512 = 0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        MLDSA44 = 0x0904 => "mldsa44",
        MLDSA65 = 0x0905 => "mldsa65",
        MLDSA87 = 0x0906 => "mldsa87",
    }
}

registry! {
    /// Record compression methods; anything but `null` means CRIME.
    pub struct Compression(u8) {
        Null = 0 => "NULL",
        Deflate = 1 => "DEFLATE",
        Lzs = 64 => "LZS",
    }
}

registry! {
    /// The heartbeat extension's mode (RFC 6520).
    pub struct HeartbeatMode(u8) {
        PeerAllowedToSend = 1 => "peer_allowed_to_send",
        PeerNotAllowedToSend = 2 => "peer_not_allowed_to_send",
    }
}

registry! {
    pub struct EcPointFormat(u8) {
        Uncompressed = 0 => "uncompressed",
        AnsiX962CompressedPrime = 1 => "ansiX962_compressed_prime",
        AnsiX962CompressedChar2 = 2 => "ansiX962_compressed_char2",
    }
}

registry! {
    /// How a ServerKeyExchange names its curve; only `named_curve` is
    /// still legitimate.
    pub struct EcCurveType(u8) {
        ExplicitPrime = 1 => "explicit_prime",
        ExplicitChar2 = 2 => "explicit_char2",
        NamedCurve = 3 => "named_curve",
    }
}

registry! {
    pub struct CertificateStatusType(u8) {
        Ocsp = 1 => "ocsp",
        OcspMulti = 2 => "ocsp_multi",
    }
}

registry! {
    pub struct PskKeyExchangeMode(u8) {
        PskKe = 0 => "psk_ke",
        PskDheKe = 1 => "psk_dhe_ke",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_print_as_records_name_them() {
        let names: Vec<String> = ProtocolVersion::PROBED.iter().map(|v| v.to_string()).collect();
        assert_eq!(names, ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
        assert!(ProtocolVersion::SSLv3 < ProtocolVersion::TLSv1_0);
        assert!(ProtocolVersion::TLSv1_2 < ProtocolVersion::TLSv1_3);
        assert_eq!(ProtocolVersion::from_name("TLSv1.1"), Some(ProtocolVersion::TLSv1_1));
    }

    #[test]
    fn unknown_values_stay_values_and_print_hex() {
        assert_eq!(format!("{:?}", NamedGroup(0xabcd)), "NamedGroup(0xabcd)");
        assert_eq!(NamedGroup(0xabcd).to_string(), "0xabcd");
        assert_eq!(format!("{:?}", AlertDescription(0xee)), "AlertDescription(0xee)");
        assert_eq!(ProtocolVersion(0x7f17).to_string(), "0x7f17");
        assert_eq!(NamedGroup(0xabcd).name(), None);
    }

    #[test]
    fn names_match_the_registries() {
        assert_eq!(NamedGroup::X25519.to_string(), "x25519");
        assert_eq!(NamedGroup(0x11ec).to_string(), "X25519MLKEM768");
        assert_eq!(NamedGroup(23).to_string(), "secp256r1");
        assert_eq!(NamedGroup(0x0104).to_string(), "ffdhe8192");
        assert_eq!(NamedGroup(26).to_string(), "brainpoolP256r1");
        assert_eq!(SignatureScheme(0x0804).to_string(), "rsa_pss_rsae_sha256");
        assert_eq!(ExtensionType(0xff01).to_string(), "renegotiation_info");
        assert_eq!(AlertDescription(40).to_string(), "handshake_failure");
        assert_eq!(HandshakeType(14).to_string(), "server_hello_done");
        assert!(NamedGroup::X25519MLKEM768.is_post_quantum() && !NamedGroup::X25519.is_post_quantum());
        assert!(NamedGroup::FFDHE3072.is_ffdhe() && !NamedGroup::SECP384R1.is_ffdhe());
    }

    #[test]
    fn registries_have_no_duplicate_values_or_names() {
        fn check<T: Copy + Ord + std::fmt::Display>(known: &[T]) {
            let mut values = known.to_vec();
            values.sort();
            values.dedup();
            assert_eq!(values.len(), known.len());
            let mut names: Vec<String> = known.iter().map(|v| v.to_string()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), known.len());
        }
        check(NamedGroup::KNOWN);
        check(SignatureScheme::KNOWN);
        check(ExtensionType::KNOWN);
        check(AlertDescription::KNOWN);
        check(HandshakeType::KNOWN);
        check(ProtocolVersion::KNOWN);
    }

    #[test]
    fn can_round_trip_registry_values() {
        assert_eq!(NamedGroup::X25519.to_bytes(), [0, 29]);
        assert_eq!(NamedGroup::from_bytes(&[0x11, 0xec]), Ok(NamedGroup::X25519MLKEM768));
        assert_eq!(ContentType::from_bytes(&[22]), Ok(ContentType::Handshake));
        assert_eq!(ProtocolVersion::from_bytes(&[3, 3]), Ok(ProtocolVersion::TLSv1_2));
    }
}
