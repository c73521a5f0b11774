// Stub of android.bluetooth.le.BluetoothLeScanner, as AOSP's: startScan throws IllegalStateException
// when the adapter is off (BluetoothLeUtils.checkAdapterStateOn), a second start with the same callback
// fails with SCAN_FAILED_ALREADY_STARTED, results are filtered by the ScanFilters and delivered on the
// main thread (AOSP: new Handler(Looper.getMainLooper())), none after stopScan.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth.le;

import android.bluetooth.BluetoothAdapter;
import android.os.Handler;
import android.os.Looper;
import dev.claimlink.fake.FakeBluetooth;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class BluetoothLeScanner {
    private final Map<ScanCallback, FakeBluetooth.Scanner> clients = new ConcurrentHashMap<>();

    @dev.claimlink.fake.Hidden("AOSP: @hide public BluetoothLeScanner(BluetoothAdapter); the adapter creates it")
    public BluetoothLeScanner(BluetoothAdapter adapter) {}

    public void startScan(List<ScanFilter> filters, ScanSettings settings, ScanCallback callback) {
        if (!FakeBluetooth.enabled()) throw new IllegalStateException("BT Adapter is not turned ON");
        if (callback == null) throw new IllegalArgumentException("callback is null");
        if (settings == null) throw new IllegalArgumentException("settings is null");
        Handler main = new Handler(Looper.getMainLooper());
        if (clients.containsKey(callback)) {
            main.post(() -> callback.onScanFailed(ScanCallback.SCAN_FAILED_ALREADY_STARTED));
            return;
        }
        FakeBluetooth.Scanner scanner = new FakeBluetooth.Scanner() {
            @Override public void onAdvertisement(String address, int rssi, byte[] data) {
                ScanRecord record = ScanRecord.parseFromBytes(data);
                @SuppressWarnings("deprecation")
                ScanResult result = new ScanResult(
                        BluetoothAdapter.getDefaultAdapter().getRemoteDevice(address), record, rssi, System.nanoTime());
                if (filters != null && !filters.isEmpty() && filters.stream().noneMatch(f -> f.matches(result))) return;
                main.post(() -> {
                    if (clients.get(callback) == this) {
                        FakeBluetooth.callbackThreads.add("scan:" + Thread.currentThread().getName());
                        callback.onScanResult(ScanSettings.CALLBACK_TYPE_ALL_MATCHES, result);
                    }
                });
            }
        };
        clients.put(callback, scanner);
        try {
            FakeBluetooth.service().startScan(scanner);
        } catch (SecurityException e) {
            clients.remove(callback);
            throw e;
        }
    }

    public void stopScan(ScanCallback callback) {
        if (!FakeBluetooth.enabled()) throw new IllegalStateException("BT Adapter is not turned ON");
        FakeBluetooth.Scanner scanner = clients.remove(callback);
        if (scanner != null) FakeBluetooth.service().stopScan(scanner);
    }
}
