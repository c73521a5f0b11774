//! The `claimlink-harness` command line.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use claimlink_harness::demo::{self, DemoOptions};

mod check;
mod progress;
mod real_ble;
mod serve_device;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "claimlink-harness",
    version,
    about = "claimlink's desktop harness: AWS IoT emulator, simulated devices, CLI"
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
        /// How many simulated devices.
        #[arg(long, default_value_t = 1)]
        devices: u8,
        /// How long the simulated devices take to join Wi-Fi, in milliseconds.
        #[arg(long, default_value_t = 100)]
        wifi_join_ms: u64,
        /// Print the endpoints as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start the AWS IoT emulator, write what a device needs to a directory (endpoints, CA, a fresh
    /// claim), and serve until interrupted. Used by the awsiotsdk conformance test.
    Emulator {
        /// Where to write `endpoints.json`, `ca.pem`, `claim.pem` and `claim.key`.
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
    /// Provision simulated devices end to end on the embedded emulator, with live progress.
    Demo {
        /// How many devices, provisioned concurrently.
        #[arg(long, default_value_t = 1)]
        devices: u8,
        /// The negotiated BLE ATT MTU (23, 185, 512…).
        #[arg(long, default_value_t = 185)]
        mtu: u16,
        /// Time per BLE round trip (the connection interval), in milliseconds.
        #[arg(long, default_value_t = 30)]
        interval_ms: u64,
        /// Make a Wi-Fi mistake: `auth` (wrong passphrase first, then corrected) or `not-found`.
        #[arg(long, value_parser = ["auth", "not-found"])]
        wifi_fault: Option<String>,
        /// Pretend the phone's clock is off by this many seconds (the time left must not change).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_skew_secs: i64,
        /// How long the emulator's claims are valid, in seconds.
        #[arg(long, default_value_t = 300)]
        claim_validity_secs: u64,
        /// Print a machine-readable summary as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Draw each device's stages against the claim window to FILE (.svg or .html).
        #[arg(long, value_name = "FILE")]
        timeline: Option<std::path::PathBuf>,
        /// Write each device's support report (JSON, no secret) to FILE, whatever the outcome: the
        /// report itself for one device, an array of them for several.
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAIMLINK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Demo {
        devices: 1,
        mtu: 185,
        interval_ms: 30,
        wifi_fault: None,
        clock_skew_secs: 0,
        claim_validity_secs: 300,
        json: false,
        timeline: None,
        report: None,
    });
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
        Command::Chaos { runs, seed } => exit_code(runtime.block_on(chaos(runs, seed))),
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
        } => exit_code(runtime.block_on(serve(
            devices.max(1),
            std::time::Duration::from_millis(wifi_join_ms),
            json,
        ))),
        Command::Emulator { out } => exit_code(runtime.block_on(run_emulator(out))),
        Command::CheckDevice(args) => runtime.block_on(check::run(args)),
        Command::ServeDevice(args) => exit_code(runtime.block_on(serve_device::serve_device(args))),
        Command::Demo {
            devices,
            mtu,
            interval_ms,
            wifi_fault,
            clock_skew_secs,
            claim_validity_secs,
            json,
            timeline,
            report,
        } => {
            let options = DemoOptions {
                devices: devices.max(1),
                mtu,
                interval: Duration::from_millis(interval_ms),
                wifi_fault: match wifi_fault.as_deref() {
                    Some("auth") => Some(demo::WifiFault::Auth),
                    Some(_) => Some(demo::WifiFault::NotFound),
                    None => None,
                },
                clock_skew_secs,
                claim_validity: Duration::from_secs(claim_validity_secs),
            };
            if !json {
                println!(
                    "claimlink demo: AWS IoT emulator on 127.0.0.1 (real TLS, real RSA claims), {} simulated device(s) over BLE (MTU {mtu}, {interval_ms} ms/round trip)",
                    options.devices
                );
                if clock_skew_secs != 0 {
                    println!("phone clock skewed by {clock_skew_secs:+} s");
                }
            }
            let progress = progress::for_terminal(json);
            let result = runtime.block_on(demo::run(&options, progress.clone()));
            progress.done();
            let reports = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(path) = timeline {
                let svg = demo::timeline_svg(&reports, options.claim_validity);
                let text = if path.extension().is_some_and(|e| e == "html") {
                    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>claimlink timeline</title></head><body>{svg}</body></html>\n")
                } else {
                    svg
                };
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if let Err(e) = demo::write_device_reports(report.as_deref(), &reports) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            if json {
                println!("{}", demo::json_summary(&reports, &options));
            } else {
                println!();
                println!(
                    "{:<11} {:<12} {:<22} {:<18} {:>18} {:>9}",
                    "device", "outcome", "thing", "certificate", "left at hand-over", "total"
                );
                for r in &reports {
                    let (outcome, thing) = match &r.outcome {
                        Ok(t) => ("provisioned", t.clone()),
                        Err(e) => ("FAILED", e.clone()),
                    };
                    println!(
                        "{:<11} {:<12} {:<22} {:<18} {:>16.1} s {:>7.1} s",
                        r.name,
                        outcome,
                        thing,
                        r.certificate_id
                            .as_deref()
                            .map(|c| format!("{}…", &c[..c.len().min(16)]))
                            .unwrap_or_default(),
                        r.claim_time_left_at_handover
                            .map(|d| d.as_secs_f64())
                            .unwrap_or(0.0),
                        r.total.as_secs_f64()
                    );
                }
            }
            if reports.iter().all(|r| r.outcome.is_ok())
                || wifi_fault.as_deref() == Some("not-found")
            {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run_emulator(out: std::path::PathBuf) -> Result<(), String> {
    use claimlink_harness::emulator::{Emulator, EmulatorConfig};
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let claim = emulator.claim_via_backend("claimlink-demo").await?;
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("ca.pem", emulator.ca_pem())?;
    write("claim.pem", claim.certificate().pem())?;
    write("claim.key", claim.private_key().expose())?;
    let endpoints = serde_json::json!({
        "mqtt_host": "localhost",
        "mqtt_port": emulator.mqtt_addr().port(),
        "control_plane": emulator.base_url(),
        "credentials_port": emulator.credentials_addr().port(),
        "template": "claimlink-demo",
        "claim_certificate_id": claim.certificate_id(),
    });
    // endpoints.json last: its presence says everything else is ready.
    write("endpoints.json", &endpoints.to_string())?;
    println!("emulator ready; files in {}", out.display());
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn serve(devices: u8, wifi_join: std::time::Duration, json: bool) -> Result<(), String> {
    use claimlink_harness::device::http::HttpDevice;
    use claimlink_harness::world::{World, WorldOptions};
    let world = World::start(WorldOptions::default()).await?;
    let mut servers = Vec::new();
    let mut listed = Vec::new();
    for i in 0..devices {
        let mut config = world.device_config(i);
        config.world.connect_time = wifi_join;
        let device = std::sync::Arc::new(claimlink_harness::device::SimDevice::new(config));
        let server = HttpDevice::serve(device.clone())
            .await
            .map_err(|e| e.to_string())?;
        listed.push(serde_json::json!({
            "name": device.config().name,
            "url": server.base_url(),
            "username": "wifiprov",
            "password": "abcd1234",
            "wifi": {"ssid": "claimlink-lab", "passphrase": "correct horse battery"},
            "template_parameters": {"SerialNumber": format!("serve-{:04X}", i)},
        }));
        servers.push(server);
    }
    let e = &world.emulator;
    let info = serde_json::json!({
        "control_plane": e.base_url(),
        "region": e.region(),
        "bearer_token": e.issue_bearer_token(),
        "template": "claimlink-demo",
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
        println!(
            "bearer token: {}",
            info["bearer_token"].as_str().unwrap_or("")
        );
        for d in &info["devices"].as_array().cloned().unwrap_or_default() {
            println!(
                "device {} at {} (Sec2 wifiprov / abcd1234)",
                d["name"].as_str().unwrap_or(""),
                d["url"].as_str().unwrap_or("")
            );
        }
        println!("Ctrl-C to stop.");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(servers);
    Ok(())
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
