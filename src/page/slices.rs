//! What the views ask of a run, and where the answers come from: a live run keeps its trace
//! on the device and reads back only what a view draws (on this thread, or in the model worker
//! that ran it); an imported trace (or a training probe) is on the host already and is answered
//! there by `analysis`. Either way a view gets the same plain data, kept in a small cache per run.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::analysis::diagnostics::measured_trace_bytes;
use crate::analysis::predictions::{position_logits, top_k};
use crate::analysis::{
    Matrix, head_matrix, head_sharpness, head_similarity, mean_over_heads, similarity_from_gram,
    thumbnails,
};
use crate::model::{AttentionCapture, DeviceTrace, Role, Site, Trace};
use crate::structure::HeadSummary;

use super::explorer::HeadChoice;

/// Full-resolution maps kept on the host per run at most; older ones are read again if asked.
/// At 1,024 tokens a map is 4 MiB, so the cache stays under 32 MiB.
pub const MAX_CACHED_MAPS: usize = 8;

/// Predictions listed per position.
pub const TOP_K: usize = 5;

/// Where a run's captures are.
#[derive(Debug)]
pub enum RunTrace {
    /// Read back already: an imported trace file, or a training probe.
    Host(Trace),
    /// Still on the device the model ran on.
    Device(DeviceTrace),
    /// On the device of another thread (the model worker), which answers [`SliceKey`]s.
    Remote(RemoteTrace),
}

/// What a [`SliceSource`] answers, once it has.
pub type Answer<T> = Pin<Box<dyn Future<Output = Result<T, String>>>>;

/// Answers a run's [`SliceKey`]s from where its trace lives, reduced there first.
pub trait SliceSource: std::fmt::Debug + Send + Sync {
    /// The answers to `keys`, and the bytes reading them back from the device moved.
    fn slices(&self, keys: Vec<SliceKey>) -> Answer<(Vec<(SliceKey, Slice)>, u64)>;
    /// The whole trace, read back.
    fn whole(&self) -> Answer<Trace>;
}

/// A trace that lives elsewhere: its shape, and who answers for it.
#[derive(Debug, Clone)]
pub struct RemoteTrace {
    /// Layers with attention.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// Bytes the captures take on their device.
    pub bytes: u64,
    /// Answers the keys.
    pub source: Arc<dyn SliceSource>,
}

impl RunTrace {
    /// Layers with attention.
    pub fn layers(&self) -> usize {
        match self {
            // A partial trace may hold some layers only: the count is the model's.
            Self::Host(trace) => trace
                .attention
                .iter()
                .map(|a| a.layer + 1)
                .max()
                .unwrap_or(0),
            Self::Device(trace) => trace.layers(),
            Self::Remote(trace) => trace.layers,
        }
    }

    /// Heads per layer.
    pub fn heads(&self) -> usize {
        match self {
            Self::Host(trace) => trace.attention.first().map_or(0, |a| a.heads),
            Self::Device(trace) => trace.heads(),
            Self::Remote(trace) => trace.heads,
        }
    }

    /// Bytes the captures take where they are.
    pub fn bytes(&self) -> u64 {
        match self {
            Self::Host(trace) => measured_trace_bytes(trace),
            Self::Device(trace) => trace.device_bytes() as u64,
            Self::Remote(trace) => trace.bytes,
        }
    }
}

/// One thing a view asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SliceKey {
    /// One head's map, or the mean of heads, at full resolution (sequence 0).
    Map {
        /// Layer, from 0.
        layer: usize,
        /// Which head.
        head: HeadChoice,
    },
    /// Every head of a layer, at most `size × size` cells each.
    Thumbnails {
        /// Layer, from 0.
        layer: usize,
        /// Cells a side, at most.
        size: usize,
    },
    /// The layer's head-to-head cosine similarity.
    Similarity {
        /// Layer, from 0.
        layer: usize,
    },
    /// Every head's entropy and sharpness.
    Summaries,
    /// The top-[`TOP_K`] tokens at the positions the predictions panel lists (a run's
    /// positions are fixed by its tokens).
    Predictions,
}

