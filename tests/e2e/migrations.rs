//! The SQLite and PostgreSQL migrations describe one schema in two dialects. This applies
//! both (SQLite into a temp file, Postgres into a fresh schema) and compares what the databases
//! report: tables, columns (type family, nullability, default), primary keys, unique
//! constraints and indexes, foreign keys and named indexes. A difference fails with one line
//! per table/column that disagrees, so a migration added to one directory only, or written
//! slightly differently in the other, is caught before it reaches a user.
//!
//! Not compared: CHECK constraints (each dialect rewrites the expression its own way) and
//! sqlx's `_sqlx_migrations` bookkeeping table.

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::collections::BTreeMap;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// One database's schema as comparable facts: key (what the fact is about) → value (what the
/// database says about it). Facts that are pure presence (a unique column set, a foreign key)
/// have an empty value.
type Schema = BTreeMap<String, String>;

const IGNORED_TABLES: &[&str] = &["_sqlx_migrations"];

/// A Postgres foreign key: table, columns, referenced table, referenced columns, on-delete.
type ForeignKeyRow = (String, Vec<String>, String, Vec<String>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.path().join("drift.db"))
                .create_if_missing(true)
                .foreign_keys(true),
        )
        .await
        .expect("sqlite opens");
    SQLITE_MIGRATIONS.run(&sqlite).await.expect("sqlite migrations apply");

    let (postgres, admin, schema_name) = fresh_postgres().await;
    POSTGRES_MIGRATIONS
        .run(&postgres)
        .await
        .expect("postgres migrations apply");

    let lite = sqlite_schema(&sqlite).await;
    let pg = postgres_schema(&postgres).await;
    assert!(
        lite.contains_key("table workspaces") && lite.keys().filter(|k| k.starts_with("table ")).count() >= 10,
        "the SQLite schema looks empty; is the introspection broken? {lite:#?}"
    );
    let drift = diff(&lite, &pg);

    // The comparison itself must notice drift: a column only one side has is named.
    sqlx::query("ALTER TABLE connections ADD COLUMN drift_probe TEXT")
        .execute(&sqlite)
        .await
        .expect("probe column");
    let probed = diff(&sqlite_schema(&sqlite).await, &pg);

    postgres.close().await;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema_name} CASCADE")))
        .execute(&admin)
        .await;
    if let Err(e) = dropped {
        eprintln!("could not drop test schema {schema_name}: {e}");
    }

    assert!(
        drift.is_empty(),
        "migrations/sqlite and migrations/postgres disagree ({} differences):\n  {}",
        drift.len(),
        drift.join("\n  ")
    );
    assert!(
        probed.iter().any(|d| d.contains("connections.drift_probe")),
        "a column present only in SQLite was not reported: {probed:?}"
    );
}

/// A pool on a new, empty schema of the test database (its `search_path`), plus a pool on the
/// database itself to drop the schema afterwards.
async fn fresh_postgres() -> (PgPool, PgPool, String) {
    let base = nexum_tests::app::postgres_url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is required for the migrations test (set NEXUM_TEST_POSTGRES_URL): {e}")
        });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema_name = format!("drift_{nanos:x}_{:x}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema_name}")))
        .execute(&admin)
        .await
        .expect("schema created");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema_name}");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("postgres schema opens");
    (pool, admin, schema_name)
}

/// Every difference between the two schemas, one readable line each.
fn diff(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for (key, lite) in sqlite {
        match postgres.get(key) {
            None => out.push(format!("{key}: only in sqlite {lite}").trim_end().to_string()),
            Some(pg) if pg != lite => out.push(format!("{key}: sqlite says `{lite}`, postgres says `{pg}`")),
            Some(_) => {}
        }
    }
    for (key, pg) in postgres {
        if !sqlite.contains_key(key) {
            out.push(format!("{key}: only in postgres {pg}").trim_end().to_string());
        }
    }
    out
}

/// A column as compared: its type family, nullability and default.
fn column_fact(family: &str, nullable: bool, default: Option<&str>) -> String {
    let mut fact = format!("{family} {}", if nullable { "null" } else { "not null" });
    match default.map(normalize_default) {
        None => {}
        Some(Some(literal)) => fact.push_str(&format!(" default {literal}")),
        // An expression (a function call, a sequence): compare only that there is one.
        Some(None) => fact.push_str(" default <expression>"),
    }
    fact
}

