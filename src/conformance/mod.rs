//! Conformance checks for [`ImageStore`] and [`ReleaseStore`]
//! implementations (feature `conformance`).
//!
//! Every backend of this crate runs all of these in its tests; if you write
//! your own store, run them too. Each check is a test helper: it exercises
//! part of the contract in [`crate::store`] and **panics** with a message that
//! names the broken rule when the store violates it (or when a store call
//! fails).
//!
//! Each check takes the store and a project id that the caller guarantees is
//! unused in that store (no images, no releases), and writes only under that
//! project. Give every check its own project: checks do not clean up. Results
//! are deterministic: fixed ids, fixed timestamps, no randomness.
//!
//! The checks that read [`latest_release`](ReleaseStore::latest_release),
//! [`list_releases`](ReleaseStore::list_releases) or
//! [`recent_deployments`](ReleaseStore::recent_deployments) right after
//! writing assume those reads are up to date; run them against a backend (or
//! emulator) whose indexes are consistent.
//!
//! # Image store checks
//!
//! - [`image_store_put_get_overwrite`]: a written image reads back; writing
//!   again overwrites it.
//! - [`image_store_missing_image`]: a missing image is `None`, not an error.
//! - [`image_store_empty_label`]: an empty label is an empty map.
//! - [`image_store_labels_are_isolated`]: writing one label (`stage`) changes
//!   no other (`latest`, nor `stage-2`, whose name it prefixes).
//! - [`image_store_label_read_completely`]: a label of 37 images is read
//!   whole, however many pages the backend needs.
//!
//! # Release store checks
//!
//! - [`release_store_create_and_get`]: a created release reads back equal.
//! - [`release_store_create_conflict`]: creating an existing id fails with
//!   [`Error::ReleaseAlreadyExists`] and changes nothing.
//! - [`release_store_missing_release`]: a missing release is `None`;
//!   deploying it fails with [`Error::ReleaseNotFound`] and creates nothing.
//! - [`release_store_empty_project`]: a project without releases has no
//!   latest, an empty listing and no deployments.
//! - [`release_store_latest_and_listing`]: 25 releases created out of order
//!   list newest first, each exactly once, in pages no larger than asked.
//! - [`release_store_ties`]: on equal `date_created` the greater release id is
//!   newer, in `latest_release` and in listings, across page boundaries too.
//! - [`release_store_invalid_cursor`]: a cursor the store did not make is
//!   [`Error::InvalidCursor`].
//! - [`release_store_add_deployment`]: a deployment is appended in order and
//!   returned; `last_date_deployed` moves forward, never backward.
//! - [`release_store_recent_deployments`]: deployments across releases,
//!   newest first with the documented tie-breaks, filtered and limited.
//! - [`release_store_deployment_fields_survive`]: unknown deployment fields
//!   (`details`) and the legacy environment/requester shapes are kept.
//! - [`release_store_audit_trail_survives`]: a deployment's audit
//!   attributes (id, kind, replaced release, changed services, bypass
//!   reason) are kept in every shape, and entries without them stay so.
//! - [`release_store_concurrent_deployments`]: 64 concurrent deployments of
//!   one release are all recorded, and all listed newest first.
//! - [`release_store_legacy_records`]: releases in every shape the old tools
//!   wrote are stored and read back as they were, and can be deployed.
//! - [`release_store_created_with_history`]: a release created with its
//!   deployments (as an import copies it) keeps them and lists them.
//!
//! # Control store checks
//!
//! For stores that also implement [`ControlStore`] (leases, freezes, blocks
//! and their events; see [`crate::control`]). Times are injected: a check
//! passes its own `now`.
//!
//! - [`control_store_lease_acquire_and_release`]: a lease reads back; another
//!   holder gets [`Error::EnvironmentBusy`] naming the holder; the holder's
//!   own retry succeeds; a released environment is free.
//! - [`control_store_lease_contenders`]: of 32 concurrent contenders exactly
//!   one wins and the others are told who; likewise for 32 concurrent
//!   takeovers of an expired lease.
//! - [`control_store_lease_expiry_and_takeover`]: busy until the expiry,
//!   taken over from then on; renewal moves the expiry.
//! - [`control_store_lease_holder_only`]: renewal and release by a
//!   non-holder are [`Error::LeaseLost`] and change nothing.
//! - [`control_store_force_unlock`]: removes whatever lease is there and
//!   records an event; with no lease, nothing.
//! - [`control_store_freeze_round_trip`] and
//!   [`control_store_block_round_trip`]: freeze/unfreeze and block/unblock,
//!   their refusals and their events.
//! - [`control_store_events_newest_first`]: the trail numbered, newest
//!   first, per environment, limited.
//! - [`control_store_concurrent_changes_are_each_recorded_once`]: each of
//!   twelve concurrent freezes and blocks is one event, numbered 1 to 12.
//! - [`control_store_projects_and_environments_are_isolated`]: nothing of
//!   one project or environment is seen in another.
//!
//! # Running them all
//!
//! [`for_each_conformance_check!`](crate::for_each_conformance_check) expands
//! a macro of yours once per check, so a test file runs every check, including
//! ones added in later versions of this crate. There is one such macro per
//! trait too ([`for_each_image_store_check!`](crate::for_each_image_store_check),
//! [`for_each_release_store_check!`](crate::for_each_release_store_check)), so
//! each optional capability a store implements brings its own list
//! ([`for_each_control_store_check!`](crate::for_each_control_store_check))
//! and adding one breaks no caller:
//!
//! ```
//! use release_tracking::{conformance, InMemoryImageStore, InMemoryReleaseStore};
//!
//! macro_rules! image_check {
//!     ($check:ident) => {
//!         #[tokio::test]
//!         async fn $check() {
//!             let store = InMemoryImageStore::new(); // your store here
//!             conformance::$check(&store, &"fresh-project".parse().unwrap()).await;
//!         }
//!     };
//! }
//! macro_rules! release_check {
//!     ($check:ident) => {
//!         #[tokio::test]
//!         async fn $check() {
//!             let store = InMemoryReleaseStore::new(); // your store here
//!             conformance::$check(&store, &"fresh-project".parse().unwrap()).await;
//!         }
//!     };
//! }
//! release_tracking::for_each_conformance_check!(image_check, release_check);
//! # fn main() {}
//! ```

