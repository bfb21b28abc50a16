//! The `mensajero` binary: parses the command line and hands over to [`mensajero::cli`].

fn main() -> std::process::ExitCode {
    mensajero::cli::main()
}
