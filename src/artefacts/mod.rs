//! The study's compact artefacts of a run, RUN/analysis/ (format: [`crate::run_dir::analysis`]),
//! made while the run goes so that no study figure needs a checkpoint: the sample of the
//! evaluation split (`sample`), its pooled vectors per layer (`vectors`), and the weights'
//! statistics and histograms (`weights`). The trainer calls this; it never imports `analysis/`.

mod sample;
mod vectors;
mod weights;

pub use sample::stratified_sample;
pub use vectors::{layer_matrices, sample_set};
pub use weights::StartWeights;

use crate::data::batching::Tokenized;
use crate::model::SequenceClassifier;
use crate::run_dir::analysis::{AnalysisVectors, SAMPLE_SEED};
use crate::run_dir::RunDir;
use crate::train::config::EmbeddingStage;
use ndarray::Array2;
use std::time::Instant;

/// What a run keeps from before training for its artefacts: the sample, the weights it starts
/// from, and the final layer's vectors at the pretrained (corrupt = none) or corrupted stage.
/// Everything here is a function of the checkpoint, the data and the (seeded) damage, so a
/// resumed run makes it again in its preparation.
pub struct Start {
    sample: Vec<usize>,
    set: Tokenized,
    eval_examples: usize,
    batch_size: usize,
    weights: StartWeights,
    vectors: Vec<(EmbeddingStage, Array2<f32>)>,
}

impl Start {
    /// Before the damage: draws the sample of at most `examples` of `eval`, copies the weights
    /// as loaded (`initialised`: the head tensors drawn afresh), and, for a run that damages
    /// nothing (`clean`), takes the pretrained vectors.
    pub fn before_damage(
        model: &SequenceClassifier,
        eval: &Tokenized,
        examples: usize,
        batch_size: usize,
        initialised: &[String],
        clean: bool,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let sample = stratified_sample(&eval.labels, examples, SAMPLE_SEED);
        let mut start = Start {
            set: sample_set(eval, &sample),
            sample,
            eval_examples: eval.len(),
            batch_size,
            weights: StartWeights::pretrained(model, initialised),
            vectors: Vec::new(),
        };
        if clean {
            start.keep_final_layer(model, EmbeddingStage::Pretrained)?;
        }
        log::debug!(
            "analysis artefacts: the pretrained stage took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(start)
    }

    /// After the damage: copies what it changed and takes the corrupted vectors.
    pub fn after_damage(&mut self, model: &SequenceClassifier) -> anyhow::Result<()> {
        let started = Instant::now();
        self.weights.note_damage(model);
        self.keep_final_layer(model, EmbeddingStage::Corrupted)?;
        log::debug!(
            "analysis artefacts: the corrupted stage took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn keep_final_layer(
        &mut self,
        model: &SequenceClassifier,
        stage: EmbeddingStage,
    ) -> anyhow::Result<()> {
        let last = model.config.num_layers as usize;
        let mut layers = layer_matrices(model, &self.set, &[last], self.batch_size)?;
        self.vectors.extend(layers.pop().map(|(_, a)| (stage, a)));
        Ok(())
    }

    /// Writes RUN/analysis/ (each file atomically) for the model at its best epoch: every
    /// layer's vectors of the sample, the kept stages' final layer, and weights.json.
    pub fn write(&self, run: &RunDir, model: &SequenceClassifier) -> anyhow::Result<()> {
        let started = Instant::now();
        let last = model.config.num_layers as usize;
        let layers: Vec<usize> = (0..=last).collect();
        let mut matrices: std::collections::BTreeMap<_, _> = self
            .vectors
            .iter()
            .map(|(stage, a)| ((*stage, last), a.clone()))
            .collect();
        for (layer, a) in layer_matrices(model, &self.set, &layers, self.batch_size)? {
            matrices.insert((EmbeddingStage::Best, layer), a);
        }
        let vectors = AnalysisVectors {
            layers: matrices,
            labels: self.set.labels.clone(),
            examples: self.sample.clone(),
            sample_seed: SAMPLE_SEED,
            eval_examples: self.eval_examples,
            pooling: model.pooling,
        };
        let weights = self.weights.summarise(model)?;
        std::fs::create_dir_all(run.analysis_dir())?;
        weights.write(&run.analysis_weights())?;
        vectors.write(&run.analysis_vectors())?;
        let bytes: u64 = [run.analysis_vectors(), run.analysis_weights()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        log::info!(
            "analysis artefacts: {} examples, {:.1} MB, written in {:.1} s",
            self.sample.len(),
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
