// The AAR's AndroidGattPeripheral on the JVM, under a fake of Android's Bluetooth (android/jvm-test:
// the android.bluetooth stubs, checked against AOSP's API file by ApiSignatureCheck, and
// FakeBluetoothService), driving the SDK's real BleLink through the FFI (gattDeviceLink) to simulated
// devices served by `claimlink-harness serve`. Each test provisions or connects to its own device.
//
// Built and run by android/jvm-test/run (called by bindings/kotlin/run-tests, so by scripts/test).
package dev.claimlink.androidtest

import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothDevice
import android.content.Context
import dev.claimlink.*
import dev.claimlink.ble.AndroidGattPeripheral
import dev.claimlink.ble.GattTimeouts
import dev.claimlink.fake.FakeBluetooth
import dev.claimlink.fake.FakeBluetoothService
import dev.claimlink.fake.Faults
import dev.claimlink.test.Json
import dev.claimlink.test.World
import dev.claimlink.test.check
import dev.claimlink.test.expectThrows
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.system.exitProcess

/** ESP-IDF's example provisioning service (the harness's GATT table). */
const val SERVICE = "021a9004-0382-4aea-bff4-6b3f1c5adfb4"

/** Short timeouts, so that the silent-callback cases end in a second. */
val TEST_TIMEOUTS = GattTimeouts(connectMillis = 3_000, discoverMillis = 3_000, operationMillis = 1_000, disconnectMillis = 500)

object AppContext : Context()

/** One device of the world behind a fresh fake Bluetooth service, playing Android API [sdk]. */
class Rig(world: World, index: Int, val sdk: Int = 34, configure: Faults.() -> Unit = {}) {
    val device = world.device(index)
    val service = FakeBluetoothService(device.url, Faults().apply(configure))
    val peripheral: AndroidGattPeripheral
    init {
        FakeBluetooth.install(service)
        FakeBluetooth.setSdkInt(sdk)
        FakeBluetooth.callbackThreads.clear()
        val address = "C0:FF:EE:00:00:%02X".format(index)
        val bt: BluetoothDevice = BluetoothAdapter.getDefaultAdapter().getRemoteDevice(address)
        peripheral = AndroidGattPeripheral(AppContext, bt, TEST_TIMEOUTS, sdk)
    }
    fun link() = gattDeviceLink(peripheral, SERVICE)
}

suspend fun provisions(world: World, rig: Rig) {
    val d = rig.device
    val session = world.provisioner().connect(rig.link(), d.secret(), null)
    val done = session.provision(d.wifi(), d.options(), null)
    check(done.thingName == d.state()["thing_name"]) { "thing ${done.thingName} vs ${d.state()}" }
    check(!d.holdsClaim()) { "the device still holds the claim" }
    session.disconnect()
}

