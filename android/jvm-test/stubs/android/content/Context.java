// Stub of android.content.Context (frameworks/base core/api/current.txt): only passed through to
// BluetoothDevice.connectGatt here, so no member is declared.
package android.content;

public abstract class Context {
    public Context() {}
}
