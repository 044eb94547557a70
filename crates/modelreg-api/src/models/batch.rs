//! `POST /assets/models:batch`: many changes to the project's models in one request. The
//! rules of a batch are in the model service (`modelreg-core/src/batch.rs`) and the store's
//! `writes.rs`; this reads the request into operations and each outcome into a result.

use axum::{Json, extract::State, http::StatusCode};
use modelreg_core::{
    Error, FieldError,
    batch::{Change, Operation, Outcome},
    model::Status,
    resource_uri::ModelKey,
    service::{Caller, EtagCondition},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{ApiError, ErrorBody, ErrorDetail, ErrorObject},
    extract::{JsonBody, QueryPairs},
    models::view::ModelView,
};

/// A batch of operations on the project's models, run in order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1,000 operations. Each names a different model.
    #[schema(min_items = 1, max_items = 1000)]
    pub operations: Vec<BatchOperation>,
}

/// One operation of a batch; `op` says which.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOperation {
    /// Create a model, as `POST /assets/models` does.
    Create {
        #[schema(value_type = modelreg_core::model::ModelCreate)]
        body: Value,
    },
    /// Update a model, as `PUT /assets/models/{resource_uri}` does.
    Update {
        /// The model's resource_uri or id.
        resource_uri: String,
        /// Apply only if the model's ETag matches (as the `If-Match` header).
        #[serde(default)]
        if_match: Option<String>,
        #[schema(value_type = modelreg_core::model::ModelUpdate)]
        body: Value,
    },
    /// Delete a model, as `DELETE /assets/models/{resource_uri}` does (owner and admin only).
    Delete {
        resource_uri: String,
        #[serde(default)]
        if_match: Option<String>,
    },
    /// Set a model's status, and its status message when given.
    SetStatus {
        resource_uri: String,
        #[serde(default)]
        if_match: Option<String>,
        #[schema(value_type = Status)]
        status: Value,
        /// Why the model has its status; `null` clears it, absent leaves it.
        #[serde(default, deserialize_with = "present")]
        #[schema(value_type = Option<String>)]
        status_message: Option<Value>,
    },
    /// Add tags after the model's own (those it has are kept where they are).
    AddTags {
        resource_uri: String,
        #[serde(default)]
        if_match: Option<String>,
        tags: Vec<String>,
    },
    /// Take tags out of the model's.
    RemoveTags {
        resource_uri: String,
        #[serde(default)]
        if_match: Option<String>,
        tags: Vec<String>,
    },
}

/// A field that is present, `null` included (absent is `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The kind of an operation, in its result.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Create,
    Update,
    Delete,
    SetStatus,
    AddTags,
    RemoveTags,
}

