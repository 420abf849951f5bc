//! `corelog-codegen [--check] [--specs DIR] [--out DIR]`: regenerates
//! `src/protocol/generated/` from Kafka's JSON message definitions, or with `--check`
//! only reports what would change (exit status 1 when anything would).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut specs = corelog_codegen::specs_dir(&repo);
    let mut out = corelog_codegen::output_dir(&repo);
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--specs" => specs = args.next().map(PathBuf::from).unwrap_or(specs),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            other => {
                eprintln!(
                    "usage: corelog-codegen [--check] [--specs DIR] [--out DIR] (unknown: {other})"
                );
                return ExitCode::from(2);
            }
        }
    }
    let files = match corelog_codegen::generate(&specs) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("corelog-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        match corelog_codegen::diff(&files, &out) {
            Ok(problems) if problems.is_empty() => {
                println!("corelog-codegen: {} files up to date", files.len());
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for p in problems {
                    eprintln!("corelog-codegen: {p}");
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("corelog-codegen: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match corelog_codegen::write(&files, &out) {
            Ok(()) => {
                println!(
                    "corelog-codegen: wrote {} files to {}",
                    files.len(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("corelog-codegen: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
