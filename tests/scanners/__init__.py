"""Tests of the scanner analysis: corpus, security, sandbox, proof, actor, command."""
