//! The `hoard` binary: everything happens in [`hoard::cli::main`].

fn main() {
    std::process::exit(hoard::cli::main());
}
