// Stub of android.bluetooth.BluetoothStatusCodes (API 31+; writeCharacteristic returns them from API 33).
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

public final class BluetoothStatusCodes {
    private BluetoothStatusCodes() {}

    public static final int SUCCESS = 0;
    public static final int ERROR_PROFILE_SERVICE_NOT_BOUND = 9;
    public static final int ERROR_GATT_WRITE_NOT_ALLOWED = 200;
    public static final int ERROR_GATT_WRITE_REQUEST_BUSY = 201;
    public static final int ERROR_UNKNOWN = 2147483647;
}
