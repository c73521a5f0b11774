// Stub of android.bluetooth.BluetoothAdapter: the adapter state and remote devices by address.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import dev.claimlink.fake.FakeBluetooth;

public final class BluetoothAdapter {
    private static final BluetoothAdapter DEFAULT = new BluetoothAdapter();

    private final android.bluetooth.le.BluetoothLeScanner scanner = new android.bluetooth.le.BluetoothLeScanner(this);

    private BluetoothAdapter() {}

    @Deprecated
    public static BluetoothAdapter getDefaultAdapter() { return DEFAULT; }

    public boolean isEnabled() { return FakeBluetooth.enabled(); }

    /** As AOSP: null while the adapter is off. */
    public android.bluetooth.le.BluetoothLeScanner getBluetoothLeScanner() {
        return FakeBluetooth.enabled() ? scanner : null;
    }

    public BluetoothDevice getRemoteDevice(String address) {
        if (address == null || !address.matches("[0-9A-F]{2}(:[0-9A-F]{2}){5}")) {
            throw new IllegalArgumentException(address + " is not a valid Bluetooth address");
        }
        return new BluetoothDevice(address);
    }
}
