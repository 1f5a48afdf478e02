//! Evidence files in the JetStream object store.
//!
//! One bucket per environment (`tousu-evidence-<environment>`). Objects are
//! content-addressed (`sha256/<hex>`), so storing the same file twice (a
//! retried request, the same photo in two complaints) keeps one copy and a
//! put that raced a crash is simply repeated. Files are stored before the
//! complaint is committed: a complaint never references a missing object.

use async_nats::jetstream::{self, object_store};
use sha2::{Digest, Sha256};
use tousu_channels::Attachment;
use tousu_proto::v1 as pb;

/// The evidence bucket.
#[derive(Clone)]
pub struct Evidence {
    store: object_store::ObjectStore,
    /// Largest single file.
    pub max_bytes: usize,
}

/// The bucket name for `environment`.
pub fn bucket_name(environment: &str) -> String {
    format!("tousu-evidence-{environment}")
}

impl Evidence {
    /// Opens the bucket, creating it when missing.
    pub async fn open(
        js: &jetstream::Context,
        environment: &str,
        replicas: usize,
        max_bytes: usize,
    ) -> anyhow::Result<Self> {
        let bucket = bucket_name(environment);
        let store = match js.get_object_store(&bucket).await {
            Ok(s) => s,
            Err(_) => {
                js.create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("tousu complaint evidence".into()),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await?
            }
        };
        Ok(Evidence { store, max_bytes })
    }

    /// Stores `file`; returns the reference the complaint keeps.
    pub async fn put(&self, file: &Attachment) -> anyhow::Result<pb::Attachment> {
        let sha256 = hex::encode(Sha256::digest(&file.data));
        let name = format!("sha256/{sha256}");
        let present = self
            .store
            .info(&name)
            .await
            .is_ok_and(|i| i.size == file.data.len() && !i.deleted);
        if !present {
            let mut reader = file.data.as_slice();
            self.store.put(name.as_str(), &mut reader).await?;
        }
        Ok(pb::Attachment {
            name,
            filename: file.filename.clone(),
            media_type: file.media_type.clone(),
            size: file.data.len() as u64,
            sha256,
        })
    }

    /// The bytes of a stored object (for tests and the evidence download).
    pub async fn get(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut object = self.store.get(name).await?;
        let mut data = Vec::new();
        object.read_to_end(&mut data).await?;
        Ok(data)
    }
}
