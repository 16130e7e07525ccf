//! Opening the store `--store` names: the only place a backend is set up
//! (AWS configured), once the command line has been parsed.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use release_tracking::names::Escaped;
use release_tracking::{ControlStore, ImageStore, Project, ReleaseStore, RequesterSource};
use serde_json::{Map, Value};

use crate::args::{Cli, StoreArg};

/// The stores a command runs on, whatever the backend.
pub struct Stores {
    /// Where images are.
    pub images: Arc<dyn ImageStore>,
    /// Where releases are.
    pub releases: Arc<dyn ReleaseStore>,
    /// Where leases, freezes, blocks and their trail are (beside the
    /// releases).
    pub controls: Arc<dyn ControlStore>,
    /// Who the caller is, when `--requester` does not say.
    pub caller: Arc<dyn RequesterSource>,
    /// What `provision` does on this backend.
    pub provisioner: Provisioner,
    /// The backend's name and where it keeps the project's data.
    pub info: StoreInfo,
}

/// Creates a backend's storage for a project.
pub enum Provisioner {
    /// Creates the project's DynamoDB table.
    #[cfg(feature = "aws")]
    Aws(Arc<release_tracking::aws::DynamoDbReleaseStore>),
    /// Nothing to create: opening the file made (or migrated) the store.
    #[cfg(feature = "sqlite")]
    Sqlite(std::path::PathBuf),
}

impl Provisioner {
    /// Creates what is missing; returns the `state` for the JSON document
    /// and the line for people.
    pub async fn provision(
        &self,
        project: &Project,
    ) -> Result<(&'static str, String), Box<dyn StdError>> {
        let _ = project; // not every backend needs it
        match self {
            #[cfg(feature = "aws")]
            Provisioner::Aws(releases) => {
                use release_tracking::aws::TableState;
                let state = releases.ensure_table(project.id()).await?;
                let name = match state {
                    TableState::Created => "created",
                    TableState::AlreadyExisted => "already_existed",
                    _ => "ready",
                };
                let line = format!("table {}: {state:?}", releases.table_name(project.id()));
                Ok((name, line))
            }
            #[cfg(feature = "sqlite")]
            Provisioner::Sqlite(path) => {
                Ok(("ready", format!("sqlite file {}: ready", path.display())))
            }
        }
    }
}

/// A store's kind and details (`region`, `table`, …), in the order shown.
pub struct StoreInfo {
    kind: &'static str,
    details: Vec<(&'static str, Option<String>)>,
}

impl StoreInfo {
    /// The `store` object of the JSON document.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("kind".into(), self.kind.into());
        for (key, value) in &self.details {
            map.insert(
                (*key).into(),
                value.clone().map_or(Value::Null, Value::from),
            );
        }
        Value::Object(map)
    }
}

impl fmt::Display for StoreInfo {
    /// `aws (region eu-west-1, table wellcome-releases-storage)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)?;
        let shown: Vec<String> = self
            .details
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_ref()?;
                Some(format!(
                    "{} {}",
                    key.replace('_', " "),
                    Escaped::whole(value)
                ))
            })
            .collect();
        if !shown.is_empty() {
            write!(f, " ({})", shown.join(", "))?;
        }
        Ok(())
    }
}

/// Opens the store `cli.store` names for `project`. Only here is a backend
/// set up (AWS configured), once the command line has been parsed.
pub async fn open(cli: &Cli, project: &Project) -> Result<Stores, Box<dyn StdError>> {
    let _ = project; // not every backend needs it
    match &cli.store {
        #[cfg(feature = "aws")]
        StoreArg::Aws => {
            use release_tracking::aws::{AwsSettings, DynamoDbReleaseStore, SsmImageStore};
            let mut settings = AwsSettings::new().assume_role(!cli.no_assume_role);
            if let Some(url) = &cli.endpoint_url {
                settings = settings.endpoint_url(url);
            }
            if let Some(region) = &cli.region {
                settings = settings.region(region);
            }
            let aws = settings.load(project).await?;
            let config = aws.config();
            let releases = Arc::new(DynamoDbReleaseStore::new(config));
            let info = StoreInfo {
                kind: "aws",
                details: vec![
                    ("region", config.region().map(|r| r.to_string())),
                    ("table", Some(releases.table_name(project.id()))),
                    ("endpoint_url", cli.endpoint_url.clone()),
                ],
            };
            Ok(Stores {
                images: Arc::new(SsmImageStore::new(config)),
                releases: releases.clone(),
                controls: releases.clone(),
                caller: Arc::new(aws.requester()),
                provisioner: Provisioner::Aws(releases),
                info,
            })
        }
        #[cfg(feature = "sqlite")]
        StoreArg::Sqlite(path) => {
            let store = Arc::new(release_tracking::sqlite::SqliteStore::open(path)?);
            Ok(Stores {
                images: store.clone(),
                releases: store.clone(),
                controls: store,
                caller: Arc::new(LocalUser),
                provisioner: Provisioner::Sqlite(path.clone()),
                info: StoreInfo {
                    kind: "sqlite",
                    details: vec![("path", Some(path.display().to_string()))],
                },
            })
        }
    }
}

/// Without AWS there is no STS to ask: the requester is the local user
/// (`USER`, `LOGNAME`, or `USERNAME` on Windows), unless `--requester`
/// names one.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct LocalUser;

#[cfg(feature = "sqlite")]
#[async_trait::async_trait]
impl RequesterSource for LocalUser {
    async fn requester(&self) -> release_tracking::Result<release_tracking::Requester> {
        ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(release_tracking::Requester::new)
            .ok_or(release_tracking::Error::InvalidArgument {
                argument: "requester",
                reason: "no USER in the environment to record; name one with --requester"
                    .to_owned(),
            })
    }
}
