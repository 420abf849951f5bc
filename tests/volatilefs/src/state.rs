//! The file tree behind the mount: what the backing directory holds now, and what a disk
//! would still hold after a power loss.
//!
//! Owns the backing directory while mounted. Every operation is applied to it at once
//! (reads see the live tree), and the state remembers, per node, what is durable:
//!
//! - a file: its durable length (its length at its last fsync or fdatasync) and, in
//!   `saved`, the durable bytes of every range changed since, copied before the change;
//! - a directory: its durable entries (name to node, as at its last fsync).
//!
//! Invariant: every byte of a file below its durable length is either in `saved` or
//! unchanged in the backing file. So [`State::cut`] can put back exactly the durable
//! state: each file rolled back to its durable bytes, and the tree rebuilt from the root's
//! durable entries down. A file that loses its last live name (unlink, rename over it)
//! while a durable entry still names it is moved into a hidden store inside the backing
//! directory rather than removed; the store is gone again after a cut. Nodes are never
//! forgotten while mounted (memory grows with every file ever created).
//!
//! Only regular files and directories are modelled, one name per file (no hard links);
//! nothing is durable that was not fsynced (a file's fsync does not make its name durable,
//! a directory's fsync does not make its files' data durable), which is what POSIX
//! promises and stricter than most real file systems.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where files that lost their last live name wait, inside the backing directory.
pub const STORE: &str = ".volatilefs-unlinked";

/// The inode number of the mount's root.
pub const ROOT: u64 = 1;

/// What fsync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Makes the file's data (or the directory's entries) durable.
    Honest,
    /// Succeeds and makes nothing durable: a disk that lies. A negative control.
    Lies,
}

struct Node {
    /// The live parent and name; `None` once the node lost its name (or for the root).
    link: Option<(u64, OsString)>,
    kind: Kind,
}

enum Kind {
    Dir {
        live: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
    File {
        /// Opened on first use and kept until the cut.
        handle: Option<File>,
        durable_len: u64,
        /// Durable bytes of changed ranges: disjoint, keyed by start, all below
        /// `durable_len`.
        saved: BTreeMap<u64, Vec<u8>>,
    },
}

pub struct State {
    root: PathBuf,
    fsync: Fsync,
    powered: bool,
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Operations that change the disk (writes, truncations, names, syncs) so far.
    changes: u64,
    /// The power goes before the change with this number, if set.
    cut_at: Option<u64>,
    /// Why that cut could not roll the backing directory back, if it could not.
    cut_failed: Option<String>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl State {
    /// Takes over `root`: everything in it is durable (it is what the disk holds).
    pub fn load(root: &Path, fsync: Fsync) -> io::Result<State> {
        let root = root.canonicalize()?;
        // A store left by a process that died mounted: those files had lost their names.
        let store = root.join(STORE);
        if store.exists() {
            std::fs::remove_dir_all(&store)?;
        }
        let mut state = State {
            root: root.clone(),
            fsync,
            powered: true,
            nodes: HashMap::new(),
            next_ino: ROOT + 1,
            changes: 0,
            cut_at: None,
            cut_failed: None,
        };
        state.nodes.insert(
            ROOT,
            Node {
                link: None,
                kind: Kind::Dir {
                    live: BTreeMap::new(),
                    durable: BTreeMap::new(),
                },
            },
        );
        state.scan(ROOT, &root)?;
        Ok(state)
    }

    fn scan(&mut self, dir: u64, path: &Path) -> io::Result<()> {
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let ino = self.next_ino;
            self.next_ino += 1;
            let link = Some((dir, entry.file_name()));
            if kind.is_dir() {
                self.nodes.insert(ino, Node::dir(link));
                self.scan(ino, &entry.path())?;
            } else if kind.is_file() {
                let len = entry.metadata()?.len();
                self.nodes.insert(ino, Node::file(link, len));
            } else {
                return Err(io::Error::other(format!(
                    "{}: only files and directories are supported",
                    entry.path().display()
                )));
            }
            entries.insert(entry.file_name(), ino);
        }
        if let Kind::Dir { live, durable } = &mut self.node_mut(dir)?.kind {
            *live = entries.clone();
            *durable = entries;
        }
        Ok(())
    }

    /// Fails every operation after the power went: nothing more reaches the disk.
    pub fn check_powered(&self) -> io::Result<()> {
        if self.powered {
            Ok(())
        } else {
            Err(errno(libc::EIO))
        }
    }

