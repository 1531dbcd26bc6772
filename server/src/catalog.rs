//! The public variable catalog: full-text search over every datastore's newest version.
//!
//! Search is tantivy's BM25 over names, labels and descriptions in both languages. Query words
//! are matched as exact terms, as prefixes (results as you type) and within a small edit
//! distance (typos), with exact matches and names ranked above descriptions. Text is lower-cased
//! and ASCII-folded on both sides, so `kjonn` finds «kjønn».

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use shared::api::VariableHit;
use shared::metadata::{Temporality, UnitType, VariableMetadata};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term, doc};

use crate::datastore::Registry;

const TOKENIZER: &str = "folded";
/// Hits considered per search; the catalog is small enough that this is every match.
const MAX_HITS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// One variable of one datastore's newest version.
#[derive(Debug)]
pub struct Entry {
    pub datastore: String,
    pub version: u32,
    pub metadata: Arc<VariableMetadata>,
}

/// A validated search request.
#[derive(Debug, Default, Clone)]
pub struct SearchQuery {
    pub text: String,
    pub unit_type: Option<UnitType>,
    pub temporality: Option<Temporality>,
    pub subject: Option<String>,
    /// 1-based.
    pub page: usize,
    pub page_size: usize,
}

#[derive(Debug)]
pub struct SearchResult {
    pub total: usize,
    pub hits: Vec<VariableHit>,
}

struct Fields {
    entry: Field,
    name: Field,
    label_nb: Field,
    label_en: Field,
    description_nb: Field,
    description_en: Field,
    unit_type: Field,
    temporality: Field,
    subject: Field,
}

pub struct Catalog {
    reader: IndexReader,
    analyzer: TextAnalyzer,
    fields: Fields,
    entries: Vec<Entry>,
    by_name: HashMap<String, Vec<usize>>,
    subjects: Vec<String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("entries", &self.entries.len()).finish()
    }
}

