"""Corpus manifests (YAML), installed as package data."""
