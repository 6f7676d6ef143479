//! `drover-scheduler migrate-store`: a SQLite store copied into an empty
//! PostgreSQL store, each table with one binary COPY, all in one
//! PostgreSQL transaction, then checked table by table. Rows are copied as stored: job specs keep their
//! secrets sealed (the same key opens them), runs, events and counters keep
//! their numbers and revisions, and the store keeps its identity (it is
//! the same store, moved).
//!
//! The columns copied are those both schemas have (SQLite's `table_info`
//! against PostgreSQL's `information_schema`), each converted to the
//! PostgreSQL column's type: a SQLite value that does not fit it is a
//! typed error, never a guess.

use super::read::COPIED_TABLES;
use super::{borrowed, Param, PostgresStore};
use crate::store::{SqliteStore, StoreError};
use rusqlite::types::Value;
use std::collections::BTreeMap;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// What was copied: rows per table, equal on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows per table.
    pub rows: BTreeMap<&'static str, i64>,
    /// The store's id (kept).
    pub store_id: String,
    /// The revision it was at.
    pub revision: i64,
}

/// Why the copy was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Either store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target already holds a store's data.
    #[error("the PostgreSQL store at {url} already holds {jobs} jobs and {runs} runs: migrate-store copies into an empty store only")]
    NotEmpty {
        /// The target, password removed.
        url: String,
        /// Its jobs.
        jobs: i64,
        /// Its runs.
        runs: i64,
    },
    /// A SQLite value that the PostgreSQL column cannot hold.
    #[error("{table}.{column}: stored value {value} does not fit PostgreSQL's {pg_type}")]
    Value {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The value, as SQLite holds it.
        value: String,
        /// The PostgreSQL column's type.
        pg_type: String,
    },
    /// After the copy, a table's rows differ in number.
    #[error("{table}: {sqlite} rows in SQLite but {postgres} in PostgreSQL after the copy")]
    Count {
        /// Table.
        table: &'static str,
        /// SQLite's rows.
        sqlite: i64,
        /// PostgreSQL's rows.
        postgres: i64,
    },
}

/// One table's copy: its name, columns, their COPY types, and its rows.
type TableRows = (String, Vec<String>, Vec<Type>, Vec<Vec<Param>>);

/// The COPY type of a PostgreSQL column type [`convert`] knows.
fn copy_type(pg_type: &str) -> Option<Type> {
    Some(match pg_type {
        "bigint" => Type::INT8,
        "integer" => Type::INT4,
        "boolean" => Type::BOOL,
        "text" => Type::TEXT,
        _ => return None,
    })
}

/// `value` as a parameter for a PostgreSQL column of `pg_type`.
fn convert(value: Value, pg_type: &str) -> Result<Param, Value> {
    Ok(match (pg_type, value) {
        ("bigint" | "integer", Value::Null) => Box::new(None::<i64>),
        ("bigint", Value::Integer(i)) => Box::new(i),
        ("integer", Value::Integer(i)) => {
            Box::new(i32::try_from(i).map_err(|_| Value::Integer(i))?)
        }
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("boolean", Value::Integer(i)) if i == 0 || i == 1 => Box::new(i == 1),
        ("text", Value::Null) => Box::new(None::<String>),
        ("text", Value::Text(t)) => Box::new(t),
        (_, other) => return Err(other),
    })
}

