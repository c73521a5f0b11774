// The SDK's GattPeripheral over Android's BluetoothGatt: what `gattDeviceLink` wraps in the SDK's BLE
// link (endpoint mapping by 0x2901 descriptors, connection retries with backoff, one request in
// flight, the 480-byte cap). Apps do not write BLE code: `connect(device)` gives a DeviceLink.
//
// How it stays correct on real Android:
// - One operation at a time (a coroutine Mutex), each waiting for ITS callback: a callback completes the
//   pending operation only when it is of the same kind, for the same characteristic/descriptor, on the
//   same connection (generation). Android's own BluetoothGatt allows one outstanding request and
//   leaves the object busy for good when a request never gets its callback, so an operation that times
//   out (or is cancelled) ends the connection: disconnect, wait for the disconnect callback (bounded),
//   close. A late callback of that operation then belongs to a closed BluetoothGatt (Android drops it)
//   or to an old generation (ignored here): it can never complete another operation.
// - Callbacks run on this peripheral's own HandlerThread (connectGatt with a Handler), never on the
//   main thread, in order: a duplicated callback is handled before any later one, so it finds its
//   operation already completed and is ignored.
// - Connecting: connectGatt(autoConnect = false, TRANSPORT_LE); a failed attempt (GATT status 133
//   GATT_ERROR, 62 connection failed to establish, 8 connection timeout, ...) is closed and reported as
//   GattFailure.ConnectFailed, which the SDK's link retries with backoff. Then requestMtu(517) (the
//   negotiated MTU is what mtu() reports) and requestConnectionPriority(HIGH) for the hand-over;
//   BALANCED again before disconnecting.
// - Discovery failing (a status, or no service: a stale GATT cache) is retried once after
//   BluetoothGatt.refresh(), a hidden method every BLE library calls by reflection.
// - close() only after the disconnect callback, or after a timeout when none comes.
// - Writes: writeCharacteristic(c, value, WRITE_TYPE_DEFAULT) returning a status code on API 33+,
//   the deprecated setValue + writeCharacteristic(c) boolean path before. Reads take the value from
//   the API 33 callback overload, or from the characteristic in the older one.
package dev.claimlink.ble

import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothProfile
import android.bluetooth.BluetoothStatusCodes
import android.content.Context
import android.os.Build
import android.os.Handler
import android.os.HandlerThread
import dev.claimlink.GattCharacteristic
import dev.claimlink.GattFailure
import dev.claimlink.GattPeripheral
import java.util.UUID
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull

/** How long each GATT operation may wait for its callback, in milliseconds. */
data class GattTimeouts(
    /** connectGatt until the connected callback. */
    val connectMillis: Long = 10_000,
    /** Service discovery. */
    val discoverMillis: Long = 10_000,
    /** One read, write or MTU request. */
    val operationMillis: Long = 5_000,
    /** disconnect() until the disconnected callback; close() follows either way. */
    val disconnectMillis: Long = 2_000,
)

/**
 * The SDK's [GattPeripheral] over Android's [BluetoothGatt] for [device]. Hand it to
 * `gattDeviceLink(peripheral)`; call [release] when done with it (it owns a HandlerThread).
 */
