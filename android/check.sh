#!/usr/bin/env bash
# Static checks of the Android packaging that need no Android SDK, NDK or Gradle. Prints each check;
# exits non-zero if any fails. Uses the generated Kotlin in target/bindings/kotlin (bindings/generate
# makes it) or android/build/generated/uniffi (build-rust.sh --bindings).
set -euo pipefail
android=$(cd "$(dirname "$0")" && pwd)
cd "$android/.."

kotlin=target/bindings/kotlin/dev/claimlink/claimlink.kt
[ -s "$kotlin" ] || kotlin=android/build/generated/uniffi/dev/claimlink/claimlink.kt
if [ ! -s "$kotlin" ]; then
  echo "==> no generated Kotlin yet: running bindings/generate"
  bindings/generate >/dev/null
  kotlin=target/bindings/kotlin/dev/claimlink/claimlink.kt
fi

bash -n android/build-rust.sh || { echo "FAIL: android/build-rust.sh has a syntax error"; exit 1; }

python3 - "$kotlin" <<'PY'
import re, sys, xml.etree.ElementTree as ET
from pathlib import Path

kotlin_file = Path(sys.argv[1])
failures = []

def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)

A = "{http://schemas.android.com/apk/res/android}"
readme = Path("android/README.md").read_text()
gradle = Path("android/build.gradle.kts").read_text()

# The manifest: well-formed, and every permission explained in the README.
manifest = Path("android/src/main/AndroidManifest.xml")
try:
    root = ET.parse(manifest).getroot()
    check(True, f"{manifest} is well-formed XML")
except ET.ParseError as e:
    check(False, f"{manifest} is well-formed XML ({e})")
    root = None
if root is not None:
    perms = {p.get(A + "name"): p for p in root.iter("uses-permission")}
    check(bool(perms), f"the manifest declares permissions ({len(perms)})")
    for name, el in sorted(perms.items()):
        short = name.rsplit(".", 1)[-1]
        check(f"`{short}`" in readme, f"permission {short} is explained in android/README.md")
    scan = perms.get("android.permission.BLUETOOTH_SCAN")
    check(scan is not None and scan.get(A + "usesPermissionFlags") == "neverForLocation",
          "BLUETOOTH_SCAN carries usesPermissionFlags=neverForLocation")
    for legacy in ("BLUETOOTH", "BLUETOOTH_ADMIN", "ACCESS_FINE_LOCATION"):
        el = perms.get("android.permission." + legacy)
        check(el is not None and el.get(A + "maxSdkVersion") == "30", f"{legacy} has maxSdkVersion=30")

# R8 / ProGuard rules shipped to the apps.
rules = Path("android/consumer-rules.pro")
check(rules.is_file(), "android/consumer-rules.pro exists")
text = rules.read_text() if rules.is_file() else ""
for rule in ("-keep class com.sun.jna.** { *; }", "-keep class * implements com.sun.jna.** { *; }",
             "-dontwarn java.awt.*", "-keep class dev.claimlink.** { *; }"):
    check(rule in text, f"consumer-rules.pro has `{rule}`")
check('consumerProguardFiles("consumer-rules.pro")' in gradle, "build.gradle.kts ships consumer-rules.pro")

# Names: uniffi.toml's Kotlin package = the Gradle namespace = the generated file's package.
toml = Path("uniffi.toml").read_text()
section = re.search(r"^\[bindings\.kotlin\](.*?)(?=^\[|\Z)", toml, re.S | re.M)
package = re.search(r'^package_name\s*=\s*"([^"]+)"', section.group(1), re.M).group(1) if section else None
check(package == "dev.claimlink", f"uniffi.toml [bindings.kotlin] package_name is dev.claimlink ({package})")
namespace = re.search(r'namespace\s*=\s*"([^"]+)"', gradle)
check(namespace is not None and namespace.group(1) == package,
      f"build.gradle.kts namespace equals it ({namespace.group(1) if namespace else None})")
kt = kotlin_file.read_text()
check(re.search(rf"^package {re.escape(package or '')}\s*$", kt, re.M) is not None,
      f"{kotlin_file} is in package {package}")
