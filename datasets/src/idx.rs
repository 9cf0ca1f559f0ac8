//! The IDX file format (as used by MNIST): reading every type code and any
//! number of dimensions, raw or gzip (detected from the content), and writing
//! atomically.
//!
//! Layout: `00 00 <type> <ndim>`, then `ndim` big-endian u32 dimensions, then
//! the big-endian data in row-major order.
//!
//! Nothing is allocated from the header's claims alone: the data is read
//! through `take(expected + 1)` into buffers that grow only as bytes actually
//! arrive, so a 100-byte file claiming billions of items fails at once.

use byteorder::{BigEndian, ByteOrder};
use engine::fsio::read_full;
use engine::{checked_numel, ShapeError, Tensor};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

/// The element type of an IDX file, with its type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdxType {
    /// 0x08: unsigned byte.
    U8,
    /// 0x09: signed byte.
    I8,
    /// 0x0B: big-endian i16.
    I16,
    /// 0x0C: big-endian i32.
    I32,
    /// 0x0D: big-endian f32.
    F32,
    /// 0x0E: big-endian f64.
    F64,
}

impl IdxType {
    /// The type code byte written in the header.
    pub fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }

    /// The type for a header code, or `None` if the code is not defined.
    pub fn from_code(code: u8) -> Option<IdxType> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// The elements of an IDX array, in their stored type.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Type code 0x08.
    U8(Vec<u8>),
    /// Type code 0x09.
    I8(Vec<i8>),
    /// Type code 0x0B.
    I16(Vec<i16>),
    /// Type code 0x0C.
    I32(Vec<i32>),
    /// Type code 0x0D.
    F32(Vec<f32>),
    /// Type code 0x0E.
    F64(Vec<f64>),
}

