//! corelog-codegen: turns Kafka's JSON message definitions into corelog's Rust codec
//! (`src/protocol/generated/`).
//!
//! Problem: the broker needs every Kafka message at every version, and a hand-written
//! codec drifts from the specs. Decision: generate it, check the output in, and let a
//! test regenerate it in memory and fail on any difference. The generated code calls
//! the hand-written helpers in `src/protocol/codec.rs` for everything that is the same
//! for all messages; this crate decides only which fields exist in which version.
//!
//! Output is formatted with `rustfmt --edition 2024` so `cargo fmt --check` accepts it
//! and regeneration is byte-stable.

pub mod emit;
pub mod names;
pub mod spec;

use emit::{Emitter, HEADER, module_name};
use spec::{Kind, Spec};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the specs live for a checkout at `repo`: `KAFKA_SPECS_DIR`, else
/// `<repo>/../shared/kafka-message-specs`.
pub fn specs_dir(repo: &Path) -> PathBuf {
    match std::env::var_os("KAFKA_SPECS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo.join("../shared/kafka-message-specs"),
    }
}

/// Where the generated code lives in a checkout at `repo`.
pub fn output_dir(repo: &Path) -> PathBuf {
    repo.join("src/protocol/generated")
}

/// Reads every `.json` file under `dir` (one level of sub-directories), sorted by path.
pub fn read_specs(dir: &Path) -> Result<Vec<Spec>, String> {
    let mut paths = Vec::new();
    collect_json(dir, "", &mut paths)?;
    paths.sort();
    paths
        .iter()
        .map(|(group, path)| spec::parse_file(path, group))
        .collect()
}

fn collect_json(dir: &Path, group: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            if !group.is_empty() {
                return Err(format!("{}: nested too deep", path.display()));
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            collect_json(&path, &name, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push((group.to_string(), path));
        }
    }
    Ok(())
}

/// The module a message goes in, relative to `generated/`: "" for requests, responses
/// and headers, `data` for other top-level data messages, and the sub-directory's name
/// (as a module) for coordinator records.
fn module_dir(spec: &Spec) -> String {
    if !spec.group.is_empty() {
        spec.group.replace('-', "_")
    } else if spec.kind == Kind::Data {
        "data".into()
    } else {
        String::new()
    }
}

fn api_variant(request_name: &str) -> &str {
    request_name.strip_suffix("Request").unwrap_or(request_name)
}

/// Generates every file, unformatted, keyed by path relative to `generated/`.
pub fn generate_unformatted(specs: &[Spec]) -> Result<BTreeMap<PathBuf, String>, String> {
    let mut files = BTreeMap::new();
    let mut modules: BTreeMap<String, Vec<String>> = BTreeMap::new();

    let requests: BTreeMap<i16, &Spec> = specs
        .iter()
        .filter(|s| s.kind == Kind::Request)
        .map(|s| (s.api_key.expect("request without apiKey"), s))
        .collect();
    let responses: BTreeMap<i16, &Spec> = specs
        .iter()
        .filter(|s| s.kind == Kind::Response)
        .map(|s| (s.api_key.expect("response without apiKey"), s))
        .collect();
    for (key, req) in &requests {
        let resp = responses
            .get(key)
            .ok_or_else(|| format!("{}: no response", req.name))?;
        if resp.valid_versions != req.valid_versions {
            return Err(format!("{}: response versions differ", req.name));
        }
    }

    for spec in specs {
        let dir = module_dir(spec);
        let module = module_name(spec);
        let (variant, counterpart) = match spec.kind {
            Kind::Request => {
                let key = spec.api_key.unwrap();
                let resp = responses[&key];
                (
                    Some(api_variant(&spec.name).to_string()),
                    Some(format!("super::{}::{}", module_name(resp), resp.name)),
                )
            }
            Kind::Response => {
                let key = spec.api_key.unwrap();
                let req = requests
                    .get(&key)
                    .ok_or_else(|| format!("{}: no request", spec.name))?;
                (
                    Some(api_variant(&req.name).to_string()),
                    Some(format!("super::{}::{}", module_name(req), req.name)),
                )
            }
            _ => (None, None),
        };
        let code = Emitter::new(spec)
            .file(variant.as_deref(), counterpart)
            .map_err(|e| format!("{}: {e}", spec.name))?;
        let path = if dir.is_empty() {
            PathBuf::from(format!("{module}.rs"))
        } else {
            PathBuf::from(format!("{dir}/{module}.rs"))
        };
        if files.insert(path.clone(), code).is_some() {
            return Err(format!("{}: two messages map to one file", path.display()));
        }
        modules.entry(dir).or_default().push(module);
    }

    for (dir, mods) in &modules {
        if dir.is_empty() {
            continue;
        }
        let mut code = String::from(HEADER);
        let doc = match dir.as_str() {
            "data" => {
                "Data messages that are not requests or responses: consumer protocol \
                       payloads, principals, KRaft and snapshot control records."
            }
            "group_coordinator" => {
                "Record keys and values the group coordinator writes to `__consumer_offsets`."
            }
            "transaction_coordinator" => {
                "Record keys and values the transaction coordinator writes to `__transaction_state`."
            }
            _ => "Data messages from a sub-directory of the specs.",
        };
        writeln!(code, "//! {doc}\n").unwrap();
        for m in mods {
            writeln!(code, "pub mod {m};").unwrap();
        }
        files.insert(PathBuf::from(format!("{dir}/mod.rs")), code);
    }

    let top_mods = modules.get("").cloned().unwrap_or_default();
    let sub_dirs: Vec<&String> = modules.keys().filter(|d| !d.is_empty()).collect();
    let mut root = root_module(&top_mods, &sub_dirs, &requests, &responses);
    visitor(&mut root, specs);
    files.insert(PathBuf::from("mod.rs"), root);
    Ok(files)
}

