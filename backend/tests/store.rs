//! The records on their own (a real SQLite file, or PostgreSQL with `CLAIMLINK_TEST_POSTGRES_URL`):
//! a failure inside a transaction leaves nothing half-written, each refusal of the hook is the right
//! one, and single use holds under many concurrent calls.

mod support;

use std::collections::BTreeMap;

use claimlink_backend::store::{
    now_secs, AuditEntry, ClaimRecord, ClaimStatus, ConsumeOutcome, ConsumeRefusal, Dialect, Store,
};

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = support::database_url(dir.path()).await;
    (Store::connect(&url).await.expect("the store opens"), dir)
}

fn record(id: &str, serial: &str) -> ClaimRecord {
    ClaimRecord {
        certificate_id: id.to_owned(),
        serial: serial.to_owned(),
        installer: "installer-1".into(),
        template: "claimlink-demo".into(),
        parameters: BTreeMap::from([("Colour".into(), "blue".into())]),
        site: "lyon-3".into(),
        thing_name: serial.to_owned(),
        device_certificate_id: None,
        reprovision: false,
        issued_at: now_secs(),
        expires_at: now_secs() + 300,
        status: ClaimStatus::Issued,
    }
}

fn issued(r: &ClaimRecord) -> AuditEntry {
    AuditEntry::new("installer-1", "claim.issue", "ok", "claim issued").about(r)
}

