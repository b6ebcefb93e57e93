//! Entry point: hand argv to the CLI dispatcher and exit with the code it chose.

fn main() {
    let code = sparkvisor::cli::main(std::env::args_os().collect());
    std::process::exit(code);
}
