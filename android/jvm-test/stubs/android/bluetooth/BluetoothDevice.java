// Stub of android.bluetooth.BluetoothDevice: connectGatt, as AOSP's (callbacks on `handler` when one
// is given, else on the binder thread).
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth;

import android.content.Context;
import android.os.Handler;

public final class BluetoothDevice {
    public static final int PHY_LE_1M_MASK = 1;
    public static final int TRANSPORT_LE = 2;

    private final String address;

    BluetoothDevice(String address) { this.address = address; }

    public String getAddress() { return address; }

    public String getName() { return null; }

    public BluetoothGatt connectGatt(Context context, boolean autoConnect, BluetoothGattCallback callback,
            int transport, int phy, Handler handler) {
        if (callback == null) throw new NullPointerException("callback is null");
        BluetoothGatt gatt = new BluetoothGatt(this, callback, handler, transport);
        gatt.connectInternal();
        return gatt;
    }

    @Override public boolean equals(Object o) { return o instanceof BluetoothDevice && ((BluetoothDevice) o).address.equals(address); }

    @Override public int hashCode() { return address.hashCode(); }

    @Override public String toString() { return address; }
}
