// The SoftAP device link on Android: protocomm over HTTP to the device's access point (192.168.4.1),
// through the android.net.Network the phone joined it on (`SoftApJoin`), never through the process's
// default network and never through a proxy. The SDK's own SoftAP link (`httpDeviceLink`, Rust) cannot
// choose a Network; this one is the same contract in Kotlin, and fails with the same LinkFailure kinds.
//
// What ESP-IDF's server expects (components/protocomm/src/transports/protocomm_httpd.c,
// common_post_handler, read from espressif/esp-idf):
// - `POST /<endpoint>`, the raw protocomm message as the body, with a Content-Length: a request
//   without one (content_len <= 0, so a chunked body) or over MAX_REQ_BODY_LEN (4096) is refused.
//   The body goes out in fixed-length streaming mode, which also keeps the platform's HTTP stack from
//   silently sending a POST a second time after a failed attempt: an encrypted protocomm request must
//   never be replayed.
// - The session is a cookie: the first answer carries `Set-Cookie: session=<u32>`; the device then
//   compares the whole `Cookie` header value with "session=<id>" (strcmp, read into a 20-byte buffer),
//   so exactly that pair is sent back and nothing else. Without a matching cookie a request starts a
//   new session (and closes the old one). `connect()` forgets the cookie: a new secure session.
// - A failed handler gets no HTTP status: the server closes the socket. A connection closed after the
//   whole request went out, before any answer, is told apart from a lost device as the Rust link does:
//   a device that still accepts a TCP connection (a bare connect on the same Network, no request)
//   refused the request (LinkFailure.DeviceRefused); one that does not is gone (Disconnected).
// - The server keeps one socket (max_open_sockets = 1, LRU purge): each exchange asks for its own
//   connection (`Connection: close`), so a pooled socket the device dropped is never written to.
//
// Everything sensitive is encrypted by the protocomm session itself (Security 1/2); plain HTTP is what
// the device serves. Android's cleartext policy (network_security_config) does apply to this link,
// unlike to the SDK's native sockets: an app targeting API 28+ must allow cleartext to 192.168.4.1
// (android/README.md shows the domain-config entry).
package dev.claimlink.softap

import android.net.Network
import dev.claimlink.DeviceLink
import dev.claimlink.LinkFailure
import dev.claimlink.ProvisioningFailure
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.InetSocketAddress
import java.net.MalformedURLException
import java.net.Proxy
import java.net.SocketTimeoutException
import java.net.URL
import java.net.UnknownServiceException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.withTimeoutOrNull

/** How long the SoftAP link waits, in milliseconds. */
data class SoftApTimeouts(
    /** Opening the TCP connection to the device. */
    val connectMillis: Int = 5_000,
    /** One whole exchange: connecting, sending, and reading the whole answer (as the Rust link's 10 s). */
    val exchangeMillis: Int = 10_000,
    /** The bare connect that tells a refused request from a lost device (as the Rust link's 3 s). */
    val probeMillis: Int = 3_000,
)

/**
 * The SDK's device link over HTTP on the device's access point, bound to [network] (from
 * [SoftApJoin.join]). Hand it to `Provisioner.connect(link, secret)`. Never uses a proxy.
 *
 * Throws `ProvisioningFailure.InvalidInput` when [baseUrl] is not `http://host[:port]`.
 */
