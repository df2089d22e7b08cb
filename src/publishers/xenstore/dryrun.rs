//! The dry run (`--dry-run`): the xenstore operations a schema would make,
//! printed on standard output, applied to an in-memory tree so that the
//! next change set is planned against what a real xenstore would hold.
//!
//! Lines are `write <path> "<value>"` and `rm <path>`, values quoted and
//! escaped as Rust strings (they are printable ASCII in practice).

use std::io::{self, Write};

use super::backend::{Backend, Tx};
use super::memtree::MemTree;

/// Prints operations instead of making them.
#[derive(Default)]
pub struct DryRun {
    tree: MemTree,
}

impl DryRun {
    fn print(&self, line: std::fmt::Arguments) -> io::Result<()> {
        // A closed stdout is reported like a broken connection: the
        // publisher logs it once and carries on.
        writeln!(io::stdout().lock(), "{line}")
    }
}

impl Backend for DryRun {
    fn connect(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn disconnect(&mut self) {}
    fn begin(&mut self) -> io::Result<Tx> {
        Ok(1)
    }
    fn commit(&mut self, _tx: Tx) -> io::Result<()> {
        Ok(())
    }
    fn abort(&mut self, _tx: Tx) {}
    fn read(&mut self, _tx: Tx, path: &str) -> io::Result<Option<String>> {
        Ok(self.tree.read(path).map(str::to_owned))
    }
    fn directory(&mut self, _tx: Tx, path: &str) -> io::Result<Vec<String>> {
        Ok(self.tree.directory(path))
    }
    fn write(&mut self, _tx: Tx, path: &str, value: &str) -> io::Result<()> {
        self.print(format_args!("write {path} {value:?}"))?;
        self.tree.write(path, value);
        Ok(())
    }
    fn remove(&mut self, _tx: Tx, path: &str) -> io::Result<()> {
        self.print(format_args!("rm {path}"))?;
        self.tree.remove(path);
        Ok(())
    }
}
