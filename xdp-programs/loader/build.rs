//! Compiles `../ebpf` (alkaid-xdp-ebpf) for bpfel-unknown-none with aya-build and leaves the
//! object in OUT_DIR/alkaid-xdp, which `src/object.rs` embeds.
//!
//! Works on a fresh machine after scripts/setup.sh (stable + rust-src + bpf-linker): the eBPF
//! crate needs `-Z build-std=core`, which stable accepts with RUSTC_BOOTSTRAP=1 (set here for
//! the child build only if the caller did not choose). The toolchain is the one running this
//! build (RUSTUP_TOOLCHAIN), so no nightly is required.

use std::{env, path::PathBuf};

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest_dir
        .parent()
        .context("loader has no parent directory")?
        .join("ebpf");
    let ebpf_dir = ebpf_dir
        .canonicalize()
        .with_context(|| format!("{}", ebpf_dir.display()))?;
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../common").display()
    );
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");

    if env::var_os("RUSTC_BOOTSTRAP").is_none() {
        // SAFETY: build scripts are single-threaded here (no thread spawned yet); the variable is
        // inherited by the `cargo build` child that aya-build spawns, and by nothing else.
        unsafe { env::set_var("RUSTC_BOOTSTRAP", "1") };
    }
    // aya-build runs `cargo build --package alkaid-xdp-ebpf` in the current directory. The eBPF
    // crate is its own workspace (excluded from the root, own lock file and profile), so run it
    // from there.
    env::set_current_dir(&ebpf_dir).with_context(|| format!("cd {}", ebpf_dir.display()))?;

    let toolchain = env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".to_owned());
    let root_dir = ebpf_dir
        .to_str()
        .context("non-UTF-8 path to the eBPF crate")?;
    aya_build::build_ebpf(
        [Package {
            name: "alkaid-xdp-ebpf",
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(&toolchain),
    )
}