check(re.search(r"minSdk\s*=\s*26\b", gradle) is not None, "minSdk is 26 (java.time.Duration)")
check("java.time.Duration" in kt, "the generated Kotlin does use java.time.Duration")
check(re.search(r"compileSdk\s*=\s*35\b", gradle) is not None, "compileSdk is 35")
for dep in ('"net.java.dev.jna:jna:5.14.0@aar"', '"org.jetbrains.kotlinx:kotlinx-coroutines-core:',
            '"org.jetbrains.kotlinx:kotlinx-coroutines-android:'):
    check(dep in gradle, f"build.gradle.kts depends on {dep.strip(chr(34)).rstrip(':')}")

# Source directories: the handwritten one exists; the generated one is where build-rust.sh writes.
check(Path("bindings/kotlin/src").is_dir() and 'java.srcDir("../bindings/kotlin/src")' in gradle,
      "source dir ../bindings/kotlin/src exists and is added")
flow = Path("bindings/kotlin/src/dev/claimlink/ProvisioningFlow.kt")
check(flow.is_file(), f"{flow} is there (not written here)")
script = Path("android/build-rust.sh").read_text()
check('java.srcDir("build/generated/uniffi")' in gradle and "generated=android/build/generated/uniffi" in script,
      "build/generated/uniffi is added and is where build-rust.sh generates")
check("--no-default-features" in script and "cargo ndk" in script, "build-rust.sh builds with --no-default-features")
ignore = Path("android/.gitignore").read_text().split()
check("/build/" in ignore and "/src/main/jniLibs/" in ignore, "android/.gitignore covers build/ and src/main/jniLibs/")

# AndroidGattPeripheral against the generated GattPeripheral interface.
check('java.srcDir("src/main/kotlin")' in gradle, "build.gradle.kts adds src/main/kotlin")
block = re.search(r"^public interface GattPeripheral \{(.*?)^\}", kt, re.S | re.M)
generated = {m.group(2): bool(m.group(1)) for m in re.finditer(r"^\s*(suspend )?fun `(\w+)`", block.group(1), re.M)} if block else {}
check(len(generated) == 9, f"generated GattPeripheral has 9 methods: {', '.join(sorted(generated))}")
peripheral = Path("android/src/main/kotlin/dev/claimlink/ble/AndroidGattPeripheral.kt")
code = peripheral.read_text() if peripheral.is_file() else ""
check(": GattPeripheral {" in code, f"{peripheral} implements GattPeripheral")
overrides = {m.group(2): bool(m.group(1)) for m in re.finditer(r"override (suspend )?fun (\w+)\(", code)}
overrides = {k: v for k, v in overrides.items() if not k.startswith("on")}  # BluetoothGattCallback's
check(overrides == generated, "it overrides exactly those methods, suspend where the interface is")
check("sketch:begin" not in readme, "android/README.md has no hand-written BLE sketch any more")

# AndroidSoftApLink against the generated DeviceLink interface.
block = re.search(r"^public interface DeviceLink \{(.*?)^\}", kt, re.S | re.M)
generated = {m.group(2): bool(m.group(1)) for m in re.finditer(r"^\s*(suspend )?fun `(\w+)`", block.group(1), re.M)} if block else {}
check(len(generated) == 7, f"generated DeviceLink has 7 methods: {', '.join(sorted(generated))}")
softap = Path("android/src/main/kotlin/dev/claimlink/softap/AndroidSoftApLink.kt")
code = softap.read_text() if softap.is_file() else ""
check(") : DeviceLink {" in code, f"{softap} implements DeviceLink")
overrides = {m.group(2): bool(m.group(1)) for m in re.finditer(r"override (suspend )?fun (\w+)\(", code)}
check(overrides == generated, "it overrides exactly those methods, suspend where the interface is")
check("Proxy.NO_PROXY" in code and "bindProcessToNetwork" not in code.split("package ", 1)[-1],
      "it opens its connections with Proxy.NO_PROXY and never binds the process")

print()
if failures:
    print(f"android/check.sh: {len(failures)} check(s) failed")
    sys.exit(1)
print("android/check.sh: all checks passed (static only: nothing was built for Android)")
PY
