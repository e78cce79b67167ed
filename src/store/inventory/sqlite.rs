//! The SQLite side of [`Exec`]: statements run on a connection or an open
//! transaction of the inventory.

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{InventoryError, db_error};
use crate::store::exec::Exec;
use crate::store::row::Value;
use crate::store::sql::Dialect;

/// A connection (or a transaction, through `Deref`) of the store at `path`.
pub(super) struct Sqlite<'a> {
    pub conn: &'a Connection,
    pub path: &'a str,
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::from(rusqlite::types::Null),
            Value::Int(n) => ToSqlOutput::from(*n),
            Value::Text(s) => ToSqlOutput::from(s.as_str()),
            Value::Bool(b) => ToSqlOutput::from(*b),
        })
    }
}

fn cell(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

impl Exec for Sqlite<'_> {
    type Error = InventoryError;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, InventoryError> {
        let db = db_error(self.path);
        let n = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
            .map_err(db)?;
        Ok(n as u64)
    }

    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, InventoryError> {
        let db = db_error(self.path);
        let mut stmt = self.conn.prepare_cached(sql).map_err(&db)?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..width).map(|i| r.get_ref(i).map(cell)).collect()
            })
            .map_err(&db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }
}

impl super::Inventory {
    /// Runs `f` in one immediate transaction, committed when it returns `Ok`
    /// (the fleet's statements).
    pub fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Exec<Error = InventoryError>) -> Result<(), InventoryError>,
    ) -> Result<(), InventoryError> {
        let db = db_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&db)?;
        f(&mut Sqlite {
            conn: &tx,
            path: &self.path,
        })?;
        tx.commit().map_err(db)
    }
}
