//! File-descriptor readiness on the JavaScript thread's own event loop: `uv_poll`.
//!
//! This is the one module of the binding that speaks libuv and raw Node-API, and so the one
//! place in it that needs `unsafe`. It also holds the binding's other edges to C: [`Payload`]
//! (a received payload's conversion to a `Buffer`), [`external_array_buffer`] (shared memory
//! as an `ArrayBuffer`), and [`with_fd`], [`with_fds`] and [`take_fd`], where the descriptor
//! numbers JavaScript holds become the `BorrowedFd`s and `OwnedFd`s the core takes. A pending receive on an empty socket (or a signal watch's
//! pipe) waits here with no thread of its own: libuv's epoll, which the JavaScript thread
//! sleeps in anyway, reports the fd ready and the callback runs on that thread, inside a
//! Node-API callback scope (so promise reactions run before the loop goes on), as a `net`
//! socket's read callback does. One wake per ready fd, no thread hop.
//!
//! There is one poller per JavaScript thread (the main thread, each worker), created by
//! [`poll_init`] with the dispatch function `(fd, events) => void`. [`poll_set`] makes fd `fd`
//! watched for `events` (`UV_READABLE` 1, `UV_WRITABLE` 2; 0 stops watching); an fd being
//! watched keeps the event loop alive, one that is not does not. [`poll_release`] lets the
//! fd go; call it before the fd is closed (after it returns, libuv no longer refers to the fd).
//! When the environment ends (process exit, worker termination), every handle is closed
//! through an asynchronous cleanup hook, which Node.js waits for before it closes the loop.
//!
//! libuv's `uv_poll_init` makes the fd's file description non-blocking; a descriptor that was
//! blocking is put back as it was, so a child process sharing it (or a `...Sync` call) still
//! gets blocking reads. Operations on the JavaScript thread use `MSG_DONTWAIT` or non-blocking
//! retries of their own.
//!
//! The libuv functions are those of the hosting process (Node.js and Electron export them;
//! libuv 1.x keeps its ABI): the addon leaves them undefined, as it does the Node-API ones.
//!
//! For more information, see [`uv_poll_t`](https://docs.libuv.org/en/v1.x/poll.html) and
//! [`napi_make_callback`](https://nodejs.org/api/n-api.html#napi_make_callback).
//!
//! ```text
//! pollInit((fd, events) => { ... })   // once per thread
//! pollSet(fd, 1)                      // wake me when fd is readable
//! pollSet(fd, 0)                      // no longer
//! pollRelease(fd)                     // before closing fd
//! ```

use std::alloc::Layout;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

/// libuv, as the hosting process exports it.
#[allow(non_camel_case_types)]
mod ffi {
    use std::ffi::{c_int, c_void};

    /// `uv_handle_t` and `uv_poll_t` are opaque here: allocated with `uv_handle_size`, and only
    /// their first field (`void* data`) is touched.
    pub type uv_handle_t = c_void;
    pub type uv_poll_cb =
        unsafe extern "C" fn(handle: *mut uv_handle_t, status: c_int, events: c_int);
    pub type uv_close_cb = unsafe extern "C" fn(handle: *mut uv_handle_t);

    /// `UV_POLL` of `uv_handle_type`.
    pub const UV_POLL: c_int = 8;

    extern "C" {
        pub fn uv_handle_size(kind: c_int) -> usize;
        pub fn uv_poll_init(
            event_loop: *mut napi::sys::uv_loop_s,
            handle: *mut uv_handle_t,
            fd: c_int,
        ) -> c_int;
        pub fn uv_poll_start(handle: *mut uv_handle_t, events: c_int, cb: uv_poll_cb) -> c_int;
        pub fn uv_poll_stop(handle: *mut uv_handle_t) -> c_int;
        pub fn uv_close(handle: *mut uv_handle_t, cb: Option<uv_close_cb>);
        pub fn uv_strerror(err: c_int) -> *const std::ffi::c_char;
        pub fn uv_err_name(err: c_int) -> *const std::ffi::c_char;
    }
}

