//! Which endpoints the Endpoints page shows: the view (Discovered,
//! Unsecured, Automatable, Expiring, Gone, All), the filters, the order and
//! the page, read from and written back to the URL's query.
//!
//! Pure (the clock is an argument): the page, its CSV/JSON export and the
//! tests select rows with the same [`Query::select`], so an export is
//! exactly the view a person was looking at (every page of it).

use std::cmp::Ordering;

use time::OffsetDateTime;

use crate::model::assessment::Letter;
use crate::model::record::Category;
use crate::output::expiry::Expiry;
use crate::store::endpoint::Stored;

/// Expiring: expired, or expiring within this many days.
pub const EXPIRING_DAYS: i64 = 30;
/// Rows per page unless asked otherwise, and the most one page may hold.
pub const PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 500;

/// The tabs of the Endpoints page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Discovered,
    Unsecured,
    Automatable,
    Expiring,
    Gone,
    All,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Discovered,
        View::Unsecured,
        View::Automatable,
        View::Expiring,
        View::Gone,
        View::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            View::Discovered => "discovered",
            View::Unsecured => "unsecured",
            View::Automatable => "automatable",
            View::Expiring => "expiring",
            View::Gone => "gone",
            View::All => "all",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Discovered => "Discovered",
            View::Unsecured => "Unsecured",
            View::Automatable => "Automatable",
            View::Expiring => "Expiring",
            View::Gone => "Gone",
            View::All => "All",
        }
    }

    pub fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether `s` belongs to this view at `now`. Only Gone and All show
    /// endpoints reported gone.
    pub fn holds(self, s: &Stored, now: OffsetDateTime) -> bool {
        let active = s.gone_at.is_none();
        match self {
            View::Discovered => active && s.category == Category::Discovered,
            View::Unsecured => active && s.category == Category::Unsecured,
            View::Automatable => active && s.category == Category::Automatable,
            View::Expiring => active && Expiry::of(&s.record, now).is_some_and(|e| e.within(EXPIRING_DAYS)),
            View::Gone => !active,
            View::All => true,
        }
    }
}

/// The columns a table can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Address,
    Name,
    Grade,
    Expires,
    LastSeen,
    Sensor,
}

impl Sort {
    pub const ALL: [Sort; 6] = [
        Sort::Address,
        Sort::Name,
        Sort::Grade,
        Sort::Expires,
        Sort::LastSeen,
        Sort::Sensor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Address => "address",
            Sort::Name => "name",
            Sort::Grade => "grade",
            Sort::Expires => "expires",
            Sort::LastSeen => "last_seen",
            Sort::Sensor => "sensor",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Everything the Endpoints page's URL says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub view: View,
    /// Only endpoints graded this letter or worse (ungraded never match).
    pub grade_at_most: Option<Letter>,
    /// Only endpoints accepting this protocol version (`TLSv1.0` …).
    pub protocol: Option<String>,
    pub tag: Option<String>,
    /// Only endpoints reported by this sensor (`local`: this sensor's own).
    pub sensor: Option<String>,
    /// Case-insensitive text in the address, SNI, subject, SANs or issuer.
    pub text: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// From 1.
    pub page: usize,
    pub per_page: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            view: View::default(),
            grade_at_most: None,
            protocol: None,
            tag: None,
            sensor: None,
            text: None,
            sort: Sort::default(),
            descending: false,
            page: 1,
            per_page: PER_PAGE,
        }
    }
}

/// The sensor filter's word for this sensor's own endpoints.
pub const LOCAL: &str = "local";

