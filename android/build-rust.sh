#!/usr/bin/env bash
# Builds what the AAR needs from the Rust workspace (the parent of this directory):
#
#   android/build-rust.sh              both steps below
#   android/build-rust.sh --libs       libclaimlink.so for arm64-v8a, armeabi-v7a, x86_64 into
#                                      android/src/main/jniLibs (cargo ndk, release)
#   android/build-rust.sh --bindings   the Kotlin binding into android/build/generated/uniffi
#
# Both use `--no-default-features`: the AAR ships without btleplug (feature `ble`). On Android the app
# passes its own DeviceLink built on BluetoothGatt; see README.md for why.
#
# The binding is generated from the host's unstripped debug build with the same features, not from the
# Android libraries: uniffi (library mode) reads its metadata from symbols in the library, and that
# metadata depends on the Rust source and the enabled features, not on the target. The release
# libraries are fine for running but not for reading that metadata back.
#
# Needs: Android NDK r26+ (ANDROID_NDK_HOME, or the NDK installed by Android Studio's SDK manager),
# `cargo install cargo-ndk`, and
# `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
# Runs on Linux and macOS hosts.
set -euo pipefail
android=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$android/.." && pwd)
cd "$root"
say() { printf '==> %s\n' "$*"; }
die() { printf 'build-rust.sh: %s\n' "$*" >&2; exit 1; }

abis=(arm64-v8a armeabi-v7a x86_64)
triples=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
api=26 # = minSdk in build.gradle.kts
jnilibs=android/src/main/jniLibs
generated=android/build/generated/uniffi

libs() {
  cargo ndk --version >/dev/null 2>&1 || die "cargo-ndk not found: cargo install cargo-ndk"
  local installed missing=()
  installed=$(rustup target list --installed)
  for t in "${triples[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing Rust targets: rustup target add ${missing[*]}"

  say "building libclaimlink.so (release, no btleplug, API $api) for ${abis[*]}"
  local targets=()
  for abi in "${abis[@]}"; do targets+=(-t "$abi"); done
  # cargo-ndk finds the NDK (ANDROID_NDK_HOME, ANDROID_HOME/ndk/<newest>) and, for NDK r27 and older,
  # links the 64-bit libraries with 16 KB page alignment (NDK r28+ does so by default).
  cargo ndk "${targets[@]}" --platform "$api" -o "$jnilibs" \
    build --release -p claimlink --no-default-features

  for abi in "${abis[@]}"; do
    [ -s "$jnilibs/$abi/libclaimlink.so" ] || die "cargo ndk produced no $jnilibs/$abi/libclaimlink.so"
  done
  check_page_alignment
  say "native libraries: $(du -ch "$jnilibs"/*/libclaimlink.so | tail -1 | cut -f1) in $jnilibs (unstripped; AGP strips them when packaging the app)"
}

# Google Play requires 16 KB-aligned LOAD segments in 64-bit libraries for apps targeting Android 15+.
# Checked when the NDK's llvm-readelf can be found; a warning, not a failure.
check_page_alignment() {
  local readelf
  readelf=$(ls "${ANDROID_NDK_HOME:-/nonexistent}"/toolchains/llvm/prebuilt/*/bin/llvm-readelf 2>/dev/null | head -1 || true)
  [ -n "$readelf" ] || { say "skipping the 16 KB page-alignment check (set ANDROID_NDK_HOME to enable it)"; return 0; }
  for abi in arm64-v8a x86_64; do
    local align
    align=$("$readelf" -lW "$jnilibs/$abi/libclaimlink.so" | awk '$1 == "LOAD" { print $NF }' | sort -u | head -1)
    if [ $((align)) -lt 16384 ]; then
      printf 'build-rust.sh: warning: %s/libclaimlink.so LOAD alignment is %s, below 16 KB (use NDK r28+ or a recent cargo-ndk)\n' "$abi" "$align" >&2
    fi
  done
}

bindings() {
  say "building the host debug library with --no-default-features (unstripped, for uniffi's metadata)"
  cargo build -p claimlink --lib --no-default-features --quiet
  local lib
  case "$(uname -s)" in
    Linux) lib=target/debug/libclaimlink.so ;;
    Darwin) lib=target/debug/libclaimlink.dylib ;;
    *) die "unsupported host $(uname -s): use Linux or macOS" ;;
  esac
  [ -f "$lib" ] || die "no $lib"
  say "generating the Kotlin binding into $generated"
  rm -rf "$generated"
  cargo run --quiet -p uniffi-bindgen -- generate --library "$lib" --language kotlin \
    --out-dir "$generated" --no-format >/dev/null
  [ -s "$generated/dev/claimlink/claimlink.kt" ] || die "uniffi wrote no $generated/dev/claimlink/claimlink.kt"
  bindings/plain-docs "$generated/dev/claimlink/claimlink.kt" >/dev/null
  # target/debug/libclaimlink.so is now the build without btleplug. bindings/generate builds the
  # default one again when it runs; each switch recompiles the claimlink crate itself (its cdylib
  # output has no per-feature file name), not its dependencies: about ten seconds.
}

case "${1:-all}" in
  all) libs; bindings ;;
  --libs) libs ;;
  --bindings) bindings ;;
  *) die "usage: android/build-rust.sh [--libs | --bindings]" ;;
esac