/// One watched fd: its libuv handle (whose `data` points back here) and its current events.
struct Watched {
    fd: c_int,
    handle: *mut ffi::uv_handle_t,
    events: c_int,
    poller: *const Poller,
}

/// The poller of one JavaScript thread.
struct Poller {
    env: sys::napi_env,
    event_loop: *mut sys::uv_loop_s,
    /// The dispatch function and the receiver/async resource object, held by references.
    dispatch: std::cell::Cell<sys::napi_ref>,
    resource: sys::napi_ref,
    context: sys::napi_async_context,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    watched: HashMap<c_int, NonNull<Watched>>,
    /// Shared with JavaScript (see [`poll_share`]): two `i32` per fd, the events wanted and
    /// the events watched.
    shared: Option<Buffer>,
    /// Handles closed whose close callback has not run yet.
    closing: usize,
    /// Set once the environment's cleanup began: the hook to remove when the last handle is
    /// closed.
    teardown: Option<sys::napi_async_cleanup_hook_handle>,
}

thread_local! {
    /// This thread's poller (leaked; freed when its environment's cleanup has closed every
    /// handle). Null before `pollInit` and after the cleanup.
    static POLLER: std::cell::Cell<*const Poller> = const { std::cell::Cell::new(ptr::null()) };
}

fn handle_layout() -> Result<Layout> {
    // SAFETY: uv_handle_size only reads a static table.
    let size = unsafe { ffi::uv_handle_size(ffi::UV_POLL) };
    Layout::from_size_align(size.max(1), 16)
        .map_err(|_| Error::new(Status::GenericFailure, "uv_handle_size"))
}

/// A libuv error as a system error (`code` such as `EEXIST`, the syscall `uv_poll_init`).
fn uv_error(env: &Env, err: c_int, syscall: &str) -> Error {
    // SAFETY: uv_err_name and uv_strerror return pointers to static NUL-terminated strings
    // (or a leaked string for unknown codes), valid for the life of the process.
    let (name, text) = unsafe {
        (
            std::ffi::CStr::from_ptr(ffi::uv_err_name(err))
                .to_string_lossy()
                .into_owned(),
            std::ffi::CStr::from_ptr(ffi::uv_strerror(err))
                .to_string_lossy()
                .into_owned(),
        )
    };
    let info = crate::error::SysErrorInfo {
        message: format!("{name}: {text}, {syscall}"),
        code: name,
        errno: err,
        syscall: syscall.to_owned(),
    };
    crate::error::info_error(env, info)
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "Node-API call failed"))
    }
}

