//! Every certificate a server holds is assessed (SSL Labs: each certificate
//! gets its own grade; the endpoint takes the worse). The main assessment
//! judged the chain our default handshake got; each other deployment found
//! by `probe::extras` is judged here the same way, with everything else
//! (protocols, suites, vulnerabilities, headers) unchanged.

use time::OffsetDateTime;

use super::{Assessment, Observation, Policy, TrustStores, assess};
use crate::model::assessment::{Finding, Grade, Letter, Severity};

/// One deployment's verdict, by leaf thumbprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub thumbprint: String,
    pub letter: Option<Letter>,
    pub trusted: Option<bool>,
}

/// Judge each deployment; when one grades worse than `main`, its grade (to
/// become the endpoint's) and a finding naming the certificate.
pub fn assess_each(
    obs: &Observation<'_>,
    main: &Assessment,
    trust: &TrustStores,
    policy: &Policy,
    now: OffsetDateTime,
) -> (Vec<Judged>, Option<(Grade, Finding)>) {
    let main_leaf = obs.record.certificate.as_ref().map(|c| c.thumbprint.as_str());
    let main_letter = main.grade.as_ref().map(|g| g.letter);
    let mut judged = Vec::new();
    let mut worst: Option<(Grade, Finding)> = None;
    for d in &obs.record.certificate_deployments {
        if Some(d.thumbprint.as_str()) == main_leaf || d.der.is_empty() {
            judged.push(Judged {
                thumbprint: d.thumbprint.clone(),
                letter: main_letter,
                trusted: main.chain.trusted,
            });
            continue;
        }
        let mut record = obs.record.clone();
        record.certificate = d.chain.first().cloned();
        record.chain = d.chain.clone();
        // The live revocation check asked about the main leaf only.
        record.revocation = None;
        let other = Observation {
            record: &record,
            chain_der: &d.der,
            ocsp: None,
            vulnerabilities: obs.vulnerabilities,
            http: obs.http,
        };
        let a = assess(&other, trust, policy, now);
        let letter = a.grade.as_ref().map(|g| g.letter);
        judged.push(Judged {
            thumbprint: d.thumbprint.clone(),
            letter,
            trusted: a.chain.trusted,
        });
        let current = worst.as_ref().map(|(g, _)| g.letter).or(main_letter);
        if let (Some(g), Some(cur)) = (a.grade, current)
            && g.letter.rank() > cur.rank()
        {
            let finding = Finding {
                id: "deployment_worse".into(),
                severity: Severity::Medium,
                title: "Another certificate of this server grades worse".into(),
                evidence: format!(
                    "the {} certificate ({}, sent for {}) grades {} where the default handshake's grades {}; the endpoint takes the worse",
                    d.key,
                    d.chain.first().map(|c| c.subject_dn.as_str()).unwrap_or(""),
                    d.offers.join(", "),
                    g.letter.as_str(),
                    main_letter.map(Letter::as_str).unwrap_or("-")
                ),
            };
            worst = Some((g, finding));
        }
    }
    (judged, worst)
}
