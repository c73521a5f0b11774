#!/usr/bin/env bash
# Static checks of the Swift package that need no Swift toolchain or Xcode. Prints each check; exits
# non-zero if any fails. Reads the generated Swift in target/bindings/swift (runs bindings/generate
# first when it is missing).
set -euo pipefail
ios=$(cd "$(dirname "$0")" && pwd)
cd "$ios/.."

swift=target/bindings/swift
if [ ! -s "$swift/ClaimLink.swift" ] || [ ! -s "$swift/ClaimLinkFFI.h" ] || [ ! -s "$swift/ClaimLinkFFI.modulemap" ]; then
  echo "==> no generated Swift yet: running bindings/generate"
  bindings/generate >/dev/null
fi

bash -n ios/build-xcframework.sh || { echo "FAIL: ios/build-xcframework.sh has a syntax error"; exit 1; }
refusal=0
if [ "$(uname -s)" != Darwin ]; then
  # Off macOS the script must stop at once, without building anything.
  set +e
  message=$(ios/build-xcframework.sh 2>&1 >/dev/null); status=$?
  set -e
  [ "$status" -ne 0 ] && grep -q "needs macOS" <<<"$message" && [ ! -e ios/ClaimLinkFFI.xcframework ] || refusal=1
fi

python3 - "$swift" "$refusal" <<'PY'
import re, sys
from pathlib import Path

swift_dir, refusal = Path(sys.argv[1]), sys.argv[2]
failures = []

def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)

def no_comments(text):
    """Swift source without comments (naive about `//` inside strings: none in the files read here)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)

def code_only(text):
    """Swift source without comments and string literals."""
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', no_comments(text))

def flexible(signature):
    """A regex for `signature` that tolerates the generator's irregular spacing around tokens."""
    parts = re.split(r"(\s+|[(),:?\->\[\]])", signature)
    return r"\s*".join(re.escape(p) for p in parts if p and not p.isspace())

# Names in uniffi.toml, Package.swift and the build script.
toml = Path("uniffi.toml").read_text()
section = re.search(r"^\[bindings\.swift\](.*?)(?=^\[|\Z)", toml, re.S | re.M)
def setting(key):
    m = re.search(rf'^{key}\s*=\s*"([^"]+)"', section.group(1), re.M) if section else None
    return m.group(1) if m else None
module, ffi, ffi_file = setting("module_name"), setting("ffi_module_name"), setting("ffi_module_filename")
check((module, ffi, ffi_file) == ("ClaimLink", "ClaimLinkFFI", "ClaimLinkFFI"),
      f"uniffi.toml [bindings.swift]: module {module}, FFI module {ffi}, FFI files {ffi_file}")

package = no_comments(Path("ios/Package.swift").read_text())
check(Path("ios/Package.swift").read_text().startswith("// swift-tools-version:"), "Package.swift starts with swift-tools-version")
for what, pattern in [
    (f'library product {module} built from target {module}', rf'\.library\(\s*name:\s*"{module}",\s*targets:\s*\[\s*"{module}"\s*\]\s*\)'),
    (f'binary target {ffi} at {ffi}.xcframework', rf'\.binaryTarget\(\s*name:\s*"{ffi}",\s*path:\s*"{ffi}\.xcframework"\s*\)'),
    (f'target {module} depends on {ffi}', rf'\.target\(\s*name:\s*"{module}",\s*dependencies:\s*\[\s*"{ffi}"\s*\]'),
    (f'target {module} has its sources in Sources/{module}', rf'path:\s*"Sources/{module}"'),
    ('platform iOS 13', r'platforms:\s*\[\s*\.iOS\(\.v13\)\s*\]'),
]:
    check(re.search(pattern, package) is not None, f"Package.swift: {what}")
script = Path("ios/build-xcframework.sh").read_text()
check("IPHONEOS_DEPLOYMENT_TARGET=13.0" in script, "build-xcframework.sh builds for iOS 13.0, as Package.swift declares")
check("module_name" in script and "ffi_module_name" in script and 'xcframework=ios/$ffi.xcframework' in script,
      "build-xcframework.sh takes the module names from uniffi.toml")
