// The AAR's AndroidGattPeripheral on the JVM, under a fake of Android's Bluetooth (android/jvm-test:
// the android.bluetooth stubs, checked against AOSP's API file by ApiSignatureCheck, and
// FakeBluetoothService), driving the SDK's real BleLink through the FFI (gattDeviceLink) to simulated
// devices served by `claimlink-harness serve`. Each test provisions or connects to its own device.
//
// Built and run by android/jvm-test/run (called by bindings/kotlin/run-tests, so by scripts/test).
package dev.claimlink.androidtest

import android.Manifest
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothManager
import android.content.Context
import android.content.pm.PackageManager
import android.location.LocationManager
import dev.claimlink.ble.BleUnavailable
import dev.claimlink.ble.connectFromQrCode
import dev.claimlink.ble.missingPermissions
import dev.claimlink.ble.scanDevices
import dev.claimlink.fake.Advertiser
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import java.util.UUID
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
import dev.claimlink.test.runTests
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlin.system.exitProcess

/** ESP-IDF's example provisioning service (the harness's GATT table). */
const val SERVICE = "021a9004-0382-4aea-bff4-6b3f1c5adfb4"

/** Short timeouts, so that the silent-callback cases end in a second. */
val TEST_TIMEOUTS = GattTimeouts(connectMillis = 3_000, discoverMillis = 3_000, operationMillis = 1_000, disconnectMillis = 500)

/** The app's Context: the permissions it holds, and the system services. */
open class TestContext(val granted: MutableSet<String> = ALL_PERMISSIONS.toMutableSet()) : Context() {
    override fun checkSelfPermission(permission: String) =
        if (permission in granted) PackageManager.PERMISSION_GRANTED else PackageManager.PERMISSION_DENIED
    override fun getSystemService(name: String): Any? = when (name) {
        BLUETOOTH_SERVICE -> BluetoothManager()
        LOCATION_SERVICE -> LocationManager()
        else -> null
    }
    override fun getSystemServiceName(serviceClass: Class<*>): String? = when (serviceClass) {
        BluetoothManager::class.java -> BLUETOOTH_SERVICE
        LocationManager::class.java -> LOCATION_SERVICE
        else -> null
    }
    companion object {
        val ALL_PERMISSIONS = setOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT,
            Manifest.permission.BLUETOOTH, Manifest.permission.BLUETOOTH_ADMIN, Manifest.permission.ACCESS_FINE_LOCATION)
    }
}

