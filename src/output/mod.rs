//! Printing records: table, JSON, NDJSON and CSV.
//!
//! Producing results is separate from showing them (ripgrep's sink idea):
//! the scan sends records, a [`Sink`] writes them. NDJSON and CSV stream in
//! arrival order (the scan order is pseudo-random); table and JSON wait for
//! the end and sort by address and port.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::record::{EndpointRecord, SCHEMA_VERSION};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(format!(
                "unknown output format `{other}`: use table, json, ndjson or csv"
            )),
        }
    }
}

pub trait Sink {
    fn record(&mut self, r: &EndpointRecord) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

pub fn sink<'a, W: Write + 'a>(format: Format, w: W, meta: ScanMeta) -> Box<dyn Sink + 'a> {
    match format {
        Format::Table => Box::new(Table { w, rows: Vec::new() }),
        Format::Json => Box::new(Json {
            w,
            meta,
            rows: Vec::new(),
        }),
        Format::Ndjson => Box::new(Ndjson { w }),
        Format::Csv => Box::new(Csv {
            w: csv::Writer::from_writer(w),
            header: false,
        }),
    }
}

/// What the JSON document says about the scan itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanMeta {
    pub started_at: String,
    pub targets: Vec<String>,
    pub ports: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

fn sort(rows: &mut [EndpointRecord]) {
    rows.sort_by(|a, b| (a.address, a.port, &a.hostname).cmp(&(b.address, b.port, &b.hostname)));
}

struct Ndjson<W> {
    w: W,
}

impl<W: Write> Sink for Ndjson<W> {
    fn record(&mut self, r: &EndpointRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, r)?;
        self.w.write_all(b"\n")?;
        self.w.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

struct Json<W> {
    w: W,
    meta: ScanMeta,
    rows: Vec<EndpointRecord>,
}

impl<W: Write> Sink for Json<W> {
    fn record(&mut self, r: &EndpointRecord) -> io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        sort(&mut self.rows);
        self.meta.finished_at = Some(crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc()));
        #[derive(Serialize)]
        struct Doc<'a> {
            schema_version: &'static str,
            scan: &'a ScanMeta,
            endpoints: &'a [EndpointRecord],
        }
        let doc = Doc {
            schema_version: SCHEMA_VERSION,
            scan: &self.meta,
            endpoints: &self.rows,
        };
        serde_json::to_writer_pretty(&mut self.w, &doc)?;
        self.w.write_all(b"\n")?;
        self.w.flush()
    }
}

/// The flat columns shared by CSV and the table.
fn columns(r: &EndpointRecord) -> [String; 13] {
    let h = r.handshake.as_ref();
    let c = r.certificate.as_ref();
    let detail = match (&r.plain, h.and_then(|h| h.error.clone())) {
        (Some(p), _) => p.server.clone().or_else(|| p.banner.clone()).unwrap_or_default(),
        (None, Some(e)) => e,
        _ => String::new(),
    };
    [
        r.address.to_string(),
        r.port.to_string(),
        r.hostname.clone().unwrap_or_default(),
        r.category.as_str().to_string(),
        r.service.clone().unwrap_or_default(),
        h.and_then(|h| h.protocol.clone()).unwrap_or_default(),
        h.and_then(|h| h.cipher_suite.as_ref().map(|s| s.name.clone()))
            .unwrap_or_default(),
        h.and_then(|h| h.group.clone()).unwrap_or_default(),
        c.and_then(|c| c.common_name.clone()).unwrap_or_default(),
        c.map(|c| c.valid_to.clone()).unwrap_or_default(),
        c.map(|c| {
            format!(
                "{} {}",
                c.key_algorithm,
                c.key_size.map(|b| b.to_string()).unwrap_or_default()
            )
        })
        .unwrap_or_default()
        .trim()
        .to_string(),
        detail,
        r.grade.as_ref().map(|g| g.letter.to_string()).unwrap_or_default(),
    ]
}

