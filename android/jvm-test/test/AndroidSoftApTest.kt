// The AAR's SoftAP path on the JVM: SoftApJoin under a fake of Android's connectivity service (the
// android.net stubs, checked against AOSP's API files by ApiSignatureCheck, and FakeWifi below), and
// AndroidSoftApLink provisioning simulated devices (`claimlink-harness serve`) for real over HTTP on
// 127.0.0.1: the joined access point's Network routes 192.168.4.1:80 to the device, as the AP's network
// does on a phone. Hostile and failing devices are raw HTTP servers here (RawDevice).
//
// Built and run by android/jvm-test/run (called by bindings/kotlin/run-tests, so by scripts/test).
package dev.claimlink.androidtest

import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.net.NetworkRequest
import android.net.wifi.WifiNetworkSpecifier
import dev.claimlink.*
import dev.claimlink.fake.FakeConnectivity
import dev.claimlink.softap.AndroidSoftApLink
import dev.claimlink.softap.SoftApJoin
import dev.claimlink.softap.SoftApJoinFailure
import dev.claimlink.softap.SoftApTimeouts
import dev.claimlink.test.Json
import dev.claimlink.test.World
import dev.claimlink.test.check
import dev.claimlink.test.expectThrows
import dev.claimlink.test.runTests
import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.Proxy
import java.net.ServerSocket
import java.net.Socket
import java.net.URL
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlin.system.exitProcess

/** The device's access point as ESP-IDF's SoftAP provisioning serves it. */
const val AP_HOST = "192.168.4.1"
const val AP_PORT = 80

/**
 * The system's connectivity service and Wi-Fi for one test: it joins the access point [ssid] (with
 * [passphrase]) when asked, as a new network whose 192.168.4.1:80 routes to [device] ([how] it answers),
 * on its own thread, as AOSP's ConnectivityThread delivers callbacks.
 */
class FakeWifi(val ssid: String, val passphrase: String?, val device: InetSocketAddress?, val how: How = How.JOIN) : FakeConnectivity.Service {
    enum class How { JOIN, SILENT, DECLINE, NO_PERMISSION }

    val requests = CopyOnWriteArrayList<NetworkRequest>()
    val released = CopyOnWriteArrayList<NetworkRequest>()
    val problems = CopyOnWriteArrayList<String>()
    private val netIds = AtomicInteger(100)
    private val networkOf = java.util.concurrent.ConcurrentHashMap<NetworkRequest, Network>()

    init { FakeConnectivity.install(this) }

    override fun requestNetwork(request: NetworkRequest, delivery: FakeConnectivity.Delivery) {
        if (how == How.NO_PERMISSION) throw SecurityException("CHANGE_NETWORK_STATE")
        requests += request
        val spec = request.networkSpecifier as? WifiNetworkSpecifier
        if (!request.hasTransport(NetworkCapabilities.TRANSPORT_WIFI)) problems += "no Wi-Fi transport"
        if (request.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)) problems += "asks for INTERNET (the AP has none)"
        if (spec == null) problems += "no WifiNetworkSpecifier"
        val matches = spec != null && spec.ssidForFake() == ssid && spec.wpa2PassphraseForFake() == passphrase
        thread("ConnectivityThread") {
            when {
                how == How.SILENT -> {}
                how == How.DECLINE || !matches -> delivery.unavailable()
                else -> {
                    val network = Network(netIds.incrementAndGet())
                    device?.let { FakeConnectivity.addRoute(network.netIdForFake(), AP_HOST, AP_PORT, it) }
                    networkOf[request] = network
                    delivery.available(network)
                }
            }
        }
    }

    /** The app withdrew the request: the phone leaves the access point, whose network routes nowhere now. */
    override fun releaseNetworkRequest(request: NetworkRequest) {
        released += request
        networkOf[request]?.let { FakeConnectivity.dropRoutes(it.netIdForFake()) }
    }
}

fun thread(name: String, body: () -> Unit) = Thread(body, name).apply { isDaemon = true; start() }

