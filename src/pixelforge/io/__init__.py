"""File input and output: images (the one guarded reader) and atomic writes."""
