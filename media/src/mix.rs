//! Channel up/down-mixing of interleaved blocks.

/// Converts interleaved `input` with `from` channels into `to` channels, appending to `out`.
///
/// Rules: same count copies; anything to mono averages all channels (equal weights,
/// so a stereo recording keeps its level); mono to N copies the channel; N to 2
/// (N > 2) sends even-indexed channels left and odd ones right, averaged, so
/// nothing is dropped; other counts copy the first `to` channels, zero-filling.
pub fn mix(input: &[f32], from: usize, to: usize, out: &mut Vec<f32>) {
    if from == 0 || to == 0 {
        return;
    }
    let frames = input.len() / from;
    if from == to {
        out.extend_from_slice(&input[..frames * from]);
        return;
    }
    out.reserve(frames * to);
    match (from, to) {
        (2, 1) => out.extend(input.chunks_exact(2).map(|f| (f[0] + f[1]) * 0.5)),
        (_, 1) => {
            let k = 1.0 / from as f32;
            out.extend(input.chunks_exact(from).map(|f| f.iter().sum::<f32>() * k));
        }
        (1, _) => {
            for &s in input {
                out.extend(std::iter::repeat_n(s, to));
            }
        }
        (_, 2) => {
            let left_n = from.div_ceil(2) as f32;
            let right_n = (from / 2) as f32;
            for f in input.chunks_exact(from) {
                let (mut l, mut r) = (0.0, 0.0);
                for (i, &s) in f.iter().enumerate() {
                    if i % 2 == 0 {
                        l += s;
                    } else {
                        r += s;
                    }
                }
                out.push(l / left_n);
                out.push(r / right_n);
            }
        }
        _ => {
            for f in input.chunks_exact(from) {
                for c in 0..to {
                    out.push(f.get(c).copied().unwrap_or(0.0));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mix;

    #[test]
    fn stereo_to_mono_averages() {
        let mut out = Vec::new();
        mix(&[1.0, 0.0, 0.5, 0.5], 2, 1, &mut out);
        assert_eq!(out, vec![0.5, 0.5]);
    }

    #[test]
    fn mono_to_stereo_duplicates() {
        let mut out = Vec::new();
        mix(&[0.25, -1.0], 1, 2, &mut out);
        assert_eq!(out, vec![0.25, 0.25, -1.0, -1.0]);
    }

    #[test]
    fn six_to_two_keeps_every_channel() {
        let mut out = Vec::new();
        mix(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0], 6, 2, &mut out);
        assert_eq!(out, vec![1.0, 0.0]);
    }
}
