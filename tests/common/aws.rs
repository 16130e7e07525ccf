//! Shared helpers for the emulator tests (`tests/aws_*.rs`): clients pointed
//! at the moto server that `scripts/test.sh` starts, fresh project ids, an
//! interceptor that counts AWS calls in this process, and the emulator's own
//! per-access-key counts, which also see child processes.
//!
//! Include with `#[path = "common/aws.rs"] mod aws_common;`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ssm::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use release_tracking::aws::{AwsSettings, DynamoDbReleaseStore, SsmImageStore, TableState};
use release_tracking::{Environment, Project, ProjectId};

#[path = "release_tooling.rs"]
pub mod release_tooling;

/// The variable `scripts/test.sh` sets to the emulator's URL.
pub const ENDPOINT_VAR: &str = "RELEASE_TRACKING_TEST_ENDPOINT";

/// The region the tests use.
pub const REGION: &str = "eu-west-1";

/// The access key id of [`sdk_config`]. The emulator keeps every key's data
/// in one account (123456789012), so a client with another key sees the same
/// tables and parameters; only the emulator's call counts are per key.
pub const ACCESS_KEY: &str = "testing";

/// The emulator's URL. Panics (fails the test, never skips it) when it is
/// not set or nothing answers there.
pub fn endpoint() -> String {
    let url = match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{ENDPOINT_VAR} is not set. The AWS tests run against the moto emulator: \
             run them with `bash scripts/test.sh`, which installs and starts it"
        ),
    };
    let reachable = authority(&url)
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "the emulator at {url} ({ENDPOINT_VAR}) does not answer; run the tests with \
         `bash scripts/test.sh`, which starts it"
    );
    url
}

/// `host:port` of a URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// An `SdkConfig` for the emulator: explicit endpoint, static test
/// credentials, region, timeouts, retries.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(ACCESS_KEY).await
}

/// [`sdk_config`] with the access key id `access_key`, so that the
/// emulator counts this client's calls under it ([`operation_counts`]).
/// Built by the crate's own builder, as programs build theirs.
pub async fn sdk_config_for(access_key: &str) -> SdkConfig {
    let project = Project::new(
        "emulator".parse().expect("project id"),
        "Emulator",
        vec![Environment::new(
            "stage".parse().expect("environment id"),
            "Staging",
        )],
    )
    .expect("a valid project");
    emulator_settings(access_key)
        .load(&project)
        .await
        .expect("the emulator configuration loads")
        .config()
        .clone()
}

/// A project for loading settings that need no project of their own.
pub fn any_project() -> Project {
    Project::new(
        "emulator".parse().expect("project id"),
        "Emulator",
        vec![Environment::new(
            "stage".parse().expect("environment id"),
            "Staging",
        )],
    )
    .expect("a valid project")
}

/// The crate's [`AwsSettings`] for the emulator: its endpoint, the test
/// credentials under `access_key`, the test region, short timeouts, 3
/// attempts.
pub fn emulator_settings(access_key: &str) -> AwsSettings {
    AwsSettings::new()
        .endpoint_url(endpoint())
        .region(REGION)
        .credentials_provider(Credentials::new(
            access_key,
            "testing",
            None,
            None,
            "release-tracking-tests",
        ))
        .connect_timeout(Duration::from_secs(3))
        .attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(60))
        .max_attempts(3)
}

/// A project id no other test uses, so tests run in parallel on one
/// emulator (own table, own parameter prefix).
pub fn fresh_project(prefix: &str) -> ProjectId {
    let id = uuid::Uuid::new_v4().simple().to_string();
    ProjectId::new(format!("t-{prefix}-{}", &id[..12])).expect("valid project id")
}

/// Counts SDK calls by operation name (`GetParametersByPath`, `Query`, …):
/// executions (what the code asked for) and attempts (HTTP requests sent,
/// retries included). Deterministic: no timing involved.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, usize>>>,
    attempts: Arc<Mutex<BTreeMap<String, usize>>>,
}

