//! The README's first command as a newcomer runs it: `corelog serve` with no
//! configuration keeps its data in `./data` of the working directory (a relative
//! `log.dirs`) and serves clients. Only the ports are moved, so that tests can run
//! beside a broker on 9092.

mod common;

use common::{free_port, run_with_stdin, run_with_timeout};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_default_broker_keeps_its_data_in_data_under_the_working_directory() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .current_dir(work.path())
        .args([
            "serve",
            "--set",
            &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        ])
        .args([
            "--set",
            &format!("metrics.listener=127.0.0.1:{}", free_port()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start corelog");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = broker.try_wait().unwrap() {
            let output = broker.wait_with_output().unwrap();
            panic!(
                "corelog exited ({status}):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "corelog did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bootstrap = format!("127.0.0.1:{port}");
    let input = work.path().join("input");
    std::fs::write(&input, "hello\nworld\n").unwrap();
    let mut produce = Command::new("kcat");
    produce.args(["-b", &bootstrap, "-P", "-t", "first"]);
    let produced = run_with_stdin(
        produce,
        Stdio::from(std::fs::File::open(&input).unwrap()),
        Duration::from_secs(60),
    );
    assert!(produced.status.success(), "{produced:?}");
    let mut consume = Command::new("kcat");
    consume.args([
        "-b",
        &bootstrap,
        "-C",
        "-t",
        "first",
        "-o",
        "beginning",
        "-e",
        "-q",
    ]);
    let consumed = run_with_timeout(consume, Duration::from_secs(60));
    assert_eq!(String::from_utf8_lossy(&consumed.stdout), "hello\nworld\n");
    assert!(work.path().join("data/meta.properties").is_file());
    assert!(
        work.path()
            .join("data/first-0/00000000000000000000.log")
            .is_file()
    );
    let _ = broker.kill();
    let _ = broker.wait();
}
