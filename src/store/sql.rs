//! The statements both stores run on the `endpoints` and `batches` tables,
//! written once and printed in either dialect.
//!
//! SQLite and PostgreSQL agree on everything these statements need
//! (`ON CONFLICT … DO UPDATE SET … = excluded.…`, `coalesce`, `CASE`)
//! except how a parameter is written (`?1` or `$1`) and how a field of the
//! JSON record is read. Only the sensor's own SQLite store has the
//! `agents` table (agents seen through its proxy).

use crate::store::query::Filter;
use crate::store::row::{COLUMNS, KEY_COLUMNS, Value};

/// The fleet's schema step (issue 19), the same text in both stores: kept
/// apart from the migration lists so that its step number can move when
/// other steps land before it (the statement never changes once released).
///
/// The fleet tables: enrolled sensors (a hash of their credential, never the
/// credential), one-time enrollment tokens (hashed too), scan definitions,
/// and each (definition, sensor)'s last run. Portable SQL: the same text
/// is SQLite's step and PostgreSQL's.
pub const FLEET_TABLES: &str = "CREATE TABLE fleet_sensors (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        credential_hash TEXT NOT NULL UNIQUE, state TEXT NOT NULL DEFAULT 'active',
        version TEXT, enrolled_at TEXT NOT NULL, last_seen TEXT, heartbeat TEXT,
        offline INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE fleet_enrollment_tokens (token_hash TEXT PRIMARY KEY, created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL, used_at TEXT, used_by TEXT);
     CREATE TABLE fleet_scans (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, definition TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'active', revision INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE fleet_runs (scan TEXT NOT NULL, sensor TEXT NOT NULL, revision INTEGER NOT NULL,
        state TEXT NOT NULL, reason TEXT, at TEXT NOT NULL, PRIMARY KEY (scan, sensor));";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `n`th parameter (from 1).
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn params(self, from: usize, count: usize) -> String {
        (from..from + count)
            .map(|n| self.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether an agent was seen on the row's host (`e`), and the join
    /// that tells.
    fn agent(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Sqlite => (
                "a.address IS NOT NULL",
                " LEFT JOIN agents a ON a.address = e.address AND e.sensor = ''",
            ),
            Dialect::Postgres => ("FALSE", ""),
        }
    }

    /// The record's grade letter, NULL when ungraded.
    fn grade_letter(self) -> &'static str {
        match self {
            Dialect::Sqlite => "json_extract(e.record, '$.grade.letter')",
            Dialect::Postgres => "(e.record::jsonb #>> '{grade,letter}')",
        }
    }
}

fn columns(prefix: &str) -> String {
    COLUMNS.map(|c| format!("{prefix}{c}")).join(", ")
}

/// The conditions on plain columns that narrow a query in SQL (the rest of
/// the filter needs the decoded row: [`Filter::matches`]), with their
/// parameters numbered from `first`.
pub fn where_clause(d: Dialect, filter: &Filter, first: usize) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(sensor) = &filter.sensor {
        conditions.push(format!("e.sensor = {}", d.param(first + params.len())));
        params.push(Value::Text(sensor.clone()));
    }
    if filter.active_only {
        conditions.push("e.gone_at IS NULL".to_string());
    }
    if conditions.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", conditions.join(" AND ")), params)
    }
}

/// Where [`select`] puts whether an agent was seen on the host: after the
/// [`COLUMNS`].
pub const SELECTED_AGENT: usize = COLUMNS.len();

/// Rows matching the SQL part of `filter`: the [`COLUMNS`], then whether an
/// agent was seen on the host; ordered by sensor, address, port and SNI.
pub fn select(d: Dialect, filter: &Filter) -> (String, Vec<Value>) {
    let (agent, join) = d.agent();
    let (wheres, params) = where_clause(d, filter, 1);
    let sql = format!(
        "SELECT {}, {agent} FROM endpoints e{join}{wheres} ORDER BY e.sensor, e.address, e.port, e.sni",
        columns("e.")
    );
    (sql, params)
}

/// Active endpoints grouped by category (as [`select`] reads it) and grade
/// letter (`none` when ungraded): category, letter, count.
pub fn counts(d: Dialect) -> String {
    let (agent, join) = d.agent();
    format!(
        "SELECT CASE WHEN {agent} AND e.category = 'discovered' THEN 'automatable' ELSE e.category END,
                coalesce({}, 'none'), count(*)
         FROM endpoints e{join} WHERE e.gone_at IS NULL GROUP BY 1, 2",
        d.grade_letter()
    )
}

/// The row with a key, bound as [`KEY_COLUMNS`].
pub fn load(d: Dialect) -> String {
    let wheres = KEY_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", d.param(i + 1)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("SELECT {} FROM endpoints WHERE {wheres}", columns(""))
}

/// Inserts a row bound as [`COLUMNS`], or replaces the one with its key.
pub fn upsert(d: Dialect) -> String {
    upsert_many(d, 1)
}

/// Rows per statement of [`load_many`] and [`upsert_many`]: 500 × 12
/// parameters stays under both stores' limits (SQLite 32 766, PostgreSQL
/// 65 535) and a report batch's default size is one statement.
pub const ROWS_PER_STATEMENT: usize = 500;

