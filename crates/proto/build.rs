//! Compiles `proto/tousu/v1/*.proto` with protox (pure Rust), so building
//! needs no `protoc` binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["complaint", "event", "intake", "desk", "routing", "sla"]
        .map(|name| root.join(format!("tousu/v1/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
