//! The inference path (the last layer at the [CLS] position only, weights cast and q|k|v stacked
//! once per pass) gives the numbers of the whole-encoder pass it replaces: logits and pooled
//! vectors within 1e-5 in float32 and the same predictions, on the tiny random checkpoints and
//! minilm-l6; under bf16 within bfloat16's rounding; and a training step at [CLS] only keeps the
//! same dropout masks (logits and every gradient as the whole pass's). HF parity itself is
//! tests/parity.rs.

mod common;

use common::{fixtures, golden, max_abs_diff};
use heal::data::batching::Tokenized;
use heal::model::head::{predictions, Pooling};
use heal::model::precision::{self, Precision};
use heal::model::tokenizer::Encoded;
use heal::model::{Batch, SequenceClassifier};
use tch::{Device, Kind, Tensor};

const TOL: f64 = 1e-5;

/// The compute precision is process-wide: every test here holds this lock.
static PRECISION: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn precision_lock() -> std::sync::MutexGuard<'static, ()> {
    PRECISION.lock().unwrap_or_else(|e| e.into_inner())
}

/// The golden inputs of `name` (a padded batch) repeated `times` times, rows shuffled so that
/// padding sits in every position of the batch.
fn batch_of(name: &str, times: i64) -> Batch {
    let g = golden(name);
    let rep = |t: &Tensor| t.repeat([times, 1]);
    let ids = rep(&g["input_ids"]);
    let rows = ids.size()[0];
    let order = Tensor::randperm(rows, (Kind::Int64, Device::Cpu));
    Batch {
        input_ids: ids.index_select(0, &order),
        token_type_ids: rep(&g["token_type_ids"]).index_select(0, &order),
        attention_mask: rep(&g["attention_mask"]).index_select(0, &order),
        labels: Tensor::arange(rows, (Kind::Int64, Device::Cpu)).remainder(3),
    }
}

fn load(name: &str, pooling: Pooling) -> SequenceClassifier {
    let dir = match name {
        "minilm-l6" => {
            heal::defaults::minilm_l6_dir().expect("minilm-l6 is installed by .ci/setup")
        }
        _ => fixtures().join(name),
    };
    SequenceClassifier::load(&dir, 3, pooling, Device::Cpu)
        .unwrap()
        .0
}

/// The pass the inference path replaces: every layer at every position, pooled afterwards.
fn whole_pass(model: &SequenceClassifier, batch: &Batch, pooling: Pooling) -> (Tensor, Tensor) {
    tch::no_grad(|| {
        let states = model.hidden_states(batch, false);
        let pooled = pooling.pool(states.last().unwrap(), &batch.attention_mask);
        let logits = model.head.forward_t(&pooled, false);
        (pooled, logits)
    })
}

const MODELS: [&str; 4] = ["tiny-bert", "tiny-distilbert", "tiny-roberta", "minilm-l6"];

#[test]
fn float32_inference_equals_the_whole_pass() {
    let _lock = precision_lock();
    tch::manual_seed(0);
    for name in MODELS {
        for pooling in [Pooling::Cls, Pooling::Mean] {
            let model = load(name, pooling);
            let batch = batch_of(name, 4);
            let (pooled, logits) = whole_pass(&model, &batch, pooling);
            let what = format!("{name}, {pooling:?} pooling");
            let (fast_pooled, fast_logits) =
                model.inference(|m| (m.pooled(&batch), m.logits(&batch)));
            let d = max_abs_diff(&fast_pooled, &pooled);
            assert!(d < TOL, "{what}: pooled vectors differ by {d:e}");
            let d = max_abs_diff(&fast_logits, &logits);
            assert!(d < TOL, "{what}: logits differ by {d:e}");
            assert!(
                predictions(&fast_logits).equal(&predictions(&logits)),
                "{what}"
            );
            // The eval-mode pass without the inference set-up (per-call weights).
            let plain = tch::no_grad(|| model.forward_t(&batch, false));
            let d = max_abs_diff(&plain, &logits);
            assert!(d < TOL, "{what}: forward_t differs by {d:e}");
            // Every layer's pooled vectors (heal embed, the artefacts).
            let layers: Vec<usize> = (0..=model.config.num_layers as usize).collect();
            let set = tokenized_of(&model, &batch);
            let vectors = model.layer_vectors(&set, set.len(), &layers, pooling);
            let states = tch::no_grad(|| model.hidden_states(&batch, false));
            // Some layers, out of order and repeated: the pass stops at the highest (at [CLS]
            // only there under [CLS] pooling).
            let some = model.layer_vectors(&set, set.len(), &[1, 0, 1], pooling);
            assert_eq!(some.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 0, 1]);
            for (layer, v) in vectors.into_iter().chain(some) {
                let expected = pooling.pool(&states[layer], &batch.attention_mask);
                let d = max_abs_diff(&v, &expected);
                assert!(d < TOL, "{what}: layer {layer}'s vectors differ by {d:e}");
            }
        }
    }
}

