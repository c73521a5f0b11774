//! `claimlink-harness emulator --out DIR`: the AWS IoT emulator alone, and in `DIR` everything a person
//! needs to point AWS's own tools at it (the AWS CLI, boto3, awsiotsdk, curl): an access key for the
//! SigV4 API with an `aws configure`-style profile, the templates and their parameters, the CAs (the
//! servers' and the one that signs claims), a fresh claim, a provisioned sample device with the role
//! alias and device policy the credentials provider checks, and a README saying what each file is.
//! Secrets (`claim.key`, `device.key`, `aws-credentials`) are written with mode 0600.

use std::path::{Path, PathBuf};

use claimlink_harness::device::cloud::{self, CloudEndpoint, Connection, MqttIdentity};
use claimlink_harness::emulator::{Emulator, EmulatorConfig, Template};
use serde_json::json;

/// The template the emulator offers.
const TEMPLATE: &str = "claimlink-demo";
/// The IoT policy the template attaches to device certificates.
const DEVICE_POLICY: &str = "claimlink-device-policy";
/// The role alias of the credentials provider.
const ROLE_ALIAS: &str = "claimlink-device-role";
/// The thing provisioned at start, whose certificate `device.pem` is.
const SAMPLE_THING: &str = "claimlink-sample-device";
/// The AWS CLI / boto3 profile the files define.
const PROFILE: &str = "claimlink-emulator";

