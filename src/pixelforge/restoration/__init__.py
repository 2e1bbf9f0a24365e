"""Restoration: degradations that make training pairs, masks, and per-task helpers."""