class AndroidGattPeripheral internal constructor(
    private val context: Context,
    private val device: BluetoothDevice,
    private val timeouts: GattTimeouts,
    private val sdkInt: Int,
) : GattPeripheral {

    /** A peripheral for [device] (from a scan, or `BluetoothAdapter.getRemoteDevice(address)`). */
    constructor(context: Context, device: BluetoothDevice, timeouts: GattTimeouts = GattTimeouts()) :
        this(context, device, timeouts, Build.VERSION.SDK_INT)

    private val thread = HandlerThread("claimlink-gatt").apply { start() }
    private val handler = Handler(thread.looper)
    private val queue = Mutex()
    private val lock = Any()

    // Guarded by `lock`.
    private var gatt: BluetoothGatt? = null
    private var generation = 0L
    private var pending: Pending? = null

    @Volatile private var connected = false
    @Volatile private var negotiatedMtu = 23
    @Volatile private var byKey: Map<String, BluetoothGattCharacteristic> = emptyMap()

    /** What an operation waits for: its kind and the attribute it names. */
    private sealed class Op {
        object Connect : Op()
        object Disconnect : Op()
        object Discover : Op()
        object Mtu : Op()
        data class ReadDescriptor(val characteristic: String, val descriptor: UUID) : Op()
        data class Write(val characteristic: String) : Op()
        data class Read(val characteristic: String) : Op()
    }

    private class Pending(val op: Op, val generation: Long) {
        val result = CompletableDeferred<Result<Any?>>()
    }

    override fun name(): String = device.address

    override fun mtu(): Int = negotiatedMtu

    override fun isConnected(): Boolean = connected

    override suspend fun connect() = queue.withLock {
        closeLocked()
        val g: BluetoothGatt
        val callbacks: Callbacks
        synchronized(lock) {
            generation += 1
            callbacks = Callbacks(generation)
        }
        val result = await(Op.Connect, timeouts.connectMillis, onTimeout = { GattFailure.ConnectFailed("no connection callback within ${timeouts.connectMillis} ms") }) {
            val opened = permission { device.connectGatt(context, false, callbacks, BluetoothDevice.TRANSPORT_LE, BluetoothDevice.PHY_LE_1M_MASK, handler) }
                ?: return@await false
            synchronized(lock) { gatt = opened }
            true
        }
        if (result.isFailure) {
            // A failed attempt is closed at once (GATT 133 leaves a client registered otherwise).
            closeLocked(alreadyDown = true)
            throw result.exceptionOrNull() ?: GattFailure.ConnectFailed("connection failed")
        }
        g = synchronized(lock) { gatt } ?: throw GattFailure.ConnectFailed("connectGatt returned null")
        connected = true
        // The largest ATT MTU Android asks for; the device answers with its own, the smaller counts.
        // A refused MTU (a status) leaves 23; no answer at all ended the connection: an attempt to
        // retry.
        val mtu = await(Op.Mtu, timeouts.operationMillis) { permission { g.requestMtu(517) } }
        if (!connected) throw GattFailure.ConnectFailed("no answer to the MTU request within ${timeouts.operationMillis} ms")
        mtu.getOrNull()?.let { negotiatedMtu = it as Int }
        runCatching { g.requestConnectionPriority(BluetoothGatt.CONNECTION_PRIORITY_HIGH) }
        Unit
    }

    override suspend fun disconnect() = queue.withLock { closeLocked() }

    override suspend fun discover(): List<GattCharacteristic> = queue.withLock {
        val g = current()
        var result = await(Op.Discover, timeouts.discoverMillis) { permission { g.discoverServices() } }
        if (connected && (result.isFailure || g.services.isEmpty())) {
            // A stale GATT cache (the device's firmware changed) shows as a failed or empty discovery:
            // drop the cache and discover once more. (A discovery without an answer ended the
            // connection: nothing to retry on.)
            refresh(g)
            result = await(Op.Discover, timeouts.discoverMillis) { permission { g.discoverServices() } }
        }
        result.getOrThrow()
        val found = LinkedHashMap<String, BluetoothGattCharacteristic>()
        val list = g.services.flatMap { service ->
            service.characteristics.map { c ->
                found[key(service.uuid, c.uuid)] = c
                GattCharacteristic(service.uuid.toString(), c.uuid.toString(), c.descriptors.map { it.uuid.toString() })
            }
        }
        byKey = found
        list
    }

    override suspend fun readDescriptor(characteristic: GattCharacteristic, descriptorUuid: String): ByteArray = queue.withLock {
        val g = current()
        val c = find(characteristic)
        val uuid = parseUuid(descriptorUuid)
        val d = c.getDescriptor(uuid) ?: throw GattFailure.Att("no descriptor $descriptorUuid")
        await(Op.ReadDescriptor(characteristic.key(), uuid), timeouts.operationMillis) { permission { g.readDescriptor(d) } }
            .getOrThrow() as ByteArray
    }

    override suspend fun write(characteristic: GattCharacteristic, value: ByteArray) = queue.withLock {
        val g = current()
        val c = find(characteristic)
        await(Op.Write(characteristic.key()), timeouts.operationMillis) {
            permission {
                if (sdkInt >= 33) {
                    val status = g.writeCharacteristic(c, value, BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT)
                    if (status != BluetoothStatusCodes.SUCCESS) throw GattFailure.Other("writeCharacteristic refused: status $status")
                    true
                } else {
                    @Suppress("DEPRECATION")
                    c.writeType = BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT
                    @Suppress("DEPRECATION")
                    c.value = value
                    @Suppress("DEPRECATION")
                    g.writeCharacteristic(c)
                }
            }
        }.getOrThrow()
        Unit
    }

    override suspend fun read(characteristic: GattCharacteristic): ByteArray = queue.withLock {
        val g = current()
        val c = find(characteristic)
        await(Op.Read(characteristic.key()), timeouts.operationMillis) { permission { g.readCharacteristic(c) } }
            .getOrThrow() as ByteArray
    }

    /** Ends the connection and stops the callback thread; the peripheral cannot be used after. */
    suspend fun release() {
        disconnect()
        thread.quitSafely()
    }

    // --- The operation queue ----------------------------------------------------------------------

    /**
     * Starts [op] with [start] (false: Android refused to start it) and waits for its callback. A
     * timeout or a cancellation ends the connection (the BluetoothGatt object stays busy otherwise)
     * and fails with [onTimeout]'s failure (GattFailure.Timeout by default).
     */
    private suspend fun await(
        op: Op,
        millis: Long,
        onTimeout: () -> GattFailure = { GattFailure.Timeout() },
        start: () -> Boolean,
    ): Result<Any?> {
        val p = synchronized(lock) { Pending(op, generation).also { pending = it } }
        var finished = false
        try {
            val started = try {
                start()
            } catch (e: GattFailure) {
                return Result.failure(e)
            }
            if (!started) {
                return Result.failure(
                    if (connected || op == Op.Connect) GattFailure.Other("Android refused to start $op") else GattFailure.NotConnected(),
                )
            }
            val result = withTimeoutOrNull(millis) { p.result.await() }
            if (result != null) {
                finished = true
                return result
            }
            return Result.failure(onTimeout())
        } finally {
            synchronized(lock) { if (pending === p) pending = null }
            if (!finished && op != Op.Disconnect && p.result.isActive) {
                // Timed out or cancelled with the request outstanding: this connection is unusable.
                withContext(NonCancellable) { closeLocked() }
            }
        }
    }

    /** Completes the pending operation if [op] on [gen] is what it waits for; otherwise ignores it. */
    private fun complete(gen: Long, op: Op, result: Result<Any?>) {
        val p = synchronized(lock) {
            val p = pending
            if (p == null || p.generation != gen || p.op != op) return
            pending = null
            p
        }
        p.result.complete(result)
    }

    /** Disconnects (waiting for the callback, bounded) and closes; the caller holds the queue. */
    private suspend fun closeLocked(alreadyDown: Boolean = false) {
        val g = synchronized(lock) { gatt } ?: return
        if (connected && !alreadyDown) {
            runCatching { g.requestConnectionPriority(BluetoothGatt.CONNECTION_PRIORITY_BALANCED) }
            await(Op.Disconnect, timeouts.disconnectMillis) { runCatching { g.disconnect() }; true }
        }
        connected = false
        runCatching { g.close() }
        synchronized(lock) {
            if (gatt === g) gatt = null
            generation += 1 // whatever the closed connection still delivers is ignored
        }
        byKey = emptyMap()
    }

    private fun current(): BluetoothGatt = synchronized(lock) { gatt }?.takeIf { connected } ?: throw GattFailure.NotConnected()

    private fun find(c: GattCharacteristic): BluetoothGattCharacteristic =
        byKey[c.key()] ?: throw GattFailure.Att("no characteristic ${c.uuid} in service ${c.serviceUuid}")

    private fun GattCharacteristic.key() = key(parseUuid(serviceUuid), parseUuid(uuid))

    private fun key(service: UUID, characteristic: UUID) = "$service/$characteristic"

    private fun parseUuid(text: String): UUID =
        try { UUID.fromString(text) } catch (e: IllegalArgumentException) { throw GattFailure.Other("not a UUID: $text") }

    private fun refresh(g: BluetoothGatt) {
        runCatching { g.javaClass.getMethod("refresh").invoke(g) }
    }

    /** Runs a BluetoothGatt call; a SecurityException (missing BLUETOOTH_CONNECT) becomes PermissionDenied. */
    private inline fun <T> permission(block: () -> T): T =
        try { block() } catch (e: SecurityException) { throw GattFailure.PermissionDenied() }

    // --- Callbacks (on `thread`) --------------------------------------------------------------------

    private inner class Callbacks(private val gen: Long) : BluetoothGattCallback() {
        override fun onConnectionStateChange(gatt: BluetoothGatt, status: Int, newState: Int) {
            if (newState == BluetoothProfile.STATE_CONNECTED && status == BluetoothGatt.GATT_SUCCESS) {
                complete(gen, Op.Connect, Result.success(Unit))
                return
            }
            if (synchronized(lock) { generation } == gen) connected = false
            // Whatever waits on this connection ends: a connect attempt failed (133, 62, 8, ...), a
            // disconnect completed, or the link dropped under a read or write.
            val p = synchronized(lock) { pending?.takeIf { it.generation == gen } } ?: return
            val failure: Result<Any?> = when (p.op) {
                Op.Disconnect -> Result.success(Unit)
                Op.Connect -> Result.failure(GattFailure.ConnectFailed("GATT status $status"))
                else -> Result.failure(GattFailure.NotConnected())
            }
            complete(gen, p.op, failure)
        }

        override fun onMtuChanged(gatt: BluetoothGatt, mtu: Int, status: Int) {
            complete(gen, Op.Mtu, if (status == BluetoothGatt.GATT_SUCCESS) Result.success(mtu) else Result.failure(GattFailure.Att("MTU request: GATT status $status")))
        }

        override fun onServicesDiscovered(gatt: BluetoothGatt, status: Int) {
            complete(gen, Op.Discover, statusResult(status, Unit))
        }

        override fun onDescriptorRead(gatt: BluetoothGatt, descriptor: BluetoothGattDescriptor, status: Int, value: ByteArray) {
            val c = descriptor.characteristic ?: return
            complete(gen, Op.ReadDescriptor(key(c.service.uuid, c.uuid), descriptor.uuid), statusResult(status, value))
        }

        @Deprecated("API < 33")
        override fun onDescriptorRead(gatt: BluetoothGatt, descriptor: BluetoothGattDescriptor, status: Int) {
            @Suppress("DEPRECATION")
            onDescriptorRead(gatt, descriptor, status, descriptor.value ?: ByteArray(0))
        }

        override fun onCharacteristicWrite(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, status: Int) {
            complete(gen, Op.Write(key(characteristic.service.uuid, characteristic.uuid)), statusResult(status, Unit))
        }

        override fun onCharacteristicRead(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, value: ByteArray, status: Int) {
            complete(gen, Op.Read(key(characteristic.service.uuid, characteristic.uuid)), statusResult(status, value))
        }

        @Deprecated("API < 33")
        override fun onCharacteristicRead(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, status: Int) {
            @Suppress("DEPRECATION")
            onCharacteristicRead(gatt, characteristic, characteristic.value ?: ByteArray(0), status)
        }

        private fun statusResult(status: Int, value: Any?): Result<Any?> =
            if (status == BluetoothGatt.GATT_SUCCESS) Result.success(value) else Result.failure(GattFailure.Att("GATT status $status"))
    }
}