impl OperationKind {
    /// Whether the operation's model fields are in a `body` of their own.
    fn has_body(self) -> bool {
        matches!(self, OperationKind::Create | OperationKind::Update)
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct BatchParams {
    /// `true`: all operations are stored or none is. Default `false`: each stands alone.
    atomic: Option<bool>,
}

/// The outcome of a batch: one result per operation, in the order given.
#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    pub atomic: bool,
    /// Operations stored (or, for an update that changed nothing, found as they are).
    pub succeeded: usize,
    /// Operations that failed on their own.
    pub failed: usize,
    /// Operations not stored because another operation of an atomic batch failed.
    pub rolled_back: usize,
    pub results: Vec<OperationResult>,
}

/// What became of one operation.
#[derive(Serialize, ToSchema)]
pub struct OperationResult {
    /// The operation's position in `operations`, from 0.
    pub index: usize,
    pub op: OperationKind,
    /// The status its single-model request would have answered: 201, 200, 204, or the error's
    /// (404, 409, 412, 403, 422, …); 424 when it was rolled back.
    pub status: u16,
    /// The model's resource_uri, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resource_uri: Option<String>,
    /// The model's new entity tag (created or updated).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub etag: Option<String>,
    /// The model as stored (created or updated).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub model: Option<ModelView>,
    /// Why it failed, in the shape of every error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorObject>,
    /// On a 422: each invalid input, located in the batch's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<Vec<ErrorDetail>>,
}

/// Change many models
///
/// Runs up to 1,000 operations on the project's models in order: `create`, `update`,
/// `delete`, `set_status`, `add_tags`, `remove_tags`. Each is checked as its single-model
/// request is (validation, role, `if_match`, tenant) and writes its audit event, and each gets
/// its own result. `atomic=true` stores all or none: the first operation that fails is
/// reported and every other is rolled back (424). A batch that is malformed, too large or
/// names one model twice is refused whole (422) and stores nothing. See docs/api.md.
#[utoipa::path(
    post,
    path = "/assets/models:batch",
    tag = "models",
    operation_id = "batch_models",
    params(BatchParams, crate::openapi::ProjectHeader),
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The batch ran; each operation's result", body = BatchResponse),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Malformed batch: too many operations, an unknown one, a model named twice", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.batch", skip_all)]
pub async fn batch_models(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
    body: JsonBody,
) -> Result<Json<BatchResponse>, ApiError> {
    let request_id = caller.request_id.clone().unwrap_or_default();
    // The role is checked before the body, so a viewer learns nothing from validation.
    let writer = caller.writer()?;
    let atomic = atomic_param(&pairs)?;
    let request: BatchRequest = body.parse()?;
    let (kinds, ops) = operations(request)?;
    let outcomes = state.models.batch(&writer, ops, atomic).await?;
    Ok(Json(response(atomic, &kinds, outcomes, &request_id)))
}

fn atomic_param(pairs: &[(String, String)]) -> Result<bool, Error> {
    match pairs.iter().rev().find(|(k, _)| k == "atomic") {
        None => Ok(false),
        Some((_, v)) => match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::field(
                &["query", "atomic"],
                "bool",
                "must be true or false",
            )),
        },
    }
}

/// The operations of a request. Its shape (each operation's `resource_uri` and `if_match`)
/// is checked here, and refuses the whole batch; each body is checked as its single-model
/// request's, and fails only its operation. The count is the service's to check
/// (`batch::MAX_OPERATIONS`); the body's size limit bounds the work before it.
fn operations(request: BatchRequest) -> Result<(Vec<OperationKind>, Vec<Operation>), Error> {
    let n = request.operations.len();
    let mut kinds = Vec::with_capacity(n);
    let mut ops = Vec::with_capacity(n);
    for (i, op) in request.operations.into_iter().enumerate() {
        let (kind, op) = match op {
            BatchOperation::Create { body } => (
                OperationKind::Create,
                super::create_value(body)
                    .map_or_else(Operation::Invalid, |b| Operation::Create(Box::new(b))),
            ),
            BatchOperation::Update {
                resource_uri,
                if_match,
                body,
            } => (
                OperationKind::Update,
                keyed(i, &resource_uri, if_match, |key, if_match| {
                    Ok(Operation::Update {
                        key,
                        if_match,
                        change: Change::Patch(Box::new(super::update_value(body)?)),
                    })
                })?,
            ),
            BatchOperation::Delete {
                resource_uri,
                if_match,
            } => (
                OperationKind::Delete,
                keyed(i, &resource_uri, if_match, |key, if_match| {
                    Ok(Operation::Delete { key, if_match })
                })?,
            ),
            BatchOperation::SetStatus {
                resource_uri,
                if_match,
                status,
                status_message,
            } => {
                let mut body = serde_json::json!({ "status": status });
                if let Some(message) = status_message {
                    body["status_message"] = message;
                }
                (
                    OperationKind::SetStatus,
                    keyed(i, &resource_uri, if_match, |key, if_match| {
                        Ok(Operation::Update {
                            key,
                            if_match,
                            change: Change::Patch(Box::new(super::update_value(body)?)),
                        })
                    })?,
                )
            }
            BatchOperation::AddTags {
                resource_uri,
                if_match,
                tags,
            } => (
                OperationKind::AddTags,
                keyed(i, &resource_uri, if_match, |key, if_match| {
                    Ok(Operation::Update {
                        key,
                        if_match,
                        change: Change::AddTags(tags),
                    })
                })?,
            ),
            BatchOperation::RemoveTags {
                resource_uri,
                if_match,
                tags,
            } => (
                OperationKind::RemoveTags,
                keyed(i, &resource_uri, if_match, |key, if_match| {
                    Ok(Operation::Update {
                        key,
                        if_match,
                        change: Change::RemoveTags(tags),
                    })
                })?,
            ),
        };
        kinds.push(kind);
        ops.push(op);
    }
    Ok((kinds, ops))
}

