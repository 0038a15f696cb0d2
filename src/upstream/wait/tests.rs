//! Waiting for a job: polls shared, ends kept.
