// Stub of android.bluetooth.BluetoothGatt, behaving as AOSP's (packages/modules/Bluetooth
// framework/java/android/bluetooth/BluetoothGatt.java, Android 14) does on the app's side:
// - callbacks run on the Handler given to connectGatt, else on the service's binder thread
//   (runOrQueueCallback), and are dropped once close() has run (the callback is read when it runs);
// - one outstanding request per BluetoothGatt (mDeviceBusy): another read/write returns false, or
//   ERROR_GATT_WRITE_REQUEST_BUSY from the API 33 writeCharacteristic; a request that never gets its
//   callback leaves the object busy for good; a connection state change clears it;
// - writeCharacteristic(c, value, type) exists from API 33 on (older platforms: NoSuchMethodError), refuses
//   values over 512 bytes (IllegalArgumentException) and characteristics without a write property;
// - the deprecated writeCharacteristic(c) writes c.getValue() with c.getWriteType();
// - a read's callback is the API 33 overload with the value (which calls the old one by default) from
//   API 33 on, the old one (value in the characteristic) before.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import android.os.Handler;
import dev.claimlink.fake.FakeBluetooth;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;

public final class BluetoothGatt implements BluetoothProfile {
    public static final int CONNECTION_PRIORITY_BALANCED = 0;
    public static final int CONNECTION_PRIORITY_HIGH = 1;
    public static final int GATT_SUCCESS = 0;
    public static final int GATT_READ_NOT_PERMITTED = 2;
    public static final int GATT_WRITE_NOT_PERMITTED = 3;
    public static final int GATT_FAILURE = 257;

    private static final int GATT_MAX_ATTR_LEN = 512;

    private final BluetoothDevice device;
    private volatile BluetoothGattCallback callback;
    private final Handler handler;
    private final int transport;
    private final List<BluetoothGattService> services = new CopyOnWriteArrayList<>();
    private final Object busyLock = new Object();
    private boolean deviceBusy;
    private final FakeBluetooth.Client client = new BinderCallbacks();

    BluetoothGatt(BluetoothDevice device, BluetoothGattCallback callback, Handler handler, int transport) {
        this.device = device;
        this.callback = callback;
        this.handler = handler;
        this.transport = transport;
    }

    void connectInternal() { FakeBluetooth.service().connect(client, device.getAddress(), transport); }

    public BluetoothDevice getDevice() { return device; }

    public void disconnect() { FakeBluetooth.service().disconnect(client); }

    public void close() {
        callback = null;
        FakeBluetooth.service().close(client);
    }

    public boolean discoverServices() {
        services.clear();
        return FakeBluetooth.service().discoverServices(client);
    }

    public List<BluetoothGattService> getServices() { return new ArrayList<>(services); }

    public BluetoothGattService getService(UUID uuid) {
        for (BluetoothGattService s : services) if (s.getUuid().equals(uuid)) return s;
        return null;
    }

    /** AOSP: @hide @UnsupportedAppUsage public boolean refresh() (BluetoothGatt.java): clears the GATT cache. */
    @dev.claimlink.fake.Hidden("packages/modules/Bluetooth framework/java/android/bluetooth/BluetoothGatt.java")
    public boolean refresh() { return FakeBluetooth.service().refresh(client); }

    public boolean requestMtu(int mtu) { return FakeBluetooth.service().requestMtu(client, mtu); }

    public boolean requestConnectionPriority(int connectionPriority) {
        if (connectionPriority < CONNECTION_PRIORITY_BALANCED || connectionPriority > 2) {
            throw new IllegalArgumentException("connectionPriority not within valid range");
        }
        return FakeBluetooth.service().requestConnectionPriority(client, connectionPriority);
    }

    public boolean readCharacteristic(BluetoothGattCharacteristic characteristic) {
        if ((characteristic.getProperties() & BluetoothGattCharacteristic.PROPERTY_READ) == 0) return false;
        if (!claim()) return false;
        if (FakeBluetooth.service().readCharacteristic(client, characteristic) != BluetoothStatusCodes.SUCCESS) {
            release();
            return false;
        }
        return true;
    }

    public boolean readDescriptor(BluetoothGattDescriptor descriptor) {
        if (!claim()) return false;
        if (FakeBluetooth.service().readDescriptor(client, descriptor) != BluetoothStatusCodes.SUCCESS) {
            release();
            return false;
        }
        return true;
    }

