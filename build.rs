//! Build checks, and, with the `static` feature: generate Rust declarations for libxenstore
//! from the system's `xenstore.h` (bindgen), and link `libxenstore.a` (and
//! `libxentoolcore.a`, which it needs) into the binary, found through
//! pkg-config. Without it there is nothing to do: libxenstore is loaded at
//! run time.

fn main() {
    // Only this file decides what the script does (the static feature adds
    // its inputs below): without it, cargo reruns the script, and rebuilds
    // the crate, after any change in the package (bench/, packaging/...).
    println!("cargo:rerun-if-changed=build.rs");
    // The netlink collector is Linux's: elsewhere the default features
    // would build an agent without network facts.
    let target = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let feature = |f: &str| std::env::var_os(format!("CARGO_FEATURE_{f}")).is_some();
    if target != "linux" && feature("NET_NETLINK") && !feature("NET_PNET") {
        println!(
            "cargo:warning=the netlink collector exists only on Linux: this {target} build \
             has no network collector; build with --no-default-features -F xenstore,net_pnet"
        );
    }
    #[cfg(feature = "static")]
    static_libxenstore();
}

#[cfg(feature = "static")]
fn static_libxenstore() {
    use std::path::PathBuf;

    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let lib = match pkg_config::Config::new()
        .statik(true)
        .cargo_metadata(false)
        .probe("xenstore")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "the `static` feature needs libxenstore's headers and static library \
             (Debian/Ubuntu: libxen-dev; Fedora/RHEL: xen-devel; FreeBSD: xen-tools): {e}"
        ),
    };
    // pkg-config leaves system directories out of `-L`: name libdir too.
    let mut dirs = lib.link_paths.clone();
    if let Ok(libdir) = pkg_config::get_variable("xenstore", "libdir") {
        dirs.push(PathBuf::from(libdir));
    }
    for dir in &dirs {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    // `pkg-config --static xenstore`: -lxenstore -lxentoolcore. The Xen
    // libraries are linked statically; the C library (and pthread, part of
    // it) stays dynamic.
    for name in &lib.libs {
        if name.starts_with("xen") {
            println!("cargo:rustc-link-lib=static={name}");
        } else {
            println!("cargo:rustc-link-lib={name}");
        }
    }

    let header = lib
        .include_paths
        .iter()
        .map(|d| d.join("xenstore.h"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/include/xenstore.h"));
    println!("cargo:rerun-if-changed={}", header.display());
    let mut builder = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_function(
            "xs_(open|close|read|write|rm|directory|transaction_start|transaction_end)",
        )
        .allowlist_type("xs_transaction_t")
        .opaque_type("xs_handle")
        .layout_tests(false);
    for dir in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| panic!("bindgen on {}: {e}", header.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("xenstore.rs"))
        .expect("write the bindings");
}
