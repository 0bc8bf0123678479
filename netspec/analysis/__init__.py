"""Analyses and reports over checked networks (tables, JSON)."""
