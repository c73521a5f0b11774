// Finding provisionable devices on Android and connecting to one from its QR code, with a permission
// preflight that fails with a typed reason instead of a scan that silently finds nothing:
// - `missingPermissions(context)`: BLUETOOTH_SCAN and BLUETOOTH_CONNECT on Android 12+ (API 31);
//   ACCESS_FINE_LOCATION (plus the install-time BLUETOOTH and BLUETOOTH_ADMIN) on Android 11 and older;
// - `scanDevices(context, namePrefix, serviceUuid)`: a cold Flow over BluetoothLeScanner (filters
//   applied by the platform where it can: the service UUID; the name prefix, which ScanFilter cannot
//   express, here), each device once (deduplicated by address) with its RSSI; collecting starts the
//   scan, leaving the collection (first(), take(n), a cancelled scope) stops it;
// - `connectFromQrCode(context, payload)`: parses the QR code (the SDK's parser), scans for the exact
//   advertised name and returns the SDK's BLE link to it (`gattDeviceLink(AndroidGattPeripheral)`)
//   with the secret from the code.
package dev.claimlink.ble

import android.Manifest
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothManager
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.content.pm.PackageManager
import android.location.LocationManager
import android.os.Build
import android.os.ParcelUuid
import dev.claimlink.DeviceLink
import dev.claimlink.DeviceSecret
import dev.claimlink.DeviceTransport
import dev.claimlink.ProvisioningQrCode
import dev.claimlink.gattDeviceLink
import dev.claimlink.parseProvisioningQr
import java.util.UUID
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withTimeoutOrNull

/** A device seen in a BLE scan. */
data class ScannedDevice(
    /** The device, to hand to [AndroidGattPeripheral]. */
    val device: BluetoothDevice,
    /** Its advertised name (`PROV_1A2B`), when it advertises one. */
    val name: String?,
    /** Signal strength when first seen, dBm. */
    val rssi: Int,
) {
    /** Its Bluetooth address. */
    val address: String get() = device.address
}

/** Why BLE cannot be used now: what the app should ask the user to fix. */
sealed class BleUnavailable(message: String) : Exception(message) {
    /** Bluetooth is off: ask the user to turn it on. */
    class BluetoothOff : BleUnavailable("Bluetooth is off")
    /** The app does not hold [permission]: request it. */
    class PermissionMissing(val permission: String) : BleUnavailable("the app lacks $permission")
    /** Location services are off: on Android 11 and older a BLE scan then finds nothing. */
    class LocationOff : BleUnavailable("location services are off (Android 11 and older find no BLE device without them)")
    /** The platform refused the scan (ScanCallback.SCAN_FAILED_*). */
    class ScanFailed(val code: Int) : BleUnavailable("the BLE scan failed (code $code)")
    /** No device advertised [name] in time. */
    class DeviceNotFound(val name: String) : BleUnavailable("no device named $name was found")
}

/** What [connectFromQrCode] found: the SDK's link to the device and the secret to connect with. */
class QrDevice(
    /** The parsed QR code. */
    val qr: ProvisioningQrCode,
    /** The peripheral under [link]; [AndroidGattPeripheral.release] it when done. */
    val peripheral: AndroidGattPeripheral,
    /** The SDK's BLE link: pass it to `Provisioner.connect` with [secret]. */
    val link: DeviceLink,
) {
    /** The password / proof of possession from the QR code. */
    val secret: DeviceSecret get() = qr.secret
}

/** The runtime permissions BLE provisioning needs that the app does not hold, for this Android version. */
fun missingPermissions(context: Context): List<String> = missingPermissions(context, Build.VERSION.SDK_INT)

internal fun missingPermissions(context: Context, sdkInt: Int): List<String> {
    val needed = if (sdkInt >= 31) {
        listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
    } else {
        listOf(Manifest.permission.BLUETOOTH, Manifest.permission.BLUETOOTH_ADMIN, Manifest.permission.ACCESS_FINE_LOCATION)
    }
    return needed.filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
}

/** Throws the first [BleUnavailable] reason a scan would fail or find nothing for; returns the adapter. */
fun bleReady(context: Context): BluetoothAdapter = bleReady(context, Build.VERSION.SDK_INT)

