"""Helpers that tests/ and bench/ share: lab handles, call helpers, the OpenAI-compatible test
double, a throwaway PostgreSQL. Never imported by product code."""