/// Creates this thread's poller with `dispatch(fd, events)`, called on this thread when a
/// watched fd is ready (`events`: `UV_READABLE` 1 | `UV_WRITABLE` 2, or a negative libuv
/// error, after which the caller retries its operation and learns the error from it). A
/// second call on the same thread replaces the dispatch function.
#[napi]
pub fn poll_init(
    env: &Env,
    #[napi(ts_arg_type = "(fd: number, events: number) => void")] dispatch: Function<
        '_,
        (i32, i32),
        (),
    >,
) -> Result<()> {
    let raw_env = env.raw();
    let existing = POLLER.with(|p| p.get());
    if !existing.is_null() {
        // SAFETY: a non-null POLLER is a live leaked Poller of this thread.
        let poller = unsafe { &*existing };
        if poller.env == raw_env {
            let mut new_ref = ptr::null_mut();
            // SAFETY: `dispatch` is a live value of this env; the old reference is ours.
            unsafe {
                check(sys::napi_create_reference(
                    raw_env,
                    dispatch.raw(),
                    1,
                    &mut new_ref,
                ))?;
                sys::napi_delete_reference(raw_env, poller.dispatch.replace(new_ref));
            }
            return Ok(());
        }
    }
    let event_loop = env.get_uv_event_loop()?;
    let mut dispatch_ref = ptr::null_mut();
    let mut resource = ptr::null_mut();
    let mut resource_ref = ptr::null_mut();
    let mut name = ptr::null_mut();
    let mut context = ptr::null_mut();
    // SAFETY: every call gets this env and out-pointers to locals; the values passed are live
    // in the current handle scope (this is a Node-API call on the JavaScript thread).
    unsafe {
        check(sys::napi_create_reference(
            raw_env,
            dispatch.raw(),
            1,
            &mut dispatch_ref,
        ))?;
        check(sys::napi_create_object(raw_env, &mut resource))?;
        check(sys::napi_create_reference(
            raw_env,
            resource,
            1,
            &mut resource_ref,
        ))?;
        let text = "ipckit:poll";
        check(sys::napi_create_string_utf8(
            raw_env,
            text.as_ptr().cast(),
            text.len() as isize,
            &mut name,
        ))?;
        check(sys::napi_async_init(raw_env, resource, name, &mut context))?;
    }
    let poller: *const Poller = Box::into_raw(Box::new(Poller {
        env: raw_env,
        event_loop,
        dispatch: std::cell::Cell::new(dispatch_ref),
        resource: resource_ref,
        context,
        state: RefCell::new(State::default()),
    }));
    // SAFETY: the hook and its argument (this thread's poller, leaked until the hook is done)
    // stay valid until the hook removes itself; a null remove-handle out-pointer makes Node
    // pass the handle to the hook.
    let status = unsafe {
        sys::napi_add_async_cleanup_hook(
            raw_env,
            Some(on_env_cleanup),
            poller as *mut c_void,
            ptr::null_mut(),
        )
    };
    if let Err(e) = check(status) {
        // SAFETY: the poller was never published; nothing else refers to it.
        drop(unsafe { Box::from_raw(poller as *mut Poller) });
        return Err(e);
    }
    POLLER.with(|p| p.set(poller));
    Ok(())
}

fn this_poller(env: &Env) -> Result<&'static Poller> {
    let p = POLLER.with(|p| p.get());
    if p.is_null() {
        return Err(Error::new(
            Status::InvalidArg,
            "ipckit: pollInit was not called on this thread",
        ));
    }
    // SAFETY: a non-null POLLER is this thread's leaked poller, freed only after it is reset
    // to null (in the cleanup of its environment, on this thread).
    let poller = unsafe { &*p };
    if poller.env != env.raw() {
        return Err(Error::new(
            Status::InvalidArg,
            "ipckit: the poller belongs to another environment",
        ));
    }
    Ok(poller)
}

/// Watches `fd` for `events` (`UV_READABLE` 1 | `UV_WRITABLE` 2), replacing what it was
/// watched for; 0 stops watching (the fd stays known until [`poll_release`]). A watched fd
/// keeps the event loop alive. Throws the libuv error for an fd libuv cannot poll (`EBADF`,
/// `EPERM` for a regular file, `EEXIST` when the loop already watches it, e.g. as a
/// `net.Socket`).
#[napi]
pub fn poll_set(env: &Env, fd: i32, events: i32) -> Result<()> {
    let poller = this_poller(env)?;
    let existing = poller.state.borrow().watched.get(&fd).copied();
    let watched = match existing {
        Some(w) => w,
        None => {
            if events == 0 {
                return Ok(());
            }
            poller.add(env, fd)?
        }
    };
    // SAFETY: entries of `watched` stay allocated until their handle's close callback, which
    // runs only after the entry was removed from the map (in poll_release or the cleanup).
    let w = unsafe { &mut *watched.as_ptr() };
    if w.events == events {
        return Ok(());
    }
    // SAFETY: `w.handle` is an initialised, not closing, uv_poll_t of this thread's loop.
    let rc = unsafe {
        if events == 0 {
            ffi::uv_poll_stop(w.handle)
        } else {
            ffi::uv_poll_start(w.handle, events, on_poll)
        }
    };
    if rc < 0 {
        return Err(uv_error(env, rc, "uv_poll_start"));
    }
    w.events = events;
    poller.publish(fd, events);
    Ok(())
}

