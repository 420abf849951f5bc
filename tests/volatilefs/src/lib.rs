//! volatilefs: a FUSE file system for power-loss tests. It passes every operation through
//! to a backing directory and keeps, beside it, what a disk would still hold if the power
//! went now: data up to each file's last fsync or fdatasync, directory entries up to each
//! directory's last fsync. [`Mount::cut_power`] makes the backing directory hold exactly
//! that, as LazyFS does for Jepsen: unlike `kill -9`, which keeps the page cache, it loses
//! whatever was not made durable.
//!
//! Owns the mount: [`Mount::new`] mounts (as root, through `/dev/fuse` and mount(2), no
//! libfuse or fusermount needed) and serves it from a thread of this process; dropping the
//! [`Mount`] stops serving and detaches it (`umount -l`), so a panicking test leaves no
//! mount behind, and a process that dies leaves one that fails with ENOTCONN rather than
//! hangs. The durability model and its invariants are in [`state`].

mod fuse;
pub mod state;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, Session, SessionACL};

pub use state::Fsync;
use state::State;

/// A mounted volatilefs.
pub struct Mount {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    mountpoint: CString,
}

impl Mount {
    /// Mounts a volatilefs over `backing` (whose contents count as durable) at
    /// `mountpoint`, an existing empty directory. Needs root.
    pub fn new(backing: &Path, mountpoint: &Path, fsync: Fsync) -> io::Result<Mount> {
        let state = Arc::new(Mutex::new(State::load(backing, fsync)?));
        let target = mountpoint.canonicalize()?;
        let target = CString::new(target.as_os_str().as_bytes())?;
        let device = File::options().read(true).write(true).open("/dev/fuse")?;
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let options = CString::new(format!(
            "fd={},rootmode=40000,user_id={uid},group_id={gid},allow_other",
            device.as_raw_fd()
        ))?;
        // SAFETY: valid C strings; the kernel reads them during the call only.
        let rc = unsafe {
            libc::mount(
                c"volatilefs".as_ptr(),
                target.as_ptr(),
                c"fuse.volatilefs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut mount = Mount {
            state: state.clone(),
            session: None,
            mountpoint: target,
        };
        // Dropping `mount` from here on detaches it if something fails.
        let filesystem = fuse::VolatileFs { state };
        let session = Session::from_fd(
            filesystem,
            OwnedFd::from(device),
            SessionACL::All,
            Config::default(),
        )?;
        mount.session = Some(session.spawn()?);
        // The mount answers (served by the session thread) before it is handed out.
        std::fs::metadata(mountpoint)?;
        Ok(mount)
    }

    /// The power goes: every operation from now on fails with EIO and changes nothing,
    /// and the backing directory is rolled back to what was durable. The mount stays
    /// (failing) until dropped.
    pub fn cut_power(&self) -> io::Result<()> {
        fuse::lock(&self.state).cut()
    }

    /// Cuts the power (as [`Mount::cut_power`]) just before the `n`th operation from now
    /// that changes the disk: a write, a truncation, a new, removed or renamed name, an
    /// fsync. So a test can cut at a random point of the broker's own I/O, between a
    /// write and its fsync, in the middle of a segment roll or a checkpoint.
    pub fn cut_power_after(&self, n: u64) {
        fuse::lock(&self.state).cut_after(n);
    }

    /// Whether the power is still on; an error if the cut that
    /// [`Mount::cut_power_after`] set could not roll the backing directory back.
    pub fn is_powered(&self) -> io::Result<bool> {
        fuse::lock(&self.state).is_powered()
    }

    /// How many operations that change the disk this mount has served.
    pub fn changes(&self) -> u64 {
        fuse::lock(&self.state).changes()
    }

    /// Stops serving and detaches the mount: the backing directory keeps the live tree
    /// (as after a clean shutdown), or the durable one if the power was cut.
    pub fn unmount(self) {}

    fn detach(&mut self) {
        fuse::lock(&self.state).power_off();
        let Some(session) = self.session.take() else {
            return;
        };
        // SAFETY: a valid C string.
        unsafe { libc::umount2(self.mountpoint.as_ptr(), libc::MNT_DETACH) };
        // The session ends once the kernel lets go of the connection: at once, unless a
        // process still holds a file on the mount (they get EIO meanwhile).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if session.guard.is_finished() {
            let _ = session.join();
        } else {
            eprintln!(
                "volatilefs: {:?} is detached but still in use; leaving its thread",
                self.mountpoint
            );
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.detach();
    }
}