    /// Counts an operation that changes the disk; the power goes first if this is the
    /// change it was set to go before.
    pub fn before_change(&mut self) -> io::Result<()> {
        self.check_powered()?;
        if self.cut_at == Some(self.changes) {
            if let Err(e) = self.cut() {
                self.cut_failed = Some(e.to_string());
            }
            return Err(errno(libc::EIO));
        }
        self.changes += 1;
        Ok(())
    }

    /// Cuts the power before the `n`th change from now (0: before the next one).
    pub fn cut_after(&mut self, n: u64) {
        self.cut_at = Some(self.changes + n);
    }

    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Whether the power is on; an error if a cut set by [`State::cut_after`] failed.
    pub fn is_powered(&self) -> io::Result<bool> {
        match &self.cut_failed {
            Some(e) => Err(io::Error::other(format!("the cut failed: {e}"))),
            None => Ok(self.powered),
        }
    }

    /// Stops serving operations: a clean shutdown, after which the backing directory holds
    /// the live tree (the store goes, if the power was not cut).
    pub fn power_off(&mut self) {
        if self.powered {
            let _ = std::fs::remove_dir_all(self.store());
        }
        self.powered = false;
        for node in self.nodes.values_mut() {
            if let Kind::File { handle, .. } = &mut node.kind {
                *handle = None;
            }
        }
    }

    fn node(&self, ino: u64) -> io::Result<&Node> {
        self.nodes.get(&ino).ok_or_else(|| errno(libc::ENOENT))
    }

    fn node_mut(&mut self, ino: u64) -> io::Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or_else(|| errno(libc::ENOENT))
    }

    fn store(&self) -> PathBuf {
        self.root.join(STORE)
    }

    /// Where a node is in the backing directory now.
    fn location(&self, ino: u64) -> io::Result<PathBuf> {
        if ino == ROOT {
            return Ok(self.root.clone());
        }
        let node = self.node(ino)?;
        match &node.link {
            Some((parent, name)) => Ok(self.location(*parent)?.join(name)),
            None if node.is_dir() => Err(errno(libc::ENOENT)),
            None => Ok(self.store().join(ino.to_string())),
        }
    }

    fn live(&self, dir: u64) -> io::Result<&BTreeMap<OsString, u64>> {
        match &self.node(dir)?.kind {
            Kind::Dir { live, .. } => Ok(live),
            Kind::File { .. } => Err(errno(libc::ENOTDIR)),
        }
    }