fn root_module(
    top_mods: &[String],
    sub_dirs: &[&String],
    requests: &BTreeMap<i16, &Spec>,
    responses: &BTreeMap<i16, &Spec>,
) -> String {
    let mut c = String::from(HEADER);
    c.push_str(
        "//! Every Kafka message, generated from Kafka's JSON message definitions by\n\
         //! `scripts/codegen` (regenerate with `scripts/regen-protocol`; a test fails when the\n\
         //! checked-in code differs from what the generator writes).\n\
         //!\n\
         //! One module per message (`produce_request::ProduceRequest` and its nested structs);\n\
         //! data records in `data`, `group_coordinator` and `transaction_coordinator`. Each\n\
         //! message implements `codec::Message`, `Encodable` and `Decodable`; requests and\n\
         //! responses also `codec::Request` / `codec::Response`. This module adds [`ApiKey`]\n\
         //! and the [`RequestBody`] / [`ResponseBody`] enums that dispatch on it.\n\n",
    );
    for m in top_mods {
        writeln!(c, "pub mod {m};").unwrap();
    }
    for d in sub_dirs {
        writeln!(c, "pub mod {d};").unwrap();
    }
    c.push_str(
        "\nuse crate::protocol::codec::{Decodable, DecodeError, Encodable, EncodeError, Encoder, \
         Message, VersionRange};\nuse crate::protocol::wire::Reader;\n\n",
    );

    // ApiKey.
    c.push_str(
        "/// A Kafka API, by the key in every request header.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum ApiKey {\n",
    );
    for (key, req) in requests {
        writeln!(c, "{} = {key},", api_variant(&req.name)).unwrap();
    }
    c.push_str("}\n\nimpl ApiKey {\n/// Every API key, in key order.\npub const ALL: &'static [ApiKey] = &[\n");
    for req in requests.values() {
        writeln!(c, "ApiKey::{},", api_variant(&req.name)).unwrap();
    }
    c.push_str("];\n\npub const fn from_i16(key: i16) -> Option<ApiKey> {\nmatch key {\n");
    for (key, req) in requests {
        writeln!(c, "{key} => Some(ApiKey::{}),", api_variant(&req.name)).unwrap();
    }
    c.push_str("_ => None,\n}\n}\n\npub const fn key(self) -> i16 {\nself as i16\n}\n\n");
    let per_key = |c: &mut String, sig: &str, f: &dyn Fn(&Spec) -> String| {
        writeln!(c, "{sig} {{\nmatch self {{").unwrap();
        for req in requests.values() {
            writeln!(c, "ApiKey::{} => {},", api_variant(&req.name), f(req)).unwrap();
        }
        c.push_str("}\n}\n\n");
    };
    per_key(
        &mut c,
        "/// The API's name, as Kafka spells it.\npub const fn name(self) -> &'static str",
        &|s| format!("{:?}", api_variant(&s.name)),
    );
    per_key(
        &mut c,
        "/// The versions this codec reads and writes.\npub const fn valid_versions(self) -> VersionRange",
        &|s| format!("{}::VERSIONS", path_of(s)),
    );
    per_key(
        &mut c,
        "/// The first flexible version, if any.\npub const fn flexible_from(self) -> Option<i16>",
        &|s| format!("{}::FLEXIBLE_FROM", path_of(s)),
    );
    per_key(
        &mut c,
        "pub const fn deprecated_versions(self) -> Option<VersionRange>",
        &|s| format!("{}::DEPRECATED_VERSIONS", path_of(s)),
    );
    per_key(
        &mut c,
        "/// The highest version is still under development in Kafka.\npub const fn latest_version_unstable(self) -> bool",
        &|s| format!("{}::LATEST_VERSION_UNSTABLE", path_of(s)),
    );
    c.push_str(
        "/// The request header version for `version` of this API: 2 for flexible versions,\n\
         /// 1 otherwise, and 0 only for ControlledShutdown v0.\n\
         pub const fn request_header_version(self, version: i16) -> i16 {\n\
         if matches!(self, ApiKey::ControlledShutdown) && version == 0 {\nreturn 0;\n}\n\
         match self.flexible_from() {\nSome(from) if version >= from => 2,\n_ => 1,\n}\n}\n\n\
         /// The response header version for `version` of this API: 1 for flexible versions,\n\
         /// 0 otherwise, and always 0 for ApiVersions (so a client that sent a version the\n\
         /// broker does not know can still read the answer).\n\
         pub const fn response_header_version(self, version: i16) -> i16 {\n\
         if matches!(self, ApiKey::ApiVersions) {\nreturn 0;\n}\n\
         match self.flexible_from() {\nSome(from) if version >= from => 1,\n_ => 0,\n}\n}\n}\n\n",
    );

    body_enum(&mut c, "RequestBody", "request", requests);
    body_enum(&mut c, "ResponseBody", "response", responses);
    c
}

