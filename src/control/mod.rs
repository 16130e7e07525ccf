//! Deployment controls, an optional capability of a store: who is deploying
//! to an environment right now (its **lease**), environments closed to every
//! deploy (**freezes**), releases that may not be deployed (**blocks**), and
//! the audit trail of those controls (**events**).
//!
//! [`ControlStore`] is a trait of its own, apart from
//! [`ReleaseStore`](crate::ReleaseStore), so a store without it keeps
//! working and callers ask for it only where they use it. It is object safe
//! (`Arc<dyn ControlStore>` works), and `&T`, `Box<T>` and `Arc<T>` of a
//! control store are control stores too. Every backend of this crate has it:
//! [`InMemoryReleaseStore`](crate::memory::InMemoryReleaseStore), the SQLite
//! store and the DynamoDB release store (which keeps these records in the
//! release table, invisible to every reader of releases).
//!
//! # Leases
//!
//! A deploy takes the environment's lease before its first write and
//! releases it at the end. The lease says who holds it, for what operation
//! and release, from which host, since when, and until when:
//!
//! - [`acquire_lease`](ControlStore::acquire_lease) is one conditional
//!   create. When another holder's lease has not expired it fails with
//!   [`Error::EnvironmentBusy`](crate::Error::EnvironmentBusy), which carries that lease ("environment
//!   `prod` is being deployed by alice (release R, since T, expires T2)").
//!   A lease past its expiry is taken over, conditionally on the expired
//!   lease's id, and [`Acquired::took_over`] says whose it was.
//! - [`renew_lease`](ControlStore::renew_lease) and
//!   [`release_lease`](ControlStore::release_lease) act only on the
//!   holder's own lease (conditionally on its id); otherwise they fail with
//!   [`Error::LeaseLost`](crate::Error::LeaseLost), naming who holds the environment now.
//! - Expiry is judged against a `now` the caller passes, so a caller decides
//!   which clock to trust and tests inject one.
//! - [`force_unlock`](ControlStore::force_unlock) removes whatever lease is
//!   there and records who did it and why: never silently.
//!
//! # Freezes, blocks and events
//!
//! A [`Freeze`] closes an environment until it is lifted; a [`Block`] stops
//! a release from being deployed. Both take a [`ControlAction`] (who, why,
//! when; the reason is required), and every change of them, like every
//! forced unlock, is recorded as a [`ControlEvent`] in the same atomic
//! write as the change, readable newest first per project or per
//! environment. A call that finds nothing to change (lifting a freeze that
//! is not there) changes nothing, records nothing and returns `None`.
//!
//! Every backend passes the checks in `conformance` (feature
//! `conformance`, [`for_each_control_store_check!`](crate::for_each_control_store_check)).

mod actions;
mod events;
mod lease;
mod store;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub(crate) use actions::{sort_blocks, too_many_blocks};
pub use actions::{Block, ControlAction, Freeze, Reason};
pub use events::{ControlChange, ControlEvent};
pub(crate) use lease::{busy, lost, ttl_micros};
pub use lease::{Acquired, Lease, LeaseId, LeaseOperation, LeaseRequest};
pub use store::ControlStore;

/// The longest [`Reason`], in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// The longest host name a [`LeaseRequest`] takes, in characters.
pub const MAX_HOST_CHARS: usize = 255;

/// The longest requester id ([`Requester::id`](crate::Requester::id)) a lease or a control action
/// takes, in characters: the longest IAM ARN. With [`MAX_REASON_CHARS`]
/// it keeps every stored control record a few kilobytes at most.
pub const MAX_REQUESTER_CHARS: usize = 2048;

/// The shortest lease a [`LeaseRequest`] takes.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

/// The longest lease a [`LeaseRequest`] takes (and a renewal grants): a
/// day. A deploy that runs longer renews its lease.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The most releases of one project that can be blocked at once.
pub const MAX_ACTIVE_BLOCKS: usize = 500;

/// The longest [`LeaseId`], in characters.
const MAX_LEASE_ID_CHARS: usize = 128;
