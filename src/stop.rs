//! Stopping the broker when its environment fails: the one way any layer ends the
//! process, called explicitly where the failure is seen (never from inside a
//! conversion or a `?`).

/// Stops the broker because its environment failed (an fsync or write error, a full
/// disk): continuing could acknowledge data that is not stored. Exits with status 74
/// (EX_IOERR) after logging the reason; everything acknowledged so far is in the log.
pub fn fatal(reason: &str) -> ! {
    tracing::error!("stopping the broker: {reason}");
    eprintln!("corelog: stopping: {reason}");
    std::process::exit(74)
}
