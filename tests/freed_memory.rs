//! No claim key is left in the SDK's memory after a run: not in its own buffers (wiped since the
//! start) and not in the TLS and HTTP buffers of the crates under it (rustls, hyper, reqwest), which
//! free theirs without wiping them.
//!
//! # Method
//!
//! The test process holds the emulator (which made the keys) and the simulated devices (which received
//! them): both keep copies on purpose, so scanning the test process itself would prove nothing. The SDK
//! side therefore runs in a child process, this test binary run again on one ignored test
//! ([`sdk_side_of_the_memory_scan`], which does nothing unless the parent sets [`CHILD_ENV`]):
//!
//! 1. The parent starts the emulator and two simulated devices served over HTTP on 127.0.0.1 (as a
//!    SoftAP device is served), and starts the child with their addresses, the emulator's CA, a bearer
//!    token, temporary AWS credentials and the devices' password in its environment. The child never
//!    learns a key from the parent.
//! 2. The child is an app: through the FFI crate (`claimlink`, what the apps load) it provisions one
//!    device with a `Provisioner` on the backend claim source and the other with one on AWS's
//!    `CreateProvisioningClaim`, over the SDK's HTTP link; each claim travels emulator → TLS → SDK →
//!    Sec2 session → device. It drops the sessions, keeps the provisioners (an app keeps one for its
//!    lifetime), writes [`READY`] and waits, alive, until the parent closes its standard input.
//! 3. The parent takes the keys the emulator issued and reads the child's writable private memory
//!    (`/proc/<child>/maps`, then `/proc/<child>/mem` with plain file reads; no `unsafe`): heap,
//!    anonymous mappings, thread stacks, `.data`/`.bss`. Read-only and shared mappings are skipped:
//!    a key received at run time can only be in memory the process wrote. A region that cannot be
//!    read is skipped and counted.
//! 4. It looks for each key as its PEM body (the base64 lines joined with `\n`, and with the JSON
//!    escape `\\n` in which the backend's answer carries it), its PKCS#1 DER (what the emulator
//!    issues and what goes to the device), its PKCS#8 DER, and each prime p, q (big-endian): whole
//!    copies, and any fragment of 47 bytes or more (every 32-byte window of each form is indexed, the
//!    memory is probed every 16 bytes), so a half-overwritten copy counts too. Expected: nothing.
//!
//! Controls, so that "nothing found" means something: the child also holds a live canary (in its
//! environment), which the scan must find, and writes a second canary into a heap buffer that it
//! frees, which must not be found (that is the SDK library's zero-on-free allocator at work: see
//! docs/architecture.md, "Secrets in memory").
//!
//! Reading another process's memory needs ptrace rights over it (Linux: the same user, and Yama's
//! `ptrace_scope` ≤ 1 for a parent reading its child). Linux only.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use async_trait::async_trait;
use claimlink::{
    http_device_link, AwsCredentials, CredentialsProvider, DeviceSecret, ProviderFailure,
    ProvisionOptions, Provisioner, ProvisionerSettings, TokenProvider, WifiSettings,
};
use claimlink_harness::device::http::HttpDevice;
use claimlink_harness::testing::{self, DEVICE_PASSWORD, LAB_PASSPHRASE, LAB_SSID};

/// Set in the child's environment: it runs the SDK side.
const CHILD_ENV: &str = "CLAIMLINK_MEMSCAN_CHILD";
/// What the child prints once the run is over and its memory can be read.
const READY: &str = "claimlink-memscan: ready";
/// Every window of this many bytes of each form of the key is indexed.
const WINDOW: usize = 32;
/// The memory is probed at every multiple of this: a copy of `WINDOW + STRIDE - 1` bytes or more
/// always contains a probed window.
const STRIDE: usize = 16;

struct Token(String);

struct Credentials(Arc<AwsCredentials>);

#[async_trait]
impl CredentialsProvider for Credentials {
    async fn credentials(&self, _refresh: bool) -> Result<Arc<AwsCredentials>, ProviderFailure> {
        Ok(self.0.clone())
    }
}

#[async_trait]
impl TokenProvider for Token {
    async fn bearer_token(&self, _refresh: bool) -> Result<String, ProviderFailure> {
        Ok(self.0.clone())
    }
}

