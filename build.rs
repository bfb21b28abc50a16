//! Build script.
//!
//! - Client bundle (SPEC 1.6): the official `socket.io-client` dist files come from the npm
//!   package pinned by `web/package-lock.json`, installed at build time (`npm ci --prefix
//!   web`) when `web/node_modules` is missing, and copied into `OUT_DIR`, from where
//!   `src/http/assets.rs` embeds them. Nothing third-party is committed.
//! - Migrations: `embed_migrations!` does not notice changed migration files on its own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The dist files served under the engine path, as named by the npm package.
const CLIENT_FILES: &[&str] = &[
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=web/src");
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let web = manifest.join("web");
    let dist = web.join("node_modules/socket.io-client/dist");

    if !CLIENT_FILES.iter().all(|f| dist.join(f).is_file()) {
        npm_ci(&web);
    }
    for file in CLIENT_FILES {
        let from = dist.join(file);
        std::fs::copy(&from, out.join(file)).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} into OUT_DIR: {e}; run `npm ci --prefix web`",
                from.display()
            )
        });
    }
    let version = client_version(&web).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=MENSAJERO_SOCKET_IO_CLIENT_VERSION={version}");
}

fn npm_ci(web: &Path) {
    println!(
        "cargo:warning=web/node_modules is missing: running `npm ci --prefix web` to fetch socket.io-client"
    );
    let status = Command::new("npm")
        .arg("ci")
        .arg("--no-audit")
        .arg("--no-fund")
        .arg("--prefix")
        .arg(web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm ci --prefix web` failed ({s}); the Socket.IO client bundle comes from the npm \
             package socket.io-client pinned in web/package-lock.json"
        ),
        Err(e) => panic!(
            "npm is needed at build time to fetch the Socket.IO client bundle (npm package \
             socket.io-client, pinned in web/package-lock.json) but could not be run: {e}. \
             Install Node.js and npm, or run `npm ci --prefix web` elsewhere and copy \
             web/node_modules here."
        ),
    }
}

/// The installed client's version, from its own package.json (used as the bundle's ETag).
fn client_version(web: &Path) -> Option<String> {
    let text =
        std::fs::read_to_string(web.join("node_modules/socket.io-client/package.json")).ok()?;
    let at = text.find("\"version\"")?;
    let rest = &text[at + "\"version\"".len()..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}
