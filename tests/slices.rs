//! The device answers what a view asks: every reduction `DeviceTrace` makes on the device (one
//! head, the mean of heads, thumbnails, head similarity, entropies, top-k predictions) equals
//! the host computation on the full trace of the same run, ≤ 1e-6. This runs on burn-flex; the
//! page's `?parity=slices` check runs the same comparison on WebGPU in the browser.

use burn::tensor::Device;
use glassbox::analysis::predictions::top_k;
use glassbox::analysis::{
    choose_among, choose_opening_view, head_matrix, head_sharpness, head_similarity,
    mean_over_heads, similarity_from_gram, thumbnails,
};
use glassbox::model::{
    DeviceTrace, Positional, Role, Site, Trace, Transformer, TransformerConfig, run_on_device,
    run_traced,
};

const TOLERANCE: f64 = 1e-6;

/// Both sides of one run: the trace on the device and the whole trace read back.
fn both(model: &Transformer, tokens: usize) -> (DeviceTrace, Trace) {
    let batch = vec![
        (0..tokens)
            .map(|t| ((t * 37 + 11) % 1000) as u32)
            .collect::<Vec<_>>(),
    ];
    let device = Device::flex();
    let on_device = pollster::block_on(run_on_device(model, &batch, None, &device)).unwrap();
    let host = pollster::block_on(run_traced(model, &batch, &device)).unwrap();
    (on_device, host)
}

fn assert_close(what: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let allowed = TOLERANCE * f64::from(e.abs()).max(1.0);
        assert!(
            f64::from((a - e).abs()) <= allowed,
            "{what}[{index}]: device {a} vs host {e}"
        );
    }
}

fn model(causal: bool) -> Transformer {
    TransformerConfig::new(1000, 64, 4, 128, 3)
        .with_positional(Positional::Learned)
        .with_max_seq_len(256)
        .with_causal(causal)
        .init_seeded(5, &Device::flex())
        .unwrap()
}

#[test]
fn maps_means_and_thumbnails_made_on_the_device_equal_the_host_ones() {
    let (device, host) = both(&model(false), 77);
    assert_eq!(
        (device.layers(), device.heads(), device.tokens()),
        (3, 4, 77)
    );
    for attention in &host.attention {
        let layer = attention.layer;
        for head in 0..attention.heads {
            let map = pollster::block_on(device.map(layer, Some(head))).unwrap();
            let expected = head_matrix(attention, 0, head).unwrap();
            assert_eq!((map.queries, map.keys), (expected.rows, expected.cols));
            assert_close("head map", &map.values, &expected.values);
        }
        let mean = pollster::block_on(device.map(layer, None)).unwrap();
        assert_close(
            "mean of heads",
            &mean.values,
            &mean_over_heads(attention, 0).unwrap().values,
        );
        // 77 tokens into 10 bins (lengths 7 and 8) and a size past the length (whole maps).
        for size in [10, 77, 128] {
            let small = pollster::block_on(device.thumbnails(layer, size)).unwrap();
            let expected = thumbnails(attention, 0, size).unwrap();
            assert_eq!(
                (small.heads, small.queries, small.keys),
                (expected.heads, expected.queries, expected.keys)
            );
            assert_close("thumbnails", &small.values, &expected.values);
        }
        let gram = pollster::block_on(device.head_gram(layer)).unwrap();
        let similarity = similarity_from_gram(&gram, attention.heads).unwrap();
        assert_close(
            "head similarity",
            &similarity.values,
            &head_similarity(attention, 0).unwrap().values,
        );
    }
    let all = pollster::block_on(device.thumbnails_of(&[0, 1, 2], 16)).unwrap();
    assert_eq!(all.len(), 3);
    let expected = thumbnails(&host.attention[2], 0, 16).unwrap();
    assert_eq!((all[2].layer, all[2].heads, all[2].queries), (2, 4, 16));
    assert_close(
        "thumbnails of several layers",
        &all[2].values,
        &expected.values,
    );
    assert!(pollster::block_on(device.map(3, None)).is_err());
    assert!(pollster::block_on(device.map(0, Some(4))).is_err());
}

#[test]
fn head_entropies_and_the_opening_choice_made_on_the_device_equal_the_host_ones() {
    for causal in [false, true] {
        let (device, host) = both(&model(causal), 40);
        let on_device = pollster::block_on(device.head_summaries()).unwrap();
        let expected = head_sharpness(&host.attention, causal);
        assert_eq!(on_device.len(), expected.len());
        for (a, e) in on_device.iter().zip(&expected) {
            assert_eq!((a.layer, a.head), (e.layer, e.head));
            for (what, x, y) in [
                ("entropy", a.entropy, e.entropy),
                (
                    "normalised entropy",
                    a.normalised_entropy,
                    e.normalised_entropy,
                ),
                ("top share", a.top_key.1, e.top_key.1),
            ] {
                assert!(
                    (x - y).abs() <= TOLERANCE * y.abs().max(1.0),
                    "causal {causal}, layer {} head {}: {what} {x} vs {y}",
                    a.layer,
                    a.head
                );
            }
            assert_eq!(a.top_key.0, e.top_key.0);
        }
        assert_eq!(
            choose_among(&on_device).map(|view| (view.layer, view.head)),
            choose_opening_view(&host.attention, causal).map(|view| (view.layer, view.head))
        );
    }
}

#[test]
fn top_k_predictions_made_on_the_device_equal_the_host_ones() {
    let (device, host) = both(&model(true), 30);
    let logits = host.at(Site::global(Role::Logits)).unwrap();
    let vocab = logits.shape[2];
    let positions = [0, 7, 29, 99];
    let predicted = pollster::block_on(device.top_k(&positions, 5)).unwrap();
    // Position 99 is past the text and is dropped.
    assert_eq!(predicted.len(), 3);
    for (&position, predictions) in positions.iter().zip(&predicted) {
        let row = &logits.values[position * vocab..(position + 1) * vocab];
        let expected = top_k(row, 5);
        let ids: Vec<u32> = predictions.iter().map(|&(id, _)| id).collect();
        let expected_ids: Vec<u32> = expected.iter().map(|p| p.id).collect();
        assert_eq!(ids, expected_ids, "position {position}");
        for (&(_, p), e) in predictions.iter().zip(&expected) {
            assert!(
                (f64::from(p) - e.probability).abs() <= TOLERANCE,
                "{p} vs {e:?}"
            );
        }
    }
}

#[test]
fn the_export_path_reads_back_the_whole_trace_exactly() {
    let (device, host) = both(&model(false), 12);
    let mut heard = Vec::new();
    let read =
        pollster::block_on(device.read_all(|done, total| heard.push((done, total)))).unwrap();
    assert_eq!(read, host);
    let total = host.attention.len() + host.modules.len();
    assert_eq!(heard.last(), Some(&(total, total)));
    assert_eq!(heard.len(), total);
    // The trace's size on the device is every captured value, four bytes each.
    let values: usize = host.attention.iter().map(|a| a.values.len()).sum::<usize>()
        + host.modules.iter().map(|m| m.values.len()).sum::<usize>();
    assert_eq!(device.device_bytes(), 4 * values);
    let site = Site::layer(Role::FeedForwardHidden, 1);
    assert_eq!(
        &pollster::block_on(device.capture(site)).unwrap(),
        host.at(site).unwrap()
    );
}