/// A test-only visitor over every message type, so tests can cover all of them.
fn visitor(c: &mut String, specs: &[Spec]) {
    c.push_str(
        "/// Visits every message type (tests only).\n#[cfg(test)]\npub(crate) trait MessageVisitor {\n\
         fn visit<M>(&mut self)\nwhere\nM: Message + Encodable + Decodable + crate::protocol::testing::Random \
         + PartialEq + std::fmt::Debug + Clone;\n}\n\n\
         #[cfg(test)]\npub(crate) fn visit_all_messages(v: &mut impl MessageVisitor) {\n",
    );
    for s in specs {
        let dir = module_dir(s);
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}::")
        };
        writeln!(c, "v.visit::<{prefix}{}>();", path_of(s)).unwrap();
    }
    c.push_str("}\n");
}

fn path_of(s: &Spec) -> String {
    format!("{}::{}", module_name(s), s.name)
}

fn body_enum(c: &mut String, name: &str, what: &str, specs: &BTreeMap<i16, &Spec>) {
    writeln!(
        c,
        "/// Any {what} body, tagged by its API.\n#[derive(Debug, Clone, PartialEq)]\npub enum {name} {{"
    )
    .unwrap();
    let variant = |s: &Spec| -> String {
        let base = s
            .name
            .strip_suffix("Request")
            .or_else(|| s.name.strip_suffix("Response"))
            .unwrap_or(&s.name);
        base.to_string()
    };
    for s in specs.values() {
        writeln!(c, "{}({}),", variant(s), path_of(s)).unwrap();
    }
    writeln!(
        c,
        "}}\n\nimpl {name} {{\npub fn api_key(&self) -> ApiKey {{\nmatch self {{"
    )
    .unwrap();
    for s in specs.values() {
        writeln!(c, "{name}::{v}(_) => ApiKey::{v},", v = variant(s)).unwrap();
    }
    writeln!(
        c,
        "}}\n}}\n\n/// Decodes the body of `api_key` at `version`.\n\
         pub fn decode(api_key: ApiKey, version: i16, r: &mut Reader) -> Result<Self, DecodeError> {{\n\
         Ok(match api_key {{"
    )
    .unwrap();
    for s in specs.values() {
        writeln!(
            c,
            "ApiKey::{v} => {name}::{v}({p}::decode(r, version)?),",
            v = variant(s),
            p = path_of(s)
        )
        .unwrap();
    }
    c.push_str("})\n}\n}\n\n");
    writeln!(
        c,
        "impl Encodable for {name} {{\nfn encode(&self, w: &mut Encoder, version: i16) -> Result<(), EncodeError> {{\nmatch self {{"
    )
    .unwrap();
    for s in specs.values() {
        writeln!(
            c,
            "{name}::{}(body) => body.encode(w, version),",
            variant(s)
        )
        .unwrap();
    }
    writeln!(
        c,
        "}}\n}}\n\nfn encoded_len(&self, version: i16) -> Result<usize, EncodeError> {{\nmatch self {{"
    )
    .unwrap();
    for s in specs.values() {
        writeln!(
            c,
            "{name}::{}(body) => body.encoded_len(version),",
            variant(s)
        )
        .unwrap();
    }
    c.push_str("}\n}\n}\n\n");
    for s in specs.values() {
        writeln!(
            c,
            "impl From<{p}> for {name} {{\nfn from(body: {p}) -> Self {{\n{name}::{v}(body)\n}}\n}}\n",
            p = path_of(s),
            v = variant(s)
        )
        .unwrap();
    }
    writeln!(
        c,
        "#[cfg(test)]\nimpl {name} {{\n/// A random valid body of `api_key` at `version` (tests only).\n\
         pub(crate) fn random(api_key: ApiKey, rng: &mut crate::protocol::testing::Rng, version: i16) -> Self {{\n\
         use crate::protocol::testing::Random;\nmatch api_key {{"
    )
    .unwrap();
    for s in specs.values() {
        writeln!(
            c,
            "ApiKey::{v} => {name}::{v}({p}::random(rng, version)),",
            v = variant(s),
            p = path_of(s)
        )
        .unwrap();
    }
    c.push_str("}\n}\n}\n\n");
}

