-- Loudness normalisation: the target an upload was normalised to (desired_loudness, LUFS),
-- and the stored audio's measurement, taken once and kept with the file (a JSON object:
-- integrated_lufs, mono_lufs, true_peak_dbtp) so every normalised copy starts from it.
ALTER TABLE files ADD COLUMN desired_loudness REAL;
ALTER TABLE files ADD COLUMN loudness TEXT;
