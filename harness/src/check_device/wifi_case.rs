//! The Wi-Fi retry sequence, run only when the checker is given a network the device can join
//! (`--wifi-ssid`): a wrong passphrase fails with `AuthError`, prov-ctrl Reset is accepted in that
//! failed state (ESP-IDF `wifi_prov_mgr_reset_sm_state_on_failure`, idf-extra-components
//! `network_prov_mgr_reset_wifi_sm_state_on_failure`: both accept it there), and the corrected
//! passphrase joins — on the same session, as the SDK's retry after a wrong passphrase does. It runs
//! last: once the device has joined, it may stop provisioning (auto-stop).

use std::time::{Duration, Instant};

use claimlink_core::internal::DeviceSession;
use claimlink_core::{SecretString, WifiCredentials, WifiFailure, WifiState};

use super::{raw, CaseResult, Checker};

/// How long a device may take to join or to give up on a network.
const JOIN_LIMIT: Duration = Duration::from_secs(60);
/// How often the Wi-Fi status is read while waiting (the SDK polls about once a second).
const POLL: Duration = Duration::from_millis(100);

/// A wrong passphrase for `wifi` (valid as a WPA2 passphrase, never the right one).
fn wrong_passphrase(wifi: &WifiCredentials) -> Result<WifiCredentials, String> {
    let wrong = SecretString::new("claimlink-check-device-wrong".to_owned());
    WifiCredentials::new(wifi.ssid().to_vec(), wrong).map_err(|e| e.to_string())
}

/// Polls the Wi-Fi status until it is no longer connecting.
async fn settled(session: &DeviceSession) -> Result<WifiState, String> {
    let start = Instant::now();
    loop {
        let state = session
            .wifi_status()
            .await
            .map_err(|e| format!("Wi-Fi status failed: {e}"))?;
        match state {
            WifiState::Connecting | WifiState::AttemptFailed { .. } => {}
            // Right after Apply a device may still report the state before it.
            WifiState::Disconnected if start.elapsed() < Duration::from_secs(2) => {}
            other => return Ok(other),
        }
        if start.elapsed() > JOIN_LIMIT {
            return Err(format!("still {state:?} after {} s", JOIN_LIMIT.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Checker {
    /// Wrong passphrase → `AuthError` → Reset → corrected passphrase → `Connected`.
    pub(super) async fn wifi_retry(&self, wifi: &WifiCredentials) -> CaseResult {
        let session = self.session().await?;
        // No claim on the device: joining must not start a cloud flow with the test claim.
        raw::abort(&session).await?;
        let wrong = wrong_passphrase(wifi)?;
        session
            .set_wifi_config(&wrong)
            .await
            .map_err(|e| format!("SetConfig failed: {e}"))?;
        session
            .apply_wifi_config()
            .await
            .map_err(|e| format!("ApplyConfig failed: {e}"))?;
        match settled(&session).await? {
            WifiState::Failed(WifiFailure::AuthError) => {}
            WifiState::Failed(WifiFailure::NetworkNotFound) => {
                return Err("the device did not find the network: check --wifi-ssid".into())
            }
            other => {
                return Err(format!(
                    "with a wrong passphrase the device reported {other:?} (expected Failed(AuthError))"
                ))
            }
        }
        session
            .reset_wifi()
            .await
            .map_err(|e| format!("Reset after the failure was not accepted: {e}"))?;
        session
            .set_wifi_config(wifi)
            .await
            .map_err(|e| format!("SetConfig after Reset failed: {e}"))?;
        session
            .apply_wifi_config()
            .await
            .map_err(|e| format!("ApplyConfig after Reset failed: {e}"))?;
        match settled(&session).await? {
            WifiState::Connected { ip, .. } => Ok(format!(
                "wrong passphrase: Failed(AuthError); Reset accepted; corrected passphrase: Connected ({})",
                ip.map_or("no address".to_owned(), |ip| ip.to_string())
            )),
            other => Err(format!(
                "with the corrected passphrase after Reset the device reported {other:?} (expected Connected)"
            )),
        }
    }
}
