// `session.provision(wifi:options:listener:)` that stops when its Task is cancelled. Handwritten;
// compiled in the same module as the uniffi-generated ClaimLink.swift (see ios/README.md).
//
// Why: uniffi 0.32's generated async functions await the Rust future in `withUnsafeContinuation`
// without a cancellation handler, so cancelling the awaiting Task leaves the Rust run going to its end
// (mozilla/uniffi-rs#2771, open). uniffi.toml renames the generated method to
// `provisionIgnoringTaskCancellation` for Swift ([bindings.swift.rename]); this file gives the plain
// name back, built on the FFI's `startProvision` + `TaskHandle`: the Task's cancellation cancels that
// run's handle, which aborts the Rust task (its clean-up wipes the claim from the device) and completes
// it with `ProvisioningFailure.Cancelled`. Kotlin and Python need none of this: cancelling their
// coroutine / asyncio task drops the Rust future.
//
// Not compiled here (no Swift toolchain on the machine this was written on): ios/check.sh checks that
// every generated name it uses exists with the signature it relies on.

import Foundation

extension ProvisioningSession {
    /// Brings the device onto AWS IoT: requests a claim (or hands over the one `prepareClaim` fetched),
    /// sends it and `wifi` to the device, and watches the device until the cloud confirms it. Progress
    /// goes to `listener`, on an SDK thread.
    ///
    /// Cancelling the calling `Task` stops the run: the SDK wipes the claim from the device and this
    /// throws `ProvisioningFailure.Cancelled`. A Task cancelled before the call starts nothing and throws
    /// `ProvisioningFailure.Cancelled` at once. (`session.cancel()` stops it too, from anywhere.)
    ///
    /// On `WifiPasswordRejected` or `WifiNetworkNotFound` the session stays usable: call again with
    /// corrected settings.
    public func provision(
        wifi: WifiSettings,
        options: ProvisionOptions = ProvisionOptions(),
        listener: ProvisioningListener? = nil
    ) async throws -> ProvisionedDevice {
        let run = CancellableRun()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProvisionedDevice, Error>) in
                let completion = ContinuationCompletion(continuation)
                if run.isCancelled {
                    completion.onFailure(failure: ProvisioningFailure.Cancelled)
                    return
                }
                do {
                    let handle = try self.startProvision(
                        wifi: wifi, options: options, listener: listener, completion: completion)
                    // Cancels at once when the Task was cancelled while the run was being started.
                    run.started(handle)
                } catch {
                    completion.fail(error)
                }
            }
        } onCancel: {
            run.cancel()
        }
    }

    /// The same as `provision(wifi:options:listener:)`, which now stops with its Task too.
    @available(*, deprecated, renamed: "provision(wifi:options:listener:)")
    public func provisionCancellable(
        wifi: WifiSettings,
        options: ProvisionOptions = ProvisionOptions(),
        listener: ProvisioningListener? = nil
    ) async throws -> ProvisionedDevice {
        try await provision(wifi: wifi, options: options, listener: listener)
    }
}

/// The run a `provision` call started, and whether its Task was cancelled: a cancellation that comes
/// before the handle exists is applied as soon as it does.
///
/// `@unchecked Sendable`: `handle` and `cancelled` are only read and written under `lock`, and
/// `TaskHandle` is thread-safe (`cancel()` is idempotent, from any thread).
private final class CancellableRun: @unchecked Sendable {
    private let lock = NSLock()
    private var handle: TaskHandle?
    private var cancelled = false

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    func started(_ handle: TaskHandle) {
        lock.lock()
        let cancelNow = cancelled
        self.handle = handle
        lock.unlock()
        if cancelNow {
            handle.cancel()
        }
    }

    func cancel() {
        lock.lock()
        cancelled = true
        let handle = self.handle
        lock.unlock()
        handle?.cancel()
    }
}

/// Resumes the `provision` call with the run's outcome. The SDK calls `onSuccess` or `onFailure`
/// exactly once per run (the handle's `cancel()` and the run's end take the completion under one lock);
/// `resumed` makes a second call a no-op all the same, since resuming a continuation twice traps.
///
/// `@unchecked Sendable`: `continuation` is only used once, under `lock`.
private final class ContinuationCompletion: ProvisioningCompletion, @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<ProvisionedDevice, Error>?

    init(_ continuation: CheckedContinuation<ProvisionedDevice, Error>) {
        self.continuation = continuation
    }

    private func take() -> CheckedContinuation<ProvisionedDevice, Error>? {
        lock.lock()
        defer { lock.unlock() }
        let taken = continuation
        continuation = nil
        return taken
    }

    func onSuccess(device: ProvisionedDevice) {
        take()?.resume(returning: device)
    }

    func onFailure(failure: ProvisioningFailure) {
        take()?.resume(throwing: failure)
    }

    func fail(_ error: Error) {
        take()?.resume(throwing: error)
    }
}
