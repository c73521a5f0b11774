// Stub of android.content.Context: permissions and system services (Bluetooth, location, connectivity), as AOSP's (getSystemService(Class)
// is final and goes through getSystemServiceName and getSystemService(String)).
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.content;

public abstract class Context {
    public static final String BLUETOOTH_SERVICE = "bluetooth";
    public static final String CONNECTIVITY_SERVICE = "connectivity";
    public static final String LOCATION_SERVICE = "location";

    public Context() {}

    public abstract int checkSelfPermission(String permission);

    public abstract Object getSystemService(String name);

    public abstract String getSystemServiceName(Class<?> serviceClass);

    @SuppressWarnings("unchecked")
    public final <T> T getSystemService(Class<T> serviceClass) {
        String name = getSystemServiceName(serviceClass);
        return name != null ? (T) getSystemService(name) : null;
    }
}
