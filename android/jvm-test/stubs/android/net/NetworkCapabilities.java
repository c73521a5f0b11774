// Stub of android.net.NetworkCapabilities: the two constants a network request names.
// Signatures: packages/modules/Connectivity framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net;

public final class NetworkCapabilities {
    // AOSP has a public constructor the AAR does not use (not vendored).
    NetworkCapabilities() {}

    public static final int NET_CAPABILITY_INTERNET = 12;
    public static final int TRANSPORT_WIFI = 1;

    // AOSP's DEFAULT_CAPABILITIES of a new NetworkRequest.Builder (not INTERNET).
    static final int NET_CAPABILITY_NOT_RESTRICTED = 13;
    static final int NET_CAPABILITY_TRUSTED = 14;
    static final int NET_CAPABILITY_NOT_VPN = 15;
}
