//! Re-syncs that cost almost nothing: each workspace's last listing is kept in the state
//! directory, and a later listing asks Bitbucket only what changed since.
//!
//! [`Incremental`] wraps a [`BitbucketPort`]. For a workspace listed before (with the same
//! query, less than `full_every` ago in full), it asks two things: the repositories updated
//! since the last listing (less a ten-minute margin for clocks), and how many repositories the
//! workspace holds. The changes replace their repositories (by uuid) in the kept listing; if
//! the result holds exactly as many repositories as Bitbucket counts, it is the listing. Any
//! disagreement (a deletion or a transfer away, which `updated_on` cannot show; a repository
//! without a uuid) means a full listing of that workspace, and so does a kept listing older
//! than `full_every`: the safety net for any change Bitbucket makes without moving
//! `updated_on`. An unchanged workspace costs two requests, or one when it fits on one page
//! (it is then listed in full, which is cheaper).
//!
//! The kept listings are a cache: written atomically, and one that cannot be read is ignored
//! (a full listing follows).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::RepoUuid;
use crate::ids::Timestamp;
use crate::read::ports::{BitbucketPort, Listing, Repo, RepoQuery, Unreadable};

/// Kept listings older than this (in full) are listed in full again, by default.
pub const FULL_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Bitbucket's largest page: a workspace with no more repositories lists in one request.
pub const ONE_PAGE: usize = 100;

/// How far before the last listing changes are asked for, for clocks that disagree.
const CLOCK_MARGIN: Duration = Duration::from_secs(600);

/// A workspace's listing as kept between runs.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// When the listing that made it began (RFC 3339).
    listed_at: String,
    /// When the last full listing began (RFC 3339).
    full_at: String,
    /// The query it answered.
    project_keys: Vec<String>,
    /// The repositories.
    repositories: Vec<Repo>,
    /// Entries of the listing that could not be read.
    #[serde(default)]
    unreadable: Vec<Unreadable>,
}

/// A [`BitbucketPort`] that lists workspaces incrementally (see the module's notes).
pub struct Incremental {
    inner: Arc<dyn BitbucketPort>,
    dir: PathBuf,
    full_every: Duration,
    in_full_up_to: usize,
}

impl std::fmt::Debug for Incremental {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incremental")
            .field("dir", &self.dir)
            .field("full_every", &self.full_every)
            .finish_non_exhaustive()
    }
}

impl Incremental {
    /// Keeps listings under `state_dir/listings`, listing each workspace in full at least every
    /// `full_every`.
    pub fn new(inner: Arc<dyn BitbucketPort>, state_dir: &Path, full_every: Duration) -> Self {
        Self {
            inner,
            dir: state_dir.join("listings"),
            full_every,
            in_full_up_to: ONE_PAGE,
        }
    }

    /// Workspaces with at most this many repositories are listed in full every time (default
    /// 100, one page: one request, where asking what changed takes two); 0 lists every
    /// workspace incrementally.
    #[must_use]
    pub fn in_full_up_to(mut self, repositories: usize) -> Self {
        self.in_full_up_to = repositories;
        self
    }

    fn path(&self, workspace: &str) -> PathBuf {
        kept_file_path(&self.dir, workspace)
    }

