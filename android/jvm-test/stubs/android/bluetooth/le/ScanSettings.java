// Stub of android.bluetooth.le.ScanSettings.
// Signatures: packages/modules/Bluetooth framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.bluetooth.le;

public final class ScanSettings {
    public static final int CALLBACK_TYPE_ALL_MATCHES = 1;
    public static final int SCAN_MODE_LOW_LATENCY = 2;

    private final int scanMode;

    private ScanSettings(int scanMode) { this.scanMode = scanMode; }

    public int getScanMode() { return scanMode; }

    public static final class Builder {
        private int scanMode;

        public Builder() {}

        public Builder setScanMode(int scanMode) { this.scanMode = scanMode; return this; }

        public ScanSettings build() { return new ScanSettings(scanMode); }
    }
}