/// Stops watching `fd` and lets its libuv handle go; the fd may be closed once this returns.
/// Unknown fds are ignored.
#[napi]
pub fn poll_release(env: &Env, fd: i32) -> Result<()> {
    let poller = this_poller(env)?;
    let removed = poller.state.borrow_mut().watched.remove(&fd);
    if let Some(w) = removed {
        poller.close(w);
        poller.publish(fd, 0);
    }
    Ok(())
}

/// Shares `words` with the poller, two native-endian `i32` per fd: `[2 * fd]`, written by
/// JavaScript, the events the fd's waiters want; `[2 * fd + 1]`, written here, the events
/// libuv watches. After each dispatch (and the promise reactions it ran), the watch of the
/// dispatched fd is narrowed to what is wanted, so a loop of waits on one fd costs no call to
/// stop and restart it. Replaces an earlier array (which JavaScript copied into this one).
#[napi]
pub fn poll_share(env: &Env, words: Buffer) -> Result<()> {
    let poller = this_poller(env)?;
    let old = poller.state.borrow_mut().shared.replace(words);
    drop(old);
    Ok(())
}

/// The fds this thread's poller watches now (for some events); for tests.
#[napi]
pub fn poll_count() -> u32 {
    let p = POLLER.with(|p| p.get());
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in `this_poller`; the entries of the map are live (see poll_set).
    let state = unsafe { &*p }.state.borrow();
    state
        .watched
        .values()
        // SAFETY: entries of the map are live (see poll_set).
        .filter(|w| unsafe { (*w.as_ptr()).events } != 0)
        .count() as u32
}

impl Poller {
    /// Writes the events watched for `fd` into the shared words.
    fn publish(&self, fd: c_int, events: c_int) {
        let mut state = self.state.borrow_mut();
        let Some(words) = state.shared.as_mut() else {
            return;
        };
        let at = usize::try_from(fd)
            .ok()
            .and_then(|fd| fd.checked_mul(8))
            .map(|i| i + 4);
        if let Some(slot) = at.and_then(|i| words.get_mut(i..i + 4)) {
            slot.copy_from_slice(&events.to_ne_bytes());
        }
    }

