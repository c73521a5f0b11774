//! The reference backend under load: installs run 100 at a time, each one as the SDK and AWS IoT
//! drive it — the app's `POST /v1/provisioning-claims` (OIDC bearer token checked against the issuer's
//! JWKS, policy, rate limit, CreateProvisioningClaim on the harness's emulator over HTTPS with SigV4,
//! the record stored) and then the pre-provisioning hook AWS IoT calls at RegisterThing
//! (`POST /v1/hooks/pre-provisioning`: the claim consumed in one transaction) — all over real HTTP on
//! 127.0.0.1, in one process on this machine's cores (the emulator's RSA keys for the claims are made
//! before the clock starts: AWS makes them in hardware). It prints claims per second and the claim and
//! hook latencies (p50/p99) on SQLite and, when a server is given, on PostgreSQL, side by side, and
//! whether the targets hold: hook p99 ≤ 250 ms and not one failed request.
//!
//! ```text
//! cargo bench -p claimlink-backend --bench backend
//! CLAIMLINK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p claimlink-backend --bench backend
//! ```
//! `CLAIMLINK_BENCH_INSTALLS` (default 1000) and `CLAIMLINK_BENCH_CONCURRENCY` (default 100) change the
//! load. Each run gets a fresh database (a new SQLite file; a new PostgreSQL database on that server).
//! docs/backend.md ("Benchmark") starts a throwaway PostgreSQL the way ./scripts/test does.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Rig, INSTALLER};
use tokio::sync::Semaphore;

/// The targets of issue 18.
const HOOK_P99_TARGET: Duration = Duration::from_millis(250);

