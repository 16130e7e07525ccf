//! A deploy's parameter writes, a bounded number in flight at once, and the
//! exact report of a deploy that fails part-way.

use futures::stream::{FuturesUnordered, StreamExt};

use crate::{
    EnvironmentId, Error, ImageStore, PartialDeployment, PlannedWrite, ProjectId, ReleaseId,
    Result, ServiceId,
};

/// How many parameter writes a deploy has in flight at once, unless
/// [`ReleaseTracker::with_write_concurrency`](crate::ReleaseTracker::with_write_concurrency)
/// says otherwise.
///
/// A round trip to SSM takes tens of milliseconds, so writes one after
/// another cost 10–20 s for 300 services; 10 at a time, 30 round trips. More
/// is not better: Parameter Store's throughput quota is per account and
/// region (40 transactions per second by default for reads, shared with
/// every other client; writes are reported to be allowed far fewer), so a
/// deploy that is throttled is paced by the adaptive retry mode of the AWS
/// stores (`aws::AwsSettings`, feature `aws`), and the larger the
/// first burst, the more writes are refused before that pacing starts.
/// Against a quota of 5 writes per second, 95 writes 10 at a time completed
/// in every run, 20 at a time failed (`BENCHMARKS.md`).
pub const DEFAULT_WRITE_CONCURRENCY: usize = 10;

/// What must hold before each write starts (a deploy's lease, kept alive).
#[async_trait::async_trait]
pub(crate) trait BeforeWrite: Send {
    /// `Err` stops the deploy before the next write, with this error.
    async fn before_write(&mut self) -> Result<()>;
}

/// Writes each change's image to `environment`'s label, at most `limit` at a
/// time, and returns the services written, in plan order. `gate` is asked
/// before each write starts.
///
/// After a write fails (or `gate` refuses) no other write starts, and the
/// ones in flight are awaited, so the error says exactly which parameters
/// hold the release's image: [`Error::PartialDeployment`], in plan order
/// whatever order the writes completed in. Running the deploy again writes
/// the rest.
#[allow(clippy::too_many_arguments)] // one batch of writes, described whole
pub(crate) async fn write_changes<I: ImageStore>(
    images: &I,
    project: &ProjectId,
    release: &ReleaseId,
    environment: &EnvironmentId,
    changes: Vec<PlannedWrite>,
    limit: usize,
    gate: &mut dyn BeforeWrite,
) -> Result<Vec<ServiceId>> {
    let label = environment.label();
    let limit = limit.max(1);
    // One slot per change, filled as its write completes: the report is
    // built in plan order, never in completion order.
    let mut outcomes: Vec<Option<Result<()>>> = changes.iter().map(|_| None).collect();
    {
        let mut queue = changes.iter().enumerate();
        let mut in_flight = FuturesUnordered::new();
        let mut failed = false;
        loop {
            while !failed && in_flight.len() < limit {
                let Some((index, change)) = queue.next() else {
                    break;
                };
                if let Err(refused) = gate.before_write().await {
                    failed = true;
                    outcomes[index] = Some(Err(refused));
                    break;
                }
                let label = &label;
                in_flight.push(async move {
                    let result = images
                        .put_image(project, label, &change.service, &change.image)
                        .await;
                    (index, result)
                });
            }
            let Some((index, result)) = in_flight.next().await else {
                break;
            };
            failed |= result.is_err();
            outcomes[index] = Some(result);
        }
    }

    let mut written = Vec::with_capacity(changes.len());
    let mut failures = Vec::new();
    let mut not_attempted = Vec::new();
    for (change, outcome) in changes.into_iter().zip(outcomes) {
        match outcome {
            Some(Ok(())) => written.push(change.service),
            Some(Err(error)) => failures.push((change.service, error)),
            None => not_attempted.push(change.service),
        }
    }
    let mut failures = failures.into_iter();
    let Some((first, source)) = failures.next() else {
        return Ok(written);
    };
    let also_failed: Vec<(ServiceId, Error)> = failures.collect();
    let mut not_written = Vec::with_capacity(1 + also_failed.len() + not_attempted.len());
    not_written.push(first.clone());
    not_written.extend(also_failed.iter().map(|(service, _)| service.clone()));
    not_written.extend(not_attempted);
    Err(Error::PartialDeployment(Box::new(PartialDeployment {
        project: project.clone(),
        release: release.clone(),
        environment: environment.clone(),
        written,
        failed: first,
        not_written,
        source,
        also_failed,
    })))
}
