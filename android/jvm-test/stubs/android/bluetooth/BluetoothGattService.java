// Stub of android.bluetooth.BluetoothGattService.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;

public class BluetoothGattService {
    public static final int SERVICE_TYPE_PRIMARY = 0;

    private final UUID uuid;
    private final List<BluetoothGattCharacteristic> characteristics = new CopyOnWriteArrayList<>();

    public BluetoothGattService(UUID uuid, int serviceType) { this.uuid = uuid; }

    public boolean addCharacteristic(BluetoothGattCharacteristic characteristic) {
        characteristics.add(characteristic);
        characteristic.service = this;
        return true;
    }

    public BluetoothGattCharacteristic getCharacteristic(UUID uuid) {
        for (BluetoothGattCharacteristic c : characteristics) if (c.getUuid().equals(uuid)) return c;
        return null;
    }

    public List<BluetoothGattCharacteristic> getCharacteristics() { return characteristics; }

    public UUID getUuid() { return uuid; }
}
