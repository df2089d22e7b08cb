//! Filesystems as dom0 reads them: std `data/volumes/<n>` (the layout of
//! xe-guest-utilities, read by Xen Orchestra's disk space plugin) and rfc
//! `data/fs/<n>`, with the agent in a mount namespace of its own where the
//! test mounts tmpfs filesystems. The machine's own filesystems are there
//! too (whatever they are), so the test checks its own mounts and the slots
//! around them.

use super::*;

/// How one schema lays out a filesystem: its directory and leaf names.
struct Layout {
    schema: &'static str,
    dir: &'static str,
    mount_point: &'static str,
}

const STD: Layout = Layout {
    schema: "std",
    dir: "data/volumes",
    mount_point: "mount_points/0",
};

const RFC: Layout = Layout {
    schema: "rfc",
    dir: "data/fs",
    mount_point: "mount-point",
};

impl Layout {
    /// Mount point → slot, from a tree.
    fn slots(&self, tree: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
        let prefix = format!("{}/", self.dir);
        tree.iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                let (n, leaf) = rest.split_once('/')?;
                (leaf == self.mount_point).then(|| (v.clone(), n.parse().expect("a slot")))
            })
            .collect()
    }

    /// The leaves of slot `n`.
    fn entry(&self, tree: &BTreeMap<String, String>, n: usize) -> BTreeMap<String, String> {
        let prefix = format!("{}/{n}/", self.dir);
        tree.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
            .collect()
    }

    /// What a fresh tmpfs of `mib` MiB mounted at `at` from `source` is.
    fn tmpfs(&self, at: &str, source: &str, mib: u64) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self.schema {
            "std" => vec![
                ("name", source.into()),
                ("filesystem", "tmpfs".into()),
                ("size", (mib << 20).to_string()),
                ("free", (mib << 20).to_string()),
                ("mount_points/0", at.into()),
            ],
            _ => vec![
                ("mount-point", at.into()),
                ("type", "tmpfs".into()),
                ("device", source.into()),
                ("total-kib", (mib << 10).to_string()),
                ("used-kib", "0".into()),
                ("available-kib", (mib << 10).to_string()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[test]
#[ignore = "needs root (network and mount namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn std_volumes_follow_mounts_with_stable_slots_a_cap_and_no_unchanged_writes() {
    mounts_reach_dom0(&STD);
}

#[test]
#[ignore = "needs root (network and mount namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn rfc_filesystems_follow_mounts_with_stable_slots_a_cap_and_no_unchanged_writes() {
    mounts_reach_dom0(&RFC);
}

fn mounts_reach_dom0(l: &Layout) {
    let test = format!("{}_filesystems", l.schema);
    let Some(t) = Scenario::new(&test) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("xga-{test}-{}", std::process::id()));
    let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(at(d)).expect("mkdir");
    }
    let common = [
        "--network",
        "none",
        "--schema",
        l.schema,
        "--filesystems",
        "local",
    ];
    // The machine's filesystems, as the agent will see them at start.
    let machine = l.slots(&t.dry_run(&common));
    assert!(
        machine.values().all(|&n| n < machine.len()),
        "the first slots are dense: {machine:?}"
    );
    let cap = (machine.len() + 2).to_string();
    let mut args = common.to_vec();
    args.extend(["--memory-interval", "1", "--max-filesystems", &cap]);
    let agent = t.agent_in_own_mounts(&args);
    started(&agent);
    t.wait_until(WAIT, |tree| l.slots(tree).len() == machine.len());

    // A mount takes the lowest free slot, with every leaf.
    t.in_mounts(
        &agent,
        &["mount", "-t", "tmpfs", "-o", "size=4m", "xga-a", &at("a")],
    );
    let tree = t.wait_until(WAIT, |tree| l.slots(tree).contains_key(&at("a")));
    let slot_a = l.slots(&tree)[&at("a")];
    assert_eq!(slot_a, machine.len());
    assert_eq!(l.entry(&tree, slot_a), l.tmpfs(&at("a"), "xga-a", 4));

    // Up to the cap: b is published, c (after b in mount point order) is
    // skipped, said once in the log.
    t.in_mounts(
        &agent,
        &["mount", "-t", "tmpfs", "-o", "size=2m", "xga-b", &at("b")],
    );
    t.in_mounts(
        &agent,
        &["mount", "-t", "tmpfs", "-o", "size=2m", "xga-c", &at("c")],
    );
    agent.wait_log("--max-filesystems", WAIT);
    let tree = t.wait_until(WAIT, |tree| l.slots(tree).contains_key(&at("b")));
    let slots = l.slots(&tree);
    assert_eq!(slots.len(), machine.len() + 2, "{slots:?}");
    assert!(!slots.contains_key(&at("c")), "{slots:?}");
    assert_eq!(agent.count("--max-filesystems"), 1);

    // Filling a: only its space is written, nothing else of its entry.
    t.xs.reset_ops();
    t.in_mounts(
        &agent,
        &[
            "dd",
            "if=/dev/zero",
            &format!("of={}", at("a/fill")),
            "bs=1M",
            "count=1",
            "status=none",
        ],
    );
    let tree = t.wait_until(WAIT, |tree| {
        l.entry(tree, slot_a) != l.tmpfs(&at("a"), "xga-a", 4)
    });
    let changed: BTreeSet<String> = l
        .entry(&tree, slot_a)
        .into_iter()
        .filter(|(k, v)| l.tmpfs(&at("a"), "xga-a", 4).get(k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    let written: BTreeSet<String> = t
        .guest_ops(MsgType::Write)
        .iter()
        .filter_map(|o| o.path.as_deref())
        .filter_map(|p| {
            p.split_once(&format!("/{}/{slot_a}/", l.dir))
                .map(|(_, leaf)| leaf.to_string())
        })
        .collect();
    assert_eq!(written, changed, "only the changed leaves are written");
    let expected: &[&str] = if l.schema == "std" {
        &["free"]
    } else {
        &["available-kib", "used-kib"]
    };
    assert_eq!(changed, expected.iter().map(|s| s.to_string()).collect());

    // Unmounting a frees its slot, which the skipped c takes; b stays.
    let slot_b = slots[&at("b")];
    t.in_mounts(&agent, &["umount", &at("a")]);
    let tree = t.wait_until(WAIT, |tree| l.slots(tree).contains_key(&at("c")));
    let slots = l.slots(&tree);
    assert_eq!(slots.get(&at("a")), None);
    assert_eq!(slots[&at("c")], slot_a);
    assert_eq!(slots[&at("b")], slot_b);
    assert_eq!(l.entry(&tree, slot_a), l.tmpfs(&at("c"), "xga-c", 2));

    for d in ["b", "c"] {
        t.in_mounts(&agent, &["umount", &at(d)]);
    }
    let tree = t.wait_until(WAIT, |tree| l.slots(tree).len() == machine.len());
    assert_eq!(l.slots(&tree).len(), machine.len());
    agent.assert_no_errors();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Many mounts stay within the node quota: the default cap publishes 16
/// volumes, the others are skipped, and xenstore never refuses a write.
#[test]
#[ignore = "needs root (network and mount namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn many_mounts_are_capped_within_the_quota() {
    let Some(t) = Scenario::new("many_mounts_are_capped_within_the_quota") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("xga-many-{}", std::process::id()));
    let agent = t.agent_in_own_mounts(&["--network", "none", "--filesystems", "local"]);
    started(&agent);
    let mut script = String::new();
    for i in 0..60 {
        let d = dir.join(format!("m{i:02}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        script += &format!("mount -t tmpfs -o size=1m xga-m{i} {} && ", d.display());
    }
    script += "true";
    t.in_mounts(&agent, &["sh", "-c", &script]);
    agent.wait_log("--max-filesystems", WAIT);
    let tree = t.wait_until(WAIT, |tree| STD.slots(tree).len() == 16);
    let slots = STD.slots(&tree);
    assert_eq!(slots.len(), 16, "{slots:?}");
    assert!(slots.values().all(|&n| n < 16), "{slots:?}");
    let volume_nodes = tree
        .keys()
        .filter(|k| k.starts_with("data/volumes/"))
        .count();
    assert!(volume_nodes <= 16 * 5, "{volume_nodes} nodes");
    assert_eq!(
        agent.count("--max-filesystems"),
        1,
        "the cap is logged once"
    );
    agent.assert_no_errors();
    drop(agent); // its mount namespace, and the mounts, go with it
    let _ = std::fs::remove_dir_all(&dir);
}
