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
