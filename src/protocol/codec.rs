//! The hand-written half of the message codec: the traits every generated message
//! implements, the `Encoder` that carries splice points for zero-copy fetches, `Records`,
//! the error types, and the helpers the generated code calls for strings, bytes, arrays,
//! records and tagged fields.
//!
//! Owns: the rules that are the same for every message (compact vs classic lengths, null
//! markers, tagged-field framing, never reserving more than the input can justify). The
//! generated code owns only what differs per message: which fields exist in which version.
//! Runs on the shard that decodes or encodes a frame; nothing here is shared.
//!
//! Invariants: decoding never panics and never reserves memory for more elements than
//! the bytes left in the frame could hold; `encoded_len` is exactly the number of bytes
//! `encode` puts on the wire (spliced record bytes included); errors name the message,
//! version and field path, and the path is only built when an error happens.

use crate::protocol::generated::ApiKey;
use crate::protocol::wire::{self, Reader, Uuid, WireError};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// An inclusive range of message versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

impl VersionRange {
    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// What the specs say about a top-level message (request, response, header or data record).
pub trait Message {
    const NAME: &'static str;
    /// Every version this codec reads and writes.
    const VERSIONS: VersionRange;
    /// The first flexible version (compact encodings, tagged fields), if any.
    const FLEXIBLE_FROM: Option<i16>;
    const DEPRECATED_VERSIONS: Option<VersionRange>;
    /// The highest version is still under development in Kafka and may change.
    const LATEST_VERSION_UNSTABLE: bool;

    fn is_flexible(version: i16) -> bool {
        matches!(Self::FLEXIBLE_FROM, Some(from) if version >= from)
    }
}

pub trait Encodable {
    /// Appends the encoding of `self` at `version` to `w`.
    fn encode(&self, w: &mut Encoder, version: i16) -> Result<(), EncodeError>;
    /// The exact number of bytes `encode` puts on the wire, spliced record bytes included.
    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError>;
}

pub trait Decodable: Sized {
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError>;
}

/// A request body, tied to its API key and response type.
pub trait Request: Message + Encodable + Decodable {
    const API_KEY: ApiKey;
    type Response: Response<Request = Self>;
}

/// A response body, tied to its API key and request type.
pub trait Response: Message + Encodable + Decodable {
    const API_KEY: ApiKey;
    type Request: Request<Response = Self>;
}

/// Record data carried by Produce requests, Fetch responses and the like.
#[derive(Clone, PartialEq, Eq)]
pub enum Records {
    /// Record batches in memory; decoding always produces this, as a slice of the frame.
    Bytes(Bytes),
    /// `len` bytes the server splices in later from a segment file (sendfile); encoding
    /// writes only the length prefix and records a [`Splice`] with this `id`.
    Spliced { len: u32, id: u32 },
}

impl Records {
    /// Bytes of record data on the wire (not counting the length prefix).
    pub fn len(&self) -> usize {
        match self {
            Records::Bytes(b) => b.len(),
            Records::Spliced { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Records {
    fn default() -> Self {
        Records::Bytes(Bytes::new())
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Records::Bytes(b) => write!(f, "Records::Bytes({} bytes)", b.len()),
            Records::Spliced { len, id } => {
                write!(f, "Records::Spliced {{ len: {len}, id: {id} }}")
            }
        }
    }
}

/// A tagged field this codec does not know, kept as raw bytes so it survives re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTaggedField {
    pub tag: u32,
    pub data: Bytes,
}

/// A place in the encoded bytes where `len` bytes of spliced records (`id`) belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splice {
    /// Offset in [`Encoder::bytes`] before which the spliced bytes go.
    pub position: usize,
    pub len: u32,
    pub id: u32,
}

/// The output of encoding: bytes, plus the splice points where file ranges go.
///
/// The wire image is: `bytes[..s0.position]`, splice `s0`, `bytes[s0.position..s1.position]`,
/// splice `s1`, ..., the rest of `bytes`. With no splices it is just `bytes`, and the
/// splice list never allocates.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: BytesMut,
    splices: Vec<Splice>,
    spliced_len: usize,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Encoder {
            buf: BytesMut::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// The encoded bytes (without spliced record data).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn splices(&self) -> &[Splice] {
        &self.splices
    }

