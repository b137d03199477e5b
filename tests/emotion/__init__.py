"""Tests of `moodring.emotion`."""