impl Catalog {
    /// Indexes the newest version of every datastore in the registry, in memory.
    pub fn build(registry: &Registry) -> Result<Catalog, CatalogError> {
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let mut schema = Schema::builder();
        let fields = Fields {
            entry: schema.add_u64_field("entry", STORED),
            name: schema.add_text_field("name", text.clone()),
            label_nb: schema.add_text_field("label_nb", text.clone()),
            label_en: schema.add_text_field("label_en", text.clone()),
            description_nb: schema.add_text_field("description_nb", text.clone()),
            description_en: schema.add_text_field("description_en", text),
            unit_type: schema.add_text_field("unit_type", STRING),
            temporality: schema.add_text_field("temporality", STRING),
            subject: schema.add_text_field("subject", STRING),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register(TOKENIZER, analyzer.clone());

        let mut entries = Vec::new();
        for version in registry.latest_versions() {
            for meta in version.variables.values() {
                entries.push(Entry {
                    datastore: version.metadata.name.to_string(),
                    version: version.metadata.version,
                    metadata: Arc::new(meta.clone()),
                });
            }
        }
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut subjects = BTreeSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let m = &entry.metadata;
            let mut document = doc!(
                fields.entry => i as u64,
                // Names are indexed with '_' as a separator too, so INNTEKT_WLONN is found
                // by "inntekt", "wlonn" and the whole name.
                fields.name => format!("{} {}", m.name, m.name.as_str().replace('_', " ")),
                fields.label_nb => m.label.nb.clone(),
                fields.label_en => m.label.en.clone(),
                fields.description_nb => m.description.nb.clone(),
                fields.description_en => m.description.en.clone(),
                fields.unit_type => m.unit_type.as_str(),
                fields.temporality => m.temporality.as_str(),
            );
            for s in &m.subject_fields {
                document.add_text(fields.subject, s);
                subjects.insert(s.clone());
            }
            writer.add_document(document)?;
            by_name.entry(m.name.to_string()).or_default().push(i);
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Catalog {
            reader,
            analyzer,
            fields,
            entries,
            by_name,
            subjects: subjects.into_iter().collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }

    /// A variable by name: in `datastore` if given, else in the first datastore that has it.
    pub fn variable(&self, name: &str, datastore: Option<&str>) -> Option<&Entry> {
        self.by_name
            .get(name)?
            .iter()
            .map(|&i| &self.entries[i])
            .find(|e| datastore.is_none_or(|d| e.datastore == d))
    }

    /// Up to three names close to `name`, closest first, for "did you mean".
    pub fn did_you_mean(&self, name: &str) -> Vec<String> {
        let wanted = name.to_uppercase();
        let mut scored: Vec<(f64, &String)> = self
            .by_name
            .keys()
            .map(|k| (strsim::jaro_winkler(&wanted, k), k))
            .filter(|(score, _)| *score >= 0.85)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
    }

    pub fn search(&self, query: &SearchQuery) -> Result<SearchResult, CatalogError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let words = self.words(&query.text);
        for word in &words {
            clauses.push((Occur::Must, self.word_query(word)));
        }
        let filter = |field: Field, value: &str| -> (Occur, Box<dyn Query>) {
            let term = Term::from_field_text(field, value);
            (Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
        };
        if let Some(u) = query.unit_type {
            clauses.push(filter(self.fields.unit_type, u.as_str()));
        }
        if let Some(t) = query.temporality {
            clauses.push(filter(self.fields.temporality, t.as_str()));
        }
        if let Some(s) = &query.subject {
            clauses.push(filter(self.fields.subject, s));
        }
        if words.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        let searcher = self.reader.searcher();
        let (top, total) = searcher.search(
            &BooleanQuery::new(clauses),
            &(TopDocs::with_limit(MAX_HITS).order_by_score(), Count),
        )?;
        let mut ranked: Vec<(f32, usize)> = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            let entry = document.get_first(self.fields.entry).and_then(|v| v.as_u64()).unwrap_or(0);
            ranked.push((score, entry as usize));
        }
        // Without words every hit scores the same: list them by name. With words, ties (and
        // only ties) are broken by name so pages are stable.
        ranked.sort_by(|a, b| {
            let by_name = || self.entries[a.1].metadata.name.cmp(&self.entries[b.1].metadata.name);
            if words.is_empty() { by_name() } else { b.0.total_cmp(&a.0).then_with(by_name) }
        });
        let hits = ranked
            .into_iter()
            .skip((query.page - 1) * query.page_size)
            .take(query.page_size)
            .map(|(_, i)| hit(&self.entries[i]))
            .collect();
        Ok(SearchResult { total, hits })
    }

    /// The query text, tokenised and folded exactly as the documents were.
    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            if words.len() < 8 {
                words.push(token.text.clone());
            }
        }
        words
    }

    /// One query word against every text field: exact beats prefix beats a typo, and names
    /// and labels beat descriptions.
    fn word_query(&self, word: &str) -> Box<dyn Query> {
        let f = &self.fields;
        let distance = match word.chars().count() {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        };
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, weight) in [
            (f.name, 4.0),
            (f.label_nb, 3.0),
            (f.label_en, 3.0),
            (f.description_nb, 1.0),
            (f.description_en, 1.0),
        ] {
            let term = Term::from_field_text(field, word);
            let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            alternatives
                .push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), weight * 2.0))));
            let prefix = FuzzyTermQuery::new_prefix(term.clone(), 0, true);
            alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(prefix), weight))));
            if distance > 0 {
                let typo = FuzzyTermQuery::new_prefix(term, distance, true);
                alternatives
                    .push((Occur::Should, Box::new(BoostQuery::new(Box::new(typo), weight * 0.5))));
            }
        }
        Box::new(BooleanQuery::new(alternatives))
    }
}

