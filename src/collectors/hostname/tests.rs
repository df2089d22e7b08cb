use super::*;

fn none() -> String {
    panic!("no file is read for a fully qualified name")
}

fn h(host: &str, domain: Option<&str>) -> HostName {
    HostName {
        host: host.into(),
        domain: domain.map(Into::into),
    }
}

#[test]
fn a_fully_qualified_name_is_split_at_its_first_dot() {
    assert_eq!(
        resolve("vm-42.lab.example", none, none),
        h("vm-42", Some("lab.example"))
    );
    assert_eq!(
        resolve("vm-42.lab.example.", none, none),
        h("vm-42", Some("lab.example"))
    );
    // Not a DNS domain: the host alone.
    assert_eq!(resolve("vm-42.bad domain", none, none), h("vm-42", None));
}

#[test]
fn a_short_name_takes_its_domain_from_the_first_hosts_line_naming_it() {
    let hosts = "127.0.0.1 localhost\n# 10.0.0.1 vm-42.wrong.example vm-42\n\
                 127.0.1.1\tvm-42.lab.example vm-42 # Debian's installer\n\
                 10.0.0.2 vm-42.later.example vm-42\n";
    assert_eq!(
        resolve("vm-42", || hosts.into(), || "search other.example".into()),
        h("vm-42", Some("lab.example"))
    );
    // Case-insensitive, as the resolver's comparison.
    assert_eq!(
        domain_for("VM-42", "127.0.1.1 vm-42.Lab.Example vm-42", ""),
        Some("Lab.Example".into())
    );
}

#[test]
fn a_hosts_line_naming_the_host_without_a_domain_decides_there_is_none() {
    // `hostname -d` is empty here: files answer before DNS.
    let hosts = "127.0.1.1 vm-42\n";
    assert_eq!(domain_for("vm-42", hosts, "search lab.example\n"), None);
    // Another canonical name (an alias of a different host) is no domain.
    let hosts = "10.0.0.5 db.lab.example vm-42\n";
    assert_eq!(domain_for("vm-42", hosts, "domain lab.example\n"), None);
}

#[test]
fn without_a_hosts_line_the_resolvers_local_domain_is_used() {
    let hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
    assert_eq!(
        domain_for(
            "vm-42",
            hosts,
            "nameserver 10.0.0.1\nsearch lab.example corp.example\n"
        ),
        Some("lab.example".into())
    );
    // The last of `domain` and `search` wins, as in glibc's res_init.
    assert_eq!(
        domain_for("vm-42", "", "search a.example\ndomain b.example\n"),
        Some("b.example".into())
    );
    assert_eq!(
        domain_for(
            "vm-42",
            "",
            "domain b.example\nsearch a.example b.example\n"
        ),
        Some("a.example".into())
    );
    // The root, a missing value or no file: no domain.
    assert_eq!(domain_for("vm-42", "", "search .\n"), None);
    assert_eq!(domain_for("vm-42", "", "domain\n"), None);
    assert_eq!(domain_for("vm-42", "", ""), None);
}

#[test]
fn no_name_reads_nothing_and_has_no_domain() {
    assert_eq!(resolve("", none, none), h("", None));
}

#[test]
fn read_uses_the_files_under_the_given_directory() {
    let dir = std::env::temp_dir().join(format!("xga-etc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let name = kernel_host_name().unwrap();
    let host = name.split('.').next().unwrap().to_owned();
    std::fs::write(
        dir.join("hosts"),
        format!("127.0.1.1 {host}.from-hosts.example {host}\n"),
    )
    .unwrap();
    let got = read(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got.host, host);
    if name.contains('.') {
        assert_eq!(got.domain.as_deref(), name.split_once('.').map(|(_, d)| d));
    } else if !host.is_empty() {
        assert_eq!(got.domain.as_deref(), Some("from-hosts.example"));
    }
}