    /// Bytes in the buffer (without spliced record data).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.splices.is_empty()
    }

    /// Bytes on the wire: the buffer plus every splice.
    pub fn wire_len(&self) -> usize {
        self.buf.len() + self.spliced_len
    }

    pub fn into_parts(self) -> (BytesMut, Vec<Splice>) {
        (self.buf, self.splices)
    }

    /// The encoded bytes; only meaningful when nothing was spliced.
    pub fn into_bytes(self) -> Bytes {
        debug_assert!(
            self.splices.is_empty(),
            "spliced output has no single image"
        );
        self.buf.freeze()
    }

    /// Reserves a 4-byte size prefix; pass the result to [`Encoder::finish_size_prefix`].
    pub fn start_size_prefix(&mut self) -> SizePrefix {
        let mark = SizePrefix {
            position: self.buf.len(),
            wire_len: self.wire_len(),
        };
        self.buf.put_i32(0);
        mark
    }

    /// Writes the number of wire bytes (splices included) encoded since `mark`.
    pub fn finish_size_prefix(&mut self, mark: SizePrefix) -> Result<(), EncodeError> {
        let size = self.wire_len() - mark.wire_len - 4;
        let size = i32::try_from(size).map_err(|_| {
            EncodeError::new(EncodeErrorKind::TooLong {
                len: size,
                max: i32::MAX as usize,
            })
        })?;
        self.buf[mark.position..mark.position + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }

    #[inline]
    pub fn put_bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }
    #[inline]
    pub fn put_i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }
    #[inline]
    pub fn put_i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }
    #[inline]
    pub fn put_i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }
    #[inline]
    pub fn put_i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }
    #[inline]
    pub fn put_u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }
    #[inline]
    pub fn put_u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }
    #[inline]
    pub fn put_f64(&mut self, v: f64) {
        self.buf.put_f64(v);
    }
    #[inline]
    pub fn put_uuid(&mut self, v: Uuid) {
        self.buf.put_slice(&v.0);
    }
    #[inline]
    pub fn put_unsigned_varint(&mut self, v: u32) {
        wire::put_unsigned_varint(&mut self.buf, v);
    }
    #[inline]
    pub fn put_slice(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    /// Records that `len` bytes (`id`) go at the current position.
    #[inline]
    pub fn splice(&mut self, len: u32, id: u32) {
        self.splices.push(Splice {
            position: self.buf.len(),
            len,
            id,
        });
        self.spliced_len += len as usize;
    }
}

/// Where a size prefix was reserved (see [`Encoder::start_size_prefix`]).
#[derive(Debug, Clone, Copy)]
pub struct SizePrefix {
    position: usize,
    wire_len: usize,
}

/// One step of a field path: a field name, an array index or a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSegment {
    Field(&'static str),
    Index(usize),
}

