//! The emulator's per-access-key call counter (`scripts/moto_server.py`),
//! which counts the AWS calls of any client, child processes included:
//! exact counts for one key while other keys call, and a reset. Run by
//! `scripts/test.sh`.

#[path = "common/aws.rs"]
mod aws_common;

use aws_common::{counts, operation_counts, reset_operation_counts, unique_access_key};

async fn parameters_by_path(client: &aws_sdk_ssm::Client, path: &str) {
    client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetParametersByPath {path}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_each_access_key_exactly_while_others_call() {
    let project = aws_common::fresh_project("count");
    let path = format!("/{project}/images/latest");
    let key = unique_access_key("COUNT");
    let other = unique_access_key("OTHER");
    let config = aws_common::sdk_config_for(&key).await;
    let other_config = aws_common::sdk_config_for(&other).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);
    let other_ssm = aws_sdk_ssm::Client::new(&other_config);

    let mine = async {
        parameters_by_path(&ssm, &path).await;
        parameters_by_path(&ssm, &path).await;
        sts.get_caller_identity()
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    };
    let theirs = async {
        for _ in 0..5 {
            parameters_by_path(&other_ssm, &path).await;
        }
    };
    tokio::join!(mine, theirs);

    assert_eq!(
        operation_counts(&key),
        counts(&[("ssm:GetParametersByPath", 2), ("sts:GetCallerIdentity", 1)])
    );
    assert_eq!(
        operation_counts(&other),
        counts(&[("ssm:GetParametersByPath", 5)])
    );

    reset_operation_counts(&key);
    assert_eq!(operation_counts(&key), counts(&[]));
    assert_eq!(
        operation_counts(&other),
        counts(&[("ssm:GetParametersByPath", 5)]),
        "a reset forgets only its own key"
    );
    parameters_by_path(&ssm, &path).await;
    assert_eq!(
        operation_counts(&key),
        counts(&[("ssm:GetParametersByPath", 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_failed_calls_and_every_protocol() {
    let key = unique_access_key("PROTO");
    let config = aws_common::sdk_config_for(&key).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);

    // JSON protocol (X-Amz-Target), a success and an error: both reached
    // the service, so both count.
    dynamodb
        .list_tables()
        .limit(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTables: {e:?}"));
    let missing = format!("wellcome-releases-{}", aws_common::fresh_project("none"));
    let err = dynamodb
        .describe_table()
        .table_name(&missing)
        .send()
        .await
        .expect_err("the table does not exist");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{err:?}"
    );
    // Query protocol (the Action form field).
    for _ in 0..3 {
        sts.get_caller_identity()
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    }

    assert_eq!(
        operation_counts(&key),
        counts(&[
            ("dynamodb:DescribeTable", 1),
            ("dynamodb:ListTables", 1),
            ("sts:GetCallerIdentity", 3),
        ])
    );
    assert_eq!(
        operation_counts(&unique_access_key("NEVER")),
        counts(&[]),
        "a key that made no call has no counts"
    );
}
