//! NumPy `.npy` reading and writing.
//!
//! Reads format versions 1.0, 2.0 and 3.0, C order, little-endian (or
//! single-byte) integer, bool and float dtypes, converting every value to f32.
//! Writes f32 (`<f4`) in version 1.0 with the header padded to a multiple of 64
//! bytes as NumPy does, switching to 2.0 only when the header does not fit.
//!
//! Nothing is allocated from the header's claims alone: data is read in fixed
//! chunks as it actually arrives, so a 100-byte file claiming 10^12 elements
//! fails at once with little memory.

use crate::fsio::read_full;
use crate::tensor::{checked_numel, Tensor};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest header we accept; NumPy itself refuses headers over 10 000 bytes by
/// default, so this is generous while keeping a lying length field harmless.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Bytes read per chunk when streaming the data section (a multiple of every
/// item size, so chunks never split an element).
const CHUNK: usize = 1 << 16;

/// Why a `.npy` file could not be read or written. Every variant names the file.
#[derive(Debug)]
pub enum NpyError {
    /// An operating-system error while opening, reading or writing.
    Io {
        /// The file involved.
        file: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not start with `\x93NUMPY`.
    BadMagic {
        /// The file involved.
        file: String,
        /// The first bytes actually found (at most six).
        found: Vec<u8>,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    UnsupportedVersion {
        /// The file involved.
        file: String,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The file ends inside the preamble or the header.
    TruncatedHeader {
        /// The file involved.
        file: String,
        /// Bytes the preamble and header need.
        expected: usize,
        /// Bytes actually present.
        got: usize,
    },
    /// The header is not a valid dict with `descr`, `fortran_order` and `shape`.
    MalformedHeader {
        /// The file involved.
        file: String,
        /// The offending key, when the problem is tied to one.
        key: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// A dtype this reader does not convert (complex, structured, strings, ...).
    UnsupportedDtype {
        /// The file involved.
        file: String,
        /// The dtype as written in the header.
        dtype: String,
    },
    /// A multi-byte big-endian dtype such as `>f4`.
    BigEndian {
        /// The file involved.
        file: String,
        /// The dtype as written in the header.
        dtype: String,
    },
    /// `fortran_order` is `True`; only C order is supported.
    FortranOrder {
        /// The file involved.
        file: String,
    },
    /// The product of the shape (or its size in bytes) overflows `usize`.
    ShapeOverflow {
        /// The file involved.
        file: String,
        /// The shape claimed by the header.
        shape: Vec<u64>,
    },
    /// The data section is shorter than the header says.
    TruncatedData {
        /// The file involved.
        file: String,
        /// Bytes the header's shape and dtype require.
        expected: usize,
        /// Bytes actually present.
        got: usize,
    },
    /// Bytes follow the data section.
    TrailingData {
        /// The file involved.
        file: String,
        /// Bytes the header's shape and dtype require.
        expected: usize,
        /// Extra bytes found after them.
        extra: u64,
    },
}

impl NpyError {
    /// The file (or stream name) the error is about.
    pub fn file(&self) -> &str {
        match self {
            NpyError::Io { file, .. }
            | NpyError::BadMagic { file, .. }
            | NpyError::UnsupportedVersion { file, .. }
            | NpyError::TruncatedHeader { file, .. }
            | NpyError::MalformedHeader { file, .. }
            | NpyError::UnsupportedDtype { file, .. }
            | NpyError::BigEndian { file, .. }
            | NpyError::FortranOrder { file }
            | NpyError::ShapeOverflow { file, .. }
            | NpyError::TruncatedData { file, .. }
            | NpyError::TrailingData { file, .. } => file,
        }
    }
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::Io { file, source } => write!(f, "{file}: I/O error: {source}"),
            NpyError::BadMagic { file, found } => write!(
                f,
                "{file}: not a .npy file: expected magic \\x93NUMPY, found {found:02x?}"
            ),
            NpyError::UnsupportedVersion { file, major, minor } => write!(
                f,
                "{file}: unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            ),
            NpyError::TruncatedHeader {
                file,
                expected,
                got,
            } => write!(
                f,
                "{file}: header cut short: expected {expected} bytes, got {got}"
            ),
            NpyError::MalformedHeader { file, key, problem } => match key {
                Some(k) => write!(f, "{file}: malformed header: key '{k}': {problem}"),
                None => write!(f, "{file}: malformed header: {problem}"),
            },
            NpyError::UnsupportedDtype { file, dtype } => write!(
                f,
                "{file}: unsupported dtype {dtype} (supported: little-endian f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1)"
            ),
            NpyError::BigEndian { file, dtype } => write!(
                f,
                "{file}: big-endian dtype {dtype} is not supported; save with a little-endian dtype"
            ),
            NpyError::FortranOrder { file } => write!(
                f,
                "{file}: Fortran-order arrays are not supported; save with np.ascontiguousarray"
            ),
            NpyError::ShapeOverflow { file, shape } => write!(
                f,
                "{file}: shape {shape:?} is too large: its size overflows"
            ),
            NpyError::TruncatedData {
                file,
                expected,
                got,
            } => write!(
                f,
                "{file}: data cut short: expected {expected} bytes, got {got}"
            ),
            NpyError::TrailingData {
                file,
                expected,
                extra,
            } => write!(
                f,
                "{file}: {extra} unexpected bytes after the {expected} data bytes"
            ),
        }
    }
}

impl std::error::Error for NpyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NpyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Element types the reader converts to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// Parses a descr such as `<f4` or `|u1`.
    fn parse(descr: &str, file: &str) -> Result<Dtype, NpyError> {
        let unsupported = || NpyError::UnsupportedDtype {
            file: file.to_string(),
            dtype: descr.to_string(),
        };
        let mut chars = descr.chars();
        let order = chars.next().ok_or_else(unsupported)?;
        let dtype = match chars.as_str() {
            "b1" | "?" => Dtype::Bool,
            "u1" | "B" => Dtype::U8,
            "i1" | "b" => Dtype::I8,
            "u2" => Dtype::U16,
            "i2" => Dtype::I16,
            "u4" => Dtype::U32,
            "i4" => Dtype::I32,
            "u8" => Dtype::U64,
            "i8" => Dtype::I64,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return Err(unsupported()),
        };
        match order {
            '<' | '|' => Ok(dtype),
            // '=' is native order; NumPy never writes it, but it is unambiguous.
            '=' if cfg!(target_endian = "little") => Ok(dtype),
            // Byte order is irrelevant for single bytes.
            '>' if dtype.size() == 1 => Ok(dtype),
            '>' | '=' => Err(NpyError::BigEndian {
                file: file.to_string(),
                dtype: descr.to_string(),
            }),
            _ => Err(unsupported()),
        }
    }

    /// Appends the f32 value of each little-endian element of `bytes`.
    fn convert(self, bytes: &[u8], out: &mut Vec<f32>) {
        fn each<const N: usize>(bytes: &[u8], out: &mut Vec<f32>, f: impl Fn([u8; N]) -> f32) {
            out.extend(bytes.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            }));
        }
        match self {
            Dtype::Bool => out.extend(bytes.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 })),
            Dtype::U8 => out.extend(bytes.iter().map(|&b| b as f32)),
            Dtype::I8 => out.extend(bytes.iter().map(|&b| b as i8 as f32)),
            Dtype::U16 => each(bytes, out, |a| u16::from_le_bytes(a) as f32),
            Dtype::I16 => each(bytes, out, |a| i16::from_le_bytes(a) as f32),
            Dtype::U32 => each(bytes, out, |a| u32::from_le_bytes(a) as f32),
            Dtype::I32 => each(bytes, out, |a| i32::from_le_bytes(a) as f32),
            Dtype::U64 => each(bytes, out, |a| u64::from_le_bytes(a) as f32),
            Dtype::I64 => each(bytes, out, |a| i64::from_le_bytes(a) as f32),
            Dtype::F32 => each(bytes, out, f32::from_le_bytes),
            Dtype::F64 => each(bytes, out, |a| f64::from_le_bytes(a) as f32),
        }
    }
}

