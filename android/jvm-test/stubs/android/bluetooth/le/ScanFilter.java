// Stub of android.bluetooth.le.ScanFilter: name and service UUID filters, matched as AOSP's matches() does.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth.le;

import android.os.ParcelUuid;

public final class ScanFilter {
    private final String deviceName;
    private final ParcelUuid serviceUuid;

    private ScanFilter(String deviceName, ParcelUuid serviceUuid) {
        this.deviceName = deviceName;
        this.serviceUuid = serviceUuid;
    }

    public String getDeviceName() { return deviceName; }

    public ParcelUuid getServiceUuid() { return serviceUuid; }

    public boolean matches(ScanResult result) {
        if (result == null) return false;
        ScanRecord record = result.getScanRecord();
        if (deviceName != null && (record == null || !deviceName.equals(record.getDeviceName()))) return false;
        if (serviceUuid != null && (record == null || record.getServiceUuids() == null
                || !record.getServiceUuids().contains(serviceUuid))) return false;
        return true;
    }

    public static final class Builder {
        private String deviceName;
        private ParcelUuid serviceUuid;

        public Builder() {}

        public Builder setDeviceName(String deviceName) { this.deviceName = deviceName; return this; }

        public Builder setServiceUuid(ParcelUuid serviceUuid) { this.serviceUuid = serviceUuid; return this; }

        public ScanFilter build() { return new ScanFilter(deviceName, serviceUuid); }
    }
}
