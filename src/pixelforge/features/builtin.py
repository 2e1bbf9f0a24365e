"""The built-in extractors, registered explicitly (each module calls register_extractor)."""
