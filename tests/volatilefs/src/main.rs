//! `volatilefs BACKING MOUNTPOINT [--fsync-lies]`: mounts a volatilefs by hand. Reads
//! commands from standard input: `cut` cuts the power (the backing directory is left
//! holding only what was durable) and exits; end of input unmounts and exits.

use std::io::BufRead;
use std::path::PathBuf;

use volatilefs::{Fsync, Mount};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fsync = if args.iter().any(|a| a == "--fsync-lies") {
        Fsync::Lies
    } else {
        Fsync::Honest
    };
    let paths: Vec<PathBuf> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let [backing, mountpoint] = paths.as_slice() else {
        eprintln!("usage: volatilefs BACKING MOUNTPOINT [--fsync-lies]");
        std::process::exit(2);
    };
    let mount = Mount::new(backing, mountpoint, fsync).unwrap_or_else(|e| {
        eprintln!("volatilefs: cannot mount {}: {e}", mountpoint.display());
        std::process::exit(1);
    });
    eprintln!("volatilefs: mounted; type `cut` to cut the power");
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("cut") => {
                if let Err(e) = mount.cut_power() {
                    eprintln!("volatilefs: the cut failed: {e}");
                    std::process::exit(1);
                }
                eprintln!("volatilefs: power cut");
                break;
            }
            Ok(other) => eprintln!("volatilefs: unknown command {other:?}"),
            Err(_) => break,
        }
    }
    mount.unmount();
}
