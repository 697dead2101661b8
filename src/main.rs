fn main() -> std::process::ExitCode {
    mcpgate::cli::main()
}
