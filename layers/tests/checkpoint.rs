//! Checkpoint round trip and every kind of bad file.

use engine::Tensor;
use layers::checkpoint::{MAGIC, VERSION};
use layers::*;
use std::path::{Path, PathBuf};

/// A fresh folder under the system temp dir for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("layers-ckpt-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn net() -> Sequential {
    let mut rng = engine::rng::seeded(3);
    Sequential::new()
        .push(Conv2d::new("conv", 1, 2, 3, &mut rng))
        .push(Flatten)
        .push(Linear::new("fc", 2 * 2 * 2, 3, &mut rng))
}

/// A checkpoint of `net()` with Adam state after one step, plus words.
fn sample() -> (Sequential, Adam, Checkpoint) {
    let mut m = net();
    let mut opt = Adam::new();
    let grads: Vec<Tensor> = m
        .params()
        .iter()
        .map(|p| Tensor::full(p.value.shape(), 0.5))
        .collect();
    opt.step(&mut m.params_mut(), &grads, 0.01).unwrap();
    let ck = Checkpoint::new(123, 4, r#"{"lr":0.01,"name":"tést"}"#)
        .with_params(&m.params())
        .with_optimizer(&opt)
        .with_word("rng.data", u64::MAX - 7)
        .with_word("rng.dropout", 42);
    (m, opt, ck)
}

fn write_bytes(path: &Path, b: &[u8]) {
    std::fs::write(path, b).unwrap();
}

fn load_err(path: &Path) -> CheckpointErrorKind {
    let e = Checkpoint::load(path).expect_err("loading should fail");
    assert_eq!(e.path, path, "the error names the file");
    assert!(e.to_string().contains(&path.display().to_string()));
    e.kind
}

#[test]
fn crc32_known_vectors() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    assert_eq!(
        crc32(b"The quick brown fox jumps over the lazy dog"),
        0x414F_A339
    );
}

