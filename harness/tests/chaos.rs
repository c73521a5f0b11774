//! A short seeded fault campaign in CI (the CLI runs long ones: `claimlink-harness chaos --runs 1000`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_campaign_keeps_every_invariant() {
    let report = claimlink_harness::chaos::campaign(36, 20261122)
        .await
        .expect("campaign");
    for r in report.violations() {
        eprintln!(
            "run {} {:?} -> {}: {:?}",
            r.index, r.fault, r.outcome, r.violations
        );
    }
    assert!(
        report.violations().is_empty(),
        "{} runs broke an invariant",
        report.violations().len()
    );
    let kinds: std::collections::BTreeSet<&str> =
        report.runs.iter().map(|r| r.fault.kind()).collect();
    assert!(kinds.len() >= 8, "the seed exercised only {kinds:?}");
}