/// Field path, innermost segment first (the order errors collect them in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldPath(Vec<PathSegment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in self.0.iter().rev() {
            match seg {
                PathSegment::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Writes "Name vN: path: " for whichever of those parts are known.
fn write_location(
    f: &mut fmt::Formatter<'_>,
    message: Option<&str>,
    version: i16,
    path: &FieldPath,
) -> fmt::Result {
    if let Some(message) = message {
        write!(f, "{message} v{version}: ")?;
    }
    if !path.0.is_empty() {
        write!(f, "{path}: ")?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    Wire(WireError),
    /// A null where this version does not allow one.
    UnexpectedNull,
    /// A message version outside the range this codec knows.
    UnsupportedVersion,
    /// An array count larger than the bytes left could hold (one byte per element at least).
    CountTooLarge {
        count: usize,
        remaining: usize,
    },
    /// A known tagged field whose value did not fill its declared size.
    TaggedFieldSize {
        tag: u32,
        unread: usize,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Wire(e) => write!(f, "{e}"),
            DecodeErrorKind::UnexpectedNull => write!(f, "null in a non-nullable field"),
            DecodeErrorKind::UnsupportedVersion => write!(f, "unsupported version"),
            DecodeErrorKind::CountTooLarge { count, remaining } => {
                write!(f, "{count} elements claimed, {remaining} bytes remaining")
            }
            DecodeErrorKind::TaggedFieldSize { tag, unread } => {
                write!(f, "tagged field {tag} left {unread} bytes unread")
            }
        }
    }
}

/// A decoding failure: what went wrong and where (message, version, field path).
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError(Box<DecodeErrorInner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DecodeErrorInner {
    message: Option<&'static str>,
    version: i16,
    path: FieldPath,
    kind: DecodeErrorKind,
}

impl DecodeError {
    #[cold]
    pub fn new(kind: DecodeErrorKind) -> Self {
        DecodeError(Box::new(DecodeErrorInner {
            message: None,
            version: 0,
            path: FieldPath::default(),
            kind,
        }))
    }

    #[cold]
    pub fn unsupported_version(message: &'static str, version: i16) -> Self {
        Self::new(DecodeErrorKind::UnsupportedVersion).within(message, version)
    }

    /// Adds the field this error happened in (called innermost first).
    #[cold]
    pub fn in_field(mut self, field: &'static str) -> Self {
        self.0.path.0.push(PathSegment::Field(field));
        self
    }

    #[cold]
    pub fn at_index(mut self, index: usize) -> Self {
        self.0.path.0.push(PathSegment::Index(index));
        self
    }

    /// Names the top-level message (the outermost call wins).
    #[cold]
    pub fn within(mut self, message: &'static str, version: i16) -> Self {
        self.0.message = Some(message);
        self.0.version = version;
        self
    }

    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }

    pub fn message(&self) -> Option<&'static str> {
        self.0.message
    }

    pub fn version(&self) -> i16 {
        self.0.version
    }

    /// The field path, e.g. `topic_data[2].partition_data[0].records`.
    pub fn path(&self) -> String {
        self.0.path.to_string()
    }
}

impl From<WireError> for DecodeError {
    #[cold]
    fn from(e: WireError) -> Self {
        DecodeError::new(DecodeErrorKind::Wire(e))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, self.0.message, self.0.version, &self.0.path)?;
        write!(f, "{}", self.0.kind)
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecodeError({self})")
    }
}

impl std::error::Error for DecodeError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeErrorKind {
    /// The field does not exist in this version and holds a non-default value.
    NonDefaultInVersion,
    /// A null where this version does not allow one.
    NullNotAllowed,
    /// A string, byte array or array longer than its length prefix can express.
    TooLong { len: usize, max: usize },
    /// A message version outside the range this codec knows.
    UnsupportedVersion,
    /// Unknown tagged fields are set but this version has no tagged fields.
    TaggedFieldsNotSupported,
}

impl fmt::Display for EncodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeErrorKind::NonDefaultInVersion => {
                write!(f, "non-default value in a version without this field")
            }
            EncodeErrorKind::NullNotAllowed => {
                write!(f, "null in a version where it is not nullable")
            }
            EncodeErrorKind::TooLong { len, max } => write!(f, "length {len} exceeds {max}"),
            EncodeErrorKind::UnsupportedVersion => write!(f, "unsupported version"),
            EncodeErrorKind::TaggedFieldsNotSupported => {
                write!(f, "tagged fields set in a version without tagged fields")
            }
        }
    }
}

/// An encoding failure: what could not be encoded and where.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodeError(Box<EncodeErrorInner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct EncodeErrorInner {
    message: Option<&'static str>,
    version: i16,
    path: FieldPath,
    kind: EncodeErrorKind,
}

impl EncodeError {
    #[cold]
    pub fn new(kind: EncodeErrorKind) -> Self {
        EncodeError(Box::new(EncodeErrorInner {
            message: None,
            version: 0,
            path: FieldPath::default(),
            kind,
        }))
    }

    #[cold]
    pub fn unsupported_version(message: &'static str, version: i16) -> Self {
        Self::new(EncodeErrorKind::UnsupportedVersion).within(message, version)
    }

    #[cold]
    pub fn non_default(field: &'static str) -> Self {
        Self::new(EncodeErrorKind::NonDefaultInVersion).in_field(field)
    }

