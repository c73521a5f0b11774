//! uniffi's bindgen command line, built from the same uniffi version as the SDK.
//!
//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libclaimlink.so --language kotlin --out-dir out`

fn main() {
    uniffi::uniffi_bindgen_main()
}