fn operation_name(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| m.name().to_owned())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

fn bump(map: &Mutex<BTreeMap<String, usize>>, name: String) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *map.entry(name).or_default() += 1;
}

impl CallCounter {
    /// A counter at zero.
    pub fn new() -> CallCounter {
        CallCounter::default()
    }

    /// Calls of `operation` so far.
    pub fn calls(&self, operation: &str) -> usize {
        let map = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        map.get(operation).copied().unwrap_or(0)
    }

    /// HTTP attempts of `operation` so far (more than calls if retried).
    pub fn attempts(&self, operation: &str) -> usize {
        let map = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        map.get(operation).copied().unwrap_or(0)
    }

    /// Every call so far, by operation.
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Once per execution, after the operation's configuration (which holds
    // its name) is in place; `read_before_execution` runs before that.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        bump(&self.calls, operation_name(cfg));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        bump(&self.attempts, operation_name(cfg));
        Ok(())
    }
}

/// A raw DynamoDB client for the emulator (to write and read items as the
/// old tools did).
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// A raw SSM client for the emulator.
pub async fn ssm_client() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config().await)
}

/// A DynamoDB client whose calls `counter` counts.
pub async fn counted_dynamodb_client(counter: &CallCounter) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An SSM client whose calls `counter` counts.
pub async fn counted_ssm_client(counter: &CallCounter) -> aws_sdk_ssm::Client {
    let config = aws_sdk_ssm::config::Builder::from(&sdk_config().await)
        .interceptor(counter.clone())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

/// An image store on the emulator.
pub async fn image_store() -> SsmImageStore {
    SsmImageStore::new(&sdk_config().await)
}

/// A release store on the emulator with `project`'s table provisioned.
pub async fn release_store(project: &ProjectId) -> DynamoDbReleaseStore {
    let store = DynamoDbReleaseStore::new(&sdk_config().await);
    provision(&store, project).await;
    store
}

/// Provisions `project`'s table, which must be new.
pub async fn provision(store: &DynamoDbReleaseStore, project: &ProjectId) {
    match store.ensure_table(project).await {
        Ok(TableState::Created) => {}
        Ok(other) => panic!("table of fresh project {project} already existed: {other:?}"),
        Err(e) => panic!("provisioning the table of {project} failed: {e}"),
    }
}

/// The DynamoDB attribute value boto3 writes for a JSON value (strings S,
/// numbers N, booleans BOOL, null NULL, lists L, objects M).
pub fn json_attribute(value: &serde_json::Value) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), json_attribute(v)))
                .collect(),
        ),
    }
}

/// Writes `record` (a JSON object) to `table` as one item, unconditionally,
/// as another tool would.
pub async fn put_json_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    record: &serde_json::Value,
) {
    let aws_sdk_dynamodb::types::AttributeValue::M(item) = json_attribute(record) else {
        panic!("a record must be a JSON object: {record}");
    };
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem on {table}: {e:?}"));
}

/// An access key id no other test uses (`{prefix}` and 16 random letters and
/// digits, upper case), for counting one client's calls in the emulator.
pub fn unique_access_key(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("{prefix}{}", &id[..16])
}

/// One request to the emulator's counter (`/__counts/{access_key}`, served
/// by `scripts/moto_server.py`): the status code and the body.
fn counter_request(method: &str, access_key: &str) -> (u16, String) {
    assert!(
        !access_key.is_empty()
            && access_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "access key {access_key:?}: use letters, digits, `-` and `_` (see unique_access_key)"
    );
    let url = endpoint();
    let host = authority(&url);
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!("{method} /__counts/{access_key} on the emulator at {host}: {what}: {e}")
    };
    let mut stream = TcpStream::connect(&host).unwrap_or_else(|e| fail("connect", &e));
    let timeout = Some(Duration::from_secs(10));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .unwrap_or_else(|e| fail("set timeouts", &e));
    let request = format!(
        "{method} /__counts/{access_key} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| fail("send", &e));
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|e| fail("read", &e));
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| fail("no end of headers in the response", &response));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or_else(|| fail("no status code in the response", &head));
    (status, body.to_owned())
}

