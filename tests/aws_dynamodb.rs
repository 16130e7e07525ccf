//! The DynamoDB release store on the moto emulator (run by
//! `scripts/test.sh`): the records the old tools wrote, the shape this crate
//! writes, malformed items, concurrency, call counts on a large table, and
//! table provisioning.

#[path = "common/aws.rs"]
mod aws_common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use release_tracking::aws::{default_table_name, DynamoDbReleaseStore, TableState};
use release_tracking::conformance::legacy_records;
use release_tracking::store::PageRequest;
use release_tracking::{
    Deployment, DeploymentEnvironment, EnvironmentId, Error, ImageEntry, ImageUri, NewRelease,
    ProjectId, Release, ReleaseId, ReleaseStore, Requester, ServiceId, Timestamp,
};

use aws_common::{
    counted_dynamodb_client, dynamodb_client, fresh_project, provision, release_store, sdk_config,
    CallCounter,
};

type Item = HashMap<String, AttributeValue>;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn m(fields: &[(&str, AttributeValue)]) -> AttributeValue {
    AttributeValue::M(item(fields))
}

fn l(values: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(values)
}

fn item(fields: &[(&str, AttributeValue)]) -> Item {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("test timestamp")
}

fn id(text: &str) -> ReleaseId {
    ReleaseId::new(text).expect("test release id")
}

fn env(text: &str) -> EnvironmentId {
    EnvironmentId::new(text).expect("test environment id")
}

fn svc(text: &str) -> ServiceId {
    ServiceId::new(text).expect("test service id")
}

const ECR: &str = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome";
const ARN: &str = "arn:aws:sts::123456789012:assumed-role/ci/session";

fn new_release(project: &ProjectId, release: &str, created: Timestamp) -> Release {
    Release::new(NewRelease {
        release_id: id(release),
        project_id: project.clone(),
        project_name: "Test project".to_owned(),
        date_created: created,
        requested_by: Requester::new(ARN),
        description: "a test release".to_owned(),
        images: BTreeMap::from([(
            svc("archivist"),
            ImageEntry::Uri(ImageUri::new(format!("{ECR}/archivist:ref.3f2a9c1")).unwrap()),
        )]),
    })
}

fn deployment(environment: &str, at: Timestamp) -> Deployment {
    Deployment::new(env(environment), at, Requester::new(ARN), "test deployment")
}

async fn put_raw(client: &aws_sdk_dynamodb::Client, table: &str, raw: Item) {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(raw))
        .send()
        .await
        .expect("raw PutItem");
}

async fn get_raw(client: &aws_sdk_dynamodb::Client, table: &str, release: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("release_id", s(release))
        .consistent_read(true)
        .send()
        .await
        .expect("raw GetItem")
        .item()
        .cloned()
}

