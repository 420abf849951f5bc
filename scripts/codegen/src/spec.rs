//! Reading Kafka's JSON message definitions into a model the emitter can walk.
//!
//! The files are JSON with `//` line comments; comments are stripped (outside string
//! literals) before parsing. Only the keys that change the wire format are kept: names,
//! types, version ranges, nullability, tags, defaults and ignorability. Descriptions,
//! entity types, map keys and zero-copy hints are read past.

use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// A set of versions as the specs write them: `"3+"`, `"0-4"`, `"7"` or `"none"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    /// Inclusive upper bound; `i16::MAX` for an open range.
    pub hi: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };
    pub const ALL: Versions = Versions {
        lo: 0,
        hi: i16::MAX,
    };

    pub fn parse(text: &str) -> Result<Versions, String> {
        let text = text.trim();
        if text == "none" {
            return Ok(Versions::NONE);
        }
        let num = |s: &str| {
            s.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version range {text:?}"))
        };
        if let Some(lo) = text.strip_suffix('+') {
            return Ok(Versions {
                lo: num(lo)?,
                hi: i16::MAX,
            });
        }
        if let Some((lo, hi)) = text.split_once('-') {
            return Ok(Versions {
                lo: num(lo)?,
                hi: num(hi)?,
            });
        }
        let v = num(text)?;
        Ok(Versions { lo: v, hi: v })
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    pub fn contains(&self, v: i16) -> bool {
        self.lo <= v && v <= self.hi
    }

    pub fn intersect(&self, other: &Versions) -> Versions {
        Versions {
            lo: self.lo.max(other.lo),
            hi: self.hi.min(other.hi),
        }
    }

    /// Whether `self` covers every version of `within`.
    pub fn covers(&self, within: &Versions) -> bool {
        within.is_empty() || (self.lo <= within.lo && self.hi >= within.hi)
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            write!(f, "none")
        } else if self.hi == i16::MAX {
            write!(f, "{}+", self.lo)
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    Uint32,
    Float64,
    String,
    Bytes,
    Records,
    Uuid,
    /// A struct, by its Rust type name.
    Struct(String),
    Array(Box<Type>),
}

impl Type {
    fn parse(text: &str) -> Type {
        if let Some(inner) = text.strip_prefix("[]") {
            return Type::Array(Box::new(Type::parse(inner)));
        }
        match text {
            "bool" => Type::Bool,
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "int32" => Type::Int32,
            "int64" => Type::Int64,
            "uint16" => Type::Uint16,
            "uint32" => Type::Uint32,
            "float64" => Type::Float64,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "records" => Type::Records,
            "uuid" => Type::Uuid,
            other => Type::Struct(other.to_string()),
        }
    }

    pub fn is_struct(&self) -> bool {
        matches!(self, Type::Struct(_))
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    /// The spec's CamelCase name.
    pub name: String,
    pub ty: Type,
    pub versions: Versions,
    pub nullable_versions: Versions,
    pub tagged_versions: Versions,
    pub tag: Option<u32>,
    pub ignorable: bool,
    /// The spec's default, as text; `None` when the spec gives none.
    pub default: Option<String>,
    /// A per-field override of the message's flexible versions (only `"none"` is used).
    pub flexible_versions: Option<Versions>,
}

impl Field {
    /// Nullable in at least one version where the field exists.
    pub fn is_nullable(&self) -> bool {
        !self.versions.intersect(&self.nullable_versions).is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct Struct {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub valid_versions: Versions,
    pub flexible_versions: Versions,
    pub deprecated_versions: Option<Versions>,
    pub latest_version_unstable: bool,
    /// The message's own struct first, then nested and common structs in definition order.
    pub structs: Vec<Struct>,
    /// Sub-directory of the specs directory the file came from ("" at the top level).
    pub group: String,
}

/// Removes `//` comments that are outside string literals.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn read_versions(
    obj: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<Versions>, String> {
    match get_str(obj, key) {
        None => Ok(None),
        Some(text) => Versions::parse(text)
            .map(Some)
            .map_err(|e| format!("{what}: {key}: {e}")),
    }
}

pub fn parse_file(path: &Path, group: &str) -> Result<Spec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, group).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str, group: &str) -> Result<Spec, String> {
    let value: Value =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = value.as_object().ok_or("top level is not an object")?;
    let name = get_str(obj, "name").ok_or("no name")?.to_string();
    let kind = match get_str(obj, "type").ok_or("no type")? {
        "request" => Kind::Request,
        "response" => Kind::Response,
        "header" => Kind::Header,
        "data" => Kind::Data,
        other => return Err(format!("unknown message type {other:?}")),
    };
    let api_key = match obj.get("apiKey") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|k| i16::try_from(k).ok())
                .ok_or("apiKey is not an int16")?,
        ),
    };
    let valid_versions = read_versions(obj, "validVersions", &name)?.ok_or("no validVersions")?;
    let flexible_versions =
        read_versions(obj, "flexibleVersions", &name)?.unwrap_or(Versions::NONE);
    let deprecated_versions = read_versions(obj, "deprecatedVersions", &name)?;
    let latest_version_unstable = obj
        .get("latestVersionUnstable")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut structs = Vec::new();
    let fields = obj
        .get("fields")
        .and_then(Value::as_array)
        .ok_or("no fields")?;
    let top_fields = parse_fields(fields, &name, &mut structs)?;
    structs.insert(
        0,
        Struct {
            name: name.clone(),
            fields: top_fields,
        },
    );
    if let Some(common) = obj.get("commonStructs").and_then(Value::as_array) {
        for cs in common {
            let cs = cs.as_object().ok_or("common struct is not an object")?;
            let cs_name = get_str(cs, "name").ok_or("common struct without name")?;
            let fields = cs
                .get("fields")
                .and_then(Value::as_array)
                .ok_or("common struct without fields")?;
            let fields = parse_fields(fields, cs_name, &mut structs)?;
            structs.push(Struct {
                name: cs_name.to_string(),
                fields,
            });
        }
    }
    let spec = Spec {
        name,
        kind,
        api_key,
        valid_versions,
        flexible_versions,
        deprecated_versions,
        latest_version_unstable,
        structs,
        group: group.to_string(),
    };
    check(&spec)?;
    Ok(spec)
}

