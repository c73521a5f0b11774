// Joining the device's access point for the SoftAP path, without moving the rest of the app onto it:
// a WifiNetworkSpecifier request (Android 10+, API 29) through ConnectivityManager.requestNetwork. The
// system asks the user to confirm the network, joins it and hands the app a Network; the phone's
// default network (and so the SDK's calls to the backend and AWS, which use the default route) is not
// changed, as long as the app never calls bindProcessToNetwork. Only AndroidSoftApLink's sockets go
// through the returned Network.
//
// The order matters (android/README.md, docs/bindings.md): `provisioner.prepareClaim(options)` first,
// while the phone is online; then join; then connect and provision over AndroidSoftApLink; then release
// the access point (unregisterNetworkCallback) so the phone goes back to its usual network. On most
// phones joining the AP drops the usual Wi-Fi, so the phone has no internet until the release: the
// SDK's cloud confirmation waits for the phone's network to come back, which is why the release should
// come as soon as the device is done with the phone (`releasingWhenDeviceIsDone`), with a `release()` in
// a `finally` as the backstop.
//
// AOSP's behaviour the code relies on (packages/modules/Connectivity ConnectivityManager.java): the
// callbacks arrive on the ConnectivityThread; onUnavailable (the user declined, or no such network)
// unregisters the callback by itself; unregisterNetworkCallback releases the request (the system
// disconnects from the AP) and stops callbacks as soon as it returns, and is a no-op for a callback
// already unregistered (Android 12+; older versions throw IllegalArgumentException, caught here).
package dev.claimlink.softap

import android.Manifest
import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.net.NetworkRequest
import android.net.wifi.WifiNetworkSpecifier
import android.os.Build
import dev.claimlink.DeviceTransport
import dev.claimlink.ProvisioningEvent
import dev.claimlink.ProvisioningFailure
import dev.claimlink.ProvisioningListener
import dev.claimlink.ProvisioningQrCode
import dev.claimlink.Stage
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.withTimeoutOrNull

/** Why the phone could not join the device's access point. */
sealed class SoftApJoinFailure(message: String) : Exception(message) {
    /** Before Android 10 an app cannot join a network for itself: ask the user to join it in Settings. */
    class NotSupported(val sdkInt: Int) : SoftApJoinFailure("joining an access point from the app needs Android 10 (API 29); this phone runs API $sdkInt")

    /** The platform gave up: the user declined the network, or it is not in range. */
    class Unavailable(val ssid: String) : SoftApJoinFailure("the phone could not join $ssid (declined, or not in range)")

    /** No answer within [millis]: the request was withdrawn. */
    class Timeout(val ssid: String, val millis: Long) : SoftApJoinFailure("the phone did not join $ssid within $millis ms")

    /** The app does not declare [permission] (requestNetwork needs it). */
    class PermissionMissing(val permission: String) : SoftApJoinFailure("the app lacks $permission")
}

/**
 * Joins a device's access point for the SoftAP path. [timeoutMillis] bounds the whole join, the user's
 * confirmation included.
 */
