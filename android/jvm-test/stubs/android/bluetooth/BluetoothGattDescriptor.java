// Stub of android.bluetooth.BluetoothGattDescriptor.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import java.util.UUID;

public class BluetoothGattDescriptor {
    public static final int PERMISSION_READ = 1;

    private final UUID uuid;
    BluetoothGattCharacteristic characteristic;
    volatile byte[] value;

    public BluetoothGattDescriptor(UUID uuid, int permissions) { this.uuid = uuid; }

    public UUID getUuid() { return uuid; }

    public BluetoothGattCharacteristic getCharacteristic() { return characteristic; }

    @Deprecated
    public byte[] getValue() { return value; }
}