class AndroidSoftApLink(
    private val network: Network,
    baseUrl: String = DEFAULT_BASE_URL,
    private val timeouts: SoftApTimeouts = SoftApTimeouts(),
) : DeviceLink {

    companion object {
        /** Where ESP-IDF's SoftAP provisioning serves protocomm. */
        const val DEFAULT_BASE_URL = "http://192.168.4.1:80"

        /** protocomm_httpd's MAX_REQ_BODY_LEN; the SDK's own HTTP link keeps answers to it too. */
        const val MAX_MESSAGE_BYTES = 4096

        private val ENDPOINT = Regex("[A-Za-z0-9._-]{1,64}")
        private val SESSION_COOKIE = Regex("session=[0-9]{1,10}")
    }

    private val base: URL = parseBase(baseUrl)
    private val host: String = base.host
    private val port: Int = if (base.port == -1) 80 else base.port
    private val cookie = AtomicReference<String?>(null)
    private val inFlight = AtomicBoolean(false)
    @Volatile private var closed = false

    private enum class Phase { CONNECTING, SENDING, AWAITING, READING }

    /** Starts afresh: the device's session cookie is forgotten, so the next exchange opens a new session. */
    override suspend fun connect() {
        cookie.set(null)
        closed = false
    }

    override suspend fun exchange(endpoint: String, request: ByteArray): ByteArray {
        if (closed) throw LinkFailure.Disconnected()
        if (request.size > MAX_MESSAGE_BYTES) throw LinkFailure.TooLarge(request.size.toLong(), MAX_MESSAGE_BYTES.toLong())
        if (!ENDPOINT.matches(endpoint)) throw LinkFailure.UnknownEndpoint(endpoint)
        if (!inFlight.compareAndSet(false, true)) throw LinkFailure.Busy()
        try {
            val opened = try {
                network.openConnection(URL(base, "/$endpoint"), Proxy.NO_PROXY)
            } catch (e: IOException) {
                throw LinkFailure.Disconnected() // the network is gone
            }
            val connection = opened as? HttpURLConnection ?: throw LinkFailure.Other("the platform gave no HTTP connection for $base")
            // The whole exchange is bounded (a device that drips its answer byte by byte times out too);
            // a timeout or a cancelled run closes the socket, which ends the blocked read.
            return withTimeoutOrNull(timeouts.exchangeMillis.toLong()) { whileCancellable(connection) { post(connection, endpoint, request) } }
                ?: throw LinkFailure.Timeout(timeouts.exchangeMillis.toLong())
        } finally {
            inFlight.set(false)
        }
    }

    override fun endpoints(): List<String>? = null

    override fun maxMessageBytes(): Int = MAX_MESSAGE_BYTES

    override fun mtu(): Int? = null

    override suspend fun disconnect() {
        closed = true
        cookie.set(null)
    }

    override fun describe(): String = "softap http $host:$port on network $network"

    // --- The blocking exchange (on Dispatchers.IO) -----------------------------------------------------

    /**
     * Runs [block] on an IO thread; when the caller is cancelled (or times out) the connection is closed,
     * which ends a blocked read, and what [block] then throws is dropped: the cancellation (or the
     * timeout) is the outcome, not the closed socket's IOException.
     */
    private suspend fun <T> whileCancellable(connection: HttpURLConnection, block: () -> T): T = coroutineScope {
        val abandoned = AtomicBoolean(false)
        val work = async(Dispatchers.IO) {
            try {
                block()
            } catch (e: Exception) {
                if (abandoned.get()) throw CancellationException("the exchange was abandoned") else throw e
            }
        }
        try {
            work.await()
        } catch (e: CancellationException) {
            abandoned.set(true)
            connection.disconnect()
            throw e
        }
    }

    private fun post(c: HttpURLConnection, endpoint: String, request: ByteArray): ByteArray {
        var phase = Phase.CONNECTING
        try {
            c.requestMethod = "POST"
            c.doOutput = true
            c.useCaches = false
            c.instanceFollowRedirects = false
            c.connectTimeout = timeouts.connectMillis
            c.readTimeout = timeouts.exchangeMillis
            c.setFixedLengthStreamingMode(request.size)
            c.setRequestProperty("Content-Type", "application/x-www-form-urlencoded")
            c.setRequestProperty("Accept", "text/plain")
            c.setRequestProperty("Connection", "close")
            cookie.get()?.let { c.setRequestProperty("Cookie", it) }
            c.connect()
            phase = Phase.SENDING
            c.outputStream.use { it.write(request) }
            phase = Phase.AWAITING
            val status = c.responseCode
            phase = Phase.READING
            sessionCookie(c)?.let { cookie.set(it) }
            when (status) {
                200 -> {}
                404 -> throw LinkFailure.UnknownEndpoint(endpoint)
                413 -> throw LinkFailure.TooLarge(request.size.toLong(), MAX_MESSAGE_BYTES.toLong())
                500 -> throw LinkFailure.DeviceRefused("HTTP status 500")
                else -> throw LinkFailure.Other("unexpected HTTP status $status")
            }
            // A stated length over the cap is refused before any of the body is read; an answer
            // without one (chunked, or until close) as soon as it passes the cap.
            val stated = c.contentLengthLong
            if (stated > MAX_MESSAGE_BYTES) throw LinkFailure.TooLarge(stated, MAX_MESSAGE_BYTES.toLong())
            return c.inputStream.use { readCapped(it) }
        } catch (e: LinkFailure) {
            throw e
        } catch (e: UnknownServiceException) {
            // Android's HTTP stack refuses cleartext the app's network security config does not allow.
            throw LinkFailure.Other("cleartext HTTP to $host is not permitted by the app's network security config")
        } catch (e: SocketTimeoutException) {
            throw LinkFailure.Timeout((if (phase == Phase.CONNECTING) timeouts.connectMillis else timeouts.exchangeMillis).toLong())
        } catch (e: IOException) {
            throw when (phase) {
                // Nothing reached the device: connection refused, no route (the phone left the AP).
                Phase.CONNECTING -> LinkFailure.Disconnected()
                // The connection closed before any answer: refused, or gone?
                Phase.SENDING, Phase.AWAITING ->
                    if (deviceListens()) LinkFailure.DeviceRefused("the device closed the connection without answering") else LinkFailure.Disconnected()
                Phase.READING -> LinkFailure.Other("reading the device's answer failed: ${e.javaClass.simpleName}")
            }
        } finally {
            c.disconnect()
        }
    }

    /** Reads the whole answer, failing with TooLarge as soon as it passes [MAX_MESSAGE_BYTES]. */
    private fun readCapped(input: InputStream): ByteArray {
        val out = java.io.ByteArrayOutputStream()
        val buffer = ByteArray(1024)
        while (true) {
            val n = input.read(buffer)
            if (n < 0) return out.toByteArray()
            if (out.size() + n > MAX_MESSAGE_BYTES) throw LinkFailure.TooLarge((out.size() + n).toLong(), MAX_MESSAGE_BYTES.toLong())
            out.write(buffer, 0, n)
        }
    }

    /** The `session=<id>` pair of the answer's Set-Cookie headers, if any (other cookies are ignored). */
    private fun sessionCookie(c: HttpURLConnection): String? {
        var i = 0 // the status line, where a stack lists it at 0, has no key
        while (true) {
            val key = c.getHeaderFieldKey(i)
            val value = c.getHeaderField(i) ?: return null
            if (key != null && key.equals("Set-Cookie", ignoreCase = true)) {
                val pair = value.substringBefore(';').trim()
                if (SESSION_COOKIE.matches(pair)) return pair
            }
            i++
        }
    }

    /** Whether a new TCP connection to the device succeeds on [network] (closed again at once). */
    private fun deviceListens(): Boolean = try {
        network.socketFactory.createSocket().use { it.connect(InetSocketAddress(host, port), timeouts.probeMillis) }
        true
    } catch (e: IOException) {
        false
    }

    private fun parseBase(text: String): URL {
        val invalid = { ProvisioningFailure.InvalidInput("not an http://host:port URL: $text") }
        val url = try { URL(text) } catch (e: MalformedURLException) { throw invalid() }
        if (url.protocol != "http" || url.host.isNullOrEmpty() || url.query != null || url.path !in setOf("", "/") || url.userInfo != null) throw invalid()
        return url
    }
}
