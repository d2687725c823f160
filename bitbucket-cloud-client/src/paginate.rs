//! Paging through listings: streams that own a cheap clone of the client, so they are
//! `Send + 'static` and can be moved into spawned tasks.

use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;

use api_support::SkippedItem;
use futures_util::{Stream, TryStreamExt, stream};
use serde::de::DeserializeOwned;
use url::Url;

use crate::models::{Identified, Page};
use crate::{BitbucketClient, Error};

/// A listing: the first page's URL and the client to fetch it with. Later pages follow `next`
/// verbatim (it carries every query parameter); the listing stops on a page without `next`, or
/// one whose `next` points back to itself. Items are de-duplicated by UUID within the listing.
///
/// A page without `next` before the total the server announced (`size`) was reached is asked
/// for once more; if it still has no `next`, the listing fails with
/// [`Error::IncompleteListing`] rather than pass for complete.
#[must_use = "a paginator does nothing until streamed"]
pub struct Paginator<T> {
    client: BitbucketClient,
    first: Result<Url, Error>,
    workspace: Option<String>,
    _items: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Paginator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paginator")
            .field("first", &self.first.as_ref().map(Url::as_str).ok())
            .finish()
    }
}

struct PageState {
    client: BitbucketClient,
    next: Option<Result<Url, Error>>,
    workspace: Option<String>,
    /// Items received so far.
    received: u64,
    /// The page whose answer carried `next`.
    from: Option<Url>,
}

impl PageState {
    async fn fetch<T: DeserializeOwned>(&mut self) -> Result<Option<Page<T>>, Error> {
        let url = match self.next.take() {
            None => return Ok(None),
            Some(url) => url?,
        };
        let first = self
            .client
            .get_url(url.clone(), self.workspace.as_deref())
            .await;
        let mut page: Page<T> = match (first, &self.from) {
            // A `next` link the client will not follow (another origin): name the request
            // whose answer carried it, not the refused link.
            (Err(e), Some(from)) if e.kind() == api_support::ErrorKind::Config => {
                // The refusal's own words, without the refused request line (`GET /` of the
                // other host means nothing to the reader).
                let why = e
                    .api()
                    .map_or_else(|| e.to_string(), |a| a.message().to_owned());
                return Err(Error::Config(format!(
                    "the `next` link in Bitbucket's answer to GET {} was not followed: {why}",
                    from.path()
                )));
            }
            (page, _) => page?,
        };
        // Items set aside as undecodable were received all the same.
        let count = |page: &Page<T>| (page.values.len() + page.skipped.len()) as u64;
        let short = |page: &Page<T>, received: u64| {
            page.next.is_none() && page.size.is_some_and(|size| received + count(page) < size)
        };
        if short(&page, self.received) {
            tracing::warn!(url = %url, "a page ended the listing before its announced size; asking again");
            page = self
                .client
                .get_url(url.clone(), self.workspace.as_deref())
                .await?;
            if short(&page, self.received) {
                return Err(Error::IncompleteListing {
                    what: url.path().to_owned(),
                    expected: page.size.unwrap_or_default(),
                    received: self.received + count(&page),
                });
            }
        }
        api_support::warn_skipped(url.path(), self.received, &page.skipped);
        self.received += count(&page);
        self.from = Some(url.clone());
        self.next = match &page.next {
            None => None,
            Some(next) => {
                let parsed = Url::parse(next).or_else(|_| url.join(next)).map_err(|e| {
                    Error::Config(format!("Bitbucket sent an unreadable `next` link ({e})"))
                });
                match parsed {
                    Ok(n) if n == url => {
                        tracing::warn!(url = %url, "`next` points to the same page; stopping");
                        None
                    }
                    other => Some(other),
                }
            }
        };
        Ok(Some(page))
    }
}

impl<T> Paginator<T>
where
    T: DeserializeOwned + Identified + Send + 'static,
{
    pub(crate) fn new(
        client: BitbucketClient,
        first: Result<Url, Error>,
        workspace: Option<String>,
    ) -> Self {
        Self {
            client,
            first,
            workspace,
            _items: PhantomData,
        }
    }

    fn state(self) -> PageState {
        PageState {
            client: self.client,
            next: Some(self.first),
            workspace: self.workspace,
            received: 0,
            from: None,
        }
    }

    /// The pages, as they come.
    pub fn pages(self) -> impl Stream<Item = Result<Page<T>, Error>> + Send + 'static {
        stream::try_unfold(self.state(), |mut state| async move {
            Ok(state.fetch::<T>().await?.map(|page| (page, state)))
        })
    }

    /// The items, de-duplicated by UUID.
    pub fn items(self) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        let start = (self.state(), VecDeque::<T>::new(), HashSet::<String>::new());
        stream::try_unfold(start, |(mut state, mut buffer, mut seen)| async move {
            loop {
                if let Some(item) = buffer.pop_front() {
                    if !first_sighting(&mut seen, &item) {
                        continue;
                    }
                    return Ok(Some((item, (state, buffer, seen))));
                }
                match state.fetch::<T>().await? {
                    None => return Ok(None),
                    Some(page) => buffer.extend(page.values),
                }
            }
        })
    }

    /// Every item, de-duplicated by UUID.
    ///
    /// # Errors
    /// The first error of any page.
    pub async fn collect(self) -> Result<Vec<T>, Error> {
        self.items().try_collect().await
    }

    /// Every item, de-duplicated by UUID, with the items that could not be decoded: a caller
    /// that judges by absence (a repository missing from its workspace's listing) needs to
    /// know that the listing was not wholly read.
    ///
    /// # Errors
    /// The first error of any page.
    pub async fn collect_with_skipped(self) -> Result<(Vec<T>, Vec<SkippedItem>), Error> {
        let mut state = self.state();
        let (mut items, mut skipped, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
        while let Some(page) = state.fetch::<T>().await? {
            skipped.extend(page.skipped);
            items.extend(
                page.values
                    .into_iter()
                    .filter(|item| first_sighting(&mut seen, item)),
            );
        }
        Ok((items, skipped))
    }
}

/// Whether `item` is seen for the first time in a listing (by UUID; an item without one always
/// is): pages may repeat an item when the listing changes while it is read.
fn first_sighting<T: Identified>(seen: &mut HashSet<String>, item: &T) -> bool {
    match item.uuid() {
        Some(uuid) if !seen.insert(uuid.to_owned()) => {
            tracing::debug!(uuid, "dropping an item repeated across pages");
            false
        }
        _ => true,
    }
}
