//! The real-client suite: the official MCP TypeScript SDK through a full
//! OAuth flow, and the MCP conformance runner, against this build's binary
//! (tests/node/run.sh). Node and npm must be installed: .ci/run installs
//! them; this test fails, never skips, without them.

use std::process::Command;

#[test]
fn official_sdk_and_conformance_runner_complete_against_the_binary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    let out = Command::new("bash")
        .arg("run.sh")
        .current_dir(dir)
        .env("MCPGATE_BIN", env!("CARGO_BIN_EXE_mcpgate"))
        .output()
        .expect("bash runs tests/node/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("node: "))
        .unwrap_or("no summary");
    eprintln!("{summary}");
    assert!(
        out.status.success(),
        "tests/node/run.sh failed ({summary})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
}