/// The rows of a padded batch as tokenised examples (padding dropped, labels kept), which the
/// evaluation batches pad again in their own order.
fn tokenized_of(model: &SequenceClassifier, batch: &Batch) -> Tokenized {
    let rows = |t: &Tensor| Vec::<Vec<i64>>::try_from(t).unwrap();
    let (ids, types, mask) = (
        rows(&batch.input_ids),
        rows(&batch.token_type_ids),
        rows(&batch.attention_mask),
    );
    let encoded = (0..ids.len())
        .map(|r| {
            let len = mask[r].iter().filter(|&&m| m == 1).count();
            Encoded {
                ids: ids[r][..len].to_vec(),
                type_ids: types[r][..len].to_vec(),
            }
        })
        .collect();
    Tokenized {
        encoded,
        labels: Vec::<i64>::try_from(&batch.labels).unwrap(),
        pad_id: model.config.pad_token_id,
        use_token_types: model.config.uses_token_types(),
        max_width: model.config.max_tokens(),
    }
}

/// Evaluation batches shared out to one worker per thread (`Inference::map_batches`) give
/// what one thread running them in turn gives, bit for bit (every product single-threaded
/// either way), each example's numbers in its own row: every layer's vectors, predictions and
/// the summed loss, for any worker count, with more batches than workers and a last batch
/// that is short.
#[test]
fn batches_shared_between_workers_equal_one_thread_in_turn() {
    let _lock = precision_lock();
    let threads = tch::get_num_threads();
    tch::manual_seed(3);
    for name in ["tiny-bert", "tiny-roberta"] {
        let model = load(name, Pooling::Mean);
        // 11 batches of 3 (the last of 2) with lengths that differ from batch to batch.
        let mut set = tokenized_of(&model, &batch_of(name, 11));
        set.encoded.truncate(32);
        set.labels.truncate(32);
        for (i, e) in set.encoded.iter_mut().enumerate() {
            let keep = (e.ids.len() - i % 3).max(2);
            e.ids.truncate(keep);
            e.type_ids.truncate(keep);
        }
        let layers: Vec<usize> = (0..=model.config.num_layers as usize).collect();
        let run = |n: i32| {
            tch::set_num_threads(n);
            let vectors = model.layer_vectors(&set, 3, &layers, Pooling::Mean);
            let eval = heal::train::eval::evaluate(&model, &set, 3);
            let order = model.inference(|m| {
                m.map_batches(&set, 3, |_, b| b.input_ids.size()[0])
                    .into_iter()
                    .map(|(rows, n)| (rows, n as usize))
                    .collect::<Vec<_>>()
            });
            (vectors, eval, order)
        };
        let (one, one_eval, _) = run(1);
        for n in [2, 3] {
            let (many, eval, order) = run(n);
            let expected: Vec<_> = set
                .eval_batches(3)
                .into_iter()
                .map(|rows| {
                    let n = rows.len();
                    (rows, n)
                })
                .collect();
            assert_eq!(order, expected, "{name}, {n} threads: batch order");
            for ((layer, a), (_, b)) in one.iter().zip(&many) {
                assert!(
                    a.equal(b),
                    "{name}, {n} threads: layer {layer} differs by {:e}",
                    max_abs_diff(a, b)
                );
            }
            assert_eq!(eval.predicted, one_eval.predicted, "{name}, {n} threads");
            assert_eq!(eval.loss, one_eval.loss, "{name}, {n} threads: loss");
        }
        // The examples' rows: the vectors are each example's own (a one-example pass).
        let alone = |i: usize| {
            let mut one_set = set.clone();
            one_set.encoded = vec![set.encoded[i].clone()];
            one_set.labels = vec![set.labels[i]];
            model.layer_vectors(&one_set, 1, &[1], Pooling::Mean)[0]
                .1
                .get(0)
        };
        for i in [0, 17, 31] {
            let d = max_abs_diff(&alone(i), &one[1].1.get(i as i64));
            assert!(
                d < TOL,
                "{name}: example {i}'s layer-1 vector differs by {d:e}"
            );
        }
    }
    tch::set_num_threads(threads);
}

