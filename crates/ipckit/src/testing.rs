//! Helpers for the unit tests: wait for a condition instead of assuming how long it takes (a
//! busy machine may run a thread much later than expected).

use std::time::{Duration, Instant};

/// How long a condition may take to come true on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `done` every millisecond until it holds; panics naming `what` after [`PATIENCE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The calling thread's id.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Waits until thread `tid` of this process is blocked in system call `nr`
/// (`/proc/self/task/<tid>/syscall` names the call a sleeping thread is in).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn wait_until_in_syscall(tid: i32, nr: libc::c_long) {
    let path = format!("/proc/self/task/{tid}/syscall");
    wait_until(&format!("thread {tid} is in system call {nr}"), || {
        std::fs::read_to_string(&path)
            .is_ok_and(|s| s.split_whitespace().next() == Some(nr.to_string().as_str()))
    });
}
