//! Generates the `alkaid.v1` code with the vendored protoc, so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY of set_var: build scripts are single-threaded.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let protos = [
        "alkaid/v1/resources.proto",
        "alkaid/v1/control.proto",
        "alkaid/v1/programming.proto",
        "alkaid/v1/raft.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&protos, &["."])?;
    Ok(())
}