    /// The events JavaScript wants for `fd`, from the shared words (0 when out of range).
    fn wanted(&self, fd: c_int) -> c_int {
        let state = self.state.borrow();
        let Some(words) = state.shared.as_ref() else {
            return 0;
        };
        let at = usize::try_from(fd).ok().and_then(|fd| fd.checked_mul(8));
        match at.and_then(|i| words.get(i..i + 4)) {
            Some(b) => c_int::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    /// After a dispatch: makes libuv watch `fd` for exactly what is wanted, if the handle
    /// `w` is still the fd's (JavaScript may have released it meanwhile).
    fn settle(&self, fd: c_int, w: *mut Watched) {
        let current = self.state.borrow().watched.get(&fd).map(|p| p.as_ptr());
        if current != Some(w) {
            return;
        }
        let want = self.wanted(fd) & 3;
        // SAFETY: `w` is in the map, so live and not closing (see poll_set).
        let watched = unsafe { &mut *w };
        if watched.events == want {
            return;
        }
        // SAFETY: as above; the handle is an initialised poll handle of this loop.
        let rc = unsafe {
            if want == 0 {
                ffi::uv_poll_stop(watched.handle)
            } else {
                ffi::uv_poll_start(watched.handle, want, on_poll)
            }
        };
        if rc == 0 {
            watched.events = want;
            self.publish(fd, want);
        }
    }

    /// A new, stopped poll handle for `fd`, recorded in the map.
    fn add(&self, env: &Env, fd: c_int) -> Result<NonNull<Watched>> {
        let layout = handle_layout()?;
        // SAFETY: the layout has a non-zero size.
        let handle = unsafe { std::alloc::alloc(layout) } as *mut ffi::uv_handle_t;
        if handle.is_null() {
            return Err(Error::new(
                Status::GenericFailure,
                "ENOMEM: out of memory, uv_poll_init",
            ));
        }
        // SAFETY: fcntl(F_GETFL) on any int is harmless (EBADF for a bad one).
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: `handle` is uv_handle_size(UV_POLL) bytes, suitably aligned; the loop is this
        // thread's loop.
        let rc = unsafe { ffi::uv_poll_init(self.event_loop, handle, fd) };
        if rc < 0 {
            // SAFETY: uv_poll_init failed, so libuv did not keep the memory; it is ours.
            unsafe { std::alloc::dealloc(handle.cast(), layout) };
            return Err(uv_error(env, rc, "uv_poll_init"));
        }
        if flags >= 0 && flags & libc::O_NONBLOCK == 0 {
            // libuv made the description non-blocking; put it back (it only polls this fd).
            // SAFETY: fcntl(F_SETFL) with the flags read above, on the fd just polled.
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
        }
        let watched = NonNull::from(Box::leak(Box::new(Watched {
            fd,
            handle,
            events: 0,
            poller: self,
        })));
        // SAFETY: the first field of every libuv handle is `void* data`, free for the user.
        unsafe { *(handle as *mut *mut c_void) = watched.as_ptr().cast() };
        self.state.borrow_mut().watched.insert(fd, watched);
        Ok(watched)
    }

    /// Closes the handle of an entry already removed from the map; its memory goes in the
    /// close callback.
    fn close(&self, w: NonNull<Watched>) {
        self.state.borrow_mut().closing += 1;
        // SAFETY: the entry is live (see poll_set) and its handle is not closing yet (an entry
        // leaves the map exactly once, right before this).
        unsafe { ffi::uv_close((*w.as_ptr()).handle, Some(on_close)) };
    }

    /// Calls the dispatch function with `(fd, events)` inside a callback scope.
    fn dispatch(&self, fd: c_int, events: c_int) {
        let env = self.env;
        // SAFETY: this runs on the JavaScript thread from a libuv callback, outside any other
        // Node-API call, with a live env; every value used is created in the handle scope
        // opened here, and the references are ours.
        unsafe {
            let mut scope = ptr::null_mut();
            if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
                return;
            }
            let mut func = ptr::null_mut();
            let mut recv = ptr::null_mut();
            let mut argv = [ptr::null_mut(); 2];
            let ok = sys::napi_get_reference_value(env, self.dispatch.get(), &mut func)
                == sys::Status::napi_ok
                && sys::napi_get_reference_value(env, self.resource, &mut recv)
                    == sys::Status::napi_ok
                && !func.is_null()
                && !recv.is_null()
                && sys::napi_create_int32(env, fd, &mut argv[0]) == sys::Status::napi_ok
                && sys::napi_create_int32(env, events, &mut argv[1]) == sys::Status::napi_ok;
            if ok {
                let mut result = ptr::null_mut();
                let status = sys::napi_make_callback(
                    env,
                    self.context,
                    recv,
                    func,
                    2,
                    argv.as_ptr(),
                    &mut result,
                );
                if status == sys::Status::napi_pending_exception {
                    // As for any callback from the loop: an exception is uncaught. (An
                    // environment that is being terminated has none to report: its calls
                    // fail without one, and nothing is rethrown then.)
                    let mut exception = ptr::null_mut();
                    let mut kind = sys::ValueType::napi_undefined;
                    if sys::napi_get_and_clear_last_exception(env, &mut exception)
                        == sys::Status::napi_ok
                        && !exception.is_null()
                        && sys::napi_typeof(env, exception, &mut kind) == sys::Status::napi_ok
                        && kind != sys::ValueType::napi_undefined
                    {
                        sys::napi_fatal_exception(env, exception);
                    }
                }
            }
            sys::napi_close_handle_scope(env, scope);
        }
    }
}

/// libuv's poll callback: the fd is ready (or polling failed, `status` < 0).
unsafe extern "C" fn on_poll(handle: *mut ffi::uv_handle_t, status: c_int, events: c_int) {
    // SAFETY: `data` was set to the handle's entry when it was initialised, and the entry
    // lives until the close callback, which libuv never runs before a pending poll callback.
    let (w, fd, poller) = unsafe {
        let w = *(handle as *mut *mut Watched);
        (w, (*w).fd, &*(*w).poller)
    };
    poller.dispatch(fd, if status < 0 { status } else { events });
    poller.settle(fd, w);
}

/// libuv's close callback: frees the handle and its entry; ends the environment's cleanup
/// after the last one.
unsafe extern "C" fn on_close(handle: *mut ffi::uv_handle_t) {
    // SAFETY: as in on_poll; after this callback libuv no longer refers to the handle.
    let w = unsafe { Box::from_raw(*(handle as *mut *mut Watched)) };
    // SAFETY: the poller outlives its handles (it is freed below only after the last close).
    let poller = unsafe { &*w.poller };
    if let Ok(layout) = handle_layout() {
        // SAFETY: allocated with this layout in `Poller::add`.
        unsafe { std::alloc::dealloc(handle.cast(), layout) };
    }
    let finish = {
        let mut state = poller.state.borrow_mut();
        state.closing -= 1;
        if state.closing == 0 && state.watched.is_empty() {
            state.teardown.take()
        } else {
            None
        }
    };
    if let Some(hook) = finish {
        // SAFETY: see `finish_teardown`.
        unsafe { finish_teardown(w.poller, hook) };
    }
}

/// The environment is ending: close every handle; the hook is removed (and the poller
/// freed) once the last close callback ran.
unsafe extern "C" fn on_env_cleanup(hook: sys::napi_async_cleanup_hook_handle, arg: *mut c_void) {
    let poller_ptr = arg as *const Poller;
    POLLER.with(|p| {
        if p.get() == poller_ptr {
            p.set(ptr::null());
        }
    });
    // SAFETY: `arg` is the poller registered with this hook, alive until finish_teardown.
    let poller = unsafe { &*poller_ptr };
    let all: Vec<NonNull<Watched>> = {
        let mut state = poller.state.borrow_mut();
        state.teardown = Some(hook);
        state.watched.drain().map(|(_, w)| w).collect()
    };
    for w in all {
        poller.close(w);
    }
    let done = {
        let mut state = poller.state.borrow_mut();
        if state.closing == 0 {
            state.teardown.take()
        } else {
            None
        }
    };
    if let Some(hook) = done {
        // SAFETY: see `finish_teardown`.
        unsafe { finish_teardown(poller_ptr, hook) };
    }
}

/// Frees the poller and tells Node.js its cleanup is done.
///
/// # Safety
/// `poller` is the leaked poller of the hook `hook`, with no handle left open or closing.
unsafe fn finish_teardown(poller: *const Poller, hook: sys::napi_async_cleanup_hook_handle) {
    // The Node-API references and async context go with the environment; only the memory of
    // the poller is ours.
    // SAFETY: per the contract, nothing refers to the poller any more.
    let poller = unsafe { Box::from_raw(poller as *mut Poller) };
    // The shared array is let go without a Node-API call (the environment is ending).
    if let Some(words) = poller.state.borrow_mut().shared.take() {
        std::mem::forget(words);
    }
    drop(poller);
    // SAFETY: `hook` is the live handle Node passed to our hook.
    unsafe { sys::napi_remove_async_cleanup_hook(hook) };
}

/// A payload handed to JavaScript as a `Buffer`: small ones as a copy in engine memory (no
/// finalizer, no external backing store to track: `Buffer::from(Vec)` cost more than the copy
/// for the messages of a ping-pong), large ones as the vector itself, without a copy.
pub struct Payload(pub Vec<u8>);

/// Largest payload copied rather than handed over.
const COPY_MAX: usize = 16 * 1024;

impl ToNapiValue for Payload {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        if val.0.len() > COPY_MAX {
            // SAFETY: the caller's contract (a valid env) is passed on.
            return unsafe { Buffer::to_napi_value(env, Buffer::from(val.0)) };
        }
        let mut data = ptr::null_mut();
        let mut result = ptr::null_mut();
        // SAFETY: `val.0` is valid for its length, which napi_create_buffer_copy copies from
        // before it returns; the out-pointers are locals.
        check(unsafe {
            sys::napi_create_buffer_copy(
                env,
                val.0.len(),
                val.0.as_ptr().cast(),
                &mut data,
                &mut result,
            )
        })?;
        Ok(result)
    }
}

