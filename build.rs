//! Rebuild when migrations change: `embed_migrations!` reads them at compile time but
//! does not tell Cargo about them.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