impl IdxData {
    /// The element type.
    pub fn idx_type(&self) -> IdxType {
        match self {
            IdxData::U8(_) => IdxType::U8,
            IdxData::I8(_) => IdxType::I8,
            IdxData::I16(_) => IdxType::I16,
            IdxData::I32(_) => IdxType::I32,
            IdxData::F32(_) => IdxType::F32,
            IdxData::F64(_) => IdxType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            IdxData::U8(v) => v.len(),
            IdxData::I8(v) => v.len(),
            IdxData::I16(v) => v.len(),
            IdxData::I32(v) => v.len(),
            IdxData::F32(v) => v.len(),
            IdxData::F64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element converted to f32 (exact for all but large i32 and f64).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            IdxData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            IdxData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            IdxData::I16(v) => v.iter().map(|&x| x as f32).collect(),
            IdxData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            IdxData::F32(v) => v.clone(),
            IdxData::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Big-endian bytes of every element, as stored in an IDX file.
    fn to_be_bytes(&self) -> Vec<u8> {
        match self {
            IdxData::U8(v) => v.clone(),
            IdxData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            IdxData::I16(v) => v.iter().flat_map(|x| x.to_be_bytes()).collect(),
            IdxData::I32(v) => v.iter().flat_map(|x| x.to_be_bytes()).collect(),
            IdxData::F32(v) => v.iter().flat_map(|x| x.to_be_bytes()).collect(),
            IdxData::F64(v) => v.iter().flat_map(|x| x.to_be_bytes()).collect(),
        }
    }

    /// Decodes big-endian bytes (a whole number of elements) of type `t`.
    fn from_be_bytes(t: IdxType, b: Vec<u8>) -> IdxData {
        match t {
            IdxType::U8 => IdxData::U8(b),
            IdxType::I8 => IdxData::I8(b.into_iter().map(|x| x as i8).collect()),
            IdxType::I16 => IdxData::I16(b.chunks_exact(2).map(BigEndian::read_i16).collect()),
            IdxType::I32 => IdxData::I32(b.chunks_exact(4).map(BigEndian::read_i32).collect()),
            IdxType::F32 => IdxData::F32(b.chunks_exact(4).map(BigEndian::read_f32).collect()),
            IdxType::F64 => IdxData::F64(b.chunks_exact(8).map(BigEndian::read_f64).collect()),
        }
    }
}

/// An N-d IDX array: its dimensions and row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: IdxData,
}

impl IdxArray {
    /// Builds an array; errors if the data length is not the product of `dims`.
    pub fn new(dims: Vec<usize>, data: IdxData) -> Result<IdxArray, ShapeError> {
        let n = checked_numel(&dims).ok_or_else(|| ShapeError::Overflow {
            shape: dims.clone(),
        })?;
        if n != data.len() {
            return Err(ShapeError::LengthMismatch {
                shape: dims,
                len: data.len(),
            });
        }
        Ok(IdxArray { dims, data })
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements.
    pub fn data(&self) -> &IdxData {
        &self.data
    }

    /// Consumes the array, returning its elements.
    pub fn into_data(self) -> IdxData {
        self.data
    }

    /// The element type.
    pub fn idx_type(&self) -> IdxType {
        self.data.idx_type()
    }

    /// The number of elements (the product of the dimensions).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when some dimension is zero.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes, if the element type is u8.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }

    /// The values, if the element type is f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            IdxData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Consumes the array, returning its bytes if the element type is u8.
    pub fn into_u8(self) -> Option<Vec<u8>> {
        match self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }

    /// The values as an f32 tensor of shape `dims` (no scaling).
    pub fn to_tensor(&self) -> Tensor {
        // The constructor checked that the length matches the dims.
        Tensor::from_vec(self.data.to_f32_vec(), &self.dims)
    }
}

/// Why an IDX file could not be read or written. Every variant names the file.
#[derive(Debug)]
pub enum IdxError {
    /// An operating-system error while opening, reading or writing.
    Io {
        /// The file involved.
        file: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The first two bytes are not zero.
    BadMagic {
        /// The file involved.
        file: String,
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The type code (third byte) is not one of 08, 09, 0B, 0C, 0D, 0E.
    UnknownType {
        /// The file involved.
        file: String,
        /// The code found.
        code: u8,
    },
    /// The file ends inside the magic or the dimension list.
    HeaderTruncated {
        /// The file involved.
        file: String,
        /// Header bytes needed.
        expected: usize,
        /// Header bytes present.
        got: usize,
    },
    /// The product of the dimensions (or the byte size) overflows `usize`.
    DimOverflow {
        /// The file involved.
        file: String,
        /// The dimensions claimed.
        dims: Vec<u32>,
    },
    /// The data is shorter than the dimensions say.
    DataTruncated {
        /// The file involved.
        file: String,
        /// Data bytes the header requires.
        expected: u64,
        /// Data bytes present.
        got: u64,
    },
    /// Bytes follow the data.
    TrailingData {
        /// The file involved.
        file: String,
        /// Data bytes the header requires.
        expected: u64,
        /// Extra bytes after them.
        extra: u64,
    },
    /// The gzip stream is damaged (bad header, bad deflate data or checksum).
    CorruptGzip {
        /// The file involved.
        file: String,
        /// The decoder's message.
        detail: String,
    },
    /// The gzip stream ends before its end marker. (Damage that makes the
    /// decoder run past the real end is indistinguishable and lands here too.)
    TruncatedGzip {
        /// The file involved.
        file: String,
        /// The decoder's message.
        detail: String,
    },
    /// The array cannot be written as IDX (over 255 dims, or a dim over u32).
    NotRepresentable {
        /// The file involved.
        file: String,
        /// What does not fit.
        problem: String,
    },
}

impl IdxError {
    /// The file (or stream name) the error is about.
    pub fn file(&self) -> &str {
        match self {
            IdxError::Io { file, .. }
            | IdxError::BadMagic { file, .. }
            | IdxError::UnknownType { file, .. }
            | IdxError::HeaderTruncated { file, .. }
            | IdxError::DimOverflow { file, .. }
            | IdxError::DataTruncated { file, .. }
            | IdxError::TrailingData { file, .. }
            | IdxError::CorruptGzip { file, .. }
            | IdxError::TruncatedGzip { file, .. }
            | IdxError::NotRepresentable { file, .. } => file,
        }
    }
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::Io { file, source } => write!(f, "{file}: I/O error: {source}"),
            IdxError::BadMagic { file, found } => write!(
                f,
                "{file}: not an IDX file: expected magic 00 00 <type> <ndim>, found {found:02x?}"
            ),
            IdxError::UnknownType { file, code } => write!(
                f,
                "{file}: unknown IDX type code 0x{code:02X} (expected 08, 09, 0B, 0C, 0D or 0E)"
            ),
            IdxError::HeaderTruncated {
                file,
                expected,
                got,
            } => write!(
                f,
                "{file}: IDX header cut short: expected {expected} bytes, got {got}"
            ),
            IdxError::DimOverflow { file, dims } => {
                write!(
                    f,
                    "{file}: IDX dimensions {dims:?} overflow: too many elements"
                )
            }
            IdxError::DataTruncated {
                file,
                expected,
                got,
            } => write!(
                f,
                "{file}: IDX data cut short: expected {expected} bytes, got {got}"
            ),
            IdxError::TrailingData {
                file,
                expected,
                extra,
            } => write!(
                f,
                "{file}: {extra} unexpected bytes after the {expected} IDX data bytes"
            ),
            IdxError::CorruptGzip { file, detail } => {
                write!(f, "{file}: corrupt gzip stream: {detail}")
            }
            IdxError::TruncatedGzip { file, detail } => {
                write!(f, "{file}: gzip stream cut short: {detail}")
            }
            IdxError::NotRepresentable { file, problem } => {
                write!(f, "{file}: cannot write as IDX: {problem}")
            }
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdxError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Wraps the compressed source so that, when the gzip decoder fails, we can
/// tell an I/O error of the file from damage in the stream.
struct Watch<R> {
    inner: R,
    failed: Cell<bool>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != io::ErrorKind::Interrupted) {
            self.failed.set(true);
        }
        r
    }
}

/// Reads an IDX file, raw or gzip (decided by the content, not the name).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, IdxError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| IdxError::Io {
        file: name.clone(),
        source,
    })?;
    read_idx_from(BufReader::new(file), &name)
}

