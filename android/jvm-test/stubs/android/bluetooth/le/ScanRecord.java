// Stub of android.bluetooth.le.ScanRecord, parsed from the advertising data as AOSP's hidden
// ScanRecord.parseFromBytes does (Bluetooth Core Supplement, part A: length-type-value AD structures;
// 0x08/0x09 shortened/complete local name, 0x06/0x07 incomplete/complete list of 128-bit service UUIDs,
// little-endian).
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth.le;

import android.os.ParcelUuid;
import dev.claimlink.fake.Hidden;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

public final class ScanRecord {
    private final String deviceName;
    private final List<ParcelUuid> serviceUuids;

    private ScanRecord(String deviceName, List<ParcelUuid> serviceUuids) {
        this.deviceName = deviceName;
        this.serviceUuids = serviceUuids;
    }

    @Hidden("AOSP: @hide public static ScanRecord parseFromBytes(byte[]) (ScanRecord.java)")
    public static ScanRecord parseFromBytes(byte[] data) {
        String name = null;
        List<ParcelUuid> uuids = new ArrayList<>();
        int i = 0;
        while (i < data.length) {
            int length = data[i] & 0xff;
            if (length == 0) break;
            int type = data[i + 1] & 0xff;
            int start = i + 2;
            int end = i + 1 + length;
            if (end > data.length) return null; // a truncated structure: AOSP logs and returns null
            if (type == 0x08 || type == 0x09) {
                name = new String(data, start, end - start, StandardCharsets.UTF_8);
            } else if (type == 0x06 || type == 0x07) {
                for (int at = start; at + 16 <= end; at += 16) {
                    long lsb = 0, msb = 0;
                    for (int b = 7; b >= 0; b--) lsb = (lsb << 8) | (data[at + b] & 0xff);
                    for (int b = 15; b >= 8; b--) msb = (msb << 8) | (data[at + b] & 0xff);
                    uuids.add(new ParcelUuid(new UUID(msb, lsb)));
                }
            }
            i = end;
        }
        return new ScanRecord(name, uuids.isEmpty() ? null : uuids);
    }

    public String getDeviceName() { return deviceName; }

    public List<ParcelUuid> getServiceUuids() { return serviceUuids; }
}
