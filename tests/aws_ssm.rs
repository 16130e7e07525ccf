//! The SSM image store on the moto emulator (run by `scripts/test.sh`):
//! complete reads of large labels (with the exact number of calls), what is
//! reported instead of silently merged, and the parameter type written.

#[path = "common/aws.rs"]
mod aws_common;

use aws_sdk_ssm::types::ParameterType;
use release_tracking::aws::SsmImageStore;
use release_tracking::names::image_parameter_name;
use release_tracking::{Error, ImageStore, ImageUri, Label, ServiceId};

use aws_common::{counted_ssm_client, fresh_project, image_store, ssm_client, CallCounter};

fn svc(text: &str) -> ServiceId {
    ServiceId::new(text).expect("test service id")
}

fn uri(text: &str) -> ImageUri {
    ImageUri::new(text).expect("test image URI")
}

async fn put_raw(client: &aws_sdk_ssm::Client, name: &str, value: &str, kind: ParameterType) {
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("raw PutParameter {name}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_of_95_services_is_read_completely_in_10_pages() {
    let project = fresh_project("ssm95");
    let counter = CallCounter::new();
    let store = SsmImageStore::from_client(counted_ssm_client(&counter).await);
    let latest = Label::latest();
    for i in 0..95 {
        store
            .put_image(
                &project,
                &latest,
                &svc(&format!("service-{i:02}")),
                &uri(&format!(
                    "760097843905.dkr.ecr.eu-west-1.amazonaws.com/s{i}:ref.{i}"
                )),
            )
            .await
            .expect("put_image");
    }
    assert_eq!(counter.calls("PutParameter"), 95);

    counter.reset();
    let images = store
        .label_images(&project, &latest)
        .await
        .expect("label_images");
    assert_eq!(images.images.len(), 95, "every image of the label");
    assert!(images.skipped.is_empty(), "{:?}", images.skipped);
    assert_eq!(
        images.images[&svc("service-42")].as_str(),
        "760097843905.dkr.ecr.eu-west-1.amazonaws.com/s42:ref.42"
    );
    println!("label_images(95 services): {:?}", counter.snapshot());
    assert_eq!(
        counter.calls("GetParametersByPath"),
        10,
        "95 parameters at 10 a page are 10 pages"
    );
    assert_eq!(counter.snapshot().len(), 1, "and nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_that_are_not_images_are_reported_not_merged() {
    let project = fresh_project("ssmskip");
    let client = ssm_client().await;
    let store = image_store().await;
    let base = format!("/{project}/images/latest");
    put_raw(
        &client,
        &format!("{base}/archivist"),
        "ref.1",
        ParameterType::String,
    )
    .await;
    // Nested below a service: without Recursive it would be invisible;
    // merged, it would be a second `archivist`-like entry.
    put_raw(
        &client,
        &format!("{base}/archivist/extra"),
        "ref.2",
        ParameterType::String,
    )
    .await;
    put_raw(
        &client,
        &format!("{base}/{}", "a".repeat(130)),
        "ref.3",
        ParameterType::String,
    )
    .await;
    put_raw(
        &client,
        &format!("{base}/secret"),
        "ref.4",
        ParameterType::SecureString,
    )
    .await;
    put_raw(
        &client,
        &format!("{base}/list"),
        "ref.5,ref.6",
        ParameterType::StringList,
    )
    .await;
    // A label whose name starts with this one's is another label.
    put_raw(
        &client,
        &format!("/{project}/images/latest-2/other"),
        "ref.7",
        ParameterType::String,
    )
    .await;

    let images = store
        .label_images(&project, &Label::latest())
        .await
        .expect("label_images");
    assert_eq!(
        images
            .images
            .keys()
            .map(ServiceId::as_str)
            .collect::<Vec<_>>(),
        ["archivist"]
    );
    assert_eq!(images.images[&svc("archivist")].as_str(), "ref.1");
    let mut skipped: Vec<(String, String)> = images
        .skipped
        .iter()
        .map(|s| (s.name.clone(), s.reason.clone()))
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    let reason = |suffix: &str| {
        skipped
            .iter()
            .find(|(name, _)| name.ends_with(suffix))
            .map(|(_, reason)| reason.as_str())
            .unwrap_or_else(|| panic!("{suffix} not reported: {skipped:#?}"))
    };
    assert!(
        reason("/archivist/extra").contains("nested"),
        "{skipped:#?}"
    );
    assert!(
        reason(&"a".repeat(130)).contains("longer than"),
        "{skipped:#?}"
    );
    assert!(reason("/secret").contains("SecureString"), "{skipped:#?}");
    assert!(reason("/list").contains("StringList"), "{skipped:#?}");
}

/// A deploy's read of its release's services, by name: 10 names a
/// `GetParameters` call, every name asked once. It returns what the whole
/// label's read returns for those services, the parameters of another type
/// among them included, and nothing of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_by_name_is_the_label_read_kept_to_the_services_asked() {
    let project = fresh_project("ssmbyname");
    let client = ssm_client().await;
    let counter = CallCounter::new();
    let store = SsmImageStore::from_client(counted_ssm_client(&counter).await);
    let stage = Label::new("stage").expect("label");
    for i in 0..30 {
        let service = svc(&format!("service-{i:02}"));
        store
            .put_image(
                &project,
                &stage,
                &service,
                &uri(&format!("ecr.example.com/s{i}:1")),
            )
            .await
            .expect("put_image");
    }
    let secret = image_parameter_name(&project, &stage, &svc("secret"));
    put_raw(&client, &secret, "ciphertext", ParameterType::SecureString).await;
    let list = image_parameter_name(&project, &stage, &svc("listed"));
    put_raw(&client, &list, "a,b", ParameterType::StringList).await;
    let nested = format!(
        "{}/extra",
        image_parameter_name(&project, &stage, &svc("service-01"))
    );
    put_raw(
        &client,
        &nested,
        "ecr.example.com/x:1",
        ParameterType::String,
    )
    .await;

    // Services 00-19, the SecureString, the StringList, 3 with no
    // parameter: 25 names, 3 calls. Services 20-29 are not asked.
    let asked: std::collections::BTreeSet<ServiceId> = (0..20)
        .map(|i| svc(&format!("service-{i:02}")))
        .chain(["secret", "listed", "absent-1", "absent-2", "absent-3"].map(svc))
        .collect();
    counter.reset();
    let got = store
        .label_images_of(&project, &stage, &asked)
        .await
        .expect("label_images_of");
    assert_eq!(counter.snapshot(), [("GetParameters".to_owned(), 3)].into());

    let mut whole = store
        .label_images(&project, &stage)
        .await
        .expect("label_images");
    whole.images.retain(|service, _| asked.contains(service));
    whole
        .skipped
        .retain(|p| p.service.as_ref().is_some_and(|s| asked.contains(s)));
    assert_eq!(got.images, whole.images);
    assert_eq!(got.images.len(), 20, "{:?}", got.images.keys());
    let names = |skipped: &[release_tracking::SkippedParameter]| {
        let mut names: Vec<(String, String)> = skipped
            .iter()
            .map(|p| (p.name.clone(), p.reason.clone()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&got.skipped), names(&whole.skipped));
    let mut expected = vec![list.clone(), secret.clone()];
    expected.sort();
    let skipped: Vec<String> = names(&got.skipped).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        skipped, expected,
        "the nested parameter is in no service's way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_written_as_string_parameters_and_read_one_by_one() {
    let project = fresh_project("ssmone");
    let client = ssm_client().await;
    let store = image_store().await;
    let stage = Label::new("stage").unwrap();
    let archivist = svc("archivist");

    assert_eq!(
        store.image(&project, &stage, &archivist).await.unwrap(),
        None
    );
    store
        .put_image(&project, &stage, &archivist, &uri("ref.1"))
        .await
        .unwrap();
    store
        .put_image(&project, &stage, &archivist, &uri("ref.2"))
        .await
        .unwrap();
    assert_eq!(
        store.image(&project, &stage, &archivist).await.unwrap(),
        Some(uri("ref.2"))
    );
    let name = image_parameter_name(&project, &stage, &archivist);
    let raw = client.get_parameter().name(&name).send().await.unwrap();
    let parameter = raw.parameter().unwrap();
    assert_eq!(parameter.r#type(), Some(&ParameterType::String));
    assert_eq!(parameter.value(), Some("ref.2"));

    // A SecureString where an image should be is an error, never ciphertext.
    let secret = svc("secret");
    put_raw(
        &client,
        &image_parameter_name(&project, &stage, &secret),
        "ref.9",
        ParameterType::SecureString,
    )
    .await;
    let err = store.image(&project, &stage, &secret).await.unwrap_err();
    match &err {
        Error::InvalidRecord {
            record, attribute, ..
        } => {
            assert!(
                record.contains(&format!("/{project}/images/stage/secret")),
                "{err}"
            );
            assert_eq!(attribute, "Type");
        }
        other => panic!("expected InvalidRecord, got {other:?}"),
    }
}

/// A parameter of another type where a deploy would write (a SecureString
/// or StringList at the environment's label): the plan shows it as a
/// conflict, not as a new parameter; the deploy refuses before any write and
/// names it; other parameters under the label that are not images are
/// warnings in the plan and the deploy, as they are in `prepare`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_of_another_type_stop_a_deploy_before_any_write() {
    use release_tracking::{
        Environment, PrepareRequest, Project, ReleaseRef, ReleaseTracker, Requester, Warning,
    };

    let project = fresh_project("ssmtype");
    let client = ssm_client().await;
    let tracker = ReleaseTracker::new(
        Project::new(
            project.clone(),
            "Conflicts",
            vec![Environment::new("stage".parse().expect("env"), "Staging")],
        )
        .expect("project"),
        image_store().await,
        aws_common::release_store(&project).await,
        Requester::new("arn:aws:iam::123456789012:user/alice"),
    );
    let latest = Label::latest();
    for service in ["archivist", "notifier", "registrar"] {
        tracker
            .publish(
                &latest,
                &svc(service),
                &uri(&format!("ecr.example.com/{service}:ref.1")),
            )
            .await
            .expect("publish");
    }
    let stage: Label = "stage".parse().expect("label");
    let secure = image_parameter_name(&project, &stage, &svc("archivist"));
    let list = image_parameter_name(&project, &stage, &svc("notifier"));
    let nested = format!(
        "{}/extra",
        image_parameter_name(&project, &stage, &svc("x"))
    );
    put_raw(&client, &secure, "ciphertext", ParameterType::SecureString).await;
    put_raw(&client, &list, "a,b", ParameterType::StringList).await;
    put_raw(
        &client,
        &nested,
        "ecr.example.com/x:1",
        ParameterType::String,
    )
    .await;

    let release = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    let id: ReleaseRef = release.release_id().into();
    let plan = tracker.plan(&id, "stage").await.expect("plan");
    let conflicts: Vec<_> = plan.conflicts.iter().map(|c| c.name.clone()).collect();
    assert_eq!(conflicts, [secure.clone(), list.clone()]);
    let planned: Vec<_> = plan.changes.iter().map(|c| c.service.as_str()).collect();
    assert_eq!(
        planned,
        ["registrar"],
        "conflicts are not planned as new parameters"
    );
    let shown = plan.to_string();
    assert!(shown.contains(&format!("! {secure}")), "{shown}");
    let warned: Vec<_> = plan
        .warnings
        .iter()
        .filter_map(|w| match w {
            Warning::SkippedParameter(p) => Some(p.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warned, std::slice::from_ref(&nested));

    let err = tracker.deploy(&id, "stage", "x").await.unwrap_err();
    match &err {
        Error::ConflictingParameters { parameters, .. } => {
            assert_eq!(parameters, &[secure.clone(), list.clone()], "{err}")
        }
        other => panic!("expected ConflictingParameters, got {other}"),
    }
    assert!(err.to_string().contains("Nothing was written"), "{err}");
    // Nothing was written: registrar has no parameter at stage, the others
    // keep their type and value, and no deployment was recorded.
    let registrar = client
        .get_parameter()
        .name(image_parameter_name(&project, &stage, &svc("registrar")))
        .send()
        .await;
    assert!(registrar.is_err(), "registrar must not have been written");
    let kept = client
        .get_parameter()
        .name(&secure)
        .send()
        .await
        .expect("read the SecureString back");
    assert_eq!(
        kept.parameter().and_then(|p| p.r#type()),
        Some(&ParameterType::SecureString)
    );
    let stored = tracker.release(&id).await.expect("read").release;
    assert!(stored.deployments().is_empty());
}
