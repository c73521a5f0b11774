// Stub of android.os.Handler: posts runnables to its Looper's thread, in order.
// Signatures: frameworks/base core/api/current.txt (see android/jvm-test/api/android-api-subset.txt).
package android.os;

public class Handler {
    private final Looper looper;

    public Handler(Looper looper) {
        if (looper == null) throw new NullPointerException("looper");
        this.looper = looper;
    }

    public final Looper getLooper() { return looper; }

    public final boolean post(Runnable r) { return looper.enqueue(r, null, 0); }

    public final boolean postDelayed(Runnable r, long delayMillis) { return looper.enqueue(r, null, delayMillis); }

    public final boolean postDelayed(Runnable r, Object token, long delayMillis) { return looper.enqueue(r, token, delayMillis); }

    public final void removeCallbacks(Runnable r) { looper.remove(r, null); }

    public final void removeCallbacksAndMessages(Object token) { looper.remove(null, token); }
}
