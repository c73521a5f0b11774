// Stub of android.os.ParcelUuid.
// Signatures: frameworks/base core/api/current.txt (android/jvm-test/api/android-api-subset.txt).
package android.os;

import java.util.UUID;

public final class ParcelUuid {
    private final UUID uuid;

    public ParcelUuid(UUID uuid) { this.uuid = uuid; }

    public static ParcelUuid fromString(String uuid) { return new ParcelUuid(UUID.fromString(uuid)); }

    public UUID getUuid() { return uuid; }

    @Override public boolean equals(Object o) { return o instanceof ParcelUuid && ((ParcelUuid) o).uuid.equals(uuid); }

    @Override public int hashCode() { return uuid.hashCode(); }

    @Override public String toString() { return uuid.toString(); }
}
