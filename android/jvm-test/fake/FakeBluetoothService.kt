// A fake of Android's Bluetooth service, radio and device for the JVM tests: what the android.bluetooth
// stubs (android/jvm-test/stubs) call, as AOSP's BluetoothGatt calls IBluetoothGatt. Every result comes
// back later on one binder-like thread ("Binder:fake"), as Android's do; the stubs then run the app's
// callbacks on the app's Handler, as AOSP's runOrQueueCallback does.
//
// The device behind it is a simulated device served by `claimlink-harness serve`: its GATT table is
// the harness's (GET /_sim/gatt: the provisioning service laid out as ESP-IDF lays it out, endpoints
// named by 0x2901 descriptors), and a write + read of a characteristic is carried as one protocomm
// request, a POST of that endpoint (each GATT connection is one protocomm session, as over BLE).
//
// The faults a test can switch on are what Android does to apps: status 133 (or 62, 8) on the first
// connects, a write that never calls back or calls back late, duplicated callbacks, the link dropping
// under a write (status 8), a stale GATT cache until refresh(), a disconnect that never calls back.
package dev.claimlink.fake

import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothGattService
import android.bluetooth.BluetoothStatusCodes
import dev.claimlink.test.Json
import java.net.HttpURLConnection
import java.net.URI
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** What the fake does wrong, as Android stacks do. */
class Faults {
    /** The first this-many connection attempts fail with [connectFailureStatus]. */
    @Volatile var failingConnects = 0
    /** 133 (GATT_ERROR), 62 (connection failed to be established) or 8 (connection timeout). */
    @Volatile var connectFailureStatus = 133
    /** The device's own ATT MTU (the negotiated one is the smaller of both sides'). */
    @Volatile var deviceMtu = 247
    /** The Nth characteristic write (1-based, counted over all connections) never calls back... */
    @Volatile var silentWrite: Int? = null
    /** ...or calls back this late (milliseconds) instead, if set. */
    @Volatile var lateCallbackMillis: Long? = null
    /**
     * Every read and write callback is delivered twice, the copy this many milliseconds later but, as
     * in a stack's in-order event stream, before the events of any operation started after the
     * original. (A "duplicate" after later events cannot be told from a new event by anyone; that case
     * is the late callback of a timed-out operation, see [silentWrite].)
     */
    @Volatile var duplicateCallbacks = false
    @Volatile var duplicateAfterMillis = 1L
    /** The app lacks BLUETOOTH_CONNECT: the service throws SecurityException, as Android's does. */
    @Volatile var permissionDenied = false
    /** The link drops (status 8, supervision timeout) while the Nth write is in flight. */
    @Volatile var dropAtWrite: Int? = null
    /** Service discovery finds nothing (status 129, a stale cache) until refresh(). */
    @Volatile var staleCache = false
    /** disconnect() never gets its callback. */
    @Volatile var silentDisconnect = false
    /** The first MTU request never gets its callback. */
    @Volatile var silentFirstMtu = false
    /** The app lacks BLUETOOTH_SCAN: startScan throws SecurityException. */
    @Volatile var scanPermissionDenied = false
}

/** A device the fake radio hears advertising. */
data class Advertiser(val address: String, val name: String?, val serviceUuid: UUID?, val rssi: Int = -60, val raw: ByteArray? = null) {
    /** Its advertising data as ESP-IDF's protocomm BLE transport sends it (flags, 128-bit service
     *  UUID, complete local name; the scan response merged in, as Android's ScanRecord has it). */
    fun advertisingData(): ByteArray {
        raw?.let { return it.copyOf() } // what a broken or hostile advertiser sends instead
        val out = java.io.ByteArrayOutputStream()
        out.write(byteArrayOf(2, 0x01, 0x06))
        serviceUuid?.let { u ->
            out.write(17); out.write(0x07)
            val bytes = java.nio.ByteBuffer.allocate(16).putLong(u.mostSignificantBits).putLong(u.leastSignificantBits).array()
            out.write(bytes.reversedArray()) // little-endian on the air
        }
        name?.toByteArray()?.let { n -> out.write(n.size + 1); out.write(0x09); out.write(n) }
        return out.toByteArray()
    }
}

/**
 * The fake service for one simulated device at [deviceUrl] (`http://127.0.0.1:port`), reachable at
 * [deviceAddress]; other [advertisers] can be heard in scans but not connected to.
 */
