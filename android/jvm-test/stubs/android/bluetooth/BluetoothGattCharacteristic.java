// Stub of android.bluetooth.BluetoothGattCharacteristic.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;

public class BluetoothGattCharacteristic {
    public static final int PERMISSION_READ = 1;
    public static final int PERMISSION_WRITE = 16;
    public static final int PROPERTY_READ = 2;
    public static final int PROPERTY_WRITE = 8;
    public static final int WRITE_TYPE_DEFAULT = 2;

    private final UUID uuid;
    private final int properties;
    BluetoothGattService service;
    private volatile int writeType = WRITE_TYPE_DEFAULT;
    private volatile byte[] value;
    private final List<BluetoothGattDescriptor> descriptors = new CopyOnWriteArrayList<>();

    public BluetoothGattCharacteristic(UUID uuid, int properties, int permissions) {
        this.uuid = uuid;
        this.properties = properties;
    }

    public boolean addDescriptor(BluetoothGattDescriptor descriptor) {
        descriptors.add(descriptor);
        descriptor.characteristic = this;
        return true;
    }

    public BluetoothGattDescriptor getDescriptor(UUID uuid) {
        for (BluetoothGattDescriptor d : descriptors) if (d.getUuid().equals(uuid)) return d;
        return null;
    }

    public List<BluetoothGattDescriptor> getDescriptors() { return descriptors; }

    public int getProperties() { return properties; }

    public BluetoothGattService getService() { return service; }

    public UUID getUuid() { return uuid; }

    @Deprecated
    public byte[] getValue() { return value; }

    @Deprecated
    public boolean setValue(byte[] value) {
        this.value = value;
        return true;
    }

    public int getWriteType() { return writeType; }

    public void setWriteType(int writeType) { this.writeType = writeType; }
}
