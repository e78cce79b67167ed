//! The PostgreSQL side of [`Exec`]: statements run on a client or an open
//! transaction, each prepared once per connection ([`Prepared`]): a
//! statement prepared again for every batch was one more round trip each.

use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Statement};

use crate::store::exec::Exec;
use crate::store::inventory::InventoryError;
use crate::store::row::Value;
use crate::store::sql::Dialect;

/// The server's own words when it sent any (`db error` alone says nothing).
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Statements prepared on one connection, by their text. Bounded: a
/// batch's read and write have a text per size, so a long-running central
/// would otherwise keep every size it ever saw.
#[derive(Default)]
pub(super) struct Prepared(HashMap<String, Statement>);

/// Statements kept per connection before the cache starts over.
const PREPARED_MAX: usize = 64;

pub(super) struct Pg<'a, C> {
    client: &'a mut C,
    prepared: &'a mut Prepared,
    /// The URL without its password, for errors.
    shown: &'a str,
}

impl<'a, C: GenericClient> Pg<'a, C> {
    pub fn new(client: &'a mut C, prepared: &'a mut Prepared, shown: &'a str) -> Self {
        Pg {
            client,
            prepared,
            shown,
        }
    }

    fn error(&self, what: String) -> InventoryError {
        InventoryError::Store(format!("{}: {what}", self.shown))
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, InventoryError> {
        if let Some(s) = self.prepared.0.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(|e| self.error(describe(&e)))?;
        if self.prepared.0.len() >= PREPARED_MAX {
            // Dropping a statement closes it on the server.
            self.prepared.0.clear();
        }
        self.prepared.0.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// The statement and its parameters typed as the server expects them
    /// (an `INTEGER` column takes an `i32`, a NULL a typed `None`).
    fn bind<'v>(
        &mut self,
        sql: &str,
        params: &'v [Value],
    ) -> Result<(Statement, Vec<Box<dyn ToSql + Sync + 'v>>), InventoryError> {
        let stmt = self.prepare(sql)?;
        let bound = params
            .iter()
            .zip(stmt.params())
            .map(|(v, ty)| bind(v, ty).map_err(|e| self.error(e)))
            .collect::<Result<_, _>>()?;
        Ok((stmt, bound))
    }
}

fn bind<'v>(v: &'v Value, ty: &Type) -> Result<Box<dyn ToSql + Sync + 'v>, String> {
    let range = |n: &i64| format!("{n} does not fit a {ty} parameter");
    Ok(match v {
        Value::Text(s) => Box::new(s.as_str()),
        Value::Bool(b) => Box::new(*b),
        Value::Int(n) if *ty == Type::INT4 => Box::new(i32::try_from(*n).map_err(|_| range(n))?),
        Value::Int(n) if *ty == Type::INT2 => Box::new(i16::try_from(*n).map_err(|_| range(n))?),
        Value::Int(n) => Box::new(*n),
        Value::Null if *ty == Type::INT4 => Box::new(None::<i32>),
        Value::Null if *ty == Type::INT8 => Box::new(None::<i64>),
        Value::Null if *ty == Type::BOOL => Box::new(None::<bool>),
        Value::Null => Box::new(None::<&str>),
    })
}

fn cell(row: &postgres::Row, i: usize) -> Result<Value, postgres::Error> {
    let ty = row.columns()[i].type_();
    let int = |n: Option<i64>| n.map_or(Value::Null, Value::Int);
    Ok(if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool)
    } else if *ty == Type::INT2 {
        int(row.try_get::<_, Option<i16>>(i)?.map(i64::from))
    } else if *ty == Type::INT4 {
        int(row.try_get::<_, Option<i32>>(i)?.map(i64::from))
    } else if *ty == Type::INT8 {
        int(row.try_get::<_, Option<i64>>(i)?)
    } else {
        row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
    })
}

impl<C: GenericClient> Exec for Pg<'_, C> {
    type Error = InventoryError;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, InventoryError> {
        let (stmt, bound) = self.bind(sql, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b as _).collect();
        self.client.execute(&stmt, &refs).map_err(|e| self.error(describe(&e)))
    }

    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, InventoryError> {
        let (stmt, bound) = self.bind(sql, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b as _).collect();
        let rows = self.client.query(&stmt, &refs).map_err(|e| self.error(describe(&e)))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(describe(&e)))
    }
}
