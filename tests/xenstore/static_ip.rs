//! XAPI's static IP setting end to end: the test xenstored writes what
//! xenopsd writes under `xenserver/device/vif/<id>/static-ip-setting/`,
//! the agent (`--allow static-ip`, root in the namespace: it has
//! CAP_NET_ADMIN) applies it to the interface with that MAC, answers in
//! `error-code`/`error-msg`, acknowledges by removing `enabled`, and the
//! addresses it publishes follow.

use std::path::PathBuf;

use super::*;

const MAC0: &str = "00:16:3e:00:00:00";
const FLAG: &str = "control/feature-static-ip-setting";

fn setting_dir(id: u32) -> String {
    format!("xenserver/device/vif/{id}/static-ip-setting")
}

/// Write a setting as xenopsd does at plug time: the whole directory,
/// owned by the guest with no access for others (`rwperm_for_guest`),
/// `error-code` 0 and an empty `error-msg`; `enabled` and `enabled6`
/// last (what a reader acts upon).
fn plug_setting(t: &Scenario, id: u32, mac: &str, leaves: &[(&str, &str)]) {
    let dir = setting_dir(id);
    let guest = format!("n{}", t.xs.domid());
    t.xs.mkdir(&format!("xenserver/device/vif/{id}")).unwrap();
    t.xs.set_perms(&format!("xenserver/device/vif/{id}"), "n5")
        .unwrap();
    t.xs.mkdir(&dir).unwrap();
    t.xs.set_perms(&dir, &guest).unwrap();
    let mut all = vec![("mac", mac), ("error-code", "0"), ("error-msg", "")];
    let enabled = |(k, _): &&(&str, &str)| k.starts_with("enabled");
    all.extend(leaves.iter().filter(|l| !enabled(l)));
    all.extend(leaves.iter().filter(enabled));
    for (leaf, value) in all {
        let path = format!("{dir}/{leaf}");
        t.xs.write(&path, value).unwrap();
        t.xs.set_perms(&path, &guest).unwrap();
    }
}

/// A live change as xenopsd makes it: the address nodes first (removed
/// when absent), `enabled` last.
fn change_setting(t: &Scenario, id: u32, v6: bool, leaves: &[(&str, &str)]) {
    let dir = setting_dir(id);
    let (e, a, g) = if v6 {
        ("enabled6", "address6", "gateway6")
    } else {
        ("enabled", "address", "gateway")
    };
    for leaf in [a, g] {
        match leaves.iter().find(|(k, _)| *k == leaf) {
            Some((_, v)) => t.xs.write(&format!("{dir}/{leaf}"), v).unwrap(),
            None => {
                let _ = t.xs.rm(&format!("{dir}/{leaf}"));
            }
        }
    }
    let mode = leaves.iter().find(|(k, _)| *k == e).expect("a mode").1;
    t.xs.write(&format!("{dir}/{e}"), mode).unwrap();
}

fn ip_out(t: &Scenario, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", &t.netns])
        .args(args)
        .output()
        .expect("ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The interface's global addresses of a family, as `a/p` strings.
fn addresses(t: &Scenario, dev: &str, family: &str) -> Vec<String> {
    let out = ip_out(
        t,
        &["-j", family, "addr", "show", "dev", dev, "scope", "global"],
    );
    let links: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut found = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            found.push(format!(
                "{}/{}",
                a["local"].as_str().unwrap(),
                a["prefixlen"]
            ));
        }
    }
    found.sort();
    found
}

