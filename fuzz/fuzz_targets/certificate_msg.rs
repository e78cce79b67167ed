//! Certificate messages (TLS 1.2 and 1.3 forms) and CertificateStatus:
//! never panic, respect the caps, and round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::server::{Certificate13, CertificateStatus, MAX_CERTIFICATE_LEN, MAX_CERTIFICATES};
use netsensor::wire::{CertificateChain, Codec};

fuzz_target!(|data: &[u8]| {
    if let Ok(chain) = CertificateChain::from_bytes(data) {
        assert!(chain.certificates.len() <= MAX_CERTIFICATES);
        assert!(chain.certificates.iter().all(|c| !c.is_empty() && c.len() <= MAX_CERTIFICATE_LEN));
        assert_eq!(chain.to_bytes(), data);
    }
    if let Ok(c13) = Certificate13::from_bytes(data) {
        assert!(c13.entries.len() <= MAX_CERTIFICATES);
        assert_eq!(c13.to_bytes(), data);
    }
    if let Ok(status) = CertificateStatus::from_bytes(data) {
        assert_eq!(status.to_bytes(), data);
    }
});
