// Idiomatic Kotlin over the generated API: a provisioning run as a cold Flow. Shipped in the AAR next
// to the generated bindings, and exercised on the JVM by bindings/kotlin/test.
package dev.claimlink

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.launch

/** What a provisioning run emits: its progress, then the confirmed device. */
sealed interface ProvisioningUpdate {
    /** A stage was reached. */
    data class Progress(val event: ProvisioningEvent) : ProvisioningUpdate

    /** The device is online, confirmed by the cloud. The flow completes after this. */
    data class Finished(val device: ProvisionedDevice) : ProvisioningUpdate
}

/** A [ProvisioningListener] from a lambda (called on an SDK thread). */
fun provisioningListener(onEvent: (ProvisioningEvent) -> Unit): ProvisioningListener =
    object : ProvisioningListener {
        override fun onEvent(event: ProvisioningEvent) = onEvent(event)
    }

/**
 * Runs [ProvisioningSession.provision] when collected: every stage as [ProvisioningUpdate.Progress],
 * in order, then [ProvisioningUpdate.Finished]. A failure ends the flow with its [ProvisioningFailure].
 * Cancelling the collector (leaving `collect`, `first { … }`, a cancelled scope) cancels the run,
 * and the SDK wipes the claim from the device.
 */
fun ProvisioningSession.provisionFlow(
    wifi: WifiSettings,
    options: ProvisionOptions = ProvisionOptions(),
): Flow<ProvisioningUpdate> = callbackFlow {
    val listener = provisioningListener { trySend(ProvisioningUpdate.Progress(it)) }
    launch {
        val device = provision(wifi, options, listener)
        send(ProvisioningUpdate.Finished(device))
        close()
    }
    awaitClose { }
}.buffer(Channel.UNLIMITED)
