//! The records: claims (one per claim certificate AWS issued through us) and the append-only audit
//! trail, in SQLite (the embedded default) or PostgreSQL through sqlx's `Any` driver with runtime
//! queries. Every change of a claim and its audit entry are written in one transaction; the single
//! use of a claim is one conditional `UPDATE` (`ISSUED` → `CONSUMED`), atomic on both databases.

mod migrations;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, a local file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A storage failure (the database is unreachable, or refused a statement).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// Where a claim is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimStatus {
    /// Issued to an installer; not used yet.
    Issued,
    /// The hook let a device register with it (single use: never again).
    Consumed,
    /// The thing was seen in AWS IoT's registry with an active certificate.
    Confirmed,
    /// Revoked before use: the hook refuses it.
    Revoked,
}

impl ClaimStatus {
    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Issued => "ISSUED",
            ClaimStatus::Consumed => "CONSUMED",
            ClaimStatus::Confirmed => "CONFIRMED",
            ClaimStatus::Revoked => "REVOKED",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "ISSUED" => ClaimStatus::Issued,
            "CONSUMED" => ClaimStatus::Consumed,
            "CONFIRMED" => ClaimStatus::Confirmed,
            "REVOKED" => ClaimStatus::Revoked,
            other => return Err(StoreError(format!("unknown claim status {other:?}"))),
        })
    }
}

/// One claim the backend obtained from AWS for one installer and one device serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimRecord {
    /// The claim certificate's id (hex SHA-256 of its DER), AWS's `certificateId`.
    pub certificate_id: String,
    /// The device serial the claim is bound to.
    pub serial: String,
    /// The installer's `sub`.
    pub installer: String,
    /// The provisioning template.
    pub template: String,
    /// Template parameters the installer set (they override the device's at RegisterThing).
    pub parameters: BTreeMap<String, String>,
    /// The site.
    pub site: String,
    /// The thing the device will be registered as.
    pub thing_name: String,
    /// The certificate the device registered with (AWS's hook input `certificateId`), once consumed.
    pub device_certificate_id: Option<String>,
    /// Issued under an approved reprovision (the serial may already be provisioned).
    pub reprovision: bool,
    /// Issue time, epoch seconds.
    pub issued_at: i64,
    /// AWS's expiry of the claim, epoch seconds.
    pub expires_at: i64,
    /// Where it is.
    pub status: ClaimStatus,
}

/// One audit entry: who did what to which claim, with what outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Its position in the trail (assigned by the database).
    pub id: i64,
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// Who: an installer's `sub`, `hook`, `system`.
    pub actor: String,
    /// What: `claim.issue`, `claim.deny`, `hook.allow`, `hook.deny`, `claim.revoke`, `thing.confirm`...
    pub action: String,
    /// The claim certificate concerned.
    pub certificate_id: Option<String>,
    /// The serial.
    pub serial: Option<String>,
    /// The site.
    pub site: Option<String>,
    /// The template.
    pub template: Option<String>,
    /// The claim's status after the action.
    pub status: Option<String>,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    /// Why, in words (AWS's error words when AWS refused).
    pub detail: String,
}

impl AuditEntry {
    /// An entry for `action` by `actor` with `outcome`, stamped now.
    pub fn new(actor: &str, action: &str, outcome: &str, detail: impl Into<String>) -> Self {
        Self {
            at_ms: now_millis(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            detail: detail.into(),
            ..Self::default()
        }
    }

    /// The same entry about `record` (its id, serial, site, template and status).
    pub fn about(mut self, record: &ClaimRecord) -> Self {
        self.certificate_id = Some(record.certificate_id.clone());
        self.serial = Some(record.serial.clone());
        self.site = Some(record.site.clone());
        self.template = Some(record.template.clone());
        self.status = Some(record.status.as_str().to_owned());
        self
    }
}

/// Why the hook may not consume a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumeRefusal {
    /// No claim with that certificate id was issued here.
    Unknown,
    /// The claim's status is not `ISSUED` (used, confirmed or revoked).
    NotIssued(ClaimStatus),
    /// Expired.
    Expired,
    /// The device's serial parameter is not the claim's.
    SerialMismatch,
    /// The claim is for another template.
    TemplateMismatch,
    /// Another device already registered with this serial.
    SerialTaken,
}

/// What [`Store::consume`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// Flipped to `CONSUMED`: the record as it now is.
    Consumed(ClaimRecord),
    /// Refused; the record when one exists.
    Refused(ConsumeRefusal, Option<ClaimRecord>),
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

/// Milliseconds since the epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const CLAIM_COLUMNS: &str = "certificate_id, serial, installer, template, parameters, site, \
    thing_name, reprovision, issued_at, expires_at, status, device_certificate_id";