class SoftApJoin internal constructor(
    private val context: Context,
    private val timeoutMillis: Long,
    private val sdkInt: Int,
) {
    /** A join through [context]'s ConnectivityManager, waiting up to [timeoutMillis]. */
    constructor(context: Context, timeoutMillis: Long = 30_000) : this(context, timeoutMillis, Build.VERSION.SDK_INT)

    /**
     * Asks the system for the access point [ssid] (from the device's QR code: its `name`) with the
     * WPA2 [passphrase] printed for it, or none for an open AP, and returns it once joined. Call
     * `prepareClaim` before this. Fails with [SoftApJoinFailure]; the request is withdrawn on every
     * failure and on cancellation. Never puts the passphrase in a message.
     */
    suspend fun join(ssid: String, passphrase: String?): SoftApNetwork {
        if (sdkInt < 29) throw SoftApJoinFailure.NotSupported(sdkInt)
        if (ssid.isEmpty() || ssid.toByteArray(Charsets.UTF_8).size > 32) throw ProvisioningFailure.InvalidInput("an SSID has 1 to 32 bytes")
        if (passphrase != null && passphrase.length !in 8..63) throw ProvisioningFailure.InvalidInput("a WPA2 passphrase has 8 to 63 characters")
        val manager = context.getSystemService(ConnectivityManager::class.java) ?: throw SoftApJoinFailure.Unavailable(ssid)
        val specifier = WifiNetworkSpecifier.Builder().setSsid(ssid).apply { if (passphrase != null) setWpa2Passphrase(passphrase) }.build()
        val request = NetworkRequest.Builder()
            .addTransportType(NetworkCapabilities.TRANSPORT_WIFI)
            .removeCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) // the AP has none: do not wait for it
            .setNetworkSpecifier(specifier)
            .build()
        val joined = CompletableDeferred<Network>()
        val handle = SoftApNetwork.Registration(manager, ssid)
        val callback = object : ConnectivityManager.NetworkCallback() {
            override fun onAvailable(network: Network) {
                joined.complete(network)
            }

            override fun onUnavailable() {
                handle.unregisteredBySystem()
                joined.completeExceptionally(SoftApJoinFailure.Unavailable(ssid))
            }

            override fun onLost(network: Network) {
                handle.lost = true
            }
        }
        handle.callback = callback
        try {
            manager.requestNetwork(request, callback)
        } catch (e: SecurityException) {
            throw SoftApJoinFailure.PermissionMissing(Manifest.permission.CHANGE_NETWORK_STATE)
        }
        try {
            val network = withTimeoutOrNull(timeoutMillis) { joined.await() } ?: throw SoftApJoinFailure.Timeout(ssid, timeoutMillis)
            return SoftApNetwork(network, handle)
        } catch (e: Throwable) {
            handle.release()
            throw e
        }
    }

    /**
     * [join]s the access point a SoftAP QR code names (its `name` is the SSID). ESP-IDF's QR payload
     * has no field for the AP's own passphrase: pass the one printed on the device, or null for an
     * open AP. Fails with `ProvisioningFailure.InvalidInput` for a BLE code.
     */
    suspend fun join(qr: ProvisioningQrCode, passphrase: String?): SoftApNetwork {
        if (qr.transport != DeviceTransport.SOFT_AP) throw ProvisioningFailure.InvalidInput("the QR code is for ${qr.transport}, not SoftAP")
        return join(qr.name, passphrase)
    }

    /** [join], runs [block] with the access point, and releases it however [block] ends. */
    suspend fun <T> withAccessPoint(ssid: String, passphrase: String?, block: suspend (SoftApNetwork) -> T): T {
        val ap = join(ssid, passphrase)
        try {
            return block(ap)
        } finally {
            ap.release()
        }
    }
}

/**
 * The device's access point, joined: [network] carries [link]'s traffic. [release] it as soon as the
 * device is done with the phone, so that the phone returns to its usual network (idempotent; also
 * [close]).
 */
class SoftApNetwork internal constructor(
    /** The access point's network: pass it to [AndroidSoftApLink], never to bindProcessToNetwork. */
    val network: Network,
    private val registration: Registration,
) : AutoCloseable {
    /** The access point's name. */
    val ssid: String get() = registration.ssid

    /** Whether the system reported the network lost (the device stopped its AP, or went out of range). */
    val isLost: Boolean get() = registration.lost

    /** Whether [release] was called (or the system withdrew the request). */
    val isReleased: Boolean get() = registration.released.get()

    /** The SDK's link to the device on this network. */
    fun link(baseUrl: String = AndroidSoftApLink.DEFAULT_BASE_URL, timeouts: SoftApTimeouts = SoftApTimeouts()): AndroidSoftApLink =
        AndroidSoftApLink(network, baseUrl, timeouts)

    /** Withdraws the request: the system leaves the access point and the phone goes back to its own network. */
    fun release() = registration.release()

    override fun close() = release()

    /**
     * A listener that releases the access point when the run reports the device done with the phone
     * (`Stage.RECONNECTED_WITH_PERMANENT`: it has its own identity on AWS IoT and left provisioning),
     * so that the phone is back on its own network for the SDK's cloud confirmation, which waits for the
     * phone's network. Every event goes on to [forward].
     */
    fun releasingWhenDeviceIsDone(forward: ProvisioningListener? = null): ProvisioningListener = object : ProvisioningListener {
        override fun onEvent(event: ProvisioningEvent) {
            if (event.stage == Stage.RECONNECTED_WITH_PERMANENT) release()
            forward?.onEvent(event)
        }
    }

    override fun toString(): String = "SoftApNetwork($ssid, $network${if (isReleased) ", released" else ""})"

    /** The request behind a join, released once. */
    internal class Registration(private val manager: ConnectivityManager, val ssid: String) {
        @Volatile var callback: ConnectivityManager.NetworkCallback? = null
        @Volatile var lost = false
        val released = AtomicBoolean(false)

        fun unregisteredBySystem() {
            released.set(true)
        }

        fun release() {
            if (!released.compareAndSet(false, true)) return
            val cb = callback ?: return
            // Android 11 and older throw for a callback the system already unregistered.
            try { manager.unregisterNetworkCallback(cb) } catch (e: IllegalArgumentException) { }
        }
    }
}