/// The answer to a [`SliceKey`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Slice {
    /// A `[queries, keys]` map.
    Map(#[serde(with = "shared")] Arc<Matrix>),
    /// A layer's thumbnails, one head each.
    Thumbnails(#[serde(with = "shared")] Arc<AttentionCapture>),
    /// A `[heads, heads]` similarity.
    Similarity(#[serde(with = "shared")] Arc<Matrix>),
    /// Every head of every layer, measured.
    Summaries(#[serde(with = "shared")] Arc<Vec<HeadSummary>>),
    /// Per listed position, `(id, probability)` most likely first.
    Predictions(#[serde(with = "shared")] Arc<Vec<Vec<(u32, f32)>>>),
}

/// An `Arc` crosses to the model worker as what it holds (`#[serde(with = "…")]`).
pub(crate) mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes what `value` holds.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Arc<T>,
        to: S,
    ) -> Result<S::Ok, S::Error> {
        T::serialize(value, to)
    }

    /// Reads a value and shares it.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        from: D,
    ) -> Result<Arc<T>, D::Error> {
        T::deserialize(from).map(Arc::new)
    }
}

impl Slice {
    /// Bytes of numbers it holds: what reading it back from the device moved.
    pub fn bytes(&self) -> u64 {
        let count = match self {
            Self::Map(matrix) | Self::Similarity(matrix) => matrix.values.len(),
            Self::Thumbnails(capture) => capture.values.len(),
            Self::Summaries(heads) => 4 * heads.len(),
            Self::Predictions(rows) => rows.iter().map(|row| 2 * row.len()).sum(),
        };
        4 * count as u64
    }

    /// The map, if this is one.
    pub fn map(&self) -> Option<&Arc<Matrix>> {
        match self {
            Self::Map(matrix) | Self::Similarity(matrix) => Some(matrix),
            _ => None,
        }
    }
}

/// What the host has of a run: answers read back so far, and how many bytes that took.
#[derive(Debug, Default)]
pub struct SliceCache {
    entries: Mutex<HashMap<SliceKey, Slice>>,
    /// Map keys in the order they came, for dropping the oldest.
    maps: Mutex<VecDeque<SliceKey>>,
    read_bytes: AtomicU64,
    last_read_bytes: AtomicU64,
}

/// A run's trace with the answers the views got from it.
#[derive(Debug)]
pub struct TraceSlices {
    /// Where the captures are.
    pub trace: RunTrace,
    /// The positions the predictions panel lists.
    pub positions: Vec<usize>,
    cache: SliceCache,
}

impl TraceSlices {
    /// A run's captures, with nothing read yet; `positions` are those the predictions panel lists.
    pub fn new(trace: RunTrace, positions: Vec<usize>) -> Self {
        Self {
            trace,
            positions,
            cache: SliceCache::default(),
        }
    }

    /// Layers with attention.
    pub fn layers(&self) -> usize {
        self.trace.layers()
    }

    /// Heads per layer.
    pub fn heads(&self) -> usize {
        self.trace.heads()
    }

    /// The answer to `key` if the host has it. A host trace answers at once (and keeps it); a
    /// device trace only once [`Self::load`] read it.
    pub fn get(&self, key: SliceKey) -> Option<Slice> {
        if let Some(slice) = self.lock().get(&key).cloned() {
            return Some(slice);
        }
        let RunTrace::Host(trace) = &self.trace else {
            return None;
        };
        let slice = host_slice(trace, key, &self.positions)?;
        self.keep(key, slice.clone());
        Some(slice)
    }

    /// Reads from the device what `keys` ask for and the host lacks, each reduced there first;
    /// returns the bytes this read moved.
    pub async fn load(&self, keys: &[SliceKey]) -> Result<u64, String> {
        let missing: Vec<SliceKey> = keys
            .iter()
            .copied()
            .filter(|&key| self.get(key).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let trace = match &self.trace {
            RunTrace::Device(trace) => trace,
            RunTrace::Remote(remote) => {
                let (answers, moved) = remote.source.slices(missing).await?;
                for (key, slice) in answers {
                    self.keep(key, slice);
                }
                self.count_read(moved);
                return Ok(moved);
            }
            RunTrace::Host(_) => {
                return Err(match missing[0] {
                    SliceKey::Map { layer, .. }
                    | SliceKey::Thumbnails { layer, .. }
                    | SliceKey::Similarity { layer } => {
                        format!("this trace does not hold layer {layer}'s attention")
                    }
                    SliceKey::Predictions => "this trace holds no logits".into(),
                    SliceKey::Summaries => "this trace holds no attention".into(),
                });
            }
        };
        let mut moved = 0;
        // Thumbnails of several layers (the model view) come back in one transaction.
        let mut sizes: Vec<usize> = Vec::new();
        for key in &missing {
            if let SliceKey::Thumbnails { size, .. } = *key
                && !sizes.contains(&size)
            {
                sizes.push(size);
            }
        }
        for size in sizes {
            let layers: Vec<usize> = missing
                .iter()
                .filter_map(|key| match *key {
                    SliceKey::Thumbnails { layer, size: s } if s == size => Some(layer),
                    _ => None,
                })
                .collect();
            let all = trace
                .thumbnails_of(&layers, size)
                .await
                .map_err(|error| error.to_string())?;
            for (layer, capture) in layers.into_iter().zip(all) {
                let slice = Slice::Thumbnails(Arc::new(capture));
                moved += slice.bytes();
                self.keep(SliceKey::Thumbnails { layer, size }, slice);
            }
        }
        for key in missing {
            if matches!(key, SliceKey::Thumbnails { .. }) {
                continue;
            }
            let slice = device_slice(trace, key, &self.positions)
                .await
                .map_err(|error| error.to_string())?;
            moved += slice.bytes();
            self.keep(key, slice);
        }
        self.count_read(moved);
        Ok(moved)
    }

    /// Counts `moved` bytes read back from the device.
    fn count_read(&self, moved: u64) {
        self.cache.read_bytes.fetch_add(moved, Ordering::Relaxed);
        self.cache.last_read_bytes.store(moved, Ordering::Relaxed);
    }

    /// Keeps `slice` as the answer to `key`, read back by whoever ran the trace (with
    /// `moved` bytes); a remote run's first answers come with it.
    pub fn remember(&self, key: SliceKey, slice: Slice, moved: u64) {
        self.keep(key, slice);
        self.count_read(moved);
    }

    /// Bytes read back from the device so far, and by the last [`Self::load`] that read any.
    pub fn read_bytes(&self) -> (u64, u64) {
        (
            self.cache.read_bytes.load(Ordering::Relaxed),
            self.cache.last_read_bytes.load(Ordering::Relaxed),
        )
    }

    /// The whole trace on the host: itself, or everything read back from the device a tensor
    /// at a time (`progress` hears the tensors read and their number).
    pub async fn whole(&self, progress: impl FnMut(usize, usize)) -> Result<Trace, String> {
        match &self.trace {
            RunTrace::Host(trace) => Ok(trace.clone()),
            RunTrace::Device(trace) => trace.read_all(progress).await.map_err(|e| e.to_string()),
            RunTrace::Remote(remote) => remote.source.whole().await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SliceKey, Slice>> {
        self.cache
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keep(&self, key: SliceKey, slice: Slice) {
        let mut entries = self.lock();
        if matches!(key, SliceKey::Map { .. }) {
            let mut maps = self
                .cache
                .maps
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            maps.push_back(key);
            while maps.len() > MAX_CACHED_MAPS {
                if let Some(oldest) = maps.pop_front() {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, slice);
    }
}

/// `key` answered from a host trace, as `analysis` computes it.
fn host_slice(trace: &Trace, key: SliceKey, positions: &[usize]) -> Option<Slice> {
    let layer = |layer: usize| trace.attention_of(layer);
    Some(match key {
        SliceKey::Map { layer: index, head } => {
            let attention = layer(index)?;
            Slice::Map(Arc::new(match head {
                HeadChoice::Mean => mean_over_heads(attention, 0)?,
                HeadChoice::Head(head) => head_matrix(attention, 0, head)?,
            }))
        }
        SliceKey::Thumbnails { layer: index, size } => {
            Slice::Thumbnails(Arc::new(thumbnails(layer(index)?, 0, size)?))
        }
        SliceKey::Similarity { layer: index } => {
            Slice::Similarity(Arc::new(head_similarity(layer(index)?, 0)?))
        }
        // Causality does not change a host trace's entropies; the opening choice of an
        // imported trace counts every query.
        SliceKey::Summaries => Slice::Summaries(Arc::new(head_sharpness(&trace.attention, false))),
        SliceKey::Predictions => {
            let logits = trace.at(Site::global(Role::Logits))?;
            let vocab = *logits.shape.last()?;
            Slice::Predictions(Arc::new(
                positions
                    .iter()
                    .filter_map(|&position| position_logits(&logits.values, vocab, position))
                    .map(|row| {
                        top_k(row, TOP_K)
                            .into_iter()
                            .map(|p| (p.id, p.probability as f32))
                            .collect()
                    })
                    .collect(),
            ))
        }
    })
}

/// `key` reduced on the device and read back.
async fn device_slice(
    trace: &DeviceTrace,
    key: SliceKey,
    positions: &[usize],
) -> Result<Slice, crate::model::ModelError> {
    Ok(match key {
        SliceKey::Map { layer, head } => {
            let head = match head {
                HeadChoice::Mean => None,
                HeadChoice::Head(head) => Some(head),
            };
            let map = trace.map(layer, head).await?;
            Slice::Map(Arc::new(
                Matrix::new(map.queries, map.keys, map.values)
                    .unwrap_or_else(|| Matrix::zeros(0, 0)),
            ))
        }
        SliceKey::Thumbnails { layer, size } => {
            Slice::Thumbnails(Arc::new(trace.thumbnails(layer, size).await?))
        }
        SliceKey::Similarity { layer } => {
            let gram = trace.head_gram(layer).await?;
            Slice::Similarity(Arc::new(
                similarity_from_gram(&gram, trace.heads()).unwrap_or_else(|| Matrix::zeros(0, 0)),
            ))
        }
        SliceKey::Summaries => Slice::Summaries(Arc::new(trace.head_summaries().await?)),
        SliceKey::Predictions => Slice::Predictions(Arc::new(trace.top_k(positions, TOP_K).await?)),
    })
}

/// The `[queries, keys]` maps of a layer's thumbnails, one per head.
pub fn thumbnail_maps(capture: &AttentionCapture) -> Vec<Matrix> {
    (0..capture.heads)
        .filter_map(|head| head_matrix(capture, 0, head))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Capture;

    /// Two layers of two heads over three tokens, and logits over four words.
    fn trace() -> Trace {
        let layer = |index: usize| AttentionCapture {
            layer: index,
            batch: 1,
            heads: 2,
            queries: 3,
            keys: 3,
            values: (0..18).map(|i| (i + index) as f32 / 20.0).collect(),
        };
        Trace {
            attention: vec![layer(0), layer(1)],
            modules: vec![Capture {
                role: Role::Logits,
                layer: None,
                path: "output".into(),
                shape: vec![1, 3, 4],
                values: vec![0.0, 3.0, 1.0, 2.0, 5.0, 0.0, 0.0, 0.0, 1.0, 1.0, 4.0, 1.0],
            }],
        }
    }

    #[test]
    fn a_host_trace_answers_at_once_with_the_analysis_numbers() {
        let trace = trace();
        let slices = TraceSlices::new(RunTrace::Host(trace.clone()), vec![0, 2]);
        let map = slices
            .get(SliceKey::Map {
                layer: 1,
                head: HeadChoice::Head(1),
            })
            .unwrap();
        assert_eq!(
            **map.map().unwrap(),
            head_matrix(&trace.attention[1], 0, 1).unwrap()
        );
        let Some(Slice::Predictions(rows)) = slices.get(SliceKey::Predictions) else {
            panic!("no predictions");
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0].0, 1, "position 0's most likely word is 1");
        assert_eq!(rows[1][0].0, 2, "position 2's is 2");
        assert!(
            slices
                .get(SliceKey::Map {
                    layer: 2,
                    head: HeadChoice::Mean
                })
                .is_none()
        );
        assert_eq!(slices.read_bytes(), (0, 0), "nothing came from a device");
        assert_eq!(slices.trace.bytes(), 4 * (36 + 12));
    }

    #[test]
    fn the_cache_keeps_the_newest_maps_only() {
        let slices = TraceSlices::new(RunTrace::Host(trace()), Vec::new());
        let key = |layer| SliceKey::Map {
            layer,
            head: HeadChoice::Mean,
        };
        for round in 0..MAX_CACHED_MAPS + 2 {
            slices.keep(key(round), Slice::Map(Arc::new(Matrix::zeros(1, 1))));
        }
        let kept = slices.lock().len();
        assert_eq!(kept, MAX_CACHED_MAPS);
        assert!(!slices.lock().contains_key(&key(0)));
        assert!(slices.lock().contains_key(&key(MAX_CACHED_MAPS + 1)));
    }
}
