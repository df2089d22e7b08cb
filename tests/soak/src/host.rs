//! The facts of the machine the agent runs on that its tree reports
//! (distribution, kernel, memory, its own version), found here without the
//! agent's code: an independent reading of the same files, following
//! docs/xenstore-schema.md.

use std::collections::BTreeMap;
use std::path::Path;

/// The distribution as the contract says dom0 must see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Os {
    /// `data/os_distro`: the lowercase os-release `ID`, in
    /// xe-guest-utilities' convention.
    pub distro: String,
    /// `data/os_name`: `PRETTY_NAME`.
    pub name: String,
    /// The most precise version the system states (rfc `data/os/version`).
    pub version: String,
}

impl Os {
    /// `data/os_majorver`, `data/os_minorver`: the first two components,
    /// `0` when there is no minor.
    pub fn major_minor(&self) -> (String, String) {
        let mut parts = self.version.split('.');
        let major = parts.next().unwrap_or_default().to_string();
        let minor = parts.next().unwrap_or("0").to_string();
        (major, minor)
    }

    /// Read below `root` (`/`): os-release, refined by a more precise
    /// version that extends it (the first number of `VERSION`, Debian's
    /// `debian_version`). Other systems than those this soak runs on
    /// (Debian, Ubuntu and os-release distributions in general) are not
    /// modelled: the first check then says what differs.
    pub fn read(root: &Path) -> Result<Os, String> {
        let text = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| std::fs::read_to_string(root.join(p)).ok())
            .ok_or("no os-release: the soak cannot tell what data/os_* must say")?;
        let vars = parse_os_release(&text);
        let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
        let id = get("ID").to_ascii_lowercase();
        let distro = match id.as_str() {
            "ol" | "oracle" => "oracle".to_string(),
            "sles" | "sles_sap" => "sles".to_string(),
            "rockylinux" => "rocky".to_string(),
            _ => id.clone(),
        };
        let mut version = get("VERSION_ID");
        let first_number: String = get("VERSION")
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut refine = |better: &str| {
            let better = better.trim().trim_end_matches('.');
            if extends(better, &version) {
                version = better.to_string();
            }
        };
        refine(&first_number);
        if id == "debian" {
            if let Ok(dv) = std::fs::read_to_string(root.join("etc/debian_version")) {
                refine(&dv);
            }
        }
        Ok(Os {
            distro,
            name: get("PRETTY_NAME"),
            version,
        })
    }
}

/// `KEY=value` lines, values unquoted.
fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// Whether dotted version `better` has more components than `base` and
/// starts with all of them (`12.5` extends `12`).
fn extends(better: &str, base: &str) -> bool {
    let b: Vec<&str> = better.split('.').collect();
    let a: Vec<&str> = base.split('.').collect();
    !better.is_empty()
        && b.iter()
            .all(|c| !c.is_empty() && c.bytes().all(|x| x.is_ascii_digit()))
        && b.len() > a.len()
        && (base.is_empty() || b[..a.len()] == a[..])
}