/// Reads an IDX array from any reader, raw or gzip (detected from the first
/// two bytes, `1f 8b`); `name` labels errors. The stream must hold exactly one
/// array: bytes after the data are an error.
pub fn read_idx_from(mut reader: impl Read, name: &str) -> Result<IdxArray, IdxError> {
    let mut prefix = [0u8; 2];
    let n = read_full(&mut reader, &mut prefix).map_err(|source| IdxError::Io {
        file: name.to_string(),
        source,
    })?;
    let whole = (&prefix[..n]).chain(reader);
    if n == 2 && prefix == [0x1f, 0x8b] {
        let mut gz = MultiGzDecoder::new(Watch {
            inner: whole,
            failed: Cell::new(false),
        });
        parse(&mut gz, name, |gz, e| {
            if gz.get_ref().failed.get() {
                IdxError::Io {
                    file: name.to_string(),
                    source: e,
                }
            } else if e.kind() == io::ErrorKind::UnexpectedEof {
                IdxError::TruncatedGzip {
                    file: name.to_string(),
                    detail: e.to_string(),
                }
            } else {
                IdxError::CorruptGzip {
                    file: name.to_string(),
                    detail: e.to_string(),
                }
            }
        })
    } else {
        let mut raw = whole;
        parse(&mut raw, name, |_, source| IdxError::Io {
            file: name.to_string(),
            source,
        })
    }
}