/// Expands `$check!(check_name);` for every [`ImageStore`] check of
/// [`conformance`](crate::conformance).
#[macro_export]
macro_rules! for_each_image_store_check {
    ($check:ident) => {
        $check!(image_store_put_get_overwrite);
        $check!(image_store_missing_image);
        $check!(image_store_empty_label);
        $check!(image_store_labels_are_isolated);
        $check!(image_store_label_read_completely);
        $check!(image_store_label_read_by_name);
    };
}

/// Expands `$check!(check_name);` for every [`ReleaseStore`] check of
/// [`conformance`](crate::conformance).
#[macro_export]
macro_rules! for_each_release_store_check {
    ($check:ident) => {
        $check!(release_store_create_and_get);
        $check!(release_store_create_conflict);
        $check!(release_store_missing_release);
        $check!(release_store_empty_project);
        $check!(release_store_latest_and_listing);
        $check!(release_store_ties);
        $check!(release_store_invalid_cursor);
        $check!(release_store_add_deployment);
        $check!(release_store_recent_deployments);
        $check!(release_store_deployment_fields_survive);
        $check!(release_store_audit_trail_survives);
        $check!(release_store_concurrent_deployments);
        $check!(release_store_legacy_records);
        $check!(release_store_created_with_history);
    };
}

/// Expands `$check!(check_name);` for every [`ControlStore`] check of
/// [`conformance`](crate::conformance). Not part of
/// [`for_each_conformance_check!`](crate::for_each_conformance_check): a
/// store without the capability does not run them.
#[macro_export]
macro_rules! for_each_control_store_check {
    ($check:ident) => {
        $check!(control_store_lease_acquire_and_release);
        $check!(control_store_lease_contenders);
        $check!(control_store_lease_expiry_and_takeover);
        $check!(control_store_lease_holder_only);
        $check!(control_store_force_unlock);
        $check!(control_store_freeze_round_trip);
        $check!(control_store_block_round_trip);
        $check!(control_store_events_newest_first);
        $check!(control_store_concurrent_changes_are_each_recorded_once);
        $check!(control_store_projects_and_environments_are_isolated);
    };
}

/// Expands `$image!(check_name);` for every image-store check of
/// [`conformance`](crate::conformance) and `$release!(check_name);` for every
/// release-store check (see the module docs for an example).
///
/// Checks of optional capabilities have macros of their own, so a store
/// without a capability keeps compiling as checks are added.
#[macro_export]
macro_rules! for_each_conformance_check {
    ($image:ident, $release:ident) => {
        $crate::for_each_image_store_check!($image);
        $crate::for_each_release_store_check!($release);
    };
}

// Only the docs above link to these.
#[cfg(doc)]
use crate::{ControlStore, Error, ImageStore, ReleaseStore};

mod control;
mod deployments;
mod images;
mod legacy;
mod releases;
mod support;
mod transfer;

pub use control::*;
pub use deployments::*;
pub use images::*;
pub use legacy::*;
pub use releases::*;
pub use transfer::*;
