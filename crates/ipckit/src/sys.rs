//! What the `libc` crate lacks for some targets, in one place: [`libc`] stands in for the
//! `libc` crate in the modules of the core that call something the crate lacks for a target
//! (`use crate::sys::libc;`), with everything the crate has plus those declarations, so that
//! the calls read the same on every platform. Built for macOS and musl here (`cargo check --target ...`), never run on
//! macOS: see the README.
//!
//! The crate's reserved signal numbers live here too, below every module that uses them:
//! [`rtmin`], [`rtmax`], [`wake_signal`] (re-exported as [`crate::wait::wake_signal`]) and
//! [`mask_signal`] (re-exported as [`crate::signal::mask_signal`]).

use std::sync::Once;

/// The `libc` crate, plus the declarations it lacks for the target being built.
#[allow(non_camel_case_types)] // the C names
pub(crate) mod libc {
    pub use ::libc::*;

    #[cfg(target_vendor = "apple")]
    pub use apple_msg::*;
    #[cfg(target_vendor = "apple")]
    pub use apple_poll::*;
    #[cfg(target_vendor = "apple")]
    pub use apple_signal::*;
    #[cfg(all(target_os = "linux", target_env = "musl", target_pointer_width = "64"))]
    pub use musl_sem::*;

    // Exported by glibc and musl; the libc crate does not bind them (mq_notify: for glibc
    // only).
    #[cfg(not(target_vendor = "apple"))]
    extern "C" {
        /// [`semtimedop(2)`](https://man7.org/linux/man-pages/man2/semtimedop.2.html).
        pub fn semtimedop(
            semid: c_int,
            sops: *mut sembuf,
            nsops: size_t,
            timeout: *const timespec,
        ) -> c_int;
    }
    #[cfg(target_os = "linux")]
    extern "C" {
        /// [`mq_notify(3)`](https://man7.org/linux/man-pages/man3/mq_notify.3.html).
        pub fn mq_notify(mqdes: mqd_t, sevp: *const sigevent) -> c_int;
    }

    /// The `libc` crate binds no message queue calls for Apple targets (macOS has them, in
    /// `<sys/msg.h>`): the declarations with Apple's layouts (used by [`crate::msg`] and
    /// [`crate::sysv_list`]).
    #[cfg(target_vendor = "apple")]
    mod apple_msg {
        use ::libc::*;

        /// `MSG_NOERROR` of Apple's `<sys/msg.h>` (octal 010000): truncate a long message.
        pub const MSG_NOERROR: c_int = 0o10000;

        /// `struct __msqid_ds_new` of Apple's `<sys/msg.h>`, the `struct msqid_ds` that
        /// `msgctl` takes (the header wraps it in `#pragma pack(4)`).
        #[repr(C, packed(4))]
        #[derive(Clone, Copy)]
        pub struct msqid_ds {
            /// Permissions (`struct __ipc_perm_new`).
            pub msg_perm: ipc_perm,
            /// Reserved for the kernel.
            pub msg_first: i32,
            /// Reserved for the kernel.
            pub msg_last: i32,
            /// Bytes in the queue (`msglen_t`, an unsigned long).
            pub msg_cbytes: c_ulong,
            /// Messages in the queue (`msgqnum_t`, an unsigned long).
            pub msg_qnum: c_ulong,
            /// Capacity in bytes (`msglen_t`).
            pub msg_qbytes: c_ulong,
            /// Pid of the last `msgsnd`.
            pub msg_lspid: pid_t,
            /// Pid of the last `msgrcv`.
            pub msg_lrpid: pid_t,
            /// Time of the last `msgsnd`.
            pub msg_stime: time_t,
            /// Reserved.
            pub msg_pad1: i32,
            /// Time of the last `msgrcv`.
            pub msg_rtime: time_t,
            /// Reserved.
            pub msg_pad2: i32,
            /// Time of the last change.
            pub msg_ctime: time_t,
            /// Reserved.
            pub msg_pad3: i32,
            /// Reserved.
            pub msg_pad4: [i32; 4],
        }

