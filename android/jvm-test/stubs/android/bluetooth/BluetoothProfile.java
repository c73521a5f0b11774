// Stub of android.bluetooth.BluetoothProfile: the connection states only.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

public interface BluetoothProfile {
    int STATE_DISCONNECTED = 0;
    int STATE_CONNECTED = 2;
}
