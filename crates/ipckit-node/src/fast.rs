//! The argument-less fast path of calls that need no wait (message queues, semaphores).
//!
//! A napi-rs function with arguments pays a fixed cost per call for its argument borrow scope
//! (an allocation, thread-local bookkeeping): on these machines more than a `msgrcv` or a
//! `semop`. A function with no arguments skips it. So the TypeScript layer of a primitive
//! registers one private buffer per thread (a "slab"), writes the arguments of each call into
//! it as `i32` words, and calls an argument-less function that reads them and answers with a
//! number. A failure is kept here and thrown by the primitive's `...FastError()`, through the
//! one error path every other call uses.
//!
//! ```ignore
//! thread_local! { static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) }; }
//! #[napi] pub fn x_fast_register(env: &Env, slab: Buffer) -> Result<()> { fast::register(env, &SLAB, slab) }
//! #[napi] pub fn x_fast_call() -> i32 {
//!     fast::with_slab(&SLAB, |slab| match slab.and_then(|s| fast::word(s, 0)) {
//!         Some(id) => 1,
//!         None => fast::keep_error(ipckit::Error::new(ipckit::Errno::EINVAL, "x")),
//!     })
//! }
//! ```

use std::cell::RefCell;
use std::thread::LocalKey;

use napi::bindgen_prelude::*;

/// A thread's registered buffer. It is forgotten, never dropped, at thread exit or when its
/// environment shuts down: the environment that owns the buffer may be gone by then, and a
/// Node-API call would be made on its behalf.
pub(crate) struct Slab(Option<Buffer>);

impl Slab {
    /// No buffer registered yet.
    pub(crate) const EMPTY: Slab = Slab(None);
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Some(buffer) = self.0.take() {
            std::mem::forget(buffer);
        }
    }
}

/// The thread-local slot of one primitive's slab.
pub(crate) type SlabKey = LocalKey<RefCell<Slab>>;

thread_local! {
    static KEPT: RefCell<Option<ipckit::Error>> = const { RefCell::new(None) };
}

/// What a fast call answers after a failure (the error is kept for `throw_kept`).
pub(crate) const FAILED: i8 = -2;

/// Registers `buffer` as this thread's slab in `key`, replacing (and releasing) the previous
/// one. On the first registration, a cleanup hook lets the slab go without a Node-API call
/// when the environment shuts down (another environment may later run on this thread and
/// register its own).
pub(crate) fn register(env: &Env, key: &'static SlabKey, buffer: Buffer) -> Result<()> {
    if key.with(|s| s.borrow().0.is_none()) {
        env.add_env_cleanup_hook(key, |key| {
            key.with(|s| {
                if let Some(buffer) = s.borrow_mut().0.take() {
                    std::mem::forget(buffer);
                }
            })
        })?;
    }
    let old = key.with(|s| s.borrow_mut().0.replace(buffer));
    drop(old);
    Ok(())
}

/// Runs `f` over this thread's slab in `key`: `None` when none is registered.
pub(crate) fn with_slab<R>(key: &'static SlabKey, f: impl FnOnce(Option<&mut [u8]>) -> R) -> R {
    key.with(|s| f(s.borrow_mut().0.as_deref_mut()))
}

/// The `i`-th native-endian `i32` of a slab, if the slab is that long.
pub(crate) fn word(slab: &[u8], i: usize) -> Option<i32> {
    let bytes = slab.get(i * 4..i * 4 + 4)?;
    Some(i32::from_ne_bytes(bytes.try_into().ok()?))
}

/// Keeps `e` for the next [`throw_kept`] and returns [`FAILED`], as the fast call's answer.
pub(crate) fn keep_error<T: From<i8>>(e: ipckit::Error) -> T {
    KEPT.with(|slot| *slot.borrow_mut() = Some(e));
    T::from(FAILED)
}

/// Throws the error kept by the last failed fast call (and forgets it); does nothing if there
/// is none.
pub(crate) fn throw_kept(env: &Env) -> Result<()> {
    match KEPT.with(|slot| slot.borrow_mut().take()) {
        Some(e) => Err(crate::error::sys_error(env, e)),
        None => Ok(()),
    }
}

/// Objects of the core that JavaScript refers to by number: a queue descriptor, a semaphore.
///
/// A napi-rs class method costs several times an argument-less function per call (it unwraps
/// `this`), so primitives whose fast path needs an object keep it here, in a per-thread table
/// (JavaScript objects never leave their thread), and the TypeScript layer passes its number
/// in the slab. Numbers are never reused: a stale number finds nothing (`EBADF`), never
/// another object. Removing an entry drops the object (closing what it owns).
///
/// ```ignore
/// thread_local! { static QUEUES: RefCell<Handles<MessageQueue>> = RefCell::new(Handles::default()); }
/// let id = QUEUES.with(|h| h.borrow_mut().insert(queue));
/// ```
pub(crate) struct Handles<T> {
    next: u32,
    map: std::collections::HashMap<u32, T>,
}

impl<T> Default for Handles<T> {
    fn default() -> Self {
        Self {
            next: 1,
            map: std::collections::HashMap::new(),
        }
    }
}

impl<T> Handles<T> {
    /// Keeps `value` and returns its number (1 and up; 0 is never one).
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        // After 2^32 - 1 numbers they wrap: skip those still in use.
        while self.map.contains_key(&self.next) {
            self.next = self.next.wrapping_add(1).max(1);
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.map.insert(id, value);
        id
    }

    /// The object of number `id`, if it is still kept.
    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.map.get(&id)
    }

    /// Lets go of the object of number `id` (dropping it), if it is still kept.
    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        self.map.remove(&id)
    }
}