    #[cold]
    pub fn in_field(mut self, field: &'static str) -> Self {
        self.0.path.0.push(PathSegment::Field(field));
        self
    }

    #[cold]
    pub fn at_index(mut self, index: usize) -> Self {
        self.0.path.0.push(PathSegment::Index(index));
        self
    }

    #[cold]
    pub fn within(mut self, message: &'static str, version: i16) -> Self {
        self.0.message = Some(message);
        self.0.version = version;
        self
    }

    pub fn kind(&self) -> &EncodeErrorKind {
        &self.0.kind
    }

    pub fn message(&self) -> Option<&'static str> {
        self.0.message
    }

    pub fn version(&self) -> i16 {
        self.0.version
    }

    pub fn path(&self) -> String {
        self.0.path.to_string()
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, self.0.message, self.0.version, &self.0.path)?;
        write!(f, "{}", self.0.kind)
    }
}

impl fmt::Debug for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodeError({self})")
    }
}

impl std::error::Error for EncodeError {}

/// Attaches a field name to an error on its way out; free on success.
pub trait Context {
    type Out;
    fn ctx(self, field: &'static str) -> Self::Out;
}

impl<T> Context for Result<T, WireError> {
    type Out = Result<T, DecodeError>;
    #[inline]
    fn ctx(self, field: &'static str) -> Self::Out {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(DecodeError::from(e).in_field(field)),
        }
    }
}

impl<T> Context for Result<T, DecodeError> {
    type Out = Result<T, DecodeError>;
    #[inline]
    fn ctx(self, field: &'static str) -> Self::Out {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(e.in_field(field)),
        }
    }
}

impl<T> Context for Result<T, EncodeError> {
    type Out = Result<T, EncodeError>;
    #[inline]
    fn ctx(self, field: &'static str) -> Self::Out {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(e.in_field(field)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Decoding helpers, called by the generated code.
// ---------------------------------------------------------------------------------------

/// Elements reserved up front at most; beyond this a vector grows as elements decode.
/// Together with the remaining-bytes bound this keeps a hostile count from reserving
/// memory the frame does not carry.
const MAX_PREALLOCATED_ELEMENTS: usize = 1024;

#[inline]
fn read_len(r: &mut Reader, compact: bool) -> Result<Option<usize>, DecodeError> {
    Ok(if compact {
        r.compact_len()?
    } else {
        r.nullable_len_i16()?
    })
}

#[inline]
fn read_len32(r: &mut Reader, compact: bool) -> Result<Option<usize>, DecodeError> {
    Ok(if compact {
        r.compact_len()?
    } else {
        r.nullable_len_i32()?
    })
}

#[cold]
fn unexpected_null() -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnexpectedNull)
}

#[inline]
pub fn read_string(r: &mut Reader, compact: bool) -> Result<String, DecodeError> {
    match read_len(r, compact)? {
        Some(n) => Ok(r.string(n)?),
        None => Err(unexpected_null()),
    }
}

#[inline]
pub fn read_opt_string(
    r: &mut Reader,
    compact: bool,
    nullable: bool,
) -> Result<Option<String>, DecodeError> {
    match read_len(r, compact)? {
        Some(n) => Ok(Some(r.string(n)?)),
        None if nullable => Ok(None),
        None => Err(unexpected_null()),
    }
}

#[inline]
pub fn read_bytes(r: &mut Reader, compact: bool) -> Result<Bytes, DecodeError> {
    match read_len32(r, compact)? {
        Some(n) => Ok(r.bytes(n)?),
        None => Err(unexpected_null()),
    }
}

#[inline]
pub fn read_opt_bytes(
    r: &mut Reader,
    compact: bool,
    nullable: bool,
) -> Result<Option<Bytes>, DecodeError> {
    match read_len32(r, compact)? {
        Some(n) => Ok(Some(r.bytes(n)?)),
        None if nullable => Ok(None),
        None => Err(unexpected_null()),
    }
}

/// Record data as a zero-copy slice of the frame.
#[inline]
pub fn read_records(
    r: &mut Reader,
    compact: bool,
    nullable: bool,
) -> Result<Option<Records>, DecodeError> {
    Ok(read_opt_bytes(r, compact, nullable)?.map(Records::Bytes))
}

