// Stub of android.bluetooth.le.ScanResult.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth.le;

import android.bluetooth.BluetoothDevice;

public final class ScanResult {
    private final BluetoothDevice device;
    private final ScanRecord scanRecord;
    private final int rssi;

    @Deprecated
    public ScanResult(BluetoothDevice device, ScanRecord scanRecord, int rssi, long timestampNanos) {
        this.device = device;
        this.scanRecord = scanRecord;
        this.rssi = rssi;
    }

    public BluetoothDevice getDevice() { return device; }

    public int getRssi() { return rssi; }

    public ScanRecord getScanRecord() { return scanRecord; }
}