/// The crate's catalogue of legacy records as DynamoDB items, typed as the
/// old tools' boto3 wrote them: a tag set is a String Set, a missing image
/// NULL.
fn legacy_items(project: &ProjectId) -> Vec<Item> {
    legacy_records(project)
        .into_iter()
        .map(|legacy| {
            let AttributeValue::M(mut item) = aws_common::json_attribute(&legacy.record) else {
                panic!("{}: not an object", legacy.name);
            };
            if let Some(AttributeValue::M(images)) = item.get_mut("images") {
                for value in images.values_mut() {
                    if let AttributeValue::L(tags) = value {
                        let tags = tags
                            .iter()
                            .map(|t| t.as_s().expect("a tag is a string").clone())
                            .collect();
                        *value = AttributeValue::Ss(tags);
                    }
                }
            }
            item
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_records_of_every_shape_read_back() {
    let project = fresh_project("legacy");
    let store = release_store(&project).await;
    let table = default_table_name(&project);
    let client = dynamodb_client().await;
    for raw in legacy_items(&project) {
        put_raw(&client, &table, raw).await;
    }

    // Oldest shape.
    let oldest = store
        .release(&project, &id("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"))
        .await
        .expect("read oldest")
        .expect("oldest exists");
    assert_eq!(oldest.project_name(), "Storage service");
    assert_eq!(oldest.date_created(), ts("2019-07-10T10:44:02.272898"));
    assert_eq!(
        oldest.requested_by(),
        &Requester::Legacy {
            id: "unknown".into(),
            name: "unknown".into()
        }
    );
    assert_eq!(oldest.description(), "No description provided");
    assert_eq!(
        oldest.images()[&svc("bags_api")],
        ImageEntry::Uri(ImageUri::new("http://example.com/images/bags_api/00001").unwrap())
    );
    let first = &oldest.deployments()[0];
    assert_eq!(first.environment(), &env("stage"));
    match first.environment_record() {
        DeploymentEnvironment::Legacy { name, extra, .. } => {
            assert_eq!(name.as_deref(), Some("Staging"));
            assert_eq!(extra["aws_region_name"], "eu-west-1");
        }
        other => panic!("expected the legacy environment map, got {other:?}"),
    }
    assert_eq!(first.requested_by().display_name(), "Alice");
    assert_eq!(oldest.last_date_deployed(), Some(ts("2019-07-10T11:00:00")));

    // weco-deploy 2.0-3.3.
    let v2 = store
        .release(&project, &id("6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.requested_by().display_name(), "alice");
    assert_eq!(
        v2.deployments()[1].date_created(),
        ts("2020-03-03T09:00:00.5")
    );
    assert_eq!(v2.deployments()[1].environment(), &env("prod"));
    assert_eq!(
        v2.deployments()[1].requested_by(),
        &Requester::new("arn:aws:iam::123456789012:user/bob")
    );

    // weco-deploy 4.0+, with bare tags and NULL images.
    let v4 = store
        .release(&project, &id("a3bb189e-8bf9-3888-9912-ace4e6543002"))
        .await
        .unwrap()
        .unwrap();
    let d = &v4.deployments()[0];
    assert_eq!(
        d.environment_record(),
        &DeploymentEnvironment::Id(env("stage"))
    );
    assert_eq!(
        d.extra()["details"]["archivist"]["ssm_result"]["new_image"],
        "ref.3f2a9c1"
    );
    assert_eq!(
        v4.images()[&svc("archivist")].uri().unwrap().as_str(),
        "ref.3f2a9c1"
    );
    assert_eq!(v4.images()[&svc("notifier")], ImageEntry::Missing);

    // Tag sets, stored as a String Set.
    let tags = store
        .release(&project, &id("c56a4180-65aa-42ec-a945-5fd21dec0538"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tags.images()[&svc("archivist")],
        ImageEntry::Tags(BTreeSet::from(["env.stage".into(), "ref.3f2a9c1".into()]))
    );
    assert!(tags.deployments().is_empty());
    assert_eq!(tags.last_date_deployed(), None);

    // Through the indexes.
    let latest = store
        .latest_release(&project)
        .await
        .unwrap()
        .release
        .unwrap();
    assert_eq!(latest.release_id(), v4.release_id());
    let page = store
        .list_releases(&project, &PageRequest::first(10).unwrap())
        .await
        .unwrap();
    let listed: Vec<&str> = page.items.iter().map(|r| r.release_id().as_str()).collect();
    assert_eq!(
        listed,
        [
            "a3bb189e-8bf9-3888-9912-ace4e6543002",
            "c56a4180-65aa-42ec-a945-5fd21dec0538",
            "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
        ]
    );
    let recent = store
        .recent_deployments(&project, None, 10)
        .await
        .unwrap()
        .records;
    let dates: Vec<String> = recent
        .iter()
        .map(|r| r.deployment.date_created().to_string())
        .collect();
    assert_eq!(
        dates,
        [
            "2021-05-20T08:05:00.123456",
            "2020-03-03T09:00:00.500000",
            "2020-03-02T16:30:00",
            "2019-07-10T11:00:00"
        ]
    );
    let stage = store
        .recent_deployments(&project, Some(&env("stage")), 10)
        .await
        .unwrap()
        .records;
    assert_eq!(stage.len(), 3);

    // Deploying a legacy record appends in the current shape and keeps the
    // old element as it was.
    let updated = store
        .add_deployment(
            &project,
            oldest.release_id(),
            &deployment("prod", ts("2022-01-01T00:00:00")),
        )
        .await
        .unwrap();
    assert_eq!(updated.deployments().len(), 2);
    assert_eq!(
        updated.last_date_deployed(),
        Some(ts("2022-01-01T00:00:00"))
    );
    let raw = get_raw(&client, &table, oldest.release_id().as_str())
        .await
        .unwrap();
    let AttributeValue::L(elements) = &raw["deployments"] else {
        panic!("deployments is not a list: {:?}", raw["deployments"]);
    };
    let AttributeValue::M(old) = &elements[0] else {
        panic!("old element is not a map");
    };
    assert!(matches!(old["environment"], AttributeValue::M(_)));
    assert!(matches!(old["requested_by"], AttributeValue::M(_)));
    let AttributeValue::M(new) = &elements[1] else {
        panic!("new element is not a map");
    };
    assert_eq!(new["environment"], s("prod"));
    assert_eq!(new["requested_by"], s(ARN));
    assert!(matches!(raw["requested_by"], AttributeValue::M(_)));

    // A tag-set release can be deployed too (the record keeps its set).
    store
        .add_deployment(
            &project,
            tags.release_id(),
            &deployment("stage", ts("2022-01-02T00:00:00")),
        )
        .await
        .unwrap();
    let raw = get_raw(&client, &table, tags.release_id().as_str())
        .await
        .unwrap();
    let AttributeValue::M(images) = &raw["images"] else {
        panic!("images is not a map");
    };
    assert!(matches!(images["archivist"], AttributeValue::Ss(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_writes_the_current_shape() {
    let project = fresh_project("shape");
    let store = release_store(&project).await;
    let table = default_table_name(&project);
    let client = dynamodb_client().await;
    let release = new_release(&project, "r-current", ts("2024-05-06T07:08:09.123456"));
    store.create_release(&release).await.unwrap();

    let raw = get_raw(&client, &table, "r-current").await.unwrap();
    assert_eq!(raw["release_id"], s("r-current"));
    assert_eq!(raw["project_id"], s(project.as_str()));
    assert_eq!(raw["project_name"], s("Test project"));
    assert_eq!(raw["date_created"], s("2024-05-06T07:08:09.123456"));
    assert_eq!(raw["requested_by"], s(ARN));
    assert_eq!(raw["description"], s("a test release"));
    assert_eq!(
        raw["images"],
        m(&[("archivist", s(&format!("{ECR}/archivist:ref.3f2a9c1")))])
    );
    assert_eq!(raw["deployments"], l(vec![]));
    assert!(
        !raw.contains_key("last_date_deployed"),
        "a release never deployed must stay out of the sparse deployment_gsi"
    );

    store
        .add_deployment(
            &project,
            release.release_id(),
            &deployment("stage", ts("2024-05-07T00:00:00")),
        )
        .await
        .unwrap();
    let raw = get_raw(&client, &table, "r-current").await.unwrap();
    assert_eq!(raw["last_date_deployed"], s("2024-05-07T00:00:00"));
    assert_eq!(
        raw["deployments"],
        l(vec![m(&[
            ("date_created", s("2024-05-07T00:00:00")),
            ("description", s("test deployment")),
            ("environment", s("stage")),
            ("requested_by", s(ARN)),
        ])])
    );
}

fn expect_invalid_record(err: Error, release: &str, attribute: &str) {
    let text = err.to_string();
    match err {
        Error::InvalidRecord {
            record,
            attribute: got,
            ..
        } => {
            assert!(record.contains(release), "{text}");
            assert_eq!(got, attribute, "{text}");
        }
        other => panic!("expected InvalidRecord for {release}.{attribute}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_items_are_invalid_records_naming_release_and_attribute() {
    let project = fresh_project("malformed");
    let store = release_store(&project).await;
    let table = default_table_name(&project);
    let client = dynamodb_client().await;
    let base = |release: &str| {
        item(&[
            ("release_id", s(release)),
            ("project_id", s(project.as_str())),
            ("date_created", s("2024-01-01T00:00:00")),
            ("requested_by", s(ARN)),
            ("images", m(&[("archivist", s("ref.1"))])),
            ("deployments", l(vec![])),
        ])
    };
    let mut images_string = base("bad-images");
    images_string.insert("images".into(), s("archivist=ref.1"));
    put_raw(&client, &table, images_string).await;
    let mut bad_environment = base("bad-environment");
    bad_environment.insert(
        "deployments".into(),
        l(vec![m(&[
            ("date_created", s("2024-01-02T00:00:00")),
            ("environment", AttributeValue::N("7".into())),
            ("requested_by", s(ARN)),
        ])]),
    );
    put_raw(&client, &table, bad_environment).await;
    let mut binary_service = base("bad-image-value");
    binary_service.insert(
        "images".into(),
        m(&[("archivist", AttributeValue::B(vec![1u8, 2, 3].into()))]),
    );
    put_raw(&client, &table, binary_service).await;

    let err = store
        .release(&project, &id("bad-images"))
        .await
        .unwrap_err();
    expect_invalid_record(err, "bad-images", "images");
    let err = store
        .release(&project, &id("bad-environment"))
        .await
        .unwrap_err();
    expect_invalid_record(err, "bad-environment", "deployments[0].environment");
    let err = store
        .release(&project, &id("bad-image-value"))
        .await
        .unwrap_err();
    expect_invalid_record(err, "bad-image-value", "images.archivist");
    // Through an index: no panic and no failure; each bad item is passed
    // over and named, with its attribute.
    let latest = store.latest_release(&project).await.unwrap();
    assert_eq!(latest.release, None);
    let mut skipped: Vec<(Option<String>, String)> = latest
        .skipped
        .iter()
        .map(|s| (s.release_id.clone(), s.attribute.clone()))
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            (
                Some("bad-environment".to_owned()),
                "deployments[0].environment".to_owned()
            ),
            (
                Some("bad-image-value".to_owned()),
                "images.archivist".to_owned()
            ),
            (Some("bad-images".to_owned()), "images".to_owned()),
        ]
    );

    // `date_created` a number cannot be in a table with project_gsi (its
    // range key must be S); read it from a plain table of the same key.
    let plain = format!("{table}-plain");
    client
        .create_table()
        .table_name(&plain)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("release_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("release_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut numeric_date = base("bad-date");
    numeric_date.insert(
        "date_created".into(),
        AttributeValue::N("1562755442".into()),
    );
    put_raw(&client, &plain, numeric_date).await;
    let plain_store =
        DynamoDbReleaseStore::new(&sdk_config().await).with_table_name(move |_| plain.clone());
    let err = plain_store
        .release(&project, &id("bad-date"))
        .await
        .unwrap_err();
    let text = err.to_string();
    expect_invalid_record(err, "bad-date", "date_created");
    assert!(text.contains("-plain"), "the table is named: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_deployment_calls_and_never_moves_last_date_backward() {
    let project = fresh_project("deploy");
    let counter = CallCounter::new();
    let store = DynamoDbReleaseStore::from_client(counted_dynamodb_client(&counter).await);
    provision(&store, &project).await;
    let table = default_table_name(&project);
    let release = new_release(&project, "r-1", ts("2024-01-01T00:00:00"));
    store.create_release(&release).await.unwrap();

    counter.reset();
    let newer = store
        .add_deployment(
            &project,
            &id("r-1"),
            &deployment("stage", ts("2024-03-01T00:00:00")),
        )
        .await
        .unwrap();
    assert_eq!(newer.last_date_deployed(), Some(ts("2024-03-01T00:00:00")));
    assert_eq!(
        counter.calls("UpdateItem"),
        1,
        "a newest deployment is one UpdateItem"
    );

    counter.reset();
    let older = store
        .add_deployment(
            &project,
            &id("r-1"),
            &deployment("prod", ts("2024-02-01T00:00:00")),
        )
        .await
        .unwrap();
    assert_eq!(older.deployments().len(), 2);
    assert_eq!(
        older.last_date_deployed(),
        Some(ts("2024-03-01T00:00:00")),
        "last_date_deployed never moves backward"
    );
    assert_eq!(
        counter.calls("UpdateItem"),
        2,
        "an older deployment takes a second UpdateItem"
    );

    counter.reset();
    let err = store
        .add_deployment(
            &project,
            &id("r-missing"),
            &deployment("stage", ts("2024-03-02T00:00:00")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReleaseNotFound { release, .. } if release.as_str() == "r-missing"),
        "{err}"
    );
    assert_eq!(counter.calls("UpdateItem"), 2);
    let client = dynamodb_client().await;
    assert!(
        get_raw(&client, &table, "r-missing").await.is_none(),
        "deploying a missing release must not create a stub item"
    );
    assert_eq!(counter.snapshot().get("PutItem"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_releases_are_read_with_single_page_queries() {
    let project = fresh_project("big");
    let counter = CallCounter::new();
    let store = DynamoDbReleaseStore::from_client(counted_dynamodb_client(&counter).await);
    provision(&store, &project).await;
    let table = default_table_name(&project);
    let client = dynamodb_client().await;

    let created = ts("2023-01-01T00:00:00");
    let deployed = ts("2023-06-01T00:00:00");
    let items: Vec<Item> = (0..1000i64)
        .map(|i| {
            let at = deployed.add_micros(i * 60_000_000).to_string();
            item(&[
                ("release_id", s(&format!("rel-{i:04}"))),
                ("project_id", s(project.as_str())),
                ("project_name", s("Big")),
                (
                    "date_created",
                    s(&created.add_micros(i * 1_000_000).to_string()),
                ),
                ("requested_by", s(ARN)),
                ("description", s("")),
                ("images", m(&[("archivist", s(&format!("ref.{i}")))])),
                (
                    "deployments",
                    l(vec![m(&[
                        ("date_created", s(&at)),
                        ("description", s("")),
                        ("environment", s(if i % 2 == 0 { "stage" } else { "prod" })),
                        ("requested_by", s(ARN)),
                    ])]),
                ),
                ("last_date_deployed", s(&at)),
            ])
        })
        .collect();
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        for _ in 0..10 {
            let output = client
                .batch_write_item()
                .request_items(&table, requests.clone())
                .send()
                .await
                .expect("BatchWriteItem");
            requests = output
                .unprocessed_items()
                .and_then(|u| u.get(&table))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                break;
            }
        }
        assert!(requests.is_empty(), "BatchWriteItem left items unprocessed");
    }

    counter.reset();
    let latest = store
        .latest_release(&project)
        .await
        .unwrap()
        .release
        .unwrap();
    assert_eq!(latest.release_id().as_str(), "rel-0999");
    assert_eq!(
        counter.calls("Query"),
        1,
        "latest_release on 1,000 releases: one Query"
    );
    println!("latest_release: {:?}", counter.snapshot());

    counter.reset();
    let recent = store
        .recent_deployments(&project, None, 10)
        .await
        .unwrap()
        .records;
    let ids: Vec<&str> = recent.iter().map(|r| r.release_id.as_str()).collect();
    let expected: Vec<String> = (990..1000).rev().map(|i| format!("rel-{i:04}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(
        counter.calls("Query"),
        1,
        "recent_deployments(10): one Query"
    );
    println!("recent_deployments(None, 10): {:?}", counter.snapshot());

    counter.reset();
    let page = store
        .list_releases(&project, &PageRequest::first(10).unwrap())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(page.items[0].release_id().as_str(), "rel-0999");
    assert!(page.next.is_some());
    assert_eq!(counter.calls("Query"), 1, "list_releases(10): one Query");

    counter.reset();
    let second = store
        .list_releases(
            &project,
            &PageRequest::first(10).unwrap().after(page.next.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(second.items[0].release_id().as_str(), "rel-0989");
    assert_eq!(counter.calls("Query"), 1, "the next page: one Query");

    counter.reset();
    let prod = store
        .recent_deployments(&project, Some(&env("prod")), 10)
        .await
        .unwrap()
        .records;
    let ids: Vec<&str> = prod.iter().map(|r| r.release_id.as_str()).collect();
    let expected: Vec<String> = (980..1000)
        .rev()
        .filter(|i| i % 2 == 1)
        .map(|i| format!("rel-{i:04}"))
        .collect();
    assert_eq!(ids, expected);
    println!(
        "recent_deployments(prod, 10), every other release: {:?}",
        counter.snapshot()
    );
    assert_eq!(counter.calls("Query"), 2);
    assert_eq!(
        counter.snapshot().get("Scan"),
        None,
        "the store never scans"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_longer_than_a_page_are_ordered_by_release_id() {
    let project = fresh_project("ties");
    let counter = CallCounter::new();
    let store = DynamoDbReleaseStore::from_client(counted_dynamodb_client(&counter).await);
    provision(&store, &project).await;
    let same = ts("2024-04-04T04:04:04");
    let mut expected = Vec::new();
    for i in 0..130 {
        // Ids in a scrambled order so no write order matches the answer.
        let name = format!("tie-{:03}", (i * 67) % 130);
        store
            .create_release(&new_release(&project, &name, same))
            .await
            .unwrap();
        expected.push(name);
    }
    store
        .create_release(&new_release(
            &project,
            "zz-older",
            ts("2024-01-01T00:00:00"),
        ))
        .await
        .unwrap();
    expected.sort();
    expected.reverse();
    expected.push("zz-older".to_owned());

    counter.reset();
    let latest = store
        .latest_release(&project)
        .await
        .unwrap()
        .release
        .unwrap();
    assert_eq!(latest.release_id().as_str(), "tie-129");
    println!("latest_release over a tie of 130: {:?}", counter.snapshot());

    let mut seen = Vec::new();
    let mut request = PageRequest::first(7).unwrap();
    loop {
        let page = store.list_releases(&project, &request).await.unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|r| r.release_id().to_string()));
        match page.next {
            Some(next) => request = PageRequest::first(7).unwrap().after(next),
            None => break,
        }
        assert!(seen.len() <= expected.len(), "listing does not end");
    }
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_twice_is_fine() {
    let project = fresh_project("twice");
    let store = DynamoDbReleaseStore::new(&sdk_config().await);
    assert_eq!(
        store.ensure_table(&project).await.unwrap(),
        TableState::Created
    );
    assert_eq!(
        store.ensure_table(&project).await.unwrap(),
        TableState::AlreadyExisted
    );
    let client = dynamodb_client().await;
    let table = client
        .describe_table()
        .table_name(default_table_name(&project))
        .send()
        .await
        .unwrap()
        .table()
        .cloned()
        .unwrap();
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let mut indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["deployment_gsi", "project_gsi"]);

    // Provisioning from several processes at once is safe too.
    let other = fresh_project("race");
    let (a, b) = tokio::join!(store.ensure_table(&other), store.ensure_table(&other));
    let mut states = [a.unwrap(), b.unwrap()];
    states.sort_by_key(|s| format!("{s:?}"));
    assert!(states.contains(&TableState::Created) || states == [TableState::AlreadyExisted; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_an_incompatible_table_fails_clearly() {
    let project = fresh_project("incompatible");
    let client = dynamodb_client().await;
    let table = default_table_name(&project);
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let store = DynamoDbReleaseStore::new(&sdk_config().await);
    let err = store.ensure_table(&project).await.unwrap_err();
    let text = err.to_string();
    match &err {
        Error::IncompatibleStore {
            location, problem, ..
        } => {
            assert_eq!(location, &format!("DynamoDB table `{table}`"));
            assert!(
                problem.contains("keys [id HASH], expected release_id HASH"),
                "{text}"
            );
            assert!(
                problem.contains("no global secondary index `project_gsi`"),
                "{text}"
            );
            assert!(
                problem.contains("no global secondary index `deployment_gsi`"),
                "{text}"
            );
        }
        other => panic!("expected IncompatibleStore, got {other:?}"),
    }
    assert!(text.contains(&table), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_a_typed_error_that_says_how_to_create_it() {
    let project = fresh_project("missing");
    let store = DynamoDbReleaseStore::new(&sdk_config().await);
    let table = default_table_name(&project);
    let release = new_release(&project, "r-1", ts("2024-01-01T00:00:00"));
    let d = deployment("stage", ts("2024-01-02T00:00:00"));
    let results: Vec<(&str, Error)> = vec![
        (
            "create_release",
            store.create_release(&release).await.unwrap_err(),
        ),
        (
            "release",
            store.release(&project, &id("r-1")).await.unwrap_err(),
        ),
        (
            "latest_release",
            store.latest_release(&project).await.unwrap_err(),
        ),
        (
            "list_releases",
            store
                .list_releases(&project, &PageRequest::first(5).unwrap())
                .await
                .unwrap_err(),
        ),
        (
            "add_deployment",
            store
                .add_deployment(&project, &id("r-1"), &d)
                .await
                .unwrap_err(),
        ),
        (
            "recent_deployments",
            store
                .recent_deployments(&project, None, 5)
                .await
                .unwrap_err(),
        ),
    ];
    for (what, err) in results {
        let text = err.to_string();
        match err {
            Error::StoreNotProvisioned {
                project: p,
                location,
                fix,
            } => {
                assert_eq!(location, format!("release table `{table}`"), "{what}");
                assert_eq!(p, project, "{what}");
                assert!(fix.contains("ensure_table"), "{what}: {fix}");
            }
            other => panic!("{what}: expected StoreNotProvisioned, got {other:?}"),
        }
        assert!(
            text.contains(&table) && text.contains("ensure_table"),
            "{what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_sharing_one_table_do_not_see_each_other() {
    let a = fresh_project("share-a");
    let b = fresh_project("share-b");
    let shared = format!("shared-{a}");
    let name = shared.clone();
    let store =
        DynamoDbReleaseStore::new(&sdk_config().await).with_table_name(move |_| name.clone());
    assert_eq!(store.table_name(&b), shared);
    store.ensure_table(&a).await.unwrap();
    assert_eq!(
        store.ensure_table(&b).await.unwrap(),
        TableState::AlreadyExisted
    );
    let release = new_release(&a, "r-a", ts("2024-01-01T00:00:00"));
    store.create_release(&release).await.unwrap();
    store
        .add_deployment(
            &a,
            &id("r-a"),
            &deployment("stage", ts("2024-01-02T00:00:00")),
        )
        .await
        .unwrap();

    assert!(store.release(&b, &id("r-a")).await.unwrap().is_none());
    assert!(store.latest_release(&b).await.unwrap().release.is_none());
    assert!(store
        .recent_deployments(&b, None, 5)
        .await
        .unwrap()
        .records
        .is_empty());
    let err = store
        .add_deployment(
            &b,
            &id("r-a"),
            &deployment("stage", ts("2024-01-03T00:00:00")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReleaseNotFound { .. }), "{err}");
    let still = store.release(&a, &id("r-a")).await.unwrap().unwrap();
    assert_eq!(still.deployments().len(), 1);
}