impl Store {
    /// Connects (SQLite: creates the file if missing, WAL journal) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError(
                "the database URL must start with sqlite: or postgres:".into(),
            ));
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 16,
            })
            // An unreachable database answers 503 within this, not after a client's timeout.
            .acquire_timeout(Duration::from_secs(3))
            .connect(&url)
            .await?;
        if dialect == Dialect::Sqlite {
            sqlite_wal(&pool).await?;
        }
        migrations::run(&pool, dialect).await?;
        Ok(Self { pool, dialect })
    }

    /// Which database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every connection: later calls fail as an unreachable database does.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one statement outside the store's operations: for tests that break the database on purpose
    /// (a trigger that refuses a write). Not for the service.
    #[doc(hidden)]
    pub async fn execute_for_tests(&self, statement: &str) -> Result<(), StoreError> {
        sqlx::query(statement).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether a device already registered with `serial` (a claim of it consumed or confirmed).
    pub async fn serial_provisioned(&self, serial: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM claims WHERE serial = $1 AND status IN ('CONSUMED', 'CONFIRMED')",
        )
        .bind(serial)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Stores a new claim (status `ISSUED`) and its audit entry, both or neither.
    pub async fn insert_claim(
        &self,
        record: &ClaimRecord,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        let parameters = serde_json::to_string(&record.parameters)
            .map_err(|e| StoreError(format!("parameters: {e}")))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO claims ({CLAIM_COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&record.certificate_id)
        .bind(&record.serial)
        .bind(&record.installer)
        .bind(&record.template)
        .bind(parameters)
        .bind(&record.site)
        .bind(&record.thing_name)
        .bind(i64::from(record.reprovision))
        .bind(record.issued_at)
        .bind(record.expires_at)
        .bind(record.status.as_str())
        .bind(record.device_certificate_id.clone())
        .bind(now_secs())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The claim with `certificate_id`.
    pub async fn claim(&self, certificate_id: &str) -> Result<Option<ClaimRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE certificate_id = $1"
        ))
        .bind(certificate_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The latest consumed or confirmed claim that named a device `thing_name`.
    pub async fn claim_for_thing(
        &self,
        thing_name: &str,
    ) -> Result<Option<ClaimRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE thing_name = $1 \
             AND status IN ('CONSUMED', 'CONFIRMED') ORDER BY issued_at DESC LIMIT 1"
        ))
        .bind(thing_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The hook's decision, atomically: flips the claim `ISSUED` → `CONSUMED` (noting the device's new
    /// certificate, `device_certificate_id`) when it is this template's, unexpired at `now`, bound to
    /// `serial`, and no other device holds the serial; writes
    /// the audit entry (allowed or denied) in the same transaction. Of two concurrent calls for one
    /// claim exactly one is allowed.
    pub async fn consume(
        &self,
        certificate_id: &str,
        template: &str,
        serial: &str,
        device_certificate_id: &str,
        now: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The write comes first, so that SQLite takes its write lock at once (waiting behind another
        // writer, never failing its snapshot) and PostgreSQL locks the row.
        let flipped = sqlx::query(
            "UPDATE claims SET status = 'CONSUMED', updated_at = $1, device_certificate_id = $5 \
             WHERE certificate_id = $2 AND status = 'ISSUED' AND expires_at > $1 \
             AND serial = $3 AND template = $4 \
             AND (reprovision = 1 OR NOT EXISTS (SELECT 1 FROM claims AS other \
                  WHERE other.serial = $3 AND other.status IN ('CONSUMED', 'CONFIRMED')))",
        )
        .bind(now)
        .bind(certificate_id)
        .bind(serial)
        .bind(template)
        .bind(device_certificate_id)
        .execute(&mut *tx)
        .await;
        let flipped = match flipped {
            Ok(r) => r.rows_affected() == 1,
            // The one-device-per-serial index caught a concurrent registration of the same serial.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                let record = self.claim(certificate_id).await?;
                let mut audit = AuditEntry::new(
                    "hook",
                    "hook.deny",
                    "denied",
                    "another device registered with this serial",
                );
                if let Some(r) = &record {
                    audit = audit.about(r);
                }
                self.append_audit(audit).await?;
                return Ok(ConsumeOutcome::Refused(ConsumeRefusal::SerialTaken, record));
            }
            Err(e) => return Err(e.into()),
        };
        let row = sqlx::query(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE certificate_id = $1"
        ))
        .bind(certificate_id)
        .fetch_optional(&mut *tx)
        .await?;
        let record = row.as_ref().map(record_from_row).transpose()?;
        let outcome = match (&record, flipped) {
            (Some(r), true) => ConsumeOutcome::Consumed(r.clone()),
            (None, _) => ConsumeOutcome::Refused(ConsumeRefusal::Unknown, None),
            (Some(r), false) => {
                let why = if r.status != ClaimStatus::Issued {
                    ConsumeRefusal::NotIssued(r.status)
                } else if r.expires_at <= now {
                    ConsumeRefusal::Expired
                } else if r.template != template {
                    ConsumeRefusal::TemplateMismatch
                } else if r.serial != serial {
                    ConsumeRefusal::SerialMismatch
                } else {
                    ConsumeRefusal::SerialTaken
                };
                ConsumeOutcome::Refused(why, Some(r.clone()))
            }
        };
        let audit = match &outcome {
            ConsumeOutcome::Consumed(r) => {
                AuditEntry::new("hook", "hook.allow", "ok", "claim consumed").about(r)
            }
            ConsumeOutcome::Refused(why, record) => {
                let mut a = AuditEntry::new("hook", "hook.deny", "denied", refusal_words(why));
                match record {
                    Some(r) => a = a.about(r),
                    None => a.certificate_id = Some(certificate_id.to_owned()),
                }
                if a.serial.is_none() || matches!(why, ConsumeRefusal::SerialMismatch) {
                    a.detail = format!("{} (device sent serial {serial:?})", a.detail);
                }
                a
            }
        };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Revokes an `ISSUED` claim (`by` may revoke only its own unless `admin`); `Ok(None)` when
    /// there is no such claim (or not `by`'s), `Ok(Some(record))` with its status after the call.
    pub async fn revoke(
        &self,
        certificate_id: &str,
        by: &str,
        admin: bool,
    ) -> Result<Option<ClaimRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE claims SET status = 'REVOKED', updated_at = $1 \
             WHERE certificate_id = $2 AND status = 'ISSUED' AND (installer = $3 OR $4 = 1)",
        )
        .bind(now_secs())
        .bind(certificate_id)
        .bind(by)
        .bind(i64::from(admin))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE certificate_id = $1"
        ))
        .bind(certificate_id)
        .fetch_optional(&mut *tx)
        .await?;
        let record = row.as_ref().map(record_from_row).transpose()?;
        let record = record.filter(|r| admin || r.installer == by);
        if let Some(r) = &record {
            let (outcome, detail) = if r.status == ClaimStatus::Revoked {
                ("ok", "revoked".to_owned())
            } else {
                (
                    "denied",
                    format!("a {} claim cannot be revoked", r.status.as_str()),
                )
            };
            insert_audit(
                &mut tx,
                &AuditEntry::new(by, "claim.revoke", outcome, detail).about(r),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    /// Marks the claim `CONSUMED` → `CONFIRMED` (idempotent) with its audit entry.
    pub async fn confirm(&self, record: &ClaimRecord, by: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE claims SET status = 'CONFIRMED', updated_at = $1 \
             WHERE certificate_id = $2 AND status = 'CONSUMED'",
        )
        .bind(now_secs())
        .bind(&record.certificate_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            let mut confirmed = record.clone();
            confirmed.status = ClaimStatus::Confirmed;
            let detail = format!(
                "thing {} seen with an active certificate",
                record.thing_name
            );
            insert_audit(
                &mut tx,
                &AuditEntry::new(by, "thing.confirm", "ok", detail).about(&confirmed),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends one entry to the audit trail.
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` audit entries after id `after`, oldest first.
    pub async fn audit_entries(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, certificate_id, serial, site, template, status, \
             outcome, detail FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    certificate_id: r.try_get("certificate_id")?,
                    serial: r.try_get("serial")?,
                    site: r.try_get("site")?,
                    template: r.try_get("template")?,
                    status: r.try_get("status")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// Puts a SQLite file in WAL mode (readers do not block the writer; persistent in the file). Switching
/// needs the file to itself: when another instance holds it (both starting together), SQLite answers
/// "database is locked" at once, without waiting, so this waits and tries again, up to 5 s.
async fn sqlite_wal(pool: &AnyPool) -> Result<(), StoreError> {
    let mut attempts = 0;
    loop {
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool)
            .await?;
        if mode.0.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match sqlx::query("PRAGMA journal_mode = WAL").execute(pool).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e)) if e.message().contains("locked") && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The refusal in the audit trail's words.
pub fn refusal_words(why: &ConsumeRefusal) -> String {
    match why {
        ConsumeRefusal::Unknown => "no claim with this certificate id was issued here".into(),
        ConsumeRefusal::NotIssued(s) => format!("the claim is {}, not ISSUED", s.as_str()),
        ConsumeRefusal::Expired => "the claim has expired".into(),
        ConsumeRefusal::SerialMismatch => "the device's serial is not the claim's".into(),
        ConsumeRefusal::TemplateMismatch => "the claim was issued for another template".into(),
        ConsumeRefusal::SerialTaken => "another device registered with this serial".into(),
    }
}

async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    e: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at_ms, actor, action, certificate_id, serial, site, template, status, \
         outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.at_ms)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(e.certificate_id.clone())
    .bind(e.serial.clone())
    .bind(e.site.clone())
    .bind(e.template.clone())
    .bind(e.status.clone())
    .bind(&e.outcome)
    .bind(&e.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn record_from_row(r: &AnyRow) -> Result<ClaimRecord, StoreError> {
    let parameters: String = r.try_get("parameters")?;
    Ok(ClaimRecord {
        certificate_id: r.try_get("certificate_id")?,
        serial: r.try_get("serial")?,
        installer: r.try_get("installer")?,
        template: r.try_get("template")?,
        parameters: serde_json::from_str(&parameters)
            .map_err(|e| StoreError(format!("parameters: {e}")))?,
        site: r.try_get("site")?,
        thing_name: r.try_get("thing_name")?,
        device_certificate_id: r.try_get("device_certificate_id")?,
        reprovision: r.try_get::<i64, _>("reprovision")? != 0,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        status: ClaimStatus::parse(&r.try_get::<String, _>("status")?)?,
    })
}
