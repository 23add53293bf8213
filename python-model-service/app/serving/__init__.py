"""Validation, chat templating, detokenization, stop strings and chunking between the API and the engine."""