/// The default routes of a family, as `via dev` pairs.
fn defaults(t: &Scenario, family: &str) -> Vec<String> {
    let out = ip_out(t, &["-j", family, "route", "show", "default"]);
    let routes: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    routes
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "via {} dev {}",
                r["gateway"].as_str().unwrap_or("-"),
                r["dev"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Wait until the answer says `code` and `enabled`/`enabled6` are gone;
/// its `error-msg`.
fn wait_answer(t: &Scenario, id: u32, code: &str) -> String {
    wait_answer_saying(t, id, code, "")
}

/// [`wait_answer`], until `error-msg` also contains `text`.
fn wait_answer_saying(t: &Scenario, id: u32, code: &str, text: &str) -> String {
    let dir = setting_dir(id);
    let deadline = Instant::now() + WAIT;
    loop {
        let c = t.xs.read(&format!("{dir}/error-code"));
        let msg = t.xs.read(&format!("{dir}/error-msg")).unwrap_or_default();
        let pending =
            t.xs.exists(&format!("{dir}/enabled")) || t.xs.exists(&format!("{dir}/enabled6"));
        if c.as_deref() == Some(code) && !pending && !msg.is_empty() && msg.contains(text) {
            return msg;
        }
        assert!(
            Instant::now() < deadline,
            "no answer {code} under {dir}:\n{}",
            t.xs.dump(&format!("{}/{dir}", t.xs.home()))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `cond` holds of the interface's state.
fn wait_net(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not reached");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An empty root for the network managers' files (`--system-root`): the
/// machine's own /etc and /run are never touched.
fn system_root(t: &Scenario) -> PathBuf {
    let root = t.sysfs.with_extension("netconf");
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Make `control/` guest-writable, as xenopsd does (libxl's, the test
/// xenstored's default, is read-only to the guest).
fn xenopsd_control(t: &Scenario) {
    t.xs.set_perms("control", &format!("n{}", t.xs.domid()))
        .unwrap();
}

/// The agent allowing static IP settings, its network managers' files
/// under `root`, and a system bus that is not there (never the machine's:
/// its networkd must not be reconfigured).
fn agent_allowing(t: &Scenario, root: &std::path::Path) -> Agent {
    let root_arg = root.to_str().unwrap().to_string();
    let bus = format!("unix:path={}", root.join("no-bus").display());
    t.agent_with_env(
        &["--allow", "static-ip", "--system-root", &root_arg],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
    )
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_static_ipv4_setting_is_applied_answered_and_published() {
    let Some(t) = Scenario::new("a_static_ipv4_setting_is_applied_answered_and_published") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    // Present before the agent starts, as after a boot; the MAC in upper
    // case (compared case-insensitively).
    plug_setting(
        &t,
        0,
        &MAC0.to_uppercase(),
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
            ("enabled6", "0"),
        ],
    );
    xenopsd_control(&t);
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root);
    let msg = wait_answer(&t, 0, "0");
    assert!(
        msg.contains("ipv4 static 192.0.2.10/24 via 192.0.2.1"),
        "{msg}"
    );
    assert!(msg.contains("on eth0"), "{msg}");
    // No network manager under the empty root: said so.
    assert!(msg.contains("applied at once only"), "{msg}");
    assert_eq!(addresses(&t, "eth0", "-4"), ["192.0.2.10/24"]);
    assert_eq!(defaults(&t, "-4"), ["via 192.0.2.1 dev eth0"]);
    // The reported tree follows, and the feature is advertised.
    t.wait_until(WAIT, |tree| {
        tree.get("attr/vif/0/ipv4/0").map(String::as_str) == Some("192.0.2.10")
            && !tree.contains_key("attr/vif/0/ipv4/1")
    });
    assert_eq!(t.xs.read(FLAG).as_deref(), Some("1"));
    // The audit line.
    agent.wait_log(
        "static IP setting xenserver/device/vif/0/static-ip-setting: ipv4 static",
        WAIT,
    );

    // A live change: another address, no gateway.
    change_setting(
        &t,
        0,
        false,
        &[("enabled", "1"), ("address", "198.51.100.7/25")],
    );
    wait_answer_saying(&t, 0, "0", "198.51.100.7/25");
    wait_net("the new address", || {
        addresses(&t, "eth0", "-4") == ["198.51.100.7/25"]
    });
    assert_eq!(defaults(&t, "-4"), Vec::<String>::new());

    // Back to DHCP: the agent's own static address goes (no DHCP client
    // here to bring another).
    change_setting(&t, 0, false, &[("enabled", "2")]);
    wait_answer_saying(&t, 0, "0", "ipv4 dhcp");
    wait_net("no static address", || {
        addresses(&t, "eth0", "-4").is_empty()
    });
    agent.assert_running();
    agent.assert_no_errors();

    // Stopping withdraws the advertisement.
    drop(agent);
    assert!(!t.xs.exists(FLAG), "{FLAG} left behind");
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn ipv6_static_and_autoconf_and_leave_alone() {
    let Some(t) = Scenario::new("ipv6_static_and_autoconf_and_leave_alone") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    t.ip(&["addr", "add", "2001:db8::99/64", "dev", "eth0", "nodad"]);
    plug_setting(&t, 0, MAC0, &[("enabled", "0"), ("enabled6", "0")]);
    xenopsd_control(&t);
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root);
    wait_net("advertised", || t.xs.read(FLAG).as_deref() == Some("1"));
    agent.wait_log("requests", WAIT);

    // enabled6 = 1: IPv6 only; IPv4 is left as it is.
    change_setting(
        &t,
        0,
        true,
        &[
            ("enabled6", "1"),
            ("address6", "2001:db8:1::10/64"),
            ("gateway6", "fe80::1"),
        ],
    );
    wait_answer_saying(&t, 0, "0", "ipv6 static 2001:db8:1::10/64 via fe80::1");
    wait_net("the IPv6 address", || {
        addresses(&t, "eth0", "-6") == ["2001:db8:1::10/64"]
    });
    assert_eq!(addresses(&t, "eth0", "-4"), ["10.0.0.2/24"]);
    assert_eq!(defaults(&t, "-6"), ["via fe80::1 dev eth0"]);
    t.wait_until(WAIT, |tree| {
        tree.get("attr/vif/0/ipv6/0").map(String::as_str) == Some("2001:db8:1::10")
    });

    // Autoconf: the agent's static address and route go.
    change_setting(&t, 0, true, &[("enabled6", "2")]);
    wait_answer_saying(&t, 0, "0", "ipv6 autoconf");
    wait_net("no static IPv6", || addresses(&t, "eth0", "-6").is_empty());
    assert_eq!(defaults(&t, "-6"), Vec::<String>::new());

    // enabled = 0 (as at every plug): nothing touched, nothing written.
    t.xs.reset_ops();
    t.xs.write(&format!("{}/enabled", setting_dir(0)), "0")
        .unwrap();
    t.xs.write(&format!("{}/error-code", setting_dir(0)), "7")
        .unwrap();
    agent.wait_log("xenstore watch fired", WAIT);
    std::thread::sleep(Duration::from_millis(500)); // (nothing is to happen: give it the time)
    assert_eq!(
        t.xs.read(&format!("{}/error-code", setting_dir(0)))
            .as_deref(),
        Some("7")
    );
    assert_eq!(
        t.xs.read(&format!("{}/enabled", setting_dir(0))).as_deref(),
        Some("0")
    );
    assert_eq!(addresses(&t, "eth0", "-4"), ["10.0.0.2/24"]);
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn untrusted_invalid_and_unmatched_requests_change_nothing() {
    let Some(t) = Scenario::new("untrusted_invalid_and_unmatched_requests_change_nothing") else {
        return;
    };
    t.add_vif(0);
    t.add_vif(1);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    // VIF 0: a third domain (9) may write the request.
    plug_setting(
        &t,
        0,
        MAC0,
        &[("enabled", "1"), ("address", "192.0.2.10/24")],
    );
    t.xs.set_perms(&format!("{}/address", setting_dir(0)), "n5,w9")
        .unwrap();
    // VIF 1: a gateway off the link.
    plug_setting(
        &t,
        1,
        "00:16:3e:00:00:01",
        &[
            ("enabled", "1"),
            ("address", "192.0.2.11/24"),
            ("gateway", "203.0.113.1"),
        ],
    );
    // VIF 2: nobody has this MAC.
    plug_setting(&t, 2, "00:16:3e:00:00:77", &[("enabled", "2")]);
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root);
    let msg = wait_answer(&t, 0, "2");
    assert!(msg.contains("domain other than dom0"), "{msg}");
    let msg = wait_answer(&t, 1, "1");
    assert!(
        msg.contains("gateway 203.0.113.1 is not on the link"),
        "{msg}"
    );
    let msg = wait_answer(&t, 2, "101");
    assert!(msg.contains("no interface"), "{msg}");
    // libxl's control/ is read-only to the guest: the advertisement is
    // refused (said once, at info level) and requests are handled anyway.
    assert!(!t.xs.exists(FLAG));
    agent.wait_log("as is normal under xl/libxl", WAIT);
    assert_eq!(addresses(&t, "eth0", "-4"), ["10.0.0.2/24"]);
    assert!(addresses(&t, "eth1", "-4").is_empty());
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn the_same_request_seen_again_changes_nothing() {
    let Some(t) = Scenario::new("the_same_request_seen_again_changes_nothing") else {
        return;
    };
    t.add_vif(0);
    plug_setting(
        &t,
        0,
        MAC0,
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root);
    wait_answer(&t, 0, "0");
    t.wait_until(WAIT, |tree| {
        tree.get("attr/vif/0/ipv4/0").map(String::as_str) == Some("192.0.2.10")
    });
    // As after a resume or migration: xenopsd writes it all again. It is
    // answered anew (error-msg was reset), and the interface is not
    // touched: the agent publishes no address change.
    t.xs.reset_ops();
    plug_setting(
        &t,
        0,
        MAC0,
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    let msg = wait_answer(&t, 0, "0");
    assert!(
        msg.contains("ipv4 static 192.0.2.10/24 via 192.0.2.1"),
        "{msg}"
    );
    let writes: Vec<_> = t
        .guest_ops(MsgType::Write)
        .into_iter()
        .chain(t.guest_ops(MsgType::Rm))
        .filter_map(|o| o.path)
        .filter(|p| p.contains("/attr/vif/"))
        .collect();
    assert!(
        writes.is_empty(),
        "the address was touched again: {writes:?}"
    );
    assert_eq!(addresses(&t, "eth0", "-4"), ["192.0.2.10/24"]);
    assert_eq!(defaults(&t, "-4"), ["via 192.0.2.1 dev eth0"]);
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn without_the_option_nothing_is_advertised_or_read() {
    let Some(t) = Scenario::new("without_the_option_nothing_is_advertised_or_read") else {
        return;
    };
    t.add_vif(0);
    plug_setting(
        &t,
        0,
        MAC0,
        &[("enabled", "1"), ("address", "192.0.2.10/24")],
    );
    let agent = t.agent(&[]);
    agent.wait_log("first complete publication done", WAIT);
    assert!(!t.xs.exists(FLAG));
    assert_eq!(
        t.xs.read(&format!("{}/enabled", setting_dir(0))).as_deref(),
        Some("1")
    );
    assert!(addresses(&t, "eth0", "-4").is_empty());
    let reads = t.guest_ops(MsgType::Read);
    assert!(
        !reads.iter().any(|r| r
            .path
            .as_deref()
            .is_some_and(|p| p.contains("static-ip-setting"))),
        "{reads:?}"
    );
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_networkd_interface_gets_a_drop_in_and_dhcp_back_removes_it() {
    let Some(t) = Scenario::new("a_networkd_interface_gets_a_drop_in_and_dhcp_back_removes_it")
    else {
        return;
    };
    t.add_vif(0);
    // systemd-networkd runs eth0 with DHCP (its state file and .network
    // file, under --system-root).
    let root = system_root(&t);
    let network = root.join("etc/systemd/network");
    std::fs::create_dir_all(&network).unwrap();
    std::fs::write(
        network.join("50-eth0.network"),
        "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n",
    )
    .unwrap();
    let links = root.join("run/systemd/netif/links");
    std::fs::create_dir_all(&links).unwrap();
    std::fs::write(
        links.join(t.ifindex("eth0").to_string()),
        "ADMIN_STATE=configured\nOPER_STATE=routable\nNETWORK_FILE=/etc/systemd/network/50-eth0.network\n",
    )
    .unwrap();
    plug_setting(
        &t,
        0,
        MAC0,
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    let mut agent = agent_allowing(&t, &root);
    let msg = wait_answer(&t, 0, "0");
    let dropin = network.join("50-eth0.network.d/90-xen-guest-agent.conf");
    assert!(
        msg.contains(&format!("lasting through {}", dropin.display())),
        "{msg}"
    );
    let text = std::fs::read_to_string(&dropin).unwrap();
    for line in ["DHCP=ipv6", "Address=192.0.2.10/24", "Gateway=192.0.2.1"] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    assert_eq!(addresses(&t, "eth0", "-4"), ["192.0.2.10/24"]);
    // The administrator's file is left as it was.
    assert_eq!(
        std::fs::read_to_string(network.join("50-eth0.network")).unwrap(),
        "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n"
    );

    // Back to DHCP: the file does DHCP itself, the drop-in goes.
    change_setting(&t, 0, false, &[("enabled", "2")]);
    let msg = wait_answer_saying(&t, 0, "0", "ipv4 dhcp");
    assert!(
        msg.contains(&format!("removed {}", dropin.display())),
        "{msg}"
    );
    assert!(!dropin.exists());
    wait_net("no static address", || {
        addresses(&t, "eth0", "-4").is_empty()
    });
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn an_ifupdown_interface_gets_a_file_of_its_own_never_an_edit_of_the_administrators() {
    let Some(t) = Scenario::new("an_ifupdown_interface_gets_a_file_of_its_own") else {
        return;
    };
    t.add_vif(0);
    t.add_vif(1);
    let root = system_root(&t);
    let etc = root.join("etc/network");
    std::fs::create_dir_all(etc.join("interfaces.d")).unwrap();
    // eth1 is the administrator's (a stanza in their file); eth0 is up
    // through ifupdown (its state file) without a stanza of its own.
    let interfaces = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nallow-hotplug eth1\niface eth1 inet dhcp\n";
    std::fs::write(etc.join("interfaces"), interfaces).unwrap();
    std::fs::create_dir_all(root.join("run/network")).unwrap();
    std::fs::write(
        root.join("run/network/ifstate"),
        "lo=lo\neth0=eth0\neth1=eth1\n",
    )
    .unwrap();
    plug_setting(
        &t,
        0,
        MAC0,
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    plug_setting(
        &t,
        1,
        "00:16:3e:00:00:01",
        &[("enabled", "1"), ("address", "198.51.100.5/24")],
    );
    let mut agent = agent_allowing(&t, &root);

    let msg = wait_answer(&t, 0, "0");
    let ours = etc.join("interfaces.d/xen-guest-agent-eth0");
    assert!(
        msg.contains(&format!("lasting through {}", ours.display())),
        "{msg}"
    );
    let text = std::fs::read_to_string(&ours).unwrap();
    for line in [
        "iface eth0 inet static",
        "address 192.0.2.10/24",
        "gateway 192.0.2.1",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == line),
            "{line} not in:\n{text}"
        );
    }
    // eth1: applied at once, the administrator's file not edited, and the
    // answer says so.
    let msg = wait_answer(&t, 1, "0");
    assert!(
        msg.contains("applied at once, but not made lasting"),
        "{msg}"
    );
    assert!(msg.contains("interfaces"), "{msg}");
    assert_eq!(addresses(&t, "eth1", "-4"), ["198.51.100.5/24"]);
    assert_eq!(
        std::fs::read_to_string(etc.join("interfaces")).unwrap(),
        interfaces
    );
    assert!(!etc.join("interfaces.d/xen-guest-agent-eth1").exists());
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_networkmanager_interface_gets_a_profile_of_its_own_and_dhcp_back_removes_it() {
    let Some(t) = Scenario::new("a_networkmanager_interface_gets_a_profile_of_its_own") else {
        return;
    };
    t.add_vif(0);
    // NetworkManager manages eth0 (its device state) with the guest's own
    // DHCP profile, a keyfile in /etc.
    let root = system_root(&t);
    let profiles = root.join("etc/NetworkManager/system-connections");
    std::fs::create_dir_all(&profiles).unwrap();
    let guest_uuid = "0b6e3a54-6f1b-4a57-9d3c-2c1f3e9a8b01";
    let guest_profile = format!(
        "[connection]\nid=Wired\nuuid={guest_uuid}\ntype=ethernet\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n"
    );
    std::fs::write(profiles.join("Wired.nmconnection"), &guest_profile).unwrap();
    let devices = root.join("run/NetworkManager/devices");
    std::fs::create_dir_all(&devices).unwrap();
    std::fs::write(
        devices.join(t.ifindex("eth0").to_string()),
        format!("[device]\nmanaged=true\nconnection-uuid={guest_uuid}\n"),
    )
    .unwrap();
    plug_setting(
        &t,
        0,
        MAC0,
        &[
            ("enabled", "1"),
            ("address", "192.0.2.10/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    let mut agent = agent_allowing(&t, &root);
    let msg = wait_answer(&t, 0, "0");
    let ours = profiles.join("xen-guest-agent-00163e000000.nmconnection");
    assert!(
        msg.contains(&format!("lasting through {}", ours.display())),
        "{msg}"
    );
    // No bus here: the answer says NetworkManager takes it at its next start.
    assert!(msg.contains("NetworkManager not told"), "{msg}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "NetworkManager ignores a keyfile others may read"
    );
    let text = std::fs::read_to_string(&ours).unwrap();
    for line in [
        "uuid=5ca1ab1e-0000-8000-8000-00163e000000",
        "interface-name=eth0",
        "autoconnect-priority=100",
        "mac-address=00:16:3E:00:00:00",
        "method=manual",
        "address1=192.0.2.10/24",
        "gateway=192.0.2.1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    assert_eq!(addresses(&t, "eth0", "-4"), ["192.0.2.10/24"]);
    // The guest's own profile is left as it was.
    assert_eq!(
        std::fs::read_to_string(profiles.join("Wired.nmconnection")).unwrap(),
        guest_profile
    );

    // Back to DHCP: the guest's profile does DHCP itself, the agent's goes.
    change_setting(&t, 0, false, &[("enabled", "2")]);
    let msg = wait_answer_saying(&t, 0, "0", "ipv4 dhcp");
    assert!(
        msg.contains(&format!("removed {}", ours.display())),
        "{msg}"
    );
    assert!(!ours.exists());
    wait_net("no static address", || {
        addresses(&t, "eth0", "-4").is_empty()
    });
    agent.assert_running();
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn after_a_migration_the_new_domain_is_advertised_and_its_requests_trusted() {
    let Some(t) = Scenario::new("after_a_migration_the_new_domain_is_advertised") else {
        return;
    };
    t.add_vif(0);
    xenopsd_control(&t);
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root);
    wait_net("advertised", || t.xs.read(FLAG).as_deref() == Some("1"));
    // A new domain (id 9): a new home without the advertisement, and
    // xenopsd's nodes owned by the new id.
    t.xs.new_domain(9);
    xenopsd_control(&t);
    wait_net("advertised again", || {
        t.xs.read(FLAG).as_deref() == Some("1")
    });
    plug_setting(
        &t,
        0,
        MAC0,
        &[("enabled", "1"), ("address", "192.0.2.30/24")],
    );
    let msg = wait_answer(&t, 0, "0");
    assert!(msg.contains("ipv4 static 192.0.2.30/24"), "{msg}");
    assert_eq!(addresses(&t, "eth0", "-4"), ["192.0.2.30/24"]);
    agent.assert_running();
    agent.assert_no_errors();
}
