//! Builds the generated artefacts (JSON Schema bundle, TypeScript, protocol reference) as
//! in-memory files. Writing them is the job of the `generate-protocol` binary; the drift
//! test compares them with the checked-in copies.