/// The literal a default boils down to (`'{}'::text` and `'{}'` → `'{}'`; `(0)` → `0`), or
/// `None` when it is an expression the two dialects spell differently.
fn normalize_default(default: &str) -> Option<String> {
    let mut d = default.trim();
    loop {
        let before = d;
        if d.starts_with('(') && d.ends_with(')') {
            d = d[1..d.len() - 1].trim();
        }
        // Postgres appends casts: `'x'::text`, `0::bigint`, `'a'::character varying`.
        if let Some(at) = d.rfind("::")
            && d[at + 2..]
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '_')
        {
            d = d[..at].trim();
        }
        if d == before {
            break;
        }
    }
    let is_string = d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'');
    let is_number = !d.is_empty()
        && d.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    let lower = d.to_ascii_lowercase();
    if is_string || is_number {
        Some(d.to_string())
    } else if matches!(lower.as_str(), "true" | "false" | "null") {
        Some(lower)
    } else {
        None
    }
}

/// The type family of a SQLite declared type (its affinity rules, plus boolean/json/timestamp
/// when the declaration says so).
fn sqlite_family(declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    let family = if t.contains("INT") {
        "integer"
    } else if t.contains("BOOL") {
        "boolean"
    } else if t.contains("JSON") {
        "json"
    } else if t.contains("TIMESTAMP") || t.contains("DATETIME") {
        "timestamp"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") || t == "UUID" {
        "text"
    } else if t.contains("BLOB") || t.is_empty() {
        "blob"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "real"
    } else if t.contains("NUMERIC") || t.contains("DECIMAL") {
        "numeric"
    } else {
        return format!("other({declared})");
    };
    family.to_string()
}

/// The type family of a PostgreSQL `information_schema.columns.data_type`.
fn postgres_family(data_type: &str) -> String {
    match data_type {
        "bigint" | "integer" | "smallint" => "integer",
        "text" | "character varying" | "character" | "uuid" => "text",
        "bytea" => "blob",
        "real" | "double precision" => "real",
        "numeric" => "numeric",
        "boolean" => "boolean",
        "json" | "jsonb" => "json",
        t if t.starts_with("timestamp") => "timestamp",
        other => return format!("other({other})"),
    }
    .to_string()
}

fn columns_list(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}

fn sorted(columns: &[String]) -> Vec<String> {
    let mut columns = columns.to_vec();
    columns.sort();
    columns
}

fn on_delete(action: &str) -> &'static str {
    match action.to_ascii_uppercase().as_str() {
        "CASCADE" | "C" => "cascade",
        "SET NULL" | "N" => "set null",
        "SET DEFAULT" | "D" => "set default",
        "RESTRICT" | "R" => "restrict",
        _ => "no action",
    }
}

async fn sqlite_schema(db: &SqlitePool) -> Schema {
    let mut schema = Schema::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(db)
    .await
    .expect("sqlite tables");
    let mut primary_keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table,) in tables.iter().filter(|(t,)| !IGNORED_TABLES.contains(&t.as_str())) {
        schema.insert(format!("table {table}"), String::new());

        let columns: Vec<(String, String, i64, Option<String>, i64)> =
            sqlx::query_as(r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid"#)
                .bind(table)
                .fetch_all(db)
                .await
                .expect("sqlite columns");
        let mut pk: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, default, pk_pos) in columns {
            // SQLite lets a non-INTEGER PRIMARY KEY column hold NULL unless it says NOT NULL
            // (a documented legacy quirk); the app never writes one, and Postgres refuses it,
            // so a primary-key column counts as NOT NULL on both sides.
            let nullable = not_null == 0 && pk_pos == 0;
            schema.insert(
                format!("column {table}.{name}"),
                column_fact(&sqlite_family(&declared), nullable, default.as_deref()),
            );
            if pk_pos > 0 {
                pk.push((pk_pos, name));
            }
        }
        pk.sort();
        let pk: Vec<String> = pk.into_iter().map(|(_, c)| c).collect();
        if !pk.is_empty() {
            schema.insert(format!("primary key {table}"), columns_list(&pk));
        }
        primary_keys.insert(table.clone(), pk);

        // origin: 'pk' primary key, 'u' UNIQUE constraint, 'c' CREATE [UNIQUE] INDEX.
        let indexes: Vec<(String, i64, String)> =
            sqlx::query_as(r#"SELECT name, "unique", origin FROM pragma_index_list(?1)"#)
                .bind(table)
                .fetch_all(db)
                .await
                .expect("sqlite indexes");
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let cols: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .bind(&index)
                .fetch_all(db)
                .await
                .expect("sqlite index columns");
            let cols: Vec<String> = cols.into_iter().map(|(c,)| c).collect();
            if unique != 0 {
                schema.insert(
                    format!("unique {table} {}", columns_list(&sorted(&cols))),
                    String::new(),
                );
            }
            if origin == "c" {
                let kind = if unique != 0 { "unique index" } else { "index" };
                schema.insert(
                    format!("index {table} {}", columns_list(&cols)),
                    format!("{kind} {index}"),
                );
            }
        }
    }
    for (table,) in tables.iter().filter(|(t,)| !IGNORED_TABLES.contains(&t.as_str())) {
        let fks: Vec<(i64, i64, String, String, Option<String>, String)> = sqlx::query_as(
            r#"SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq"#,
        )
        .bind(table)
        .fetch_all(db)
        .await
        .expect("sqlite foreign keys");
        let mut by_id: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
        for (id, seq, target, from, to, delete) in fks {
            let entry = by_id
                .entry(id)
                .or_insert_with(|| (Vec::new(), target.clone(), Vec::new(), delete.clone()));
            entry.0.push(from);
            // `REFERENCES t` without columns means t's primary key.
            let to = to.unwrap_or_else(|| {
                primary_keys
                    .get(&target)
                    .and_then(|pk| pk.get(seq as usize))
                    .cloned()
                    .unwrap_or_default()
            });
            entry.2.push(to);
        }
        for (from, target, to, delete) in by_id.into_values() {
            schema.insert(
                format!("foreign key {table} {}", columns_list(&from)),
                format!("→ {target} {} on delete {}", columns_list(&to), on_delete(&delete)),
            );
        }
    }
    schema
}