/// The rows of one sensor whose address, port and SNI are each among
/// the given ones: the sensor bound first, then `addresses`, `ports` and
/// `snis` values. One statement reads every row a batch names (and maybe a
/// few more: another port of a named address; the caller keeps the keys
/// it asked for). Plain `IN` lists are `= ANY(…)` to PostgreSQL, which
/// walks the primary key or the sensor's index, whichever is cheaper; a
/// `(address, port, sni) IN (VALUES …)` read was planned as a hash join
/// over the whole table.
pub fn load_many(d: Dialect, addresses: usize, ports: usize, snis: usize) -> String {
    let a = 2;
    let p = a + addresses;
    let s = p + ports;
    format!(
        "SELECT {} FROM endpoints WHERE sensor = {} AND address IN ({}) AND port IN ({}) AND sni IN ({})",
        columns(""),
        d.param(1),
        d.params(a, addresses),
        d.params(p, ports),
        d.params(s, snis)
    )
}

/// Inserts `n` rows, each bound as [`COLUMNS`] one after the other, or
/// replaces the ones with their keys: one statement for a whole batch (the
/// keys must be distinct: PostgreSQL refuses to update a row twice in one
/// statement).
pub fn upsert_many(d: Dialect, n: usize) -> String {
    let rows = (0..n)
        .map(|i| format!("({})", d.params(i * COLUMNS.len() + 1, COLUMNS.len())))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO endpoints({}) VALUES {rows} ON CONFLICT({}) DO UPDATE SET {}",
        columns(""),
        KEY_COLUMNS.join(", "),
        replaced()
    )
}

/// `SET` of every column but the key, to the inserted row's value.
fn replaced() -> String {
    COLUMNS
        .iter()
        .filter(|c| !KEY_COLUMNS.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Claims a batch (batch_id, sensor, applied_at, events); changes no row
/// when it was claimed before.
pub fn claim_batch(d: Dialect) -> String {
    format!(
        "INSERT INTO batches(batch_id, sensor, applied_at, events, digest) VALUES ({}) ON CONFLICT(batch_id) DO NOTHING",
        d.params(1, 5)
    )
}

/// The content digest an applied batch was recorded with (NULL before digests were kept).
pub fn batch_digest(d: Dialect) -> String {
    format!("SELECT digest FROM batches WHERE batch_id = {}", d.param(1))
}

/// Makes the batches of one sensor apply one at a time where several
/// connections write at once (PostgreSQL), so that a row read while
/// applying one is still the row when it is written; SQLite's write
/// transaction already holds the whole file. Bound: [`sensor_lock_key`].
pub fn lock_sensor(d: Dialect) -> Option<String> {
    match d {
        Dialect::Sqlite => None,
        // The migrations hold the one-key lock 48999; two keys are another space.
        Dialect::Postgres => Some(format!("SELECT pg_advisory_xact_lock(48999, {})", d.param(1))),
    }
}

/// The second key of [`lock_sensor`]: 32 bits of SHA-256 of the sensor id.
pub fn sensor_lock_key(sensor: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(sensor.as_bytes());
    i64::from(i32::from_be_bytes([h[0], h[1], h[2], h[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_narrows_by_its_plain_columns_in_either_dialect() {
        let f = Filter {
            sensor: Some("seg-a".into()),
            active_only: true,
            tag: Some("dmz".into()),
            ..Filter::default()
        };
        let (sql, params) = where_clause(Dialect::Postgres, &f, 1);
        assert_eq!(sql, " WHERE e.sensor = $1 AND e.gone_at IS NULL");
        assert_eq!(params, vec![Value::Text("seg-a".into())]);
        let (sql, _) = where_clause(Dialect::Sqlite, &f, 3);
        assert_eq!(sql, " WHERE e.sensor = ?3 AND e.gone_at IS NULL");
        assert_eq!(
            where_clause(Dialect::Sqlite, &Filter::default(), 1),
            (String::new(), vec![])
        );
    }

    #[test]
    fn only_sqlite_joins_the_agents() {
        let (sqlite, _) = select(Dialect::Sqlite, &Filter::default());
        assert!(sqlite.contains("LEFT JOIN agents a"), "{sqlite}");
        let (pg, _) = select(Dialect::Postgres, &Filter::default());
        assert!(!pg.contains("agents") && pg.contains("e.record, FALSE FROM"), "{pg}");
        assert!(counts(Dialect::Postgres).contains("#>> '{grade,letter}'"));
    }

    #[test]
    fn writes_bind_every_column_and_replace_all_but_the_key() {
        let up = upsert(Dialect::Postgres);
        assert!(up.contains("$12) ON CONFLICT(address, port, sni, sensor) DO UPDATE SET profile = excluded.profile"));
        assert!(up.ends_with("record = excluded.record"), "{up}");
        assert!(!up.contains("address = excluded"));
        assert!(load(Dialect::Sqlite).ends_with("WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ?4"));
        assert!(
            claim_batch(Dialect::Sqlite)
                .contains("digest) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(batch_id) DO NOTHING")
        );
        assert_eq!(upsert_many(Dialect::Sqlite, 1), upsert(Dialect::Sqlite));
        let two = upsert_many(Dialect::Postgres, 2);
        assert!(
            two.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13, "),
            "{two}"
        );
        assert!(two.contains("$24) ON CONFLICT(address, port, sni, sensor)"), "{two}");
        assert!(
            load_many(Dialect::Postgres, 2, 1, 1)
                .ends_with("WHERE sensor = $1 AND address IN ($2, $3) AND port IN ($4) AND sni IN ($5)")
        );
        assert!(load_many(Dialect::Sqlite, 1, 2, 1).ends_with("address IN (?2) AND port IN (?3, ?4) AND sni IN (?5)"));
        assert_eq!(
            batch_digest(Dialect::Postgres),
            "SELECT digest FROM batches WHERE batch_id = $1"
        );
    }
}
