// Stub of android.net.NetworkRequest and its Builder: what a request asks for, readable by the fake
// connectivity service. A new Builder starts from AOSP's defaults (NOT_RESTRICTED, TRUSTED, NOT_VPN:
// NetworkCapabilities.DEFAULT_CAPABILITIES; INTERNET is not among them).
// Signatures: packages/modules/Connectivity framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net;

import java.util.Set;
import java.util.TreeSet;

public class NetworkRequest {
    private final Set<Integer> transports;
    private final Set<Integer> capabilities;
    private final NetworkSpecifier specifier;

    private NetworkRequest(Set<Integer> transports, Set<Integer> capabilities, NetworkSpecifier specifier) {
        this.transports = transports;
        this.capabilities = capabilities;
        this.specifier = specifier;
    }

    public boolean hasCapability(int capability) { return capabilities.contains(capability); }

    public boolean hasTransport(int transport) { return transports.contains(transport); }

    public NetworkSpecifier getNetworkSpecifier() { return specifier; }

    public static class Builder {
        private final Set<Integer> transports = new TreeSet<>();
        private final Set<Integer> capabilities = new TreeSet<>(Set.of(
            NetworkCapabilities.NET_CAPABILITY_NOT_RESTRICTED,
            NetworkCapabilities.NET_CAPABILITY_TRUSTED,
            NetworkCapabilities.NET_CAPABILITY_NOT_VPN));
        private NetworkSpecifier specifier;

        public Builder() {}

        public NetworkRequest.Builder addTransportType(int transport) { transports.add(transport); return this; }

        public NetworkRequest.Builder removeCapability(int capability) { capabilities.remove(capability); return this; }

        public NetworkRequest.Builder setNetworkSpecifier(NetworkSpecifier specifier) { this.specifier = specifier; return this; }

        public NetworkRequest build() { return new NetworkRequest(new TreeSet<>(transports), new TreeSet<>(capabilities), specifier); }
    }
}
