//! Checkpoints: a versioned binary file of named tensors, optimiser state,
//! named u64 words (RNG/stream state), step, epoch and the run's
//! configuration (a JSON string from the caller), with a CRC-32 checksum.
//!
//! # Format (version 1, all integers little-endian)
//! ```text
//! offset 0   magic      8 bytes  "WGRDCKPT"
//!        8   version    u32      1
//!       12   reserved   u32      0
//!       16   body_len   u64
//!       24   body       body_len bytes
//!   24+len   crc32      u32      CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320,
//!                                init/xorout 0xFFFFFFFF) of bytes [0, 24+len)
//! body:
//!   step u64, epoch u64, config: u64 length + UTF-8 bytes,
//!   params:      u64 count, then tensors
//!   optim:       u64 count, then tensors
//!   optim words: u64 count, then words
//!   words:       u64 count, then words
//! tensor: name (u32 length + UTF-8), ndim u32 (≤ 8), dims u64 × ndim,
//!         values f32 × Π dims
//! word:   name (u32 length + UTF-8), value u64
//! ```
//!
//! # Safety of loading
//! The 24-byte header is read first and checked in order: magic, version,
//! then the length it announces against the file's size (`Truncated` /
//! `TrailingData`); only then is the rest read, never more than announced,
//! into memory that grows as bytes arrive. Then the checksum, then the body. Every length read from the file is checked against
//! the bytes that remain before anything is allocated from it, so a corrupt
//! header can never cause a huge allocation or a panic. Every error names
//! the file.
//!
//! # Atomic writes
//! [`Checkpoint::save`] writes a temporary file in the destination folder,
//! fsyncs it, renames it over the destination and fsyncs the folder, so a
//! crash leaves either the old or the new checkpoint, never a mixture.

pub use crate::checkpoint_error::{CheckpointError, CheckpointErrorKind};
use crate::module::Param;
use crate::optim::{OptimState, Optimizer};
use byteorder::{ByteOrder, LittleEndian as LE, WriteBytesExt};
use engine::Tensor;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The 8 magic bytes at the start of every checkpoint.
pub const MAGIC: [u8; 8] = *b"WGRDCKPT";
/// The format version written by this crate (and the newest it reads).
pub const VERSION: u32 = 1;
/// Bytes before the body.
const HEADER: usize = 24;
/// Largest accepted tensor rank.
const MAX_NDIM: usize = 8;