fn parse_fields(
    fields: &[Value],
    parent: &str,
    structs: &mut Vec<Struct>,
) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    for f in fields {
        let f = f
            .as_object()
            .ok_or_else(|| format!("{parent}: field is not an object"))?;
        let name = get_str(f, "name")
            .ok_or_else(|| format!("{parent}: field without name"))?
            .to_string();
        let what = format!("{parent}.{name}");
        let ty_text = get_str(f, "type").ok_or_else(|| format!("{what}: no type"))?;
        let ty = Type::parse(ty_text);
        let nullable_versions = versions_or_none(f, "nullableVersions", &what)?;
        let tagged_versions = versions_or_none(f, "taggedVersions", &what)?;
        // A tagged field may leave out `versions`: it exists where it is tagged.
        let versions = match read_versions(f, "versions", &what)? {
            Some(v) => v,
            None if !tagged_versions.is_empty() => tagged_versions,
            None => return Err(format!("{what}: no versions")),
        };
        let tag = match f.get("tag") {
            None => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| format!("{what}: bad tag"))?),
            Some(Value::String(s)) => Some(s.parse().map_err(|_| format!("{what}: bad tag"))?),
            Some(_) => return Err(format!("{what}: bad tag")),
        };
        let tag = tag
            .map(|t| u32::try_from(t).map_err(|_| format!("{what}: tag too large")))
            .transpose()?;
        let default = match f.get("default") {
            None | Some(Value::Null) => f.get("default").map(|_| "null".to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(format!("{what}: unsupported default")),
        };
        let ignorable = f.get("ignorable").and_then(Value::as_bool).unwrap_or(false);
        let flexible_versions = read_versions(f, "flexibleVersions", &what)?;
        if let Some(sub) = f.get("fields").and_then(Value::as_array) {
            let struct_name = match &ty {
                Type::Struct(n) => n.clone(),
                Type::Array(inner) => match inner.as_ref() {
                    Type::Struct(n) => n.clone(),
                    _ => return Err(format!("{what}: fields on a non-struct array")),
                },
                _ => return Err(format!("{what}: fields on a non-struct type")),
            };
            let sub_fields = parse_fields(sub, &struct_name, structs)?;
            structs.push(Struct {
                name: struct_name,
                fields: sub_fields,
            });
        }
        out.push(Field {
            name,
            ty,
            versions,
            nullable_versions,
            tagged_versions,
            tag,
            ignorable,
            default,
            flexible_versions,
        });
    }
    Ok(out)
}

fn versions_or_none(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Versions, String> {
    Ok(read_versions(obj, key, what)?.unwrap_or(Versions::NONE))
}

/// Rejects definitions the emitter does not handle, so a new spec fails loudly.
fn check(spec: &Spec) -> Result<(), String> {
    let names: Vec<&str> = spec.structs.iter().map(|s| s.name.as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!("struct {n} defined twice"));
        }
    }
    for s in &spec.structs {
        let mut tags = Vec::new();
        for f in &s.fields {
            let what = format!("{}.{}", s.name, f.name);
            let mut t = &f.ty;
            while let Type::Array(inner) = t {
                t = inner;
            }
            if let Type::Struct(n) = t
                && !names.contains(&n.as_str())
            {
                return Err(format!("{what}: unknown type {n}"));
            }
            if let Type::Array(inner) = &f.ty
                && matches!(**inner, Type::Array(_) | Type::Records)
            {
                return Err(format!("{what}: unsupported element type"));
            }
            match (f.tag, f.tagged_versions.is_empty()) {
                (Some(tag), false) => {
                    if tags.contains(&tag) {
                        return Err(format!("{what}: duplicate tag {tag}"));
                    }
                    tags.push(tag);
                    let tagged = f.tagged_versions.intersect(&spec.valid_versions);
                    if !spec.flexible_versions.covers(&tagged) {
                        return Err(format!("{what}: tagged in a non-flexible version"));
                    }
                }
                (None, true) => {}
                _ => return Err(format!("{what}: tag and taggedVersions must come together")),
            }
            if let Some(fv) = f.flexible_versions
                && !fv.is_empty()
            {
                return Err(format!(
                    "{what}: only flexibleVersions \"none\" is supported"
                ));
            }
            if f.default.as_deref() == Some("null") && !f.is_nullable() {
                return Err(format!("{what}: null default on a non-nullable field"));
            }
        }
    }
    if spec.flexible_versions.hi != i16::MAX && !spec.flexible_versions.is_empty() {
        return Err("flexibleVersions must be open-ended or none".into());
    }
    Ok(())
}