#[test]
fn bf16_inference_with_weights_cast_once_equals_per_call_casts() {
    let _lock = precision_lock();
    tch::manual_seed(1);
    for name in MODELS {
        let model = load(name, Pooling::Cls);
        let batch = batch_of(name, 4);
        let (_, fp32) = whole_pass(&model, &batch, Pooling::Cls);
        precision::set(Precision::Bf16);
        let (pooled, logits) = whole_pass(&model, &batch, Pooling::Cls);
        let (fast_pooled, fast_logits) = model.inference(|m| (m.pooled(&batch), m.logits(&batch)));
        precision::set(Precision::Fp32);
        // The same bfloat16 weights and inputs: what differs is the products' summation order
        // (another row count), a few bfloat16 roundings apart at most, far below bf16 vs fp32.
        let scale = pooled.abs().max().double_value(&[]);
        let d = max_abs_diff(&fast_pooled, &pooled);
        let to_fp32 = max_abs_diff(&logits, &fp32);
        assert!(
            d < 0.02 * scale,
            "{name}: pooled vectors differ by {d:e} (scale {scale})"
        );
        let d = max_abs_diff(&fast_logits, &logits);
        assert!(
            d < 0.02 * logits.abs().max().double_value(&[]).max(1.0),
            "{name}: bf16 logits differ by {d:e} (bf16 vs fp32: {to_fp32:e})"
        );
        // Predictions agree wherever the two best logits are not within that rounding.
        let top = logits.topk(2, -1, true, true).0;
        let margin = (top.select(1, 0) - top.select(1, 1)).gt(2.0 * d + 1e-6);
        let same = predictions(&fast_logits).eq_tensor(&predictions(&logits));
        assert!(
            same.logical_or(&margin.logical_not())
                .all()
                .to_kind(Kind::Int64)
                .int64_value(&[])
                == 1,
            "{name}: bf16 predictions differ"
        );
    }
}