/// The AWS operations the emulator received from clients signing with
/// `access_key` since it started or was [reset](reset_operation_counts), as
/// `service:Operation` (`ssm:GetParametersByPath`, `dynamodb:Query`,
/// `sts:GetCallerIdentity`) → HTTP requests (an SDK retry counts twice).
/// Counts processes too: run a program with `AWS_ACCESS_KEY_ID` set to a
/// [`unique_access_key`] and read its calls here.
///
/// Panics when the emulator has no counter (it was not started by
/// `scripts/test.sh`, which runs `scripts/moto_server.py`).
pub fn operation_counts(access_key: &str) -> BTreeMap<String, u64> {
    let (status, body) = counter_request("GET", access_key);
    assert_eq!(
        status, 200,
        "GET /__counts/{access_key}: the emulator has no call counter (start it with \
         `bash scripts/test.sh`, which runs scripts/moto_server.py); it answered: {body}"
    );
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET /__counts/{access_key}: not a map of counts ({e}): {body}"))
}

/// Forgets the emulator's counts for `access_key`.
pub fn reset_operation_counts(access_key: &str) {
    let (status, body) = counter_request("DELETE", access_key);
    assert_eq!(
        status, 204,
        "DELETE /__counts/{access_key}: the emulator has no call counter (start it with \
         `bash scripts/test.sh`, which runs scripts/moto_server.py); it answered: {body}"
    );
}

/// Sends `METHOD path` to the emulator's own control paths (`/__…`, see
/// scripts/moto_server.py) and asserts it answered 204.
pub fn emulator_control(method: &str, path: &str) {
    let url = endpoint();
    let host = url.trim_start_matches("http://");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut stream = TcpStream::connect(host).expect("connect to the emulator");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(
        response.starts_with("HTTP/1.1 204") || response.starts_with("HTTP/1.0 204"),
        "the emulator refused {method} {path} (scripts/moto_server.py): {response}"
    );
}

/// `GetParametersByPath` pages for a label holding `parameters`: ⌈n/10⌉
/// (one for an empty label), as AWS returns them. moto also returns a
/// `NextToken` after a full last page, whose next page is empty: one more
/// call when n is a non-zero multiple of 10.
pub fn label_pages(parameters: usize) -> u64 {
    let emulator_extra_page = parameters > 0 && parameters.is_multiple_of(10);
    (parameters.div_ceil(10).max(1) + usize::from(emulator_extra_page)) as u64
}

/// `GetParameters` calls to read `services` parameters by name (a deploy's
/// read of its release's services): 10 names a call.
pub fn name_reads(services: usize) -> u64 {
    services.div_ceil(10) as u64
}

/// Expected [`operation_counts`] from `(operation, count)` pairs.
pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .map(|(operation, n)| ((*operation).to_owned(), *n))
        .collect()
}