    fn live_mut(&mut self, dir: u64) -> io::Result<&mut BTreeMap<OsString, u64>> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir { live, .. } => Ok(live),
            Kind::File { .. } => Err(errno(libc::ENOTDIR)),
        }
    }

    pub fn is_dir(&self, ino: u64) -> io::Result<bool> {
        Ok(self.node(ino)?.is_dir())
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<u64> {
        self.live(parent)?
            .get(name)
            .copied()
            .ok_or_else(|| errno(libc::ENOENT))
    }

    pub fn metadata(&self, ino: u64) -> io::Result<Metadata> {
        if let Kind::File {
            handle: Some(file), ..
        } = &self.node(ino)?.kind
        {
            return file.metadata();
        }
        std::fs::metadata(self.location(ino)?)
    }

    /// The live parent of a directory (the root is its own parent).
    pub fn parent(&self, ino: u64) -> u64 {
        match self.nodes.get(&ino).and_then(|n| n.link.as_ref()) {
            Some((parent, _)) => *parent,
            None => ROOT,
        }
    }

    /// `(name, inode, is_dir)` of each live entry of a directory.
    pub fn entries(&self, dir: u64) -> io::Result<Vec<(OsString, u64, bool)>> {
        self.live(dir)?
            .iter()
            .map(|(name, ino)| Ok((name.clone(), *ino, self.is_dir(*ino)?)))
            .collect()
    }

    fn check_new_name(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        if parent == ROOT && name == STORE {
            return Err(errno(libc::EPERM));
        }
        if self.live(parent)?.contains_key(name) {
            return Err(errno(libc::EEXIST));
        }
        Ok(())
    }

    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> io::Result<u64> {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        self.live_mut(parent)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    pub fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> io::Result<u64> {
        self.check_new_name(parent, name)?;
        let path = self.location(parent)?.join(name);
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
        self.add(parent, name, Node::dir(Some((parent, name.to_owned()))))
    }

    /// Creates a new empty file (`exclusive`), or opens the existing one.
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        exclusive: bool,
        truncate: bool,
    ) -> io::Result<u64> {
        if let Ok(ino) = self.lookup(parent, name) {
            if exclusive {
                return Err(errno(libc::EEXIST));
            }
            self.open(ino, truncate)?;
            return Ok(ino);
        }
        self.check_new_name(parent, name)?;
        let path = self.location(parent)?.join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        let mut node = Node::file(Some((parent, name.to_owned())), 0);
        if let Kind::File { handle, .. } = &mut node.kind {
            *handle = Some(file);
        }
        self.add(parent, name, node)
    }

    pub fn open(&mut self, ino: u64, truncate: bool) -> io::Result<()> {
        if self.is_dir(ino)? {
            return Ok(());
        }
        self.handle(ino)?;
        if truncate {
            self.set_len(ino, 0)?;
        }
        Ok(())
    }

    /// The file's backing handle, opened on first use.
    fn handle(&mut self, ino: u64) -> io::Result<&File> {
        let path = self.location(ino)?;
        match &mut self.node_mut(ino)?.kind {
            Kind::Dir { .. } => Err(errno(libc::EISDIR)),
            Kind::File { handle, .. } => {
                if handle.is_none() {
                    *handle = Some(File::options().read(true).write(true).open(path)?);
                }
                Ok(handle.as_ref().unwrap())
            }
        }
    }

    pub fn read(&mut self, ino: u64, offset: u64, size: usize) -> io::Result<Vec<u8>> {
        let file = self.handle(ino)?;
        let mut buf = vec![0u8; size];
        let mut filled = 0;
        while filled < size {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        self.preserve(ino, offset, offset + data.len() as u64)?;
        self.handle(ino)?.write_all_at(data, offset)
    }

    pub fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let current = self.handle(ino)?.metadata()?.len();
        if len < current {
            self.preserve(ino, len, current)?;
        }
        self.handle(ino)?.set_len(len)
    }

    pub fn set_mode(&mut self, ino: u64, mode: u32) -> io::Result<()> {
        let path = self.location(ino)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
    }

    /// Copies into `saved` the durable bytes of `start..end` not saved yet, before they
    /// change.
    fn preserve(&mut self, ino: u64, start: u64, end: u64) -> io::Result<()> {
        let (durable_len, gaps) = match &self.node(ino)?.kind {
            Kind::Dir { .. } => return Err(errno(libc::EISDIR)),
            Kind::File {
                durable_len, saved, ..
            } => (*durable_len, gaps(saved, start, end.min(*durable_len))),
        };
        debug_assert!(gaps.iter().all(|(_, end)| *end <= durable_len));
        for (from, to) in gaps {
            let mut bytes = vec![0u8; (to - from) as usize];
            // Unsaved durable bytes are still in the file (the invariant): a short read
            // would mean the model is wrong.
            self.handle(ino)?.read_exact_at(&mut bytes, from)?;
            if let Kind::File { saved, .. } = &mut self.node_mut(ino)?.kind {
                saved.insert(from, bytes);
            }
        }
        Ok(())
    }

    /// fsync or fdatasync: a file's data, or a directory's entries, become durable.
    pub fn fsync(&mut self, ino: u64) -> io::Result<()> {
        if self.fsync == Fsync::Lies {
            return Ok(());
        }
        let len = match self.node(ino)?.kind {
            Kind::Dir { .. } => None,
            Kind::File { .. } => Some(self.handle(ino)?.metadata()?.len()),
        };
        match &mut self.node_mut(ino)?.kind {
            Kind::Dir { live, durable } => *durable = live.clone(),
            Kind::File {
                durable_len, saved, ..
            } => {
                *durable_len = len.unwrap();
                saved.clear();
            }
        }
        Ok(())
    }

    /// Whether a durable directory entry names the node.
    fn durably_named(&self, ino: u64) -> bool {
        self.nodes.values().any(|node| match &node.kind {
            Kind::Dir { durable, .. } => durable.values().any(|&child| child == ino),
            Kind::File { .. } => false,
        })
    }

    /// Removes a node's live name. A file that a durable entry still names moves into the
    /// store; any other is removed (no later fsync can name it durably again), and stays
    /// readable and writable through the handle its open descriptors use.
    fn unlink_node(&mut self, ino: u64) -> io::Result<()> {
        let from = self.location(ino)?;
        if self.is_dir(ino)? {
            std::fs::remove_dir(&from)?;
        } else if self.durably_named(ino) {
            std::fs::create_dir_all(self.store())?;
            std::fs::rename(&from, self.store().join(ino.to_string()))?;
        } else {
            std::fs::remove_file(&from)?;
        }
        let node = self.node_mut(ino)?;
        if let Some((parent, name)) = node.link.take() {
            self.live_mut(parent)?.remove(&name);
        }
        Ok(())
    }

    pub fn unlink(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if self.is_dir(ino)? {
            return Err(errno(libc::EISDIR));
        }
        self.unlink_node(ino)
    }

    pub fn rmdir(&mut self, parent: u64, name: &OsStr) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if !self.is_dir(ino)? {
            return Err(errno(libc::ENOTDIR));
        }
        if !self.live(ino)?.is_empty() {
            return Err(errno(libc::ENOTEMPTY));
        }
        self.unlink_node(ino)
    }

    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if new_parent == ROOT && new_name == STORE {
            return Err(errno(libc::EPERM));
        }
        // A directory cannot move under itself.
        let mut up = new_parent;
        while up != ROOT {
            if up == ino {
                return Err(errno(libc::EINVAL));
            }
            up = self.parent(up);
        }
        if let Ok(target) = self.lookup(new_parent, new_name) {
            if target == ino {
                return Ok(());
            }
            match (self.is_dir(ino)?, self.is_dir(target)?) {
                (false, true) => return Err(errno(libc::EISDIR)),
                (true, false) => return Err(errno(libc::ENOTDIR)),
                (true, true) if !self.live(target)?.is_empty() => {
                    return Err(errno(libc::ENOTEMPTY));
                }
                _ => {}
            }
            self.unlink_node(target)?;
        }
        let to = self.location(new_parent)?.join(new_name);
        std::fs::rename(self.location(ino)?, to)?;
        self.live_mut(parent)?.remove(name);
        self.live_mut(new_parent)?.insert(new_name.to_owned(), ino);
        self.node_mut(ino)?.link = Some((new_parent, new_name.to_owned()));
        Ok(())
    }

    pub fn statfs(&self) -> io::Result<libc::statvfs> {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid C string and a zeroed out-parameter the call fills in.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat)
    }

    /// The power goes: from now on every operation fails, and the backing directory is
    /// made to hold only what was durable.
    pub fn cut(&mut self) -> io::Result<()> {
        self.powered = false;
        // Roll every file that can still be named back to its durable bytes, where it is.
        let files: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(ino, n)| !n.is_dir() && (n.link.is_some() || self.durably_named(**ino)))
            .map(|(ino, _)| *ino)
            .collect();
        for &ino in &files {
            let file = self.handle(ino)?.try_clone()?;
            if let Kind::File {
                handle,
                durable_len,
                saved,
            } = &mut self.node_mut(ino)?.kind
            {
                file.set_len(*durable_len)?;
                for (at, bytes) in std::mem::take(saved) {
                    file.write_all_at(&bytes, at)?;
                }
                *handle = None;
            }
        }
        // Every file into the store, then no directory left but the store.
        std::fs::create_dir_all(self.store())?;
        for &ino in &files {
            if self.node(ino)?.link.is_some() {
                std::fs::rename(self.location(ino)?, self.store().join(ino.to_string()))?;
            }
        }
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_name() != STORE {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        // Rebuild the durable tree from the root down.
        let mut placed: HashMap<u64, PathBuf> = HashMap::new();
        let mut dirs_done: HashSet<u64> = HashSet::from([ROOT]);
        let mut todo = vec![(ROOT, self.root.clone())];
        while let Some((dir, path)) = todo.pop() {
            let Kind::Dir { durable, .. } = &self.node(dir)?.kind else {
                unreachable!("only directories are queued");
            };
            for (name, &child) in durable {
                let to = path.join(name);
                if self.node(child)?.is_dir() {
                    // A directory durably named twice (renames on both sides of a sync)
                    // is rebuilt once.
                    if dirs_done.insert(child) {
                        std::fs::create_dir(&to)?;
                        todo.push((child, to));
                    }
                } else if let Some(first) = placed.get(&child) {
                    std::fs::copy(first, &to)?;
                } else {
                    std::fs::rename(self.store().join(child.to_string()), &to)?;
                    placed.insert(child, to);
                }
            }
        }
        std::fs::remove_dir_all(self.store())
    }
}

impl Node {
    fn dir(link: Option<(u64, OsString)>) -> Node {
        Node {
            link,
            kind: Kind::Dir {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
            },
        }
    }

    fn file(link: Option<(u64, OsString)>, durable_len: u64) -> Node {
        Node {
            link,
            kind: Kind::File {
                handle: None,
                durable_len,
                saved: BTreeMap::new(),
            },
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir { .. })
    }
}

/// The parts of `start..end` that no range in `saved` covers.
fn gaps(saved: &BTreeMap<u64, Vec<u8>>, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    for (&from, bytes) in saved.range(..end) {
        let to = from + bytes.len() as u64;
        if to <= at {
            continue;
        }
        if from > at {
            out.push((at, from));
        }
        at = to;
        if at >= end {
            break;
        }
    }
    if at < end {
        out.push((at, end));
    }
    out
}
