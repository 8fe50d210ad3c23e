//! The `hoard` binary: everything happens in [`hoard::cli::main`].

fn main() {
    let code = hoard::cli::main();
    hoard::crashpoint::report();
    std::process::exit(code);
}
