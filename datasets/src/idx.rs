//! The IDX file format (as used by MNIST): reading every type code and any
//! number of dimensions, raw or gzip (detected from the content), and writing
//! atomically.
//!
//! Layout: `00 00 <type> <ndim>`, then `ndim` big-endian u32 dimensions, then
//! the big-endian data in row-major order.
//!
//! Loading ([`read_idx`]) refuses, from the header alone, a file whose
//! decompressed size is over a limit ([`DEFAULT_MAX_BYTES`] unless told
//! otherwise); below it, memory grows only as data actually arrives (a
//! 100-byte file claiming billions of items fails at once) and an allocation
//! that fails is reported ([`IdxError::OutOfMemory`]), not an abort.
//! [`IdxStream`] reads the data chunk by chunk in constant memory.

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
        /// Extra bytes after them, counted up to [`TRAILING_SCAN`].
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
    /// The decompressed file is larger than the limit on what is loaded
    /// into memory (found from the header, before reading the data).
    TooLarge {
        /// The file involved.
        file: String,
        /// Its decompressed size (header and data) in bytes.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The memory for the data could not be allocated.
    OutOfMemory {
        /// The file involved.
        file: String,
        /// The allocation that failed, in bytes.
        bytes: u64,
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
            | IdxError::TooLarge { file, .. }
            | IdxError::OutOfMemory { file, .. }
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
                "{file}: {}{extra} unexpected bytes after the {expected} IDX data bytes",
                if *extra >= TRAILING_SCAN { "at least " } else { "" }
            ),
            IdxError::TooLarge { file, bytes, limit } => write!(
                f,
                "{file}: the IDX file is {bytes} bytes decompressed, over the limit of {limit} bytes on what is loaded into memory"
            ),
            IdxError::OutOfMemory { file, bytes } => write!(
                f,
                "{file}: out of memory: cannot allocate {bytes} bytes for the IDX data"
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

/// The default ceiling on the decompressed size (header and data) of an IDX
/// file loaded into memory: 512 MiB, eleven times MNIST's largest file (the
/// 47 MB training images) and twice a 60×60 export of all 60 000 of them.
/// Streaming ([`IdxStream`]) needs no limit: it holds one chunk at a time.
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// Data bytes handed out per [`IdxStream::next_chunk`] (a multiple of every
/// element size).
const CHUNK: usize = 64 << 10;

/// Trailing bytes counted before giving up: enough to say "there are some"
/// without decompressing a bomb to the end.
pub const TRAILING_SCAN: u64 = 1 << 20;

/// The header of an IDX file: element type and dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    /// The element type.
    pub ty: IdxType,
    /// The dimensions, outermost first (their product fits `usize`, and so
    /// does the data's byte size).
    pub dims: Vec<usize>,
}

impl IdxHeader {
    /// The number of elements.
    pub fn len(&self) -> usize {
        // `IdxStream::new` checked the product.
        self.dims.iter().product()
    }

    /// True when some dimension is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data after the header.
    pub fn data_bytes(&self) -> u64 {
        (self.len() * self.ty.size()) as u64
    }

    /// Bytes of the whole (decompressed) file: header and data.
    pub fn total_bytes(&self) -> u64 {
        // Saturating: the data alone can be exactly u64::MAX bytes.
        self.data_bytes()
            .saturating_add(4 + 4 * self.dims.len() as u64)
    }
}

impl IdxType {
    /// The values of whole big-endian elements of this type, as f64 (exact
    /// for every type).
    pub fn values_f64(self, bytes: &[u8]) -> impl Iterator<Item = f64> + '_ {
        bytes.chunks_exact(self.size()).map(move |b| match self {
            IdxType::U8 => b[0] as f64,
            IdxType::I8 => b[0] as i8 as f64,
            IdxType::I16 => BigEndian::read_i16(b) as f64,
            IdxType::I32 => BigEndian::read_i32(b) as f64,
            IdxType::F32 => BigEndian::read_f32(b) as f64,
            IdxType::F64 => BigEndian::read_f64(b),
        })
    }
}

impl IdxData {
    /// No elements, of type `t`.
    fn empty(t: IdxType) -> IdxData {
        match t {
            IdxType::U8 => IdxData::U8(Vec::new()),
            IdxType::I8 => IdxData::I8(Vec::new()),
            IdxType::I16 => IdxData::I16(Vec::new()),
            IdxType::I32 => IdxData::I32(Vec::new()),
            IdxType::F32 => IdxData::F32(Vec::new()),
            IdxType::F64 => IdxData::F64(Vec::new()),
        }
    }