internal fun bleReady(context: Context, sdkInt: Int): BluetoothAdapter {
    missingPermissions(context, sdkInt).firstOrNull()?.let { throw BleUnavailable.PermissionMissing(it) }
    val adapter = context.getSystemService(BluetoothManager::class.java)?.adapter
    if (adapter == null || !adapter.isEnabled) throw BleUnavailable.BluetoothOff()
    if (sdkInt in 28..30) {
        // isLocationEnabled is API 28; on 26-27 the state cannot be read without Settings.Secure.
        val location = context.getSystemService(LocationManager::class.java)
        if (location != null && !location.isLocationEnabled) throw BleUnavailable.LocationOff()
    }
    return adapter
}

/**
 * Scans for devices whose advertised name starts with [namePrefix] and/or that advertise
 * [serviceUuid] (all devices when both are null), each once, until the collection ends. Fails with
 * [BleUnavailable] when a permission is missing, Bluetooth is off, location is off (Android ≤ 11) or
 * the platform refuses the scan.
 */
fun scanDevices(context: Context, namePrefix: String? = null, serviceUuid: UUID? = null): Flow<ScannedDevice> =
    scanDevices(context, namePrefix, serviceUuid, exactName = null, sdkInt = Build.VERSION.SDK_INT)

internal fun scanDevices(context: Context, namePrefix: String?, serviceUuid: UUID?, exactName: String?, sdkInt: Int): Flow<ScannedDevice> = callbackFlow {
    val adapter = bleReady(context, sdkInt)
    val scanner = adapter.bluetoothLeScanner ?: throw BleUnavailable.BluetoothOff()
    val seen = HashSet<String>()
    val callback = object : ScanCallback() {
        override fun onScanResult(callbackType: Int, result: ScanResult) {
            val name = result.scanRecord?.deviceName
            if (namePrefix != null && (name == null || !name.startsWith(namePrefix))) return
            val address = result.device.address
            // Callbacks come on the main thread, one at a time: `seen` needs no lock.
            if (!seen.add(address)) return
            trySend(ScannedDevice(result.device, name, result.rssi))
        }

        override fun onScanFailed(errorCode: Int) {
            close(BleUnavailable.ScanFailed(errorCode))
        }
    }
    val filters = buildList {
        if (serviceUuid != null || exactName != null) {
            val builder = ScanFilter.Builder()
            serviceUuid?.let { builder.setServiceUuid(ParcelUuid(it)) }
            exactName?.let { builder.setDeviceName(it) }
            add(builder.build())
        }
    }
    val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
    try {
        scanner.startScan(filters, settings, callback)
    } catch (e: SecurityException) {
        throw BleUnavailable.PermissionMissing(if (sdkInt >= 31) Manifest.permission.BLUETOOTH_SCAN else Manifest.permission.ACCESS_FINE_LOCATION)
    } catch (e: IllegalStateException) {
        throw BleUnavailable.BluetoothOff()
    }
    awaitClose {
        // The adapter may have been turned off meanwhile: stopScan then throws, and there is no scan.
        runCatching { scanner.stopScan(callback) }
    }
}

/**
 * Parses a provisioning QR code, scans up to [scanMillis] for the device advertising its name, and
 * returns the SDK's BLE link to it. Fails with `ProvisioningFailure.InvalidInput` for a code that is
 * not a provisioning code or not for BLE, with [BleUnavailable] when BLE cannot be used or the device
 * is not found.
 */
suspend fun connectFromQrCode(context: Context, payload: String, scanMillis: Long = 10_000, timeouts: GattTimeouts = GattTimeouts()): QrDevice =
    connectFromQrCode(context, payload, scanMillis, timeouts, Build.VERSION.SDK_INT)

internal suspend fun connectFromQrCode(context: Context, payload: String, scanMillis: Long, timeouts: GattTimeouts, sdkInt: Int): QrDevice {
    val qr = parseProvisioningQr(payload)
    if (qr.transport != DeviceTransport.BLE) {
        throw dev.claimlink.ProvisioningFailure.InvalidInput("the QR code is for ${qr.transport}, not BLE")
    }
    val found = withTimeoutOrNull(scanMillis) {
        scanDevices(context, namePrefix = null, serviceUuid = null, exactName = qr.name, sdkInt = sdkInt).first()
    } ?: throw BleUnavailable.DeviceNotFound(qr.name)
    val peripheral = AndroidGattPeripheral(context, found.device, timeouts, sdkInt)
    return QrDevice(qr, peripheral, gattDeviceLink(peripheral))
}
