//! Compiles the ONNX schema subset (proto/onnx.proto) to Rust types with
//! prost-build; protox parses the .proto in Rust, so no protoc is needed.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/onnx.proto"], ["proto"]).expect("bins/proto/onnx.proto");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build on bins/proto/onnx.proto");
}
