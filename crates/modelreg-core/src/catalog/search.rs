//! Browsing the catalog: filters and pages, for the console and the API.

use super::{Capability, Catalog, CatalogEntry};

/// Which entries a search selects. Every filter given must hold; none given selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFilter {
    /// Text the key contains, ignoring case; taken literally (no wildcards).
    pub search: Option<String>,
    /// The provider, exactly (one of [`Catalog::providers`]).
    pub provider: Option<String>,
    /// The mode, exactly (one of [`Catalog::modes`]).
    pub mode: Option<String>,
    /// Capabilities the entry must all have.
    pub capabilities: Vec<Capability>,
}

impl Catalog {
    /// The entries `filter` selects, ordered by key: the `limit` of them after the first
    /// `offset`, and how many there are in all.
    ///
    /// A scan of every entry (a few thousand; docs/catalog.md has the timings) that allocates
    /// only the page and the lower-cased search text.
    pub fn search(
        &self,
        filter: &CatalogFilter,
        offset: usize,
        limit: usize,
    ) -> (Vec<&CatalogEntry>, usize) {
        let needle = filter
            .search
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let finder = needle.as_deref().map(memchr::memmem::Finder::new);
        let selects = |entry: &CatalogEntry, folded_key: &str| {
            finder
                .as_ref()
                .is_none_or(|f| f.find(folded_key.as_bytes()).is_some())
                && filter
                    .provider
                    .as_deref()
                    .is_none_or(|p| entry.provider.as_deref() == Some(p))
                && filter
                    .mode
                    .as_deref()
                    .is_none_or(|m| entry.mode.as_deref() == Some(m))
                && filter
                    .capabilities
                    .iter()
                    .all(|c| entry.capabilities.contains(c))
        };
        let mut page = Vec::with_capacity(limit.min(self.entries.len()));
        let mut total = 0;
        for (entry, folded_key) in self.entries.iter().zip(&self.folded_keys) {
            if selects(entry, folded_key) {
                if total >= offset && page.len() < limit {
                    page.push(entry);
                }
                total += 1;
            }
        }
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the filter selects, counted the slow way.
    fn expected_total(catalog: &Catalog, filter: &CatalogFilter) -> usize {
        catalog
            .entries()
            .iter()
            .filter(|e| {
                filter
                    .search
                    .as_ref()
                    .is_none_or(|s| e.key.to_lowercase().contains(&s.to_lowercase()))
                    && filter
                        .provider
                        .as_ref()
                        .is_none_or(|p| e.provider.as_ref() == Some(p))
                    && filter
                        .mode
                        .as_ref()
                        .is_none_or(|m| e.mode.as_ref() == Some(m))
                    && filter
                        .capabilities
                        .iter()
                        .all(|c| e.capabilities.contains(c))
            })
            .count()
    }

    #[test]
    fn no_filter_pages_through_everything_in_key_order() {
        let catalog = Catalog::bundled();
        let all = CatalogFilter::default();
        let (first, total) = catalog.search(&all, 0, 50);
        assert_eq!(total, catalog.len());
        assert_eq!(first.len(), 50);
        assert_eq!(first[0], &catalog.entries()[0]);
        let (second, _) = catalog.search(&all, 50, 50);
        assert_eq!(second[0], &catalog.entries()[50]);
        let mut seen = 0;
        let mut previous: Option<&str> = None;
        while seen < total {
            let (page, page_total) = catalog.search(&all, seen, 500);
            assert_eq!(page_total, total);
            for entry in &page {
                assert!(previous < Some(entry.key.as_str()));
                previous = Some(&entry.key);
            }
            seen += page.len();
        }
        assert_eq!(seen, catalog.len());
        let (past_the_end, total) = catalog.search(&all, catalog.len() + 10, 50);
        assert!(past_the_end.is_empty());
        assert_eq!(total, catalog.len());
        assert!(catalog.search(&all, 0, 0).0.is_empty());
    }

    #[test]
    fn search_is_a_literal_substring_of_the_key_ignoring_case() {
        let catalog = Catalog::bundled();
        let filter = CatalogFilter {
            search: Some("GPT-4O".to_owned()),
            ..CatalogFilter::default()
        };
        let (page, total) = catalog.search(&filter, 0, 1_000);
        assert_eq!(total, expected_total(&catalog, &filter));
        assert!(total > 20, "{total}");
        assert_eq!(page.len(), total);
        assert!(page.iter().any(|e| e.key == "gpt-4o"));
        assert!(page.iter().any(|e| e.key == "azure/gpt-4o"));
        assert!(page.iter().all(|e| e.key.to_lowercase().contains("gpt-4o")));
        assert!(page.is_sorted_by(|a, b| a.key < b.key));

        // Not a pattern: `.` and `%` match only themselves.
        for literal in ["gpt-4.", "gpt%4o", "gpt_4o", "*"] {
            let filter = CatalogFilter {
                search: Some(literal.to_owned()),
                ..CatalogFilter::default()
            };
            let (_, total) = catalog.search(&filter, 0, 10);
            assert_eq!(total, expected_total(&catalog, &filter), "{literal}");
        }
        let nothing = CatalogFilter {
            search: Some("no such model anywhere".to_owned()),
            ..CatalogFilter::default()
        };
        assert_eq!(catalog.search(&nothing, 0, 10), (vec![], 0));
        let empty = CatalogFilter {
            search: Some(String::new()),
            ..CatalogFilter::default()
        };
        assert_eq!(catalog.search(&empty, 0, 1).1, catalog.len());
    }

    #[test]
    fn provider_mode_and_capabilities_narrow_the_search() {
        let catalog = Catalog::bundled();
        let anthropic = CatalogFilter {
            provider: Some("anthropic".to_owned()),
            ..CatalogFilter::default()
        };
        let (page, total) = catalog.search(&anthropic, 0, 5);
        assert_eq!(total, expected_total(&catalog, &anthropic));
        assert!(total > 10, "{total}");
        assert_eq!(page.len(), 5);
        assert!(
            page.iter()
                .all(|e| e.provider.as_deref() == Some("anthropic"))
        );

        let embeddings = CatalogFilter {
            mode: Some("embedding".to_owned()),
            ..CatalogFilter::default()
        };
        let (page, total) = catalog.search(&embeddings, 0, 1_000);
        assert_eq!(total, expected_total(&catalog, &embeddings));
        assert!(total > 100, "{total}");
        assert!(page.iter().all(|e| e.mode.as_deref() == Some("embedding")));

        let openai_vision_tools = CatalogFilter {
            search: Some("gpt".to_owned()),
            provider: Some("openai".to_owned()),
            mode: Some("chat".to_owned()),
            capabilities: vec![Capability::Vision, Capability::FunctionCalling],
        };
        let (page, total) = catalog.search(&openai_vision_tools, 0, 3);
        assert_eq!(total, expected_total(&catalog, &openai_vision_tools));
        assert!(total > 10, "{total}");
        assert_eq!(page.len(), 3);
        let (rest, same_total) = catalog.search(&openai_vision_tools, 3, 1_000);
        assert_eq!(same_total, total);
        assert_eq!(rest.len(), total - 3);
        assert!(rest.iter().any(|e| e.key == "gpt-4o"));
        let without_vision = CatalogFilter {
            capabilities: vec![Capability::FunctionCalling],
            ..openai_vision_tools.clone()
        };
        assert!(catalog.search(&without_vision, 0, 0).1 > total);

        let wrong_case = CatalogFilter {
            provider: Some("OpenAI".to_owned()),
            ..CatalogFilter::default()
        };
        assert_eq!(catalog.search(&wrong_case, 0, 10).1, 0);
    }
}
