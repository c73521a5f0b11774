// Stub of android.Manifest: the permission names the AAR checks.
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android;

public final class Manifest {
    public Manifest() {}

    public static final class permission {
        public permission() {}

        public static final String ACCESS_FINE_LOCATION = "android.permission.ACCESS_FINE_LOCATION";
        public static final String BLUETOOTH = "android.permission.BLUETOOTH";
        public static final String BLUETOOTH_ADMIN = "android.permission.BLUETOOTH_ADMIN";
        public static final String BLUETOOTH_CONNECT = "android.permission.BLUETOOTH_CONNECT";
        public static final String BLUETOOTH_SCAN = "android.permission.BLUETOOTH_SCAN";
        public static final String CHANGE_NETWORK_STATE = "android.permission.CHANGE_NETWORK_STATE";
    }
}