#[test]
fn no_claim_key_is_left_in_the_sdk_process_memory() {
    if cfg!(feature = "danger-no-wipe-on-free") {
        eprintln!("skipped: built without the wiping allocator (danger-no-wipe-on-free)");
        return;
    }
    let runtime = testing::multi_thread_runtime();
    let world = runtime.block_on(testing::quick_world());
    // One device per claim source: the backend's, then AWS's.
    let devices = [world.device(0), world.device(1)];
    let servers = devices.clone().map(|device| {
        runtime
            .block_on(HttpDevice::serve(device))
            .expect("the device serves")
    });
    let canary = (0..4).fold("memscan-canary-".to_owned(), |canary, _| {
        format!(
            "{canary}{:016x}",
            rand_core::RngCore::next_u64(&mut rand_core::OsRng)
        )
    });
    let e = &world.emulator;
    let aws = e.issue_credentials();

    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "sdk_side_of_the_memory_scan",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("MEMSCAN_BACKEND_URL", e.base_url())
        .env("MEMSCAN_TOKEN", e.issue_bearer_token())
        .env("MEMSCAN_CA_PEM", e.ca_pem())
        .env("MEMSCAN_IOT_ENDPOINT", e.mqtt_addr().to_string())
        .env("MEMSCAN_BACKEND_DEVICE_URL", servers[0].base_url())
        .env("MEMSCAN_REGION", e.region())
        .env("MEMSCAN_AWS_KEY_ID", &aws.access_key_id)
        .env("MEMSCAN_AWS_SECRET", &aws.secret_access_key)
        .env("MEMSCAN_AWS_TOKEN", &aws.session_token)
        .env("MEMSCAN_AWS_DEVICE_URL", servers[1].base_url())
        .env("MEMSCAN_CANARY", &canary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("piped");
    // The child runs against the emulator and device served by this runtime's threads; this thread
    // waits for its word.
    let mut lines = BufReader::new(stdout).lines();
    let mut said = Vec::new();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| {
        said.push(line.clone());
        line.ends_with(READY)
    });
    assert!(ready, "the child's run failed:\n{}", said.join("\n"));
    for device in &devices {
        assert!(device.thing_name().is_some(), "the device was provisioned");
    }

    // Every claim the emulator issued (one per run, unless the SDK fetched a fresh one).
    let claims = e.issued_claims();
    assert!(!claims.is_empty(), "a claim was issued");
    let forms: Vec<(String, Vec<u8>)> = claims
        .iter()
        .enumerate()
        .flat_map(|(n, claim)| {
            key_forms(&claim.private_key_pem)
                .into_iter()
                .map(move |(form, bytes)| (format!("claim {n}: {form}"), bytes))
        })
        .collect();
    let controls = vec![
        ("live canary".to_owned(), canary.clone().into_bytes()),
        ("freed canary".to_owned(), freed_canary(&canary)),
    ];
    let scan = scan_process(child.id(), &forms, &controls);

    drop(child.stdin.take());
    let status = child.wait().expect("the child exits");
    assert!(status.success(), "the child failed after the scan");

    eprintln!("{scan}");
    assert!(
        scan.bytes > 1 << 20,
        "the scan read the child's memory:\n{scan}"
    );
    assert!(
        scan.control("live canary") > 0,
        "the scan finds what is there:\n{scan}"
    );
    assert_eq!(
        scan.key_hits(),
        0,
        "the claim key is still in the SDK process's memory:\n{scan}"
    );
    assert_eq!(
        scan.control("freed canary"),
        0,
        "freed heap is wiped:\n{scan}"
    );
}