    fn load(&self, workspace: &str) -> Option<Kept> {
        let text = std::fs::read_to_string(self.path(workspace)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn keep(&self, workspace: &str, kept: &Kept) {
        keep_file(&self.path(workspace), kept);
    }

    /// The kept listing brought up to date with two requests, or `None` when a full listing
    /// is needed.
    async fn update(
        &self,
        workspace: &str,
        query: &RepoQuery,
        kept: Kept,
        now: SystemTime,
    ) -> Result<Option<Listing>, Error> {
        let parse = |t: &str| humantime::parse_rfc3339_weak(t).ok();
        let (Some(listed_at), Some(full_at)) = (parse(&kept.listed_at), parse(&kept.full_at))
        else {
            return Ok(None);
        };
        // A workspace of one page lists in full in one request: cheaper than two.
        // A listing with entries that could not be read is not brought up to date: what
        // changed cannot be told from what could not be read.
        if kept.project_keys != query.project_keys
            || !kept.unreadable.is_empty()
            || kept.repositories.len() <= self.in_full_up_to
            || now
                .duration_since(full_at)
                .map_or(true, |age| age >= self.full_every)
        {
            return Ok(None);
        }
        let since = listed_at.checked_sub(CLOCK_MARGIN).unwrap_or(listed_at);
        let changed_query = RepoQuery {
            updated_since: Timestamp::try_from(since).ok(),
            ..query.clone()
        };
        let changed = self.inner.repositories(workspace, &changed_query).await?;
        if !changed.unreadable.is_empty() {
            return Ok(None);
        }
        let Some(count) = self.inner.repository_count(workspace, query).await? else {
            return Ok(None);
        };
        let mut by_uuid: HashMap<RepoUuid, Repo> = HashMap::with_capacity(kept.repositories.len());
        for repo in kept.repositories.into_iter().chain(changed.repositories) {
            let Some(uuid) = repo.uuid.clone() else {
                return Ok(None);
            };
            by_uuid.insert(uuid, repo);
        }
        if by_uuid.len() as u64 != count {
            tracing::info!(
                workspace,
                kept_and_changed = by_uuid.len(),
                count,
                "the workspace's count disagrees with its kept listing: listing it in full"
            );
            return Ok(None);
        }
        let mut repositories: Vec<Repo> = by_uuid.into_values().collect();
        repositories.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(Some(Listing::of(repositories)))
    }
}

#[async_trait]
impl BitbucketPort for Incremental {
    async fn workspaces(&self) -> Result<Vec<String>, Error> {
        self.inner.workspaces().await
    }

    async fn repositories(&self, workspace: &str, query: &RepoQuery) -> Result<Listing, Error> {
        // A query of its own for changes is passed through.
        if query.updated_since.is_some() {
            return self.inner.repositories(workspace, query).await;
        }
        let now = SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let updated = match self.load(workspace) {
            Some(kept) => {
                let full_at = kept.full_at.clone();
                self.update(workspace, query, kept, now)
                    .await?
                    .map(|listing| (listing, full_at))
            }
            None => None,
        };
        // Brought up to date (the last full listing's time stays), or listed in full now.
        let (listing, full_at) = match updated {
            Some(updated) => updated,
            None => (
                self.inner.repositories(workspace, query).await?,
                stamp.clone(),
            ),
        };
        let kept = Kept {
            listed_at: stamp,
            full_at,
            project_keys: query.project_keys.clone(),
            repositories: listing.repositories,
            unreadable: listing.unreadable,
        };
        self.keep(workspace, &kept);
        Ok(Listing {
            repositories: kept.repositories,
            unreadable: kept.unreadable,
        })
    }

    async fn repository_count(
        &self,
        workspace: &str,
        query: &RepoQuery,
    ) -> Result<Option<u64>, Error> {
        self.inner.repository_count(workspace, query).await
    }

    async fn repository_by_uuid(
        &self,
        workspace: &str,
        uuid: &RepoUuid,
    ) -> Result<Option<Repo>, Error> {
        self.inner.repository_by_uuid(workspace, uuid).await
    }

    async fn repositories_by_uuid(
        &self,
        workspace: &str,
        uuids: &[RepoUuid],
    ) -> Result<Vec<Repo>, Error> {
        self.inner.repositories_by_uuid(workspace, uuids).await
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

/// The file under `dir` that keeps what was read of `name` (a workspace slug, an org id):
/// letters, digits, `-`, `_` and `.` as they are, anything else replaced.
pub(crate) fn kept_file_path(dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.json"))
}

/// Writes `value` as JSON to `path` atomically (a temporary file renamed over it); a failure
/// is logged, and the next run reads in full.
pub(crate) fn keep_file<T: Serialize>(path: &Path, value: &T) {
    let tmp = path.with_extension("json.tmp");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, text)
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "what was read could not be kept; the next run reads it in full");
    }
}
