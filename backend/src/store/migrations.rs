//! The schema, as numbered migrations applied in order at start (ours, not sqlx's `migrate!`, which
//! needs the files at build time and has no dialects). Each migration has the same meaning on both
//! databases; the SQL differs only where SQLite and PostgreSQL spell a thing differently (the audit id,
//! the append-only triggers). Applied ones are listed in `claimlink_migrations`.

use sqlx::AnyPool;

use super::{Dialect, StoreError};

/// One migration: its number, what it does, and its statements per dialect.
pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static [&'static str],
    pub postgres: &'static [&'static str],
}

const CLAIMS: &str = "CREATE TABLE claims (
    certificate_id TEXT PRIMARY KEY NOT NULL,
    serial TEXT NOT NULL,
    installer TEXT NOT NULL,
    template TEXT NOT NULL,
    parameters TEXT NOT NULL,
    site TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    device_certificate_id TEXT,
    reprovision BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ISSUED', 'CONSUMED', 'CONFIRMED', 'REVOKED')),
    updated_at BIGINT NOT NULL
)";
const CLAIMS_BY_SERIAL: &str = "CREATE INDEX claims_by_serial ON claims (serial, status)";
const CLAIMS_BY_THING: &str = "CREATE INDEX claims_by_thing ON claims (thing_name)";
// One device per serial: at most one consumed (or confirmed) claim that was not an approved reprovision.
const ONE_DEVICE_PER_SERIAL: &str = "CREATE UNIQUE INDEX one_device_per_serial ON claims (serial)
    WHERE status IN ('CONSUMED', 'CONFIRMED') AND reprovision = 0";
#[cfg(test)]
const AUDIT_COLUMNS: &str = "at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    certificate_id TEXT,
    serial TEXT,
    site TEXT,
    template TEXT,
    status TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
)";

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "claims and the append-only audit trail",
    sqlite: &[
        CLAIMS,
        CLAIMS_BY_SERIAL,
        CLAIMS_BY_THING,
        ONE_DEVICE_PER_SERIAL,
        AUDIT_SQLITE,
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    ],
    postgres: &[
        CLAIMS,
        CLAIMS_BY_SERIAL,
        CLAIMS_BY_THING,
        ONE_DEVICE_PER_SERIAL,
        AUDIT_POSTGRES,
        "CREATE FUNCTION claimlink_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$",
        "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
         FOR EACH ROW EXECUTE FUNCTION claimlink_audit_append_only()",
    ],
}];

// `concat!` takes only literals: the audit table is spelled out once per dialect, and a test checks
// that both spellings end with the same AUDIT_COLUMNS.
const AUDIT_SQLITE: &str = "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    certificate_id TEXT,
    serial TEXT,
    site TEXT,
    template TEXT,
    status TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
)";

const AUDIT_POSTGRES: &str = "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    certificate_id TEXT,
    serial TEXT,
    site TEXT,
    template TEXT,
    status TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
)";

/// Applies the migrations not yet applied, all in one transaction, so that instances starting together
/// apply each once: PostgreSQL serialises them with an advisory lock taken first (even `CREATE TABLE IF
/// NOT EXISTS` races otherwise); SQLite with its write lock, which the first statement (a write) takes,
/// waiting behind another instance's.
pub(super) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7395641, 1)")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS claimlink_migrations (
            version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let mut applied_now = Vec::new();
    for m in MIGRATIONS {
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM claimlink_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_some() {
            continue;
        }
        let statements = match dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        for statement in statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO claimlink_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(super::now_secs())
        .execute(&mut *tx)
        .await?;
        applied_now.push(m);
    }
    tx.commit().await?;
    for m in applied_now {
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_create_the_same_audit_columns() {
        assert!(AUDIT_SQLITE.ends_with(AUDIT_COLUMNS));
        assert!(AUDIT_POSTGRES.ends_with(AUDIT_COLUMNS));
        for m in MIGRATIONS {
            assert_eq!(m.sqlite.len(), m.postgres.len(), "migration {}", m.version);
        }
    }
}
