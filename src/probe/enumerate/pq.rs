//! Post-quantum key exchange, judged from what the group enumeration saw.
//!
//! No ML-KEM is implemented here: each group is offered alone without a key
//! share and the HelloRetryRequest names the group the server accepts (the
//! driver's TLS 1.3 group probe). Two more hellos offering every accepted
//! group, classical first and then PQ first, show which kind the server
//! prefers. This module turns those answers into the record's view; it is
//! pure so the reading of every combination is tested without a server.

use crate::wire::NamedGroup;

/// What the record says about post-quantum key exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostQuantum {
    /// Some TLS 1.3 group resting on ML-KEM is accepted.
    pub supported: bool,
    /// Hybrid groups accepted (`X25519MLKEM768`, …).
    pub hybrids: Vec<NamedGroup>,
    /// ML-KEM alone (`MLKEM768`, …).
    pub ml_kem: Vec<NamedGroup>,
    /// `pq` when the server picks a PQ group over the classical ones whatever
    /// our order, `classical` when it picks a classical one, `client` when it
    /// follows our order; `None` when there is no choice to make.
    pub preference: Option<&'static str>,
    /// Only PQ groups are accepted: a client without ML-KEM cannot connect.
    pub only: bool,
}

/// A hybrid: ML-KEM combined with a classical group.
pub fn is_hybrid(g: NamedGroup) -> bool {
    g.is_post_quantum() && !is_pure_ml_kem(g)
}

/// ML-KEM alone (0x0200-0x0202).
pub fn is_pure_ml_kem(g: NamedGroup) -> bool {
    (0x0200..=0x0202).contains(&g.0)
}

/// The two orders to offer every accepted TLS 1.3 group in: classical first,
/// then PQ first. `None` when the server accepts only one kind (no choice).
pub fn preference_offers(tls13_groups: &[NamedGroup]) -> Option<(Vec<NamedGroup>, Vec<NamedGroup>)> {
    let (pq, classical): (Vec<NamedGroup>, Vec<NamedGroup>) =
        tls13_groups.iter().copied().partition(|g| g.is_post_quantum());
    if pq.is_empty() || classical.is_empty() {
        return None;
    }
    let classical_first = classical.iter().chain(&pq).copied().collect();
    let pq_first = pq.iter().chain(&classical).copied().collect();
    Some((classical_first, pq_first))
}

/// Judge `tls13_groups` (each accepted alone) and the server's picks for the
/// two [`preference_offers`] (`None` when a pick was not seen).
pub fn judge(
    tls13_groups: &[NamedGroup],
    classical_first_pick: Option<NamedGroup>,
    pq_first_pick: Option<NamedGroup>,
) -> PostQuantum {
    let hybrids: Vec<NamedGroup> = tls13_groups.iter().copied().filter(|&g| is_hybrid(g)).collect();
    let ml_kem: Vec<NamedGroup> = tls13_groups.iter().copied().filter(|&g| is_pure_ml_kem(g)).collect();
    let supported = !hybrids.is_empty() || !ml_kem.is_empty();
    let only = supported && tls13_groups.iter().all(|g| g.is_post_quantum());
    let preference = match (classical_first_pick, pq_first_pick) {
        (Some(a), Some(b)) if supported && !only => match (a.is_post_quantum(), b.is_post_quantum()) {
            (true, true) => Some("pq"),
            (false, false) => Some("classical"),
            (false, true) => Some("client"),
            // Against our order both times: no preference one can name.
            (true, false) => None,
        },
        _ => None,
    };
    PostQuantum {
        supported,
        hybrids,
        ml_kem,
        preference,
        only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: NamedGroup = NamedGroup::X25519;
    const P256: NamedGroup = NamedGroup::SECP256R1;
    const HY: NamedGroup = NamedGroup::X25519MLKEM768;
    const KEM: NamedGroup = NamedGroup::MLKEM768;

    #[test]
    fn classical_only_has_no_pq_and_no_preference_probe() {
        assert_eq!(preference_offers(&[X, P256]), None);
        let pq = judge(&[X, P256], None, None);
        assert_eq!(pq, PostQuantum::default());
    }

    #[test]
    fn offers_put_each_kind_first() {
        let (c, p) = preference_offers(&[X, HY, P256]).expect("both kinds");
        assert_eq!(c, vec![X, P256, HY]);
        assert_eq!(p, vec![HY, X, P256]);
    }

    #[test]
    fn a_server_picking_the_hybrid_both_times_prefers_pq() {
        let pq = judge(&[X, P256, HY], Some(HY), Some(HY));
        assert!(pq.supported && !pq.only);
        assert_eq!(pq.hybrids, vec![HY]);
        assert!(pq.ml_kem.is_empty());
        assert_eq!(pq.preference, Some("pq"));
    }

    #[test]
    fn preferences_classical_and_client() {
        assert_eq!(judge(&[X, HY], Some(X), Some(X)).preference, Some("classical"));
        assert_eq!(judge(&[X, HY], Some(X), Some(HY)).preference, Some("client"));
        assert_eq!(judge(&[X, HY], Some(HY), Some(X)).preference, None);
        assert_eq!(judge(&[X, HY], None, Some(HY)).preference, None);
    }

    #[test]
    fn ml_kem_alone_only() {
        let pq = judge(&[KEM, HY], None, None);
        assert!(pq.supported && pq.only);
        assert_eq!(pq.ml_kem, vec![KEM]);
        assert_eq!(pq.hybrids, vec![HY]);
        assert_eq!(pq.preference, None);
    }

    #[test]
    fn registry_kinds() {
        for g in [0x11eb, 0x11ec, 0x11ed] {
            assert!(is_hybrid(NamedGroup(g)), "{g:#x}");
        }
        for g in [0x0200, 0x0201, 0x0202] {
            assert!(is_pure_ml_kem(NamedGroup(g)) && !is_hybrid(NamedGroup(g)), "{g:#x}");
        }
        assert!(!is_hybrid(X) && !is_pure_ml_kem(X));
    }
}