class FakeBluetoothService(
    private val deviceUrl: String,
    val faults: Faults = Faults(),
    private val deviceAddress: String? = null,
    val advertisers: List<Advertiser> = emptyList(),
) : FakeBluetooth.Service {
    private val binder: ScheduledExecutorService = Executors.newSingleThreadScheduledExecutor { r ->
        Thread(r, "Binder:fake").apply { isDaemon = true }
    }

    /** One GATT connection's state. */
    private class Connection(val client: FakeBluetooth.Client) {
        @Volatile var up = false
        @Volatile var closed = false
        @Volatile var cookie: String? = null
        val written = ConcurrentHashMap<UUID, ByteArray>()
    }

    private val connections = ConcurrentHashMap<FakeBluetooth.Client, Connection>()
    private val names = HashMap<UUID, String>()
    private val descriptions = HashMap<UUID, ByteArray>()
    private val table: List<Pair<UUID, UUID>>

    /** Connection attempts, and the transports they asked for. */
    val transports = CopyOnWriteArrayList<Int>()
    /** Connection priorities requested, in order. */
    val priorities = CopyOnWriteArrayList<Int>()
    /** MTUs requested. */
    val mtuRequests = CopyOnWriteArrayList<Int>()
    /** Characteristic writes so far (all connections). */
    val writes = AtomicInteger()
    /** Times close() ran, and how many of those came while the link was still up. */
    val closes = AtomicInteger()
    val closesWhileUp = AtomicInteger()
    /** The largest value written (the SDK caps messages at 480 bytes). */
    @Volatile var largestWrite = 0
    /** Late callbacks delivered (see [Faults.lateCallbackMillis]). */
    val lateCallbacks = AtomicInteger()
    /** Times refresh() ran. */
    val refreshes = AtomicInteger()

    init {
        // Each request on its own TCP connection: the device's sessions then follow the cookie alone,
        // one per GATT connection.
        System.setProperty("http.keepAlive", "false")
        val json = Json.parse(URI("$deviceUrl/_sim/gatt").toURL().readText())
        @Suppress("UNCHECKED_CAST")
        val chars = (json as Map<String, Any?>)["characteristics"] as List<Map<String, Any?>>
        table = chars.map { c ->
            val uuid = UUID.fromString(c["uuid"] as String)
            (c["user_description"] as String?)?.let { names[uuid] = it; descriptions[uuid] = it.toByteArray() }
            UUID.fromString(c["service"] as String) to uuid
        }
    }

    private fun later(millis: Long = 2, task: () -> Unit) { binder.schedule(task, millis, TimeUnit.MILLISECONDS) }

    private fun of(client: FakeBluetooth.Client) = connections.getOrPut(client) { Connection(client) }

    override fun connect(client: FakeBluetooth.Client, address: String, transport: Int) {
        if (faults.permissionDenied) throw SecurityException("Need android.permission.BLUETOOTH_CONNECT permission")
        val c = of(client)
        val attempt = transports.size
        transports.add(transport)
        later(5) {
            when {
                transport != BluetoothDevice.TRANSPORT_LE -> client.onClientConnectionState(133, false)
                deviceAddress != null && address != deviceAddress -> client.onClientConnectionState(133, false)
                attempt < faults.failingConnects -> client.onClientConnectionState(faults.connectFailureStatus, false)
                else -> { c.up = true; c.cookie = null; client.onClientConnectionState(0, true) }
            }
        }
    }

    override fun disconnect(client: FakeBluetooth.Client) {
        val c = of(client)
        if (faults.silentDisconnect) return // the link stays up until close()
        later { if (c.up) { c.up = false; client.onClientConnectionState(0, false) } }
    }

    override fun close(client: FakeBluetooth.Client) {
        val c = connections.remove(client) ?: return
        closes.incrementAndGet()
        if (c.up) closesWhileUp.incrementAndGet()
        c.up = false
        c.closed = true
    }

    override fun discoverServices(client: FakeBluetooth.Client): Boolean {
        val c = of(client)
        if (!c.up) return false
        later {
            if (faults.staleCache) { client.onSearchComplete(emptyList(), 129); return@later }
            val services = LinkedHashMap<UUID, BluetoothGattService>()
            for ((service, uuid) in table) {
                val s = services.getOrPut(service) { BluetoothGattService(service, BluetoothGattService.SERVICE_TYPE_PRIMARY) }
                // ESP-IDF's protocomm characteristics: read + write, with a 0x2901 descriptor.
                val ch = BluetoothGattCharacteristic(uuid, BluetoothGattCharacteristic.PROPERTY_READ or BluetoothGattCharacteristic.PROPERTY_WRITE,
                    BluetoothGattCharacteristic.PERMISSION_READ or BluetoothGattCharacteristic.PERMISSION_WRITE)
                if (uuid in descriptions) ch.addDescriptor(BluetoothGattDescriptor(USER_DESCRIPTION, BluetoothGattDescriptor.PERMISSION_READ))
                s.addCharacteristic(ch)
            }
            client.onSearchComplete(services.values.toList(), 0)
        }
        return true
    }

    override fun refresh(client: FakeBluetooth.Client): Boolean {
        refreshes.incrementAndGet()
        faults.staleCache = false
        return true
    }

    override fun readDescriptor(client: FakeBluetooth.Client, d: BluetoothGattDescriptor): Int {
        val c = of(client)
        if (!c.up) return BluetoothStatusCodes.ERROR_PROFILE_SERVICE_NOT_BOUND
        later {
            val value = descriptions[d.characteristic.uuid]
            if (value == null) client.onDescriptorRead(d, 10 /* attribute not found */, ByteArray(0))
            else client.onDescriptorRead(d, 0, value)
        }
        return BluetoothStatusCodes.SUCCESS
    }

    override fun writeCharacteristic(client: FakeBluetooth.Client, ch: BluetoothGattCharacteristic, value: ByteArray, writeType: Int): Int {
        val c = of(client)
        if (!c.up) return BluetoothStatusCodes.ERROR_PROFILE_SERVICE_NOT_BOUND
        val n = writes.incrementAndGet()
        largestWrite = maxOf(largestWrite, value.size)
        // WRITE_TYPE_DEFAULT above MTU - 3: the stack does a long write (prepare + execute) by itself.
        c.written[ch.uuid] = value.copyOf()
        when {
            faults.dropAtWrite == n -> later { c.up = false; c.cookie = null; client.onClientConnectionState(8, false) }
            faults.silentWrite == n -> faults.lateCallbackMillis?.let { late ->
                later(late) { client.onCharacteristicWrite(ch, 0); lateCallbacks.incrementAndGet() }
            }
            else -> later {
                // The copy is queued before the original goes out: a stack's event stream is in order,
                // so a duplicate comes after its original and before any later operation's events.
                if (faults.duplicateCallbacks) later(faults.duplicateAfterMillis) { client.onCharacteristicWrite(ch, 0) }
                client.onCharacteristicWrite(ch, 0)
            }
        }
        return BluetoothStatusCodes.SUCCESS
    }

    override fun readCharacteristic(client: FakeBluetooth.Client, ch: BluetoothGattCharacteristic): Int {
        val c = of(client)
        if (!c.up) return BluetoothStatusCodes.ERROR_PROFILE_SERVICE_NOT_BOUND
        later {
            val name = names[ch.uuid]
            val request = c.written.remove(ch.uuid) ?: ByteArray(0)
            val (status, answer) = if (name == null) 10 to ByteArray(0) else post(c, name, request)
            if (!c.up) return@later
            if (faults.duplicateCallbacks) later(faults.duplicateAfterMillis) { client.onCharacteristicRead(ch, status, answer) }
            client.onCharacteristicRead(ch, status, answer)
        }
        return BluetoothStatusCodes.SUCCESS
    }

    override fun requestMtu(client: FakeBluetooth.Client, mtu: Int): Boolean {
        val c = of(client)
        if (!c.up) return false
        mtuRequests.add(mtu)
        if (faults.silentFirstMtu && mtuRequests.size == 1) return true
        // Android asks for at most 517; the device answers its own; the smaller is used.
        later { client.onConfigureMtu(minOf(mtu.coerceIn(23, 517), faults.deviceMtu), 0) }
        return true
    }

    override fun requestConnectionPriority(client: FakeBluetooth.Client, priority: Int): Boolean {
        if (!of(client).up) return false
        priorities.add(priority)
        return true
    }

    private val scanners = CopyOnWriteArrayList<FakeBluetooth.Scanner>()
    /** Scans started and stopped. */
    val scansStarted = AtomicInteger()
    val scansStopped = AtomicInteger()

    override fun startScan(scanner: FakeBluetooth.Scanner) {
        if (faults.scanPermissionDenied) throw SecurityException("Need android.permission.BLUETOOTH_SCAN permission")
        scansStarted.incrementAndGet()
        scanners.add(scanner)
        // Every advertiser is heard again and again (an advertising interval of ~20 ms here), its RSSI
        // moving a little each time.
        var round = 0
        lateinit var tick: () -> Unit
        tick = {
            if (scanner in scanners) {
                for (a in advertisers) scanner.onAdvertisement(a.address, a.rssi - (round % 3), a.advertisingData())
                round++
                later(20, tick)
            }
        }
        later(5, tick)
    }

    override fun stopScan(scanner: FakeBluetooth.Scanner) {
        if (scanners.remove(scanner)) scansStopped.incrementAndGet()
    }

    /** One protocomm request over the device's HTTP transport: (GATT status, answer). */
    private fun post(c: Connection, endpoint: String, body: ByteArray): Pair<Int, ByteArray> = try {
        val http = URI("$deviceUrl/$endpoint").toURL().openConnection() as HttpURLConnection
        http.requestMethod = "POST"
        http.doOutput = true
        http.connectTimeout = 5_000
        http.readTimeout = 10_000
        http.setRequestProperty("Content-Type", "application/x-www-form-urlencoded")
        c.cookie?.let { http.setRequestProperty("Cookie", it) }
        http.outputStream.use { it.write(body) }
        val code = http.responseCode
        http.getHeaderField("Set-Cookie")?.let { c.cookie = it.substringBefore(';') }
        if (code == 200) 0 to http.inputStream.use { it.readBytes() } else 14 /* ESP-IDF: BLE_ATT_ERR_UNLIKELY */ to ByteArray(0)
    } catch (e: java.io.IOException) {
        // The handler failed (ESP-IDF closes without an answer) or the device stopped: an ATT error.
        14 to ByteArray(0)
    }

    /** Stops the binder thread. */
    fun shutdown() { binder.shutdownNow() }

    companion object {
        val USER_DESCRIPTION: UUID = UUID.fromString("00002901-0000-1000-8000-00805f9b34fb")
    }
}
