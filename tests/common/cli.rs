//! Finds the `release_tool` example for the tests that run it as a process
//! (`tests/aws_cli*.rs`).
//!
//! Include with `#[path = "common/cli.rs"] mod cli_common;`.

#![allow(dead_code)]

use std::path::PathBuf;

/// The `release_tool` example program, built by `cargo build --examples`
/// (`scripts/test.sh` does, before the tests; `cargo test` builds examples
/// only as test harnesses).
pub fn release_tool() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let tool = profile
        .join("examples")
        .join(format!("release_tool{}", std::env::consts::EXE_SUFFIX));
    assert!(
        tool.is_file(),
        "{} is missing: build the example programs first \
         (`cargo build --all-features --examples`, as scripts/test.sh does)",
        tool.display()
    );
    tool
}

/// [`release_tool`] with nothing from this process's environment but
/// `PATH`, and the test credentials under `access_key` (so the emulator
/// counts its calls under that key) in `region`.
pub fn release_tool_command(access_key: &str, region: &str) -> std::process::Command {
    let mut command = std::process::Command::new(release_tool());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", region)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}
