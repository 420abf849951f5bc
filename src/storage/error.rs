//! The storage layer's one error type.
//!
//! Two kinds, kept apart so the server can act on them without guessing:
//! - **environment** failures ([`StorageError::Io`], [`StorageError::LogFailed`]): the disk
//!   said no (EIO, ENOSPC, a failed fdatasync). After a failed fdatasync the page cache can
//!   no longer be trusted (the kernel may have dropped the dirty pages), so the log refuses
//!   all further work and the server stops the broker with the reason;
//! - **client** problems (every other variant): the request was wrong; each maps to one
//!   Kafka error code, chosen by the server in one exhaustive match.

use std::path::PathBuf;
use std::sync::Arc;

use super::config::InvalidConfig;
use super::producers::ProducerError;
use crate::model::{LogEndOffset, LogStartOffset, Offset};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong in the storage layer.
#[derive(Debug, Clone)]
pub enum StorageError {
    /// An I/O operation failed (environment).
    Io {
        op: &'static str,
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// The log refused the operation because an earlier environment failure left it in an
    /// unknown state (environment).
    LogFailed { reason: Arc<str> },
    /// A fetch or lookup offset outside `[log start offset, log end offset]`
    /// (OFFSET_OUT_OF_RANGE).
    OffsetOutOfRange {
        offset: Offset,
        log_start: LogStartOffset,
        log_end: LogEndOffset,
    },
    /// A batch handed to `append` is malformed: wrong magic, lengths that disagree, a record
    /// count that disagrees with its offset delta (CORRUPT_MESSAGE / INVALID_RECORD).
    InvalidBatch { batch: usize, reason: String },
    /// A batch larger than `max.message.bytes` or than a whole segment
    /// (MESSAGE_TOO_LARGE).
    RecordTooLarge {
        batch: usize,
        size: usize,
        max: usize,
    },
    /// The log configuration cannot be used (INVALID_CONFIG).
    InvalidConfig(InvalidConfig),
    /// The log was closed (shut-down, or its topic deleted) while the operation waited.
    Closed,
    /// A producer's batch or marker contradicts its state on this partition (sequence,
    /// epoch, transaction).
    Producer(ProducerError),
}

impl StorageError {
    /// True for failures of the machine rather than of the request: the server stops the
    /// broker on these.
    /// A transient shortage (descriptors, memory) is not one: the operation failed and may
    /// be retried, and the log is intact.
    pub fn is_environment(&self) -> bool {
        match self {
            StorageError::Io { .. } => !self.is_transient(),
            StorageError::LogFailed { .. } => true,
            StorageError::OffsetOutOfRange { .. }
            | StorageError::InvalidBatch { .. }
            | StorageError::RecordTooLarge { .. }
            | StorageError::InvalidConfig(_)
            | StorageError::Closed
            | StorageError::Producer(_) => false,
        }
    }

    /// True for an I/O failure that says "not now" rather than "broken": out of file
    /// descriptors (EMFILE, ENFILE), out of memory, interrupted, try again.
    pub fn is_transient(&self) -> bool {
        let StorageError::Io { source, .. } = self else {
            return false;
        };
        matches!(
            source.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::EINTR)
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Wraps a glommio error from operation `op` on `path`.
    pub(crate) fn glommio(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: glommio::GlommioError<()>,
    ) -> Self {
        Self::io(op, path, source.into())
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::Io { op, path, source } => {
                write!(f, "{op} {} failed: {source}", path.display())
            }
            StorageError::LogFailed { reason } => {
                write!(f, "log is offline after an earlier failure: {reason}")
            }
            StorageError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            } => write!(
                f,
                "offset {offset} is outside the log [{log_start}, {log_end}]"
            ),
            StorageError::InvalidBatch { batch, reason } => {
                write!(f, "batch {batch} is invalid: {reason}")
            }
            StorageError::RecordTooLarge { batch, size, max } => {
                write!(f, "batch {batch} has {size} bytes, more than {max}")
            }
            StorageError::InvalidConfig(e) => write!(f, "{e}"),
            StorageError::Closed => write!(f, "the log is closed"),
            StorageError::Producer(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
