// Stub of android.net.Network: sockets and HTTP connections bound to one network. Shaped after AOSP
// (packages/modules/Connectivity framework/src/android/net/Network.java): openConnection(URL) uses the
// network's proxy (ConnectivityManager.getProxyForNetwork: here FakeConnectivity.networkProxy),
// openConnection(URL, Proxy) the one given (null is refused), and getSocketFactory() makes sockets
// bound to the network. On the JVM "bound to the network" is played by FakeConnectivity's routes: a
// joined access point's addresses (192.168.4.1:80) map to a simulated device on 127.0.0.1, and a
// network that was released or lost routes nowhere (connection refused), as a Network whose Wi-Fi is
// gone fails its sockets on Android.
// Signatures: packages/modules/Connectivity framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net;

import dev.claimlink.fake.FakeConnectivity;
import dev.claimlink.fake.Hidden;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.URL;
import java.net.URLConnection;
import javax.net.SocketFactory;

public class Network {
    private final int netId;

    @Hidden("AOSP: @hide Network(int netId); the system creates Networks")
    public Network(int netId) { this.netId = netId; }

    public URLConnection openConnection(URL url) throws IOException {
        Proxy proxy = FakeConnectivity.networkProxy();
        return openConnection(url, proxy != null ? proxy : Proxy.NO_PROXY);
    }

    public URLConnection openConnection(URL url, Proxy proxy) throws IOException {
        if (proxy == null) throw new IllegalArgumentException("proxy is null");
        FakeConnectivity.recordOpen(netId, url, proxy);
        if (proxy.type() == Proxy.Type.DIRECT) {
            // Straight to the address this network routes the URL's host and port to.
            InetSocketAddress to = FakeConnectivity.route(netId, url.getHost(), url.getPort() == -1 ? 80 : url.getPort());
            url = new URL(url.getProtocol(), to.getHostString(), to.getPort(), url.getFile());
        }
        return url.openConnection(proxy);
    }

    public SocketFactory getSocketFactory() {
        return new SocketFactory() {
            @Override
            public Socket createSocket() {
                return new Socket() {
                    @Override
                    public void connect(SocketAddress endpoint, int timeout) throws IOException {
                        InetSocketAddress target = (InetSocketAddress) endpoint;
                        super.connect(FakeConnectivity.route(netId, target.getHostString(), target.getPort()), timeout);
                    }
                };
            }

            @Override
            public Socket createSocket(String host, int port) throws IOException {
                Socket s = createSocket();
                s.connect(new InetSocketAddress(host, port));
                return s;
            }

            @Override
            public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
                Socket s = createSocket();
                s.bind(new InetSocketAddress(localHost, localPort));
                s.connect(new InetSocketAddress(host, port));
                return s;
            }

            @Override
            public Socket createSocket(InetAddress host, int port) throws IOException {
                Socket s = createSocket();
                s.connect(new InetSocketAddress(host, port));
                return s;
            }

            @Override
            public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort) throws IOException {
                Socket s = createSocket();
                s.bind(new InetSocketAddress(localAddress, localPort));
                s.connect(new InetSocketAddress(address, port));
                return s;
            }
        };
    }

    /** As AOSP: the netId. */
    @Override
    public String toString() { return Integer.toString(netId); }

    @Override
    public boolean equals(Object o) { return o instanceof Network && ((Network) o).netId == netId; }

    @Override
    public int hashCode() { return netId * 11; }

    @Hidden("AOSP: @hide field netId")
    public int netIdForFake() { return netId; }
}