/** One device of the world behind a fresh fake Bluetooth service, playing Android API [sdk]. */
class Rig(world: World, index: Int, val sdk: Int = 34, decoys: List<Advertiser> = emptyList(), configure: Faults.() -> Unit = {}) {
    val device = world.device(index)
    val address = "C0:FF:EE:00:00:%02X".format(index)
    val name = device.json["name"] as String
    val service = FakeBluetoothService(device.url, Faults().apply(configure), address,
        decoys + Advertiser(address, name, UUID.fromString(SERVICE), rssi = -48))
    val context = TestContext()
    val peripheral: AndroidGattPeripheral
    init {
        FakeBluetooth.install(service)
        FakeBluetooth.setSdkInt(sdk)
        FakeBluetooth.setEnabled(true)
        FakeBluetooth.setLocationEnabled(true)
        FakeBluetooth.callbackThreads.clear()
        val bt: BluetoothDevice = BluetoothAdapter.getDefaultAdapter().getRemoteDevice(address)
        peripheral = AndroidGattPeripheral(context, bt, TEST_TIMEOUTS, sdk)
    }
    fun link() = gattDeviceLink(peripheral, SERVICE)
    fun qr(transport: String = "ble") = """{"ver":"v1","name":"$name","username":"wifiprov","password":"abcd1234","transport":"$transport","security":2}"""
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
    "an MTU request that never calls back ends that attempt; the SDK's retry connects" to { w ->
        val rig = Rig(w, 3) { silentFirstMtu = true }
        val session = w.provisioner().connect(rig.link(), rig.device.secret())
        check(rig.service.transports.size == 2 && rig.service.mtuRequests.size == 2) { "attempts ${rig.service.transports.size}, MTU requests ${rig.service.mtuRequests.size}" }
        check(rig.peripheral.mtu() == 247) { "MTU ${rig.peripheral.mtu()}" }
        session.disconnect()
        rig.peripheral.release()
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
    "missingPermissions: BLUETOOTH_SCAN/CONNECT on API 31+, location and the legacy pair on 30 and older" to { w ->
        val ctx = TestContext(mutableSetOf())
        check(missingPermissions(ctx, 31) == listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)) { "31: ${missingPermissions(ctx, 31)}" }
        check(missingPermissions(ctx, 30) == listOf(Manifest.permission.BLUETOOTH, Manifest.permission.BLUETOOTH_ADMIN, Manifest.permission.ACCESS_FINE_LOCATION)) { "30: ${missingPermissions(ctx, 30)}" }
        ctx.granted += Manifest.permission.BLUETOOTH_SCAN
        check(missingPermissions(ctx, 34) == listOf(Manifest.permission.BLUETOOTH_CONNECT)) { "34: ${missingPermissions(ctx, 34)}" }
        check(missingPermissions(TestContext(), 34).isEmpty() && missingPermissions(TestContext(), 29).isEmpty()) { "all granted" }
    },
    "scanDevices: prefix and dedup by address, RSSI, results on the main thread, the scan stops with the collection" to { w ->
        val rig = Rig(w, 9, decoys = listOf(
            Advertiser("AA:00:00:00:00:01", "PROV_DECOY1", UUID.fromString(SERVICE), rssi = -70),
            Advertiser("AA:00:00:00:00:02", "Headphones", null, rssi = -40),
            Advertiser("AA:00:00:00:00:03", null, null, rssi = -80)))
        val found = scanDevices(rig.context, namePrefix = "PROV_").take(2).toList()
        check(found.map { it.name }.toSet() == setOf("PROV_DECOY1", rig.name)) { "found ${found.map { it.name }}" }
        check(found.map { it.address }.toSet().size == 2) { "duplicates: $found" }
        check(found.first { it.name == rig.name }.rssi in -50..-48) { "rssi ${found.map { it.rssi }}" }
        check(rig.service.scansStarted.get() == 1 && rig.service.scansStopped.get() == 1) { "scans ${rig.service.scansStarted}/${rig.service.scansStopped}" }
        check(FakeBluetooth.callbackThreads == setOf("scan:main")) { "scan callbacks on ${FakeBluetooth.callbackThreads}" }
        val byService = scanDevices(rig.context, serviceUuid = UUID.fromString(SERVICE)).take(2).toList()
        check(byService.map { it.name }.toSet() == setOf("PROV_DECOY1", rig.name)) { "by service: ${byService.map { it.name }}" }
        rig.peripheral.release()
    },
    "hostile advertising data (truncated, overlong name, zero-length structures) is scanned past, not crashed on" to { w ->
        val rig = Rig(w, 9, decoys = listOf(
            Advertiser("AA:00:00:00:00:04", null, null, raw = byteArrayOf(30, 0x09, 'P'.code.toByte())), // truncated
            Advertiser("AA:00:00:00:00:05", null, null, raw = byteArrayOf(0, 0, 0)),                   // empty
            Advertiser("AA:00:00:00:00:06", null, null, raw = byteArrayOf(5, 0x07, 1, 2, 3, 4)),      // short UUID list
            Advertiser("AA:00:00:00:00:07", null, null, raw = byteArrayOf(-1, -1, -1))))               // length 255
        val all = scanDevices(rig.context).take(5).toList()
        check(all.map { it.address }.toSet().size == 5) { "seen ${all.map { it.address }}" }
        check(all.single { it.address == rig.address }.name == rig.name) { "the device's name: ${all.map { it.name }}" }
        check(all.filter { it.address.startsWith("AA:") }.all { it.name == null }) { "names from garbage: ${all.map { it.name }}" }
        val named = scanDevices(rig.context, namePrefix = "PROV_").first()
        check(named.address == rig.address) { "prefix match ${named.address}" }
        rig.peripheral.release()
    },
    "typed preflight failures instead of an empty scan: permission, Bluetooth off, location off on API 30" to { w ->
        val rig = Rig(w, 9, sdk = 30)
        val noScan = TestContext(TestContext.ALL_PERMISSIONS.toMutableSet().apply { remove(Manifest.permission.ACCESS_FINE_LOCATION) })
        val missing = expectThrows<BleUnavailable.PermissionMissing> { scanDevices(noScan, null, null, null, 30).first() }
        check(missing.permission == Manifest.permission.ACCESS_FINE_LOCATION) { "$missing" }
        FakeBluetooth.setLocationEnabled(false)
        expectThrows<BleUnavailable.LocationOff> { scanDevices(rig.context, null, null, null, 30).first() }
        check(scanDevices(rig.context, "PROV_", null, null, 31).first().name == rig.name) { "API 31 scans with location off" }
        FakeBluetooth.setLocationEnabled(true)
        FakeBluetooth.setEnabled(false)
        expectThrows<BleUnavailable.BluetoothOff> { scanDevices(rig.context).first() }
        FakeBluetooth.setEnabled(true)
        rig.service.faults.scanPermissionDenied = true // granted as far as the app knows, refused by the service
        val refused = expectThrows<BleUnavailable.PermissionMissing> { scanDevices(rig.context, null, null, null, 34).first() }
        check(refused.permission == Manifest.permission.BLUETOOTH_SCAN) { "$refused" }
        rig.peripheral.release()
    },
    "connectFromQrCode: scans for the QR's name among decoys, connects and provisions" to { w ->
        val rig = Rig(w, 10, decoys = listOf(Advertiser("AA:00:00:00:00:01", "PROV_DECOY1", UUID.fromString(SERVICE), rssi = -30)))
        val found = connectFromQrCode(rig.context, rig.qr(), 5_000, TEST_TIMEOUTS, 34)
        check(found.peripheral.name() == rig.address) { "connected to ${found.peripheral.name()}" }
        val session = w.provisioner().connect(found.link, found.secret, null)
        val done = session.provision(rig.device.wifi(), rig.device.options(), null)
        check(done.thingName == rig.device.state()["thing_name"]) { "thing" }
        session.disconnect()
        found.peripheral.release()
        rig.peripheral.release()
    },
    "connectFromQrCode: a SoftAP code and an absent device fail typed" to { w ->
        val rig = Rig(w, 9)
        expectThrows<ProvisioningFailure.InvalidInput> { connectFromQrCode(rig.context, rig.qr("softap"), 1_000, TEST_TIMEOUTS, 34) }
        expectThrows<ProvisioningFailure.InvalidInput> { connectFromQrCode(rig.context, "not json", 1_000, TEST_TIMEOUTS, 34) }
        val absent = rig.qr().replace(rig.name, "PROV_GONE")
        val gone = expectThrows<BleUnavailable.DeviceNotFound> { connectFromQrCode(rig.context, absent, 300, TEST_TIMEOUTS, 34) }
        check(gone.name == "PROV_GONE") { "$gone" }
        check(rig.service.scansStarted.get() == rig.service.scansStopped.get()) { "a scan left running" }
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
    val proc = ProcessBuilder(harness, "serve", "--json", "--devices", "11", "--wifi-join-ms", "300")
        .redirectError(ProcessBuilder.Redirect.DISCARD).start()
    var failed = if (apiProblems.isEmpty()) 0 else 1
    try {
        val line = proc.inputStream.bufferedReader().readLine() ?: error("claimlink-harness serve printed nothing")
        @Suppress("UNCHECKED_CAST")
        val world = World(Json.parse(line) as Map<String, Any?>)
        // ANDROID_GATT_TEST_ONLY: run the tests whose name contains it.
        failed += runTests(tests, world, System.getenv("ANDROID_GATT_TEST_ONLY"))
    } finally {
        proc.destroy()
    }
    println("android gatt: ${tests.size + 1 - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
