//! Embeds the command specifications (reference/commands/*.json) into the binary.
use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let specs = manifest.join("../../reference/commands");
    println!("cargo:rerun-if-changed={}", specs.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&specs)
        .expect("reference/commands exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    let mut code = String::from("pub static COMMAND_SPECS: &[&str] = &[\n");
    for file in files {
        code.push_str(&format!(
            "    include_str!({:?}),\n",
            file.canonicalize().unwrap()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("command_specs.rs");
    fs::write(out, code).unwrap();
}