check('"$work/headers/module.modulemap"' in script, "build-xcframework.sh installs the module map as Headers/module.modulemap")
check(refusal == "0", "build-xcframework.sh refuses to run off macOS and builds nothing" if sys.platform != "darwin"
      else "(on macOS: the refusal check does not apply)")
ignore = Path("ios/.gitignore").read_text().split()
check(f"/Sources/{module}/{module}.swift" in ignore and f"/{ffi}.xcframework/" in ignore,
      "ios/.gitignore covers the generated Swift and the XCFramework")

# The generated files.
generated_swift = swift_dir / f"{module}.swift"
modulemap = swift_dir / f"{ffi_file}.modulemap"
header = swift_dir / f"{ffi_file}.h"
for f in (generated_swift, modulemap, header):
    check(f.is_file() and f.stat().st_size > 0, f"{f} exists")
mm = modulemap.read_text() if modulemap.is_file() else ""
check(re.search(rf"^module {ffi}\s*\{{", mm, re.M) is not None, f"{modulemap.name} declares module {ffi}")
check(f'header "{ffi_file}.h"' in mm, f'{modulemap.name} names header "{ffi_file}.h"')
gen_raw = generated_swift.read_text() if generated_swift.is_file() else ""
gen = code_only(gen_raw)
check(re.search(rf"#if canImport\({ffi}\)\s*import {ffi}", gen) is not None, f"{generated_swift.name} imports {ffi}")

# What the handwritten Swift (ProvisioningStream.swift, CancellableProvision.swift) relies on, each
# checked in the generated Swift and in the wrapper.
stream_path = Path(f"ios/Sources/{module}/ProvisioningStream.swift")
cancellable_path = Path(f"ios/Sources/{module}/CancellableProvision.swift")
stream = code_only(stream_path.read_text())
cancellable = code_only(cancellable_path.read_text()) if cancellable_path.is_file() else ""
handwritten = stream + "\n" + cancellable
relied_on = [
    # (what, in the generated Swift, in ProvisioningStream.swift)
    ("class ProvisioningSession", r"open class ProvisioningSession\s*:", r"extension ProvisioningSession\b"),
    ("ProvisioningSession.provision(wifi:options:listener:) is the package's cancellable one, used by the stream",
     r"extension ProvisioningSession\s*\{.*?public func provision\(\s*wifi: WifiSettings,\s*options: ProvisionOptions = ProvisionOptions\(\),\s*listener: ProvisioningListener\? = nil\s*\) async throws -> ProvisionedDevice",
     flexible("self.provision(wifi: wifi, options: options, listener: listener)")),
    ("protocol ProvisioningListener: AnyObject, Sendable", r"public protocol ProvisioningListener\s*:\s*AnyObject,\s*Sendable\s*\{",
     r"class StreamListener\s*:\s*ProvisioningListener,\s*@unchecked Sendable"),
    ("ProvisioningListener.onEvent(event:)", flexible("func onEvent(event: ProvisioningEvent)"), flexible("func onEvent(event: ProvisioningEvent)")),
    ("struct ProvisioningEvent", r"public struct ProvisioningEvent\b", r"\bProvisioningEvent\b"),
    ("struct ProvisionedDevice", r"public struct ProvisionedDevice\b", r"\bProvisionedDevice\b"),
    ("class WifiSettings", r"open class WifiSettings\s*:", r"\bwifi: WifiSettings\b"),
    ("ProvisionOptions() (every field has a default)",
     flexible("templateParameters: [String: String] = [:],") + r".*?" + flexible("expectedThingName: String? = nil,") + r".*?" + flexible("deviceHint: String? = nil)"),
     flexible("options: ProvisionOptions = ProvisionOptions()")),
    ("ProvisioningFailure has description (exported Display) and does not declare CustomStringConvertible itself",
     r"enum ProvisioningFailure:(?:(?!CustomStringConvertible)[^{])*\{.*?public var description: String \{.*?provisioningfailure_uniffi_trait_display",
     r"extension ProvisioningFailure: CustomStringConvertible \{\}"),
    ("records Sendable only under compiler(>=6)",
     r"#if compiler\(>=6\)\s*extension ProvisioningEvent: Sendable \{\}\s*#endif.*?#if compiler\(>=6\)\s*extension ProvisionedDevice: Sendable \{\}\s*#endif|"
     r"#if compiler\(>=6\)\s*extension ProvisionedDevice: Sendable \{\}\s*#endif.*?#if compiler\(>=6\)\s*extension ProvisioningEvent: Sendable \{\}\s*#endif",
     r"#if compiler\(>=6\)\s*extension ProvisioningUpdate: Sendable \{\}\s*#endif"),
]
for what, in_generated, in_stream in relied_on:
    where = cancellable if what.startswith("ProvisioningSession.provision(") else gen
    check(re.search(in_generated, where, re.S) is not None and re.search(in_stream, stream, re.S) is not None,
          f"{what}: in the generated Swift and used by ProvisioningStream.swift")

