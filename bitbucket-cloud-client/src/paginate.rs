//! Bitbucket's way of paging, as a strategy of the one paginator
//! ([`api_support::Paginator`]): later pages follow `next` verbatim (it carries every query
//! parameter), items are de-duplicated by UUID within a listing, and a page without `next`
//! before the total the server announced (`size`) is asked for once more; if it still has no
//! `next`, the listing fails with [`Error::IncompleteListing`] rather than pass for complete.
//! The streams own a cheap clone of the client, so they are `Send + 'static` and can be moved
//! into spawned tasks.

use std::marker::PhantomData;

use api_support::PageStrategy;
use serde::de::DeserializeOwned;
use url::Url;

use crate::models::{Identified, Page};
use crate::{BitbucketClient, Error};

/// A Bitbucket listing, read page by page.
pub type Paginator<T> = api_support::Paginator<Listing<T>>;

/// How a Bitbucket listing pages: the client (and the workspace whose rate limit it spends).
pub struct Listing<T> {
    client: BitbucketClient,
    workspace: Option<String>,
    _items: PhantomData<fn() -> T>,
}

/// Where a page of a Bitbucket listing is: its URL, and the page whose answer named it.
#[derive(Clone, Debug)]
pub struct Cursor {
    url: Url,
    from: Option<Url>,
}

impl Cursor {
    /// The page at `url`.
    pub fn at(url: Url) -> Self {
        Self { url, from: None }
    }

    /// The page's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Two cursors are the same page when their URLs are.
impl PartialEq for Cursor {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl<T> Listing<T> {
    /// A listing through `client`, spending `workspace`'s rate limit when named.
    pub(crate) fn new(client: BitbucketClient, workspace: Option<String>) -> Self {
        Self {
            client,
            workspace,
            _items: PhantomData,
        }
    }
}

impl<T> Listing<T>
where
    T: DeserializeOwned + Send,
{
    /// `GET` of one page, naming the page whose `next` it was when the client will not follow
    /// it (another origin): the refused link means nothing to the reader.
    async fn get(&self, at: &Cursor) -> Result<Page<T>, Error> {
        let page = self
            .client
            .get_url(at.url.clone(), self.workspace.as_deref())
            .await;
        match (page, &at.from) {
            (Err(e), Some(from)) if e.kind() == api_support::ErrorKind::Config => {
                let why = e
                    .api()
                    .map_or_else(|| e.to_string(), |a| a.message().to_owned());
                Err(Error::Config(format!(
                    "the `next` link in Bitbucket's answer to GET {} was not followed: {why}",
                    from.path()
                )))
            }
            (page, _) => page,
        }
    }
}

impl<T> PageStrategy for Listing<T>
where
    T: DeserializeOwned + Identified + Send + Sync + 'static,
{
    type Cursor = Cursor;
    type Item = T;
    type Error = Error;

    async fn fetch(
        &self,
        at: &Cursor,
        received: u64,
    ) -> Result<api_support::Page<T, Cursor>, Error> {
        let mut page = self.get(at).await?;
        // Items set aside as undecodable were received all the same.
        let count = |page: &Page<T>| (page.values.len() + page.skipped.len()) as u64;
        let short = |page: &Page<T>| {
            page.next.is_none() && page.size.is_some_and(|size| received + count(page) < size)
        };
        if short(&page) {
            tracing::warn!(url = %at.url, "a page ended the listing before its announced size; asking again");
            page = self.get(at).await?;
            if short(&page) {
                return Err(Error::IncompleteListing {
                    what: at.url.path().to_owned(),
                    expected: page.size.unwrap_or_default(),
                    received: received + count(&page),
                });
            }
        }
        let next = match &page.next {
            None => None,
            Some(next) => Some(Cursor {
                url: Url::parse(next)
                    .or_else(|_| at.url.join(next))
                    .map_err(|e| {
                        Error::Config(format!("Bitbucket sent an unreadable `next` link ({e})"))
                    })?,
                from: Some(at.url.clone()),
            }),
        };
        Ok(api_support::Page {
            items: page.values,
            skipped: page.skipped,
            next,
        })
    }

    fn key(item: &T) -> Option<&str> {
        item.uuid()
    }

    fn listing(&self) -> String {
        self.workspace.as_deref().map_or_else(
            || "Bitbucket listing".to_owned(),
            |w| format!("Bitbucket listing of {w}"),
        )
    }
}
