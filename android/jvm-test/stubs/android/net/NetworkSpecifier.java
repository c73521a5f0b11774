// Stub of android.net.NetworkSpecifier: the base class of WifiNetworkSpecifier.
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net;

public abstract class NetworkSpecifier {
    public NetworkSpecifier() {}
}