# CancellableProvision.swift: the generated `provision` is renamed (uniffi.toml [bindings.swift.rename]),
# and the cancellable one is built on startProvision + TaskHandle.
check(re.search(r'^\[bindings\.swift\.rename\]\s*\n\s*"ProvisioningSession\.provision"\s*=\s*"provisionIgnoringTaskCancellation"', toml, re.M) is not None,
      "uniffi.toml renames ProvisioningSession.provision to provisionIgnoringTaskCancellation for Swift")
check(re.search(r"\bfunc provision\(", gen) is None
      and re.search(flexible("open func provisionIgnoringTaskCancellation(wifi: WifiSettings, options: ProvisionOptions = ProvisionOptions(), listener: ProvisioningListener? = nil) async throws -> ProvisionedDevice"), gen) is not None,
      "the generated Swift has provisionIgnoringTaskCancellation and no provision of its own (the package's would clash)")
for what, in_generated, in_cancellable in [
    ("ProvisioningSession.startProvision(wifi:options:listener:completion:) throws -> TaskHandle",
     flexible("open func startProvision(wifi: WifiSettings, options: ProvisionOptions, listener: ProvisioningListener?, completion: ProvisioningCompletion) throws -> TaskHandle"),
     flexible("self.startProvision(wifi: wifi, options: options, listener: listener, completion: completion)")),
    ("TaskHandle.cancel(), a Sendable class", r"open class TaskHandle\s*:\s*TaskHandleProtocol,\s*@unchecked Sendable.*?open func cancel\(\)", r"\bhandle(\?)?\.cancel\(\)"),
    ("protocol ProvisioningCompletion: AnyObject, Sendable with onSuccess(device:) / onFailure(failure:)",
     r"public protocol ProvisioningCompletion\s*:\s*AnyObject,\s*Sendable\s*\{[^}]*func onSuccess\(device: ProvisionedDevice\)[^}]*func onFailure\(failure: ProvisioningFailure\)",
     r"class ContinuationCompletion\s*:\s*ProvisioningCompletion,\s*@unchecked Sendable.*?func onSuccess\(device: ProvisionedDevice\).*?func onFailure\(failure: ProvisioningFailure\)"),
    ("ProvisioningFailure.Cancelled", r"enum ProvisioningFailure\b.*?case Cancelled\b", r"ProvisioningFailure\.Cancelled\b"),
    ("the run's Task cancellation goes to its TaskHandle", r".", r"withTaskCancellationHandler\s*\{.*?\}\s*onCancel:\s*\{\s*run\.cancel\(\)\s*\}"),
]:
    check(re.search(in_generated, gen, re.S) is not None and re.search(in_cancellable, cancellable, re.S) is not None,
          f"{what}: in the generated Swift and used by CancellableProvision.swift")

# Every capitalised name ProvisioningStream.swift uses is Swift's, its own, or declared by the generator.
swift_names = {"AsyncIterator", "AsyncSequence", "AsyncThrowingStream", "Bool", "CheckedContinuation", "Continuation", "CustomStringConvertible", "Element", "Error", "Foundation", "Iterator", "NSLock", "Sendable", "Task"}
check(re.search(r"extension ProvisioningFailure\s*:[^{]*CustomStringConvertible", gen) is None,
      "the generated Swift declares no CustomStringConvertible of ProvisioningFailure (ours would be redundant)")
