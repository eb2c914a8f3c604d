//! The datasets `heal data fetch` knows: their hub repositories, configs, columns and class
//! names.

use crate::error::user;

/// One entry of the registry: where a dataset lives on the hub and which columns to read.
/// Facts from the dataset cards; label names from the parquet files' `features` win when the
/// files carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubDataset {
    pub name: &'static str,
    pub repo: &'static str,
    pub config: &'static str,
    pub text: &'static str,
    pub text_pair: Option<&'static str>,
    pub label: &'static str,
    pub label_names: &'static [&'static str],
    /// One line for `--help` and SOURCE.json.
    pub about: &'static str,
}

/// Every dataset `heal data fetch` knows.
pub const DATASETS: &[HubDataset] = &[
    HubDataset {
        name: "sst2",
        repo: "stanfordnlp/sst2",
        config: "default",
        text: "sentence",
        text_pair: None,
        label: "label",
        label_names: &["negative", "positive"],
        about: "SST-2 movie-review sentences, 2 classes; test labels are hidden",
    },
    HubDataset {
        name: "imdb",
        repo: "stanfordnlp/imdb",
        config: "plain_text",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["neg", "pos"],
        about: "IMDb movie reviews, 2 classes; the unlabelled `unsupervised` split is skipped",
    },
    HubDataset {
        name: "ag_news",
        repo: "fancyzhx/ag_news",
        config: "default",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["World", "Sports", "Business", "Sci/Tech"],
        about: "AG News titles and descriptions, 4 topics",
    },
    HubDataset {
        name: "emotion",
        repo: "dair-ai/emotion",
        config: "split",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["sadness", "joy", "love", "anger", "fear", "surprise"],
        about: "English tweets, 6 emotions",
    },
    HubDataset {
        name: "dbpedia",
        repo: "fancyzhx/dbpedia_14",
        config: "dbpedia_14",
        text: "content",
        text_pair: None,
        label: "label",
        label_names: &[
            "Company",
            "EducationalInstitution",
            "Artist",
            "Athlete",
            "OfficeHolder",
            "MeanOfTransportation",
            "Building",
            "NaturalPlace",
            "Village",
            "Animal",
            "Plant",
            "Album",
            "Film",
            "WrittenWork",
        ],
        about: "DBpedia-14 abstracts (`content`; titles unused), 14 classes",
    },
    HubDataset {
        name: "twitter-financial-news-topic",
        repo: "zeroshot/twitter-financial-news-topic",
        config: "default",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &[
            "Analyst Update",
            "Fed | Central Banks",
            "Company | Product News",
            "Treasuries | Corporate Debt",
            "Dividend",
            "Earnings",
            "Energy | Oil",
            "Financials",
            "Currencies",
            "General News | Opinion",
            "Gold | Metals | Materials",
            "IPO",
            "Legal | Regulation",
            "M&A | Investments",
            "Macro",
            "Markets",
            "Politics",
            "Personnel Change",
            "Stock Commentary",
            "Stock Movement",
        ],
        about: "finance tweets, 20 topics",
    },
    HubDataset {
        name: "mrpc",
        repo: "nyu-mll/glue",
        config: "mrpc",
        text: "sentence1",
        text_pair: Some("sentence2"),
        label: "label",
        label_names: &["not_equivalent", "equivalent"],
        about: "MRPC sentence pairs, paraphrase or not",
    },
    HubDataset {
        name: "rte",
        repo: "nyu-mll/glue",
        config: "rte",
        text: "sentence1",
        text_pair: Some("sentence2"),
        label: "label",
        label_names: &["entailment", "not_entailment"],
        about: "RTE sentence pairs, entailment or not; test labels are hidden",
    },
];

/// The registry entry called `name`, if any.
pub fn find(name: &str) -> Option<&'static HubDataset> {
    DATASETS.iter().find(|d| d.name == name)
}

/// The registry entry called `name`, or a user error listing the valid names.
pub fn dataset(name: &str) -> anyhow::Result<&'static HubDataset> {
    find(name).ok_or_else(|| {
        user(format!(
            "unknown dataset {name:?}: heal data fetch knows {}",
            names().join(", ")
        ))
    })
}

/// The registry's names, in table order.
pub fn names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

/// The registry as lines for `--help`.
pub fn help_table() -> String {
    let mut text = String::from("Datasets:\n");
    for d in DATASETS {
        text.push_str(&format!(
            "  {}\n      {}, config {}: {}\n",
            d.name, d.repo, d.config, d.about
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for d in DATASETS {
            assert_eq!(dataset(d.name).unwrap(), d);
            assert!(!d.label_names.is_empty());
        }
        let err = dataset("nope").unwrap_err().to_string();
        assert!(err.contains("sst2") && err.contains("rte"), "{err}");
    }
}
