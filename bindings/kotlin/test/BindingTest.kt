// The Kotlin binding on the JVM, end to end: provisions simulated devices served by
// `claimlink-harness serve` through the generated API with coroutines. Covers the glue only (the SDK's
// behaviour is tested in Rust): events in order, the wrong-password paths and recovery, cancelling a
// coroutine and a Flow (the claim is wiped from the device), TaskHandle, the app's suspend token
// provider, the logger, secrets never in toString().
//
// Built and run by bindings/kotlin/run-tests (called by scripts/test).
package dev.claimlink.test

import dev.claimlink.*
import kotlinx.coroutines.*
import kotlinx.coroutines.flow.*
import java.net.URI
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

// A tiny JSON reader for the harness's output (keeps the test free of extra jars).
object Json {
    fun parse(s: String): Any? = P(s).value()
    private class P(val s: String) {
        var i = 0
        fun ws() { while (i < s.length && s[i].isWhitespace()) i++ }
        fun value(): Any? {
            ws()
            return when (s[i]) {
                '{' -> obj(); '[' -> arr(); '"' -> str()
                't' -> { i += 4; true }; 'f' -> { i += 5; false }; 'n' -> { i += 4; null }
                else -> num()
            }
        }
        fun obj(): Map<String, Any?> {
            val m = LinkedHashMap<String, Any?>(); i++; ws()
            if (s[i] == '}') { i++; return m }
            while (true) {
                ws(); val k = str(); ws(); i++ // ':'
                m[k] = value(); ws()
                if (s[i++] == '}') return m
            }
        }
        fun arr(): List<Any?> {
            val l = ArrayList<Any?>(); i++; ws()
            if (s[i] == ']') { i++; return l }
            while (true) { l.add(value()); ws(); if (s[i++] == ']') return l }
        }
        fun str(): String {
            val b = StringBuilder(); i++
            while (s[i] != '"') {
                if (s[i] == '\\') {
                    i++
                    when (s[i]) {
                        'n' -> b.append('\n'); 't' -> b.append('\t'); 'r' -> b.append('\r')
                        'u' -> { b.append(s.substring(i + 1, i + 5).toInt(16).toChar()); i += 4 }
                        else -> b.append(s[i])
                    }
                } else b.append(s[i])
                i++
            }
            i++; return b.toString()
        }
        fun num(): Double { val st = i; while (i < s.length && s[i] in "-+.eE0123456789") i++; return s.substring(st, i).toDouble() }
    }
}

@Suppress("UNCHECKED_CAST")
class World(val json: Map<String, Any?>) {
    val devices = json["devices"] as List<Map<String, Any?>>
    fun device(i: Int) = Device(devices[i])
    fun provisioner(tokens: TokenProvider = Tokens(json["bearer_token"] as String)) = Provisioner.withBackend(
        ProvisionerSettings(
            template = json["template"] as String,
            iotEndpoint = json["iot_endpoint"] as String,
            extraRootCertificatesPem = listOf(json["ca_pem"] as String),
            pollIntervalMillis = 100,
        ),
        json["control_plane"] as String,
        tokens,
    )
}

@Suppress("UNCHECKED_CAST")
class Device(val json: Map<String, Any?>) {
    val url = json["url"] as String
    val wifiJson = json["wifi"] as Map<String, String>
    fun link() = httpDeviceLink(url)
    fun secret(password: String = json["password"] as String) = DeviceSecret.password(json["username"] as String, password)
    fun wifi(passphrase: String = wifiJson["passphrase"]!!) = WifiSettings(wifiJson["ssid"]!!, passphrase)
    fun options() = ProvisionOptions(templateParameters = json["template_parameters"] as Map<String, String>)
    fun state(): Map<String, Any?> = Json.parse(URI("$url/_sim/state").toURL().readText()) as Map<String, Any?>
    fun holdsClaim() = state()["holds_claim"] as Boolean
    fun waitUntilWiped(): Boolean {
        val end = System.nanoTime() + 10_000_000_000
        while (System.nanoTime() < end) { if (!holdsClaim()) return true; Thread.sleep(50) }
        return false
    }
}

