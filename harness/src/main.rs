//! The `claimlink-harness` command line.

use std::process::ExitCode;
use std::time::Duration;

use claimlink_harness::demo::{self, DemoOptions};
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
    /// Start the AWS IoT emulator, write what a device needs to a directory (endpoints, CA, a fresh
    /// claim), and serve until interrupted. Used by the awsiotsdk conformance test.
    Emulator {
        /// Where to write `endpoints.json`, `ca.pem`, `claim.pem` and `claim.key`.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Serve one simulated device over HTTP on 127.0.0.1 (like an ESP32 in SoftAP mode) until
    /// interrupted: any protocomm client (ESP-IDF's esp_prov, the apps) can provision it.
    ServeDevice {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The device's Sec2 password (username `wifiprov`).
        #[arg(long, default_value = "abcd1234")]
        password: String,
    },
    /// Start the embedded AWS IoT emulator and obtain a provisioning claim through each claim source.
    Demo {
        /// Pretend the phone's clock is off by this many seconds (the time left must not change).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_skew_secs: i64,
        /// How long the emulator's claims are valid, in seconds.
        #[arg(long, default_value_t = 300)]
        claim_validity_secs: u64,
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
        clock_skew_secs: 0,
        claim_validity_secs: 300,
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
        Command::Emulator { out } => match runtime.block_on(run_emulator(out)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ServeDevice { port, password } => {
            use claimlink_harness::device::http::HttpDevice;
            use claimlink_harness::device::security::DeviceSecurity;
            use claimlink_harness::device::{SimDevice, SimDeviceConfig};
            use std::sync::Arc;
            let device = Arc::new(SimDevice::new(SimDeviceConfig {
                security: DeviceSecurity::Sec2 {
                    username: "wifiprov".into(),
                    password,
                    patch: 1,
                },
                ..SimDeviceConfig::default()
            }));
            let result = runtime.block_on(async move {
                let server = HttpDevice::serve_on(device.clone(), port).await?;
                println!("simulated device {} at {}", device.config().name, server.base_url());
                println!("networks: claimlink-lab / \"correct horse battery\", neighbours-wifi, cafe-guest (open)");
                tokio::signal::ctrl_c().await?;
                Ok::<(), std::io::Error>(())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo {
            clock_skew_secs,
            claim_validity_secs,
        } => {
            let options = DemoOptions {
                clock_skew_secs,
                claim_validity: Duration::from_secs(claim_validity_secs),
                ..DemoOptions::default()
            };
            println!("claimlink demo: starting the AWS IoT emulator on 127.0.0.1 (real TLS, real RSA claims)");
            if clock_skew_secs != 0 {
                println!("phone clock skewed by {clock_skew_secs:+} s");
            }
            match runtime.block_on(demo::run(&options)) {
                Ok(claims) => {
                    for c in claims {
                        println!(
                            "{:<20} claim {}  time left {:>6.1} s  (server-phone clock: {})",
                            c.source,
                            c.certificate_id,
                            c.seconds_left,
                            c.clock_skew_secs
                                .map_or("unknown".to_owned(), |s| format!("{s:+} s")),
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run_emulator(out: std::path::PathBuf) -> Result<(), String> {
    use claimlink::claim::{BackendClaimSource, ClaimRequest, ClaimSource, TemplateName};
    use claimlink_harness::emulator::{Emulator, EmulatorConfig};
    use claimlink_harness::providers::TokenSequence;
    use std::sync::Arc;
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let claim = BackendClaimSource::builder(
        emulator.base_url(),
        Arc::new(TokenSequence::new(vec![emulator.issue_bearer_token()])),
    )
    .http_config(emulator.http_config())
    .build()
    .map_err(|e| e.to_string())?
    .request_claim(&ClaimRequest::new(
        TemplateName::new("claimlink-demo").map_err(|e| e.to_string())?,
    ))
    .await
    .map_err(|e| e.to_string())?;
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
