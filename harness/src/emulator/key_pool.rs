//! RSA-2048 keys generated ahead, so that issuing a claim under load costs a signature, not a key
//! generation (about 70 ms of CPU each, most of a claim's cost; AWS does it in hardware).
//!
//! Only keys are made ahead: each certificate is still signed when the claim is issued, so its
//! validity starts then. Background threads (one per core) keep the pool at its target:
//!
//! * the keys announced with [`KeyPool::reserve`] (the demo and the benchmark announce their devices),
//! * plus a floor that grows by one, up to [`MAX_FLOOR`], each time a request finds the pool empty
//!   (demand seen), starting at 0 (an emulator that issues one claim generates one key, inline),
//! * plus the requests waiting for a key right now.
//!
//! A request that finds the pool empty waits for the next key (first come, first served) while the
//! generators work: a burst of claims is served in order at full speed rather than all at once, each
//! slowly. The threads stop when the pool is dropped with its emulator.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::rsa_key::{RsaKey, RsaKeyError};

/// The most spare keys the pool keeps from seeing demand alone.
pub const MAX_FLOOR: usize = 8;

#[derive(Default)]
struct Stock {
    keys: Vec<RsaKey>,
    /// Keys announced and not yet taken.
    reserved: usize,
    /// Spare keys learnt from demand.
    floor: usize,
    /// Requests waiting for a key.
    waiting: usize,
    /// Keys being generated right now.
    in_progress: usize,
    /// Keys handed out, and how many of them were ready when asked for.
    taken: u64,
    ready_when_taken: u64,
    closed: bool,
    /// The last generation error (the operating system's randomness failed), handed to waiters.
    error: Option<RsaKeyError>,
}

impl Stock {
    fn target(&self) -> usize {
        self.reserved + self.floor + self.waiting
    }
}

struct Shared {
    stock: Mutex<Stock>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Stock> {
        self.stock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How the pool has served so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyPoolStats {
    /// Keys handed out.
    pub taken: u64,
    /// Of those, keys that were ready when asked for.
    pub ready_when_taken: u64,
    /// Keys ready now.
    pub ready: usize,
}

/// The pool and its generator threads.
pub struct KeyPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl KeyPool {
    /// A pool with `threads` generators (at least one), empty and with no target yet.
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            stock: Mutex::new(Stock::default()),
            changed: Condvar::new(),
        });
        let threads = (0..threads.max(1))
            .filter_map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("emulator-keys-{i}"))
                    .spawn(move || generate(&shared))
                    .ok()
            })
            .collect();
        Self { shared, threads }
    }

    /// A pool with one generator per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Announces `keys` more requests: the generators make them ahead.
    pub fn reserve(&self, keys: usize) {
        let mut stock = self.shared.lock();
        stock.reserved = stock.reserved.saturating_add(keys);
        self.shared.changed.notify_all();
    }

    /// A key: a ready one, or the next one generated. Blocks (call it off the async runtime). When
    /// the pool has no generator thread (the system refused to start one), generates it here.
    pub fn take(&self) -> Result<RsaKey, RsaKeyError> {
        if self.threads.is_empty() {
            return RsaKey::generate();
        }
        let mut stock = self.shared.lock();
        stock.taken += 1;
        stock.reserved = stock.reserved.saturating_sub(1);
        if let Some(key) = stock.keys.pop() {
            stock.ready_when_taken += 1;
            self.shared.changed.notify_all();
            return Ok(key);
        }
        stock.floor = (stock.floor + 1).min(MAX_FLOOR);
        stock.waiting += 1;
        self.shared.changed.notify_all();
        loop {
            if let Some(key) = stock.keys.pop() {
                stock.waiting -= 1;
                return Ok(key);
            }
            if let Some(e) = stock.error.take() {
                stock.waiting -= 1;
                return Err(e);
            }
            stock = self
                .shared
                .changed
                .wait(stock)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until `keys` keys are ready (or the pool is closed or cannot generate). Call it off the
    /// async runtime.
    pub fn wait_ready(&self, keys: usize) -> Result<(), RsaKeyError> {
        let mut stock = self.shared.lock();
        while stock.keys.len() < keys && !stock.closed {
            if let Some(e) = stock.error.take() {
                return Err(e);
            }
            stock = self
                .shared
                .changed
                .wait(stock)
                .unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// How the pool has served so far.
    pub fn stats(&self) -> KeyPoolStats {
        let stock = self.shared.lock();
        KeyPoolStats {
            taken: stock.taken,
            ready_when_taken: stock.ready_when_taken,
            ready: stock.keys.len(),
        }
    }
}

impl Drop for KeyPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        // The threads finish the key at hand (at most one generation each) and end; they are not
        // joined, so dropping an emulator never waits for them.
        self.threads.clear();
    }
}

/// A generator thread: makes keys while the pool is below its target.
fn generate(shared: &Shared) {
    let mut stock = shared.lock();
    loop {
        if stock.closed {
            return;
        }
        if stock.keys.len() + stock.in_progress >= stock.target() {
            stock = shared
                .changed
                .wait(stock)
                .unwrap_or_else(|p| p.into_inner());
            continue;
        }
        stock.in_progress += 1;
        drop(stock);
        let made = RsaKey::generate();
        stock = shared.lock();
        stock.in_progress -= 1;
        match made {
            Ok(key) => stock.keys.push(key),
            Err(e) => stock.error = Some(e),
        }
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_made_ahead_and_demand_raises_the_floor() {
        let pool = KeyPool::new(1);
        assert_eq!(pool.stats().ready, 0, "nothing made before demand");
        // A request on an empty pool waits for the next key, and the floor grows by one.
        pool.take().expect("a key");
        pool.reserve(2);
        // Wait for the state: 2 reserved + floor 1 = 3 keys ready.
        let mut stock = pool.shared.lock();
        while stock.keys.len() < 3 {
            stock = pool.shared.changed.wait(stock).expect("lock");
        }
        drop(stock);
        for _ in 0..3 {
            pool.take().expect("a key");
        }
        let stats = pool.stats();
        assert_eq!((stats.taken, stats.ready_when_taken), (4, 3));
        let key = pool.take().expect("a key");
        assert_eq!(key.modulus_bits(), 2048);
    }
}
