//! The C firmware component (firmware/esp-idf/claimlink_device) as the firmware of simulated devices:
//! its POSIX host program, built with CMake, and the `--firmware` option of the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The component's source directory (a CMake project on the host).
pub fn c_firmware_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/esp-idf/claimlink_device")
}

/// Where the host build goes: `c-firmware` in Cargo's target directory (`CARGO_TARGET_DIR` or the
/// workspace's `target/`), the same directory `./scripts/test` builds it in.
pub fn c_firmware_build_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("c-firmware")
}

/// The host program's path in a build directory.
pub fn c_firmware_host_in(build_dir: &Path) -> PathBuf {
    build_dir.join("port/posix/claimlink-device-host")
}

/// Configures and builds the component's host program with CMake (incrementally: nothing to do when
/// it is up to date) and returns its path. Fails with what to do when CMake or the Debian libraries
/// it needs are missing (`./scripts/test` installs them).
pub fn build_c_firmware_host() -> Result<PathBuf, String> {
    let build = c_firmware_build_dir();
    let source = c_firmware_source();
    let run = |what: &str, command: &mut Command| -> Result<(), String> {
        let out = command
            .output()
            .map_err(|e| format!("{what}: cannot run cmake ({e}); ./scripts/test installs it"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}); ./scripts/test installs the Debian packages it needs:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    if !build.join("CMakeCache.txt").exists() {
        run(
            "configuring the C firmware",
            Command::new("cmake")
                .arg("-S")
                .arg(&source)
                .arg("-B")
                .arg(&build),
        )?;
    }
    run(
        "building the C firmware",
        Command::new("cmake").arg("--build").arg(&build).args([
            "--target",
            "claimlink-device-host",
            "--parallel",
            "2",
        ]),
    )?;
    Ok(c_firmware_host_in(&build))
}

/// The host program, built once per process ([`build_c_firmware_host`]).
pub fn c_firmware_host() -> Result<PathBuf, String> {
    static HOST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HOST.get_or_init(build_c_firmware_host).clone()
}

/// The CLI's `--firmware` value: `rust` (the simulator's own firmware: `None`), `c` (the C
/// component's host program, built here with CMake if needed), or the path of a program that speaks
/// the pipe protocol (PIPE.md).
pub fn firmware_program(spec: &str) -> Result<Option<PathBuf>, String> {
    match spec {
        "rust" => Ok(None),
        "c" => c_firmware_host().map(Some),
        path => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(format!(
                    "--firmware {}: not `rust`, `c`, or a program that exists",
                    path.display()
                ))
            }
        }
    }
}
