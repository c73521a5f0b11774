// Stub of android.content.pm.PackageManager: the permission check results only.
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.content.pm;

public abstract class PackageManager {
    public static final int PERMISSION_DENIED = -1;
    public static final int PERMISSION_GRANTED = 0;

    @Deprecated
    public PackageManager() {}
}
