//! The example programs run to completion.

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart_runs() {
    quickstart::main().expect("the quickstart succeeds");
}
