//! The `demo` and `bench` commands of the CLI: their arguments, checked before anything runs, and
//! what they print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use claimlink_harness::bench::{self, BenchRow};
use claimlink_harness::demo::{self, DemoOptions};
use claimlink_harness::{demo_summary, timeline};

use crate::progress;

/// The largest clock skew and claim validity accepted: ten years, in seconds.
const TEN_YEARS_SECS: i64 = 10 * 365 * 24 * 3600;

/// `demo`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many devices, provisioned concurrently (1 to 65535; past 20 the end is a summary, not a
    /// line per device).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
    /// The negotiated BLE ATT MTU: 23 (BLE's minimum) to 517 (its maximum); phones reach 185 or 512.
    #[arg(long, default_value_t = 185, value_parser = clap::value_parser!(u16).range(23..=517))]
    pub mtu: u16,
    /// Time per BLE round trip (the connection interval), in milliseconds (1 to 60000).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: u64,
    /// Make a Wi-Fi mistake: `auth` (wrong passphrase first, then corrected) or `not-found`.
    #[arg(long, value_parser = ["auth", "not-found"])]
    pub wifi_fault: Option<String>,
    /// Pretend the phone's clock is off by this many seconds, within ten years either way (the time
    /// left must not change).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i64).range(-TEN_YEARS_SECS..=TEN_YEARS_SECS))]
    pub clock_skew_secs: i64,
    /// How long the emulator's claims are valid, in seconds (1 to ten years; AWS: 300).
    #[arg(long, default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=TEN_YEARS_SECS as u64))]
    pub claim_validity_secs: u64,
    /// Start the devices this many a second, as installers arrive (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub arrivals_per_sec: u32,
    /// Print a machine-readable summary as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Draw the run's timeline to FILE (.svg, or .html around it), checked before the run starts.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// The devices' firmware for the claim extension and the cloud half: `rust` (the simulator's
    /// own), `c` (the C component, firmware/esp-idf/claimlink_device, built with CMake on first use:
    /// needs cmake and the Debian packages ./scripts/test installs), or a program speaking its pipe
    /// protocol (port/posix/PIPE.md).
    #[arg(long, value_name = "rust|c|PATH", default_value = "rust")]
    pub firmware: String,
    /// Write each device's support report (JSON, no secret) to FILE, whatever the outcome: the
    /// report itself for one device, an array of them for several.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Where the phone gets its claims: `emulator` (the emulator's built-in backend contract) or
    /// `reference` (claimlink's reference backend, backend/: its `claimlink-backend` binary beside
    /// this one, or CLAIMLINK_BACKEND; claims bound to each device's serial by its hook).
    #[arg(long, value_parser = ["emulator", "reference"], default_value = "emulator")]
    pub backend: String,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            devices: 1,
            mtu: 185,
            interval_ms: 30,
            wifi_fault: None,
            clock_skew_secs: 0,
            claim_validity_secs: 300,
            arrivals_per_sec: 0,
            json: false,
            timeline: None,
            firmware: "rust".into(),
            report: None,
            backend: "emulator".into(),
        }
    }
}

/// Creates (empties) `path` now, so that a path that cannot be written fails before the run.
fn check_writable(path: &Path) -> Result<(), String> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|e| format!("cannot write the timeline to {}: {e}", path.display()))
}

/// Runs `demo`.
pub fn demo(args: DemoArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    if let Some(path) = &args.timeline {
        if let Err(e) = check_writable(path) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let options = DemoOptions {
        devices: args.devices,
        mtu: args.mtu,
        interval: Duration::from_millis(args.interval_ms),
        wifi_fault: match args.wifi_fault.as_deref() {
            Some("auth") => Some(demo::WifiFault::Auth),
            Some(_) => Some(demo::WifiFault::NotFound),
            None => None,
        },
        clock_skew_secs: args.clock_skew_secs,
        claim_validity: Duration::from_secs(args.claim_validity_secs),
        arrivals_per_sec: args.arrivals_per_sec,
        firmware: match claimlink_harness::device::c_firmware::firmware_program(&args.firmware) {
            Ok(program) => program,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        reference_backend: None,
    };
    let mut options = options;
    if args.backend == "reference" {
        match claimlink_harness::reference_backend::find_binary() {
            Ok(binary) => options.reference_backend = Some(binary),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if !args.json {
        println!(
            "claimlink demo: AWS IoT emulator on 127.0.0.1 (real TLS, real RSA claims), {} simulated device(s) over BLE (MTU {}, {} ms/round trip)",
            options.devices, args.mtu, args.interval_ms
        );
        if let Some(program) = &options.firmware {
            println!(
                "device firmware: {} (claim extension and cloud half; the simulator keeps the link, security and Wi-Fi)",
                program.display()
            );
        }
        if let Some(binary) = &options.reference_backend {
            println!(
                "claims through the reference backend ({}): OIDC installer, claims bound to each serial by its hook",
                binary.display()
            );
        }
        if args.clock_skew_secs != 0 {
            println!("phone clock skewed by {:+} s", args.clock_skew_secs);
        }
    }
    let progress = progress::for_terminal(args.json, usize::from(args.devices));
    let result = runtime.block_on(demo::run(&options, progress.clone()));
    progress.done();
    let reports = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.timeline {
        let svg = timeline::svg(&reports, options.claim_validity);
        let text = if path.extension().is_some_and(|e| e == "html") {
            timeline::html(&svg)
        } else {
            svg
        };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!(
                "error: cannot write the timeline to {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = demo::write_device_reports(args.report.as_deref(), &reports) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if args.json {
        println!("{}", demo::json_summary(&reports, &options));
    } else {
        println!();
        print!("{}", demo_summary::text(&reports));
    }
    if reports.iter().all(|r| r.outcome.is_ok()) || args.wifi_fault.as_deref() == Some("not-found")
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `bench`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The sizes to run, each in a process of its own (comma-separated, 1 to 65535 each).
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: Vec<u16>,
    /// Start the devices this many a second (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub arrivals_per_sec: u32,
    /// Print the rows as JSON lines instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run one size in this process and print its row as JSON (what each child process does).
    #[arg(long, hide = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub one: Option<u16>,
}

/// Runs `bench`.
pub fn bench(args: BenchArgs) -> ExitCode {
    if let Some(n) = args.one {
        return match bench::run_one(n, args.arrivals_per_sec) {
            Ok(row) => {
                println!("{}", row.to_json());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this program to run each size in its own process: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for n in &args.devices {
        if !args.json {
            eprintln!("bench: {n} devices…");
        }
        let output = std::process::Command::new(&exe)
            .args(["bench", "--one", &n.to_string()])
            .args(["--arrivals-per-sec", &args.arrivals_per_sec.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output();
        let row = output.map_err(|e| e.to_string()).and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            serde_json::from_str::<serde_json::Value>(text.trim())
                .ok()
                .and_then(|v| BenchRow::from_json(&v))
                .ok_or(format!(
                    "the {n}-device run printed no result ({})",
                    o.status
                ))
        });
        match row {
            Ok(row) => {
                if args.json {
                    println!("{}", row.to_json());
                }
                rows.push(row);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if !args.json {
        print!("{}", bench::table(&rows));
    }
    if rows.iter().all(|r| r.provisioned == usize::from(r.devices)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
