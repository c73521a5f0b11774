//! The cases around the session: `proto-ver`, the handshake with a wrong and the right password,
//! `aws-status` before a claim, scan, and prov-ctrl Reset / Reprov while a claim is held.

use claimlink_core::internal::endpoint;
use claimlink_core::{
    CloudStage, DeviceCapabilities, DeviceCredentials, LinkError, ProtocolError, SecretString,
    SecurityScheme, WifiState,
};

use super::{raw, CaseResult, Checker};

impl Checker {
    /// `proto-ver`: JSON with `prov.ver`, `prov.sec_ver` (the scheme the credentials are for; Sec2
    /// with `sec_patch_ver` ≥ 1, which claimlink requires by default), `aws.ver` 1.x and `aws.cap`
    /// with `claim` and `status` (docs/protocol.md §2). `prov.cap` is reported, not judged: ESP-IDF's
    /// wifi_provisioning (`components/wifi_provisioning/src/manager.c`) lists `wifi_scan`, `no_pop`,
    /// `no_sec`; idf-extra-components' network_provisioning (`network_provisioning/src/manager.c`)
    /// adds `wifi_prov`.
    pub(super) async fn proto_ver(&self) -> CaseResult {
        let link = self
            .opener
            .open()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let answer = link
            .exchange(endpoint::VERSION, b"ESP")
            .await
            .map_err(|e| format!("proto-ver failed: {e}"))?;
        link.disconnect().await;
        let json: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| format!("proto-ver is not JSON: {e}"))?;
        let caps = DeviceCapabilities::parse(&answer).map_err(|e| e.to_string())?;
        if json["prov"].get("sec_ver").is_none() {
            return Err("prov.sec_ver is missing (firmware older than ESP-IDF v5.0?)".into());
        }
        let expected = self.credentials.security;
        if caps.security != expected {
            return Err(format!(
                "the device offers {:?}, the credentials are for {expected:?}",
                caps.security
            ));
        }
        match caps.security {
            SecurityScheme::Sec2 if caps.security_patch == 0 => {
                return Err("Sec2 patch 0 (sec_patch_ver absent or 0) reuses the GCM IV; claimlink refuses it by default".into())
            }
            SecurityScheme::Sec0 => {
                return Err("Sec0: the claim key would cross the air in clear text".into())
            }
            _ => {}
        }
        let aws = caps
            .aws
            .as_ref()
            .ok_or("no \"aws\" object: the firmware does not have claimlink's extension")?;
        aws.dialect().map_err(|e| e.to_string())?;
        if !aws.claim || !aws.status {
            return Err(format!(
                "aws.cap is {:?}: it must list \"claim\" and \"status\"",
                aws.capabilities
            ));
        }
        Ok(format!(
            "prov {} sec_ver {} patch {} cap {:?}; aws {} cap {:?}",
            caps.version,
            match caps.security {
                SecurityScheme::Sec0 => 0,
                SecurityScheme::Sec1 => 1,
                SecurityScheme::Sec2 => 2,
            },
            caps.security_patch,
            caps.capabilities,
            aws.version,
            aws.capabilities
        ))
    }

    /// A wrong password (Sec2) or PoP (Sec1) is refused. ESP-IDF refuses a wrong proof by failing the
    /// session handler: over BLE an error, over HTTP `protocomm_httpd.c`'s `common_post_handler`
    /// returns `ESP_FAIL` and esp_http_server closes the socket without a status. Either is a
    /// refusal here (the SDK reports both as a wrong password); a device that completes the
    /// handshake is not, nor one that cannot be reached.
    pub(super) async fn wrong_password(&self) -> CaseResult {
        let wrong = |secret: &Option<SecretString>| {
            SecretString::new(format!(
                "{}-not-it",
                secret.as_ref().map(|s| s.expose()).unwrap_or_default()
            ))
        };
        let credentials = match self.credentials.security {
            SecurityScheme::Sec2 => DeviceCredentials::username_password(
                self.credentials.username.clone(),
                wrong(&self.credentials.secret),
            ),
            SecurityScheme::Sec1 => DeviceCredentials::pop(wrong(&self.credentials.secret)),
            SecurityScheme::Sec0 => return Ok("Sec0 has no password to get wrong".into()),
        };
        let (steps, result) = self.establish_counted(&credentials).await;
        match result {
            Ok(_) => Err(
                "the device did not refuse a wrong proof: a session was established with a wrong password"
                    .into(),
            ),
            Err(ProtocolError::WrongCredentials) => Ok("the proof was refused".into()),
            Err(ProtocolError::Link(LinkError::Timeout { millis })) => Err(format!(
                "no answer to the proof within {millis} ms (expected a refusal)"
            )),
            // Closed without an answer at the proof (the second handshake step), not before it.
            Err(ProtocolError::Link(e @ LinkError::Other(_))) if steps == 2 => Ok(format!(
                "the connection was closed at the proof ({e}), as ESP-IDF's httpd does"
            )),
            Err(ProtocolError::Link(e)) => Err(format!(
                "the link failed at handshake step {steps} ({e}), not as a refused proof"
            )),
            Err(ProtocolError::DeviceNotAuthentic) => Err(
                "the device did not refuse a wrong proof: it answered with its own proof / verify data (which did not verify), where ESP-IDF fails the handler"
                    .into(),
            ),
            Err(e) => Err(format!("unexpected failure: {e}")),
        }
    }

    /// The right password opens a session (after the wrong one: a failed handshake does not lock
    /// the device) and an encrypted request is answered.
    pub(super) async fn handshake(&self) -> CaseResult {
        let session = self.session().await?;
        let stage = raw::stage(&session).await?;
        let caps = session.capabilities();
        Ok(format!(
            "{:?} patch {} session established; an encrypted aws-status answered ({stage:?})",
            caps.security, caps.security_patch
        ))
    }

    /// `aws-status` on a device that holds no claim: `Idle` (docs/protocol.md §6).
    pub(super) async fn status_before(&self) -> CaseResult {
        let session = self.session().await?;
        match raw::stage(&session).await? {
            CloudStage::Idle => Ok("Idle".into()),
            other => Err(format!(
                "{other:?} (expected Idle on a device that holds no claim: check a freshly booted device)"
            )),
        }
    }

    /// `prov-scan` as the SDK reads it (start, status, results paged under the 480-byte cap).
    pub(super) async fn scan(&self) -> CaseResult {
        let session = self.session().await?;
        if !session.capabilities().wifi_scan {
            return Ok("not offered (no wifi_scan in prov.cap)".into());
        }
        let networks = session
            .scan_wifi()
            .await
            .map_err(|e| format!("scan failed: {e}"))?;
        let names: Vec<String> = networks.iter().map(|n| n.ssid_lossy()).collect();
        Ok(format!("{} networks: {}", networks.len(), names.join(", ")))
    }

    /// prov-ctrl while a claim is held and no Wi-Fi was applied. Reset: network_provisioning's
    /// `network_prov_mgr_reset_wifi_sm_state_on_failure` accepts it in the started state (nothing to
    /// reset), ESP-IDF's wifi_provisioning `wifi_prov_mgr_reset_sm_state_on_failure` only after a
    /// failure: either answer passes, but it must clear the Wi-Fi configuration only — the claim
    /// stays (docs/protocol.md §4). Reprov: `..._reset_wifi_sm_state_for_reprovision` refuses it
    /// unless the firmware disabled auto-stop: either answer passes, and the session must survive.
    pub(super) async fn reset_reprov(&self) -> CaseResult {
        let session = self.session().await?;
        let result = async {
            self.commit_claim(&session).await?;
            let reset = match session.reset_wifi().await {
                Ok(()) => "Reset accepted",
                Err(ProtocolError::DeviceRefused { .. }) => "Reset refused (nothing failed yet)",
                Err(e) => return Err(format!("Reset failed: {e}")),
            };
            let stage = raw::stage(&session).await?;
            if stage != CloudStage::ClaimReceived {
                return Err(format!(
                    "{reset}, then aws-status says {stage:?}: Reset must keep the claim (expected ClaimReceived)"
                ));
            }
            // Nothing was applied: neither connected nor failed. A fresh network_provisioning
            // device reports Connecting (its station state starts at 0, WIFI_PROV_STA_CONNECTING,
            // manager.c), and Reset does not change what GetStatus reports; others say Disconnected.
            let wifi = match session.wifi_status().await {
                Ok(state @ (WifiState::Connecting | WifiState::Disconnected)) => state,
                Ok(other) => return Err(format!("{reset}; Wi-Fi status {other:?} (expected Connecting or Disconnected: nothing applied)")),
                Err(e) => return Err(format!("{reset}; Wi-Fi status failed: {e}")),
            };
            let reprov = match session.reprovision().await {
                Ok(()) => "Reprov accepted (auto-stop disabled)",
                Err(ProtocolError::DeviceRefused { .. }) => "Reprov refused (auto-stop on)",
                Err(e) => return Err(format!("{reset}; Reprov failed: {e}")),
            };
            raw::stage(&session)
                .await
                .map_err(|e| format!("{reset}; {reprov}; then {e}"))?;
            Ok(format!("{reset}, claim kept, Wi-Fi {wifi:?}; {reprov}; session still up"))
        }
        .await;
        let _ = raw::abort(&session).await;
        result
    }
}