#[test]
fn round_trip_restores_everything() {
    let dir = scratch("roundtrip");
    let path = dir.join("run.ckpt");
    let (m, opt, ck) = sample();
    ck.save(&path).unwrap();
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back.step, 123);
    assert_eq!(back.epoch, 4);
    assert_eq!(back.config, r#"{"lr":0.01,"name":"tést"}"#);
    assert_eq!(back.word("rng.data").unwrap(), u64::MAX - 7);
    assert_eq!(back.word("rng.dropout").unwrap(), 42);
    assert_eq!(back.source, path);
    assert_eq!(
        Checkpoint {
            source: PathBuf::new(),
            ..back.clone()
        },
        ck
    );

    // Restore into a differently initialised model and a fresh optimiser.
    let mut rng = engine::rng::seeded(99);
    let mut fresh = Sequential::new()
        .push(Conv2d::new("conv", 1, 2, 3, &mut rng))
        .push(Flatten)
        .push(Linear::new("fc", 8, 3, &mut rng));
    assert_ne!(fresh.params()[0].value, m.params()[0].value);
    back.restore_params(&mut fresh.params_mut()).unwrap();
    for (a, b) in fresh.params().iter().zip(m.params()) {
        assert_eq!(a.value, b.value, "{}", a.name);
    }
    let mut opt2 = Adam::new();
    back.restore_optimizer(&mut opt2, &fresh.params()).unwrap();
    assert_eq!(opt2.steps(), 1);
    assert_eq!(opt2.state(), opt.state());

    // Both optimisers take the same next step.
    let grads: Vec<Tensor> = m
        .params()
        .iter()
        .map(|p| Tensor::full(p.value.shape(), -0.25))
        .collect();
    let mut m1 = m;
    let mut o1 = opt;
    o1.step(&mut m1.params_mut(), &grads, 0.01).unwrap();
    opt2.step(&mut fresh.params_mut(), &grads, 0.01).unwrap();
    for (a, b) in fresh.params().iter().zip(m1.params()) {
        assert_eq!(a.value, b.value);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_overwrites_atomically() {
    let dir = scratch("overwrite");
    let path = dir.join("c.ckpt");
    Checkpoint::new(1, 0, "{}").save(&path).unwrap();
    Checkpoint::new(2, 0, "{}").save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().step, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_files() {
    let dir = scratch("truncated");
    let (_, _, ck) = sample();
    let bytes = ck.to_bytes();
    for cut in [0, 5, 8, 20, 27, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.join(format!("cut{cut}.ckpt"));
        write_bytes(&path, &bytes[..cut]);
        match load_err(&path) {
            CheckpointErrorKind::Truncated { expected, actual } => {
                assert_eq!(actual, cut as u64);
                assert!(expected > actual);
            }
            k => panic!("cut at {cut}: expected Truncated, got {k:?}"),
        }
    }
    let path = dir.join("long.ckpt");
    let mut long = bytes.clone();
    long.push(0);
    write_bytes(&path, &long);
    assert!(matches!(
        load_err(&path),
        CheckpointErrorKind::TrailingData { .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flipped_bytes_fail_the_checksum() {
    let dir = scratch("flip");
    let (_, _, ck) = sample();
    let bytes = ck.to_bytes();
    // Every byte after the length field: body and stored checksum.
    for pos in (24..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        let path = dir.join("flip.ckpt");
        write_bytes(&path, &b);
        assert!(
            matches!(
                load_err(&path),
                CheckpointErrorKind::ChecksumMismatch { .. }
            ),
            "flip at {pos}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_magic_and_future_version() {
    let dir = scratch("magic");
    let (_, _, ck) = sample();
    let mut b = ck.to_bytes();
    b[0] = b'X';
    let path = dir.join("magic.ckpt");
    write_bytes(&path, &b);
    match load_err(&path) {
        CheckpointErrorKind::BadMagic { found } => assert_eq!(found[0], b'X'),
        k => panic!("{k:?}"),
    }
    // Even a tiny non-checkpoint file is recognised as such.
    write_bytes(&path, b"PNG\x89 not a checkpoint at all");
    assert!(matches!(
        load_err(&path),
        CheckpointErrorKind::BadMagic { .. }
    ));

    let mut b = ck.to_bytes();
    b[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let path = dir.join("future.ckpt");
    write_bytes(&path, &b);
    assert_eq!(
        load_err(&path),
        CheckpointErrorKind::UnsupportedVersion {
            found: VERSION + 1,
            supported: VERSION
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A valid file (correct checksum) whose header claims a huge tensor must be
/// rejected without allocating.
#[test]
fn hostile_lengths_with_valid_checksum_are_malformed() {
    let mut body = Vec::new();
    body.extend_from_slice(&0u64.to_le_bytes()); // step
    body.extend_from_slice(&0u64.to_le_bytes()); // epoch
    body.extend_from_slice(&0u64.to_le_bytes()); // config length
    body.extend_from_slice(&1u64.to_le_bytes()); // one param
    body.extend_from_slice(&1u32.to_le_bytes());
    body.push(b'w');
    body.extend_from_slice(&2u32.to_le_bytes()); // rank 2
    body.extend_from_slice(&(1u64 << 40).to_le_bytes());
    body.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(body.len() as u64).to_le_bytes());
    f.extend_from_slice(&body);
    let crc = crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let e = Checkpoint::from_bytes(&f, Path::new("hostile.ckpt")).unwrap_err();
    assert!(
        matches!(e.kind, CheckpointErrorKind::Malformed { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("hostile.ckpt"));

    // A huge section count is also caught before any allocation.
    let mut body = vec![0u8; 24];
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(body.len() as u64).to_le_bytes());
    f.extend_from_slice(&body);
    let crc = crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let e = Checkpoint::from_bytes(&f, Path::new("count.ckpt")).unwrap_err();
    assert!(
        matches!(e.kind, CheckpointErrorKind::Malformed { .. }),
        "{e}"
    );
}

#[test]
fn missing_unexpected_and_wrong_shape_parameters() {
    let dir = scratch("names");
    let path = dir.join("m.ckpt");
    let (m, _, ck) = sample();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();

    // The model has a parameter the file lacks.
    let mut rng = engine::rng::seeded(5);
    let mut bigger = Sequential::new()
        .push(Conv2d::new("conv", 1, 2, 3, &mut rng))
        .push(Flatten)
        .push(Linear::new("fc", 8, 3, &mut rng))
        .push(Linear::new("fc2", 3, 3, &mut rng));
    let before: Vec<Tensor> = bigger.params().iter().map(|p| p.value.clone()).collect();
    let e = back.restore_params(&mut bigger.params_mut()).unwrap_err();
    assert_eq!(
        e.kind,
        CheckpointErrorKind::MissingTensor {
            name: "fc2.weight".into()
        }
    );
    assert_eq!(e.path, path);
    // Nothing was changed by the failed restore.
    let after: Vec<Tensor> = bigger.params().iter().map(|p| p.value.clone()).collect();
    assert_eq!(before, after);

    // The file has a parameter the model lacks.
    let mut smaller = Sequential::new().push(Conv2d::new("conv", 1, 2, 3, &mut rng));
    let e = back.restore_params(&mut smaller.params_mut()).unwrap_err();
    assert_eq!(
        e.kind,
        CheckpointErrorKind::UnexpectedTensor {
            name: "fc.weight".into()
        }
    );

    // Same names, another shape.
    let mut wide = Sequential::new()
        .push(Conv2d::new("conv", 1, 2, 3, &mut rng))
        .push(Flatten)
        .push(Linear::new("fc", 8, 4, &mut rng));
    let e = back.restore_params(&mut wide.params_mut()).unwrap_err();
    assert_eq!(
        e.kind,
        CheckpointErrorKind::ShapeMismatch {
            name: "fc.weight".into(),
            expected: vec![4, 8],
            found: vec![3, 8],
        }
    );
    assert!(e.to_string().contains("fc.weight"));

    // Optimiser state is checked against the parameters too.
    let mut opt = Adam::new();
    let e = back
        .restore_optimizer(&mut opt, &wide.params())
        .unwrap_err();
    assert!(
        matches!(e.kind, CheckpointErrorKind::ShapeMismatch { .. }),
        "{e}"
    );
    let mut opt = Sgd::momentum(0.9);
    let e = back.restore_optimizer(&mut opt, &m.params()).unwrap_err();
    assert!(
        matches!(e.kind, CheckpointErrorKind::UnexpectedTensor { .. }),
        "{e}"
    );
    assert!(matches!(
        back.word("nope").unwrap_err().kind,
        CheckpointErrorKind::MissingWord { .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_file_is_an_io_error() {
    let path = std::env::temp_dir().join("layers-no-such-checkpoint.ckpt");
    match load_err(&path) {
        CheckpointErrorKind::Io { op, .. } => assert_eq!(op, "reading"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn an_endless_device_fails_at_once_on_its_magic() {
    // Reading the whole file first would never end (and take all memory).
    let path = Path::new("/dev/zero");
    match load_err(path) {
        CheckpointErrorKind::BadMagic { found } => assert_eq!(found, [0; 8]),
        k => panic!("{k:?}"),
    }
}

#[test]
fn a_header_claiming_more_than_the_file_holds_is_truncated_from_its_size() {
    let dir = scratch("claim");
    let mut b = sample().2.to_bytes();
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let path = dir.join("claim.wgck");
    write_bytes(&path, &b);
    match load_err(&path) {
        CheckpointErrorKind::Truncated { expected, actual } => {
            assert_eq!((expected, actual), ((1 << 40) + 28, b.len() as u64));
        }
        k => panic!("{k:?}"),
    }
    // A short foreign file is "not a checkpoint", not "cut short".
    write_bytes(&path, b"PK\x03");
    assert!(matches!(
        load_err(&path),
        CheckpointErrorKind::BadMagic {
            found: [b'P', b'K', 3, 0, 0, 0, 0, 0]
        }
    ));
    // A prefix of the magic is a checkpoint cut short.
    write_bytes(&path, b"WGRD");
    assert!(matches!(
        load_err(&path),
        CheckpointErrorKind::Truncated { actual: 4, .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stream_is_read_no_further_than_its_header_says() {
    // A FIFO has no size to check against: a valid checkpoint followed by
    // 16 MiB more is refused after one byte past the announced end.
    let dir = scratch("fifo");
    let fifo = dir.join("ck.fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let good = sample().2.to_bytes();
    let n = good.len() as u64;
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let _ = f.write_all(&good);
            let junk = vec![7u8; 1 << 20];
            // Stops with a broken pipe once the reader has given up.
            let mut sent = 0;
            while sent < 16 && f.write_all(&junk).is_ok() {
                sent += 1;
            }
            sent
        })
    };
    match load_err(&fifo) {
        CheckpointErrorKind::TrailingData { expected, actual } => {
            assert_eq!((expected, actual), (n, n + 1));
        }
        k => panic!("{k:?}"),
    }
    let sent = writer.join().unwrap();
    assert!(sent < 16, "the reader drained the whole stream");
    let _ = std::fs::remove_dir_all(&dir);
}
