// Stub of android.bluetooth.BluetoothGattCallback, with AOSP's default bodies: the API 33 overloads
// with the value call the deprecated ones (BluetoothGattCallback.java, packages/modules/Bluetooth).
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

public abstract class BluetoothGattCallback {
    public BluetoothGattCallback() {}

    public void onConnectionStateChange(BluetoothGatt gatt, int status, int newState) {}

    public void onServicesDiscovered(BluetoothGatt gatt, int status) {}

    @Deprecated
    public void onCharacteristicRead(BluetoothGatt gatt, BluetoothGattCharacteristic characteristic, int status) {}

    public void onCharacteristicRead(BluetoothGatt gatt, BluetoothGattCharacteristic characteristic, byte[] value, int status) {
        onCharacteristicRead(gatt, characteristic, status);
    }

    public void onCharacteristicWrite(BluetoothGatt gatt, BluetoothGattCharacteristic characteristic, int status) {}

    @Deprecated
    public void onDescriptorRead(BluetoothGatt gatt, BluetoothGattDescriptor descriptor, int status) {}

    public void onDescriptorRead(BluetoothGatt gatt, BluetoothGattDescriptor descriptor, int status, byte[] value) {
        onDescriptorRead(gatt, descriptor, status);
    }

    public void onMtuChanged(BluetoothGatt gatt, int mtu, int status) {}
}
