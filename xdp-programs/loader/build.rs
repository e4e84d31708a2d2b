//! Compiles `../ebpf` (alkaid-xdp-ebpf) for bpfel-unknown-none and leaves the object in
//! OUT_DIR/alkaid-xdp, which `src/lib.rs` embeds.
//!
//! Works on a fresh machine after scripts/setup.sh (stable + rust-src + bpf-linker): the eBPF
//! crate needs `-Z build-std=core`, which stable accepts with RUSTC_BOOTSTRAP=1 (set for the
//! child build only). The toolchain is the one running this build (RUSTUP_TOOLCHAIN), so no
//! nightly is required.
//!
//! This does what `aya_build::build_ebpf` does, except that the child cargo's output is shown
//! only when it fails (aya-build forwards every line, progress included, as `cargo:warning`).
//!
//! Tried and rejected (kernel 6.18, LLVM 22): `-C target-cpu=v3` makes LLVM spill packet
//! pointers as 32-bit values ("invalid size of register spill"), and bpf-linker's
//! `+allows-misaligned-mem-access` makes it load byte arrays on the stack with misaligned word
//! accesses, which the verifier refuses for the stack ("misaligned stack access").

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

const PACKAGE: &str = "alkaid-xdp-ebpf";
const BINARY: &str = "alkaid-xdp";
const TARGET: &str = "bpfel-unknown-none";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").context("OUT_DIR")?);
    let ebpf_dir = manifest_dir.join("../ebpf");
    let ebpf_dir = ebpf_dir
        .canonicalize()
        .with_context(|| format!("{}", ebpf_dir.display()))?;
    for dir in [ebpf_dir.clone(), manifest_dir.join("../common")] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");

    if env::var_os("AYA_BUILD_SKIP").is_some_and(|v| v == "1" || v == "true") {
        // Lets `cargo doc`/`check` run where bpf-linker is absent; the object is then empty and
        // loading fails at run time with a clear aya error.
        std::fs::write(out_dir.join(BINARY), [])?;
        return Ok(());
    }

    let target_dir = out_dir.join("ebpf-target");
    let toolchain = env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".to_owned());
    let mut cmd = if which("rustup") {
        let mut c = Command::new("rustup");
        c.args(["run", &toolchain, "cargo"]);
        c
    } else {
        Command::new("cargo")
    };
    cmd.current_dir(&ebpf_dir)
        .args(["build", "--package", PACKAGE, "--bins", "--release"])
        .args(["--target", TARGET, "-Z", "build-std=core", "--quiet"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags())
        // The parent's compiler wrappers (clippy-driver, sccache) are not for this target.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR");
    let out = cmd
        .output()
        .with_context(|| format!("spawning {cmd:?} (is cargo on PATH?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "building the eBPF object failed ({}); needs rust-src and bpf-linker \
             (scripts/setup.sh)\n{stderr}",
            out.status
        );
    }
    let built = target_dir.join(TARGET).join("release").join(BINARY);
    copy(&built, &out_dir.join(BINARY))
}

fn rustflags() -> String {
    // aya-ebpf reads `bpf_target_arch` for architecture-specific helpers (pt_regs layouts).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_owned());
    let arch = if arch.starts_with("riscv64") {
        "riscv64".to_owned()
    } else {
        arch
    };
    let cfg = format!("--cfg=bpf_target_arch=\"{arch}\"");
    // Warnings fail the build: its output is shown only on failure, so a warning would
    // otherwise go unseen (the toolchain is pinned, so this cannot break on an upgrade).
    [
        cfg.as_str(),
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
        "-Dwarnings",
    ]
    .join("\x1f")
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn which(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
