//! System V IPC limits, read at run time from `/proc/sys/kernel` (never baked in at build time:
//! an administrator may change them, and containers have their own).

/// Reads `/proc/sys/kernel/<name>` as a number; `None` where the file does not exist (not
/// Linux) or does not hold a number.
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert!(ipckit::limits::kernel_param("msgmax").unwrap() > 0);
/// ```
pub fn kernel_param(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The largest message `msgsnd(2)` accepts (`MSGMAX`); 8192, the Linux default, where it
/// cannot be read.
pub fn msgmax() -> usize {
    kernel_param("msgmax")
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(8192)
}

/// The default byte capacity of a new message queue (`MSGMNB`); 16384 where it cannot be read.
pub fn msgmnb() -> usize {
    kernel_param("msgmnb")
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(16384)
}