        extern "C" {
            /// [`msgget(2)`](https://man7.org/linux/man-pages/man2/msgget.2.html).
            pub fn msgget(key: key_t, msgflg: c_int) -> c_int;
            /// [`msgsnd(2)`](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
            pub fn msgsnd(msqid: c_int, msgp: *const c_void, msgsz: size_t, msgflg: c_int)
                -> c_int;
            /// [`msgrcv(2)`](https://man7.org/linux/man-pages/man2/msgrcv.2.html).
            pub fn msgrcv(
                msqid: c_int,
                msgp: *mut c_void,
                msgsz: size_t,
                msgtyp: c_long,
                msgflg: c_int,
            ) -> ssize_t;
            /// [`msgctl(2)`](https://man7.org/linux/man-pages/man2/msgctl.2.html).
            pub fn msgctl(msqid: c_int, cmd: c_int, buf: *mut msqid_ds) -> c_int;
        }

        // The layout of <sys/msg.h> on 64-bit macOS: a 24-byte ipc_perm, then 4-byte packing (116).
        #[cfg(target_pointer_width = "64")]
        const _: () = {
            use std::mem::{offset_of, size_of};
            assert!(size_of::<msqid_ds>() == 116);
            assert!(offset_of!(msqid_ds, msg_cbytes) == 32);
            assert!(offset_of!(msqid_ds, msg_lspid) == 56);
            assert!(offset_of!(msqid_ds, msg_stime) == 64);
            assert!(offset_of!(msqid_ds, msg_ctime) == 88);
        };
    }

    /// The epoll vocabulary the bookkeeping of [`crate::poller`] speaks (interest bits,
    /// control operations, the ready event), which its kqueue calls translate; the values are
    /// Linux's.
    #[cfg(target_vendor = "apple")]
    mod apple_poll {
        use ::libc::c_int;

        /// Readable.
        pub const EPOLLIN: c_int = 0x001;
        /// Writable.
        pub const EPOLLOUT: c_int = 0x004;
        /// An error is pending (`EV_ERROR`).
        pub const EPOLLERR: c_int = 0x008;
        /// End of file (`EV_EOF`).
        pub const EPOLLHUP: c_int = 0x010;
        /// One-shot: every kqueue filter registered here is `EV_ONESHOT`.
        pub const EPOLLONESHOT: c_int = 1 << 30;
        /// Register an fd.
        pub const EPOLL_CTL_ADD: c_int = 1;
        /// Unregister an fd.
        pub const EPOLL_CTL_DEL: c_int = 2;
        /// Change an fd's interests.
        pub const EPOLL_CTL_MOD: c_int = 3;
        /// A ready fd and what it is ready for.
        #[derive(Clone, Copy)]
        pub struct epoll_event {
            /// `EPOLLIN` | `EPOLLOUT` | `EPOLLERR` | `EPOLLHUP`.
            pub events: u32,
            /// The fd.
            pub u64: u64,
        }
    }

    /// What [`crate::signal`] names the glibc/musl way: the thread's errno slot (`__error`
    /// there) and the `si_code` values of Apple's `<sys/signal.h>`.
    #[cfg(target_vendor = "apple")]
    mod apple_signal {
        use ::libc::c_int;

        pub use ::libc::__error as __errno_location;
        /// Sent by `kill`.
        pub const SI_USER: c_int = 0x10001;
        /// Sent by `sigqueue`.
        pub const SI_QUEUE: c_int = 0x10002;
        /// Sent by a message queue notification.
        pub const SI_MESGQ: c_int = 0x10005;
    }

    /// The libc crate has no `semid_ds` for musl: on the 64-bit musl targets, the kernel's
    /// `struct semid64_ds` (which musl passes through unchanged on 64-bit targets; x86_64
    /// keeps two reserved words that aarch64 drops).
    #[cfg(all(target_os = "linux", target_env = "musl", target_pointer_width = "64"))]
    mod musl_sem {
        use ::libc::*;

