// Stub of android.net.wifi.WifiNetworkSpecifier and its Builder (API 29): the access point an app asks
// the system to join. AOSP keeps the SSID and the credentials in hidden fields (ssidPatternMatcher,
// wifiConfiguration); the fake connectivity service reads them through the @Hidden accessors here.
// Signatures: packages/modules/Wifi framework/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.net.wifi;

import android.net.NetworkSpecifier;
import dev.claimlink.fake.Hidden;

public final class WifiNetworkSpecifier extends NetworkSpecifier {
    private final String ssid;
    private final String wpa2Passphrase;

    private WifiNetworkSpecifier(String ssid, String wpa2Passphrase) {
        this.ssid = ssid;
        this.wpa2Passphrase = wpa2Passphrase;
    }

    @Hidden("AOSP: the @hide field ssidPatternMatcher (a literal pattern for setSsid)")
    public String ssidForFake() { return ssid; }

    @Hidden("AOSP: the @hide field wifiConfiguration.preSharedKey")
    public String wpa2PassphraseForFake() { return wpa2Passphrase; }

    public static final class Builder {
        private String ssid;
        private String wpa2Passphrase;

        public Builder() {}

        public WifiNetworkSpecifier.Builder setSsid(String ssid) {
            if (ssid == null) throw new NullPointerException("ssid");
            this.ssid = ssid;
            return this;
        }

        public WifiNetworkSpecifier.Builder setWpa2Passphrase(String passphrase) {
            if (passphrase == null) throw new NullPointerException("passphrase");
            this.wpa2Passphrase = passphrase;
            return this;
        }

        /** As AOSP: an SSID (or a pattern) is required. */
        public WifiNetworkSpecifier build() {
            if (ssid == null) throw new IllegalStateException("one of setSsid() or setSsidPattern() must be invoked");
            return new WifiNetworkSpecifier(ssid, wpa2Passphrase);
        }
    }
}
