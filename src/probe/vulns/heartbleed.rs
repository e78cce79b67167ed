//! Heartbleed (CVE-2014-0160): a heartbeat request that claims more payload
//! than it carries.
//!
//! RFC 6520 §4: a HeartbeatRequest whose payload_length exceeds the record
//! "MUST be discarded silently". OpenSSL 1.0.1–1.0.1f instead copied
//! payload_length bytes starting at the payload into its response, leaking
//! whatever followed in its memory. The check is the one sslyze and nmap's
//! ssl-heartbleed run: a ClientHello offering the heartbeat extension (at a
//! version and with suites the server accepts, from the enumeration), the
//! server's flight to ServerHelloDone, then — before the handshake goes on,
//! where vulnerable servers already answer heartbeats — one heartbeat record
//! of `[type=request, payload_length=L, 16 bytes]` with no padding.
//!
//! - A heartbeat response carrying more bytes than the record we sent is
//!   the over-read: vulnerable.
//! - An alert, a close, or silence until the wait runs out is the discard
//!   the RFC asks for (patched OpenSSL is silent; others alert): not
//!   vulnerable.
//!
//! L defaults to 4 KiB rather than the 16 KiB exploits ask for: any L above
//! what we sent shows the flaw, a short over-read stays inside the server's
//! record buffer (no risk of reading past a mapping and crashing it), copies
//! less of its memory to us, and the answer fits one 2^14-byte record. A
//! longer answer that the deframer refuses as one oversized record is still
//! recognised from its record header. The leaked bytes are counted and
//! dropped, never kept.

use tokio::time::Instant;

use crate::probe::enumerate::Enumeration;
use crate::wire::record::encode_records;
use crate::wire::{ContentType, Event, HeartbeatMode, ProtocolVersion};

use super::conversation::{Conversation, Reply, describe_alert};
use super::{Target, Verdict, VulnConfig, legacy_offer, ms, no_legacy_reason};

/// The payload we actually send: recognisable, harmless.
const PROBE: &[u8; 16] = b"netsensor-hb-chk";
/// Heartbeat message types (RFC 6520 §3).
const HEARTBEAT_REQUEST: u8 = 1;
const HEARTBEAT_RESPONSE: u8 = 2;

/// The heartbeat record: a request claiming `claimed` bytes, carrying [`PROBE`].
pub(crate) fn request(version: ProtocolVersion, claimed: u16) -> Vec<u8> {
    let mut body = vec![HEARTBEAT_REQUEST];
    body.extend_from_slice(&claimed.to_be_bytes());
    body.extend_from_slice(PROBE);
    let mut out = Vec::new();
    encode_records(ContentType::Heartbeat, version, &body, &mut out);
    out
}

/// Bytes in the record we send (type, length, payload).
const SENT: usize = 3 + PROBE.len();

pub(super) async fn check(t: &Target, e: &Enumeration, cfg: &VulnConfig) -> Verdict {
    // SSLv3 has no extensions, so no heartbeat; TLS 1.3 was never affected.
    let Some((version, suites)) = legacy_offer(e, false, |_| true) else {
        return Verdict::untested(no_legacy_reason(e), 0);
    };
    let hello = match t
        .builder(version)
        .cipher_suites(suites)
        .heartbeat(HeartbeatMode::PeerAllowedToSend)
        .build()
    {
        Ok(h) => h,
        Err(err) => return Verdict::untested(format!("cannot build the ClientHello: {err}"), 0),
    };
    let claimed = cfg.heartbeat_length.max(SENT as u16 + 1);
    let deadline = Instant::now() + cfg.deadline;
    let mut conv = match Conversation::open(t, deadline).await {
        Ok(c) => c,
        Err(why) => return Verdict::untested(why, 0),
    };
    let flight = match conv.hello(&hello).await {
        Ok(f) => f,
        Err(why) => return Verdict::untested(why, 1),
    };
    let negotiated = match flight.server_hello.heartbeat() {
        Some(_) => "the server negotiated the heartbeat extension",
        None => "the server did not negotiate the heartbeat extension",
    };
    let v = flight.version();
    conv.mark();
    if let Err(why) = conv.send(&request(v, claimed)).await {
        return Verdict::untested(format!("{negotiated}; the heartbeat request: {why}"), 1);
    }
    let asked = format!("{negotiated}; a {v} heartbeat request claiming {claimed} bytes carried {SENT}");
    let wait = Instant::now() + cfg.reply_wait;
    let mut got = 0usize;
    let mut declared: Option<u16> = None;
    let end = loop {
        match conv.next(wait).await {
            Reply::Event(Event::Heartbeat(payload)) => {
                got += payload.len();
                if declared.is_none()
                    && let [typ, hi, lo, ..] = payload.as_slice()
                    && *typ == HEARTBEAT_RESPONSE
                {
                    declared = Some(u16::from_be_bytes([*hi, *lo]));
                }
                if got > SENT {
                    let declared = declared.map(|d| format!(" (payload_length {d})")).unwrap_or_default();
                    return Verdict::vulnerable(
                        format!(
                            "{asked}, and the server answered {got}+ bytes of heartbeat response{declared}: \
                             it copied memory beyond our payload (CVE-2014-0160)"
                        ),
                        1,
                    );
                }
            }
            // Anything else in between (a stray handshake message) is not the answer.
            Reply::Event(Event::Handshake(_)) => continue,
            Reply::Malformed(err) => {
                // A response too long for one record is still recognisable.
                if let [24, 3, _, hi, lo] = conv.tail()
                    && usize::from(u16::from_be_bytes([*hi, *lo])) > SENT
                {
                    let len = u16::from_be_bytes([*hi, *lo]);
                    return Verdict::vulnerable(
                        format!(
                            "{asked}, and the server answered with a {len}-byte heartbeat record: \
                             it copied memory beyond our payload (CVE-2014-0160)"
                        ),
                        1,
                    );
                }
                return Verdict::untested(format!("{asked}; unreadable answer: {err}"), 1);
            }
            other => break other,
        }
    };
    let answer = match &end {
        Reply::Timeout if got == 0 => format!(
            "the server sent nothing for {} ms (the request was discarded, as RFC 6520 §4 requires)",
            ms(cfg.reply_wait)
        ),
        Reply::Event(Event::Alert(a)) => format!("the server answered {}", describe_alert(a)),
        other => format!("the server answered {}", other.describe()),
    };
    let extra = match got {
        0 => String::new(),
        n => format!(" after {n} bytes of heartbeat response (no more than we sent)"),
    };
    if let Reply::Failed(err) = &end {
        return Verdict::untested(format!("{asked}; I/O error while waiting for the answer: {err}"), 1);
    }
    Verdict::safe(format!("{asked}; {answer}{extra}"), 1)
}