/// Copies the SQLite store into the (empty) PostgreSQL store and checks
/// every table's row count.
pub fn import(from: &SqliteStore, to: &PostgresStore) -> Result<ImportReport, ImportError> {
    let (jobs, runs) = to.call(|s| {
        Box::pin(async move {
            let row = s
                .client()
                .await?
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM jobs), (SELECT COUNT(*) FROM runs)",
                    &[],
                )
                .await?;
            Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?))
        })
    })?;
    if jobs > 0 || runs > 0 {
        return Err(ImportError::NotEmpty {
            url: to.display_url(),
            jobs,
            runs,
        });
    }
    let sqlite = from.connection();
    let wrap = StoreError::sqlite(from.path());
    // Every table's rows, read first (the source is not in use: its lock
    // is held), converted to the target's column types.
    let mut batches: Vec<TableRows> = Vec::new();
    for table in COPIED_TABLES {
        let pg_columns: Vec<(String, String)> = to.call(move |s| {
            Box::pin(async move {
                s.client()
                    .await?
                    .query(
                        "SELECT column_name::text, data_type::text FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = $1 \
                         ORDER BY ordinal_position",
                        &[table],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect()
            })
        })?;
        let sqlite_columns: Vec<String> = sqlite
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(wrap)?;
        let columns: Vec<(String, String)> = pg_columns
            .into_iter()
            .filter(|(name, _)| sqlite_columns.contains(name))
            .collect();
        let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
        let mut types = Vec::with_capacity(columns.len());
        for (name, pg_type) in &columns {
            types.push(copy_type(pg_type).ok_or_else(|| ImportError::Value {
                table: table.to_string(),
                column: name.clone(),
                value: "(any)".into(),
                pg_type: pg_type.clone(),
            })?);
        }
        let mut stmt = sqlite
            .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
            .map_err(wrap)?;
        let mut rows = stmt.query([]).map_err(wrap)?;
        let mut converted = Vec::new();
        while let Some(row) = rows.next().map_err(wrap)? {
            let mut params = Vec::with_capacity(columns.len());
            for (i, (name, pg_type)) in columns.iter().enumerate() {
                let value: Value = row.get(i).map_err(wrap)?;
                params.push(convert(value, pg_type).map_err(|value| ImportError::Value {
                    table: table.to_string(),
                    column: name.clone(),
                    value: format!("{value:?}"),
                    pg_type: pg_type.clone(),
                })?);
            }
            converted.push(params);
        }
        batches.push((table.to_string(), names, types, converted));
    }
    let single = |sql: &str| -> Result<Vec<Value>, StoreError> {
        sqlite
            .query_row(sql, [], |r| {
                (0..r.as_ref().column_count())
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(wrap)
    };
    let framework_id = match single("SELECT framework_id FROM framework WHERE id = 1")?.pop() {
        Some(Value::Text(t)) => Some(t),
        _ => None,
    };
    let int = |v: Option<Value>| match v {
        Some(Value::Integer(i)) => i,
        _ => 0,
    };
    let revision = int(single("SELECT value FROM revision WHERE id = 1")?.pop());
    let event_seq = int(single("SELECT value FROM event_seq WHERE id = 1")?.pop());
    let mut identity = single("SELECT store_id, created_at_ms FROM store_info WHERE id = 1")?;
    let created_at = int(identity.pop());
    let store_id = match identity.pop() {
        Some(Value::Text(t)) => t,
        _ => String::new(),
    };
    let id = store_id.clone();
    to.call(move |s| {
        Box::pin(async move {
            let client = s.client().await?;
            let tx = client.transaction().await?;
            // The empty target's own Default experiment gives way to the
            // source's (the same id).
            tx.execute("DELETE FROM kfp_experiments", &[]).await?;
            for (table, names, types, rows) in &batches {
                let sink = tx
                    .copy_in(&format!(
                        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                        names.join(", ")
                    ))
                    .await?;
                let writer = BinaryCopyInWriter::new(sink, types);
                let mut writer = std::pin::pin!(writer);
                for row in rows {
                    writer.as_mut().write(&borrowed(row)).await?;
                }
                writer.finish().await?;
            }
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('workflow_events', 'seq'), \
                 GREATEST((SELECT MAX(seq) FROM workflow_events), 1))",
                &[],
            )
            .await?;
            tx.execute(
                "UPDATE framework SET framework_id = $1 WHERE id = 1",
                &[&framework_id],
            )
            .await?;
            tx.execute("UPDATE revision SET value = $1 WHERE id = 1", &[&revision])
                .await?;
            tx.execute(
                "UPDATE event_seq SET value = $1 WHERE id = 1",
                &[&event_seq],
            )
            .await?;
            if !id.is_empty() {
                tx.execute(
                    "UPDATE store_info SET store_id = $1, created_at_ms = $2 WHERE id = 1",
                    &[&id, &created_at],
                )
                .await?;
            }
            tx.commit().await
        })
    })?;
    let copied = to.table_counts()?;
    for (table, postgres) in &copied {
        let sqlite: i64 = sqlite
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(wrap)?;
        if sqlite != *postgres {
            return Err(ImportError::Count {
                table,
                sqlite,
                postgres: *postgres,
            });
        }
    }
    Ok(ImportReport {
        rows: copied,
        store_id,
        revision,
    })
}
