// Stub of android.bluetooth.BluetoothManager: the adapter.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import dev.claimlink.fake.Hidden;

public final class BluetoothManager {
    @Hidden("AOSP: @hide BluetoothManager(Context); the system creates it")
    public BluetoothManager() {}

    @SuppressWarnings("deprecation")
    public BluetoothAdapter getAdapter() { return BluetoothAdapter.getDefaultAdapter(); }
}