/// Everything about the machine and the agent that the tree reports,
/// besides the network.
#[derive(Clone, Debug)]
pub struct Host {
    pub os: Os,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -s`.
    pub kernel_name: String,
    /// `MemTotal` of /proc/meminfo, in KiB.
    pub mem_total_kib: u64,
    /// The agent's version, as `--version` prints it (`1.0.0`).
    pub agent_version: String,
    /// The host name's first label and its DNS domain, when known
    /// (`data/host_name_dns`, `data/domain`).
    pub host_name: (String, Option<String>),
}

impl Host {
    /// Read the machine's facts and ask `agent` its version.
    pub fn read(agent: &Path) -> Result<Host, String> {
        let (kernel_name, kernel_release) = uname()?;
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
        let mem_total_kib = meminfo_field(&meminfo, "MemTotal")
            .ok_or("/proc/meminfo has no MemTotal: the soak cannot check the memory nodes")?;
        let out = crate::world::run(&agent.to_string_lossy(), &["--version"])?;
        let agent_version = out
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| format!("{agent:?} --version printed {out:?}"))?
            .to_string();
        Ok(Host {
            os: Os::read(Path::new("/"))?,
            kernel_release,
            kernel_name,
            mem_total_kib,
            agent_version,
            host_name: host_name(Path::new("/"))?,
        })
    }
}

/// The host name as the contract splits it (docs/xenstore-schema.md): a
/// name with dots is split at the first one; a short one takes its domain
/// from the first `/etc/hosts` line naming it (whose first name must then
/// be `<host>.<domain>`), and without such a line from the last `domain`
/// or `search` line of `/etc/resolv.conf` (its first word).
pub fn host_name(root: &Path) -> Result<(String, Option<String>), String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| format!("cannot read /proc/sys/kernel/hostname: {e}"))?;
    let name = name.trim().trim_matches('.');
    if let Some((host, domain)) = name.split_once('.') {
        return Ok((host.to_string(), dns_name(domain)));
    }
    let text = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    Ok((
        name.to_string(),
        short_name_domain(name, &text("etc/hosts"), &text("etc/resolv.conf")),
    ))
}

fn short_name_domain(host: &str, hosts: &str, resolv_conf: &str) -> Option<String> {
    if host.is_empty() {
        return None;
    }
    for line in hosts.lines() {
        let names: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .collect();
        if names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            let first = names[0].trim_end_matches('.');
            return match first.split_once('.') {
                Some((h, d)) if h.eq_ignore_ascii_case(host) => dns_name(d),
                _ => None,
            };
        }
    }
    let last = resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("domain" | "search")).then(|| w.next())
        })
        .next_back()
        .flatten();
    last.and_then(dns_name)
}

/// `d` without its trailing dot when it is a DNS name (labels of letters,
/// digits, `-`, `_`, 1 to 63 bytes, 253 in all).
fn dns_name(d: &str) -> Option<String> {
    let d = d.trim_end_matches('.');
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| d.to_string())
}

/// A `Key: N kB` line of /proc/meminfo.
pub fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn uname() -> Result<(String, String), String> {
    // SAFETY: uname fills the struct it is given; zeroed is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", std::io::Error::last_os_error()));
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((field(&u.sysname), field(&u.release)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_from(files: &[(&str, &str)]) -> Os {
        let root = std::env::temp_dir().join(format!(
            "xga-soak-os-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for (path, content) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let os = Os::read(&root).unwrap();
        let _ = std::fs::remove_dir_all(&root);
        os
    }

    #[test]
    fn debian_takes_the_point_release_from_debian_version() {
        let os = os_from(&[
            (
                "etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\n",
            ),
            ("etc/debian_version", "12.11\n"),
        ]);
        assert_eq!(os.distro, "debian");
        assert_eq!(os.version, "12.11");
        assert_eq!(os.major_minor(), ("12".into(), "11".into()));
        assert_eq!(os.name, "Debian GNU/Linux 12 (bookworm)");
    }

    #[test]
    fn ubuntu_takes_the_point_release_from_version_and_keeps_its_zero() {
        let os = os_from(&[
            (
                "etc/os-release",
                "ID=ubuntu\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n",
            ),
            ("etc/debian_version", "bookworm/sid\n"),
        ]);
        assert_eq!(os.version, "22.04.4");
        assert_eq!(os.major_minor(), ("22".into(), "04".into()));
    }

    #[test]
    fn no_minor_is_zero_and_ids_follow_xe_guest_utilities() {
        let os = os_from(&[("usr/lib/os-release", "ID=ol\nVERSION_ID=9\n")]);
        assert_eq!(os.distro, "oracle");
        assert_eq!(os.major_minor(), ("9".into(), "0".into()));
    }

    #[test]
    fn meminfo_fields() {
        let m = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable: 2000 kB\n";
        assert_eq!(meminfo_field(m, "MemTotal"), Some(24_000_000));
        assert_eq!(meminfo_field(m, "MemAvailable"), Some(2000));
        assert_eq!(meminfo_field(m, "Mem"), None);
    }

    #[test]
    fn a_short_names_domain_from_hosts_then_resolv_conf() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 vm-42.lab.example vm-42\n";
        let d = |h: &str, r: &str| short_name_domain("vm-42", h, r);
        assert_eq!(d(hosts, "search x.example"), Some("lab.example".into()));
        assert_eq!(d("127.0.1.1 vm-42\n", "search x.example"), None);
        assert_eq!(
            d("", "domain a.example\nsearch x.example y"),
            Some("x.example".into())
        );
        assert_eq!(d("", "search .\n"), None);
    }
}
