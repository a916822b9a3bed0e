//! Semantic states: placeholder until the classifier lands.