/// Parses the decoded IDX bytes; `on_err` turns a read error into an
/// [`IdxError`] (it differs between raw and gzip sources).
fn parse<R: Read>(
    r: &mut R,
    name: &str,
    on_err: impl Fn(&R, io::Error) -> IdxError,
) -> Result<IdxArray, IdxError> {
    let mut magic = [0u8; 4];
    let got = read_full(r, &mut magic).map_err(|e| on_err(r, e))?;
    // Check what we have before complaining about length: a foreign file is
    // "bad magic" even if it is tiny.
    if magic[..got.min(2)].iter().any(|&b| b != 0) {
        return Err(IdxError::BadMagic {
            file: name.to_string(),
            found: magic,
        });
    }
    if got >= 3 && IdxType::from_code(magic[2]).is_none() {
        return Err(IdxError::UnknownType {
            file: name.to_string(),
            code: magic[2],
        });
    }
    if got < 4 {
        return Err(IdxError::HeaderTruncated {
            file: name.to_string(),
            expected: 4,
            got,
        });
    }
    let ty = IdxType::from_code(magic[2]).expect("checked above");
    let ndim = magic[3] as usize;
    let mut dim_bytes = vec![0u8; 4 * ndim];
    let got = read_full(r, &mut dim_bytes).map_err(|e| on_err(r, e))?;
    if got < dim_bytes.len() {
        return Err(IdxError::HeaderTruncated {
            file: name.to_string(),
            expected: 4 + dim_bytes.len(),
            got: 4 + got,
        });
    }
    let raw_dims: Vec<u32> = dim_bytes.chunks_exact(4).map(BigEndian::read_u32).collect();
    let overflow = || IdxError::DimOverflow {
        file: name.to_string(),
        dims: raw_dims.clone(),
    };
    let dims = raw_dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| overflow()))
        .collect::<Result<Vec<usize>, _>>()?;
    let expected = checked_numel(&dims)
        .and_then(|n| n.checked_mul(ty.size()))
        .ok_or_else(overflow)? as u64;

    // Grows only as bytes arrive; the +1 detects trailing data cheaply.
    let mut bytes = Vec::new();
    r.by_ref()
        // Saturating: dims can multiply to exactly u64::MAX bytes.
        .take(expected.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| on_err(r, e))?;
    let got = bytes.len() as u64;
    if got < expected {
        return Err(IdxError::DataTruncated {
            file: name.to_string(),
            expected,
            got,
        });
    }
    // Drain to the end: counts trailing bytes and makes the gzip decoder
    // verify its checksum.
    let extra = got - expected + io::copy(r, &mut io::sink()).map_err(|e| on_err(r, e))?;
    if extra > 0 {
        return Err(IdxError::TrailingData {
            file: name.to_string(),
            expected,
            extra,
        });
    }
    let data = IdxData::from_be_bytes(ty, bytes);
    IdxArray::new(dims, data).map_err(|_| overflow())
}

/// Writes an IDX array to any writer, uncompressed.
///
/// Fails with `InvalidInput` if the array has over 255 dimensions or a
/// dimension over `u32::MAX`.
pub fn write_idx_to(mut w: impl Write, a: &IdxArray) -> io::Result<()> {
    let ndim = u8::try_from(a.dims.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} dimensions (IDX allows at most 255)", a.dims.len()),
        )
    })?;
    let mut head = vec![0, 0, a.idx_type().code(), ndim];
    for &d in &a.dims {
        let d = u32::try_from(d).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dimension {d} exceeds u32::MAX"),
            )
        })?;
        head.extend_from_slice(&d.to_be_bytes());
    }
    w.write_all(&head)?;
    w.write_all(&a.data.to_be_bytes())?;
    w.flush()
}

/// Writes an IDX array to `path` atomically (temp file in the same directory,
/// synced, then renamed). Gzip-compressed if the path ends in `.gz`.
///
/// Every element type can be written; MNIST uses u8.
pub fn write_idx(path: impl AsRef<Path>, a: &IdxArray) -> Result<(), IdxError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::InvalidInput {
            IdxError::NotRepresentable {
                file: name.clone(),
                problem: source.to_string(),
            }
        } else {
            IdxError::Io {
                file: name.clone(),
                source,
            }
        }
    };
    let gzip = path.extension().is_some_and(|e| e == "gz");
    engine::fsio::write_atomic(path, |w| {
        if gzip {
            let mut gz = GzEncoder::new(w, Compression::default());
            write_idx_to(&mut gz, a)?;
            gz.finish().map(|_| ())
        } else {
            write_idx_to(w, a)
        }
    })
    .map_err(io_err)
}