/// The child: an app provisioning one device through the FFI, then waiting to be read.
#[test]
#[ignore = "the SDK side of no_claim_key_is_left_in_the_sdk_process_memory, started by it"]
fn sdk_side_of_the_memory_scan() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let runtime = testing::multi_thread_runtime();
    let settings = ProvisionerSettings {
        template: testing::TEMPLATE.into(),
        iot_endpoint: var("MEMSCAN_IOT_ENDPOINT"),
        extra_root_certificates_pem: vec![var("MEMSCAN_CA_PEM")],
        security: None,
        safety_margin_secs: 60,
        poll_interval_millis: 100,
        wifi_timeout_secs: 45,
        cloud_timeout_secs: 60,
        overall_timeout_secs: 420,
        ap_join_budget_secs: 30,
        proxy_url: None,
    };
    let backend = Provisioner::with_backend(
        settings.clone(),
        var("MEMSCAN_BACKEND_URL"),
        Arc::new(Token(var("MEMSCAN_TOKEN"))),
    )
    .expect("backend provisioner");
    let credentials = AwsCredentials::new(
        var("MEMSCAN_AWS_KEY_ID"),
        var("MEMSCAN_AWS_SECRET"),
        Some(var("MEMSCAN_AWS_TOKEN")),
    );
    let aws = Provisioner::with_aws(
        settings,
        var("MEMSCAN_REGION"),
        Some(var("MEMSCAN_BACKEND_URL")),
        Arc::new(Credentials(credentials)),
    )
    .expect("AWS provisioner");
    runtime.block_on(async {
        for (provisioner, device, serial) in [
            (&backend, "MEMSCAN_BACKEND_DEVICE_URL", "SN-MEMSCAN-0"),
            (&aws, "MEMSCAN_AWS_DEVICE_URL", "SN-MEMSCAN-1"),
        ] {
            let link = http_device_link(var(device)).expect("link");
            let session = provisioner
                .connect(
                    link,
                    DeviceSecret::password("wifiprov".into(), DEVICE_PASSWORD.into()),
                    None,
                )
                .await
                .expect("session");
            session
                .provision(
                    WifiSettings::new(LAB_SSID.into(), LAB_PASSPHRASE.into()).expect("wifi"),
                    ProvisionOptions {
                        template_parameters: [("SerialNumber".into(), serial.into())].into(),
                        expected_thing_name: None,
                        device_hint: None,
                    },
                    None,
                )
                .await
                .expect("provisioned");
        }
    });
    // The freed control: a heap buffer holding the second canary, freed.
    let freed = std::hint::black_box(freed_canary(&var("MEMSCAN_CANARY")));
    drop(freed);
    println!("{READY}");
    std::io::stdout().flush().expect("stdout");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop((backend, aws));
}

/// The second canary: the first, reversed (so that the environment does not hold it).
fn freed_canary(canary: &str) -> Vec<u8> {
    canary.bytes().rev().collect()
}

/// The claim key in every form the SDK or the crates under it may hold: PEM (`\n` and JSON's `\\n`),
/// PKCS#1 DER, PKCS#8 DER, and the primes.
fn key_forms(pem: &str) -> Vec<(String, Vec<u8>)> {
    use pkcs1::der::{Decode, Encode};
    let (label, der) = pkcs1::der::pem::decode_vec(pem.as_bytes()).expect("PEM");
    assert_eq!(
        label, "RSA PRIVATE KEY",
        "the emulator issues PKCS#1, as AWS does"
    );
    let key = pkcs1::RsaPrivateKey::from_der(&der).expect("PKCS#1");
    let pkcs8_der = pkcs8::PrivateKeyInfo::new(pkcs1::ALGORITHM_ID, &der)
        .to_der()
        .expect("PKCS#8");
    // The PEM's armour lines are not secret: its body is, joined as in the PEM and as in JSON.
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    vec![
        ("PEM body".to_owned(), body.join("\n").into_bytes()),
        (
            "PEM body, JSON-escaped".to_owned(),
            body.join("\\n").into_bytes(),
        ),
        ("PKCS#1 DER".to_owned(), der.clone()),
        ("PKCS#8 DER".to_owned(), pkcs8_der),
        ("prime p".to_owned(), key.prime1.as_bytes().to_vec()),
        ("prime q".to_owned(), key.prime2.as_bytes().to_vec()),
    ]
}

/// Where a window of a form was found in the child.
#[derive(Debug)]
struct Hit {
    form: usize,
    address: u64,
    region: String,
}

/// What a scan read and found.
struct Scan {
    bytes: u64,
    regions: usize,
    unreadable: usize,
    forms: Vec<(String, Vec<u8>)>,
    hits: Vec<Hit>,
    /// Whole copies of each form.
    whole: Vec<usize>,
    /// How many of the forms are the key's (the rest are the controls).
    key_forms: usize,
}

