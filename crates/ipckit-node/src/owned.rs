//! The descriptors the TypeScript layer owns, per JavaScript environment (the main thread, or
//! one Worker), so that the environment's end closes the ones still open.
//!
//! An object that owns a descriptor (a `Channel`, an `EventFd`, a `Memfd`, ...) closes it in
//! its `close()`, or through a `FinalizationRegistry` once it is collected. Neither runs when a
//! Worker ends with the object still open (`worker.terminate()`, or a Worker that simply
//! returns): the descriptors would stay open in the process for as long as it lives, four per
//! Worker that held a duplex channel. So the TypeScript layer tells this module each
//! descriptor it comes to own (`fdOwned`) and each it closes (`fdDisowned`), and a cleanup hook
//! of the environment closes what is left when the environment shuts down. (Node.js does the
//! same for the descriptors a Worker opened through `fs`, which it tracks itself.)

use std::cell::RefCell;
use std::collections::HashSet;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;

thread_local! {
    /// This thread's environment's descriptors; `None` until the first one (when the cleanup
    /// hook is added) and after the environment's cleanup.
    static OWNED: RefCell<Option<HashSet<i32>>> = const { RefCell::new(None) };
}

/// Notes that the calling environment owns `fd` (closed at its end unless disowned first).
///
/// ```js
/// const fd = native.eventfdCreate(0, 0)
/// native.fdOwned(fd)
/// ```
#[napi]
pub fn fd_owned(env: &Env, fd: i32) -> Result<()> {
    if OWNED.with(|o| o.borrow().is_none()) {
        env.add_env_cleanup_hook((), |()| close_all())?;
        OWNED.with(|o| *o.borrow_mut() = Some(HashSet::new()));
    }
    OWNED.with(|o| {
        if let Some(set) = o.borrow_mut().as_mut() {
            set.insert(fd);
        }
    });
    Ok(())
}

/// Notes that `fd` is closed (or handed on) by its owner: the environment's end leaves it.
/// Whether it was owned: made by ipckit in this environment (so never opened through `fs`)
/// and not handed in through a `fromFd`.
///
/// ```js
/// if (!native.fdDisowned(fd)) fs.closeSync(fd)
/// ```
#[napi]
pub fn fd_disowned(fd: i32) -> bool {
    OWNED.with(|o| o.borrow_mut().as_mut().is_some_and(|set| set.remove(&fd)))
}

/// Closes `fd`, a descriptor ipckit made itself (a system call of its own, never `fs`), and
/// forgets it: `EBADF` if it is not open, and what `close` says. (`socketClose` is this.) In a Worker, Node.js tracks the descriptors opened
/// through `fs` and warns ("closed but not opened in unmanaged mode") when `fs.closeSync`
/// closes one it did not open; a descriptor `fs` opened must still go through `fs`, or Node.js
/// would close its number again when the Worker ends.
///
/// ```js
/// if (native.fdDisowned(fd)) native.fdClose(fd)
/// ```
#[napi]
pub fn fd_close(env: &Env, fd: i32) -> Result<()> {
    fd_disowned(fd);
    crate::uv::take_fd(fd)
        .and_then(ipckit::socket::close)
        .or_throw(env)
}

/// The environment's cleanup: closes every descriptor still owned. The event loop's poller
/// forgets its handles in its own cleanup (`uv.rs`); a handle left on a closed number is only
/// removed from an epoll set the kernel already emptied of it.
fn close_all() {
    let left = OWNED.with(|o| o.borrow_mut().take());
    for fd in left.into_iter().flatten() {
        // A number closed behind the owner's back (EBADF) has nothing left to close.
        drop(crate::uv::take_fd(fd));
    }
}