    @Deprecated
    public boolean writeCharacteristic(BluetoothGattCharacteristic characteristic) {
        if (FakeBluetooth.sdkInt() >= 33) {
            try {
                return writeCharacteristic(characteristic, characteristic.getValue(), characteristic.getWriteType())
                        == BluetoothStatusCodes.SUCCESS;
            } catch (Exception e) {
                return false;
            }
        }
        // Before API 33: the boolean path of its own.
        if ((characteristic.getProperties() & BluetoothGattCharacteristic.PROPERTY_WRITE) == 0) return false;
        if (characteristic.getValue() == null) return false;
        if (!claim()) return false;
        int status = FakeBluetooth.service().writeCharacteristic(
                client, characteristic, characteristic.getValue(), characteristic.getWriteType());
        if (status != BluetoothStatusCodes.SUCCESS) {
            release();
            return false;
        }
        return true;
    }

    public int writeCharacteristic(BluetoothGattCharacteristic characteristic, byte[] value, int writeType) {
        if (FakeBluetooth.sdkInt() < 33) {
            throw new NoSuchMethodError("BluetoothGatt.writeCharacteristic(BluetoothGattCharacteristic, byte[], int) is API 33");
        }
        if (characteristic == null) throw new IllegalArgumentException("characteristic must not be null");
        if (value == null) throw new IllegalArgumentException("value must not be null");
        if (value.length > GATT_MAX_ATTR_LEN) {
            throw new IllegalArgumentException("value should not be longer than max length of an attribute value");
        }
        if ((characteristic.getProperties() & BluetoothGattCharacteristic.PROPERTY_WRITE) == 0) {
            return BluetoothStatusCodes.ERROR_GATT_WRITE_NOT_ALLOWED;
        }
        synchronized (busyLock) {
            if (deviceBusy) return BluetoothStatusCodes.ERROR_GATT_WRITE_REQUEST_BUSY;
            deviceBusy = true;
        }
        // As AOSP: a refused request leaves the object busy (only exceptions clear it there).
        return FakeBluetooth.service().writeCharacteristic(client, characteristic, value, writeType);
    }

    private boolean claim() {
        synchronized (busyLock) {
            if (deviceBusy) return false;
            deviceBusy = true;
            return true;
        }
    }

    private void release() {
        synchronized (busyLock) {
            deviceBusy = false;
        }
    }

    private void runOrQueueCallback(Runnable callbackCall) {
        Runnable r = () -> {
            FakeBluetooth.callbackThreads.add(Thread.currentThread().getName());
            callbackCall.run();
        };
        if (handler == null) {
            try {
                r.run();
            } catch (Exception ex) {
                System.err.println("BluetoothGatt: Unhandled exception in callback: " + ex);
            }
        } else {
            handler.post(r);
        }
    }

    /** AOSP's IBluetoothGattCallback.Stub: runs on the service's binder thread. */
    private final class BinderCallbacks implements FakeBluetooth.Client {
        @Override public String address() { return device.getAddress(); }

        @Override public void onClientConnectionState(int status, boolean connected) {
            int state = connected ? STATE_CONNECTED : STATE_DISCONNECTED;
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb != null) cb.onConnectionStateChange(BluetoothGatt.this, status, state);
            });
            release();
        }

        @Override public void onSearchComplete(List<BluetoothGattService> found, int status) {
            services.addAll(found);
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb != null) cb.onServicesDiscovered(BluetoothGatt.this, status);
            });
        }

        @Override public void onCharacteristicRead(BluetoothGattCharacteristic c, int status, byte[] value) {
            release();
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb == null) return;
                if (status == 0) c.setValue(value);
                if (FakeBluetooth.sdkInt() >= 33) {
                    cb.onCharacteristicRead(BluetoothGatt.this, c, value, status);
                } else {
                    cb.onCharacteristicRead(BluetoothGatt.this, c, status);
                }
            });
        }

        @Override public void onCharacteristicWrite(BluetoothGattCharacteristic c, int status) {
            release();
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb != null) cb.onCharacteristicWrite(BluetoothGatt.this, c, status);
            });
        }

        @Override public void onDescriptorRead(BluetoothGattDescriptor d, int status, byte[] value) {
            release();
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb == null) return;
                if (status == 0) d.value = value;
                if (FakeBluetooth.sdkInt() >= 33) {
                    cb.onDescriptorRead(BluetoothGatt.this, d, status, value);
                } else {
                    cb.onDescriptorRead(BluetoothGatt.this, d, status);
                }
            });
        }

        @Override public void onConfigureMtu(int mtu, int status) {
            runOrQueueCallback(() -> {
                BluetoothGattCallback cb = callback;
                if (cb != null) cb.onMtuChanged(BluetoothGatt.this, mtu, status);
            });
        }
    }
}
