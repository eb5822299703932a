//! Keyset paging shared by every List RPC: a page is "up to `size` rows with an id greater than
//! `after`", ordered by id. Ids are UUIDv7, so id order is creation order.

use callmesh_proto::common::v1::PageRequest;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub size: u64,
    /// The last id of the previous page.
    pub after: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            size: DEFAULT_PAGE_SIZE,
            after: None,
        }
    }
}

/// Why a page request was refused; `field` is the request field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct PageError {
    pub field: &'static str,
    pub reason: String,
}

impl Page {
    /// Validates a proto page request; a missing one means the first page of the default size.
    pub fn from_proto(page: Option<PageRequest>) -> Result<Page, PageError> {
        let Some(PageRequest {
            page_size,
            page_token,
        }) = page
        else {
            return Ok(Page::default());
        };
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 || n as u64 > MAX_PAGE_SIZE => {
                return Err(PageError {
                    field: "page.page_size",
                    reason: format!("must be between 1 and {MAX_PAGE_SIZE}"),
                });
            }
            n => n as u64,
        };
        let after = if page_token.is_empty() {
            None
        } else if uuid::Uuid::try_parse(&page_token).is_ok() {
            Some(page_token)
        } else {
            return Err(PageError {
                field: "page.page_token",
                reason: "not a token from a previous response".to_owned(),
            });
        };
        Ok(Page { size, after })
    }

    /// The token for the page after `rows`: the last id when the page is full, else empty.
    pub fn next_token<'a>(
        &self,
        ids: impl DoubleEndedIterator<Item = &'a str>,
        count: usize,
    ) -> String {
        if (count as u64) < self.size {
            return String::new();
        }
        ids.last().map(str::to_owned).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(Page::from_proto(None), Ok(Page::default()));
        let too_big = PageRequest {
            page_size: 501,
            page_token: String::new(),
        };
        assert_eq!(
            Page::from_proto(Some(too_big)).map_err(|e| e.field),
            Err("page.page_size")
        );
        let bad_token = PageRequest {
            page_size: 10,
            page_token: "garbage".into(),
        };
        assert_eq!(
            Page::from_proto(Some(bad_token)).map_err(|e| e.field),
            Err("page.page_token")
        );
    }

    #[test]
    fn a_short_page_is_the_last() {
        let page = Page {
            size: 2,
            after: None,
        };
        assert_eq!(page.next_token(["a"].into_iter(), 1), "");
        assert_eq!(page.next_token(["a", "b"].into_iter(), 2), "b");
    }
}
