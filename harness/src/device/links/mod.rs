//! How the phone reaches a simulated device: the fake GATT table ([`gatt`]) the SDK's BLE link runs
//! on, the simulated BLE link ([`ble`]), and HTTP on 127.0.0.1 ([`http`], SoftAP mode).

pub mod ble;
pub mod gatt;
pub mod http;
