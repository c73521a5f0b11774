// Stub of android.os.HandlerThread: a thread running a Looper.
// Signatures: frameworks/base core/api/current.txt (see android/jvm-test/api/android-api-subset.txt).
package android.os;

public class HandlerThread extends Thread {
    private Looper looper;

    public HandlerThread(String name) { super(name); }

    public HandlerThread(String name, int priority) { super(name); }

    protected void onLooperPrepared() {}

    @Override
    public void run() {
        Looper.prepare();
        synchronized (this) {
            looper = Looper.myLooper();
            notifyAll();
        }
        onLooperPrepared();
        Looper.loop();
    }

    public Looper getLooper() {
        if (!isAlive()) return null;
        synchronized (this) {
            while (isAlive() && looper == null) {
                try { wait(); } catch (InterruptedException ignored) { }
            }
        }
        return looper;
    }

    public boolean quit() { return quitSafely(); }

    public boolean quitSafely() {
        Looper l = getLooper();
        if (l == null) return false;
        l.quitSafely();
        return true;
    }
}