/** The app's Context, with the connectivity service. */
fun softApContext() = object : TestContext() {
    override fun getSystemService(name: String): Any? = if (name == CONNECTIVITY_SERVICE) ConnectivityManager() else super.getSystemService(name)
    override fun getSystemServiceName(serviceClass: Class<*>): String? =
        if (serviceClass == ConnectivityManager::class.java) CONNECTIVITY_SERVICE else super.getSystemServiceName(serviceClass)
}

fun address(url: String): InetSocketAddress = URL(url).let { InetSocketAddress(it.host, it.port) }

/**
 * A device that speaks raw HTTP on 127.0.0.1: each connection's request is recorded (head and body)
 * and answered by [answer] (null: close without answering, as ESP-IDF does for a failed handler).
 */
class RawDevice(val answer: (head: String, body: ByteArray, out: OutputStream) -> Unit) : AutoCloseable {
    private val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val requests = ConcurrentLinkedQueue<Pair<String, ByteArray>>()
    val connections = AtomicInteger()
    val address: InetSocketAddress get() = InetSocketAddress(InetAddress.getLoopbackAddress(), server.localPort)

    init {
        thread("raw-device") {
            while (!server.isClosed) {
                val s = runCatching { server.accept() }.getOrNull() ?: break
                connections.incrementAndGet()
                thread("raw-device-conn") { serve(s) }
            }
        }
    }

    private fun serve(s: Socket) = s.use {
        val input = s.getInputStream()
        val head = readHead(input) ?: return
        val length = Regex("(?im)^content-length:\\s*(\\d+)").find(head)?.groupValues?.get(1)?.toInt() ?: 0
        val body = input.readNBytes(length)
        requests += head to body
        answer(head, body, s.getOutputStream())
        s.getOutputStream().flush()
    }

    private fun readHead(input: InputStream): String? {
        val bytes = java.io.ByteArrayOutputStream()
        while (true) {
            val b = input.read()
            if (b < 0) return null
            bytes.write(b)
            val a = bytes.toByteArray()
            if (a.size >= 4 && a[a.size - 4] == '\r'.code.toByte() && a[a.size - 3] == '\n'.code.toByte() && a[a.size - 2] == '\r'.code.toByte() && a[a.size - 1] == '\n'.code.toByte()) return String(a, Charsets.ISO_8859_1)
        }
    }

    override fun close() = server.close()
}

fun OutputStream.respond(status: String, headers: List<String>, body: ByteArray) {
    write(("HTTP/1.1 $status\r\n" + headers.joinToString("") { "$it\r\n" } + "\r\n").toByteArray())
    write(body)
}

/** Joins the fake AP (routed to [device]) and returns its network. */
suspend fun joined(device: InetSocketAddress?, ssid: String = "PROV_TEST", passphrase: String? = "ap-secret-1"): Pair<FakeWifi, dev.claimlink.softap.SoftApNetwork> {
    val wifi = FakeWifi(ssid, passphrase, device)
    return wifi to SoftApJoin(softApContext(), 5_000, 34).join(ssid, passphrase)
}

val SHORT = SoftApTimeouts(connectMillis = 1_000, exchangeMillis = 1_500, probeMillis = 500)

