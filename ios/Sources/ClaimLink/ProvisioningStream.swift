// Idiomatic Swift over the generated API: a provisioning run as a cold AsyncSequence. Handwritten;
// compiled in the same module as the uniffi-generated ClaimLink.swift (see ios/README.md). The Kotlin
// counterpart is provisionFlow in bindings/kotlin/src/dev/claimlink/ProvisioningFlow.kt.

import Foundation

/// What a provisioning run yields: its progress, then the confirmed device.
public enum ProvisioningUpdate {
    /// A stage was reached.
    case progress(ProvisioningEvent)
    /// The device is online, confirmed by the cloud. The stream finishes after this.
    case finished(ProvisionedDevice)
}

// The generated records are Sendable only with Swift 6 compilers; follow them.
#if compiler(>=6)
extension ProvisioningUpdate: Sendable {}
#endif

// The generated ProvisioningFailure carries the SDK's English sentence as `description` (Rust's Display,
// exported) but does not declare the conformance; declaring it makes "\(failure)", print(failure) and
// localizedDescription read "the Wi-Fi network refused the passphrase" instead of a reflected enum.
extension ProvisioningFailure: CustomStringConvertible {}

/// The updates of one provisioning run, as `provisionUpdates` returns them: **cold**, like Kotlin's
/// `provisionFlow`. The run starts when the sequence is first iterated (each iteration starts a run of
/// its own), not when `provisionUpdates` is called.
public struct ProvisioningUpdates: AsyncSequence {
    public typealias Element = ProvisioningUpdate
    public typealias AsyncIterator = AsyncThrowingStream<ProvisioningUpdate, Error>.Iterator

    fileprivate let start: () -> AsyncThrowingStream<ProvisioningUpdate, Error>

    public func makeAsyncIterator() -> AsyncIterator {
        start().makeAsyncIterator()
    }
}

extension ProvisioningSession {
    /// Runs `provision(wifi:options:listener:)` and yields every stage as `.progress`, in order, then
    /// `.finished` with the confirmed device. A failure ends the sequence with its `ProvisioningFailure`.
    ///
    /// Cold: the run starts when the sequence is first iterated, not when this is called (as with
    /// Kotlin's `provisionFlow`). Leaving the loop, cancelling the iterating task, or dropping the
    /// iterator stops the run, and the SDK wipes the claim from the device.
    ///
    /// Stopping goes through the session's `cancel()`: the generated Swift does not pass a `Task`'s
    /// cancellation on to the Rust future it awaits (uniffi 0.32), so cancelling the task that awaits
    /// `provision` alone would leave the run going.
    public func provisionUpdates(
        wifi: WifiSettings,
        options: ProvisionOptions = ProvisionOptions()
    ) -> ProvisioningUpdates {
        ProvisioningUpdates(start: { self.startUpdates(wifi: wifi, options: options) })
    }

    private func startUpdates(
        wifi: WifiSettings,
        options: ProvisionOptions
    ) -> AsyncThrowingStream<ProvisioningUpdate, Error> {
        AsyncThrowingStream { continuation in
            let listener = StreamListener(session: self, continuation: continuation)
            let run = Task {
                do {
                    try Task.checkCancellation()
                    let device = try await self.provision(wifi: wifi, options: options, listener: listener)
                    continuation.yield(.finished(device))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { termination in
                run.cancel()
                if case .cancelled = termination {
                    self.cancel()
                }
            }
        }
    }
}

extension ProvisioningSession {
    /// `provision(wifi:options:listener:)`, stopped (and the claim wiped from the device) when the
    /// calling `Task` is cancelled. Use this rather than `provision` from Swift: the generated async
    /// call does not pass a `Task`'s cancellation on to Rust (uniffi 0.32), so this forwards it to the
    /// session's `cancel()`. That cancels only a run in progress; a cancellation that comes before the
    /// run has started is applied at the run's first event, so it is never lost.
    public func provisionCancellable(
        wifi: WifiSettings,
        options: ProvisionOptions = ProvisionOptions(),
        listener: ProvisioningListener? = nil
    ) async throws -> ProvisionedDevice {
        let cancelling = CancelOnEvent(session: self, forwardTo: listener)
        return try await withTaskCancellationHandler {
            try Task.checkCancellation()
            return try await self.provision(wifi: wifi, options: options, listener: cancelling)
        } onCancel: {
            cancelling.requestCancel()
        }
    }
}

/// Forwards a run's events to the app's listener, and cancels the run at its next event once the
/// calling task was cancelled (a `cancel()` before the run started finds no run to cancel).
///
/// `@unchecked Sendable`: the immutable properties are thread-safe objects, and `requested` is only
/// read and written under `lock`.
private final class CancelOnEvent: ProvisioningListener, @unchecked Sendable {
    private let session: ProvisioningSession
    private let app: ProvisioningListener?
    private let lock = NSLock()
    private var requested = false

    init(session: ProvisioningSession, forwardTo app: ProvisioningListener?) {
        self.session = session
        self.app = app
    }

    func requestCancel() {
        lock.lock()
        requested = true
        lock.unlock()
        session.cancel()
    }

    func onEvent(event: ProvisioningEvent) {
        lock.lock()
        let cancel = requested
        lock.unlock()
        if cancel {
            session.cancel()
        }
        app?.onEvent(event: event)
    }
}

/// Passes the SDK's events to the stream. Called on an SDK thread; never blocks (the stream's buffer is
/// unbounded, and a run has a few dozen events at most).
///
/// `@unchecked Sendable`: both stored properties are immutable references to thread-safe objects (a
/// stream continuation, and a session whose methods may be called from any thread).
private final class StreamListener: ProvisioningListener, @unchecked Sendable {
    private let session: ProvisioningSession
    private let continuation: AsyncThrowingStream<ProvisioningUpdate, Error>.Continuation

    init(session: ProvisioningSession, continuation: AsyncThrowingStream<ProvisioningUpdate, Error>.Continuation) {
        self.session = session
        self.continuation = continuation
    }

    func onEvent(event: ProvisioningEvent) {
        if case .terminated = continuation.yield(.progress(event)) {
            // The consumer went away; make sure the run stops (idempotent: `onTermination` said it too).
            session.cancel()
        }
    }
}
