// Stub of android.net.ConnectivityManager: network requests and their callbacks, shaped after AOSP
// (packages/modules/Connectivity framework/src/android/net/ConnectivityManager.java, Android 14):
// requestNetwork registers the callback (a callback registered twice is refused), the service answers
// later on its own thread ("ConnectivityThread"); onUnavailable unregisters the callback by itself;
// unregisterNetworkCallback releases the request and stops callbacks at once, is a no-op for a
// callback already unregistered, and throws for one never registered. Without CHANGE_NETWORK_STATE the
// service throws SecurityException. The service behind it is FakeConnectivity.Service.
// Signatures: packages/modules/Connectivity framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net;

import dev.claimlink.fake.FakeConnectivity;
import dev.claimlink.fake.Hidden;

public class ConnectivityManager {
    private static final Object LOCK = new Object();
    private static final Object ALREADY_UNREGISTERED = new Object();

    @Hidden("AOSP: @hide ConnectivityManager(Context, IConnectivityManager); the system creates it")
    public ConnectivityManager() {}

    public void requestNetwork(NetworkRequest request, NetworkCallback networkCallback) {
        if (request == null || networkCallback == null) throw new IllegalArgumentException("null request or callback");
        synchronized (LOCK) {
            if (networkCallback.registration != null && networkCallback.registration != ALREADY_UNREGISTERED) {
                throw new IllegalArgumentException("NetworkCallback was already registered");
            }
            networkCallback.registration = request;
        }
        FakeConnectivity.Delivery delivery = new FakeConnectivity.Delivery() {
            private boolean registered() {
                synchronized (LOCK) { return networkCallback.registration == request; }
            }

            @Override
            public void available(Network network) {
                if (registered()) networkCallback.onAvailable(network);
            }

            @Override
            public void lost(Network network) {
                if (registered()) networkCallback.onLost(network);
            }

            @Override
            public void unavailable() {
                synchronized (LOCK) {
                    if (networkCallback.registration != request) return;
                    networkCallback.registration = ALREADY_UNREGISTERED;
                }
                networkCallback.onUnavailable();
            }
        };
        try {
            FakeConnectivity.service().requestNetwork(request, delivery);
        } catch (SecurityException e) {
            synchronized (LOCK) { networkCallback.registration = null; }
            throw e;
        }
    }

    public void unregisterNetworkCallback(NetworkCallback networkCallback) {
        Object registration;
        synchronized (LOCK) {
            registration = networkCallback.registration;
            if (registration == null) throw new IllegalArgumentException("NetworkCallback was not registered");
            if (registration == ALREADY_UNREGISTERED) return;
            networkCallback.registration = ALREADY_UNREGISTERED;
        }
        FakeConnectivity.service().releaseNetworkRequest((NetworkRequest) registration);
    }

    public static class NetworkCallback {
        // AOSP: the @hide field networkRequest (null, the request, or ALREADY_UNREGISTERED).
        private Object registration;

        public NetworkCallback() {}

        public void onAvailable(Network network) {}

        public void onLost(Network network) {}

        public void onUnavailable() {}
    }
}