        /// `struct semid_ds` of a 64-bit Linux kernel.
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct semid_ds {
            /// Permissions.
            pub sem_perm: ipc_perm,
            /// Time of the last `semop`.
            pub sem_otime: i64,
            #[cfg(target_arch = "x86_64")]
            __unused1: c_ulong,
            /// Time of the last change.
            pub sem_ctime: i64,
            #[cfg(target_arch = "x86_64")]
            __unused2: c_ulong,
            /// Semaphores in the set.
            pub sem_nsems: c_ulong,
            __unused3: c_ulong,
            __unused4: c_ulong,
        }

        // The kernel's sizes: 104 bytes on x86_64, 88 on aarch64 (a 48-byte ipc64_perm first).
        const _: () = assert!(
            std::mem::size_of::<semid_ds>()
                == if cfg!(target_arch = "x86_64") {
                    104
                } else {
                    88
                }
        );
    }
}

// The signal numbers: the real-time range, and the two real-time signals this crate reserves.

/// The lowest real-time signal the C library leaves to applications (`SIGRTMIN`).
///
/// ```
/// assert!(ipckit::signal::rtmin() > 31);
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// Where there are no real-time signals (macOS): 32, one past the last signal, with
/// [`rtmax`] below it, so the real-time range is empty and no `SIGRTMIN+N` name exists.
///
/// ```
/// # #[cfg(target_os = "macos")]
/// assert!(ipckit::signal::rtmin() > ipckit::signal::rtmax());
/// ```
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn rtmin() -> i32 {
    32
}

/// The highest real-time signal (`SIGRTMAX`).
///
/// ```
/// assert!(ipckit::signal::rtmax() >= ipckit::signal::rtmin() + 8);
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Where there are no real-time signals (macOS): 31, the last standard signal, below
/// [`rtmin`] (an empty range).
///
/// ```
/// # #[cfg(target_os = "macos")]
/// assert_eq!(ipckit::signal::rtmax(), 31);
/// ```
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn rtmax() -> i32 {
    31
}

/// The signal used to interrupt a waiting thread: a real-time signal on Linux (`SIGRTMAX - 6`),
/// which this crate reserves; `SIGURG` elsewhere (ignored by default, rarely used).
pub fn wake_signal() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::SIGRTMAX() - 6
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        libc::SIGURG
    }
}

extern "C" fn on_wake_signal(_: libc::c_int) {
    // Nothing to do: the signal exists only to make a blocking call return EINTR.
}

pub(crate) fn install_wake_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; every field we
        // rely on is set below before use.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_wake_signal as *const () as libc::sighandler_t;
        // No SA_RESTART: the point of the signal is to interrupt the call.
        action.sa_flags = 0;
        // SAFETY: sa_mask is a valid sigset_t owned by `action`.
        unsafe { libc::sigfillset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised; the handler is async-signal-safe (it does
        // nothing); the old action is not needed.
        let rc = unsafe { libc::sigaction(wake_signal(), &action, std::ptr::null_mut()) };
        debug_assert_eq!(rc, 0, "sigaction of the wake signal failed");
    });
}

/// Leaves only the wake signal deliverable to the calling thread, so that process-directed
/// signals (SIGINT, SIGCHLD, ...) go to Node's own threads and never interrupt a wait here.
pub(crate) fn mask_all_but_wake_signal() {
    // SAFETY: `set` is a local sigset_t initialised by sigfillset before any other use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, wake_signal());
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The private signal that changes another thread's mask when a real-time signal is confined
/// for an ordered signal watch (`SIGRTMAX - 7`, reserved like [`wake_signal`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn mask_signo() -> i32 {
    libc::SIGRTMAX() - 7
}

/// The private real-time signal this crate sends a thread to change its signal mask, when a
/// real-time signal is confined for an ordered [`Watch`](crate::signal::Watch) (`SIGRTMAX - 7` on Linux; `None`
/// where there are no real-time signals). Reserved: it cannot be watched or ignored.
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert_eq!(ipckit::signal::mask_signal(), Some(ipckit::signal::rtmax() - 7));
/// ```
pub fn mask_signal() -> Option<i32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        Some(mask_signo())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}
