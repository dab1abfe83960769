//! Media pipeline: probe -> decode -> resample -> encode.