/// `len` bytes of `mapping` at `offset` (the whole attachment, or a message in a channel's
/// ring) as an `ArrayBuffer`, without a copy (`napi_create_external_arraybuffer`); an
/// `InvalidArg` error for a range outside the mapping. `hold`, which holds a clone of `mapping`, is kept
/// until the engine frees the buffer, and then emptied by `let_go`: the memory stays mapped
/// while JavaScript can reach it. The caller empties `hold` itself only once it has detached this
/// very buffer (`ShmMapping::detach_buffer`), after which no JavaScript value reaches the
/// memory. Where the runtime refuses external buffers, napi-rs copies and runs the finalizer
/// at once: the clone drops, nothing dangles (the caller sees the copy's other address).
pub fn external_array_buffer<'env, H: 'static>(
    env: &'env Env,
    mapping: &ipckit::mmap::Mapping,
    offset: usize,
    len: usize,
    hold: H,
    let_go: fn(&H),
) -> Result<ArrayBuffer<'env>> {
    let inside = offset
        .checked_add(len)
        .is_some_and(|end| end <= mapping.len());
    if !inside {
        return Err(napi::Error::new(
            napi::Status::InvalidArg,
            "ipckit: a buffer range outside the mapping",
        ));
    }
    let ptr = mapping.as_ptr().wrapping_add(offset);
    // SAFETY: `ptr` is valid for `len` bytes (inside the mapping: checked above) for as long
    // as the mapping lives, and `hold` keeps a clone of it until the finalizer empties it
    // (see above).
    unsafe { ArrayBuffer::from_external(env, ptr, len, hold, move |_, h| let_go(&h)) }
}

