//! ApiVersions (key 18): the APIs and versions corelog serves, straight from the
//! handler registry. A version this broker does not know is answered by the connection
//! with the v0 fallback (see `protocol::frame::api_versions_fallback_response`).

use super::{Handler, RequestContext, newest, supported_apis};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::api_versions_request::ApiVersionsRequest;
use crate::protocol::generated::api_versions_response::ApiVersionsResponse;

pub struct ApiVersions;

impl Handler for ApiVersions {
    type Request = ApiVersionsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::ApiVersions),
    };

    async fn handle(
        _ctx: &RequestContext,
        _request: ApiVersionsRequest,
    ) -> Option<ApiVersionsResponse> {
        Some(ApiVersionsResponse {
            error_code: 0,
            api_keys: supported_apis(),
            throttle_time_ms: 0,
            ..ApiVersionsResponse::default()
        })
    }
}
