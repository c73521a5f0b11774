// swift-tools-version:5.9
// The claimlink SDK for iOS as a Swift package. ClaimLinkFFI.xcframework (the Rust static library and
// its C header) and Sources/ClaimLink/ClaimLink.swift (the uniffi-generated Swift) are produced by
// build-xcframework.sh and are not checked in; ProvisioningStream.swift is handwritten.
// Module names: [bindings.swift] in ../uniffi.toml (module_name, ffi_module_name).
import PackageDescription

let package = Package(
    name: "ClaimLink",
    platforms: [.iOS(.v13)],
    products: [
        .library(name: "ClaimLink", targets: ["ClaimLink"]),
    ],
    targets: [
        .binaryTarget(name: "ClaimLinkFFI", path: "ClaimLinkFFI.xcframework"),
        .target(
            name: "ClaimLink",
            dependencies: ["ClaimLinkFFI"],
            path: "Sources/ClaimLink",
            linkerSettings: [
                // btleplug's CoreBluetooth backend; a static library does not carry its link flags.
                .linkedFramework("CoreBluetooth"),
            ]
        ),
    ]
)