class Tokens(private val token: String, private val staleFirst: Boolean = false) : TokenProvider {
    val calls = java.util.Collections.synchronizedList(mutableListOf<Boolean>())
    override suspend fun bearerToken(refresh: Boolean): String {
        calls.add(refresh)
        delay(1) // a real provider suspends (network, keychain)
        return if (staleFirst && !refresh) "stale-token" else token
    }
}

class Recorder : ProvisioningListener {
    val events = java.util.Collections.synchronizedList(mutableListOf<ProvisioningEvent>())
    override fun onEvent(event: ProvisioningEvent) { events.add(event) }
    fun stages() = synchronized(events) { events.map { it.stage } }
}

fun check(condition: Boolean, what: () -> String) { if (!condition) throw AssertionError(what()) }

suspend inline fun <reified T : Throwable> expectThrows(block: () -> Unit): T {
    try { block() } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

fun inOrder(stages: List<Stage>) = stages.zipWithNext().all { (a, b) -> a.ordinal < b.ordinal }

/** The app's own claim source and thing directory (the emulator's backend contract over HTTPS), reached
 *  through a phone that has no route out while it is on the device's access point: the provider then
 *  throws `ProviderFailure.Unreachable`, as an app's would. */
@Suppress("UNCHECKED_CAST")
class PhoneOnAccessPoint(private val w: World) : ClaimSource, ThingDirectory {
    @Volatile var onAp = false
    val refused = java.util.concurrent.atomic.AtomicInteger()
    private val tls: javax.net.ssl.SSLContext = run {
        val ca = java.security.cert.CertificateFactory.getInstance("X.509")
            .generateCertificate((w.json["ca_pem"] as String).byteInputStream())
        val store = java.security.KeyStore.getInstance(java.security.KeyStore.getDefaultType()).apply { load(null, null); setCertificateEntry("ca", ca) }
        val trust = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm()).apply { init(store) }
        javax.net.ssl.SSLContext.getInstance("TLS").apply { init(null, trust.trustManagers, null) }
    }
    private fun route() {
        if (onAp) { refused.incrementAndGet(); throw ProviderFailure.Unreachable("no route out of the device's access point") }
    }
    private fun call(method: String, path: String, body: String?): Map<String, Any?>? {
        val c = URI((w.json["control_plane"] as String).trimEnd('/') + path).toURL().openConnection() as javax.net.ssl.HttpsURLConnection
        c.sslSocketFactory = tls.socketFactory
        c.requestMethod = method
        c.setRequestProperty("Authorization", "Bearer " + w.json["bearer_token"])
        c.setRequestProperty("Content-Type", "application/json")
        if (body != null) { c.doOutput = true; c.outputStream.use { it.write(body.toByteArray()) } }
        return when (c.responseCode) {
            404 -> null
            200, 201 -> Json.parse(c.inputStream.use { it.readBytes().decodeToString() }) as Map<String, Any?>
            else -> throw ProviderFailure.Failed("backend answered ${c.responseCode}")
        }
    }
    override suspend fun requestClaim(request: ClaimRequest): ProvisioningClaim = withContext(Dispatchers.IO) {
        route()
        val a = call("POST", "/v1/provisioning-claims", "{\"templateName\":\"${request.template}\"}")!!
        ProvisioningClaim(a["certificatePem"] as String, (a["keyPair"] as Map<String, Any?>)["PrivateKey"] as String,
            java.time.Instant.ofEpochSecond((a["expiration"] as Double).toLong()))
    }
    override suspend fun describeThing(thingName: String): ThingDescription? = withContext(Dispatchers.IO) {
        route()
        call("GET", "/v1/things/$thingName", null)?.let { t ->
            ThingDescription(thingName = t["thingName"] as String, certificates = (t["certificates"] as List<Map<String, Any?>>).map {
                ThingCertificate(it["certificateId"] as String,
                    if (it["status"] == "ACTIVE") CertificateStatus.Active else CertificateStatus.Other(it["status"] as String))
            })
        }
    }
    fun provisioner(cloudTimeoutSecs: Int) = Provisioner.withClaimSource(
        ProvisionerSettings(template = w.json["template"] as String, iotEndpoint = w.json["iot_endpoint"] as String,
            pollIntervalMillis = 100, cloudTimeoutSecs = cloudTimeoutSecs, apJoinBudgetSecs = 20),
        this, this)
}