/// A nullable struct: a marker byte (negative for null) and then the struct.
#[inline]
pub fn read_opt_struct<T>(
    r: &mut Reader,
    nullable: bool,
    f: impl FnOnce(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if r.i8()? < 0 {
        if nullable {
            Ok(None)
        } else {
            Err(unexpected_null())
        }
    } else {
        f(r).map(Some)
    }
}

#[inline]
fn read_elements<T>(
    r: &mut Reader,
    count: usize,
    min_element_size: usize,
    mut f: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let remaining = r.remaining();
    // Every element takes at least one byte, as Kafka's own decoder assumes.
    if count > remaining {
        return Err(DecodeError::new(DecodeErrorKind::CountTooLarge {
            count,
            remaining,
        }));
    }
    let capacity = count
        .min(remaining / min_element_size.max(1))
        .min(MAX_PREALLOCATED_ELEMENTS);
    let mut items = Vec::with_capacity(capacity);
    for i in 0..count {
        match f(r) {
            Ok(item) => items.push(item),
            Err(e) => return Err(e.at_index(i)),
        }
    }
    Ok(items)
}

#[inline]
pub fn read_array<T>(
    r: &mut Reader,
    compact: bool,
    min_element_size: usize,
    f: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    match read_len32(r, compact)? {
        Some(n) => read_elements(r, n, min_element_size, f),
        None => Err(unexpected_null()),
    }
}

#[inline]
pub fn read_opt_array<T>(
    r: &mut Reader,
    compact: bool,
    nullable: bool,
    min_element_size: usize,
    f: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    match read_len32(r, compact)? {
        Some(n) => read_elements(r, n, min_element_size, f).map(Some),
        None if nullable => Ok(None),
        None => Err(unexpected_null()),
    }
}

/// The number of tagged fields that follow.
#[inline]
pub fn read_tag_count(r: &mut Reader) -> Result<u32, DecodeError> {
    Ok(r.unsigned_varint()?)
}

/// One tagged field's tag and a reader over exactly its value.
#[inline]
pub fn read_tagged_field(r: &mut Reader) -> Result<(u32, Reader), DecodeError> {
    let tag = r.unsigned_varint()?;
    let size = r.unsigned_varint()? as usize;
    Ok((tag, Reader::new(r.bytes(size)?)))
}

/// Checks that a known tagged field's value used all of its bytes.
#[inline]
pub fn finish_tagged_field(value: &Reader, tag: u32) -> Result<(), DecodeError> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::new(DecodeErrorKind::TaggedFieldSize {
            tag,
            unread: value.remaining(),
        }))
    }
}

/// Keeps unknown tagged fields in tag order (stable, so duplicates keep theirs).
#[inline]
pub fn sort_unknown_tagged_fields(fields: &mut [RawTaggedField]) {
    if !fields.is_sorted_by_key(|f| f.tag) {
        fields.sort_by_key(|f| f.tag);
    }
}

// ---------------------------------------------------------------------------------------
// Encoding helpers and their exact lengths.
// ---------------------------------------------------------------------------------------

#[cold]
fn too_long(len: usize, max: usize) -> EncodeError {
    EncodeError::new(EncodeErrorKind::TooLong { len, max })
}

#[cold]
fn null_not_allowed() -> EncodeError {
    EncodeError::new(EncodeErrorKind::NullNotAllowed)
}

/// Compact lengths are `len + 1` in an unsigned varint.
const COMPACT_MAX: usize = u32::MAX as usize - 1;
const STRING_MAX: usize = i16::MAX as usize;
const BYTES_MAX: usize = i32::MAX as usize;

#[inline]
fn put_len(
    w: &mut Encoder,
    len: Option<usize>,
    compact: bool,
    max: usize,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => w.put_unsigned_varint(0),
        (Some(n), true) if n <= COMPACT_MAX => w.put_unsigned_varint(n as u32 + 1),
        (None, false) if max == STRING_MAX => w.put_i16(-1),
        (None, false) => w.put_i32(-1),
        (Some(n), false) if n <= max && max == STRING_MAX => w.put_i16(n as i16),
        (Some(n), false) if n <= max => w.put_i32(n as i32),
        (Some(n), true) => return Err(too_long(n, COMPACT_MAX)),
        (Some(n), false) => return Err(too_long(n, max)),
    }
    Ok(())
}