async fn postgres_schema(db: &PgPool) -> Schema {
    let mut schema = Schema::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .expect("postgres tables");
    for (table,) in tables.iter().filter(|(t,)| !IGNORED_TABLES.contains(&t.as_str())) {
        schema.insert(format!("table {table}"), String::new());
    }

    let columns: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(db)
    .await
    .expect("postgres columns");
    for (table, name, data_type, nullable, default) in columns {
        if IGNORED_TABLES.contains(&table.as_str()) {
            continue;
        }
        schema.insert(
            format!("column {table}.{name}"),
            column_fact(&postgres_family(&data_type), nullable == "YES", default.as_deref()),
        );
    }

    // Every index: primary, unique, and whether a constraint (PRIMARY KEY / UNIQUE) owns it
    // or it was made with CREATE INDEX.
    let indexes: Vec<(String, String, bool, bool, bool, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, ix.indisprimary, ix.indisunique, \
                EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid AND c.contype IN ('p', 'u')), \
                array_agg(a.attname::text ORDER BY k.ord) \
         FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() \
         GROUP BY t.relname, i.relname, ix.indisprimary, ix.indisunique, ix.indexrelid",
    )
    .fetch_all(db)
    .await
    .expect("postgres indexes");
    for (table, index, primary, unique, constraint, cols) in indexes {
        if IGNORED_TABLES.contains(&table.as_str()) {
            continue;
        }
        if primary {
            schema.insert(format!("primary key {table}"), columns_list(&cols));
            continue;
        }
        if unique {
            schema.insert(
                format!("unique {table} {}", columns_list(&sorted(&cols))),
                String::new(),
            );
        }
        if !constraint {
            let kind = if unique { "unique index" } else { "index" };
            schema.insert(
                format!("index {table} {}", columns_list(&cols)),
                format!("{kind} {index}"),
            );
        }
    }

    let fks: Vec<ForeignKeyRow> = sqlx::query_as(
        "SELECT cl.relname::text, \
                (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), \
                rt.relname::text, \
                (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum), \
                c.confdeltype::text \
         FROM pg_constraint c \
         JOIN pg_class cl ON cl.oid = c.conrelid \
         JOIN pg_class rt ON rt.oid = c.confrelid \
         JOIN pg_namespace n ON n.oid = cl.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(db)
    .await
    .expect("postgres foreign keys");
    for (table, from, target, to, delete) in fks {
        if IGNORED_TABLES.contains(&table.as_str()) {
            continue;
        }
        schema.insert(
            format!("foreign key {table} {}", columns_list(&from)),
            format!("→ {target} {} on delete {}", columns_list(&to), on_delete(&delete)),
        );
    }
    schema
}

#[test]
fn dialect_types_and_defaults_normalize_to_one_family() {
    for (lite, pg) in [
        ("BIGINT", "bigint"),
        ("INTEGER", "integer"),
        ("TEXT", "text"),
        ("VARCHAR(64)", "character varying"),
        ("BLOB", "bytea"),
        ("REAL", "double precision"),
        ("BOOLEAN", "boolean"),
    ] {
        assert_eq!(sqlite_family(lite), postgres_family(pg), "{lite} vs {pg}");
    }
    assert_ne!(sqlite_family("TEXT"), postgres_family("bytea"));
    assert_eq!(normalize_default("'unsigned'::text").as_deref(), Some("'unsigned'"));
    assert_eq!(normalize_default("'{}'").as_deref(), Some("'{}'"));
    assert_eq!(normalize_default("(0)").as_deref(), Some("0"));
    assert_eq!(normalize_default("'0'::bigint").as_deref(), Some("'0'"));
    assert_eq!(normalize_default("now()"), None);
}