val tests = linkedMapOf<String, suspend (World) -> Unit>(
    "provisions a device after a wrong Wi-Fi passphrase, events in order" to { w ->
        val d = w.device(0)
        val session = w.provisioner().connect(d.link(), d.secret(), null)
        check(session.deviceInfo().security == SecurityLevel.SEC2) { "not Sec2" }
        val networks = session.scanWifi()
        check(networks.any { it.ssid == "claimlink-lab" }) { "scan: $networks" }
        val first = Recorder()
        expectThrows<ProvisioningFailure.WifiPasswordRejected> { session.provision(d.wifi("not the passphrase"), d.options(), first) }
        check(Stage.WIFI_FAILED in first.stages()) { "no WIFI_FAILED: ${first.stages()}" }
        // The retry, as a Flow.
        val updates = session.provisionFlow(d.wifi(), d.options()).toList()
        val stages = updates.filterIsInstance<ProvisioningUpdate.Progress>().map { it.event.stage }
        val done = (updates.last() as ProvisioningUpdate.Finished).device
        check(inOrder(stages)) { "out of order: $stages" }
        check(stages.last() == Stage.CONFIRMED_BY_CLOUD) { "last: $stages" }
        check(listOf(Stage.WIFI_CONNECTED, Stage.CERTIFICATE_ISSUED, Stage.THING_REGISTERED).all { it in stages }) { "$stages" }
        val left = updates.filterIsInstance<ProvisioningUpdate.Progress>().mapNotNull { it.event.claimTimeLeft }
        check(left.isNotEmpty() && left.zipWithNext().all { (a, b) -> a >= b }) { "time left not decreasing: $left" }
        check(done.thingName == d.state()["thing_name"]) { "thing ${done.thingName} vs ${d.state()}" }
        check(done.certificateId != null) { "no certificate" }
        // Typed fields on the events: the device's address once on Wi-Fi, thing and certificate on confirmation.
        val last = updates.filterIsInstance<ProvisioningUpdate.Progress>().last().event
        check(last.deviceIp != null && last.thingName == done.thingName && last.certificateId == done.certificateId) { "typed fields: $last" }
        check(!d.holdsClaim()) { "device still holds the claim" }
        // The support report: both runs, the first with its stable code, and no secret.
        val reportText = session.supportReport()
        val report = Json.parse(reportText) as Map<String, Any?>
        val runs = report["runs"] as List<Map<String, Any?>>
        check(runs.map { (it["outcome"] as Map<String, Any?>)["result"] } == listOf("failure", "success")) { "runs: $runs" }
        check((runs[0]["outcome"] as Map<String, Any?>)["code"] == "CL-201") { "code: ${runs[0]}" }
        check((report["outcome"] as Map<String, Any?>)["thing_name"] == done.thingName) { "outcome: ${report["outcome"]}" }
        check(d.json["password"] as String !in reportText && d.wifiJson["passphrase"]!! !in reportText) { "a secret is in the report" }
        session.disconnect()
    },
    "wrong device password, then the right one" to { w ->
        val d = w.device(1)
        val p = w.provisioner()
        val refused = expectThrows<ProvisioningFailure.WrongDevicePassword> { p.connect(d.link(), d.secret("wrong-pass"), null) }
        // The Rust Display is exported: a field-less variant still logs as a sentence.
        check("$refused" == "the device refused the password") { "toString: $refused" }
        check("wrong-pass" !in "$refused") { "the password is in the failure" }
        // Its stable code, the table's message, and a report of the failure alone.
        check(refused.code() == "CL-101") { "code ${refused.code()}" }
        check(failureMessages().single { it.code == "CL-101" }.message == refused.codeMessage()) { "message table" }
        check("\"CL-101\"" in refused.supportReport() && "wrong-pass" !in refused.supportReport()) { refused.supportReport() }
        val session = p.connect(d.link(), d.secret(), null)
        val done = session.provision(d.wifi(), d.options(), null)
        check(done.thingName == d.state()["thing_name"]) { "thing" }
        // Provisioned now: provision again is refused; its Wi-Fi changes without a claim.
        val already = expectThrows<ProvisioningFailure.AlreadyProvisioned> { session.provision(d.wifi(), d.options(), null) }
        check(already.thingName == done.thingName && already.certificateId == done.certificateId) { "$already" }
        val moved = session.reconfigureWifi(d.wifi(), null)
        check(moved.thingName == done.thingName && moved.certificateId == done.certificateId && moved.deviceIp != null) { "$moved" }
    },
    "cancelling the coroutine stops the run and wipes the claim" to { w ->
        val d = w.device(2)
        val session = w.provisioner().connect(d.link(), d.secret(), null)
        coroutineScope {
            lateinit var job: Job
            val recorder = Recorder()
            val listener = provisioningListener { recorder.onEvent(it); if (it.stage == Stage.WIFI_APPLIED) job.cancel() }
            job = launch { session.provision(d.wifi(), d.options(), listener) }
            job.join()
            check(job.isCancelled) { "not cancelled" }
            check(Stage.CLAIM_SENT in recorder.stages()) { "${recorder.stages()}" }
            check(Stage.CONFIRMED_BY_CLOUD !in recorder.stages()) { "finished anyway" }
        }
        check(d.waitUntilWiped()) { "the device still holds the claim" }
        check(d.state()["thing_name"] == null) { "the device registered anyway" }
    },
    "leaving a Flow early cancels the run and wipes the claim" to { w ->
        val d = w.device(3)
        val session = w.provisioner().connect(d.link(), d.secret(), null)
        val reached = session.provisionFlow(d.wifi(), d.options())
            .first { it is ProvisioningUpdate.Progress && it.event.stage == Stage.WIFI_APPLIED }
        check(reached is ProvisioningUpdate.Progress) { "flow" }
        check(d.waitUntilWiped()) { "the device still holds the claim" }
        check(d.state()["thing_name"] == null) { "the device registered anyway" }
    },
    "TaskHandle.cancel reports Cancelled and wipes the claim" to { w ->
        val d = w.device(4)
        val session = w.provisioner().connect(d.link(), d.secret(), null)
        val applied = CountDownLatch(1)
        val finished = CountDownLatch(1)
        var outcome: Any? = null
        val completion = object : ProvisioningCompletion {
            override fun onSuccess(device: ProvisionedDevice) { outcome = device; finished.countDown() }
            override fun onFailure(failure: ProvisioningFailure) { outcome = failure; finished.countDown() }
        }
        val handle = session.startProvision(d.wifi(), d.options(), provisioningListener { if (it.stage == Stage.WIFI_APPLIED) applied.countDown() }, completion)
        check(withContext(Dispatchers.IO) { applied.await(30, TimeUnit.SECONDS) }) { "never applied" }
        check(!handle.isFinished()) { "finished early" }
        handle.cancel()
        handle.cancel()
        check(withContext(Dispatchers.IO) { finished.await(10, TimeUnit.SECONDS) }) { "no outcome" }
        check(outcome is ProvisioningFailure.Cancelled) { "outcome $outcome" }
        check("$outcome".contains("cancel")) { "toString: $outcome" }
        check(d.waitUntilWiped()) { "the device still holds the claim" }
        check(d.state()["thing_name"] == null) { "the run went on after cancel()" }
    },
    "session.cancel() applies to the run in progress only; a dropped TaskHandle does not cancel" to { w ->
        val d = w.device(6)
        val session = w.provisioner().connect(d.link(), d.secret(), null)
        session.cancel() // no run in progress: nothing to cancel, nothing remembered
        val finished = CountDownLatch(1)
        var outcome: Any? = null
        val completion = object : ProvisioningCompletion {
            override fun onSuccess(device: ProvisionedDevice) { outcome = device; finished.countDown() }
            override fun onFailure(failure: ProvisioningFailure) { outcome = failure; finished.countDown() }
        }
        // The handle is freed at once (as the garbage collector would free an unreferenced one).
        session.startProvision(d.wifi(), d.options(), null, completion).destroy()
        System.gc()
        check(withContext(Dispatchers.IO) { finished.await(30, TimeUnit.SECONDS) }) { "no outcome" }
        check(outcome is ProvisionedDevice) { "outcome $outcome" }
        // During a run, session.cancel() stops it.
        val e = w.device(7)
        val other = w.provisioner().connect(e.link(), e.secret(), null)
        val cancelled = expectThrows<ProvisioningFailure.Cancelled> {
            other.provision(e.wifi(), e.options(), provisioningListener { if (it.stage == Stage.WIFI_APPLIED) other.cancel() })
        }
        check(cancelled.code() == "CL-601") { "code ${cancelled.code()}" }
        check(e.waitUntilWiped()) { "the device still holds the claim" }
        check(e.state()["thing_name"] == null) { "the run went on after cancel()" }
    },
    "prepareClaim before the session: the run asks the backend for no claim" to { w ->
        val d = w.device(8)
        val p = w.provisioner()
        val left = p.prepareClaim(d.options())
        check(left.seconds > 90) { "time left $left" }
        val recorder = Recorder()
        val session = p.connect(d.link(), d.secret(), recorder)
        val done = session.provision(d.wifi(), d.options(), recorder)
        check(done.thingName == d.state()["thing_name"]) { "thing" }
        check(Stage.CLAIM_REQUESTED !in recorder.stages()) { "${recorder.stages()}" }
        val issued = synchronized(recorder.events) { recorder.events.first { it.stage == Stage.CLAIM_ISSUED } }
        check(issued.detail?.contains("prepared") == true) { "$issued" }
    },
    "provisionFlow is cold (as Swift's provisionUpdates): nothing starts until it is collected, and each collection is a run" to { w ->
        val d = w.device(9)
        val tokens = Tokens(w.json["bearer_token"] as String)
        val session = w.provisioner(tokens).connect(d.link(), d.secret(), null)
        val flow = session.provisionFlow(d.wifi(), d.options())
        check(session.deviceInfo().security == SecurityLevel.SEC2) { "device info" } // a whole round trip after the call
        check(tokens.calls.isEmpty() && !d.holdsClaim()) { "the run started before the collection: ${tokens.calls.size} token calls" }
        val done = (flow.toList().last() as ProvisioningUpdate.Finished).device
        check(done.thingName == d.state()["thing_name"] && tokens.calls.isNotEmpty()) { "thing ${done.thingName}" }
        // Collecting the same Flow again is a second run: this device now has its identity.
        expectThrows<ProvisioningFailure.AlreadyProvisioned> { flow.toList() }
        session.disconnect()
    },
    "SoftAP: the confirmation waits for the phone's network, and PhoneOffline past its deadline" to { w ->
        // The app leaves the access point when the run waits for the network: confirmed.
        val d = w.device(10)
        val cloud = PhoneOnAccessPoint(w)
        val p = cloud.provisioner(cloudTimeoutSecs = 60)
        check(p.prepareClaim(d.options()).seconds > 80) { "prepared claim too short" }
        cloud.onAp = true
        val recorder = Recorder()
        val leaving = provisioningListener { recorder.onEvent(it); if (it.stage == Stage.WAITING_FOR_NETWORK) cloud.onAp = false }
        val done = p.connect(d.link(), d.secret(), leaving).provision(d.wifi(), d.options(), leaving)
        val stages = recorder.stages()
        val waiting = stages.indexOf(Stage.WAITING_FOR_NETWORK)
        check(waiting >= 0 && stages.drop(waiting + 1) == listOf(Stage.CONFIRMED_BY_CLOUD)) { "$stages" }
        check(done.thingName == d.state()["thing_name"] && cloud.refused.get() >= 1) { "$done ${cloud.refused}" }
        // A phone that stays on the access point: PhoneOffline (CL-405) after the 1 s deadline, no claim left.
        val e = w.device(11)
        val stays = PhoneOnAccessPoint(w)
        val q = stays.provisioner(cloudTimeoutSecs = 1)
        q.prepareClaim(e.options())
        stays.onAp = true
        val offline = expectThrows<ProvisioningFailure.PhoneOffline> { q.connect(e.link(), e.secret(), null).provision(e.wifi(), e.options(), null) }
        check(offline.code() == "CL-405" && offline.thingName == e.state()["thing_name"]) { "$offline" }
        check("once the phone is online" in offline.sentence()) { offline.sentence() }
        check(!e.holdsClaim()) { "the device still holds the claim" }
    },
    "a rejected token is refreshed through the app's suspend provider" to { w ->
        val d = w.device(5)
        val tokens = Tokens(w.json["bearer_token"] as String, staleFirst = true)
        val session = w.provisioner(tokens).connect(d.link(), d.secret(), null)
        val done = session.provision(d.wifi(), d.options(), null)
        check(done.thingName.isNotEmpty()) { "thing" }
        check(tokens.calls.take(2) == listOf(false, true)) { "calls ${tokens.calls}" }
    },
    "logger, typed input errors, and no secret in toString()" to { w ->
        val lines = java.util.Collections.synchronizedList(mutableListOf<LogRecord>())
        setLogger(object : LogSink { override fun log(record: LogRecord) { lines.add(record) } }, LogLevel.TRACE)
        val d = w.device(0)
        expectThrows<ProvisioningFailure.WrongDevicePassword> { w.provisioner().connect(d.link(), d.secret("hunter2-pw"), null) }
        clearLogger()
        check(lines.isNotEmpty()) { "no log lines" }
        check(lines.none { "hunter2-pw" in it.message }) { "password logged" }
        expectThrows<ProvisioningFailure.InvalidInput> { WifiSettings("x".repeat(33), "correct horse battery") }
        expectThrows<ProvisioningFailure.InvalidInput> { httpDeviceLink("ftp://192.168.4.1") }
        expectThrows<ProvisioningFailure.InvalidInput> { parseProvisioningQr("""{"ver":"v1","name":"PROV_1","transport":"carrier-pigeon"}""") }
        val qr = parseProvisioningQr("""{"ver":"v1","name":"PROV_1A2B","pop":"abcd1234","transport":"ble"}""")
        check(qr.name == "PROV_1A2B" && qr.transport == DeviceTransport.BLE) { "$qr" }
        val printed = listOf(qr.toString(), DeviceSecret.password("wifiprov", "hunter2-pw").toString(),
            WifiSettings("claimlink-lab", "correct horse battery").toString(),
            AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "session-token-xyz").toString()).joinToString(" ")
        for (s in listOf("abcd1234", "hunter2-pw", "correct horse battery", "wJalrXUtnFEMI", "session-token-xyz")) {
            check(s !in printed) { "$s printed: $printed" }
        }
        check("claimlink-lab" in printed && "AKIDEXAMPLE" in printed) { printed }
    },
)