/// The item of `release_id` in `project`'s table, as stored (to see what a
/// reader with a plain DynamoDB client gets). Panics if it is absent.
pub async fn raw_release_item(
    project: &ProjectId,
    release_id: &str,
) -> HashMap<String, AttributeValue> {
    let table = format!("wellcome-releases-{project}");
    let output = dynamodb_client()
        .await
        .get_item()
        .table_name(&table)
        .key("release_id", AttributeValue::S(release_id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem {release_id} in {table}: {e:?}"));
    output
        .item
        .unwrap_or_else(|| panic!("no item {release_id} in {table}"))
}

/// What `release_tooling`'s readers would trip over in a stored release item:
/// sets and binary values, which boto3 hands to `json.dumps` as `set` and
/// `bytes` (`show-release` crashes on them), then
/// [`release_tooling::release_item_problems`] on the item's JSON (where an
/// `N` is a number, reported there as a `Decimal`).
pub fn release_tooling_problems_in_item(item: &HashMap<String, AttributeValue>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    let json = serde_json::Value::Object(
        keys.into_iter()
            .map(|key| (key.clone(), boto3_view(&item[key], key, &mut problems)))
            .collect(),
    );
    problems.extend(release_tooling::release_item_problems(&json));
    problems
}

/// An attribute as plain JSON. Sets become lists of strings and binary
/// values null, each noted once here, as JSON cannot express them.
fn boto3_view(value: &AttributeValue, path: &str, problems: &mut Vec<String>) -> serde_json::Value {
    use serde_json::Value;
    let mut unwritable = |kind: &str, python: &str| {
        problems.push(format!(
            "show-release: `{path}` is {kind}, which boto3 reads as {python}; json.dumps raises \
             TypeError"
        ));
    };
    let strings =
        |items: &[String]| Value::Array(items.iter().cloned().map(Value::String).collect());
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::N(n) => serde_json::from_str::<serde_json::Number>(n)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Ss(items) => {
            unwritable("a string set (SS)", "a set");
            strings(items)
        }
        AttributeValue::Ns(items) => {
            unwritable("a number set (NS)", "a set of Decimal");
            strings(items)
        }
        AttributeValue::B(_) => {
            unwritable("binary (B)", "Binary");
            Value::Null
        }
        AttributeValue::Bs(_) => {
            unwritable("a binary set (BS)", "a set of Binary");
            Value::Null
        }
        AttributeValue::L(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| boto3_view(item, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        AttributeValue::M(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| {
                        let child = format!("{path}.{key}");
                        (key.clone(), boto3_view(&map[key], &child, problems))
                    })
                    .collect(),
            )
        }
        _ => {
            unwritable(
                "an attribute type this check does not know",
                "an unknown type",
            );
            Value::Null
        }
    }
}

/// Puts every request of a client in one moto account (moto's documented
/// `x-moto-account-id` header), so a test's IAM names such as `alice` and
/// `ci` collide with no other test's.
#[derive(Clone, Debug)]
struct InAccount(String);

impl Intercept for InAccount {
    fn name(&self) -> &'static str {
        "InAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

/// A moto account no other test uses, and an IAM client in it, to make the
/// people and roles a test acts as. Requests signed with keys made here
/// land in this account by themselves (moto finds the account by key).
pub struct IamAccount {
    /// The 12-digit account id.
    pub id: String,
    iam: aws_sdk_iam::Client,
}

impl IamAccount {
    /// A fresh account.
    pub async fn fresh() -> IamAccount {
        let n = uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000;
        let id = format!("{n:012}");
        let config = aws_sdk_iam::config::Builder::from(&sdk_config().await)
            .interceptor(InAccount(id.clone()))
            .build();
        IamAccount {
            id,
            iam: aws_sdk_iam::Client::from_conf(config),
        }
    }

    /// Creates IAM user `name` and an access key for it. Returns the user's
    /// ARN (`arn:aws:iam::{id}:user/{name}`) and the key as credentials.
    pub async fn user_with_key(&self, name: &str) -> (String, Credentials) {
        let user = self
            .iam
            .create_user()
            .user_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating IAM user {name}: {e:?}"));
        let arn = user
            .user()
            .map(|u| u.arn().to_owned())
            .unwrap_or_else(|| panic!("CreateUser {name} answered without a user"));
        let key = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating an access key for {name}: {e:?}"));
        let key = key
            .access_key()
            .unwrap_or_else(|| panic!("CreateAccessKey {name} answered without a key"));
        let credentials = Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "iam-user",
        );
        (arn, credentials)
    }

    /// Creates IAM role `name` that `principal` (an ARN) may assume. Returns
    /// its ARN.
    pub async fn role(&self, name: &str, principal: &str) -> String {
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating IAM role {name}: {e:?}"));
        role.role()
            .map(|r| r.arn().to_owned())
            .unwrap_or_else(|| panic!("CreateRole {name} answered without a role"))
    }
}
