//! Models of the Bitbucket Cloud data the mirror reads.
//!
//! Fields the API may omit are `Option`; unknown fields are ignored, so a new field in an answer
//! never breaks a listing. Timestamps are kept as the RFC 3339 text Bitbucket sends.

use api_support::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A page of a paginated listing. Only `values` and `next` are guaranteed.
///
/// Each item is decoded on its own: one that does not fit the model is set aside in
/// [`Page::skipped`] (and logged by the paginator) instead of failing the page.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(
    from = "RawPage",
    bound(deserialize = "T: serde::de::DeserializeOwned")
)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page that decoded.
    pub values: Vec<T>,
    /// The items of this page that did not decode, and why.
    #[serde(skip)]
    pub skipped: Vec<api_support::SkippedItem>,
    /// The absolute URL of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The absolute URL of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The total number of items, when the server computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The page number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// The page length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagelen: Option<u64>,
}

/// A page as it arrives, its items not yet decoded.
#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    values: Vec<serde_json::Value>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    previous: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    pagelen: Option<u64>,
}

impl<T: serde::de::DeserializeOwned> From<RawPage> for Page<T> {
    fn from(raw: RawPage) -> Self {
        let (values, skipped) = api_support::decode_items(raw.values);
        Self {
            values,
            skipped,
            next: raw.next,
            previous: raw.previous,
            size: raw.size,
            page: raw.page,
            pagelen: raw.pagelen,
        }
    }
}

/// A link to a related resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Link {
    /// The address.
    #[serde(default)]
    pub href: Option<String>,
    /// A name, for some links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The links the mirror uses (`self`, `html`, `avatar`); others are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Links {
    /// The API address of the resource.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<Link>,
    /// The web page of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<Link>,
    /// The avatar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<Link>,
}

/// The authenticated user (`GET /user`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct User {
    /// The user's UUID, with braces.
    #[serde(default)]
    pub uuid: Option<String>,
    /// The Atlassian account id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The nickname.
    #[serde(default)]
    pub nickname: Option<String>,
    /// The account status (`active`).
    #[serde(default)]
    pub account_status: Option<String>,
}

/// A workspace as nested in other objects (`workspace_base`): no name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct WorkspaceRef {
    /// The slug, the workspace's identifier in URLs.
    #[serde(default)]
    pub slug: Option<String>,
    /// The UUID, with braces.
    #[serde(default)]
    pub uuid: Option<String>,
    /// The name, when the answer carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A workspace the caller can access (`GET /user/workspaces`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct WorkspaceAccess {
    /// Whether the caller administers the workspace.
    #[serde(default)]
    pub administrator: Option<bool>,
    /// The workspace (slug and UUID; no name: use [`crate::BitbucketClient::workspace`]). Empty
    /// when the entry lacks it, as the vendor's schema allows.
    #[serde(default)]
    pub workspace: WorkspaceRef,
}

/// A full workspace (`GET /workspaces/{workspace}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Workspace {
    /// The slug.
    pub slug: String,
    /// The UUID, with braces.
    #[serde(default)]
    pub uuid: Option<String>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the workspace is private.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// When it was created (an RFC 3339 time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub created_on: Option<Timestamp>,
    /// When it was last updated (an RFC 3339 time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub updated_on: Option<Timestamp>,
    /// Links.
    #[serde(default)]
    pub links: Option<Links>,
}

/// A project of a workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Project {
    /// The key, such as `CORE`.
    #[serde(default)]
    pub key: Option<String>,
    /// The UUID, with braces.
    #[serde(default)]
    pub uuid: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the project is private.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// When it was created (an RFC 3339 time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub created_on: Option<Timestamp>,
    /// When it was last updated (an RFC 3339 time that does not parse is `None`).
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    pub updated_on: Option<Timestamp>,
}

/// A branch reference (`mainbranch`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Branch {
    /// The branch name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A reference to another repository (`parent` of a fork).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct RepositoryRef {
    /// `workspace/slug`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// The UUID.
    #[serde(default)]
    pub uuid: Option<String>,
}

/// The raw shape of a repository; see [`Repository`] for the slug fallback.
#[derive(Deserialize)]
struct RawRepository {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    workspace: Option<WorkspaceRef>,
    #[serde(default)]
    is_private: Option<bool>,
    #[serde(default)]
    mainbranch: Option<Branch>,
    #[serde(default)]
    project: Option<Project>,
    #[serde(default)]
    parent: Option<RepositoryRef>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    created_on: Option<Timestamp>,
    #[serde(default, deserialize_with = "api_support::time::lenient")]
    updated_on: Option<Timestamp>,
    #[serde(default)]
    links: Option<Links>,
}

