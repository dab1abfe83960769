//! `/f/{file_sid | file_access_name}` and `/download/{file_sid}`: resolve the file, then serve.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::QueryPairs;
use super::serve::{self, Overrides, Representation};
use crate::app::AppState;
use crate::service::files::{self, Signed};

/// `GET`/`HEAD /f/{key}`: open to anyone while the file's `publish` allows that way in.
pub async fn publish_uri(State(state): State<AppState>, Path(key): Path<String>, method: Method, headers: HeaderMap, _q: QueryPairs) -> Result<Response<Body>, ApiError> {
    let file = files::published(&state, &key).await?;
    let repr = Representation::of_file(&file);
    Ok(serve::serve(state.blobs.as_ref(), &method, &headers, repr, &Overrides::default()).await)
}

/// `GET`/`HEAD /download/{file_sid}?expires=&signature=`: expiry and HMAC checked first.
pub async fn download(State(state): State<AppState>, Path(sid): Path<String>, method: Method, headers: HeaderMap, q: QueryPairs) -> Result<Response<Body>, ApiError> {
    match files::signed(&state, &sid, q.get("expires"), q.get("signature")).await? {
        Signed::Refused(why) => Ok(ApiError::forbidden(why).into_response()),
        Signed::File(file) => {
            let repr = Representation::of_file(&file);
            Ok(serve::serve(state.blobs.as_ref(), &method, &headers, repr, &Overrides::default()).await)
        }
    }
}
