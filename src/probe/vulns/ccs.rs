//! CCS injection (CVE-2014-0224): a ChangeCipherSpec before any key exchange.
//!
//! OpenSSL before 0.9.8za / 1.0.0m / 1.0.1h accepted a ChangeCipherSpec at
//! any point of the handshake and switched its read state to keys derived
//! from an empty master secret, which a man in the middle can compute
//! (Masashi Kikuchi's finding, OpenSSL advisory 2014-06-05). The fix makes an
//! early ChangeCipherSpec a fatal `unexpected_message`.
//!
//! The check follows nmap's ssl-ccs-injection (itself after Ramon de C
//! Valle's ccsinjection.c): a ClientHello the server accepts, its flight to
//! ServerHelloDone, then two ChangeCipherSpec records at once, and one
//! answer read:
//!
//! - a fatal `unexpected_message` alert: the early CCS was refused — not
//!   vulnerable;
//! - `bad_record_mac` or `decryption_failed`: the first CCS was accepted and
//!   switched the read state, so the second one (a 1-byte record) was taken
//!   for ciphertext and failed to decrypt — the signature of the bug that
//!   nmap's second CCS is there to force — vulnerable;
//! - records other than an alert, or no answer within the wait: the server
//!   took both CCS records and kept going instead of refusing them —
//!   vulnerable. nmap counts a non-alert record so but reports silence as
//!   "no reply"; silence counts here too, because every patched stack
//!   refuses the first early CCS at once, and a server that keeps the
//!   connection open after two of them has accepted them (the wait starts
//!   only after the server has answered our hello, so a slow or busy server
//!   does not look silent);
//! - a close without alert: refused — not vulnerable;
//! - any other alert (`handshake_failure`, `decode_error`, …): refused with
//!   a different alert — not vulnerable. nmap flags every alert other than
//!   `unexpected_message`, which makes stacks such as MatrixSSL (it answers
//!   `decode_error`) false positives; only a changed read state explains a
//!   decryption failure, so only those two alerts count.

use tokio::time::Instant;

use crate::probe::enumerate::Enumeration;
use crate::wire::record::encode_records;
use crate::wire::{AlertDescription, ContentType, Event};

use super::conversation::{Conversation, Reply, describe_alert};
use super::{Target, Verdict, VulnConfig, legacy_offer, ms, no_legacy_reason};

pub(super) async fn check(t: &Target, e: &Enumeration, cfg: &VulnConfig) -> Verdict {
    let Some((version, suites)) = legacy_offer(e, true, |_| true) else {
        return Verdict::untested(no_legacy_reason(e), 0);
    };
    let hello = match t.builder(version).cipher_suites(suites).build() {
        Ok(h) => h,
        Err(err) => return Verdict::untested(format!("cannot build the ClientHello: {err}"), 0),
    };
    let deadline = Instant::now() + cfg.deadline;
    let mut conv = match Conversation::open(t, deadline).await {
        Ok(c) => c,
        Err(why) => return Verdict::untested(why, 0),
    };
    let flight = match conv.hello(&hello).await {
        Ok(f) => f,
        Err(why) => return Verdict::untested(why, 1),
    };
    let v = flight.version();
    let mut ccs = Vec::new();
    encode_records(ContentType::ChangeCipherSpec, v, &[1], &mut ccs);
    encode_records(ContentType::ChangeCipherSpec, v, &[1], &mut ccs);
    if let Err(why) = conv.send(&ccs).await {
        return Verdict::untested(format!("two early ChangeCipherSpec records: {why}"), 1);
    }
    let sent = format!("after the {v} ServerHelloDone, two ChangeCipherSpec records before any key exchange");
    let reply = conv.next(Instant::now() + cfg.reply_wait).await;
    match &reply {
        Reply::Event(Event::Alert(a)) if a.description == AlertDescription::UnexpectedMessage => {
            Verdict::safe(format!("{sent} were refused with {}", describe_alert(a)), 1)
        }
        Reply::Event(Event::Alert(a))
            if matches!(
                a.description,
                AlertDescription::BadRecordMac | AlertDescription::DecryptionFailed
            ) =>
        {
            Verdict::vulnerable(
                format!(
                    "{sent} were answered with {}: the first was accepted and switched the read keys \
                     (derived from an empty master secret), so the second failed to decrypt (CVE-2014-0224)",
                    describe_alert(a)
                ),
                1,
            )
        }
        Reply::Event(Event::Alert(a)) => Verdict::safe(
            format!(
                "{sent} were refused with {} (not a decryption failure)",
                describe_alert(a)
            ),
            1,
        ),
        Reply::Timeout => Verdict::vulnerable(
            format!(
                "{sent} drew no alert within {} ms: the server accepted them (a patched server refuses the \
                 first with unexpected_message) (CVE-2014-0224)",
                ms(cfg.reply_wait)
            ),
            1,
        ),
        Reply::Event(_) => Verdict::vulnerable(
            format!(
                "{sent} were answered with {} instead of an alert: the server kept going (CVE-2014-0224)",
                reply.describe()
            ),
            1,
        ),
        Reply::Closed | Reply::Reset => Verdict::safe(format!("{sent} were refused: {}", reply.describe()), 1),
        Reply::Malformed(_) | Reply::Failed(_) => {
            Verdict::untested(format!("{sent} were answered with {}", reply.describe()), 1)
        }
    }
}