    /// Makes room for `total` elements in all, without aborting when the
    /// memory is not there.
    fn try_grow_to(&mut self, total: usize) -> Result<(), std::collections::TryReserveError> {
        fn grow<T>(v: &mut Vec<T>, total: usize) -> Result<(), std::collections::TryReserveError> {
            v.try_reserve_exact(total.saturating_sub(v.len()))
        }
        match self {
            IdxData::U8(v) => grow(v, total),
            IdxData::I8(v) => grow(v, total),
            IdxData::I16(v) => grow(v, total),
            IdxData::I32(v) => grow(v, total),
            IdxData::F32(v) => grow(v, total),
            IdxData::F64(v) => grow(v, total),
        }
    }

    /// Appends whole big-endian elements (room already reserved).
    fn extend_be(&mut self, b: &[u8]) {
        match self {
            IdxData::U8(v) => v.extend_from_slice(b),
            IdxData::I8(v) => v.extend(b.iter().map(|&x| x as i8)),
            IdxData::I16(v) => v.extend(b.chunks_exact(2).map(BigEndian::read_i16)),
            IdxData::I32(v) => v.extend(b.chunks_exact(4).map(BigEndian::read_i32)),
            IdxData::F32(v) => v.extend(b.chunks_exact(4).map(BigEndian::read_f32)),
            IdxData::F64(v) => v.extend(b.chunks_exact(8).map(BigEndian::read_f64)),
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

/// The first bytes (already read to sniff the format) followed by the rest.
type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// The decoded byte source: the file itself, or its gzip decompression.
enum Source<R: Read> {
    Raw(Prefixed<R>),
    Gz(Box<MultiGzDecoder<Watch<Prefixed<R>>>>),
}

impl<R: Read> Source<R> {
    /// Reads until `buf` is full or the stream ends; errors are classified
    /// (I/O error of the file, damaged or cut-short gzip, out of memory).
    fn read_full(&mut self, buf: &mut [u8], name: &str) -> Result<usize, IdxError> {
        let file = || name.to_string();
        match self {
            Source::Raw(r) => read_full(r, buf).map_err(|source| IdxError::Io {
                file: file(),
                source,
            }),
            Source::Gz(gz) => read_full(gz.as_mut(), buf).map_err(|e| {
                if gz.get_ref().failed.get() {
                    IdxError::Io {
                        file: file(),
                        source: e,
                    }
                } else if e.kind() == io::ErrorKind::OutOfMemory {
                    IdxError::OutOfMemory {
                        file: file(),
                        bytes: buf.len() as u64,
                    }
                } else if e.kind() == io::ErrorKind::UnexpectedEof {
                    IdxError::TruncatedGzip {
                        file: file(),
                        detail: e.to_string(),
                    }
                } else {
                    IdxError::CorruptGzip {
                        file: file(),
                        detail: e.to_string(),
                    }
                }
            }),
        }
    }
}

/// An IDX file read piece by piece: the header at once, then the data in
/// chunks of at most 64 KiB, so any size is read in constant memory.
pub struct IdxStream<R: Read> {
    name: String,
    header: IdxHeader,
    src: Source<R>,
    /// Data bytes not yet handed out.
    remaining: u64,
    buf: Vec<u8>,
}

impl IdxStream<BufReader<File>> {
    /// Opens an IDX file, raw or gzip (decided by the content), and reads
    /// its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, IdxError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| IdxError::Io {
            file: name.clone(),
            source,
        })?;
        IdxStream::new(BufReader::new(file), &name)
    }
}

impl<R: Read> IdxStream<R> {
    /// Reads and checks the header from any reader, raw or gzip (detected
    /// from the first two bytes, `1f 8b`); `name` labels errors.
    pub fn new(mut reader: R, name: &str) -> Result<Self, IdxError> {
        let mut prefix = [0u8; 2];
        let n = read_full(&mut reader, &mut prefix).map_err(|source| IdxError::Io {
            file: name.to_string(),
            source,
        })?;
        let whole = io::Cursor::new(prefix[..n].to_vec()).chain(reader);
        let mut src = if n == 2 && prefix == [0x1f, 0x8b] {
            Source::Gz(Box::new(MultiGzDecoder::new(Watch {
                inner: whole,
                failed: Cell::new(false),
            })))
        } else {
            Source::Raw(whole)
        };
        let header = read_header(&mut src, name)?;
        Ok(IdxStream {
            name: name.to_string(),
            remaining: header.data_bytes(),
            header,
            src,
            buf: Vec::new(),
        })
    }

