"""Final models leave the pipeline: bundles, scoring of slide-only cohorts, external validation."""