// Descriptor numbers from JavaScript: the core takes `BorrowedFd`s and `OwnedFd`s, and the
// numbers JavaScript holds become them here, at the binding's edge, and nowhere else.

/// `fd`, a descriptor number that JavaScript holds, as a [`BorrowedFd`] for one call of `f`;
/// `EBADF` (syscall `fcntl`) for a negative number.
pub fn with_fd<T>(
    fd: i32,
    f: impl FnOnce(BorrowedFd<'_>) -> ipckit::Result<T>,
) -> ipckit::Result<T> {
    if fd < 0 {
        return Err(ipckit::Error::new(ipckit::Errno::EBADF, "fcntl"));
    }
    // SAFETY: JavaScript owns the descriptor, and the TypeScript layer closes it only in its
    // object's close(), on this thread, never inside a native call; the borrow ends with `f`.
    // A number that is not open makes the calls fail with EBADF, one that names another
    // descriptor acts on that one (as Node's own fs calls on a raw fd do): neither touches
    // memory.
    f(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// `fds`, descriptor numbers that JavaScript holds, borrowed for one call of `f` (see
/// [`with_fd`]); `EBADF` with `syscall` for a negative number among them.
pub fn with_fds<T>(
    fds: &[i32],
    syscall: &'static str,
    f: impl FnOnce(&[BorrowedFd<'_>]) -> ipckit::Result<T>,
) -> ipckit::Result<T> {
    if fds.iter().any(|&fd| fd < 0) {
        return Err(ipckit::Error::new(ipckit::Errno::EBADF, syscall));
    }
    // SAFETY: as in `with_fd`, for each number; the borrows end with `f`.
    let borrowed: Vec<BorrowedFd<'_>> = fds
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    f(&borrowed)
}

/// Takes over `fd`, a descriptor number that JavaScript gives up (to have it closed): `EBADF`
/// (syscall `close`) for a number that is not open.
pub fn take_fd(fd: i32) -> ipckit::Result<OwnedFd> {
    // SAFETY: F_GETFD takes no argument; it only tells whether `fd` is open.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(ipckit::Error::new(ipckit::Errno::EBADF, "close"));
    }
    // SAFETY: `fd` is open, and JavaScript gives it up: nothing uses the number after this
    // call, so the OwnedFd is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
