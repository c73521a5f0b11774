// Stub of android.os.Build: only VERSION.SDK_INT, which is not a compile-time constant on Android
// either (the API file gives it no value), so code compiled against this reads it at run time.
// Signatures: frameworks/base core/api/current.txt (see android/jvm-test/api/android-api-subset.txt).
package android.os;

public class Build {
    public Build() {}

    public static class VERSION {
        public VERSION() {}

        public static final int SDK_INT = dev.claimlink.fake.FakeBluetooth.sdkInt();
    }
}