fn nonempty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl Query {
    /// Reads a query string's pairs; anything unknown or malformed is
    /// ignored (a bookmarked URL from an older console still opens).
    pub fn from_pairs(pairs: &[(String, String)]) -> Query {
        let mut q = Query::default();
        for (k, v) in pairs {
            match k.as_str() {
                "view" => q.view = View::parse(v).unwrap_or_default(),
                "grade" => q.grade_at_most = Letter::parse(v),
                "protocol" => q.protocol = nonempty(v),
                "tag" => q.tag = nonempty(v),
                "sensor" => q.sensor = nonempty(v),
                "q" => q.text = nonempty(v),
                "sort" => q.sort = Sort::parse(v).unwrap_or_default(),
                "dir" => q.descending = v == "desc",
                "page" => q.page = v.parse().unwrap_or(1).max(1),
                "per_page" => q.per_page = v.parse().unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE),
                _ => {}
            }
        }
        q
    }

    /// The query back as pairs, defaults left out.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("view", self.view.as_str().to_string())];
        let mut opt = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        };
        opt("grade", &self.grade_at_most.map(|l| l.as_str().to_string()));
        opt("protocol", &self.protocol);
        opt("tag", &self.tag);
        opt("sensor", &self.sensor);
        opt("q", &self.text);
        if self.sort != Sort::default() {
            out.push(("sort", self.sort.as_str().to_string()));
        }
        if self.descending {
            out.push(("dir", "desc".to_string()));
        }
        if self.page > 1 {
            out.push(("page", self.page.to_string()));
        }
        if self.per_page != PER_PAGE {
            out.push(("per_page", self.per_page.to_string()));
        }
        out
    }

    /// `path?query` for this query (percent-encoded).
    pub fn href(&self, path: &str) -> String {
        let q: Vec<String> = self
            .to_pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode(&v)))
            .collect();
        format!("{path}?{}", q.join("&"))
    }

    /// Whether `s` passes the filters (not the view).
    pub fn passes(&self, s: &Stored) -> bool {
        if let Some(bar) = self.grade_at_most {
            match &s.record.grade {
                Some(g) if g.letter == bar || g.letter.is_below(bar) => {}
                _ => return false,
            }
        }
        if let Some(p) = &self.protocol
            && !s
                .record
                .protocols
                .as_ref()
                .is_some_and(|m| m.get(p.as_str()).copied().unwrap_or(false))
        {
            return false;
        }
        if self.tag.as_ref().is_some_and(|t| !s.tags.contains(t)) {
            return false;
        }
        if let Some(sensor) = &self.sensor {
            let want = if sensor == LOCAL { "" } else { sensor.as_str() };
            if s.key.sensor != want {
                return false;
            }
        }
        match &self.text {
            Some(t) => text_matches(s, t),
            None => true,
        }
    }

    /// The rows of this view that pass the filters, in order (all pages).
    pub fn select<'a>(&self, rows: &'a [Stored], now: OffsetDateTime) -> Vec<&'a Stored> {
        let mut out: Vec<&Stored> = rows
            .iter()
            .filter(|s| self.view.holds(s, now) && self.passes(s))
            .collect();
        out.sort_by(|a, b| {
            let o = compare(self.sort, a, b).then_with(|| compare(Sort::Address, a, b));
            if self.descending { o.reverse() } else { o }
        });
        out
    }

    /// One page of `selected`: the rows, and how many pages there are.
    pub fn page_of<'a, 'b>(&self, selected: &'b [&'a Stored]) -> (&'b [&'a Stored], usize) {
        let pages = selected.len().div_ceil(self.per_page).max(1);
        let page = self.page.min(pages);
        let start = (page - 1) * self.per_page;
        let end = (start + self.per_page).min(selected.len());
        (&selected[start.min(end)..end], pages)
    }
}

fn text_matches(s: &Stored, text: &str) -> bool {
    let needle = text.to_lowercase();
    let hit = |h: &str| h.to_lowercase().contains(&needle);
    if hit(&s.key.address) || hit(&s.key.sni) {
        return true;
    }
    s.record.certificate.as_ref().is_some_and(|c| {
        hit(&c.subject_dn)
            || hit(&c.issuer_dn)
            || c.common_name.as_deref().is_some_and(hit)
            || c.san.iter().any(|n| hit(n))
    })
}

/// The address as numbers (IPv4 before IPv6), so 10.0.0.9 sorts before 10.0.0.10.
fn address_key(s: &Stored) -> (u8, u128, u16, String) {
    match s.key.address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => (4, u128::from(u32::from(a)), s.key.port, s.key.sni.clone()),
        Ok(std::net::IpAddr::V6(a)) => (6, u128::from(a), s.key.port, s.key.sni.clone()),
        Err(_) => (9, 0, s.key.port, s.key.address.clone()),
    }
}

/// A display name: the SNI, else the certificate's common name.
pub fn name_of(s: &Stored) -> String {
    if !s.key.sni.is_empty() {
        return s.key.sni.clone();
    }
    s.record
        .certificate
        .as_ref()
        .and_then(|c| c.common_name.clone())
        .unwrap_or_default()
}

