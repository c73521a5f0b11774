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
    /// Cold: the run starts when the sequence is first iterated, not when this is called, exactly as
    /// Kotlin's `provisionFlow` starts when collected; each iteration is a run of its own. Leaving the
    /// loop, cancelling the iterating task, or dropping the iterator stops the run, and the SDK wipes
    /// the claim from the device.
    ///
    /// Stopping cancels the Task that awaits `provision(wifi:options:listener:)`
    /// (CancellableProvision.swift), which cancels that run's own `TaskHandle`: it never reaches another
    /// run on the session.
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
            let listener = StreamListener(continuation: continuation)
            let run = Task {
                do {
                    let device = try await self.provision(wifi: wifi, options: options, listener: listener)
                    continuation.yield(.finished(device))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in
                // Finished: nothing to stop. Cancelled (the consumer left): stops the run.
                run.cancel()
            }
        }
    }
}

/// Passes the SDK's events to the stream. Called on an SDK thread; never blocks (the stream's buffer is
/// unbounded, and a run has a few dozen events at most). An event after the consumer left is dropped:
/// `onTermination` has already cancelled the run.
///
/// `@unchecked Sendable`: its one stored property is an immutable stream continuation, which is
/// thread-safe.
private final class StreamListener: ProvisioningListener, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<ProvisioningUpdate, Error>.Continuation

    init(continuation: AsyncThrowingStream<ProvisioningUpdate, Error>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: ProvisioningEvent) {
        continuation.yield(.progress(event))
    }
}
