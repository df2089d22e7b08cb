//! Project tasks that must not drift from the code: the man page and the
//! shell completions are generated from `xen_guest_agent::cli::Cli`, the
//! same definition `--help` prints, so packages never ship stale docs.
//!
//! ```text
//! cargo run -p xtask -- man <dir>          # <dir>/xen-guest-agent.8
//! cargo run -p xtask -- completions <dir>  # bash, zsh and fish files in <dir>
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use xen_guest_agent::cli::Cli;

/// The installed binary's name, which the man page and completions describe.
const BIN: &str = "xen-guest-agent";

const USAGE: &str = "usage: cargo run -p xtask -- <man|completions> <dir>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [task, dir] if task == "man" => write_man(Path::new(dir)),
        [task, dir] if task == "completions" => write_completions(Path::new(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sections clap does not know about but a daemon's man page needs: what
/// the environment changes, which files it touches, how it is started.
const EXTRA_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBXENSTORE_SCHEMA\fR
Same as \fB\-\-schema\fR (the option wins when both are given).
.TP
\fBRUST_LOG\fR
Log filter, e.g. \fBdebug\fR or \fBxen_guest_agent::publishers=trace\fR; overrides \fB\-\-loglevel\fR.
.TP
\fBNOTIFY_SOCKET\fR
Set by systemd for \fBType=notify\fR services: \fBREADY=1\fR is sent there after the first complete publication.
.TP
\fBXEN_GUEST_AGENT_ARGS\fR
Not read by the agent: the systemd unit appends it to the command line; set it in \fI/etc/default/xen\-guest\-agent\fR. (FreeBSD: \fBxen_guest_agent_args\fR in \fI/etc/rc.conf\fR.)
.SH FILES
.TP
\fI/dev/xen/xenbus\fR, \fI/run/xenstored/socket\fR
The xenstore connection (FreeBSD: \fI/dev/xen/xenstore\fR).
.TP
\fI/proc\fR, \fI/sys\fR
Where the facts are read (Linux); \fI/proc/sys/kernel/hostname\fR signals host name changes.
.TP
\fI/etc/hosts\fR, \fI/etc/resolv.conf\fR
The DNS domain of a short host name (the first \fIhosts\fR line naming it, else the resolver's local domain); read again at each host name change.
.TP
\fI/etc/default/xen\-guest\-agent\fR, \fI/etc/sysconfig/xen\-guest\-agent\fR
Environment of the systemd service (\fBXEN_GUEST_AGENT_ARGS\fR, \fBXENSTORE_SCHEMA\fR, \fBRUST_LOG\fR).
.SH SEE ALSO
\fBxenstore\-ls\fR(1), \fBsystemd.service\fR(5), \fBsyslog\fR(3)
"#;

/// The man page, in section 8 (a system daemon), as roff.
fn man_page() -> io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(Cli::command()).section("8");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn write_man(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{BIN}.8"));
    std::fs::write(&path, man_page()?)?;
    Ok(vec![path])
}

/// bash, zsh and fish: the shells whose distributions have a standard
/// directory for packaged completions.
fn write_completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| clap_complete::generate_to(shell, &mut Cli::command(), BIN, dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// roff escapes '-' as "\-"; undo it to compare with option names.
    fn man_text() -> String {
        String::from_utf8(man_page().unwrap())
            .unwrap()
            .replace("\\-", "-")
    }

    #[test]
    fn man_page_mentions_every_long_option() {
        let man = man_text();
        let longs: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        assert!(longs.len() > 5, "too few options found: {longs:?}");
        for long in longs.iter().chain([&"--help".into(), &"--version".into()]) {
            assert!(man.contains(long.as_str()), "man page lacks {long}");
        }
    }

    #[test]
    fn man_page_is_section_8_and_documents_the_environment() {
        let man = man_text();
        assert!(man.contains(".TH xen-guest-agent 8"), "{man}");
        for var in ["XENSTORE_SCHEMA", "RUST_LOG", "XEN_GUEST_AGENT_ARGS"] {
            assert!(man.contains(var), "man page lacks {var}");
        }
    }

    #[test]
    fn completions_are_written_for_three_shells() {
        let dir = std::env::temp_dir().join(format!("xtask-compl-{}", std::process::id()));
        let files = write_completions(&dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "xen-guest-agent.bash",
                "_xen-guest-agent",
                "xen-guest-agent.fish"
            ]
        );
        let bash = std::fs::read_to_string(&files[0]).unwrap();
        assert!(bash.contains("--memory-interval"), "{bash}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
