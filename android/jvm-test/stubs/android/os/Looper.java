// Stub of android.os.Looper: a message loop on one thread, enough for Handler and HandlerThread.
// Signatures: frameworks/base core/api/current.txt (see android/jvm-test/api/android-api-subset.txt).
package android.os;

import java.util.concurrent.DelayQueue;
import java.util.concurrent.Delayed;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

public final class Looper {
    private static final ThreadLocal<Looper> CURRENT = new ThreadLocal<>();
    private static final AtomicLong SEQUENCE = new AtomicLong();

    private final Thread thread;
    private final DelayQueue<Message> queue = new DelayQueue<>();
    private volatile boolean quitting;

    private Looper(Thread thread) { this.thread = thread; }

    public static void prepare() {
        if (CURRENT.get() != null) throw new RuntimeException("Only one Looper may be created per thread");
        CURRENT.set(new Looper(Thread.currentThread()));
    }

    public static Looper myLooper() { return CURRENT.get(); }

    /** The fake's stand-in for the app's main thread (a HandlerThread named "main"). */
    public static Looper getMainLooper() { return dev.claimlink.fake.FakeBluetooth.mainLooper(); }

    public static void loop() {
        Looper me = CURRENT.get();
        if (me == null) throw new RuntimeException("No Looper; Looper.prepare() wasn't called on this thread.");
        while (true) {
            Message m;
            try {
                m = me.queue.take();
            } catch (InterruptedException e) {
                return;
            }
            if (m.task == null) return; // the quit marker
            if (m.removed) continue;
            m.task.run();
        }
    }

    public Thread getThread() { return thread; }

    public boolean isCurrentThread() { return Thread.currentThread() == thread; }

    public void quit() { quitSafely(); }

    public void quitSafely() {
        if (quitting) return;
        quitting = true;
        queue.add(new Message(null, null, 0));
    }

    boolean enqueue(Runnable task, Object token, long delayMillis) {
        if (quitting) return false;
        queue.add(new Message(task, token, Math.max(0, delayMillis)));
        return true;
    }

    void remove(Runnable task, Object token) {
        for (Message m : queue) {
            if ((task == null || m.task == task) && (token == null || m.token == token)) m.removed = true;
        }
    }

    private static final class Message implements Delayed {
        final Runnable task;
        final Object token;
        final long due;
        final long seq = SEQUENCE.incrementAndGet();
        volatile boolean removed;

        Message(Runnable task, Object token, long delayMillis) {
            this.task = task;
            this.token = token;
            this.due = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delayMillis);
        }

        @Override public long getDelay(TimeUnit unit) { return unit.convert(due - System.nanoTime(), TimeUnit.NANOSECONDS); }

        @Override public int compareTo(Delayed o) {
            Message other = (Message) o;
            int c = Long.compare(due, other.due);
            return c != 0 ? c : Long.compare(seq, other.seq);
        }
    }
}