/** Runs each of `tests` against `world`, within 60 s each (only those whose name contains `only`, when
 *  it is set), printing a line per test; returns how many failed. The Android JVM tests use it too. */
fun runTests(tests: Map<String, suspend (World) -> Unit>, world: World, only: String? = null): Int {
    var failed = 0
    for ((name, test) in tests) {
        if (only != null && only !in name) continue
        val started = System.nanoTime()
        try {
            runBlocking { withTimeout(60_000) { test(world) } }
            println("  ok    $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("  FAIL  $name: $e")
        }
    }
    return failed
}

fun main(args: Array<String>) {
    val harness = args.getOrNull(0) ?: error("usage: BindingTest <path to claimlink-harness>")
    val proc = ProcessBuilder(harness, "serve", "--json", "--devices", "12", "--wifi-join-ms", "1500")
        .redirectError(ProcessBuilder.Redirect.DISCARD).start()
    var failed = 0
    try {
        val line = proc.inputStream.bufferedReader().readLine() ?: error("claimlink-harness serve printed nothing")
        @Suppress("UNCHECKED_CAST")
        val world = World(Json.parse(line) as Map<String, Any?>)
        println("kotlin bindings: claimlink ${claimlinkVersion()} against ${world.json["control_plane"]}")
        failed = runTests(tests, world)
    } finally {
        proc.destroy()
    }
    println("kotlin bindings: ${tests.size - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
