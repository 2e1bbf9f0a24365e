"""Losses shared by the families."""
