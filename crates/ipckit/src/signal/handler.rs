//! The signal handler, the only code here that runs in signal context: async-signal-safe
//! work only (atomics, `write`, errno save/restore), then the chain to the handler it
//! replaced; with the tables it reads (the watches' slots, the replaced actions) and its
//! installation.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::action::{current_action, set_action};
#[cfg(any(target_os = "linux", target_os = "android"))]
use super::confine;
use super::info::{Record, HAS_SENDER, HAS_VALUE, RECORD};
use super::table::MAX_SIGNAL;
use crate::error::{check, Result};
use crate::sys::libc;

/// Watches that may exist at once in a process ([`Watch::new`](super::Watch::new) fails with `EMFILE` beyond,
/// naming this limit): the slots of the table the signal handler reads, which must be a fixed
/// array since a handler may not allocate.
///
/// ```
/// assert!(ipckit::signal::MAX_WATCHES >= 64);
/// ```
pub const MAX_WATCHES: usize = 128;

/// One watch as the handler sees it: the write end of its pipe and the signals it follows.
pub(super) struct Slot {
    pub(super) fd: AtomicI32,
    /// Bit `n - 1` set: follows signal `n`.
    pub(super) mask: AtomicU64,
    /// Records that did not fit in the pipe.
    pub(super) dropped: AtomicU64,
    /// Handlers between reading `fd` and finishing their write; the fd is closed only after
    /// the slot was cleared and this was seen at zero.
    pub(super) busy: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
const EMPTY_SLOT: Slot = Slot {
    fd: AtomicI32::new(-1),
    mask: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    busy: AtomicUsize::new(0),
};

pub(super) static SLOTS: [Slot; MAX_WATCHES] = [EMPTY_SLOT; MAX_WATCHES];

/// The action our handler replaced for a signal, and whether to call it.
struct Prev {
    action: libc::sigaction,
    chain: bool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
const NO_PREV: AtomicPtr<Prev> = AtomicPtr::new(std::ptr::null_mut());

/// Per signal: the replaced action while our handler is installed, else null. A record is
/// never freed (a handler on another thread may still read it); one small allocation per
/// installation.
static PREV: [AtomicPtr<Prev>; MAX_SIGNAL + 1] = [NO_PREV; MAX_SIGNAL + 1];

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sender_known(signo: i32, code: i32) -> bool {
    // kill, sigqueue, a message queue notification, tgkill; and SIGCHLD's child.
    matches!(
        code,
        libc::SI_USER | libc::SI_QUEUE | libc::SI_MESGQ | libc::SI_TKILL
    ) || signo == libc::SIGCHLD
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sender_known(signo: i32, code: i32) -> bool {
    // kill, sigqueue, a message queue notification (no tgkill there); and SIGCHLD's child.
    matches!(code, libc::SI_USER | libc::SI_QUEUE | libc::SI_MESGQ) || signo == libc::SIGCHLD
}

/// The handler: async-signal-safe only (atomics, `write`, errno save/restore), then the chain.
extern "C" fn on_signal(signo: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    let errno = unsafe { *libc::__errno_location() };
    if (1..=MAX_SIGNAL as i32).contains(&signo) && !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        let si = unsafe { &*info };
        let mut record = Record {
            signo,
            code: si.si_code,
            ..Record::default()
        };
        if sender_known(signo, si.si_code) {
            // SAFETY: for these codes the kernel filled the pid/uid members of the union.
            unsafe {
                record.pid = si.si_pid();
                record.uid = si.si_uid();
            }
            record.flags |= HAS_SENDER;
        }
        if si.si_code == libc::SI_QUEUE || si.si_code == libc::SI_MESGQ {
            // SAFETY: sigqueue (or a POSIX message queue notification, with the sigev_value
            // registered by mq_notify) filled si_value; its int member is the low 4 bytes.
            record.value = unsafe { si.si_value().sival_ptr } as usize as u32 as i32;
            record.flags |= HAS_VALUE;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        confine::on_delivery(signo, ctx);
        let bit = 1u64 << (signo - 1);
        for slot in &SLOTS {
            if slot.mask.load(Ordering::SeqCst) & bit == 0 {
                continue;
            }
            slot.busy.fetch_add(1, Ordering::SeqCst);
            // Checked again once counted as busy: the slot may have been released (and even
            // reused by another watch) since the first look.
            let fd = if slot.mask.load(Ordering::SeqCst) & bit != 0 {
                slot.fd.load(Ordering::SeqCst)
            } else {
                -1
            };
            if fd < 0 {
                slot.busy.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            // SAFETY: `fd` is the write end of a watch's pipe; it stays open until the slot
            // is cleared and its `busy` count was seen at 0, which cannot happen while we run.
            // `record` is RECORD readable bytes.
            let n = unsafe { libc::write(fd, (&record as *const Record).cast(), RECORD) };
            if n != RECORD as isize {
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
            slot.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
    if (0..=MAX_SIGNAL as i32).contains(&signo) {
        let prev = PREV[signo as usize].load(Ordering::SeqCst);
        // SAFETY: non-null records are leaked boxes, valid forever.
        if let Some(prev) = unsafe { prev.as_ref() } {
            // SAFETY: the saved action came from the kernel; a handler other than SIG_DFL /
            // SIG_IGN has the signature its SA_SIGINFO flag says, and was meant to be called
            // in signal context with these arguments.
            unsafe { chain(prev, signo, info, ctx) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Calls the action our handler replaced, as signal-hook-registry's `Prev::execute` does.
///
/// # Safety
/// Must be called from a signal handler for `signo` with its arguments.
unsafe fn chain(prev: &Prev, signo: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let handler = prev.action.sa_sigaction;
    if !prev.chain || handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return;
    }
    if prev.action.sa_flags & libc::SA_SIGINFO != 0 {
        type Action = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        // SAFETY: SA_SIGINFO handlers have this signature (caller's contract).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, Action>(handler) };
        f(signo, info, ctx);
    } else {
        type Handler = extern "C" fn(libc::c_int);
        // SAFETY: plain handlers have this signature (caller's contract).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, Handler>(handler) };
        f(signo);
    }
}

pub(super) fn our_handler() -> libc::sighandler_t {
    on_signal as *const () as libc::sighandler_t
}

/// Installs our handler for `signo`, saving what it replaces.
pub(super) fn install(signo: i32, chain: bool) -> Result<()> {
    let old = current_action(signo)?;
    if old.sa_sigaction == our_handler() {
        return Ok(());
    }
    // Stored before the switch, so a signal arriving right after it chains correctly.
    let prev = Box::into_raw(Box::new(Prev { action: old, chain }));
    PREV[signo as usize].store(prev, Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is "no flags"; every field used is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = our_handler();
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: sa_mask is a valid sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // The mask signal waits while the handler runs: a delivery that a thread took just before
    // its mask was changed is recorded before the thread answers (see `confine`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: as above; mask_signal is a valid signal number.
    unsafe {
        libc::sigaddset(&mut action.sa_mask, confine::mask_signal())
    };
    // SAFETY: `action` is complete; `replaced` is writable.
    let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let rc = unsafe { libc::sigaction(signo, &action, &mut replaced) };
    check(rc, "sigaction")?;
    if replaced.sa_sigaction != old.sa_sigaction {
        // Someone changed it between our query and our switch: chain to what we replaced.
        let prev = Box::into_raw(Box::new(Prev {
            action: replaced,
            chain,
        }));
        PREV[signo as usize].store(prev, Ordering::SeqCst);
    }
    Ok(())
}

/// Puts back the saved action of `signo` if our handler is still the one installed.
pub(super) fn uninstall(signo: i32) {
    let prev = PREV[signo as usize].load(Ordering::SeqCst);
    // SAFETY: non-null records are leaked boxes, valid forever.
    let Some(prev) = (unsafe { prev.as_ref() }) else {
        return;
    };
    if let Ok(current) = current_action(signo) {
        if current.sa_sigaction == our_handler() {
            // Nothing useful to do if it fails: the handler stays and records go nowhere.
            let _ = set_action(signo, &prev.action);
        }
    }
    PREV[signo as usize].store(std::ptr::null_mut(), Ordering::SeqCst);
}

/// Detaches a slot from the handler and waits until no handler can still be using its fd.
pub(super) fn release_slot(slot: usize) {
    SLOTS[slot].mask.store(0, Ordering::SeqCst);
    SLOTS[slot].fd.store(-1, Ordering::SeqCst);
    while SLOTS[slot].busy.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}