/// An operation on a stored model: its `resource_uri` and `if_match` parsed (an error refuses
/// the batch), then `make` (an error fails the operation alone).
fn keyed(
    i: usize,
    uri: &str,
    if_match: Option<String>,
    make: impl FnOnce(ModelKey, Option<EtagCondition>) -> Result<Operation, Error>,
) -> Result<Operation, Error> {
    let at = |field: &str, kind: &'static str, msg: String| {
        Error::Validation(vec![FieldError {
            loc: vec![
                "body".into(),
                "operations".into(),
                i.to_string(),
                field.into(),
            ],
            msg,
            kind,
        }])
    };
    let key = ModelKey::parse(uri).map_err(|msg| at("resource_uri", "resource_uri", msg))?;
    let if_match = match if_match {
        None => None,
        Some(v) => Some(EtagCondition::parse(&v).ok_or_else(|| {
            at(
                "if_match",
                "if_match",
                "must be * or a list of quoted entity tags, as the ETag header gives them".into(),
            )
        })?),
    };
    Ok(make(key, if_match).unwrap_or_else(Operation::Invalid))
}

fn response(
    atomic: bool,
    kinds: &[OperationKind],
    outcomes: Vec<Outcome>,
    request_id: &str,
) -> BatchResponse {
    let mut out = BatchResponse {
        atomic,
        succeeded: 0,
        failed: 0,
        rolled_back: 0,
        results: Vec::with_capacity(outcomes.len()),
    };
    for (index, (outcome, &op)) in outcomes.into_iter().zip(kinds).enumerate() {
        let mut result = OperationResult {
            index,
            op,
            status: 200,
            resource_uri: None,
            etag: None,
            model: None,
            error: None,
            detail: None,
        };
        let error = match outcome {
            Outcome::Created(model) | Outcome::Updated(model) => {
                if op == OperationKind::Create {
                    result.status = 201;
                }
                result.resource_uri = Some(model.resource_uri.to_string());
                result.etag = Some(model.etag());
                result.model = Some(ModelView::from(&model));
                None
            }
            Outcome::Deleted(uri) => {
                result.status = 204;
                result.resource_uri = Some(uri.to_string());
                None
            }
            Outcome::Failed(e) => {
                out.failed += 1;
                Some(ApiError::from(located(index, op, e)))
            }
            Outcome::RolledBack { failed } => {
                out.rolled_back += 1;
                Some(ApiError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    "ROLLED_BACK",
                    format!(
                        "not stored: operation {failed} failed, and an atomic batch stores all of \
                         its operations or none"
                    ),
                ))
            }
        };
        match error {
            None => out.succeeded += 1,
            Some(e) => {
                result.status = e.status.as_u16();
                result.error = Some(e.object(request_id));
                result.detail = e.detail();
            }
        }
        out.results.push(result);
    }
    out
}

/// An operation's validation error, located in the batch's body: `["body", "name"]` of a
/// create becomes `["body", "operations", 3, "body", "name"]`.
fn located(index: usize, op: OperationKind, e: Error) -> Error {
    let Error::Validation(mut fields) = e else {
        return e;
    };
    for f in &mut fields {
        if f.loc.first().is_some_and(|l| l == "body") {
            let mut loc = vec!["body".into(), "operations".into(), index.to_string()];
            if op.has_body() {
                loc.push("body".into());
            }
            loc.extend(f.loc.drain(1..));
            f.loc = loc;
        }
    }
    Error::Validation(fields)
}