/// Formats Rust source with `rustfmt --edition 2024` (as `cargo fmt` does here).
pub fn rustfmt(code: &str) -> Result<String, String> {
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(rustfmt)
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = code.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked".to_string())?
        .map_err(|e| format!("rustfmt stdin: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "rustfmt wrote non-UTF-8".to_string())
}

/// Generates and formats every file, keyed by path relative to `generated/`.
pub fn generate(specs_dir: &Path) -> Result<BTreeMap<PathBuf, String>, String> {
    let specs = read_specs(specs_dir)?;
    let files = generate_unformatted(&specs)?;
    // Format on two threads: this runs in the test suite on a 2-core machine.
    let entries: Vec<(PathBuf, String)> = files.into_iter().collect();
    let (a, b) = entries.split_at(entries.len() / 2);
    let format_all = |part: &[(PathBuf, String)]| -> Result<Vec<(PathBuf, String)>, String> {
        part.iter()
            .map(|(p, code)| {
                rustfmt(code)
                    .map(|f| (p.clone(), f))
                    .map_err(|e| format!("{}: {e}", p.display()))
            })
            .collect()
    };
    let (ra, rb) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| format_all(a));
        let rb = format_all(b);
        (ha.join().expect("formatter thread panicked"), rb)
    });
    Ok(ra?.into_iter().chain(rb?).collect())
}

/// Differences between `files` and what is in `out_dir`: changed, missing and stale files.
pub fn diff(files: &BTreeMap<PathBuf, String>, out_dir: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (path, code) in files {
        match std::fs::read_to_string(out_dir.join(path)) {
            Ok(existing) if existing == *code => {}
            Ok(_) => problems.push(format!("{} differs", path.display())),
            Err(_) => problems.push(format!("{} is missing", path.display())),
        }
    }
    for existing in existing_files(out_dir)? {
        if !files.contains_key(&existing) {
            problems.push(format!(
                "{} is stale (no spec generates it)",
                existing.display()
            ));
        }
    }
    Ok(problems)
}

/// Every file under `out_dir`, relative to it.
fn existing_files(out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    if !out_dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = out_dir.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let rel_path = rel.join(entry.file_name());
            if entry.path().is_dir() {
                stack.push(rel_path);
            } else {
                out.push(rel_path);
            }
        }
    }
    Ok(out)
}

/// Replaces `out_dir` with exactly `files`.
pub fn write(files: &BTreeMap<PathBuf, String>, out_dir: &Path) -> Result<(), String> {
    for existing in existing_files(out_dir)? {
        if !files.contains_key(&existing) {
            std::fs::remove_file(out_dir.join(&existing)).map_err(|e| e.to_string())?;
        }
    }
    for (path, code) in files {
        let full = out_dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        if std::fs::read_to_string(&full).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&full, code).map_err(|e| format!("{}: {e}", full.display()))?;
        }
    }
    Ok(())
}