own = set(re.findall(r"\b(?:enum|class|struct|protocol)\s+(\w+)", handwritten))
declared = set(re.findall(r"\b(?:class|struct|enum|protocol)\s+(\w+)", gen))
used = set(re.findall(r"\b[A-Z]\w*\b", handwritten)) - swift_names - own - {"Cancelled"}
check(bool(used) and used <= declared, f"types the handwritten Swift takes from the generator are declared there: {', '.join(sorted(used))}")
check(not (own & declared), f"its own names do not clash with generated ones: {', '.join(sorted(own))}")
check(re.search(r"\bprovisionUpdates\b", gen) is None, "the generated Swift has no provisionUpdates of its own")

# The README's example uses the generated names.
readme = Path("ios/README.md").read_text()
example = re.search(r"## Using it\s*```swift\n(.*?)```", readme, re.S)
check(example is not None, "ios/README.md has a Swift example")
example = example.group(1) if example else ""
for what, in_generated, in_example in [
    ("TokenProvider.bearerToken(refresh:) async throws -> String", flexible("func bearerToken(refresh: Bool) async throws -> String"), flexible("func bearerToken(refresh: Bool) async throws -> String")),
    ("Provisioner.withBackend(settings:backendUrl:tokens:)", flexible("public static func withBackend(settings: ProvisionerSettings, backendUrl: String, tokens: TokenProvider)"), r"Provisioner\.withBackend\(\s*settings:.*?backendUrl:.*?tokens:"),
    ("ProvisionerSettings(template:iotEndpoint:) with defaults for the rest", flexible("template: String,") + r".*?" + flexible("iotEndpoint: String,") + r".*?" + flexible("extraRootCertificatesPem: [String] = []"), r"ProvisionerSettings\(template:[^,]+, iotEndpoint:[^,)]+\)"),
    ("parseProvisioningQr(payload:)", flexible("public func parseProvisioningQr(payload: String) throws -> ProvisioningQrCode"), r"parseProvisioningQr\(payload:"),
    ("ProvisioningQrCode.name / .secret", r"public let name: String.*?public let secret: DeviceSecret", r"qr\.name\b.*?qr\.secret\b"),
    ("bleDeviceLink(name:scanSecs:) async throws", flexible("public func bleDeviceLink(name: String, scanSecs: Int32) async throws -> DeviceLink"), r"bleDeviceLink\(name:.*?scanSecs:"),
    ("Provisioner.connect(link:secret:listener:) async throws", flexible("open func connect(link: DeviceLink, secret: DeviceSecret, listener: ProvisioningListener? = nil) async throws -> ProvisioningSession"), r"provisioner\.connect\(link:.*?secret:.*?listener:"),
    ("WifiSettings(ssid:passphrase:) throws", flexible("public convenience init(ssid: String, passphrase: String) throws"), r"try WifiSettings\(ssid:.*?passphrase:"),
    ("ProvisioningEvent.stage / .claimTimeLeft", r"public let stage: Stage\b.*?public let claimTimeLeft: TimeInterval\?", r"event\.stage\b.*?event\.claimTimeLeft\b"),
    ("ProvisionedDevice.thingName", r"public let thingName: String\b", r"device\.thingName\b"),
    ("ProvisioningFailure.WifiPasswordRejected", r"enum ProvisioningFailure\b.*?case WifiPasswordRejected\b", r"catch ProvisioningFailure\.WifiPasswordRejected\b"),
    ("ProvisioningSession.disconnect() async throws", flexible("open func disconnect() async throws"), r"session\.disconnect\(\)"),
]:
    check(re.search(in_generated, gen, re.S) is not None and re.search(in_example, example, re.S) is not None,
          f"README example: {what}")

print()
if failures:
    print(f"ios/check.sh: {len(failures)} check(s) failed")
    sys.exit(1)
print("ios/check.sh: all checks passed (static only: no Swift was compiled)")
PY