/// A value of the Python literal subset NumPy writes in headers.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Int(u64),
    Bool(bool),
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// A tiny recursive-descent parser for the header dict.
struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> PyParser<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}' at offset {}, found '{}'",
                c as char, self.pos, x as char
            )),
            None => Err(format!("expected '{}' but the header ended", c as char)),
        }
    }

    fn value(&mut self) -> Result<PyValue, String> {
        // Bounds recursion so a header of 10^6 '(' cannot overflow the stack.
        self.depth += 1;
        if self.depth > 32 {
            return Err("nesting too deep".into());
        }
        let v = match self.peek() {
            Some(b'\'') | Some(b'"') => PyValue::Str(self.string()?),
            Some(b'(') => PyValue::Tuple(self.seq(b'(', b')')?),
            Some(b'[') => PyValue::List(self.seq(b'[', b']')?),
            Some(b'{') => PyValue::Dict(self.dict()?),
            Some(c) if c.is_ascii_digit() => PyValue::Int(self.int()?),
            Some(_) => {
                let rest = &self.s[self.pos..];
                if rest.starts_with(b"True") {
                    self.pos += 4;
                    PyValue::Bool(true)
                } else if rest.starts_with(b"False") {
                    self.pos += 5;
                    PyValue::Bool(false)
                } else {
                    return Err(format!("unexpected character at offset {}", self.pos));
                }
            }
            None => return Err("header ended where a value was expected".into()),
        };
        self.depth -= 1;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.pos];
        let start = self.pos + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or("unterminated string")?;
        self.pos = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec())
            .map_err(|_| "string is not UTF-8".into())
    }

    fn int(&mut self) -> Result<u64, String> {
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?;
        // Python 2 era files wrote longs as `3L`.
        if self.s.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        digits
            .parse::<u64>()
            .map_err(|_| format!("integer {digits} does not fit in 64 bits"))
    }

    fn seq(&mut self, open: u8, close: u8) -> Result<Vec<PyValue>, String> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, PyValue)>, String> {
        self.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b'\'') | Some(b'"') => {}
                _ => return Err("dict keys must be strings".into()),
            }
            let key = self.string()?;
            self.expect(b':')?;
            items.push((key, self.value()?));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' in dict".into()),
            }
        }
    }
}

