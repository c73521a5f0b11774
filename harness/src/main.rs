//! The `claimlink-harness` command line.
#![forbid(unsafe_code)]

use std::process::ExitCode;

mod by_claim_cli;
mod check;
mod demo_cli;
mod emulator_out;
mod progress;
mod real_ble;
mod serve_device;
mod target_cli;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "claimlink-harness",
    version,
    about = "claimlink's desktop harness: AWS IoT emulator, simulated devices, CLI",
    after_help = "Without a command, runs `demo` with its defaults (one simulated device).\n\
                  CLAIMLINK_LOG sets what is logged to standard error, as a tracing filter \
                  (default `warn`; e.g. CLAIMLINK_LOG=debug or CLAIMLINK_LOG=claimlink_core=debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the seeded fault campaign: each run draws a fault from the seed, provisions one simulated
    /// device through the real SDK and checks the invariants. Prints counts per fault and outcome.
    Chaos {
        /// How many runs.
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// The seed (a failing run is reproduced with the same seed).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Refused: the campaign's faults are injected into the embedded emulator.
        #[command(flatten)]
        target: target_cli::TargetArgs,
    },
    /// List nearby provisionable devices over real Bluetooth (needs the `ble` feature and an adapter).
    Scan {
        /// Seconds to scan.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Only devices whose name starts with this.
        #[arg(long, default_value = "PROV_")]
        prefix: String,
    },
    /// Provision a real device over Bluetooth (needs the `ble` feature). Secrets come from standard
    /// input, a file or the environment, never from the command line (which other users and the shell
    /// history can read).
    Provision {
        /// The device's BLE name (its password from CLAIMLINK_POP).
        #[arg(long, conflicts_with = "qr_file", required_unless_present = "qr_file")]
        ble: Option<String>,
        /// A file holding the device's QR payload (JSON, as scanned); its proof of possession is used.
        #[arg(long, value_name = "PATH")]
        qr_file: Option<std::path::PathBuf>,
        /// The Wi-Fi network.
        #[arg(long)]
        ssid: String,
        /// Read the Wi-Fi passphrase from the first line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
        /// The app backend's base URL (bearer token from CLAIMLINK_TOKEN).
        #[arg(long)]
        backend_url: String,
        /// The provisioning template.
        #[arg(long)]
        template: String,
        /// The AWS IoT data endpoint the device connects to.
        #[arg(long)]
        iot_endpoint: String,
        /// Template parameters, KEY=VALUE.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Write the run's support report (JSON, no secret) to FILE, whatever the outcome.
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
    },
    /// Run the emulator and N simulated devices over HTTP on 127.0.0.1 until interrupted, printing the
    /// endpoints (for binding tests and app developers).
    Serve {
        /// How many simulated devices (1 to 65535).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        devices: u16,
        /// How long the simulated devices take to join Wi-Fi, in milliseconds.
        #[arg(long, default_value_t = 100)]
        wifi_join_ms: u64,
        /// Print the endpoints as JSON.
        #[arg(long)]
        json: bool,
        /// Where apps get their claims: `emulator` (the emulator's built-in backend contract) or
        /// `reference` (claimlink's reference backend, backend/, over HTTPS under the emulator's CA:
        /// its `claimlink-backend` binary beside this one, or CLAIMLINK_BACKEND; installers signed in
        /// by an OIDC issuer the harness plays, claims bound to each serial by its hook).
        #[arg(long, value_parser = ["emulator", "reference"], default_value = "emulator")]
        backend: String,
        /// With `--backend reference`: the records' database, `postgres://USER@HOST:PORT/DB`
        /// (default: a SQLite file in a temporary directory). Other local users can read a command
        /// line: keep the password out of it (~/.pgpass, or a trust/peer-authenticated test server).
        #[arg(long, value_name = "URL")]
        backend_database: Option<String>,
        /// An external target instead of the embedded emulator: the devices provision against it.
        #[command(flatten)]
        target: target_cli::TargetArgs,
    },
    /// Start the AWS IoT emulator, write what AWS's own tools need to a directory (endpoints, CAs, an
    /// access key and profile, templates, a fresh claim, a provisioned sample device, a README), and
    /// serve until interrupted. Used by the awsiotsdk and boto3 conformance tests.
    Emulator {
        /// Where to write the files (its README.md says what each is; `aws-credentials` and
        /// `bearer-token` let the external-target mode treat this emulator as a foreign endpoint).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Serve one simulated device over HTTP on 127.0.0.1 (like an ESP32 in SoftAP mode) until
    /// interrupted: any protocomm client (ESP-IDF's esp_prov, the apps) can provision it.
    ServeDevice(serve_device::ServeDeviceArgs),
    /// Check that a device keeps the protocol contract (docs/protocol.md, "Checking a device"): one
    /// line per case, PASS or FAIL with the reason; exits 1 on any FAIL. The device's password comes
    /// from a file or the environment (CLAIMLINK_DEVICE_PASSWORD, or CLAIMLINK_DEVICE_POP for Sec1),
    /// never from the command line.
    CheckDevice(check::CheckDeviceArgs),
    /// Provision simulated devices end to end on the embedded emulator, with live progress (the
    /// default command).
    Demo(demo_cli::DemoArgs),
    /// Provision many simulated devices in one run per size (100, 300 and 1,000 by default), each
    /// size in a process of its own, and print provisioned count, wall time, CPU per device (SDK,
    /// simulator, emulator) and peak memory per device.
    Bench(demo_cli::BenchArgs),
    /// Provisioning by claim (the first flow of AWS's fleet-provisioning guide): a factory claim is
    /// registered in the emulator's account with the claim policy, then N simulated devices provision
    /// themselves with it at first boot, no app; prints each stage, then DescribeThing's confirmation.
    ByClaim(by_claim_cli::ByClaimArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAIMLINK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or(Command::Demo(demo_cli::DemoArgs::default()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Chaos { runs, seed, target } => match target_cli::refuse_for_chaos(&target) {
            Err(e) => exit_code(Err(e)),
            Ok(()) => exit_code(runtime.block_on(chaos(runs, seed))),
        },
        Command::Scan { seconds, prefix } => {
            exit_code(runtime.block_on(real_ble::scan(seconds, &prefix)))
        }
        Command::Provision {
            ble,
            qr_file,
            ssid,
            passphrase_stdin,
            backend_url,
            template,
            iot_endpoint,
            params,
            report,
        } => {
            let request = real_ble::ProvisionRequest {
                ble,
                qr_file,
                ssid,
                passphrase_stdin,
                backend_url,
                template,
                iot_endpoint,
                params,
                report,
            };
            exit_code(runtime.block_on(real_ble::provision(request)))
        }
        Command::Serve {
            devices,
            wifi_join_ms,
            json,
            backend,
            backend_database,
            target,
        } => match target.target() {
            Err(e) => exit_code(Err(format!("error: {e}"))),
            Ok(_) if backend != "reference" && backend_database.is_some() => exit_code(Err(
                "error: --backend-database goes with --backend reference".to_owned(),
            )),
            Ok(Some(_)) if backend == "reference" => exit_code(Err(
                "error: --backend reference runs on the embedded emulator only".to_owned(),
            )),
            Ok(Some(external)) => exit_code(runtime.block_on(target_cli::serve_external(
                external,
                target.cleanup,
                devices,
                std::time::Duration::from_millis(wifi_join_ms),
                json,
            ))),
            Ok(None) => exit_code(runtime.block_on(serve(
                devices,
                std::time::Duration::from_millis(wifi_join_ms),
                json,
                (backend == "reference").then_some(
                    claimlink_harness::reference_backend::BackendOptions {
                        https: true,
                        database_url: backend_database,
                    },
                ),
            ))),
        },
        Command::Emulator { out } => exit_code(runtime.block_on(emulator_out::run(out))),
        Command::CheckDevice(args) => runtime.block_on(check::run(args)),
        Command::ServeDevice(args) => exit_code(runtime.block_on(serve_device::serve_device(args))),
        Command::Demo(args) => demo_cli::demo(args, &runtime),
        Command::Bench(args) => demo_cli::bench(args),
        Command::ByClaim(args) => exit_code(runtime.block_on(by_claim_cli::run(args))),
    }
}

async fn serve(
    devices: u16,
    wifi_join: std::time::Duration,
    json: bool,
    reference: Option<claimlink_harness::reference_backend::BackendOptions>,
) -> Result<(), String> {
    use claimlink_harness::world::{World, WorldOptions};
    let world = World::start(WorldOptions::default()).await?;
    let template = claimlink_harness::testing::TEMPLATE;
    // With the reference backend, apps get their claims (and confirmations) from it.
    let backend = match &reference {
        Some(options) => {
            let binary = claimlink_harness::reference_backend::find_binary()?;
            Some(
                claimlink_harness::reference_backend::start_with(
                    &binary,
                    &world.emulator,
                    template,
                    devices,
                    options,
                )
                .await?,
            )
        }
        None => None,
    };
    let (servers, listed) = target_cli::serve_devices(
        devices,
        wifi_join,
        |i| world.device_config(i),
        |i| format!("serve-{:04X}", i),
    )
    .await?;
    let e = &world.emulator;
    let (control_plane, bearer_token, backend_name) = match &backend {
        Some(b) => (b.base_url.clone(), b.token.clone(), "reference"),
        None => (e.base_url(), e.issue_bearer_token(), "emulator"),
    };
    let info = serde_json::json!({
        "control_plane": control_plane,
        "backend": backend_name,
        // Who the reference backend's token signs in, and where its records are.
        "reference_backend": backend.as_ref().map(|b| serde_json::json!({
            "records": b.database,
            "installer": claimlink_harness::reference_backend::INSTALLER,
            "site": claimlink_harness::reference_backend::SITE,
            "database": if reference.as_ref().is_some_and(|o| o.database_url.is_some()) {
                "postgresql"
            } else {
                "sqlite"
            },
        })),
        "emulator_control_plane": e.base_url(),
        "region": e.region(),
        "bearer_token": bearer_token,
        "template": template,
        "iot_endpoint": e.mqtt_addr().to_string(),
        "credentials_provider": e.credentials_addr().to_string(),
        "ca_pem": e.ca_pem(),
        "devices": listed,
    });
    if json {
        println!("{info}");
    } else {
        println!(
            "emulator control plane {} (region {}), MQTT {}, credentials provider {}",
            e.base_url(),
            e.region(),
            e.mqtt_addr(),
            e.credentials_addr()
        );
        if let Some(b) = &backend {
            println!(
                "reference backend {} (records: {}), the app's backend: claims bound to each serial",
                b.base_url,
                b.database
            );
        }
        println!(
            "bearer token: {}",
            info["bearer_token"].as_str().unwrap_or("")
        );
        println!("provisioning template: claimlink-demo (parameter: SerialNumber)");
        println!(
            "Wi-Fi network the devices see: claimlink-lab, passphrase \"correct horse battery\""
        );
        target_cli::print_devices(info["devices"].as_array().map_or(&[], Vec::as_slice));
        println!("CA certificate (trust it for the control plane and MQTT):");
        print!("{}", e.ca_pem());
        println!("Ctrl-C to stop.");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    shutdown_signal().await?;
    drop(servers);
    // Stops the backend's process and removes its files.
    drop(backend);
    Ok(())
}

/// Ctrl-C, or SIGTERM (how test fixtures stop `serve`): either way the servers and a reference
/// backend's child process stop cleanly.
async fn shutdown_signal() -> Result<(), String> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| e.to_string()),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
    }
}

/// The process's exit code for a command's result; the error is printed as one line.
fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn chaos(runs: usize, seed: u64) -> Result<(), String> {
    let report = claimlink_harness::chaos::campaign(runs, seed).await?;
    println!("{:<26} {:<58} {:>5}", "fault", "outcome", "runs");
    for ((fault, outcome), n) in report.table() {
        println!("{fault:<26} {outcome:<58} {n:>5}");
    }
    let bad = report.violations();
    for r in &bad {
        println!(
            "VIOLATION run {} ({:?}) -> {}: {}",
            r.index,
            r.fault,
            r.outcome,
            r.violations.join("; ")
        );
    }
    println!(
        "{} runs, seed {}, {} invariant violations, {:.1} s",
        report.runs.len(),
        report.seed,
        bad.len(),
        report.took.as_secs_f64()
    );
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} runs broke an invariant (reproduce with --seed {})",
            bad.len(),
            report.seed
        ))
    }
}
