//! Keeping a file's measured loudness (taken by the first normalised copy of its audio) in the
//! metadata store, where every node and every later copy finds it.

use std::sync::Arc;

use crate::domain::model::LoudnessInfo;
use crate::store::MetaStore;
use crate::transcode::{OnMeasured, Variant};

/// What the transcoder calls with each measurement: recorded in the background, on `rt`. A
/// failed write only costs a measurement later.
pub fn recorder(meta: Arc<dyn MetaStore>, rt: tokio::runtime::Handle) -> OnMeasured {
    Arc::new(move |variant: &Variant, info: &LoudnessInfo| {
        let meta = Arc::clone(&meta);
        let (blob_key, info) = (variant.key.blob_key.clone(), *info);
        rt.spawn(async move {
            if let Err(e) = meta.record_loudness(&blob_key, &info).await {
                tracing::warn!(error = %e, "loudness measurement not kept; measured again later");
            }
        });
    })
}