val tests = linkedMapOf<String, suspend (World) -> Unit>(
    "provisions end to end (API 34: status-code writes, value callbacks), MTU 517 asked, HIGH then BALANCED" to { w ->
        val rig = Rig(w, 0, sdk = 34)
        provisions(w, rig)
        val s = rig.service
        check(s.transports.all { it == BluetoothDevice.TRANSPORT_LE } && s.transports.size == 1) { "transports ${s.transports}" }
        check(s.mtuRequests == listOf(517)) { "MTU requests ${s.mtuRequests}" }
        check(rig.peripheral.mtu() == 247) { "negotiated MTU ${rig.peripheral.mtu()}" }
        check(s.priorities.first() == BluetoothGatt.CONNECTION_PRIORITY_HIGH && s.priorities.last() == BluetoothGatt.CONNECTION_PRIORITY_BALANCED) { "priorities ${s.priorities}" }
        check(s.largestWrite in 1..480) { "largest write ${s.largestWrite}" }
        check(FakeBluetooth.callbackThreads == setOf("claimlink-gatt")) { "callbacks ran on ${FakeBluetooth.callbackThreads}" }
        check(s.closes.get() >= 1 && s.closesWhileUp.get() == 0) { "close before the disconnect callback: ${s.closes} / ${s.closesWhileUp}" }
        rig.peripheral.release()
    },
    "provisions on API 31 (setValue + boolean writeCharacteristic, the old read callbacks)" to { w ->
        val rig = Rig(w, 1, sdk = 31)
        provisions(w, rig)
        rig.peripheral.release()
    },
    "GATT 133 on the first two connects: closed, backed off, connected on the third" to { w ->
        val rig = Rig(w, 2) { failingConnects = 2; connectFailureStatus = 133 }
        provisions(w, rig)
        check(rig.service.transports.size == 3) { "attempts ${rig.service.transports.size}" }
        check(rig.service.closes.get() >= 2) { "failed attempts not closed: ${rig.service.closes}" }
        rig.peripheral.release()
    },
    "statuses 62 and 8 on connect are retried too" to { w ->
        for (status in listOf(62, 8)) {
            val rig = Rig(w, 3) { failingConnects = 1; connectFailureStatus = status }
            val session = w.provisioner().connect(rig.link(), rig.device.secret(), null)
            check(session.deviceInfo().security == SecurityLevel.SEC2) { "device info" }
            session.disconnect()
            check(rig.service.transports.size == 2) { "status $status: attempts ${rig.service.transports.size}" }
            rig.peripheral.release()
        }
    },
    "duplicated callbacks, the copy landing during the next operation, complete nothing else" to { w ->
        val rig = Rig(w, 4) { duplicateCallbacks = true; duplicateAfterMillis = 1 }
        provisions(w, rig)
        rig.peripheral.release()
    },
    "a write that never calls back: typed timeout, the connection ends, its late callback is ignored, reconnecting works" to { w ->
        // Write 2 is the session's first command (write 1: proto-ver). Its callback comes 300 ms after
        // the operation timed out, while the teardown waits for a disconnect callback that never comes.
        val rig = Rig(w, 5) { silentWrite = 2; lateCallbackMillis = 1_300; silentDisconnect = true }
        val p = w.provisioner()
        val lost = expectThrows<ProvisioningFailure.ConnectionLost> { p.connect(rig.link(), rig.device.secret(), null) }
        check("did not answer" in "$lost" || "timed out" in "$lost") { "failure: $lost" }
        check(rig.service.closesWhileUp.get() == 1) { "not closed after the disconnect timeout: ${rig.service.closesWhileUp}" }
        rig.service.faults.silentDisconnect = false
        val deadline = System.nanoTime() + 5_000_000_000
        while (rig.service.lateCallbacks.get() == 0 && System.nanoTime() < deadline) Thread.sleep(10)
        check(rig.service.lateCallbacks.get() == 1) { "the late callback never came" }
        val session = p.connect(rig.link(), rig.device.secret(), null)
        check(session.scanWifi().any { it.ssid == "claimlink-lab" }) { "scan after reconnecting" }
        session.disconnect()
        rig.peripheral.release()
    },
    "the link drops under a write (status 8): ConnectionLost, then a new session works" to { w ->
        val rig = Rig(w, 6) { dropAtWrite = 3 }
        val p = w.provisioner()
        expectThrows<ProvisioningFailure.ConnectionLost> { p.connect(rig.link(), rig.device.secret(), null) }
        check(!rig.peripheral.isConnected()) { "still connected" }
        val session = p.connect(rig.link(), rig.device.secret(), null)
        check(session.deviceInfo().security == SecurityLevel.SEC2) { "device info" }
        session.disconnect()
        rig.peripheral.release()
    },
    "a stale GATT cache: discovery retried once after refresh()" to { w ->
        val rig = Rig(w, 7) { staleCache = true }
        val session = w.provisioner().connect(rig.link(), rig.device.secret(), null)
        check(rig.service.refreshes.get() == 1) { "refreshes ${rig.service.refreshes}" }
        session.disconnect()
        rig.peripheral.release()
    },
    "BLUETOOTH_CONNECT missing: a typed failure naming the permission, no retry" to { w ->
        val rig = Rig(w, 8) { permissionDenied = true }
        val lost = expectThrows<ProvisioningFailure.ConnectionLost> { w.provisioner().connect(rig.link(), rig.device.secret(), null) }
        check("permission" in "$lost") { "failure: $lost" }
        rig.peripheral.release()
    },
    "a service UUID that is not one is refused" to { w ->
        val rig = Rig(w, 8)
        expectThrows<ProvisioningFailure.InvalidInput> { gattDeviceLink(rig.peripheral, "not-a-uuid") }
        rig.peripheral.release()
    },
)

fun main(args: Array<String>) {
    if (args.size != 3) error("usage: AndroidGattTest <claimlink-harness> <android-api-subset.txt> <stubs.jar>")
    val harness = args[0]
    val apiProblems = ApiSignatureCheck.run(java.io.File(args[1]), java.io.File(args[2]))
    for (p in apiProblems) println("  FAIL  stub signature: $p")
    if (apiProblems.isEmpty()) println("  ok    every android.* stub member is in Android's API signature file, and every vendored line is stubbed")
    val proc = ProcessBuilder(harness, "serve", "--json", "--devices", "9", "--wifi-join-ms", "300")
        .redirectError(ProcessBuilder.Redirect.DISCARD).start()
    var failed = if (apiProblems.isEmpty()) 0 else 1
    try {
        val line = proc.inputStream.bufferedReader().readLine() ?: error("claimlink-harness serve printed nothing")
        @Suppress("UNCHECKED_CAST")
        val world = World(Json.parse(line) as Map<String, Any?>)
        val only = System.getenv("ANDROID_GATT_TEST_ONLY") // run the tests whose name contains it
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
    } finally {
        proc.destroy()
    }
    println("android gatt: ${tests.size + 1 - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
