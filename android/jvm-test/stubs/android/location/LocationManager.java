// Stub of android.location.LocationManager: whether location services are on (API 28).
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.location;

import dev.claimlink.fake.FakeBluetooth;
import dev.claimlink.fake.Hidden;

public class LocationManager {
    @Hidden("AOSP: @hide LocationManager(Context, ILocationManager); the system creates it")
    public LocationManager() {}

    public boolean isLocationEnabled() { return FakeBluetooth.locationEnabled(); }
}
