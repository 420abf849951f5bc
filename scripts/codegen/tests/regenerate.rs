//! The checked-in generated code must be exactly what the generator writes today.

use std::path::PathBuf;

#[test]
fn checked_in_protocol_code_matches_the_generator() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let specs = corelog_codegen::specs_dir(&repo);
    if !specs.is_dir() {
        println!(
            "skipped: no Kafka message specs at {} (set KAFKA_SPECS_DIR)",
            specs.display()
        );
        return;
    }
    let files = corelog_codegen::generate(&specs).expect("generator failed");
    let problems = corelog_codegen::diff(&files, &corelog_codegen::output_dir(&repo))
        .expect("cannot read the generated directory");
    assert!(
        problems.is_empty(),
        "generated code is out of date; run scripts/regen-protocol:\n  {}",
        problems.join("\n  ")
    );
}