/// What one run measured.
struct Figures {
    installs: usize,
    failures: Vec<String>,
    wall: Duration,
    claim: Vec<Duration>,
    hook: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// A fresh database on the PostgreSQL server at `base`.
async fn fresh_postgres_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!(
        "claimlink_bench_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .expect("PostgreSQL reachable at CLAIMLINK_BENCH_POSTGRES_URL");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the bench database");
    let mut url = url::Url::parse(base).expect("CLAIMLINK_BENCH_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// One install: the claim, then the hook; the two latencies, or why it failed.
async fn install(
    client: &reqwest::Client,
    rig: &Rig,
    token: &str,
    serial: &str,
) -> Result<(Duration, Duration), String> {
    let started = Instant::now();
    let answer = client
        .post(format!("{}/v1/provisioning-claims", rig.base_url()))
        .bearer_auth(token)
        .json(&json!({"templateName": claimlink_harness::testing::TEMPLATE, "deviceHint": serial}))
        .send()
        .await
        .map_err(|e| format!("claim {serial}: {e}"))?;
    let status = answer.status();
    let body: Value = answer
        .json()
        .await
        .map_err(|e| format!("claim {serial}: {e}"))?;
    let claim = started.elapsed();
    if status != 200 {
        return Err(format!("claim {serial}: HTTP {status} {body}"));
    }
    let id = body["certificateId"]
        .as_str()
        .ok_or(format!("claim {serial}: no certificateId"))?;
    let started = Instant::now();
    let answer = client
        .post(format!("{}/v1/hooks/pre-provisioning", rig.base_url()))
        .json(&rig.hook_input(id, serial))
        .send()
        .await
        .map_err(|e| format!("hook {serial}: {e}"))?;
    let status = answer.status();
    let decision: Value = answer
        .json()
        .await
        .map_err(|e| format!("hook {serial}: {e}"))?;
    let hook = started.elapsed();
    if status != 200 || decision["allowProvisioning"] != true {
        return Err(format!("hook {serial}: HTTP {status} {decision}"));
    }
    Ok((claim, hook))
}

async fn run(database_url: Option<String>, installs: usize, concurrency: usize) -> Figures {
    let rig = Arc::new(
        Rig::start_with(|config| {
            if let Some(url) = database_url {
                config.database_url = url;
            }
        })
        .await,
    );
    // AWS makes a claim's key in hardware; the emulator makes RSA-2048 keys in software (~70 ms of
    // CPU each). They are made before the clock starts, so that the figures are the backend's.
    rig.world.emulator.reserve_keys(installs + 1);
    rig.world
        .emulator
        .wait_for_keys(installs + 1)
        .await
        .expect("the emulator's claim keys");
    let client = support::http_client();
    // One installer per install (each has its own rate-limit bucket), tokens signed before the clock
    // starts (the app holds its token; signing is the issuer's work, not the backend's).
    let tokens: Vec<String> = (0..=installs)
        .map(|i| rig.issuer.token(&format!("installer-{i}"), &[INSTALLER]))
        .collect();
    // Warm-up: the JWKS fetch, the first connections to the emulator and the database.
    if let Err(e) = install(&client, &rig, &tokens[installs], "SN-WARMUP").await {
        panic!("the warm-up install failed: {e}");
    }
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().take(installs).enumerate() {
        let (rig, client, permits) = (rig.clone(), client.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore stays open");
            install(&client, &rig, &token, &format!("SN-BENCH-{i:05}")).await
        });
    }
    let mut figures = Figures {
        installs,
        failures: Vec::new(),
        wall: Duration::ZERO,
        claim: Vec::new(),
        hook: Vec::new(),
    };
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok((claim, hook))) => {
                figures.claim.push(claim);
                figures.hook.push(hook);
            }
            Ok(Err(why)) => figures.failures.push(why),
            Err(e) => figures.failures.push(format!("install task: {e}")),
        }
    }
    figures.wall = started.elapsed();
    figures.claim.sort();
    figures.hook.sort();
    figures
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used by this one-scenario bench.
    let installs = env_number("CLAIMLINK_BENCH_INSTALLS", 1000);
    let concurrency = env_number("CLAIMLINK_BENCH_CONCURRENCY", 100);
    let postgres = std::env::var("CLAIMLINK_BENCH_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut columns: Vec<(&str, Figures)> = Vec::new();
    runtime.block_on(async {
        columns.push(("SQLite", run(None, installs, concurrency).await));
        match &postgres {
            Some(base) => {
                let url = fresh_postgres_database(base).await;
                columns.push(("PostgreSQL", run(Some(url), installs, concurrency).await));
            }
            None => eprintln!(
                "PostgreSQL: skipped (set CLAIMLINK_BENCH_POSTGRES_URL to a server to measure it)"
            ),
        }
    });

    println!("\nclaimlink-backend: {installs} installs (claim + hook), {concurrency} at a time, {cores} cores, over HTTP on 127.0.0.1");
    print!("{:<34}", "");
    for (name, _) in &columns {
        print!("{name:>14}");
    }
    println!();
    let row = |label: &str, value: &dyn Fn(&Figures) -> String| {
        print!("{label:<34}");
        for (_, f) in &columns {
            print!("{:>14}", value(f));
        }
        println!();
    };
    row("claims per second", &|f| {
        format!("{:.0}", f.claim.len() as f64 / f.wall.as_secs_f64())
    });
    row("claim latency p50 (ms)", &|f| ms(percentile(&f.claim, 50)));
    row("claim latency p99 (ms)", &|f| ms(percentile(&f.claim, 99)));
    row("hook latency p50 (ms)", &|f| ms(percentile(&f.hook, 50)));
    row("hook latency p99 (ms)", &|f| ms(percentile(&f.hook, 99)));
    row("failed installs", &|f| f.failures.len().to_string());
    row("wall time (s)", &|f| format!("{:.1}", f.wall.as_secs_f64()));
    let mut met = true;
    for (name, f) in &columns {
        let p99 = percentile(&f.hook, 99);
        let ok = f.failures.is_empty() && f.hook.len() == f.installs && p99 <= HOOK_P99_TARGET;
        met &= ok;
        println!(
            "{name}: targets (hook p99 <= {} ms, no failed request) {}",
            HOOK_P99_TARGET.as_millis(),
            if ok { "met" } else { "MISSED" }
        );
        for why in f.failures.iter().take(5) {
            println!("  failed: {why}");
        }
    }
    if !met {
        std::process::exit(1);
    }
}
