//! Firmware in another process: the claim extension (`aws-claim`, `aws-status`) and the cloud half
//! run by a program that speaks the pipe protocol of
//! `firmware/esp-idf/claimlink_device/port/posix/PIPE.md` — the C component's POSIX host,
//! `claimlink-device-host`. The simulator keeps what ESP-IDF does on a real device (the link,
//! protocomm security, network_provisioning's Wi-Fi endpoints, the Wi-Fi world) and hands the program
//! what protocomm and the Wi-Fi driver hand the component there: the decrypted requests of the two
//! extension endpoints, the Wi-Fi events, the end of a session.
//!
//! One process per device. Its stdout carries only answer frames; each stderr line is a log line of
//! the component, forwarded to the simulator's log and kept ([`FirmwareProcess::log`]) so tests can
//! check that no key material ever reaches it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::{DeviceCloud, SimDeviceConfig};

/// Frame types, simulator → host (PIPE.md).
mod frame {
    pub const CLAIM_REQUEST: u8 = 0x01;
    pub const STATUS_REQUEST: u8 = 0x02;
    pub const WIFI_EVENT: u8 = 0x03;
    pub const SESSION_ENDED: u8 = 0x04;
    pub const SHUTDOWN: u8 = 0x05;
    pub const INSPECT: u8 = 0x06;
    pub const ACK: u8 = 0x80;
    pub const ANSWER: u8 = 0x81;
    pub const HANDLER_FAILED: u8 = 0x82;
    /// The largest frame either side may send.
    pub const MAX_LEN: usize = 65_536;
}

/// How long the simulator waits for the program's answer to one frame: it answers from memory, so
/// this only catches a program that hung or died.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// A Wi-Fi event the firmware gets from the station (PIPE.md, "Wi-Fi events").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WifiEvent {
    /// `ApplyConfig` accepted: the station is joining.
    Applied,
    /// The station has an address.
    GotIp(Ipv4Addr),
    /// The station gave up: wrong passphrase.
    AuthFailed,
    /// The station gave up: no such network.
    NotFound,
    /// Associated but no address in time.
    DhcpTimeout,
    /// `Reset` or `Reprov`: nothing applied any more.
    Reset,
}

impl WifiEvent {
    fn encode(self) -> Vec<u8> {
        match self {
            WifiEvent::Applied => vec![0],
            WifiEvent::GotIp(ip) => {
                let mut bytes = vec![1];
                bytes.extend_from_slice(&ip.octets());
                bytes
            }
            WifiEvent::AuthFailed => vec![2],
            WifiEvent::NotFound => vec![3],
            WifiEvent::DhcpTimeout => vec![4],
            WifiEvent::Reset => vec![5],
        }
    }
}

/// Which extension endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionEndpoint {
    /// `aws-claim`.
    Claim,
    /// `aws-status`.
    Status,
}

/// What the program answered to a request.
#[derive(Debug, PartialEq, Eq)]
pub enum FirmwareAnswer {
    /// The plaintext answer.
    Answer(Vec<u8>),
    /// The endpoint handler failed (ESP-IDF: `ESP_FAIL`), with the program's reason.
    HandlerFailed(String),
}

/// One frame as read from the program: its type and payload, or why it could not be read.
type ReadFrame = std::io::Result<(u8, Vec<u8>)>;

/// How to start the program: its path and command line.
#[derive(Clone, Debug)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    /// The device's own directory (storage, the CA file): removed when the process ends.
    dir: PathBuf,
}

/// The running program of one device.
pub struct FirmwareProcess {
    launch: Launch,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    answers: Option<Receiver<ReadFrame>>,
    log: Arc<Mutex<Vec<String>>>,
    device: String,
    /// Why the program cannot be used (it did not start, died or broke the protocol).
    broken: Option<String>,
    /// The last Wi-Fi event sent for the current application of settings (`ApplyConfig`), and when
    /// those settings were applied; `None`: nothing applied (at start, or after `Reset`).
    pub(super) wifi_sent: Option<(Instant, WifiEvent)>,
}

impl std::fmt::Debug for FirmwareProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareProcess")
            .field("program", &self.launch.program)
            .field("device", &self.device)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

static DEVICE_DIRS: AtomicU64 = AtomicU64::new(0);

