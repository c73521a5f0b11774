//! The `by-claim` command of the CLI: its arguments, the stages as they happen, the summary.

use std::sync::Arc;
use std::time::Duration;

use claimlink_harness::by_claim::{self, ByClaimEvent, ByClaimOptions};

/// `by-claim`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ByClaimArgs {
    /// How many devices boot with the factory claim, concurrently (1 to 65535).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
    /// The devices use CreateCertificateFromCsr (their key never leaves them); the claim policy then
    /// allows it as well as the guide's CreateKeysAndCertificate.
    #[arg(long)]
    pub csr: bool,
    /// How long the factory claim is valid, in days (1 to 36500).
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub claim_validity_days: u64,
    /// Print the run as JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `by-claim`.
pub async fn run(args: ByClaimArgs) -> Result<(), String> {
    let json = args.json;
    let options = ByClaimOptions {
        devices: args.devices,
        use_csr: args.csr,
        claim_validity: Duration::from_secs(args.claim_validity_days * 86_400),
    };
    if !json {
        println!(
            "claimlink by-claim: provisioning by claim on the embedded AWS IoT emulator, {} device(s) with a factory claim, no app",
            options.devices
        );
    }
    let on_event: Arc<dyn Fn(ByClaimEvent) + Send + Sync> = Arc::new(move |event| {
        if json {
            return;
        }
        match event {
            ByClaimEvent::Factory(line) => println!("{line}"),
            ByClaimEvent::Stage { device, stage } => println!("{device}: {stage:?}"),
            ByClaimEvent::Finished { device, outcome } => match outcome {
                Ok((thing, certificate)) => {
                    println!("{device}: provisioned as thing {thing}, certificate {certificate}")
                }
                Err(e) => println!("{device}: FAILED {e}"),
            },
        }
    });
    let report = by_claim::run(&options, on_event).await?;
    let provisioned = report
        .devices
        .iter()
        .filter(|d| d.outcome.is_ok() && d.confirmed)
        .count();
    if json {
        println!("{}", by_claim::json_report(&report));
    } else {
        println!(
            "{provisioned} of {} devices provisioned by claim and confirmed by DescribeThing (certificate ACTIVE on the thing) in {:.2} s",
            report.devices.len(),
            report.took.as_secs_f64()
        );
    }
    if provisioned == report.devices.len() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} devices did not provision",
            report.devices.len() - provisioned,
            report.devices.len()
        ))
    }
}
