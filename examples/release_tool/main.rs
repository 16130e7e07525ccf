//! A command-line release tool on any of the crate's stores.
//!
//! ```text
//! cargo run --features sqlite --example release_tool -- --store sqlite:releases.db --help
//! cargo run --features aws --example release_tool -- prepare --description "weekly"
//! cargo run --features aws --example release_tool -- deploy latest stage --description "weekly"
//! cargo run --features aws --example release_tool -- --json history --limit 5
//! ```
//!
//! It reads `.wellcome_project` (or `--manifest`), picks the only project (or
//! `--project`), then opens the store named by `--store`:
//!
//! - `aws` (the default; crate feature `aws`): images in SSM Parameter
//!   Store, releases in the project's DynamoDB table. AWS is configured from
//!   the manifest (region, `role_arn`) and the default credential chain, and
//!   the caller's STS identity is recorded as the requester (with a role,
//!   the caller behind it). `--endpoint-url` points it at an emulator.
//! - `sqlite:PATH` (crate feature `sqlite`): images and releases in one
//!   SQLite file, created if missing; no AWS at all. The requester is the
//!   local user (`USER`), unless `--requester` names one.
//!
//! The tool builds with either feature or both; a store this build lacks
//! is a usage error naming the feature. AWS is set up only once the command
//! line is parsed and only for a store that needs it: `--help`, `--version`,
//! usage errors and `sqlite:` commands make no AWS call.
//!
//! `deploy` shows its plan, with the environment's promotion gates, before
//! it writes: unmet gates refuse it unless `--bypass-gates --reason TEXT`
//! (recorded with the deployment). `rollback ENV [--to RELEASE]` returns an
//! environment to the release current there before the present one.
//! `history [ENV]` shows each deployment's kind and the release it replaced.
//!
//! Every `deploy` holds its environment's lease while it writes (on either
//! store), so two deploys to one environment never interleave: the second
//! is refused with the holder's name, release, host and times. A deploy
//! that dies holds it until it expires (`--lease-ttl`, 600 s by default);
//! `unlock ENV --force --reason …` removes it sooner. `freeze` stops every
//! deploy to an environment, `block` a release's deploys where it is not
//! current; each such action records who and why (`controls` lists them).
//!
//! `export` writes a project's releases (with their deployments) and the
//! images at `latest` and each environment as JSON lines (the format of the
//! crate's `transfer` module); `import` copies such a file into the store
//! chosen: what is missing is written, what is there already is skipped, and
//! if anything there differs nothing is written. So moving a project from one
//! store to another is
//! `release_tool --store aws export -o storage.jsonl` then
//! `release_tool --store sqlite:releases.db import storage.jsonl`.
//!
//! # Environment variables
//!
//! An option given on the command line wins over its variable.
//!
//! | Option           | Variable                        |
//! |------------------|---------------------------------|
//! | `--store`        | `RELEASE_TRACKING_STORE`        |
//! | `--manifest`     | `RELEASE_TRACKING_MANIFEST`     |
//! | `--project`      | `RELEASE_TRACKING_PROJECT`      |
//! | `--endpoint-url` | `RELEASE_TRACKING_ENDPOINT_URL` |
//! | `--lease-ttl`    | `RELEASE_TRACKING_LEASE_TTL`    |
//! | `--write-concurrency` | `RELEASE_TRACKING_WRITE_CONCURRENCY` |
//!
//! The endpoint has a variable of this tool's own rather than the SDK's
//! `AWS_ENDPOINT_URL`, which the SDK reads anyway (for every AWS program in
//! the shell); `--endpoint-url` and its variable override it for this tool
//! alone.
//!
//! # Output
//!
//! Without `--json`, every command first names its store on stderr
//! (`store: aws (region eu-west-1, table wellcome-releases-storage)`,
//! `store: sqlite (path releases.db)`), prints its report for people on
//! stdout and each warning (a record or parameter it passed over) on stderr
//! as `warning: …`. `export` without `--output` writes the export on stdout
//! and its report on stderr.
//!
//! With `--json` (accepted before or after the command), stdout is one JSON
//! object and nothing else is printed unless the command fails. Its fields,
//! whose names are stable:
//!
//! - every command: `command` (its name, as typed), `store` (`kind`, and for
//!   `aws`: `region`, `table`, `endpoint_url` or `null`; for `sqlite`:
//!   `path`), `warnings` (an array of strings: what the command passed over,
//!   and the manifest's warnings; empty if none);
//! - `provision`: `state` (`created`, `already_existed` or, for a file,
//!   `ready`);
//! - `publish`: `service`, `label`, `image`;
//! - `prepare`, `update`, `show-release`: `release`;
//! - `deploy`, `rollback`: `plan`, and `deployed` (`null` for `--dry-run`);
//! - `release-deploy`: `release`, `deployed`;
//! - `releases`: `releases` (an array), `next` (the cursor for `--after`, or
//!   `null`);
//! - `diff`: `from`, `to` (release ids), `added` and `removed` (service →
//!   image), `changed` (array of `service`, `from`, `to`), `unchanged`
//!   (services);
//! - `current`: `environment`, `current` (`null` if nothing was deployed,
//!   else `release`, `deployment`, `drifted` (services), `label_matches`),
//!   `lease`, `freeze` (each `null` if none), `blocks` (an array);
//! - `lease status`: `environment`, `lease` (or `null`); `unlock`:
//!   `environment`, `removed` (the lease removed, or `null`); `freeze`:
//!   `freeze`; `unfreeze`: `environment`, `lifted` (or `null`); `block`:
//!   `block`; `unblock`: `lifted` (or `null`); `controls`: `environment`
//!   (the filter, or `null`), `events` (newest first: `sequence`, `kind`,
//!   `by`, `reason`, `at`, and the `environment`, `release` or `lease` it
//!   concerns);
//! - `history`: `environment` (the filter, or `null`), `deployments` (each a
//!   deployment with its `release_id`);
//! - `export` (which then needs `--output`): `project_id`, `output`,
//!   `exported` (`releases`, `deployments`, `labels`, `images`, `skipped`:
//!   counts);
//! - `import`: `project_id`, `input` (`null` for stdin), `imported`
//!   (`releases`, `deployments`, `images` written), `unchanged` (`releases`,
//!   `images` already there).
//!
//! The objects inside: a release is `release_id`, `project_id`,
//! `date_created`, `requested_by`, `description`, `images` (service → image
//! URI, `null` for a service recorded without an image, or an array of
//! tags), `deployments`; a deployment is `date_created`, `environment`,
//! `requested_by`, `description` and its audit trail, each `null` when not
//! recorded: `deployment_id`, `kind` (`deploy`, `rollback`, `bypass`),
//! `replaced_release`, `changed_services` (services), `bypass_reason`; a
//! plan is `release_id`, `environment`, `kind` (`deploy` or `rollback`),
//! `replaces` (the release current there, or `null`), `gates` (`null` when
//! the environment has none or for a rollback, else `requires`
//! (environments), `soak` (or `null`), `pass`, `unmet` (strings)),
//! `changed_services`, `changes` (array of `service`, `current` (or `null`),
//! `image`, `resolved_from` (or `null`)), `unchanged`, `untouched`
//! (services; `null` when a deploy read only the release's services),
//! `conflicts` (strings); `deployed` is `release_id`, `deployment`,
//! `written`, `unchanged` (services). Times are UTC, `YYYY-MM-DDTHH:MM:SS`
//! with optional fraction, as in the records.
//!
//! A failing command prints nothing more on stdout (a refused or failed
//! `deploy` has shown its plan there; with `--json`, nothing): its warnings so far, then
//! `error: …` and one `  caused by: …` line per cause, go to stderr, and the
//! exit status is 1 (2 for a usage error, reported by the parser).

// Cargo cannot require "aws or sqlite" of an example: built with neither,
// the tool is only a message saying how to build it.
#[cfg(not(any(feature = "aws", feature = "sqlite")))]
fn main() {
    eprintln!(
        "error: this build of release_tool has no store: build it with \
         `--features sqlite` (one local file) or `--features aws` (or both)"
    );
    std::process::exit(2);
}

#[cfg(any(feature = "aws", feature = "sqlite"))]
#[tokio::main]
async fn main() {
    app::main().await
}

#[cfg(any(feature = "aws", feature = "sqlite"))]
mod app;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod args;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod commands;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod controls;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod human;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod json;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod stores;
#[cfg(any(feature = "aws", feature = "sqlite"))]
mod transfer;
