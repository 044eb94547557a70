//! API tokens, over any backend.

use async_trait::async_trait;
use modelreg_core::{
    Error, Result,
    store::{ApiToken, FoundToken, NewToken, TokenStore},
    tenant::OrgId,
    timestamp::Timestamp,
};
use uuid::Uuid;

use super::{Backend, Cost, SqlStore};
use crate::{
    exec::{Exec, params},
    rows::{found_token_from_row, token_from_row},
    sql,
};

#[async_trait]
impl<B: Backend> TokenStore for SqlStore<B> {
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken> {
        let stored = ApiToken {
            id: Uuid::now_v7(),
            name: token.name,
            org: token.org,
            project: token.project,
            role: token.role,
            created_at: Timestamp::now(),
            revoked_at: None,
            expires_at: token.expires_at,
            last_used_at: None,
        };
        let values = params![
            stored.id,
            stored.name.as_str(),
            token.hash,
            stored.org.as_str(),
            stored.project.to_string(),
            stored.role.as_str(),
            stored.created_at,
            stored.expires_at,
        ];
        let inserted = self.execute(&sql::INSERT_TOKEN, values).await;
        match inserted {
            Ok(_) => Ok(stored),
            Err(Error::AlreadyExists(_)) => Err(Error::AlreadyExists(format!(
                "a token named '{}' already exists in organization {}",
                stored.name, stored.org
            ))),
            Err(e) => Err(e),
        }
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<FoundToken>> {
        let values = params![hash];
        self.row(
            Cost::Point,
            &sql::TOKEN_BY_HASH,
            values,
            found_token_from_row,
        )
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        self.rows(Cost::Scan, &sql::LIST_TOKENS, vec![], token_from_row)
            .await
    }

    async fn org_tokens(&self, org: &OrgId) -> Result<Vec<ApiToken>> {
        let values = params![org.as_str()];
        self.rows(Cost::Scan, &sql::ORG_TOKENS, values, token_from_row)
            .await
    }

    async fn revoke_org_token(&self, org: &OrgId, name: &str) -> Result<bool> {
        let values = params![Timestamp::now(), org.as_str(), name];
        let revoked = self.execute(&sql::REVOKE_ORG_TOKEN, values).await?;
        Ok(revoked > 0)
    }

    async fn touch_tokens(&self, used: &[(Uuid, Timestamp)]) -> Result<()> {
        let used = used.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                for (id, at) in used {
                    c.execute(&*sql::TOUCH_TOKEN, params![at, id, at]).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
