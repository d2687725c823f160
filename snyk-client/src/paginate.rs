//! Snyk's two ways of paging, as strategies of the one paginator ([`api_support::Paginator`]):
//! REST cursors (`links.next`, absolute or relative) and v1's page numbers.

use std::marker::PhantomData;

use api_support::{ApiRequest, Page, PageStrategy, Paginator};
use http::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::client::{SnykClient, json};
use crate::endpoints::GroupOrgsV1;
use crate::models::Org;
use crate::models::rest::Document;
use crate::{Error, models::GroupOrgsV1 as GroupOrgsV1Answer};

impl SnykClient {
    /// The REST listing whose first page is `first`, spending `group`'s rate limit when named.
    pub(crate) fn rest_pages<R, T>(
        &self,
        first: Result<Url, Error>,
        group: Option<String>,
    ) -> Paginator<RestListing<R, T>>
    where
        R: DeserializeOwned + Into<T> + Send + 'static,
        T: Send + Sync + 'static,
    {
        let listing = first
            .as_ref()
            .map_or(String::new(), |u| u.path().to_owned());
        let pages = RestListing {
            client: self.clone(),
            group,
            listing,
            _items: PhantomData,
        };
        Paginator::new(pages, first)
    }

    /// A group's orgs through v1 pages, optionally only the names starting with `prefix`.
    pub(crate) fn v1_group_org_pages(
        &self,
        group_id: &str,
        prefix: Option<&str>,
    ) -> Paginator<GroupOrgPages> {
        let pages = GroupOrgPages {
            client: self.clone(),
            group_id: group_id.to_owned(),
            name: prefix.map(str::to_owned),
        };
        Paginator::new(pages, Ok(1))
    }
}

/// A REST listing: each page's `links.next` is the next; resources of type `R` are handed on
/// as `T`. A later page that cannot be read (a `links.next` that answers 404, say) is asked
/// for once more; then the listing fails as incomplete, never passing for the whole.
pub(crate) struct RestListing<R, T> {
    client: SnykClient,
    /// The group whose rate limit the listing spends, when it is a group's.
    group: Option<String>,
    /// The first page's path, as errors and logs name the listing.
    listing: String,
    _items: PhantomData<fn() -> (R, T)>,
}

impl<R, T> PageStrategy for RestListing<R, T>
where
    R: DeserializeOwned + Into<T> + Send + 'static,
    T: Send + Sync + 'static,
{
    type Cursor = Url;
    type Item = T;
    type Error = Error;

    async fn fetch(&self, url: &Url, received: u64) -> Result<Page<T, Url>, Error> {
        let get = || {
            self.client.send_rest(
                ApiRequest::new(Method::GET, url.clone()),
                self.group.as_deref(),
            )
        };
        let answer = match get().await {
            Ok(answer) => answer,
            Err(first_error) if received > 0 => {
                tracing::warn!(page = %url.path(), error = %first_error, "a page of a listing failed; asking again");
                get().await.map_err(|e| Error::IncompleteListing {
                    what: self.listing.clone(),
                    page: url.path().to_owned(),
                    received,
                    reason: e.to_string(),
                    source: Box::new(e),
                })?
            }
            Err(e) => return Err(e),
        };
        let doc: Document<serde_json::Value> = json(answer)?;
        // Whether the page held items at all, readable or not: a page of only unreadable items
        // does not end the listing; an empty one does, whatever its links say.
        let had_items = !doc.data.is_empty();
        let (data, skipped) = api_support::decode_items::<R>(doc.data);
        let links = doc.links.unwrap_or_default();
        let next = match links.next.filter(|_| had_items) {
            None => None,
            Some(n) => {
                let next = self.client.resolve_rest_link(n.href())?;
                let self_link = links
                    .self_link
                    .as_ref()
                    .and_then(|s| self.client.resolve_rest_link(s.href()).ok());
                // A `next` that is the page's own `self` ends the listing too.
                (Some(&next) != self_link.as_ref()).then_some(next)
            }
        };
        Ok(Page {
            items: data.into_iter().map(Into::into).collect(),
            skipped,
            next,
        })
    }

    fn listing(&self) -> String {
        self.listing.clone()
    }
}

/// A group's orgs through v1: pages of [`GroupOrgPages::PER_PAGE`] by number, until a short
/// page; optionally only the names starting with `name`.
pub(crate) struct GroupOrgPages {
    client: SnykClient,
    group_id: String,
    name: Option<String>,
}

impl GroupOrgPages {
    /// Orgs a page.
    pub(crate) const PER_PAGE: usize = 100;
}

impl PageStrategy for GroupOrgPages {
    type Cursor = u32;
    type Item = Org;
    type Error = Error;

    async fn fetch(&self, page: &u32, _received: u64) -> Result<Page<Org, u32>, Error> {
        let e = GroupOrgsV1 {
            group_id: self.group_id.clone(),
            page: *page,
            per_page: Self::PER_PAGE as u32,
            name: self.name.clone(),
        };
        let answer: GroupOrgsV1Answer = json(self.client.send_v1(&e, Some(&self.group_id)).await?)?;
        let full = answer.orgs.len() >= Self::PER_PAGE;
        Ok(Page {
            items: answer
                .orgs
                .into_iter()
                .map(|mut o| {
                    o.group_id = Some(self.group_id.clone());
                    o
                })
                .collect(),
            skipped: Vec::new(),
            next: full.then_some(page + 1),
        })
    }

    fn listing(&self) -> String {
        format!("orgs of group {}", self.group_id)
    }
}