#[inline]
fn len_prefix_len(len: Option<usize>, compact: bool, max: usize) -> Result<usize, EncodeError> {
    match (len, compact) {
        (None, true) => Ok(1),
        (Some(n), true) if n <= COMPACT_MAX => Ok(wire::unsigned_varint_len(n as u32 + 1)),
        (None, false) if max == STRING_MAX => Ok(2),
        (None, false) => Ok(4),
        (Some(n), false) if n <= max && max == STRING_MAX => Ok(2),
        (Some(n), false) if n <= max => Ok(4),
        (Some(n), true) => Err(too_long(n, COMPACT_MAX)),
        (Some(n), false) => Err(too_long(n, max)),
    }
}

#[inline]
pub fn write_string(w: &mut Encoder, s: &str, compact: bool) -> Result<(), EncodeError> {
    put_len(w, Some(s.len()), compact, STRING_MAX)?;
    w.put_slice(s.as_bytes());
    Ok(())
}

#[inline]
pub fn write_opt_string(
    w: &mut Encoder,
    s: Option<&str>,
    compact: bool,
    nullable: bool,
) -> Result<(), EncodeError> {
    match s {
        Some(s) => write_string(w, s, compact),
        None if nullable => put_len(w, None, compact, STRING_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn string_len(s: &str, compact: bool) -> Result<usize, EncodeError> {
    Ok(len_prefix_len(Some(s.len()), compact, STRING_MAX)? + s.len())
}

#[inline]
pub fn opt_string_len(
    s: Option<&str>,
    compact: bool,
    nullable: bool,
) -> Result<usize, EncodeError> {
    match s {
        Some(s) => string_len(s, compact),
        None if nullable => len_prefix_len(None, compact, STRING_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn write_bytes(w: &mut Encoder, b: &[u8], compact: bool) -> Result<(), EncodeError> {
    put_len(w, Some(b.len()), compact, BYTES_MAX)?;
    w.put_slice(b);
    Ok(())
}

#[inline]
pub fn write_opt_bytes(
    w: &mut Encoder,
    b: Option<&[u8]>,
    compact: bool,
    nullable: bool,
) -> Result<(), EncodeError> {
    match b {
        Some(b) => write_bytes(w, b, compact),
        None if nullable => put_len(w, None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn bytes_len(b: &[u8], compact: bool) -> Result<usize, EncodeError> {
    Ok(len_prefix_len(Some(b.len()), compact, BYTES_MAX)? + b.len())
}

#[inline]
pub fn opt_bytes_len(
    b: Option<&[u8]>,
    compact: bool,
    nullable: bool,
) -> Result<usize, EncodeError> {
    match b {
        Some(b) => bytes_len(b, compact),
        None if nullable => len_prefix_len(None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

/// Records in memory are copied; spliced records write only their length prefix.
#[inline]
pub fn write_records(
    w: &mut Encoder,
    records: Option<&Records>,
    compact: bool,
    nullable: bool,
) -> Result<(), EncodeError> {
    match records {
        Some(Records::Bytes(b)) => write_bytes(w, b, compact),
        Some(Records::Spliced { len, id }) => {
            put_len(w, Some(*len as usize), compact, BYTES_MAX)?;
            w.splice(*len, *id);
            Ok(())
        }
        None if nullable => put_len(w, None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn records_len(
    records: Option<&Records>,
    compact: bool,
    nullable: bool,
) -> Result<usize, EncodeError> {
    match records {
        Some(records) => {
            let len = records.len();
            Ok(len_prefix_len(Some(len), compact, BYTES_MAX)? + len)
        }
        None if nullable => len_prefix_len(None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn write_opt_struct<T>(
    w: &mut Encoder,
    value: Option<&T>,
    nullable: bool,
    f: impl FnOnce(&mut Encoder, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    match value {
        Some(v) => {
            w.put_i8(1);
            f(w, v)
        }
        None if nullable => {
            w.put_i8(-1);
            Ok(())
        }
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn opt_struct_len<T>(
    value: Option<&T>,
    nullable: bool,
    f: impl FnOnce(&T) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    match value {
        Some(v) => Ok(1 + f(v)?),
        None if nullable => Ok(1),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn write_array<T>(
    w: &mut Encoder,
    items: &[T],
    compact: bool,
    mut f: impl FnMut(&mut Encoder, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_len(w, Some(items.len()), compact, BYTES_MAX)?;
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = f(w, item) {
            return Err(e.at_index(i));
        }
    }
    Ok(())
}

#[inline]
pub fn write_opt_array<T>(
    w: &mut Encoder,
    items: Option<&[T]>,
    compact: bool,
    nullable: bool,
    f: impl FnMut(&mut Encoder, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    match items {
        Some(items) => write_array(w, items, compact, f),
        None if nullable => put_len(w, None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn array_len<T>(
    items: &[T],
    compact: bool,
    mut f: impl FnMut(&T) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    let mut len = len_prefix_len(Some(items.len()), compact, BYTES_MAX)?;
    for (i, item) in items.iter().enumerate() {
        match f(item) {
            Ok(n) => len += n,
            Err(e) => return Err(e.at_index(i)),
        }
    }
    Ok(len)
}

/// An array whose elements all take `element_size` bytes.
#[inline]
pub fn fixed_array_len<T>(
    items: &[T],
    compact: bool,
    element_size: usize,
) -> Result<usize, EncodeError> {
    Ok(len_prefix_len(Some(items.len()), compact, BYTES_MAX)? + items.len() * element_size)
}

#[inline]
pub fn opt_array_len<T>(
    items: Option<&[T]>,
    compact: bool,
    nullable: bool,
    f: impl FnMut(&T) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    match items {
        Some(items) => array_len(items, compact, f),
        None if nullable => len_prefix_len(None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

#[inline]
pub fn opt_fixed_array_len<T>(
    items: Option<&[T]>,
    compact: bool,
    nullable: bool,
    element_size: usize,
) -> Result<usize, EncodeError> {
    match items {
        Some(items) => fixed_array_len(items, compact, element_size),
        None if nullable => len_prefix_len(None, compact, BYTES_MAX),
        None => Err(null_not_allowed()),
    }
}

/// Fails when unknown tagged fields are set on a version that cannot carry them.
#[inline]
pub fn check_no_tagged_fields(unknown: &[RawTaggedField]) -> Result<(), EncodeError> {
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::new(EncodeErrorKind::TaggedFieldsNotSupported))
    }
}

#[inline]
pub fn write_tag_count(w: &mut Encoder, count: usize) -> Result<(), EncodeError> {
    let count = u32::try_from(count).map_err(|_| too_long(count, u32::MAX as usize))?;
    w.put_unsigned_varint(count);
    Ok(())
}

#[inline]
pub fn tag_count_len(count: usize) -> Result<usize, EncodeError> {
    let count = u32::try_from(count).map_err(|_| too_long(count, u32::MAX as usize))?;
    Ok(wire::unsigned_varint_len(count))
}

/// The tag and size that precede a tagged field's value of `len` bytes.
#[inline]
pub fn write_tag_header(w: &mut Encoder, tag: u32, len: usize) -> Result<(), EncodeError> {
    let len = u32::try_from(len).map_err(|_| too_long(len, u32::MAX as usize))?;
    w.put_unsigned_varint(tag);
    w.put_unsigned_varint(len);
    Ok(())
}

#[inline]
pub fn tag_header_len(tag: u32, len: usize) -> Result<usize, EncodeError> {
    let len = u32::try_from(len).map_err(|_| too_long(len, u32::MAX as usize))?;
    Ok(wire::unsigned_varint_len(tag) + wire::unsigned_varint_len(len))
}

/// Writes unknown tagged fields from index `from` whose tag is below `below`; returns the
/// index of the first one not written. Keeps known and unknown fields in tag order.
#[inline]
pub fn write_unknown_tagged_fields(
    w: &mut Encoder,
    fields: &[RawTaggedField],
    from: usize,
    below: u64,
) -> Result<usize, EncodeError> {
    let mut i = from;
    while let Some(field) = fields.get(i) {
        if u64::from(field.tag) >= below {
            break;
        }
        write_tag_header(w, field.tag, field.data.len())?;
        w.put_slice(&field.data);
        i += 1;
    }
    Ok(i)
}

#[inline]
pub fn unknown_tagged_fields_len(fields: &[RawTaggedField]) -> Result<usize, EncodeError> {
    let mut len = 0;
    for field in fields {
        len += tag_header_len(field.tag, field.data.len())? + field.data.len();
    }
    Ok(len)
}

/// The size of the tagged-field section that holds only `fields` (no known ones).
#[inline]
pub fn only_unknown_tagged_fields_len(fields: &[RawTaggedField]) -> Result<usize, EncodeError> {
    Ok(tag_count_len(fields.len())? + unknown_tagged_fields_len(fields)?)
}

/// Writes a tagged-field section that holds only `fields` (no known ones).
#[inline]
pub fn write_only_unknown_tagged_fields(
    w: &mut Encoder,
    fields: &[RawTaggedField],
) -> Result<(), EncodeError> {
    write_tag_count(w, fields.len())?;
    write_unknown_tagged_fields(w, fields, 0, u64::MAX)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_names_message_version_and_field_path() {
        let e = DecodeError::from(WireError::Truncated {
            needed: 40,
            remaining: 3,
        })
        .in_field("records")
        .at_index(0)
        .in_field("partition_data")
        .at_index(2)
        .in_field("topic_data")
        .within("ProduceRequest", 9);
        assert_eq!(
            e.to_string(),
            "ProduceRequest v9: topic_data[2].partition_data[0].records: \
             truncated: needed 40 bytes, 3 remaining"
        );
        assert_eq!(e.path(), "topic_data[2].partition_data[0].records");
    }

    #[test]
    fn errors_stay_one_pointer_wide() {
        assert_eq!(
            std::mem::size_of::<DecodeError>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<EncodeError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn spliced_records_write_only_their_length_and_count_in_the_size_prefix() {
        let mut w = Encoder::new();
        let mark = w.start_size_prefix();
        w.put_i16(7);
        let records = Records::Spliced { len: 1000, id: 3 };
        write_records(&mut w, Some(&records), false, true).unwrap();
        w.put_i16(8);
        w.finish_size_prefix(mark).unwrap();
        assert_eq!(w.len(), 4 + 2 + 4 + 2);
        assert_eq!(w.wire_len(), w.len() + 1000);
        assert_eq!(&w.bytes()[..4], &(2 + 4 + 1000 + 2i32).to_be_bytes());
        assert_eq!(
            w.splices(),
            &[Splice {
                position: 10,
                len: 1000,
                id: 3
            }]
        );
        assert_eq!(records_len(Some(&records), false, true).unwrap(), 1004);
    }

    #[test]
    fn an_encoder_without_splices_allocates_no_splice_list() {
        let w = Encoder::new();
        assert_eq!(w.splices.capacity(), 0);
    }

    #[test]
    fn array_counts_beyond_the_remaining_bytes_are_rejected_before_reserving() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]));
        let e = read_array(&mut r, false, 4, |r| Ok(r.i32()?)).unwrap_err();
        assert_eq!(
            e.kind(),
            &DecodeErrorKind::CountTooLarge {
                count: i32::MAX as usize,
                remaining: 4
            }
        );
    }

    #[test]
    fn nulls_are_rejected_where_the_version_does_not_allow_them() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(
            read_string(&mut r, false).unwrap_err().kind(),
            &DecodeErrorKind::UnexpectedNull
        );
        let mut r = Reader::new(Bytes::from_static(&[0]));
        assert_eq!(read_opt_string(&mut r, true, true), Ok(None));
        let mut w = Encoder::new();
        assert_eq!(
            write_opt_string(&mut w, None, false, false)
                .unwrap_err()
                .kind(),
            &EncodeErrorKind::NullNotAllowed
        );
    }
}
