//! The simulated radio world: which networks a device sees and what happens when it joins one.

use std::net::Ipv4Addr;
use std::time::Duration;

use claimlink_core::internal::proto::WifiAuthMode;

/// A network in the simulated world.
#[derive(Clone, Debug)]
pub struct SimNetwork {
    /// Its SSID.
    pub ssid: String,
    /// The passphrase that works (empty: open).
    pub passphrase: String,
    /// Signal, dBm.
    pub rssi: i32,
    /// Channel.
    pub channel: u32,
    /// BSSID.
    pub bssid: [u8; 6],
    /// Its DHCP server never answers.
    pub dhcp_times_out: bool,
}

impl SimNetwork {
    /// A WPA2 network with a good signal.
    pub fn wpa2(ssid: &str, passphrase: &str) -> Self {
        let mut bssid = [0x24, 0x0a, 0xc4, 0, 0, 0];
        for (i, b) in ssid.bytes().enumerate() {
            bssid[3 + i % 3] ^= b;
        }
        Self {
            ssid: ssid.to_owned(),
            passphrase: passphrase.to_owned(),
            rssi: -48,
            channel: 6,
            bssid,
            dhcp_times_out: false,
        }
    }

    /// The authentication mode it advertises.
    pub fn auth(&self) -> WifiAuthMode {
        if self.passphrase.is_empty() {
            WifiAuthMode::Open
        } else {
            WifiAuthMode::Wpa2Psk
        }
    }
}

/// The world a simulated device lives in.
#[derive(Clone, Debug)]
pub struct WifiWorld {
    /// Visible networks.
    pub networks: Vec<SimNetwork>,
    /// Time from ApplyConfig to an outcome (association + DHCP).
    pub connect_time: Duration,
    /// Connection retries before the device gives up (ESP's `attempts_remaining`).
    pub retries: u32,
}

impl Default for WifiWorld {
    fn default() -> Self {
        Self {
            networks: vec![
                SimNetwork::wpa2("claimlink-lab", "correct horse battery"),
                SimNetwork {
                    rssi: -71,
                    channel: 11,
                    ..SimNetwork::wpa2("neighbours-wifi", "not-yours-123")
                },
                SimNetwork {
                    rssi: -80,
                    channel: 1,
                    ..SimNetwork::wpa2("cafe-guest", "")
                },
            ],
            connect_time: Duration::from_millis(300),
            retries: 0,
        }
    }
}

/// What joining a network leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JoinOutcome {
    Connected {
        ip: Ipv4Addr,
        channel: u32,
        bssid: [u8; 6],
    },
    AuthError,
    NotFound,
    DhcpTimeout,
}

impl WifiWorld {
    pub(crate) fn join(&self, ssid: &[u8], passphrase: &[u8], device_index: u16) -> JoinOutcome {
        let Some(n) = self.networks.iter().find(|n| n.ssid.as_bytes() == ssid) else {
            return JoinOutcome::NotFound;
        };
        if n.passphrase.as_bytes() != passphrase {
            return JoinOutcome::AuthError;
        }
        if n.dhcp_times_out {
            return JoinOutcome::DhcpTimeout;
        }
        JoinOutcome::Connected {
            // 192.168.1.100 onwards, one address per device.
            ip: Ipv4Addr::from(
                u32::from(Ipv4Addr::new(192, 168, 1, 100)) + u32::from(device_index),
            ),
            channel: n.channel,
            bssid: n.bssid,
        }
    }
}