/// A repository.
///
/// `slug` is always set: when the answer lacks it (the vendor's schema omits it, and `fields`
/// may leave it out) it is the part of `full_name` after `/`. An answer with neither is a decode
/// error.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawRepository")]
#[non_exhaustive]
pub struct Repository {
    /// The slug, the repository's identifier in URLs.
    pub slug: String,
    /// The UUID, with braces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `workspace/slug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The owning workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceRef>,
    /// Whether the repository is private.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_private: Option<bool>,
    /// The main branch; `None` for an empty repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mainbranch: Option<Branch>,
    /// The project it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<Project>,
    /// The repository it was forked from; present only for forks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<RepositoryRef>,
    /// The main language, as Bitbucket guesses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The size in bytes, as Bitbucket reports it (the vendor's schema allows any integer, and
    /// negative values have been seen; the mirror does not use it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// When it was created (an RFC 3339 time that does not parse is `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<Timestamp>,
    /// When it was last updated (an RFC 3339 time that does not parse is `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<Timestamp>,
    /// Links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

impl TryFrom<RawRepository> for Repository {
    type Error = String;

    fn try_from(raw: RawRepository) -> Result<Self, String> {
        let from_full_name = raw
            .full_name
            .as_deref()
            .and_then(|f| f.split_once('/'))
            .map(|(_, slug)| slug.to_owned());
        let slug = raw
            .slug
            .filter(|s| !s.is_empty())
            .or(from_full_name)
            .ok_or_else(|| match &raw.full_name {
                None => "a repository has neither `slug` nor `full_name`".to_owned(),
                Some(f) => format!(
                    "a repository has no `slug`, and its `full_name` ({}) has no `/` to take one from",
                    f.chars().take(80).collect::<String>()
                ),
            })?;
        Ok(Self {
            slug,
            uuid: raw.uuid,
            name: raw.name,
            full_name: raw.full_name,
            workspace: raw.workspace,
            is_private: raw.is_private,
            mainbranch: raw.mainbranch,
            project: raw.project,
            parent: raw.parent,
            language: raw.language,
            size: raw.size,
            created_on: raw.created_on,
            updated_on: raw.updated_on,
            links: raw.links,
        })
    }
}

impl Repository {
    /// A repository with only a workspace and a slug; the other fields are empty. For tests and
    /// in-memory fakes.
    pub fn new(workspace: &str, slug: &str) -> Self {
        Self {
            slug: slug.to_owned(),
            uuid: None,
            name: Some(slug.to_owned()),
            full_name: Some(format!("{workspace}/{slug}")),
            workspace: Some(WorkspaceRef {
                slug: Some(workspace.to_owned()),
                uuid: None,
                name: None,
            }),
            is_private: None,
            mainbranch: None,
            project: None,
            parent: None,
            language: None,
            size: None,
            created_on: None,
            updated_on: None,
            links: None,
        }
    }

    /// The workspace slug: `workspace.slug`, else the part of `full_name` before `/`.
    pub fn workspace_slug(&self) -> Option<&str> {
        self.workspace
            .as_ref()
            .and_then(|w| w.slug.as_deref())
            .or_else(|| {
                self.full_name
                    .as_deref()
                    .and_then(|f| f.split_once('/'))
                    .map(|(ws, _)| ws)
            })
    }

    /// The main branch's name; `None` for an empty repository.
    pub fn main_branch(&self) -> Option<&str> {
        self.mainbranch.as_ref().and_then(|b| b.name.as_deref())
    }

    /// Whether this repository is a fork.
    pub fn is_fork(&self) -> bool {
        self.parent.is_some()
    }

    /// The key of the project it belongs to.
    pub fn project_key(&self) -> Option<&str> {
        self.project.as_ref().and_then(|p| p.key.as_deref())
    }
}

/// Items that carry a UUID, by which listings remove duplicates across pages.
pub trait Identified {
    /// The UUID, if the answer carried one.
    fn uuid(&self) -> Option<&str>;
}

impl Identified for Repository {
    fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }
}

impl Identified for Project {
    fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }
}

impl Identified for WorkspaceAccess {
    fn uuid(&self) -> Option<&str> {
        self.workspace.uuid.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_falls_back_to_full_name() {
        let r: Repository = serde_json::from_str(
            r#"{"full_name":"acme/api","mainbranch":null,"parent":{"full_name":"x/api"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.slug, "api");
        assert_eq!(r.workspace_slug(), Some("acme"));
        assert_eq!(r.main_branch(), None);
        assert!(r.is_fork());
        // One item without a slug to be had is set aside, named; the page and its other
        // items decode (a negative size too: the schema sets no minimum).
        let page = api_support::decode_json::<Page<Repository>>(
            br#"{"values":[{"slug":"a","size":-1},{"name":"x","uuid":"{x}"},{"slug":"b"}]}"#,
        )
        .unwrap();
        let slugs: Vec<&str> = page.values.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs, ["a", "b"]);
        assert_eq!(page.values[0].size, Some(-1));
        assert_eq!(page.skipped.len(), 1);
        let shown = page.skipped[0].to_string();
        assert!(shown.starts_with("item 1 ({x})"), "{shown}");
        assert!(shown.contains("neither `slug` nor `full_name`"), "{shown}");
        // A page that is not a page still fails.
        let e = api_support::decode_json::<Page<Repository>>(br#"{"values": 3}"#).unwrap_err();
        assert_eq!(e.0, "values");
    }
}
