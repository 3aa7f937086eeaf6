// SPDX-License-Identifier: MIT
// Links libpolyplug.so at build time: from $POLYPLUG_LIB_DIR when set (also written as the
// rpath of this package's own tests and examples, so they run from a build tree), else from the
// linker's default search path (an installed libpolyplug).
fn main() {
    println!("cargo:rerun-if-env-changed=POLYPLUG_LIB_DIR");
    if let Some(dir) = std::env::var_os("POLYPLUG_LIB_DIR") {
        let dir = match dir.into_string() {
            Ok(dir) => dir,
            Err(bad) => panic!("POLYPLUG_LIB_DIR is not valid UTF-8: {:?}", bad),
        };
        if !std::path::Path::new(&dir).is_dir() {
            panic!("POLYPLUG_LIB_DIR={} is not a directory", dir);
        }
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir);
    }
    println!("cargo:rustc-link-lib=dylib=polyplug");
}
