// Test-only: the seam between the android.net stubs (the app's side of Android's connectivity) and the
// fake connectivity service behind them (the system's ConnectivityService and Wi-Fi: which networks a
// request gets, and where each network's traffic goes). Not Android API: nothing under src/main may
// use this package (android/jvm-test/run checks the compiled main classes).
package dev.claimlink.fake;

import android.net.Network;
import android.net.NetworkRequest;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ServerSocket;
import java.net.URL;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

public final class FakeConnectivity {
    private FakeConnectivity() {}

    /** What ConnectivityManager asks of the system (AOSP: IConnectivityManager). */
    public interface Service {
        /** Starts looking for a network for `request`; answers later through `delivery`. Throws
         *  SecurityException when the app lacks CHANGE_NETWORK_STATE. */
        void requestNetwork(NetworkRequest request, Delivery delivery);
        /** The app withdrew `request` (unregisterNetworkCallback). */
        void releaseNetworkRequest(NetworkRequest request);
    }

    /** Where the service answers a request (AOSP: the callback messages, on ConnectivityThread). */
    public interface Delivery {
        void available(Network network);
        void lost(Network network);
        void unavailable();
    }

    private static volatile Service service;
    private static volatile Proxy networkProxy;
    private static final Map<Integer, Map<String, InetSocketAddress>> routes = new ConcurrentHashMap<>();
    private static final InetSocketAddress NOWHERE = deadAddress();

    /** Every openConnection on a Network: "netId proxyType url". */
    public static final List<String> opened = new CopyOnWriteArrayList<>();

    public static void install(Service s) { service = s; }

    public static Service service() {
        Service s = service;
        if (s == null) throw new IllegalStateException("no fake connectivity service installed");
        return s;
    }

    /** The proxy the system configured for networks (ConnectivityManager.getProxyForNetwork); null: none. */
    public static Proxy networkProxy() { return networkProxy; }

    public static void setNetworkProxy(Proxy proxy) { networkProxy = proxy; }

    /** Network `netId` carries traffic for `host:port` to `to` (a joined AP's 192.168.4.1:80). */
    public static void addRoute(int netId, String host, int port, InetSocketAddress to) {
        routes.computeIfAbsent(netId, k -> new ConcurrentHashMap<>()).put(host + ":" + port, to);
    }

    /** Network `netId` is gone: its sockets connect nowhere. */
    public static void dropRoutes(int netId) { routes.remove(netId); }

    /** Where network `netId` sends `host:port`: a refused address when it has no route there. */
    public static InetSocketAddress route(int netId, String host, int port) {
        Map<String, InetSocketAddress> table = routes.get(netId);
        InetSocketAddress to = table == null ? null : table.get(host + ":" + port);
        return to != null ? to : NOWHERE;
    }

    public static void recordOpen(int netId, URL url, Proxy proxy) {
        opened.add(netId + " " + proxy.type() + " " + url);
    }

    /** A 127.0.0.1 port nothing listens on (bound once, then closed). */
    private static InetSocketAddress deadAddress() {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), s.getLocalPort());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