impl FirmwareProcess {
    /// Starts `program` as the firmware of the device `config` describes: its cloud settings
    /// ([`DeviceCloud`]) become the program's command line (PIPE.md). A program that does not start
    /// leaves a process whose every request fails with the reason.
    pub fn start(program: &Path, config: &SimDeviceConfig) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "claimlink-fw-{}-{}",
            std::process::id(),
            DEVICE_DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut process = Self {
            launch: Launch {
                program: program.to_owned(),
                args: Vec::new(),
                dir: dir.clone(),
            },
            child: None,
            stdin: None,
            answers: None,
            log: Arc::new(Mutex::new(Vec::new())),
            device: config.name.clone(),
            broken: None,
            wifi_sent: None,
        };
        match command_line(config, &dir) {
            Ok(args) => {
                process.launch.args = args;
                process.spawn();
            }
            Err(e) => process.broken = Some(format!("cannot prepare {}: {e}", dir.display())),
        }
        process
    }

    fn spawn(&mut self) {
        let launched = Command::new(&self.launch.program)
            .args(&self.launch.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match launched {
            Ok(child) => child,
            Err(e) => {
                self.broken = Some(format!(
                    "cannot start {}: {e}",
                    self.launch.program.display()
                ));
                return;
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            self.broken = Some("the program's pipes are missing".into());
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = stdout;
            loop {
                let frame = read_frame(&mut stdout);
                let end = frame.is_err();
                if tx.send(frame).is_err() || end {
                    return;
                }
            }
        });
        let log = self.log.clone();
        let device = self.device.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                tracing::debug!(target: "claimlink_harness::c_firmware", device = %device, "{line}");
                log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        self.child = Some(child);
        self.stdin = Some(stdin);
        self.answers = Some(rx);
        self.broken = None;
        self.wifi_sent = None;
    }

    /// Every log line the program wrote so far (also those of earlier runs, across reboots).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the program cannot be used, if it cannot.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Sends one frame and waits for its answer.
    fn exchange(&mut self, kind: u8, payload: &[u8]) -> Result<(u8, Vec<u8>), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        let result = self.try_exchange(kind, payload);
        if let Err(why) = &result {
            // The protocol is out of step: nothing the program says can be trusted any more.
            self.broken = Some(why.clone());
            tracing::warn!(device = %self.device, "the device's firmware program failed: {why}");
        }
        result
    }

    fn try_exchange(&mut self, kind: u8, payload: &[u8]) -> Result<(u8, Vec<u8>), String> {
        let (Some(stdin), Some(answers)) = (self.stdin.as_mut(), self.answers.as_ref()) else {
            return Err("the program is not running".into());
        };
        let len = u32::try_from(payload.len()).map_err(|_| "frame too large".to_string())?;
        let mut frame = Vec::with_capacity(5 + payload.len());
        frame.push(kind);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        stdin
            .write_all(&frame)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the program: {e}"))?;
        match answers.recv_timeout(ANSWER_WAIT) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(format!("reading the program's answer: {e}")),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "the program did not answer within {} s",
                ANSWER_WAIT.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => Err("the program's output ended".into()),
        }
    }

    /// Hands a decrypted request of an extension endpoint to the program.
    pub fn request(
        &mut self,
        endpoint: ExtensionEndpoint,
        plaintext: &[u8],
    ) -> Result<FirmwareAnswer, String> {
        let kind = match endpoint {
            ExtensionEndpoint::Claim => frame::CLAIM_REQUEST,
            ExtensionEndpoint::Status => frame::STATUS_REQUEST,
        };
        match self.exchange(kind, plaintext)? {
            (frame::ANSWER, answer) => Ok(FirmwareAnswer::Answer(answer)),
            (frame::HANDLER_FAILED, why) => Ok(FirmwareAnswer::HandlerFailed(
                String::from_utf8_lossy(&why).into_owned(),
            )),
            (other, _) => self.out_of_step(other),
        }
    }

    /// What the program holds in RAM (PIPE.md, `INSPECT`): whether any claim material is there,
    /// complete, partial, or in the hands of a running cloud half.
    pub fn holds_claim(&mut self) -> Result<bool, String> {
        match self.exchange(frame::INSPECT, &[])? {
            (frame::ANSWER, answer) => {
                let answer = String::from_utf8_lossy(&answer).into_owned();
                let field = |name: &str| {
                    answer
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_owned)
                };
                match (field("claim"), field("cloud")) {
                    (Some(claim), Some(cloud)) => Ok(claim != "none" || cloud == "running"),
                    _ => Err(format!(
                        "an INSPECT answer without claim= and cloud=: {answer}"
                    )),
                }
            }
            (other, _) => self.out_of_step(other),
        }
    }

    /// Tells the program about a Wi-Fi event.
    pub fn wifi_event(&mut self, event: WifiEvent) -> Result<(), String> {
        self.acknowledged(frame::WIFI_EVENT, &event.encode())
    }

    /// Tells the program that the protocomm session ended.
    pub fn session_ended(&mut self) -> Result<(), String> {
        self.acknowledged(frame::SESSION_ENDED, &[])
    }

    fn acknowledged(&mut self, kind: u8, payload: &[u8]) -> Result<(), String> {
        match self.exchange(kind, payload)? {
            (frame::ACK, _) => Ok(()),
            (other, _) => self.out_of_step(other),
        }
    }

    fn out_of_step<T>(&mut self, got: u8) -> Result<T, String> {
        let why = format!("the program answered with frame type {got:#04x}");
        self.broken = Some(why.clone());
        Err(why)
    }

    /// Power-cycles the device: the program is stopped (it wipes what it holds in RAM) and started
    /// again; files it wrote to its storage stay.
    pub fn reboot(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Asks the program to shut down (it wipes what it holds), and kills it if it does not exit.
    fn stop(&mut self) {
        if self.broken.is_none() && self.child.is_some() {
            let _ = self.try_exchange(frame::SHUTDOWN, &[]);
        }
        self.stdin = None;
        self.answers = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FirmwareProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.launch.dir);
    }
}