fn compare(sort: Sort, a: &Stored, b: &Stored) -> Ordering {
    match sort {
        Sort::Address => address_key(a).cmp(&address_key(b)),
        Sort::Name => name_of(a).to_lowercase().cmp(&name_of(b).to_lowercase()),
        // Worst first reads ascending as "best first": ungraded last.
        Sort::Grade => {
            let rank = |s: &Stored| s.record.grade.as_ref().map_or(u8::MAX, |g| g.letter.rank());
            rank(a).cmp(&rank(b))
        }
        Sort::Expires => {
            let to = |s: &Stored| s.record.certificate.as_ref().map(|c| c.valid_to.clone());
            match (to(a), to(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        Sort::LastSeen => a.last_seen.cmp(&b.last_seen),
        Sort::Sensor => a.key.sensor.cmp(&b.key.sensor),
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::console::fixtures::{endpoint, now};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_query_round_trips_through_its_url() {
        let q = Query::from_pairs(&pairs(&[
            ("view", "expiring"),
            ("grade", "b"),
            ("protocol", "TLSv1.0"),
            ("q", "a b&c"),
            ("sort", "grade"),
            ("dir", "desc"),
            ("page", "3"),
        ]));
        assert_eq!(q.view, View::Expiring);
        assert_eq!(q.grade_at_most, Some(Letter::B));
        assert_eq!(q.text.as_deref(), Some("a b&c"));
        let href = q.href("/endpoints");
        assert_eq!(
            href,
            "/endpoints?view=expiring&grade=B&protocol=TLSv1.0&q=a%20b%26c&sort=grade&dir=desc&page=3"
        );
    }

    #[test]
    fn junk_in_the_url_falls_back_to_defaults() {
        let q = Query::from_pairs(&pairs(&[
            ("view", "<x>"),
            ("page", "-1"),
            ("per_page", "99999"),
            ("sort", "?"),
        ]));
        assert_eq!(q.view, View::Discovered);
        assert_eq!(q.page, 1);
        assert_eq!(q.per_page, MAX_PER_PAGE);
        assert_eq!(q.sort, Sort::Address);
    }

    #[test]
    fn views_split_by_category_expiry_and_gone() {
        let rows = vec![
            endpoint("10.0.0.2", 443, Category::Discovered, Some(Letter::A), 200),
            endpoint("10.0.0.10", 443, Category::Discovered, Some(Letter::F), 5),
            endpoint("10.0.0.3", 25, Category::Unsecured, None, 0),
            {
                let mut g = endpoint("10.0.0.4", 443, Category::Discovered, Some(Letter::B), -3);
                g.gone_at = Some("2026-01-01T00:00:00Z".into());
                g
            },
        ];
        let n = |v: View| {
            Query {
                view: v,
                ..Query::default()
            }
            .select(&rows, now())
            .len()
        };
        assert_eq!(n(View::Discovered), 2);
        assert_eq!(n(View::Unsecured), 1);
        assert_eq!(n(View::Automatable), 0);
        assert_eq!(n(View::Expiring), 1, "the gone one's expiry is not news");
        assert_eq!(n(View::Gone), 1);
        assert_eq!(n(View::All), 4);
        // Numeric address order: .2 before .10.
        let all = Query {
            view: View::All,
            ..Query::default()
        }
        .select(&rows, now());
        let order: Vec<&str> = all.iter().map(|s| s.key.address.as_str()).collect();
        assert_eq!(order, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10"]);
    }

    #[test]
    fn filters_grade_protocol_text_and_sort() {
        let mut weak = endpoint("10.0.0.1", 443, Category::Discovered, Some(Letter::C), 100);
        weak.record.protocols = Some([("TLSv1.0".to_string(), true)].into_iter().collect());
        let good = endpoint("10.0.0.2", 443, Category::Discovered, Some(Letter::A), 100);
        let rows = vec![weak, good];
        let q = |list: &[(&str, &str)]| Query::from_pairs(&pairs(list)).select(&rows, now()).len();
        assert_eq!(q(&[("grade", "B")]), 1, "C is at most B");
        assert_eq!(q(&[("grade", "A")]), 2);
        assert_eq!(q(&[("protocol", "TLSv1.0")]), 1);
        assert_eq!(q(&[("q", "HOST-10.0.0.2")]), 1, "case-insensitive on the subject");
        assert_eq!(q(&[("q", "test ca")]), 2, "the issuer");
        assert_eq!(q(&[("sensor", "local")]), 2);
        assert_eq!(q(&[("sensor", "seg-a")]), 0);
        let sorted = Query::from_pairs(&pairs(&[("sort", "grade"), ("dir", "desc")])).select(&rows, now());
        assert_eq!(sorted[0].key.address, "10.0.0.1", "worst first when descending");
    }

    #[test]
    fn pages_cover_every_row_once() {
        let rows: Vec<Stored> = (1..=7)
            .map(|i| endpoint(&format!("10.0.0.{i}"), 443, Category::Discovered, None, 100))
            .collect();
        let mut q = Query {
            per_page: 3,
            ..Query::default()
        };
        let sel = q.select(&rows, now());
        let (p1, pages) = q.page_of(&sel);
        assert_eq!((p1.len(), pages), (3, 3));
        q.page = 3;
        assert_eq!(q.page_of(&sel).0.len(), 1);
        q.page = 99;
        assert_eq!(q.page_of(&sel).0.len(), 1, "past the end shows the last page");
    }
}