impl Scan {
    /// Windows of the control `name` found.
    fn control(&self, name: &str) -> usize {
        let form = self.forms.iter().position(|(n, _)| n == name);
        self.hits.iter().filter(|h| Some(h.form) == form).count()
    }

    /// Windows of the key found.
    fn key_hits(&self) -> usize {
        self.hits.iter().filter(|h| h.form < self.key_forms).count()
    }
}

impl std::fmt::Display for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scanned {} KiB in {} regions ({} unreadable)",
            self.bytes / 1024,
            self.regions,
            self.unreadable
        )?;
        for (i, (name, bytes)) in self.forms.iter().enumerate() {
            let what = if i < self.key_forms {
                "key as"
            } else {
                "control:"
            };
            let windows = self.hits.iter().filter(|h| h.form == i).count();
            writeln!(
                f,
                "  {what} {name} ({} bytes): {} whole copies, {windows} windows",
                bytes.len(),
                self.whole[i],
            )?;
        }
        // Where: runs of probes that found a window of the key, whatever its form.
        let mut runs: Vec<(u64, u64, &str)> = Vec::new();
        for hit in self.hits.iter().filter(|h| h.form < self.key_forms) {
            match runs.last_mut() {
                Some((_, end, _)) if hit.address <= *end + STRIDE as u64 => {
                    *end = (*end).max(hit.address + WINDOW as u64);
                }
                _ => runs.push((hit.address, hit.address + WINDOW as u64, &hit.region)),
            }
        }
        for (start, end, region) in runs {
            writeln!(
                f,
                "  key bytes at {start:#x}, {} bytes or more, in {region}",
                end - start
            )?;
        }
        Ok(())
    }
}

/// Reads the writable private memory of process `pid` and finds the forms and the controls in it.
fn scan_process(pid: u32, key: &[(String, Vec<u8>)], controls: &[(String, Vec<u8>)]) -> Scan {
    let forms: Vec<(String, Vec<u8>)> = key.iter().chain(controls).cloned().collect();
    // Every window of every form, by its first 8 bytes.
    let mut index: HashMap<[u8; 8], Vec<(usize, usize)>> = HashMap::new();
    for (i, (_, bytes)) in forms.iter().enumerate() {
        for offset in 0..=bytes.len().saturating_sub(WINDOW) {
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&bytes[offset..offset + 8]);
            index.entry(prefix).or_default().push((i, offset));
        }
    }
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("mem (ptrace rights)");
    let mut scan = Scan {
        bytes: 0,
        regions: 0,
        unreadable: 0,
        hits: Vec::new(),
        whole: vec![0; forms.len()],
        key_forms: key.len(),
        forms: Vec::new(),
    };
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("[anonymous]").to_owned();
        if !perms.starts_with("rw") || !perms.ends_with('p') || name.starts_with("[v") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut data = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut data).is_err() {
            scan.unreadable += 1;
            continue;
        }
        scan.regions += 1;
        scan.bytes += data.len() as u64;
        scan_region(&data, start, &name, &forms, &index, &mut scan);
    }
    scan.forms = forms;
    scan
}

fn scan_region(
    data: &[u8],
    start: u64,
    region: &str,
    forms: &[(String, Vec<u8>)],
    index: &HashMap<[u8; 8], Vec<(usize, usize)>>,
    scan: &mut Scan,
) {
    let mut at = 0;
    while at + WINDOW <= data.len() {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&data[at..at + 8]);
        if let Some(candidates) = index.get(&prefix) {
            for &(form, offset) in candidates {
                let bytes = &forms[form].1;
                if data[at..at + WINDOW] != bytes[offset..offset + WINDOW] {
                    continue;
                }
                scan.hits.push(Hit {
                    form,
                    address: start + at as u64,
                    region: region.to_owned(),
                });
                // A whole copy is counted at the probe that sees its first window.
                let copy = at.checked_sub(offset);
                let first_probe = offset < STRIDE;
                if let Some(copy) = copy.filter(|_| first_probe) {
                    if data.get(copy..copy + bytes.len()) == Some(bytes.as_slice()) {
                        scan.whole[form] += 1;
                    }
                }
            }
        }
        at += STRIDE;
    }
}