/// The program's command line for this device (PIPE.md), writing the CA file it needs to `dir`.
fn command_line(config: &SimDeviceConfig, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut args = vec![
        "--client-id".to_owned(),
        config.name.clone(),
        "--storage".to_owned(),
        dir.display().to_string(),
        "--max-bundle".to_owned(),
        config.max_claim_bundle.to_string(),
    ];
    let Some(cloud) = &config.cloud else {
        return Ok(args);
    };
    let DeviceCloud {
        ca_pem,
        ca_pem_file,
        default_port,
        use_csr,
        time_sync,
        timeout,
        credentials,
        // The C firmware speaks JSON over MQTT 3.1.1 (its component has neither CBOR nor MQTT 5).
        payload_format: _,
        mqtt_protocol: _,
    } = cloud;
    let ca_path = match ca_pem_file {
        Some(path) => path.clone(),
        None => {
            let path = dir.join("ca.pem");
            std::fs::write(&path, ca_pem)?;
            path
        }
    };
    let millis = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
    args.extend([
        "--ca".to_owned(),
        ca_path.display().to_string(),
        "--default-port".to_owned(),
        default_port.to_string(),
        "--keys".to_owned(),
        if *use_csr { "csr" } else { "create" }.to_owned(),
        "--time-sync-ms".to_owned(),
        millis(time_sync),
        "--answer-timeout-ms".to_owned(),
        millis(timeout),
    ]);
    if let Some((target, alias)) = credentials {
        args.extend([
            "--credentials".to_owned(),
            target.clone(),
            "--role-alias".to_owned(),
            alias.clone(),
        ]);
    }
    Ok(args)
}

/// Reads one frame: type, big-endian length, payload.
fn read_frame(from: &mut impl Read) -> ReadFrame {
    let mut header = [0u8; 5];
    from.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > frame::MAX_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (at most {})", frame::MAX_LEN),
        ));
    }
    let mut payload = vec![0u8; len];
    from.read_exact(&mut payload)?;
    Ok((header[0], payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversize_frames_are_refused() {
        let mut bytes = vec![0x81, 0, 0, 0, 3, 1, 2, 3];
        let (kind, payload) = read_frame(&mut bytes.as_slice()).unwrap();
        assert_eq!((kind, payload), (0x81, vec![1, 2, 3]));
        bytes = vec![0x81, 0, 1, 0, 1];
        assert!(read_frame(&mut bytes.as_slice()).is_err(), "65,537 bytes");
        bytes = vec![0x81, 0, 0, 0, 3, 1];
        assert!(read_frame(&mut bytes.as_slice()).is_err(), "short read");
    }

    #[test]
    fn wifi_events_encode_as_the_pipe_spec_says() {
        assert_eq!(WifiEvent::Applied.encode(), [0]);
        assert_eq!(
            WifiEvent::GotIp(Ipv4Addr::new(192, 168, 1, 23)).encode(),
            [1, 192, 168, 1, 23]
        );
        assert_eq!(WifiEvent::AuthFailed.encode(), [2]);
        assert_eq!(WifiEvent::NotFound.encode(), [3]);
        assert_eq!(WifiEvent::DhcpTimeout.encode(), [4]);
        assert_eq!(WifiEvent::Reset.encode(), [5]);
    }

    #[test]
    fn a_program_that_does_not_exist_fails_every_request_with_the_reason() {
        let mut process = FirmwareProcess::start(
            Path::new("/nonexistent/claimlink-device-host"),
            &SimDeviceConfig::default(),
        );
        let why = process
            .request(ExtensionEndpoint::Status, &[])
            .expect_err("no program");
        assert!(why.contains("cannot start /nonexistent"), "{why}");
    }
}
