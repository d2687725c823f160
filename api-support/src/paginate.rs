//! One paginator for every listing of both APIs. What differs between them — how a page is
//! asked for, where the next one is (Bitbucket's `next` links, Snyk's REST cursors, Snyk v1's
//! page numbers), when a page is asked for again — is a [`PageStrategy`]; what is the same is
//! here, once: counting what was received (readable or not), naming items that could not be
//! read, stopping on a `next` that points back to the page it came from, dropping an item a
//! later page repeats, and turning pages into a stream of items.

use std::collections::{HashSet, VecDeque};
use std::future::Future;

use futures_util::{Stream, TryStreamExt, stream};

use crate::lenient::{SkippedItem, warn_skipped};

/// One page of a listing: its readable items, the ones that could not be read, and where the
/// next page is (none: the listing ends here).
#[derive(Debug)]
pub struct Page<T, C> {
    /// The items read.
    pub items: Vec<T>,
    /// The items that could not be read.
    pub skipped: Vec<SkippedItem>,
    /// The next page's cursor.
    pub next: Option<C>,
}

/// How one API pages its listings.
pub trait PageStrategy: Send + Sync + 'static {
    /// Where a page is: a URL, a page number.
    type Cursor: PartialEq + Send + Sync + 'static;
    /// An item of the listing.
    type Item: Send + 'static;
    /// The API's error.
    type Error: Send + 'static;

    /// Reads the page at `cursor`; `received` items (readable or not) came before it.
    fn fetch(
        &self,
        cursor: &Self::Cursor,
        received: u64,
    ) -> impl Future<Output = Result<Page<Self::Item, Self::Cursor>, Self::Error>> + Send;

    /// What identifies an item across pages: a later page that repeats it (the listing changed
    /// while it was read) is not handed on twice. `None` (the default): never dropped.
    fn key(_item: &Self::Item) -> Option<&str> {
        None
    }

    /// The listing, as logs name it.
    fn listing(&self) -> String;
}

/// A listing read page by page with a [`PageStrategy`].
#[must_use = "a paginator does nothing until streamed"]
pub struct Paginator<S: PageStrategy> {
    strategy: S,
    next: Option<Result<S::Cursor, S::Error>>,
    received: u64,
}

