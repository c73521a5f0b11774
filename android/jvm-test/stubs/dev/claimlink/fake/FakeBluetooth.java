// Test-only: the seam between the android.* stubs (the app's side of Android's Bluetooth, shaped like
// AOSP's framework classes) and the fake Bluetooth service behind them (the Kotlin FakeBluetoothService:
// the system's Bluetooth process, the radio and the device). Not Android API: nothing under src/main
// may use this package (android/jvm-test/run checks the compiled main classes).
package dev.claimlink.fake;

import android.bluetooth.BluetoothGattCharacteristic;
import android.bluetooth.BluetoothGattDescriptor;
import android.bluetooth.BluetoothGattService;
import java.util.List;

/** The installed fake and the platform version it plays. */
public final class FakeBluetooth {
    private FakeBluetooth() {}

    private static volatile Service service;
    private static volatile int sdkInt = 34;
    private static volatile boolean enabled = true;

    /** The names of the threads the app's GATT callbacks ran on. */
    public static final java.util.Set<String> callbackThreads = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Installs the fake service every stub forwards to. */
    public static void install(Service s) { service = s; }

    /** The installed service. */
    public static Service service() {
        Service s = service;
        if (s == null) throw new IllegalStateException("no fake Bluetooth service installed");
        return s;
    }

    /** The Android API level the stubs behave as (which callbacks and overloads exist). */
    public static int sdkInt() { return sdkInt; }

    /** Plays API level `level`. */
    public static void setSdkInt(int level) { sdkInt = level; }

    private static volatile boolean locationEnabled = true;
    private static android.os.HandlerThread main;

    /** Whether location services are on (LocationManager.isLocationEnabled). */
    public static boolean locationEnabled() { return locationEnabled; }

    /** Turns location services on or off. */
    public static void setLocationEnabled(boolean on) { locationEnabled = on; }

    /** The stand-in for the app's main thread: a HandlerThread named "main", started on first use. */
    public static synchronized android.os.Looper mainLooper() {
        if (main == null) {
            main = new android.os.HandlerThread("main");
            main.setDaemon(true);
            main.start();
        }
        return main.getLooper();
    }

    /** Whether the adapter is on. */
    public static boolean enabled() { return enabled; }

    /** Turns the adapter on or off. */
    public static void setEnabled(boolean on) { enabled = on; }

    /**
     * What BluetoothGatt asks of the Bluetooth service (AOSP: IBluetoothGatt). Calls return at once;
     * results arrive later through the client's {@link Client} on the service's binder thread.
     */
    public interface Service {
        void connect(Client client, String address, int transport);
        void disconnect(Client client);
        /** AOSP unregisterClient: the client gets no callback any more. */
        void close(Client client);
        boolean discoverServices(Client client);
        /** Hidden API BluetoothGatt.refresh(): drops the cached GATT table. */
        boolean refresh(Client client);
        /** A BluetoothStatusCodes value. */
        int readCharacteristic(Client client, BluetoothGattCharacteristic c);
        /** A BluetoothStatusCodes value. */
        int writeCharacteristic(Client client, BluetoothGattCharacteristic c, byte[] value, int writeType);
        /** A BluetoothStatusCodes value. */
        int readDescriptor(Client client, BluetoothGattDescriptor d);
        boolean requestMtu(Client client, int mtu);
        boolean requestConnectionPriority(Client client, int priority);
        /** Starts delivering advertisements to `scanner` (AOSP: IBluetoothGatt.startScan); throws
         *  SecurityException without BLUETOOTH_SCAN, as the service does. */
        void startScan(Scanner scanner);
        void stopScan(Scanner scanner);
    }

    /** Where the service delivers what the radio hears, on its binder thread. */
    public interface Scanner {
        /** One advertisement: the advertiser's address, RSSI and advertising data (AD structures). */
        void onAdvertisement(String address, int rssi, byte[] advertisingData);
    }

    /** What the service calls back (AOSP: IBluetoothGattCallback), on its binder thread. */
    public interface Client {
        void onClientConnectionState(int status, boolean connected);
        void onSearchComplete(List<BluetoothGattService> services, int status);
        void onCharacteristicRead(BluetoothGattCharacteristic c, int status, byte[] value);
        void onCharacteristicWrite(BluetoothGattCharacteristic c, int status);
        void onDescriptorRead(BluetoothGattDescriptor d, int status, byte[] value);
        void onConfigureMtu(int mtu, int status);
        /** The address the client is for. */
        String address();
    }
}
