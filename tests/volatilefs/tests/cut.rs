//! volatilefs through a real mount: after a cut the backing directory holds exactly what
//! was fsynced, file data and directory entries alike; with fsync lying, nothing new.
//! Needs root and /dev/fuse.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use volatilefs::{Fsync, Mount};

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Everything under `root` as sorted `(relative path, contents or None for a directory)`.
fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.push((name, None));
                todo.push(path);
            } else {
                out.push((name, Some(fs::read(&path).unwrap())));
            }
        }
    }
    out.sort();
    out
}

fn file(contents: &str) -> Option<Vec<u8>> {
    Some(contents.as_bytes().to_vec())
}

/// A durable starting tree, then changes of which only some are made durable.
fn run(fsync: Fsync) -> Vec<(String, Option<Vec<u8>>)> {
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    fs::create_dir_all(backing.join("kept")).unwrap();
    fs::create_dir(&mnt).unwrap();
    fs::write(backing.join("kept/old"), "durable").unwrap();
    fs::write(backing.join("kept/gone"), "unlinked and synced").unwrap();
    fs::write(backing.join("kept/back"), "unlinked, not synced").unwrap();
    fs::write(backing.join("checkpoint"), "old checkpoint").unwrap();

    let mount = Mount::new(&backing, &mnt, fsync).unwrap();
    // A new directory, durable in its parent, with a synced file and an unsynced one.
    fs::create_dir(mnt.join("d")).unwrap();
    sync_dir(&mnt);
    let mut a = File::create(mnt.join("d/a")).unwrap();
    a.write_all(b"hello").unwrap();
    a.sync_data().unwrap();
    sync_dir(&mnt.join("d"));
    a.write_all(b" world").unwrap();
    File::create(mnt.join("d/b"))
        .unwrap()
        .write_all(b"never named durably")
        .unwrap();
    let b = File::open(mnt.join("d/b")).unwrap();
    b.sync_all().unwrap();
    // A durable file overwritten, truncated and grown again, never synced.
    let old = OpenOptions::new()
        .write(true)
        .open(mnt.join("kept/old"))
        .unwrap();
    old.write_all_at(b"XY", 2).unwrap();
    old.set_len(3).unwrap();
    old.write_all_at(b"0123456789", 5).unwrap();
    // Unlinks, one made durable.
    fs::remove_file(mnt.join("kept/gone")).unwrap();
    fs::remove_file(mnt.join("kept/back")).unwrap();
    // A file removed while open, never durably named: gone, still usable through its fd.
    let scratch = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(mnt.join("scratch"))
        .unwrap();
    fs::remove_file(mnt.join("scratch")).unwrap();
    scratch.write_all_at(b"still here", 0).unwrap();
    let mut back = [0u8; 10];
    scratch.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(&back, b"still here");
    // An atomic replacement whose rename is not synced, and a directory never synced.
    fs::write(mnt.join("checkpoint.tmp"), "new checkpoint").unwrap();
    File::open(mnt.join("checkpoint.tmp"))
        .unwrap()
        .sync_data()
        .unwrap();
    fs::rename(mnt.join("checkpoint.tmp"), mnt.join("checkpoint")).unwrap();
    fs::create_dir(mnt.join("kept/lost")).unwrap();
    fs::write(mnt.join("kept/lost/f"), "x").unwrap();
    // Syncing `kept` now would make `lost` durable: sync it before that instead.
    assert_eq!(fs::read(mnt.join("checkpoint")).unwrap(), b"new checkpoint");
    mount.cut_power().unwrap();
    assert!(
        fs::read(mnt.join("checkpoint")).is_err(),
        "nothing is served once the power is cut"
    );
    drop((a, b, old, scratch));
    mount.unmount();
    tree(&backing)
}

#[test]
fn a_cut_keeps_exactly_what_was_fsynced() {
    let mut expected = vec![
        ("checkpoint".to_string(), file("old checkpoint")),
        ("d".to_string(), None),
        ("d/a".to_string(), file("hello")),
        ("kept".to_string(), None),
        ("kept/back".to_string(), file("unlinked, not synced")),
        ("kept/gone".to_string(), file("unlinked and synced")),
        ("kept/old".to_string(), file("durable")),
    ];
    expected.sort();
    assert_eq!(run(Fsync::Honest), expected);
}

#[test]
fn with_fsync_lying_a_cut_keeps_only_what_was_there_at_the_mount() {
    let expected = vec![
        ("checkpoint".to_string(), file("old checkpoint")),
        ("kept".to_string(), None),
        ("kept/back".to_string(), file("unlinked, not synced")),
        ("kept/gone".to_string(), file("unlinked and synced")),
        ("kept/old".to_string(), file("durable")),
    ];
    assert_eq!(run(Fsync::Lies), expected);
}

#[test]
fn what_a_remount_finds_is_durable_and_a_clean_unmount_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    fs::write(backing.join("durable"), "named durably").unwrap();
    let mount = Mount::new(&backing, &mnt, Fsync::Honest).unwrap();
    fs::write(mnt.join("f"), "unsynced").unwrap();
    fs::remove_file(mnt.join("durable")).unwrap();
    mount.unmount();
    assert_eq!(
        tree(&backing),
        vec![("f".to_string(), file("unsynced"))],
        "a clean unmount leaves the live tree"
    );
    // Remounted, the file is durable: a cut keeps it, only the new bytes go.
    let mount = Mount::new(&backing, &mnt, Fsync::Honest).unwrap();
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"unsynced");
    OpenOptions::new()
        .append(true)
        .open(mnt.join("f"))
        .unwrap()
        .write_all(b" and more")
        .unwrap();
    mount.cut_power().unwrap();
    mount.unmount();
    assert_eq!(fs::read(backing.join("f")).unwrap(), b"unsynced");
}

#[test]
fn the_power_can_go_just_before_a_given_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    let mount = Mount::new(&backing, &mnt, Fsync::Honest).unwrap();
    // create, write, fdatasync, fsync of the directory: the power goes before the write.
    mount.cut_power_after(4);
    let mut f = File::create(mnt.join("f")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_data().unwrap();
    sync_dir(&mnt);
    assert!(mount.is_powered().unwrap());
    assert_eq!(mount.changes(), 4);
    assert!(f.write_all(b" lost").is_err(), "no power, no write");
    assert!(!mount.is_powered().unwrap());
    drop(f);
    mount.unmount();
    assert_eq!(tree(&backing), vec![("f".to_string(), file("durable"))]);
}
