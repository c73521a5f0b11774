//! Why an exchange failed at the transport level: [`LinkError`], with typed reasons
//! ([`DeviceRefusal`], [`LinkFault`]) instead of free-form strings, so that every kind keeps its
//! meaning when it crosses the FFI (an app's link reports it, or an app calls one of the SDK's links).

use super::ble::GattError;
use crate::net::NetError;

/// Why an exchange failed at the transport level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
// Exhaustive on purpose: the FFI crate maps every variant to an app action, and a new variant
// must fail its build until it is mapped.
pub enum LinkError {
    /// The device went away (BLE disconnect, TCP reset). A new session is needed.
    #[error("the device disconnected")]
    Disconnected,
    /// The device did not answer in time.
    #[error("the device did not answer within {millis} ms")]
    Timeout {
        /// The time waited.
        millis: u64,
    },
    /// The device has no such endpoint.
    #[error("the device has no endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The message is larger than the link (or the device) accepts.
    #[error("a {len}-byte message exceeds the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The device refused the request (an HTTP socket closed without an answer while the device still
    /// listens, HTTP 500, an ATT error): ESP-IDF's way of failing a handler.
    #[error("the device refused the request: {0}")]
    DeviceError(DeviceRefusal),
    /// Another exchange is in flight on this link.
    #[error("another exchange is in flight")]
    Busy,
    /// The device is not there: the BLE stack no longer knows the peripheral, or it stopped
    /// advertising.
    #[error("the device was not found (off, out of range, or no longer advertising)")]
    DeviceNotFound,
    /// Any other transport failure.
    #[error("transport failure: {0}")]
    Other(LinkFault),
}

/// How the device refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceRefusal {
    /// An HTTP 500 (ESP-IDF's httpd closes the socket instead, [`Self::ClosedWithoutAnswer`]; other
    /// servers answer 500 when a handler fails).
    #[error("HTTP {0}")]
    HttpStatus(u16),
    /// The device closed the connection in answer to the request, without an HTTP status, and still
    /// accepts connections: how ESP-IDF's httpd fails a request (protocomm_httpd returns an error,
    /// esp_http_server closes the socket). A device that is gone is [`LinkError::Disconnected`].
    #[error("the device closed the connection without an answer")]
    ClosedWithoutAnswer,
    /// An ATT error, as the platform's BLE stack reports it.
    #[error("ATT error: {0}")]
    Att(String),
    /// Reported by an app's own link, in its words.
    #[error("{0}")]
    Reported(String),
}

/// A transport failure of another kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkFault {
    /// The OS refused Bluetooth: the app must request the permission.
    #[error("Bluetooth permission denied: the app must request it")]
    BluetoothPermission,
    /// Connecting failed, after the retries first-connect failures get.
    #[error("could not connect: {0}")]
    Connect(GattError),
    /// A GATT operation failed.
    #[error("{0}")]
    Gatt(GattError),
    /// The peripheral lacks a characteristic every provisioning device has.
    #[error("not a provisioning device: no {missing:?} characteristic")]
    NotProvisioningDevice {
        /// The endpoint it lacks.
        missing: &'static str,
    },
    /// A device URL that is not `http://host:port`.
    #[error("device URL {url:?} must be http://host:port")]
    DeviceUrl {
        /// The URL given.
        url: String,
    },
    /// The HTTP client could not be set up.
    #[error("HTTP client: {0}")]
    HttpClient(NetError),
    /// The device answered an HTTP status protocomm does not use.
    #[error("device answered HTTP {0}")]
    HttpStatus(u16),
    /// The HTTP exchange failed (as reqwest reports it).
    #[error("HTTP: {0}")]
    Http(String),
    /// An app's link returned an answer far larger than any protocomm message.
    #[error("the app's link returned a {len}-byte answer")]
    OversizedAnswer {
        /// Its size.
        len: usize,
    },
    /// Reported by an app's own link, in its words.
    #[error("{0}")]
    Reported(String),
}