    /// The header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// The next whole elements of data (big-endian bytes, at most 64 KiB), or
    /// `None` once all the data the header promises has been read.
    ///
    /// # Errors
    /// `DataTruncated` if the data ends early; read and gzip errors.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, IdxError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = (CHUNK as u64).min(self.remaining) as usize;
        self.buf.resize(want, 0);
        let got = self.src.read_full(&mut self.buf, &self.name)?;
        if got < want {
            let expected = self.header.data_bytes();
            return Err(IdxError::DataTruncated {
                file: self.name.clone(),
                expected,
                got: expected - self.remaining + got as u64,
            });
        }
        self.remaining -= want as u64;
        Ok(Some(&self.buf))
    }

    /// Checks that nothing follows the data (which also makes the gzip
    /// decoder verify its checksum); call after the last chunk. Counts at
    /// most [`TRAILING_SCAN`] trailing bytes.
    pub fn finish(mut self) -> Result<(), IdxError> {
        let mut extra = 0u64;
        let mut buf = [0u8; 8192];
        while extra < TRAILING_SCAN {
            let got = self.src.read_full(&mut buf, &self.name)?;
            if got == 0 {
                break;
            }
            extra += got as u64;
        }
        if extra > 0 {
            return Err(IdxError::TrailingData {
                file: self.name,
                expected: self.header.data_bytes(),
                extra,
            });
        }
        Ok(())
    }

    /// Reads all the data into memory, refusing at once (from the header) a
    /// file over `max_bytes` decompressed.
    ///
    /// # Errors
    /// `TooLarge` before reading any data; `OutOfMemory` if the memory for
    /// the data cannot be had; the errors of [`next_chunk`](Self::next_chunk)
    /// and [`finish`](Self::finish).
    pub fn read_all(mut self, max_bytes: u64) -> Result<IdxArray, IdxError> {
        let total = self.header.total_bytes();
        if total > max_bytes {
            return Err(IdxError::TooLarge {
                file: self.name,
                bytes: total,
                limit: max_bytes,
            });
        }
        let n = self.header.len();
        let size = self.header.ty.size();
        let name = self.name.clone();
        let mut data = IdxData::empty(self.header.ty);
        // Memory grows (doubling, capped at the header's count) only as data
        // arrives: a short file claiming a lot allocates little.
        while let Some(chunk) = self.next_chunk()? {
            let len = data.len();
            if len + chunk.len() / size > data_capacity(&data) {
                let target = n.min((2 * len).max(len + chunk.len() / size));
                data.try_grow_to(target)
                    .map_err(|_| IdxError::OutOfMemory {
                        file: name.clone(),
                        bytes: (target * size) as u64,
                    })?;
            }
            data.extend_be(chunk);
        }
        let dims = self.header.dims.clone();
        self.finish()?;
        // The header's product was checked, and the data has that length.
        Ok(IdxArray { dims, data })
    }
}

fn data_capacity(d: &IdxData) -> usize {
    match d {
        IdxData::U8(v) => v.capacity(),
        IdxData::I8(v) => v.capacity(),
        IdxData::I16(v) => v.capacity(),
        IdxData::I32(v) => v.capacity(),
        IdxData::F32(v) => v.capacity(),
        IdxData::F64(v) => v.capacity(),
    }
}

/// Reads an IDX file, raw or gzip (decided by the content, not the name),
/// refusing one over [`DEFAULT_MAX_BYTES`] decompressed.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, IdxError> {
    read_idx_limited(path, DEFAULT_MAX_BYTES)
}

/// [`read_idx`] with another limit on the decompressed size (header and
/// data), checked from the header before any data is read.
pub fn read_idx_limited(path: impl AsRef<Path>, max_bytes: u64) -> Result<IdxArray, IdxError> {
    IdxStream::open(path)?.read_all(max_bytes)
}

/// Reads an IDX array from any reader, raw or gzip (detected from the first
/// two bytes, `1f 8b`); `name` labels errors. The stream must hold exactly one
/// array: bytes after the data are an error. The limit is
/// [`DEFAULT_MAX_BYTES`].
pub fn read_idx_from(reader: impl Read, name: &str) -> Result<IdxArray, IdxError> {
    read_idx_from_limited(reader, name, DEFAULT_MAX_BYTES)
}

/// [`read_idx_from`] with another limit on the decompressed size.
pub fn read_idx_from_limited(
    reader: impl Read,
    name: &str,
    max_bytes: u64,
) -> Result<IdxArray, IdxError> {
    IdxStream::new(reader, name)?.read_all(max_bytes)
}

/// Reads and checks the magic and the dimension list.
fn read_header<R: Read>(r: &mut Source<R>, name: &str) -> Result<IdxHeader, IdxError> {
    let mut magic = [0u8; 4];
    let got = r.read_full(&mut magic, name)?;
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
    let got = r.read_full(&mut dim_bytes, name)?;
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
    checked_numel(&dims)
        .and_then(|n| n.checked_mul(ty.size()))
        .ok_or_else(overflow)?;
    Ok(IdxHeader { ty, dims })
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