/// Starts the emulator, writes `out`, and serves until interrupted.
pub async fn run(out: PathBuf) -> Result<(), String> {
    // The directory first: a path that cannot be made fails before the emulator starts.
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("error: cannot create the directory {}: {e}", out.display()))?;
    let template = Template::simple_with_policy(TEMPLATE, DEVICE_POLICY);
    let emulator = Emulator::start(EmulatorConfig {
        templates: vec![template.clone()],
        ..EmulatorConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let account = "123456789012";
    let alias_arn = format!(
        "arn:aws:iot:{}:{account}:rolealias/{ROLE_ALIAS}",
        emulator.region()
    );
    let role_arn = format!("arn:aws:iam::{account}:role/claimlink-device");
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive"], "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": alias_arn},
        ]
    });
    emulator.put_policy(DEVICE_POLICY, policy.clone());
    emulator.create_role_alias(ROLE_ALIAS, &role_arn, 3600)?;
    let (access_key_id, secret) = emulator.issue_access_key();
    let claim = emulator.claim_via_backend(TEMPLATE).await?;
    let (device_pem, device_key) = provision_sample_device(&emulator).await?;

    let write = |name: &str, text: &str| write_file(&out.join(name), text, false);
    let write_secret = |name: &str, text: &str| write_file(&out.join(name), text, true);
    let dir = out.canonicalize().unwrap_or_else(|_| out.clone());
    write("ca.pem", emulator.ca_pem())?;
    write("claim-ca.pem", emulator.claim_ca_pem())?;
    write("device-ca.pem", emulator.device_ca_pem())?;
    write("claim.pem", claim.certificate().pem())?;
    write_secret("claim.key", claim.private_key().expose())?;
    write("device.pem", &device_pem)?;
    write_secret("device.key", &device_key)?;
    // The profile AWS's tools use (aws-config names it), and the same key as `[default]` for the
    // harness's external-target mode, which reads this file as a foreign account's
    // (harness/tests/external_target.rs).
    write_secret(
        "aws-credentials",
        &format!(
            "[{PROFILE}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n\n[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n",
            secret = secret.as_str()
        ),
    )?;
    // A bearer token for its backend contract (`--backend-url`, CLAIMLINK_TOKEN).
    write_secret("bearer-token", &emulator.issue_bearer_token())?;
    write(
        "aws-config",
        &format!(
            "[profile {PROFILE}]\nregion = {}\nendpoint_url = {}\nca_bundle = {}\n",
            emulator.region(),
            emulator.base_url(),
            dir.join("ca.pem").display()
        ),
    )?;
    write(
        "templates.json",
        &serde_json::to_string_pretty(&json!([{
            "templateName": TEMPLATE,
            "parameters": template.body.get("Parameters").cloned().unwrap_or_else(|| json!({})),
            "templateBody": template.body,
        }]))
        .map_err(|e| e.to_string())?,
    )?;
    write(
        "device-policy.json",
        &serde_json::to_string_pretty(
            &json!({"policyName": DEVICE_POLICY, "policyDocument": policy}),
        )
        .map_err(|e| e.to_string())?,
    )?;
    write(
        "role-alias.json",
        &serde_json::to_string_pretty(&json!({
            "roleAlias": ROLE_ALIAS, "roleAliasArn": alias_arn, "roleArn": role_arn,
            "credentialDurationSeconds": 3600,
        }))
        .map_err(|e| e.to_string())?,
    )?;
    let credentials_url = format!(
        "https://localhost:{}/role-aliases/{ROLE_ALIAS}/credentials",
        emulator.credentials_addr().port()
    );
    write(
        "README.md",
        &readme(&emulator, &dir, &access_key_id, &credentials_url),
    )?;
    let endpoints = json!({
        "mqtt_host": "localhost",
        "mqtt_port": emulator.mqtt_addr().port(),
        "control_plane": emulator.base_url(),
        "credentials_port": emulator.credentials_addr().port(),
        "credentials_url": credentials_url,
        "region": emulator.region(),
        "account_id": account,
        "template": TEMPLATE,
        "claim_certificate_id": claim.certificate_id(),
        "role_alias": ROLE_ALIAS,
        "sample_thing": SAMPLE_THING,
        "aws_profile": PROFILE,
    });
    // endpoints.json last: its presence says everything else is ready.
    write("endpoints.json", &endpoints.to_string())?;
    println!(
        "emulator ready; files in {} (README.md says what each is)",
        out.display()
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Provisions [`SAMPLE_THING`] through the MQTT fleet-provisioning API with a claim of its own, as a
/// device does; returns its certificate and private key (PEM).
async fn provision_sample_device(emulator: &Emulator) -> Result<(String, String), String> {
    let claim = emulator.claim_via_backend(TEMPLATE).await?;
    let endpoint = CloudEndpoint {
        host: "127.0.0.1".into(),
        port: emulator.mqtt_addr().port(),
        ca_pem: emulator.ca_pem().to_owned(),
        timeout: std::time::Duration::from_secs(20),
    };
    let identity = MqttIdentity::from_claim(&claim).map_err(|e| e.to_string())?;
    let mut conn = Connection::open(&endpoint, identity, SAMPLE_THING)
        .await
        .map_err(|e| format!("the sample device cannot connect: {e}"))?;
    let obtained = cloud::create_keys_and_certificate(&mut conn)
        .await
        .map_err(|e| format!("the sample device gets no certificate: {e}"))?;
    let parameters = [("SerialNumber".to_owned(), SAMPLE_THING.to_owned())].into();
    cloud::register_thing(&mut conn, TEMPLATE, &obtained.ownership_token, &parameters)
        .await
        .map_err(|e| format!("the sample device is not registered: {e}"))?;
    conn.close().await;
    let key = obtained
        .private_key_pem
        .clone()
        .ok_or("CreateKeysAndCertificate returned no key")?;
    Ok((obtained.certificate_pem.clone(), key))
}

/// Writes `text` to `path`; a `secret` file is readable by its owner only (mode 0600 on Unix).
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let cannot = |e: std::io::Error| format!("error: cannot write {}: {e}", path.display());
    let mut file = options.open(path).map_err(cannot)?;
    // A file left from an earlier run keeps its mode through `open`: set it again.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(cannot)?;
    }
    file.write_all(text.as_bytes()).map_err(cannot)
}