/// CRC-32 lookup table (IEEE, reflected polynomial 0xEDB88320).
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE 802.3, as in zlib/PNG): `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// The contents of a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Training step.
    pub step: u64,
    /// Epoch.
    pub epoch: u64,
    /// The run's configuration, as JSON (opaque to this crate).
    pub config: String,
    /// Model parameters by name.
    pub params: Vec<(String, Tensor)>,
    /// Optimiser state.
    pub optim: OptimState,
    /// Other named words, e.g. RNG stream state.
    pub words: Vec<(String, u64)>,
    /// The file this was loaded from (empty if built in memory).
    pub source: PathBuf,
}

/// A read cursor that never reads past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(what: impl Into<String>) -> CheckpointErrorKind {
    CheckpointErrorKind::Malformed { what: what.into() }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CheckpointErrorKind> {
        if self.buf.len() - self.pos < n {
            return Err(malformed(format!(
                "{what} needs {n} bytes, {} remain",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, CheckpointErrorKind> {
        Ok(LE::read_u32(self.take(4, what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, CheckpointErrorKind> {
        Ok(LE::read_u64(self.take(8, what)?))
    }
    fn len_u64(&mut self, what: &str) -> Result<usize, CheckpointErrorKind> {
        let n = self.u64(what)?;
        usize::try_from(n).map_err(|_| malformed(format!("{what} {n} is too large")))
    }
    fn string(&mut self, len: usize, what: &str) -> Result<String, CheckpointErrorKind> {
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
    }
    fn name(&mut self) -> Result<String, CheckpointErrorKind> {
        let n = self.u32("name length")? as usize;
        self.string(n, "name")
    }
    fn tensor(&mut self) -> Result<(String, Tensor), CheckpointErrorKind> {
        let name = self.name()?;
        let nd = self.u32("rank")? as usize;
        if nd > MAX_NDIM {
            return Err(malformed(format!(
                "tensor {name:?} has rank {nd} > {MAX_NDIM}"
            )));
        }
        let mut shape = Vec::with_capacity(nd);
        for _ in 0..nd {
            shape.push(self.len_u64("dimension")?);
        }
        let bytes = engine::checked_numel(&shape)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| malformed(format!("tensor {name:?} shape {shape:?} overflows")))?;
        // `take` checks the size against the remaining bytes before we allocate.
        let raw = self.take(bytes, &format!("values of tensor {name:?}"))?;
        let mut v = vec![0.0f32; bytes / 4];
        LE::read_f32_into(raw, &mut v);
        let t = Tensor::try_from_vec(v, &shape).map_err(|e| malformed(e.to_string()))?;
        Ok((name, t))
    }
    fn tensors(&mut self, section: &str) -> Result<Vec<(String, Tensor)>, CheckpointErrorKind> {
        let n = self.len_u64(section)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..n {
            let (name, t) = self.tensor()?;
            if !seen.insert(name.clone()) {
                return Err(malformed(format!("{section}: duplicate tensor {name:?}")));
            }
            out.push((name, t));
        }
        Ok(out)
    }
    fn words(&mut self, section: &str) -> Result<Vec<(String, u64)>, CheckpointErrorKind> {
        let n = self.len_u64(section)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..n {
            let name = self.name()?;
            let v = self.u64("word value")?;
            if !seen.insert(name.clone()) {
                return Err(malformed(format!("{section}: duplicate word {name:?}")));
            }
            out.push((name, v));
        }
        Ok(out)
    }
}

/// Checks the start of a checkpoint (what there is of its 24-byte header):
/// magic, version, then the whole length the header announces.
///
/// # Errors
/// `BadMagic` or `UnsupportedVersion` as soon as the bytes present show it;
/// `Truncated` if the header itself is cut short.
fn header_length(head: &[u8]) -> Result<u64, CheckpointErrorKind> {
    let actual = head.len() as u64;
    let truncated = CheckpointErrorKind::Truncated {
        expected: (HEADER + 4) as u64,
        actual,
    };
    // A foreign file is "not a checkpoint" even when shorter than the magic.
    let seen = head.len().min(8);
    if head[..seen] != MAGIC[..seen] {
        let mut found = [0u8; 8];
        found[..seen].copy_from_slice(&head[..seen]);
        return Err(CheckpointErrorKind::BadMagic { found });
    }
    if head.len() < 12 {
        return Err(truncated);
    }
    let version = LE::read_u32(&head[8..12]);
    if version != VERSION {
        return Err(CheckpointErrorKind::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    if head.len() < HEADER {
        return Err(truncated);
    }
    let body_len = LE::read_u64(&head[16..24]);
    Ok(body_len.saturating_add((HEADER + 4) as u64))
}

/// Appends to `out` until it holds `limit` bytes or the reader ends; memory
/// grows (doubling) only as bytes arrive, and a failed allocation is an
/// `OutOfMemory` error, not an abort.
fn read_growing(r: &mut impl std::io::Read, out: &mut Vec<u8>, limit: u64) -> std::io::Result<()> {
    let mut chunk = [0u8; 64 << 10];
    while (out.len() as u64) < limit {
        let want = (limit - out.len() as u64).min(chunk.len() as u64) as usize;
        let got = engine::fsio::read_full(r, &mut chunk[..want])?;
        if got == 0 {
            break;
        }
        if out.capacity() - out.len() < got {
            let target = (2 * out.len()).max(out.len() + got).min(limit as usize);
            out.try_reserve_exact(target - out.len()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("out of memory: cannot allocate {target} bytes"),
                )
            })?;
        }
        out.extend_from_slice(&chunk[..got]);
    }
    Ok(())
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    out.write_u32::<LE>(name.len() as u32).unwrap_or(());
    out.extend_from_slice(name.as_bytes());
}

fn put_tensors(out: &mut Vec<u8>, ts: &[(String, Tensor)]) {
    out.write_u64::<LE>(ts.len() as u64).unwrap_or(());
    for (name, t) in ts {
        put_name(out, name);
        out.write_u32::<LE>(t.ndim() as u32).unwrap_or(());
        for &d in t.shape() {
            out.write_u64::<LE>(d as u64).unwrap_or(());
        }
        let start = out.len();
        out.resize(start + 4 * t.numel(), 0);
        LE::write_f32_into(t.data(), &mut out[start..]);
    }
}

fn put_words(out: &mut Vec<u8>, ws: &[(String, u64)]) {
    out.write_u64::<LE>(ws.len() as u64).unwrap_or(());
    for (name, v) in ws {
        put_name(out, name);
        out.write_u64::<LE>(*v).unwrap_or(());
    }
}

impl Checkpoint {
    /// An empty checkpoint at a step and epoch with a configuration string.
    pub fn new(step: u64, epoch: u64, config: impl Into<String>) -> Checkpoint {
        Checkpoint {
            step,
            epoch,
            config: config.into(),
            ..Checkpoint::default()
        }
    }

    /// Stores the parameters' values under their names.
    ///
    /// # Panics
    /// If two parameters share a name.
    pub fn with_params(mut self, params: &[&Param]) -> Checkpoint {
        crate::module::check_unique_names(params);
        self.params = params
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        self
    }

    /// Stores the optimiser's state.
    pub fn with_optimizer(mut self, opt: &dyn Optimizer) -> Checkpoint {
        self.optim = opt.state();
        self
    }

    /// Stores a named word (e.g. an RNG seed or stream position).
    pub fn with_word(mut self, name: &str, value: u64) -> Checkpoint {
        self.words.push((name.to_string(), value));
        self
    }

    fn err(&self, kind: CheckpointErrorKind) -> CheckpointError {
        CheckpointError {
            path: self.source.clone(),
            kind,
        }
    }

    /// The encoded file contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.write_u64::<LE>(self.step).unwrap_or(());
        body.write_u64::<LE>(self.epoch).unwrap_or(());
        body.write_u64::<LE>(self.config.len() as u64).unwrap_or(());
        body.extend_from_slice(self.config.as_bytes());
        put_tensors(&mut body, &self.params);
        put_tensors(&mut body, &self.optim.tensors);
        put_words(&mut body, &self.optim.words);
        put_words(&mut body, &self.words);
        let mut out = Vec::with_capacity(HEADER + body.len() + 4);
        out.extend_from_slice(&MAGIC);
        out.write_u32::<LE>(VERSION).unwrap_or(());
        out.write_u32::<LE>(0).unwrap_or(());
        out.write_u64::<LE>(body.len() as u64).unwrap_or(());
        out.extend_from_slice(&body);
        let crc = crc32(&out);
        out.write_u32::<LE>(crc).unwrap_or(());
        out
    }

    /// Decodes file contents; `path` is only used to name errors.
    ///
    /// # Errors
    /// Every way the bytes can be wrong, checked in the order of the module docs.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let e = |kind| CheckpointError {
            path: path.to_path_buf(),
            kind,
        };
        let actual = bytes.len() as u64;
        let expected = header_length(bytes).map_err(e)?;
        if actual < expected {
            return Err(e(CheckpointErrorKind::Truncated { expected, actual }));
        }
        if actual > expected {
            return Err(e(CheckpointErrorKind::TrailingData { expected, actual }));
        }
        let end = bytes.len() - 4;
        let stored = LE::read_u32(&bytes[end..]);
        let computed = crc32(&bytes[..end]);
        if stored != computed {
            return Err(e(CheckpointErrorKind::ChecksumMismatch {
                stored,
                computed,
            }));
        }
        let mut r = Reader {
            buf: &bytes[HEADER..end],
            pos: 0,
        };
        let parse = |r: &mut Reader| -> Result<Checkpoint, CheckpointErrorKind> {
            let step = r.u64("step")?;
            let epoch = r.u64("epoch")?;
            let clen = r.len_u64("config length")?;
            let config = r.string(clen, "config")?;
            let params = r.tensors("params")?;
            let tensors = r.tensors("optimiser tensors")?;
            let owords = r.words("optimiser words")?;
            let words = r.words("words")?;
            if r.pos != r.buf.len() {
                return Err(malformed(format!(
                    "{} unread bytes after the last section",
                    r.buf.len() - r.pos
                )));
            }
            Ok(Checkpoint {
                step,
                epoch,
                config,
                params,
                optim: OptimState {
                    tensors,
                    words: owords,
                },
                words,
                source: path.to_path_buf(),
            })
        };
        parse(&mut r).map_err(e)
    }

    /// Writes the checkpoint atomically (temp file + fsync + rename).
    ///
    /// # Errors
    /// [`CheckpointErrorKind::Io`] naming the step that failed.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |op: &'static str| {
            move |err: std::io::Error| CheckpointError {
                path: path.to_path_buf(),
                kind: CheckpointErrorKind::Io {
                    op,
                    message: err.to_string(),
                },
            }
        };
        let bytes = self.to_bytes();
        engine::fsio::write_atomic(path, |w| w.write_all(&bytes))
            .map_err(io("writing the checkpoint (temporary file, then rename)"))
    }

    /// Reads and checks a checkpoint file.
    ///
    /// The 24-byte header is read and checked first (magic, version, body
    /// length against the file's size), so a foreign or endless file
    /// (`/dev/zero`) fails at once; then exactly the bytes the header
    /// announces are read, into memory that grows only as they arrive.
    ///
    /// # Errors
    /// I/O (including out of memory), truncation, magic, version, checksum or
    /// a malformed body.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let io = |err: std::io::Error| CheckpointError {
            path: path.to_path_buf(),
            kind: CheckpointErrorKind::Io {
                op: "reading",
                message: err.to_string(),
            },
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // The size of a regular file (`None` for a pipe or a device).
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        Checkpoint::read_from(file, size, path)
    }

    /// Reads a checkpoint from any reader, as [`load`](Self::load) does: the
    /// header first, then at most one byte past the length it announces.
    /// `size`, when known, is the stream's length (checked against the
    /// header before reading on); `path` names errors.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn read_from(
        mut r: impl std::io::Read,
        size: Option<u64>,
        path: &Path,
    ) -> Result<Checkpoint, CheckpointError> {
        let e = |kind| CheckpointError {
            path: path.to_path_buf(),
            kind,
        };
        let io = |err: std::io::Error| {
            e(CheckpointErrorKind::Io {
                op: "reading",
                message: err.to_string(),
            })
        };
        let mut head = [0u8; HEADER];
        let got = engine::fsio::read_full(&mut r, &mut head).map_err(io)?;
        let head = &head[..got];
        let expected = header_length(head).map_err(e)?;
        if let Some(actual) = size {
            if actual < expected {
                return Err(e(CheckpointErrorKind::Truncated { expected, actual }));
            }
            if actual > expected {
                return Err(e(CheckpointErrorKind::TrailingData { expected, actual }));
            }
        }
        let mut bytes = head.to_vec();
        // One byte past the announced end tells a longer stream apart.
        read_growing(&mut r, &mut bytes, expected.saturating_add(1)).map_err(io)?;
        let actual = bytes.len() as u64;
        if actual < expected {
            return Err(e(CheckpointErrorKind::Truncated { expected, actual }));
        }
        if actual > expected {
            // A stream: its true length is unknown, and not worth reading.
            return Err(e(CheckpointErrorKind::TrailingData { expected, actual }));
        }
        Checkpoint::from_bytes(&bytes, path)
    }

    /// Copies the stored values into `params`, after checking that every
    /// parameter is present with its shape and that the file holds no other
    /// tensor. Nothing is changed unless every check passes.
    ///
    /// # Errors
    /// `MissingTensor`, `ShapeMismatch` or `UnexpectedTensor`.
    pub fn restore_params(&self, params: &mut [&mut Param]) -> Result<(), CheckpointError> {
        let mut found = Vec::with_capacity(params.len());
        for p in params.iter() {
            let Some((_, t)) = self.params.iter().find(|(n, _)| *n == p.name) else {
                return Err(self.err(CheckpointErrorKind::MissingTensor {
                    name: p.name.clone(),
                }));
            };
            if t.shape() != p.value.shape() {
                return Err(self.err(CheckpointErrorKind::ShapeMismatch {
                    name: p.name.clone(),
                    expected: p.value.shape().to_vec(),
                    found: t.shape().to_vec(),
                }));
            }
            found.push(t.clone());
        }
        if let Some((name, _)) = self
            .params
            .iter()
            .find(|(n, _)| !params.iter().any(|p| p.name == *n))
        {
            return Err(self.err(CheckpointErrorKind::UnexpectedTensor { name: name.clone() }));
        }
        for (p, t) in params.iter_mut().zip(found) {
            p.value = t;
        }
        Ok(())
    }

    /// Restores an optimiser's state, checked against the parameters.
    ///
    /// # Errors
    /// See [`Optimizer::load_state`].
    pub fn restore_optimizer(
        &self,
        opt: &mut dyn Optimizer,
        params: &[&Param],
    ) -> Result<(), CheckpointError> {
        opt.load_state(&self.optim, params).map_err(|k| self.err(k))
    }

    /// A named word.
    ///
    /// # Errors
    /// `MissingWord` if absent.
    pub fn word(&self, name: &str) -> Result<u64, CheckpointError> {
        self.words
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                self.err(CheckpointErrorKind::MissingWord {
                    name: name.to_string(),
                })
            })
    }
}
