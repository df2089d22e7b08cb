//! "Is this a Xen guest?": asked before connecting, so that running the
//! agent elsewhere ends at once with a useful message instead of retrying
//! forever.

/// Whether the machine runs on Xen.
#[cfg(target_os = "linux")]
pub fn is_xen_guest() -> bool {
    use std::path::Path;
    std::fs::read_to_string("/sys/hypervisor/type").is_ok_and(|t| t.trim() == "xen")
        || Path::new("/proc/xen").exists()
        || Path::new("/dev/xen/xenbus").exists()
}

/// Whether the machine runs on Xen (`kern.vm_guest` is `xen`).
#[cfg(target_os = "freebsd")]
pub fn is_xen_guest() -> bool {
    crate::sys::sysctl_string(c"kern.vm_guest").is_ok_and(|v| v == "xen")
}

/// Elsewhere, let the connection tell.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub fn is_xen_guest() -> bool {
    true
}

/// The message of the agent's exit on a machine that is not a Xen guest.
#[cfg(target_os = "linux")]
pub const NOT_XEN: &str = "this machine is not a Xen guest (/sys/hypervisor/type is not \"xen\", \
    and there is no /proc/xen nor /dev/xen/xenbus), so there is no xenstore to publish in: \
    use --publisher stdout to see what the agent collects (or --dry-run for the xenstore \
    writes it would make)";

/// The message of the agent's exit on a machine that is not a Xen guest.
#[cfg(not(target_os = "linux"))]
pub const NOT_XEN: &str = "this machine is not a Xen guest (sysctl kern.vm_guest is not \"xen\"), \
    so there is no xenstore to publish in: use --publisher stdout to see what the agent \
    collects (or --dry-run for the xenstore writes it would make)";