/// The three header fields, validated.
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
}

fn parse_header(text: &[u8], file: &str) -> Result<Header, NpyError> {
    let malformed = |key: Option<&str>, problem: String| NpyError::MalformedHeader {
        file: file.to_string(),
        key: key.map(str::to_string),
        problem,
    };
    let mut p = PyParser {
        s: text,
        pos: 0,
        depth: 0,
    };
    let items = match p.value() {
        Ok(PyValue::Dict(items)) => items,
        Ok(_) => return Err(malformed(None, "header is not a dict".into())),
        Err(e) => return Err(malformed(None, e)),
    };
    if p.peek().is_some() {
        return Err(malformed(None, "text after the header dict".into()));
    }
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in items {
        let slot = match k.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            _ => return Err(malformed(Some(&k), "unexpected key".into())),
        };
        if slot.replace(v).is_some() {
            return Err(malformed(Some(&k), "key appears twice".into()));
        }
    }
    let missing = |k: &str| malformed(Some(k), "missing".into());
    let dtype = match descr.ok_or_else(|| missing("descr"))? {
        PyValue::Str(s) => Dtype::parse(&s, file)?,
        // Structured dtypes are written as a list of fields.
        other => {
            return Err(NpyError::UnsupportedDtype {
                file: file.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    };
    match fortran.ok_or_else(|| missing("fortran_order"))? {
        PyValue::Bool(false) => {}
        PyValue::Bool(true) => {
            return Err(NpyError::FortranOrder {
                file: file.to_string(),
            })
        }
        _ => {
            return Err(malformed(
                Some("fortran_order"),
                "expected True or False".into(),
            ))
        }
    }
    let dims = match shape.ok_or_else(|| missing("shape"))? {
        PyValue::Tuple(items) => items
            .into_iter()
            .map(|d| match d {
                PyValue::Int(n) => Ok(n),
                _ => Err(malformed(
                    Some("shape"),
                    "expected a tuple of integers".into(),
                )),
            })
            .collect::<Result<Vec<u64>, _>>()?,
        _ => return Err(malformed(Some("shape"), "expected a tuple".into())),
    };
    let overflow = || NpyError::ShapeOverflow {
        file: file.to_string(),
        shape: dims.clone(),
    };
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| overflow()))
        .collect::<Result<Vec<usize>, _>>()?;
    checked_numel(&shape)
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(overflow)?;
    Ok(Header { dtype, shape })
}

/// Reads a `.npy` file into an f32 tensor.
///
/// Errors name the file; see [`NpyError`] for every case.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, NpyError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| NpyError::Io {
        file: name.clone(),
        source,
    })?;
    read_npy_from(BufReader::new(file), &name)
}

