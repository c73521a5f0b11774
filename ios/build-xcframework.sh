#!/usr/bin/env bash
# Builds ios/ClaimLinkFFI.xcframework (the Rust static library for iOS devices and simulators, with its
# C header and module map) and ios/Sources/ClaimLink/ClaimLink.swift (the uniffi-generated Swift).
# Runs on macOS with Xcode and rustup. Afterwards ios/ is a complete Swift package (Package.swift).
#
# Default cargo features, so btleplug is in: on iOS it drives CoreBluetooth, and bleDeviceLink /
# scanBleDevices work without app code.
#
# The Swift comes from the host's unstripped debug build with the same (default) features, not from the
# iOS libraries: uniffi (library mode) reads its metadata from symbols in the library, and that metadata
# depends on the Rust source and the features, not on the target.
set -euo pipefail
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode (this is $(uname -s)); nothing was built" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "build-xcframework.sh: xcodebuild not found: install Xcode and run xcode-select" >&2; exit 1; }
command -v rustup >/dev/null || { echo "build-xcframework.sh: rustup not found" >&2; exit 1; }

ios=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$ios/.." && pwd)
cd "$root"
say() { printf '==> %s\n' "$*"; }
die() { printf 'build-xcframework.sh: %s\n' "$*" >&2; exit 1; }

# The module names come from uniffi.toml, as in bindings/generate.
module=$(sed -n '/\[bindings.swift\]/,/^\[/s/^module_name *= *"\(.*\)"/\1/p' uniffi.toml)
ffi=$(sed -n '/\[bindings.swift\]/,/^\[/s/^ffi_module_name *= *"\(.*\)"/\1/p' uniffi.toml)
[ -n "$module" ] && [ -n "$ffi" ] || die "no module_name / ffi_module_name under [bindings.swift] in uniffi.toml"

# Keep in step with `platforms` in Package.swift.
export IPHONEOS_DEPLOYMENT_TARGET=13.0
device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
work=target/ios-xcframework
xcframework=ios/$ffi.xcframework

say "adding the Rust targets (no-op when installed)"
rustup target add "$device" "${simulators[@]}"

for target in "$device" "${simulators[@]}"; do
  say "building libclaimlink.a for $target (release, default features)"
  cargo rustc --release -p claimlink --lib --crate-type staticlib --target "$target"
done

rm -rf "$work"
mkdir -p "$work/simulator" "$work/headers" "$work/swift"
say "joining the simulator slices (arm64 + x86_64) with lipo"
lipo -create \
  "target/${simulators[0]}/release/libclaimlink.a" \
  "target/${simulators[1]}/release/libclaimlink.a" \
  -output "$work/simulator/libclaimlink.a"

say "generating Swift from the host debug library (unstripped, default features)"
cargo build -p claimlink --lib
lib=target/debug/libclaimlink.dylib
[ -f "$lib" ] || die "no $lib"
cargo run --quiet -p uniffi-bindgen -- generate --library "$lib" --language swift \
  --out-dir "$work/swift" --no-format >/dev/null
for f in "$module.swift" "$ffi.h" "$ffi.modulemap"; do
  [ -s "$work/swift/$f" ] || die "uniffi wrote no $work/swift/$f"
done

# An XCFramework's Headers directory carries the module map under the name clang looks for.
cp "$work/swift/$ffi.h" "$work/headers/"
cp "$work/swift/$ffi.modulemap" "$work/headers/module.modulemap"

say "creating $xcframework"
rm -rf "$xcframework"
xcodebuild -create-xcframework \
  -library "target/$device/release/libclaimlink.a" -headers "$work/headers" \
  -library "$work/simulator/libclaimlink.a" -headers "$work/headers" \
  -output "$xcframework"

mkdir -p "ios/Sources/$module"
cp "$work/swift/$module.swift" "ios/Sources/$module/$module.swift"
say "done: $xcframework and ios/Sources/$module/$module.swift"
say "check the package builds: cd ios && xcodebuild -scheme $module -destination 'generic/platform=iOS Simulator' build"