const HEADER: [&str; 13] = [
    "address",
    "port",
    "hostname",
    "category",
    "service",
    "protocol",
    "cipher_suite",
    "group",
    "subject_cn",
    "not_after",
    "key",
    "detail",
    "grade",
];

struct Csv<W: Write> {
    w: csv::Writer<W>,
    header: bool,
}

impl<W: Write> Sink for Csv<W> {
    fn record(&mut self, r: &EndpointRecord) -> io::Result<()> {
        if !self.header {
            self.w.write_record(HEADER)?;
            self.header = true;
        }
        self.w.write_record(columns(r))?;
        self.w.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        if !self.header {
            self.w.write_record(HEADER)?;
            self.header = true;
        }
        self.w.flush()
    }
}

struct Table<W> {
    w: W,
    rows: Vec<EndpointRecord>,
}

impl<W: Write> Sink for Table<W> {
    fn record(&mut self, r: &EndpointRecord) -> io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        sort(&mut self.rows);
        // address, port, category, service, protocol, cipher, subject, expiry, detail
        let pick = [0usize, 1, 3, 12, 4, 5, 6, 8, 9, 11];
        let titles = [
            "ADDRESS",
            "PORT",
            "CATEGORY",
            "GRADE",
            "SERVICE",
            "PROTOCOL",
            "CIPHER",
            "SUBJECT CN",
            "EXPIRES",
            "DETAIL",
        ];
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let cols = columns(r);
                let mut addr = cols[0].clone();
                if let Some(h) = &r.hostname {
                    addr = format!("{addr} ({h})");
                }
                pick.iter()
                    .map(|&i| if i == 0 { addr.clone() } else { truncate(&cols[i], 60) })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = titles.iter().map(|t| t.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cols.iter().zip(&widths).enumerate() {
                if i + 1 == cols.len() {
                    s.push_str(c);
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_string()
        };
        writeln!(self.w, "{}", line(&titles.map(String::from)))?;
        for row in &cells {
            writeln!(self.w, "{}", line(row))?;
        }
        let count = |cat: &str| self.rows.iter().filter(|r| r.category.as_str() == cat).count();
        writeln!(
            self.w,
            "\n{} endpoints: {} discovered (TLS), {} unsecured",
            self.rows.len(),
            count("discovered"),
            count("unsecured")
        )?;
        self.w.flush()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The one-endpoint deep view of `sensor grade`, for a person.
pub fn detail(r: &EndpointRecord) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let name = r.hostname.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
    let _ = writeln!(s, "Endpoint      {}:{}{name}", r.address, r.port);
    let _ = writeln!(
        s,
        "Category      {} / {} / {}",
        r.category.as_str(),
        serde_json::to_value(r.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.service.as_deref().unwrap_or("-")
    );
    if let Some(h) = &r.handshake {
        if let Some(p) = &h.protocol {
            let suite = h
                .cipher_suite
                .as_ref()
                .map(|c| format!("{} ({:#06x})", c.name, c.code))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "Handshake     {p} {suite} group {} alpn {}",
                opt(&h.group),
                opt(&h.alpn)
            );
        }
        if let Some(e) = &h.error {
            let _ = writeln!(s, "Handshake     failed: {e}");
        }
    }
    if let Some(p) = &r.plain {
        let _ = writeln!(
            s,
            "Service       {} {}",
            p.name,
            p.server.as_deref().or(p.banner.as_deref()).unwrap_or("")
        );
    }
    if let Some(g) = &r.grade {
        let _ = writeln!(
            s,
            "Grade         {}  (score {}: protocol {}, key exchange {}, cipher {})",
            g.letter, g.score, g.protocol_score, g.key_exchange_score, g.cipher_score
        );
        if let Some(t) = g.if_trusted {
            let _ = writeln!(s, "              {t} if trust issues are ignored");
        }
        for c in &g.caps {
            let _ = writeln!(s, "  cap {:<3} {}", c.letter.to_string(), c.reason);
        }
        for w in &g.warnings {
            let _ = writeln!(s, "  warning  {w}");
        }
        for n in &g.notes {
            let _ = writeln!(s, "  note     {n}");
        }
    }
    if let Some(levels) = r.security_rating_info.as_ref().and_then(|i| i.security_rating_score) {
        let _ = writeln!(
            s,
            "Rating        {}",
            serde_json::to_value(levels)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        );
    }
    if !r.findings.is_empty() {
        let _ = writeln!(s, "\nFindings");
        for f in &r.findings {
            let sev = serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(s, "  {sev:<8} {:<28} {}", f.id, f.evidence);
        }
    }
    if !r.chain.is_empty() {
        let _ = writeln!(s, "\nCertificate chain (as sent)");
        for (i, c) in r.chain.iter().enumerate() {
            let key = format!(
                "{} {}",
                c.key_algorithm,
                c.key_size.map(|b| b.to_string()).unwrap_or_default()
            );
            let _ = writeln!(s, "  #{i} {}", c.subject_dn);
            let _ = writeln!(s, "     issuer  {}", c.issuer_dn);
            let _ = writeln!(s, "     valid   {} .. {}", c.valid_from, c.valid_to);
            let _ = writeln!(
                s,
                "     key     {}  sig {}  serial {}",
                key.trim(),
                c.signature_algorithm,
                c.serial_number
            );
            if !c.san.is_empty() {
                let _ = writeln!(s, "     SAN     {}", c.san.join(", "));
            }
            let _ = writeln!(s, "     sha256  {}", c.thumbprint);
        }
    }
    if let Some(protocols) = &r.protocols {
        let _ = writeln!(s, "\nProtocols");
        for p in crate::model::record::PROTOCOL_NAMES {
            let on = protocols.get(p).copied().unwrap_or(false);
            let _ = writeln!(s, "  {p:<8} {}", if on { "offered" } else { "not offered" });
        }
    }
    for pc in &r.protocol_ciphers {
        let order = pc.cipher_pref_order.as_deref().unwrap_or("n/a");
        let _ = writeln!(
            s,
            "\n{} cipher suites ({} preference, compression {})",
            pc.protocol, order, pc.compressors
        );
        for c in &pc.ciphers {
            let _ = writeln!(
                s,
                "  {:#06x}  {:<48} {:<16} {:>3} bits",
                c.code, c.name, c.kex_info, c.bits
            );
        }
    }
    if let Some(k) = &r.key_exchange {
        let _ = writeln!(s, "\nKey exchange");
        let _ = writeln!(s, "  groups      {}", k.groups.join(", "));
        let _ = writeln!(s, "  preferred   {}", opt(&k.default_group));
        if let (Some(lo), Some(hi)) = (k.dh_min_bits, k.dh_max_bits) {
            let _ = writeln!(s, "  DH params   {lo}..{hi} bits");
        }
        if !k.signature_algorithms.is_empty() {
            let _ = writeln!(s, "  signatures  {}", k.signature_algorithms.join(", "));
        }
    }
    if let Some(f) = &r.features {
        let _ = writeln!(s, "\nFeatures");
        let yn = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not tested",
        };
        for (name, v) in [
            ("secure renegotiation", f.secure_renegotiation),
            ("TLS_FALLBACK_SCSV", f.fallback_scsv),
            ("extended master secret", f.extended_master_secret),
            ("encrypt-then-MAC", f.encrypt_then_mac),
            ("heartbeat extension", f.heartbeat),
            ("OCSP stapling", f.ocsp_stapling),
            ("session IDs", f.session_id),
            ("session tickets", f.session_ticket),
            ("HelloRetryRequest", f.hello_retry_request),
        ] {
            let _ = writeln!(s, "  {name:<24} {}", yn(v));
        }
        let _ = writeln!(s, "  {:<24} {}", "ALPN", f.alpn.join(", "));
        let _ = writeln!(s, "  {:<24} {}", "compression", f.compression.join(", "));
    }
    for e in &r.enumeration_errors {
        let _ = writeln!(s, "\nnote: {e}");
    }
    s
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}