/// Logits and every parameter's gradient of one training step's loss.
fn step(model: &SequenceClassifier, batch: &Batch, whole: bool) -> (Tensor, Vec<(String, Tensor)>) {
    heal::model::dropout::seed(11);
    for (_, v) in model.vs.variables() {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let logits = if whole {
        let states = model.hidden_states(batch, true);
        let pooled = model
            .pooling
            .pool(states.last().unwrap(), &batch.attention_mask);
        model.head.forward_t(&pooled, true)
    } else {
        model.forward_t(batch, true)
    };
    let loss = logits.cross_entropy_for_logits(&batch.labels);
    loss.backward();
    let mut grads: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .map(|(n, v)| {
            let g = v.grad();
            (n, if g.defined() { g.copy() } else { g })
        })
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    (logits.detach(), grads)
}

#[test]
fn training_at_the_cls_position_keeps_dropout_masks_and_gradients() {
    let _lock = precision_lock();
    tch::manual_seed(2);
    for name in ["tiny-bert", "tiny-distilbert", "tiny-roberta"] {
        let model = load(name, Pooling::Cls);
        let batch = batch_of(name, 4);
        let (whole_logits, whole_grads) = step(&model, &batch, true);
        let (logits, grads) = step(&model, &batch, false);
        let d = max_abs_diff(&logits, &whole_logits);
        assert!(d < TOL, "{name}: training logits differ by {d:e}");
        // Dropout is on: without the same masks the logits would differ by far more.
        let (_, eval_logits) = whole_pass(&model, &batch, Pooling::Cls);
        assert!(
            max_abs_diff(&logits, &eval_logits) > 1e-3,
            "{name}: dropout ran"
        );
        for ((n, g), (_, w)) in grads.iter().zip(&whole_grads) {
            if !w.defined() {
                assert!(!g.defined(), "{name}: {n}");
                continue;
            }
            let d = max_abs_diff(g, w);
            let scale = w.abs().max().double_value(&[]).max(1e-3);
            assert!(
                d < TOL * scale.max(1.0),
                "{name}: gradient of {n} differs by {d:e}"
            );
        }
    }
}

#[test]
fn a_batch_without_padding_attends_without_a_mask_and_agrees_with_a_padded_one() {
    let _lock = precision_lock();
    for name in MODELS {
        let model = load(name, Pooling::Cls);
        let padded = batch_of(name, 1);
        // The longest row, alone: no padding, so attention runs without a mask.
        let lengths = padded.attention_mask.sum_dim_intlist(1, false, Kind::Int64);
        let row = lengths.argmax(0, false).int64_value(&[]);
        let width = lengths.max().int64_value(&[]);
        assert!(
            lengths.min().int64_value(&[]) < width,
            "{name}: the golden batch has padding"
        );
        let pick = |t: &Tensor| t.narrow(0, row, 1).narrow(1, 0, width).copy();
        let alone = Batch {
            input_ids: pick(&padded.input_ids),
            token_type_ids: pick(&padded.token_type_ids),
            attention_mask: pick(&padded.attention_mask),
            labels: padded.labels.narrow(0, row, 1).copy(),
        };
        let (in_batch, alone_logits) =
            model.inference(|m| (m.logits(&padded).narrow(0, row, 1), m.logits(&alone)));
        let d = max_abs_diff(&alone_logits, &in_batch);
        assert!(
            d < TOL,
            "{name}: the row alone differs from the row in the batch by {d:e}"
        );
    }
}

/// Under bf16 on the CPU a batch is padded to a multiple of 4 (`precision::pad_multiple`:
/// oneDNN builds a kernel per matrix shape), never past `max_width` and never shorter than its
/// longest example; in float32 it keeps its exact width. The extra columns are masked like any
/// padding, so logits and every layer's pooled vectors are the exact-width batch's: within
/// 1e-5 in float32 (padded by hand), within bfloat16's rounding under bf16.
#[test]
fn batches_padded_to_a_multiple_give_the_exact_width_numbers() {
    let _lock = precision_lock();
    tch::manual_seed(5);
    for name in MODELS {
        let model = load(name, Pooling::Mean);
        let vocab = model.config.vocab_size;
        let lengths = [5usize, 3, 7, 6];
        let set = Tokenized {
            encoded: lengths
                .iter()
                .enumerate()
                .map(|(r, &len)| Encoded {
                    // Ids clear of the special tokens at the start of every vocabulary.
                    ids: (0..len as i64)
                        .map(|t| 5 + (7 * t + r as i64) % (vocab - 5))
                        .collect(),
                    type_ids: vec![0; len],
                })
                .collect(),
            labels: vec![0, 1, 2, 1],
            pad_id: model.config.pad_token_id,
            use_token_types: model.config.uses_token_types(),
            max_width: 128,
        };
        let rows: Vec<usize> = (0..lengths.len()).collect();
        // The width rule: rounded up, capped by max_width, never below the longest (7).
        for (max_width, multiple, want) in [
            (128, 1, 7),
            (128, 4, 8),
            (128, 16, 16),
            (10, 8, 8),
            (10, 16, 10),
            (6, 4, 7),
        ] {
            let s = Tokenized {
                max_width,
                ..set.clone()
            };
            assert_eq!(
                s.width(&rows, multiple),
                want,
                "{name}: max {max_width}, multiple {multiple}"
            );
        }
        let capped = Tokenized {
            max_width: 10,
            ..set.clone()
        };

        let layers: Vec<usize> = (0..=model.config.num_layers as usize).collect();
        let numbers = |batch: &Batch| {
            model.inference(|m| {
                let pooled: Vec<Tensor> = m
                    .states(batch, &layers, false)
                    .iter()
                    .map(|s| Pooling::Mean.pool(s, &batch.attention_mask))
                    .collect();
                (m.logits(batch), pooled)
            })
        };
        let narrow = |b: &Batch, width: i64| Batch {
            input_ids: b.input_ids.narrow(1, 0, width).copy(),
            token_type_ids: b.token_type_ids.narrow(1, 0, width).copy(),
            attention_mask: b.attention_mask.narrow(1, 0, width).copy(),
            labels: b.labels.copy(),
        };

        // float32: exact width; padded by hand to 8 gives the same numbers.
        let exact = set.collate(&rows, Device::Cpu);
        assert_eq!(
            exact.input_ids.size(),
            [4, 7],
            "{name}: fp32 keeps the width"
        );
        let widen = |t: &Tensor, fill: i64| {
            Tensor::cat(
                &[
                    t.shallow_clone(),
                    Tensor::full([4, 1], fill, (Kind::Int64, Device::Cpu)),
                ],
                1,
            )
        };
        let by_hand = Batch {
            input_ids: widen(&exact.input_ids, set.pad_id),
            token_type_ids: widen(&exact.token_type_ids, 0),
            attention_mask: widen(&exact.attention_mask, 0),
            labels: exact.labels.copy(),
        };
        let (logits, pooled) = numbers(&exact);
        let (wide_logits, wide_pooled) = numbers(&by_hand);
        let d = max_abs_diff(&wide_logits, &logits);
        assert!(d < TOL, "{name}: fp32 logits padded to 8 differ by {d:e}");
        for (l, (a, b)) in pooled.iter().zip(&wide_pooled).enumerate() {
            let d = max_abs_diff(a, b);
            assert!(
                d < TOL,
                "{name}: fp32 layer {l} padded to 8 differs by {d:e}"
            );
        }

        // bf16 on the CPU: collate pads to 8 where the products run on oneDNN's bfloat16
        // kernels (on float32 kernels widths stay exact: precision::pad_multiple); padded to 8
        // either way, the batch gives the numbers it gives cut to 7.
        precision::set(Precision::Bf16);
        let multiple = precision::pad_multiple(Device::Cpu) as i64;
        let collated = set.collate(&rows, Device::Cpu);
        let capped_batch = capped.collate(&rows, Device::Cpu);
        let padded = if collated.input_ids.size()[1] == 8 {
            narrow(&collated, 8)
        } else {
            Batch {
                input_ids: widen(&collated.input_ids, set.pad_id),
                token_type_ids: widen(&collated.token_type_ids, 0),
                attention_mask: widen(&collated.attention_mask, 0),
                labels: collated.labels.copy(),
            }
        };
        let cut = narrow(&padded, 7);
        let (bf_logits, bf_pooled) = numbers(&padded);
        let (cut_logits, cut_pooled) = numbers(&cut);
        precision::set(Precision::Fp32);
        let expected = (7 + multiple - 1) / multiple * multiple;
        assert_eq!(
            collated.input_ids.size(),
            [4, expected],
            "{name}: bf16 pads to a multiple of {multiple}"
        );
        assert_eq!(capped_batch.input_ids.size(), [4, expected], "{name}");
        let bf16_vs_fp32 = max_abs_diff(&cut_logits, &logits);
        let d = max_abs_diff(&bf_logits, &cut_logits);
        assert!(
            d < 0.02 * cut_logits.abs().max().double_value(&[]).max(1.0),
            "{name}: bf16 logits padded to 8 differ by {d:e} (bf16 vs fp32: {bf16_vs_fp32:e})"
        );
        for (l, (a, b)) in bf_pooled.iter().zip(&cut_pooled).enumerate() {
            let scale = b.abs().max().double_value(&[]);
            let d = max_abs_diff(a, b);
            assert!(
                d < 0.02 * scale,
                "{name}: bf16 layer {l} padded to 8 differs by {d:e} (scale {scale})"
            );
        }
    }
}