impl<S: PageStrategy> std::fmt::Debug for Paginator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paginator")
            .field("listing", &self.strategy.listing())
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<S: PageStrategy> Paginator<S> {
    /// A listing whose first page is at `first` (an error there is the listing's first item).
    pub fn new(strategy: S, first: Result<S::Cursor, S::Error>) -> Self {
        Self {
            strategy,
            next: Some(first),
            received: 0,
        }
    }

    /// The next page, or `None` once the listing has ended.
    ///
    /// # Errors
    /// The page's own.
    pub async fn next_page(&mut self) -> Result<Option<Page<S::Item, S::Cursor>>, S::Error> {
        let Some(cursor) = self.next.take() else {
            return Ok(None);
        };
        let cursor = cursor?;
        let mut page = self.strategy.fetch(&cursor, self.received).await?;
        if !page.skipped.is_empty() {
            warn_skipped(&self.strategy.listing(), self.received, &page.skipped);
        }
        self.received += (page.items.len() + page.skipped.len()) as u64;
        self.next = match page.next.take() {
            Some(next) if next == cursor => {
                tracing::warn!(listing = %self.strategy.listing(), "the next page is the page itself; the listing stops");
                None
            }
            next => next.map(Ok),
        };
        Ok(Some(page))
    }

    /// The pages, as they come.
    pub fn pages(self) -> impl Stream<Item = Result<Page<S::Item, S::Cursor>, S::Error>> + Send
    where
        S::Error: Sync,
    {
        stream::try_unfold(self, |mut this| async move {
            Ok(this.next_page().await?.map(|page| (page, this)))
        })
    }

    /// The items, each once.
    pub fn items(self) -> impl Stream<Item = Result<S::Item, S::Error>> + Send
    where
        S::Error: Sync,
        S::Item: Sync,
    {
        let start = (self, VecDeque::new(), HashSet::new());
        stream::try_unfold(start, |(mut this, mut buffer, mut seen)| async move {
            loop {
                if let Some(item) = buffer.pop_front() {
                    if !first_sighting::<S>(&mut seen, &item) {
                        continue;
                    }
                    return Ok(Some((item, (this, buffer, seen))));
                }
                match this.next_page().await? {
                    None => return Ok(None),
                    Some(page) => buffer.extend(page.items),
                }
            }
        })
    }

    /// Every item, each once.
    ///
    /// # Errors
    /// The first error of any page.
    pub async fn collect(self) -> Result<Vec<S::Item>, S::Error>
    where
        S::Error: Sync,
        S::Item: Sync,
    {
        self.items().try_collect().await
    }

    /// Every item, each once, with the items that could not be read: a caller that judges by
    /// absence (a repository missing from its workspace's listing) needs to know that the
    /// listing was not wholly read.
    ///
    /// # Errors
    /// The first error of any page.
    pub async fn collect_with_skipped(
        mut self,
    ) -> Result<(Vec<S::Item>, Vec<SkippedItem>), S::Error> {
        let (mut items, mut skipped, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
        while let Some(page) = self.next_page().await? {
            skipped.extend(page.skipped);
            items.extend(
                page.items
                    .into_iter()
                    .filter(|item| first_sighting::<S>(&mut seen, item)),
            );
        }
        Ok((items, skipped))
    }
}

/// Whether `item` is seen for the first time in its listing (an item without a key always is).
fn first_sighting<S: PageStrategy>(seen: &mut HashSet<String>, item: &S::Item) -> bool {
    match S::key(item) {
        Some(key) if !seen.insert(key.to_owned()) => {
            tracing::debug!(key, "dropping an item repeated across pages");
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of numbers: page `n` holds `pages[n]`, the next is `n + 1` while there is one, and
    /// a page listed in `loops` points back to itself.
    struct Numbers {
        pages: Vec<Vec<u32>>,
        loops: Vec<usize>,
    }

    impl PageStrategy for Numbers {
        type Cursor = usize;
        type Item = (u32, String);
        type Error = String;

        async fn fetch(
            &self,
            at: &usize,
            _received: u64,
        ) -> Result<Page<(u32, String), usize>, String> {
            let items = self.pages.get(*at).ok_or_else(|| format!("no page {at}"))?;
            let next = if self.loops.contains(at) {
                Some(*at)
            } else {
                (at + 1 < self.pages.len()).then_some(at + 1)
            };
            Ok(Page {
                items: items.iter().map(|n| (*n, n.to_string())).collect(),
                skipped: Vec::new(),
                next,
            })
        }

        fn key(item: &(u32, String)) -> Option<&str> {
            Some(&item.1)
        }

        fn listing(&self) -> String {
            "numbers".to_owned()
        }
    }

    #[tokio::test]
    async fn items_come_in_order_across_pages_each_once_and_a_page_pointing_to_itself_ends_the_listing()
     {
        let s = Numbers {
            pages: vec![vec![1, 2], vec![2, 3], vec![4], vec![5]],
            loops: vec![2],
        };
        let got: Vec<u32> = Paginator::new(s, Ok(0))
            .collect()
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn an_error_on_a_later_page_ends_the_stream_after_the_items_before_it() {
        let s = Numbers {
            pages: vec![vec![1]],
            loops: vec![],
        };
        let mut p = Paginator::new(s, Ok(0));
        assert_eq!(p.next_page().await.unwrap().unwrap().items.len(), 1);
        assert!(p.next_page().await.unwrap().is_none());
        let failing: Paginator<Numbers> = Paginator::new(
            Numbers {
                pages: vec![],
                loops: vec![],
            },
            Err("refused".to_owned()),
        );
        assert_eq!(failing.collect().await.unwrap_err(), "refused");
    }
}
