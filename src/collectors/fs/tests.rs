use super::*;

fn m(dev: (u64, u64), root: &str, at: &str, fstype: &str) -> Mount {
    Mount {
        dev,
        root: root.into(),
        mount_point: at.into(),
        fstype: fstype.into(),
        source: format!("/dev/{}-{}", dev.0, dev.1),
    }
}

fn points(v: &[Mount]) -> Vec<&str> {
    v.iter().map(|m| m.mount_point.as_str()).collect()
}

#[test]
fn pseudo_remote_fuse_and_container_layers_are_left_out() {
    let table = vec![
        m((202, 1), "/", "/", "ext4"),
        m((0, 20), "/", "/proc", "proc"),
        m((0, 21), "/", "/sys", "sysfs"),
        m((0, 5), "/", "/dev", "devtmpfs"),
        m((0, 26), "/", "/sys/fs/cgroup", "cgroup2"),
        m((0, 40), "/", "/srv/nfs", "nfs4"),
        m((0, 41), "/", "/home/u/remote", "fuse.sshfs"),
        m((0, 42), "/", "/var/lib/docker/overlay2/x/merged", "overlay"),
        m((7, 0), "/", "/snap/core/1", "squashfs"),
        m((0, 43), "/", "/proc/xen", "xenfs"),
        m((202, 2), "/", "/boot", "xfs"),
    ];
    assert_eq!(points(&select(table, Which::Disks)), ["/", "/boot"]);
}

#[test]
fn memory_filesystems_only_when_asked() {
    let table = vec![
        m((202, 1), "/", "/", "ext4"),
        m((0, 25), "/", "/run", "tmpfs"),
        m((0, 27), "/", "/dev/shm", "tmpfs"),
    ];
    assert_eq!(points(&select(table.clone(), Which::Disks)), ["/"]);
    assert_eq!(
        points(&select(table, Which::Local)),
        ["/", "/dev/shm", "/run"]
    );
}

#[test]
fn one_entry_per_filesystem_the_root_mount_first_then_the_shortest() {
    let table = vec![
        // A bind of a subdirectory mounted before the filesystem's root.
        m((8, 1), "/srv/data", "/data", "ext4"),
        m((8, 1), "/", "/mnt/disk", "ext4"),
        m((8, 1), "/", "/m", "ext4"),
        // btrfs subvolumes share one device number.
        m((0, 50), "/@", "/", "btrfs"),
        m((0, 50), "/@home", "/home", "btrfs"),
    ];
    assert_eq!(points(&select(table, Which::Disks)), ["/", "/m"]);
}

#[test]
fn a_covered_mount_is_not_reported_only_the_one_on_top() {
    // /home's own partition covered by a tmpfs (systemd's ProtectHome=tmpfs):
    // statvfs("/home") would measure the tmpfs, so /home is not reported.
    let table = vec![
        m((202, 1), "/", "/", "ext4"),
        m((202, 3), "/", "/home", "ext4"),
        m((0, 60), "/", "/home", "tmpfs"),
    ];
    assert_eq!(points(&select(table.clone(), Which::Disks)), ["/"]);
    let l = select(table, Which::Local);
    assert_eq!(points(&l), ["/", "/home"]);
    assert_eq!(l[1].fstype, "tmpfs");
}

#[test]
fn the_systemd_sandbox_adds_nothing() {
    // ProtectSystem=strict binds / read-only over itself, PrivateTmp binds a
    // subdirectory over /tmp, ProtectKernelLogs binds an inaccessible node
    // of /run over /proc/kmsg.
    let table = vec![
        m((202, 1), "/", "/", "ext4"),
        m((0, 25), "/", "/run", "tmpfs"),
        m((202, 1), "/", "/", "ext4"),
        m(
            (202, 1),
            "/tmp/systemd-private-x-xen-guest-agent.service-y/tmp",
            "/tmp",
            "ext4",
        ),
        m((0, 25), "/systemd/inaccessible/chr", "/proc/kmsg", "tmpfs"),
    ];
    assert_eq!(points(&select(table.clone(), Which::Disks)), ["/"]);
    assert_eq!(points(&select(table, Which::Local)), ["/", "/run"]);
}

#[test]
fn this_systems_root_is_measured() {
    let root = m((0, 0), "/", "/", "ext4");
    let f = measure(&root).expect("statvfs /").expect("blocks");
    assert!(f.total_bytes > 0, "{f:?}");
    assert!(f.used_bytes <= f.total_bytes && f.available_bytes <= f.total_bytes);
}

#[test]
fn a_mount_point_that_is_gone_is_an_error_not_a_panic() {
    let gone = m((0, 0), "/", "/nonexistent/mount/point", "ext4");
    assert!(measure(&gone).is_err());
    let nul = m((0, 0), "/", "/a\0b", "ext4");
    assert!(measure(&nul).is_err());
}