/// Reads `.npy` bytes from any reader into an f32 tensor; `name` labels errors.
///
/// The whole stream must be one array: bytes after the data are an error.
pub fn read_npy_from(mut reader: impl Read, name: &str) -> Result<Tensor, NpyError> {
    let io_err = |source| NpyError::Io {
        file: name.to_string(),
        source,
    };
    let truncated_header = |expected, got| NpyError::TruncatedHeader {
        file: name.to_string(),
        expected,
        got,
    };

    let mut pre = [0u8; 8];
    let got = read_full(&mut reader, &mut pre).map_err(io_err)?;
    let seen = got.min(6);
    if pre[..seen] != MAGIC[..seen] {
        return Err(NpyError::BadMagic {
            file: name.to_string(),
            found: pre[..seen].to_vec(),
        });
    }
    // A prefix of the magic (or nothing at all) is a file cut short.
    if got < 8 {
        return Err(truncated_header(8, got));
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(NpyError::UnsupportedVersion {
                file: name.to_string(),
                major,
                minor,
            })
        }
    };
    let mut lb = [0u8; 4];
    let got = read_full(&mut reader, &mut lb[..len_bytes]).map_err(io_err)?;
    if got < len_bytes {
        return Err(truncated_header(8 + len_bytes, 8 + got));
    }
    let header_len = u32::from_le_bytes(lb) as usize;
    let preamble = 8 + len_bytes;
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::MalformedHeader {
            file: name.to_string(),
            key: None,
            problem: format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"),
        });
    }
    // Grows as the header arrives, not from the length it claims.
    let mut text = Vec::new();
    let got = reader
        .by_ref()
        .take(header_len as u64)
        .read_to_end(&mut text)
        .map_err(io_err)?;
    if got < header_len {
        return Err(truncated_header(preamble + header_len, preamble + got));
    }
    let header = parse_header(&text, name)?;

    // Cannot overflow: parse_header checked numel * size.
    let numel = header.shape.iter().product::<usize>();
    let expected = numel * header.dtype.size();
    let mut data = Vec::new();
    let mut buf = vec![0u8; CHUNK.min(expected)];
    let mut done = 0;
    while done < expected {
        let want = CHUNK.min(expected - done);
        let got = read_full(&mut reader, &mut buf[..want]).map_err(io_err)?;
        if got < want {
            return Err(NpyError::TruncatedData {
                file: name.to_string(),
                expected,
                got: done + got,
            });
        }
        // Grows as data arrives; a failed allocation is an error, not an abort.
        let values = want / header.dtype.size();
        data.try_reserve(values).map_err(|_| {
            io_err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "out of memory: cannot allocate {} bytes for the values",
                    4 * (data.len() + values)
                ),
            ))
        })?;
        header.dtype.convert(&buf[..want], &mut data);
        done += want;
    }
    let extra = io::copy(&mut reader, &mut io::sink()).map_err(io_err)?;
    if extra > 0 {
        return Err(NpyError::TrailingData {
            file: name.to_string(),
            expected,
            extra,
        });
    }
    Tensor::try_from_vec(data, &header.shape).map_err(|e| NpyError::MalformedHeader {
        file: name.to_string(),
        key: Some("shape".into()),
        problem: e.to_string(),
    })
}

/// The header dict NumPy would write for a C-order `<f4` array of `shape`.
fn header_dict(shape: &[usize]) -> String {
    let dims = match shape {
        [] => "()".to_string(),
        // Python's one-element tuple needs the trailing comma.
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}")
}

/// Writes `t` as `.npy` (`<f4`, C order) to any writer.
///
/// Uses version 1.0 unless the header exceeds 65535 bytes, then 2.0. The
/// preamble plus header is padded with spaces and a final newline to a
/// multiple of 64 bytes, exactly as NumPy pads it.
pub fn write_npy_to(mut writer: impl Write, t: &Tensor) -> io::Result<()> {
    let dict = header_dict(t.shape());
    // +1 for the terminating newline.
    let pad = |preamble: usize| (64 - (preamble + dict.len() + 1) % 64) % 64;
    let v1_header_len = dict.len() + pad(10) + 1;
    let (version, preamble) = if v1_header_len <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = dict.len() + pad(preamble) + 1;
    let mut head = Vec::with_capacity(preamble + header_len);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&[version, 0]);
    if version == 1 {
        head.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        let len = u32::try_from(header_len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "npy header too long"))?;
        head.extend_from_slice(&len.to_le_bytes());
    }
    head.extend_from_slice(dict.as_bytes());
    head.resize(head.len() + pad(preamble), b' ');
    head.push(b'\n');
    writer.write_all(&head)?;
    let mut bytes = Vec::with_capacity(CHUNK);
    for chunk in t.data().chunks(CHUNK / 4) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        writer.write_all(&bytes)?;
    }
    writer.flush()
}

/// Writes `t` to `path` as `.npy` atomically: a temp file in the same
/// directory is written, synced and renamed over `path`, so readers never see
/// a half-written file.
pub fn write_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<(), NpyError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io_err = |source| NpyError::Io {
        file: name.clone(),
        source,
    };
    crate::fsio::write_atomic(path, |w| write_npy_to(w, t)).map_err(io_err)
}
