"""Unit tests of pure logic and single modules, without servers."""
