//! [`ControlStore`] for [`DynamoDbReleaseStore`]: leases, freezes, blocks
//! and their events as items of the project's release table, invisible to
//! every reader of releases (the layout is documented on the impl).

mod changes;
mod expressions;
mod items;
mod reads;
mod store;
#[cfg(test)]
mod tests;

/// The table's hash key.
const KEY: &str = "release_id";
/// What a control item is.
const RECORD_TYPE: &str = "record_type";
const LEASE_ID: &str = "lease_id";
const EXPIRES: &str = "expires";
const EXPIRES_MICROS: &str = "expires_micros";
const VERSION: &str = "version";
const EVENT_COUNT: &str = "event_count";
const BLOCKED: &str = "blocked_releases";
/// Attributes of an item that are not fields of its record.
const ITEM_ONLY: [&str; 4] = [KEY, RECORD_TYPE, EXPIRES_MICROS, VERSION];

/// How many times a change is read and tried again while other writers
/// keep moving the counters (or DynamoDB reports a conflicting
/// transaction) before it gives up. Every control change of a project moves
/// its event counter, so concurrent changes take turns: enough for a few
/// dozen at once, far more than people freeze and block.
const ATTEMPTS: u32 = 25;
/// The most keys one `BatchGetItem` takes.
const BATCH: usize = 100;