#[tokio::test]
async fn a_failed_audit_write_leaves_no_claim_behind() {
    let (store, _dir) = store().await;
    // Make the database refuse one audit entry, as a full disk or a dropped connection would.
    let refuse = match store.dialect() {
        Dialect::Sqlite => vec!["CREATE TRIGGER refuse_boom BEFORE INSERT ON audit WHEN NEW.detail = 'boom' \
                                 BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        Dialect::Postgres => vec![
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.detail = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
        ],
    };
    for statement in refuse {
        store.execute_for_tests(statement).await.unwrap();
    }
    let r = record(&"a".repeat(64), "SN-TX");
    let boom = AuditEntry::new("installer-1", "claim.issue", "ok", "boom").about(&r);
    assert!(store.insert_claim(&r, boom).await.is_err());
    assert_eq!(
        store.claim(&r.certificate_id).await.unwrap(),
        None,
        "no half-written claim"
    );
    assert!(store.audit_entries(0, 10).await.unwrap().is_empty());
    // The same claim with a good audit entry is stored whole; a duplicate is refused whole.
    store.insert_claim(&r, issued(&r)).await.unwrap();
    assert_eq!(
        store.claim(&r.certificate_id).await.unwrap().as_ref(),
        Some(&r)
    );
    assert!(store.insert_claim(&r, issued(&r)).await.is_err());
    assert_eq!(store.audit_entries(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn each_refusal_of_the_hook_says_why_and_uses_nothing_up() {
    let (store, _dir) = store().await;
    let now = now_secs();
    let fresh = record(&"1".repeat(64), "SN-1");
    let mut expired = record(&"2".repeat(64), "SN-2");
    expired.expires_at = now - 1;
    for r in [&fresh, &expired] {
        store.insert_claim(r, issued(r)).await.unwrap();
    }
    let refused = |o: ConsumeOutcome| match o {
        ConsumeOutcome::Refused(why, _) => why,
        ConsumeOutcome::Consumed(r) => panic!("consumed {r:?}"),
    };
    let id = fresh.certificate_id.as_str();
    assert_eq!(
        refused(
            store
                .consume(
                    &"9".repeat(64),
                    "claimlink-demo",
                    "SN-1",
                    "device-cert",
                    now
                )
                .await
                .unwrap()
        ),
        ConsumeRefusal::Unknown
    );
    assert_eq!(
        refused(
            store
                .consume(id, "claimlink-demo", "SN-X", "device-cert", now)
                .await
                .unwrap()
        ),
        ConsumeRefusal::SerialMismatch
    );
    assert_eq!(
        refused(
            store
                .consume(id, "other", "SN-1", "device-cert", now)
                .await
                .unwrap()
        ),
        ConsumeRefusal::TemplateMismatch
    );
    assert_eq!(
        refused(
            store
                .consume(
                    &expired.certificate_id,
                    "claimlink-demo",
                    "SN-2",
                    "device-cert",
                    now
                )
                .await
                .unwrap()
        ),
        ConsumeRefusal::Expired
    );
    let ConsumeOutcome::Consumed(r) = store
        .consume(id, "claimlink-demo", "SN-1", "device-cert", now)
        .await
        .unwrap()
    else {
        panic!("the right device is let through");
    };
    assert_eq!(
        (r.status, r.parameters["Colour"].as_str()),
        (ClaimStatus::Consumed, "blue")
    );
    assert_eq!(r.device_certificate_id.as_deref(), Some("device-cert"));
    assert_eq!(
        refused(
            store
                .consume(id, "claimlink-demo", "SN-1", "device-cert", now)
                .await
                .unwrap()
        ),
        ConsumeRefusal::NotIssued(ClaimStatus::Consumed)
    );
    // A second claim for the same serial cannot register a second device.
    let again = record(&"3".repeat(64), "SN-1");
    store.insert_claim(&again, issued(&again)).await.unwrap();
    assert_eq!(
        refused(
            store
                .consume(
                    &again.certificate_id,
                    "claimlink-demo",
                    "SN-1",
                    "device-cert",
                    now
                )
                .await
                .unwrap()
        ),
        ConsumeRefusal::SerialTaken
    );
    let outcomes: Vec<String> = store
        .audit_entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "hook")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        outcomes,
        ["denied", "denied", "denied", "denied", "ok", "denied", "denied"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_consumers_exactly_one_wins() {
    let (store, _dir) = store().await;
    let now = now_secs();
    // One claim, eight devices at once; and two claims for one serial, used at once.
    let one = record(&"4".repeat(64), "SN-ONE");
    let (a, b) = (
        record(&"5".repeat(64), "SN-SAME"),
        record(&"6".repeat(64), "SN-SAME"),
    );
    for r in [&one, &a, &b] {
        store.insert_claim(r, issued(r)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, id) = (store.clone(), one.certificate_id.clone());
        tasks.push(tokio::spawn(async move {
            s.consume(&id, "claimlink-demo", "SN-ONE", "device-cert", now)
                .await
        }));
    }
    for id in [&a.certificate_id, &b.certificate_id] {
        let (s, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            s.consume(&id, "claimlink-demo", "SN-SAME", "device-cert", now)
                .await
        }));
    }
    let mut wins = BTreeMap::<String, usize>::new();
    for t in tasks {
        if let ConsumeOutcome::Consumed(r) = t
            .await
            .unwrap()
            .expect("no database error under contention")
        {
            *wins.entry(r.serial).or_default() += 1;
        }
    }
    assert_eq!(
        wins,
        BTreeMap::from([("SN-ONE".into(), 1), ("SN-SAME".into(), 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_migrate_once_and_share_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::database_url(dir.path()).await;
    // Two instances starting together: the migrations run once (PostgreSQL: under an advisory lock).
    let (a, b) = tokio::join!(Store::connect(&url), Store::connect(&url));
    let (a, b) = (a.expect("instance a"), b.expect("instance b"));
    let r = record(&"7".repeat(64), "SN-TWO");
    a.insert_claim(&r, issued(&r)).await.unwrap();
    assert_eq!(b.claim(&r.certificate_id).await.unwrap().as_ref(), Some(&r));
    let now = now_secs();
    let (x, y) = tokio::join!(
        a.consume(&r.certificate_id, "claimlink-demo", "SN-TWO", "cert-a", now),
        b.consume(&r.certificate_id, "claimlink-demo", "SN-TWO", "cert-b", now),
    );
    let consumed = [x.unwrap(), y.unwrap()]
        .into_iter()
        .filter(|o| matches!(o, ConsumeOutcome::Consumed(_)))
        .count();
    assert_eq!(consumed, 1);
}
