//! The hop and rollback orchestration against a fake runtime (no daemon).
