"""Tests of `moodring.training`."""