fn readme(emulator: &Emulator, dir: &Path, access_key_id: &str, credentials_url: &str) -> String {
    let d = dir.display();
    let endpoint = emulator.base_url();
    let mqtt_port = emulator.mqtt_addr().port();
    format!(
        r#"# claimlink AWS IoT emulator

Written by `claimlink-harness emulator --out {d}`; valid while that process runs (every start makes new
CAs, keys and ports).

| file | what |
|---|---|
| `endpoints.json` | the endpoints: `control_plane` (AWS IoT's SigV4 API and the app-backend contract), `mqtt_host`/`mqtt_port` (MQTT over mutual TLS), `credentials_url` (the credentials provider), region, account, template, role alias |
| `ca.pem` | the root CA of the emulator's TLS **servers** (the stand-in for AmazonRootCA1.pem): trust it to reach any endpoint |
| `claim-ca.pem` | the CA that signs **claim** certificates (`CreateProvisioningClaim`) |
| `device-ca.pem` | the CA that signs **device** certificates (`CreateKeysAndCertificate`, `CreateCertificateFromCsr`) |
| `claim.pem`, `claim.key` | a fresh provisioning claim for template `{TEMPLATE}` (valid 5 minutes, as AWS's; the key is mode 0600) |
| `device.pem`, `device.key` | the certificate and key of thing `{SAMPLE_THING}`, provisioned at start through fleet provisioning (key mode 0600) |
| `aws-credentials`, `aws-config` | an access key for the SigV4 API (`{access_key_id}`) as profile `{PROFILE}`, in the formats of `~/.aws/credentials` and `~/.aws/config` (mode 0600) |
| `templates.json` | the provisioning templates, their parameters and bodies |
| `device-policy.json` | IoT policy `{DEVICE_POLICY}`, which the template attaches to every device certificate: it allows `iot:AssumeRoleWithCertificate` on the role alias |
| `role-alias.json` | the credentials provider's role alias `{ROLE_ALIAS}` |

## Why `claim.pem` does not verify against `ca.pem`

As in AWS, the servers' CA and the CA that signs claims are different authorities: `ca.pem` is what a
client trusts to reach the endpoints (AWS: Amazon's root CAs), while claims are signed by
`claim-ca.pem` and device certificates by `device-ca.pem` (AWS signs both with CAs of its own).

    openssl verify -CAfile {d}/claim-ca.pem {d}/claim.pem
    openssl verify -CAfile {d}/device-ca.pem {d}/device.pem

## AWS's own tools against it

    export AWS_CONFIG_FILE={d}/aws-config AWS_SHARED_CREDENTIALS_FILE={d}/aws-credentials AWS_PROFILE={PROFILE}
    aws iot create-provisioning-claim --template-name {TEMPLATE} --endpoint-url {endpoint} --ca-bundle {d}/ca.pem
    aws iot describe-thing --thing-name {SAMPLE_THING}

(`endpoint_url` and `ca_bundle` are in the profile too, for AWS CLI v2.13+ and boto3: the options above
are then optional; an `AWS_CA_BUNDLE` in the environment overrides the profile's `ca_bundle`, so unset
it or keep `--ca-bundle`.) The same with boto3:

    boto3.Session(profile_name="{PROFILE}").client("iot").create_provisioning_claim(templateName="{TEMPLATE}")

The credentials provider, as AWS's guide shows it with curl (the sample device's certificate and thing):

    curl --cert {d}/device.pem --key {d}/device.key -H "x-amzn-iot-thingname: {SAMPLE_THING}" \
         --cacert {d}/ca.pem {credentials_url}

A device connects over MQTT to `localhost:{mqtt_port}` with `claim.pem`/`claim.key` (trusting `ca.pem`) and
provisions itself through `$aws/certificates/create/json` or `.../create-from-csr/json`, then
`$aws/provisioning-templates/{TEMPLATE}/provision/json` (parameter `SerialNumber`). The claim's policy
allows that template's topics only, as AWS's claim policies do.
"#
    )
}