val softApTests = linkedMapOf<String, suspend (World) -> Unit>(
    "SoftAP flow: prepareClaim online, join the AP, provision over its Network, the AP released when the device is done, before the cloud's confirmation" to { w ->
        val d = w.device(0)
        val ssid = d.json["name"] as String
        val p = w.provisioner()
        val left = p.prepareClaim(d.options())
        check(left.seconds > 60) { "claim time left $left" }
        FakeConnectivity.opened.clear()
        val (wifi, ap) = joined(address(d.url), ssid, "ap-secret-1")
        check(wifi.problems.isEmpty()) { "request: ${wifi.problems}" }
        val session = p.connect(ap.link(), d.secret(), null)
        val stages = CopyOnWriteArrayList<Stage>()
        var releasedAtConfirmation = false
        val done = session.provision(d.wifi(), d.options(), ap.releasingWhenDeviceIsDone(provisioningListener {
            stages += it.stage
            if (it.stage == Stage.CONFIRMED_BY_CLOUD) releasedAtConfirmation = ap.isReleased
        }))
        check(done.thingName == d.state()["thing_name"]) { "thing ${done.thingName} vs ${d.state()}" }
        check(!d.holdsClaim()) { "the device still holds the claim" }
        check(releasedAtConfirmation) { "the AP was still held at the cloud's confirmation: $stages" }
        check(wifi.released.size == 1 && ap.isReleased) { "released ${wifi.released.size}" }
        check(Stage.CLAIM_ISSUED in stages && Stage.CLAIM_REQUESTED !in stages) { "the prepared claim was not the one handed over: $stages" }
        val opens = FakeConnectivity.opened.toList()
        check(opens.isNotEmpty() && opens.all { it.startsWith("${ap.network} DIRECT http://$AP_HOST:$AP_PORT/") }) { "opens: $opens" }
        session.disconnect()
        ap.release() // idempotent
        check(wifi.released.size == 1) { "released twice" }
    },
    "the wire: POST with Content-Length (never chunked), the form content type, exactly the session cookie, one connection per exchange; connect() starts a new session" to { _ ->
        RawDevice { _, body, out ->
            out.respond("200 OK", listOf("Set-Cookie: session=3735928559; Path=/", "Set-Cookie: other=1", "Content-Length: ${body.size}", "Connection: close"), body.reversedArray())
        }.use { dev ->
            val (_, ap) = joined(dev.address)
            val link = ap.link()
            check(link.exchange("prov-session", byteArrayOf(1, 2, 3)).contentEquals(byteArrayOf(3, 2, 1))) { "echo" }
            link.exchange("prov-config", ByteArray(4096) { 7 })
            link.connect()
            link.exchange("prov-session", byteArrayOf(9))
            val reqs = dev.requests.toList()
            check(reqs.size == 3 && dev.connections.get() == 3) { "requests ${reqs.size}, connections ${dev.connections}" }
            val (first, second, third) = reqs.map { it.first }
            for (head in listOf(first, second, third)) {
                check(Regex("(?i)^POST /prov-(session|config) HTTP/1.1\r\n").containsMatchIn(head)) { "request line: $head" }
                check(Regex("(?im)^content-type: application/x-www-form-urlencoded\r\n").containsMatchIn(head)) { "content type: $head" }
                check(!Regex("(?im)^transfer-encoding:").containsMatchIn(head)) { "chunked: $head" }
                check(Regex("(?im)^connection: close\r\n").containsMatchIn(head)) { "keep-alive asked: $head" }
            }
            check(Regex("(?im)^content-length: 4096\r\n").containsMatchIn(second) && reqs[1].second.size == 4096) { "length: $second" }
            check(!Regex("(?im)^cookie:").containsMatchIn(first)) { "a cookie before the device gave one: $first" }
            check(Regex("(?m)^Cookie: session=3735928559\r\n").containsMatchIn(second)) { "the session cookie, alone: $second" }
            check(!Regex("(?im)^cookie:").containsMatchIn(third)) { "connect() kept the old session's cookie: $third" }
            ap.release()
        }
    },
    "errors as the Rust HttpLink's: device gone -> Disconnected, closed without answer -> DeviceRefused, silent -> Timeout, 404 -> UnknownEndpoint, 500 -> DeviceRefused, over 4096 bytes out -> TooLarge, after disconnect() -> Disconnected" to { w ->
        val (_, gone) = joined(null) // the AP's network routes 192.168.4.1 nowhere
        expectThrows<LinkFailure.Disconnected> { gone.link(timeouts = SHORT).exchange("prov-session", byteArrayOf(1)) }
        val lost = expectThrows<ProvisioningFailure> { w.provisioner().connect(gone.link(timeouts = SHORT), w.device(1).secret(), null) }
        check(lost is ProvisioningFailure.ConnectionLost || lost is ProvisioningFailure.DeviceNotFound) { "connecting to a gone device: $lost" }
        gone.release()
        RawDevice { _, _, _ -> }.use { dev -> // reads the request, closes without a word, keeps listening
            val (_, ap) = joined(dev.address)
            val refused = expectThrows<LinkFailure.DeviceRefused> { ap.link(timeouts = SHORT).exchange("prov-session", byteArrayOf(1)) }
            check("without answering" in refused.detail) { "$refused" }
            ap.release()
        }
        RawDevice { _, _, _ -> Thread.sleep(3_000) }.use { dev ->
            val (_, ap) = joined(dev.address)
            val slow = expectThrows<LinkFailure.Timeout> { ap.link(timeouts = SHORT).exchange("prov-session", byteArrayOf(1)) }
            check(slow.millis == SHORT.exchangeMillis.toLong()) { "$slow" }
            ap.release()
        }
        RawDevice { head, _, out ->
            out.respond(if ("/custom" in head) "404 Not Found" else "500 Internal Server Error", listOf("Content-Length: 0"), ByteArray(0))
        }.use { dev ->
            val (_, ap) = joined(dev.address)
            val unknown = expectThrows<LinkFailure.UnknownEndpoint> { ap.link().exchange("custom", byteArrayOf(1)) }
            check(unknown.name == "custom") { "$unknown" }
            expectThrows<LinkFailure.DeviceRefused> { ap.link().exchange("prov-session", byteArrayOf(1)) }
            expectThrows<LinkFailure.UnknownEndpoint> { ap.link().exchange("../etc/passwd", byteArrayOf(1)) }
            val big = expectThrows<LinkFailure.TooLarge> { ap.link().exchange("prov-session", ByteArray(4097)) }
            check(big.len == 4097L && big.max == 4096L) { "$big" }
            val before = dev.connections.get()
            val closed = ap.link().also { it.disconnect() }
            expectThrows<LinkFailure.Disconnected> { closed.exchange("prov-session", byteArrayOf(1)) }
            check(dev.connections.get() == before) { "refused requests reached the device" }
            ap.release()
        }
        expectThrows<ProvisioningFailure.InvalidInput> { AndroidSoftApLink(Network(1), "https://192.168.4.1") }
        expectThrows<ProvisioningFailure.InvalidInput> { AndroidSoftApLink(Network(1), "http://192.168.4.1/prov") }
    },
    "a cancelled caller (the run cancelled mid-exchange) closes the connection at once, without waiting for the timeout" to { _ ->
        val release = java.util.concurrent.CountDownLatch(1)
        RawDevice { _, _, _ -> release.await() }.use { dev ->
            val (_, ap) = joined(dev.address)
            val link = ap.link(timeouts = SoftApTimeouts(exchangeMillis = 60_000))
            kotlinx.coroutines.coroutineScope {
                val job = launch { link.exchange("prov-session", byteArrayOf(1)) }
                while (dev.requests.isEmpty()) kotlinx.coroutines.delay(5) // the request reached the device
                job.cancel()
                val ended = kotlinx.coroutines.withTimeoutOrNull(5_000) { job.join() }
                check(ended != null && job.isCancelled) { "the exchange outlived its cancellation" }
            }
            release.countDown()
            ap.release()
        }
    },
    "a device that drips its answer (a byte every 100 ms, each read in time) still ends in Timeout: the whole exchange is bounded" to { _ ->
        RawDevice { _, _, out ->
            out.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".toByteArray())
            out.flush()
            runCatching { repeat(100) { out.write(1); out.flush(); Thread.sleep(100) } }
        }.use { dev ->
            val (_, ap) = joined(dev.address)
            val slow = expectThrows<LinkFailure.Timeout> { ap.link(timeouts = SHORT).exchange("prov-session", byteArrayOf(1)) }
            check(slow.millis == SHORT.exchangeMillis.toLong()) { "$slow" }
            ap.release()
        }
    },
    "oversize answers: a stated length over 4096 and an unstated one passing 4096 -> TooLarge; exactly 4096 is taken" to { _ ->
        RawDevice { head, _, out ->
            when {
                "/stated" in head -> out.respond("200 OK", listOf("Content-Length: 5000"), ByteArray(5000))
                "/chunked" in head -> {
                    out.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".toByteArray())
                    repeat(5) { out.write("400\r\n".toByteArray()); out.write(ByteArray(1024)); out.write("\r\n".toByteArray()) }
                    out.write("0\r\n\r\n".toByteArray())
                }
                "/unstated" in head -> { out.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".toByteArray()); out.write(ByteArray(8192)) }
                else -> out.respond("200 OK", listOf("Content-Length: 4096"), ByteArray(4096) { 1 })
            }
        }.use { dev ->
            val (_, ap) = joined(dev.address)
            for (endpoint in listOf("stated", "chunked", "unstated")) {
                val e = expectThrows<LinkFailure.TooLarge> { ap.link().exchange(endpoint, byteArrayOf(1)) }
                check(e.max == 4096L && e.len > 4096L) { "$endpoint: $e" }
            }
            check(ap.link().exchange("exact", byteArrayOf(1)).size == 4096) { "a 4096-byte answer" }
            ap.release()
        }
    },
    "a proxy in the system properties and on the network is never used by the link (the same settings do send a plain connection there)" to { w ->
        val proxied = AtomicInteger()
        val proxy = RawDevice { _, _, out -> proxied.incrementAndGet(); out.respond("502 Bad Gateway", listOf("Content-Length: 0"), ByteArray(0)) }
        val saved = listOf("http.proxyHost", "http.proxyPort", "http.nonProxyHosts").associateWith { System.getProperty(it) }
        try {
            System.setProperty("http.proxyHost", "127.0.0.1")
            System.setProperty("http.proxyPort", proxy.address.port.toString())
            System.setProperty("http.nonProxyHosts", "example.invalid")
            FakeConnectivity.setNetworkProxy(Proxy(Proxy.Type.HTTP, proxy.address))
            val d = w.device(2)
            val (_, ap) = joined(address(d.url), d.json["name"] as String)
            // The controls: a plain URL connection to the AP's address (the JDK never proxies 127.*, but
            // does 192.168.4.1), and the Network's openConnection without a Proxy (the network's proxy).
            runCatching { (URL("http://$AP_HOST:$AP_PORT/_sim/state").openConnection() as java.net.HttpURLConnection).responseCode }
            runCatching { (ap.network.openConnection(URL("http://$AP_HOST:$AP_PORT/_sim/state")) as java.net.HttpURLConnection).responseCode }
            check(proxied.get() == 2) { "the controls did not reach the proxy (${proxied.get()}): this test would prove nothing" }
            proxied.set(0)
            val session = w.provisioner().connect(ap.link(), d.secret(), null)
            check(session.deviceInfo().security == SecurityLevel.SEC2) { "device info" }
            session.disconnect()
            check(proxied.get() == 0 && proxy.connections.get() == 2) { "the link went through the proxy: ${proxy.connections}" }
            ap.release()
        } finally {
            for ((k, v) in saved) if (v == null) System.clearProperty(k) else System.setProperty(k, v)
            FakeConnectivity.setNetworkProxy(null)
            proxy.close()
        }
    },
    "the join: timeout -> SoftApJoinFailure.Timeout and the request withdrawn; declined -> Unavailable; no CHANGE_NETWORK_STATE -> PermissionMissing; API 28 -> NotSupported; bad input -> InvalidInput" to { _ ->
        val silent = FakeWifi("PROV_X", null, null, FakeWifi.How.SILENT)
        val timedOut = expectThrows<SoftApJoinFailure.Timeout> { SoftApJoin(softApContext(), 300, 34).join("PROV_X", null) }
        check(timedOut.ssid == "PROV_X" && timedOut.millis == 300L) { "$timedOut" }
        check(silent.requests.size == 1 && silent.released == silent.requests) { "the timed-out request was not withdrawn: ${silent.released.size}" }
        val declined = FakeWifi("PROV_X", "ap-secret-1", null, FakeWifi.How.DECLINE)
        expectThrows<SoftApJoinFailure.Unavailable> { SoftApJoin(softApContext(), 5_000, 34).join("PROV_X", "ap-secret-1") }
        check(declined.released.isEmpty()) { "unregistered a callback the system had already dropped" }
        val wrongKey = FakeWifi("PROV_X", "ap-secret-1", null)
        val wrong = expectThrows<SoftApJoinFailure.Unavailable> { SoftApJoin(softApContext(), 5_000, 34).join("PROV_X", "not-the-key") }
        check("not-the-key" !in "$wrong" && wrongKey.requests.size == 1) { "$wrong" }
        FakeWifi("PROV_X", null, null, FakeWifi.How.NO_PERMISSION)
        val denied = expectThrows<SoftApJoinFailure.PermissionMissing> { SoftApJoin(softApContext(), 5_000, 34).join("PROV_X", null) }
        check(denied.permission == android.Manifest.permission.CHANGE_NETWORK_STATE) { "$denied" }
        expectThrows<SoftApJoinFailure.NotSupported> { SoftApJoin(softApContext(), 5_000, 28).join("PROV_X", null) }
        expectThrows<ProvisioningFailure.InvalidInput> { SoftApJoin(softApContext(), 5_000, 34).join("PROV_X", "short") }
        expectThrows<ProvisioningFailure.InvalidInput> { SoftApJoin(softApContext(), 5_000, 34).join("", null) }
        val ble = parseProvisioningQr("""{"ver":"v1","name":"PROV_X","username":"wifiprov","password":"abcd1234","transport":"ble","security":2}""")
        expectThrows<ProvisioningFailure.InvalidInput> { SoftApJoin(softApContext(), 5_000, 34).join(ble, null) }
        val qr = parseProvisioningQr("""{"ver":"v1","name":"PROV_X","username":"wifiprov","password":"abcd1234","transport":"softap","security":2}""")
        val open = FakeWifi("PROV_X", null, null)
        val ap = SoftApJoin(softApContext(), 5_000, 34).join(qr, null)
        check(ap.ssid == "PROV_X" && open.requests.size == 1) { "$ap" }
        ap.release()
    },
    "the AP is released however the run ends (withAccessPoint), and a failed run leaves no claim on the device" to { w ->
        val d = w.device(3)
        val wifi = FakeWifi(d.json["name"] as String, null, address(d.url))
        val p = w.provisioner()
        val failure = expectThrows<ProvisioningFailure.WifiPasswordRejected> {
            SoftApJoin(softApContext(), 5_000, 34).withAccessPoint(d.json["name"] as String, null) { ap ->
                val session = p.connect(ap.link(), d.secret(), null)
                try { session.provision(d.wifi("wrong passphrase"), d.options(), null) } finally { session.disconnect() }
            }
        }
        check(wifi.released.size == 1) { "not released after $failure" }
        check(!d.holdsClaim()) { "the device still holds the claim" }
    },
)

fun main(args: Array<String>) {
    if (args.size != 1) error("usage: AndroidSoftApTest <claimlink-harness>")
    val proc = ProcessBuilder(args[0], "serve", "--json", "--devices", "4", "--wifi-join-ms", "300")
        .redirectError(ProcessBuilder.Redirect.DISCARD).start()
    var failed = 0
    try {
        val line = proc.inputStream.bufferedReader().readLine() ?: error("claimlink-harness serve printed nothing")
        @Suppress("UNCHECKED_CAST")
        val world = World(Json.parse(line) as Map<String, Any?>)
        // ANDROID_SOFTAP_TEST_ONLY: run the tests whose name contains it.
        failed = runTests(softApTests, world, System.getenv("ANDROID_SOFTAP_TEST_ONLY"))
    } finally {
        proc.destroy()
    }
    println("android softap: ${softApTests.size - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
