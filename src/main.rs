//! The `corelog` command line.

fn main() {
    eprintln!("corelog: the broker is not built yet (see README.md, issue 4)");
    std::process::exit(2);
}