pub fn hit(entry: &Entry) -> VariableHit {
    let m = &entry.metadata;
    VariableHit {
        datastore: entry.datastore.clone(),
        name: m.name.to_string(),
        label: m.label.clone(),
        unit_type: m.unit_type,
        temporality: m.temporality,
        data_type: m.data_type,
        subject_fields: m.subject_fields.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::demo_state;

    fn names(catalog: &Catalog, query: SearchQuery) -> Vec<String> {
        catalog.search(&query).unwrap().hits.into_iter().map(|h| h.name).collect()
    }

    fn text(text: &str) -> SearchQuery {
        SearchQuery { text: text.into(), page: 1, page_size: 100, ..SearchQuery::default() }
    }

    #[test]
    fn a_typo_still_finds_the_income_variables() {
        let state = demo_state();
        let hits = names(&state.catalog, text("inntkt"));
        assert!(hits.len() >= 10, "{hits:?}");
        assert!(hits.contains(&"INNTEKT_WLONN".to_owned()), "{hits:?}");
        assert!(hits.iter().take(10).all(|n| n.starts_with("INNTEKT_")), "{hits:?}");
    }

    #[test]
    fn a_prefix_finds_variables_as_the_user_types() {
        let state = demo_state();
        let hits = names(&state.catalog, text("sivst"));
        assert_eq!(hits.first().map(String::as_str), Some("SIVSTANDFDT_SIVSTAND"), "{hits:?}");
    }

    #[test]
    fn norwegian_letters_are_folded_both_ways() {
        let state = demo_state();
        // «Kjønn» is the label of BEFOLKNING_KJOENN; users type it with or without ø.
        for query in ["kjønn", "kjonn"] {
            let hits = names(&state.catalog, text(query));
            assert_eq!(
                hits.first().map(String::as_str),
                Some("BEFOLKNING_KJOENN"),
                "{query}: {hits:?}"
            );
        }
    }

    #[test]
    fn english_labels_and_descriptions_are_searched() {
        let state = demo_state();
        let hits = names(&state.catalog, text("marital status"));
        assert_eq!(hits.first().map(String::as_str), Some("SIVSTANDFDT_SIVSTAND"), "{hits:?}");
    }

    #[test]
    fn filters_restrict_hits_and_an_empty_query_lists_by_name() {
        let state = demo_state();
        let query = SearchQuery { temporality: Some(Temporality::Event), ..text("") };
        let result = state.catalog.search(&query).unwrap();
        assert!(result.total >= 5);
        assert!(result.hits.iter().all(|h| h.temporality == Temporality::Event));
        let listed: Vec<&String> = result.hits.iter().map(|h| &h.name).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);

        let jobs = SearchQuery { unit_type: Some(UnitType::Job), ..text("lønn") };
        let hits = state.catalog.search(&jobs).unwrap().hits;
        assert!(!hits.is_empty() && hits.iter().all(|h| h.unit_type == UnitType::Job), "{hits:?}");
    }

    #[test]
    fn pages_partition_the_hits() {
        let state = demo_state();
        let all = names(&state.catalog, text(""));
        assert_eq!(all.len(), 63);
        let page = |n| SearchQuery { page: n, page_size: 25, ..text("") };
        let mut joined = names(&state.catalog, page(1));
        joined.extend(names(&state.catalog, page(2)));
        joined.extend(names(&state.catalog, page(3)));
        assert_eq!(joined, all);
        assert!(names(&state.catalog, page(4)).is_empty());
    }

    #[test]
    fn did_you_mean_offers_the_closest_names() {
        let state = demo_state();
        assert_eq!(
            state.catalog.did_you_mean("INNTEKT_WLON").first().map(String::as_str),
            Some("INNTEKT_WLONN")
        );
        assert_eq!(
            state.catalog.did_you_mean("inntekt_wlonn").first().map(String::as_str),
            Some("INNTEKT_WLONN")
        );
        assert!(state.catalog.did_you_mean("XYZZY").is_empty());
    }
}
