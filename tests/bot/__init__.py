"""Tests of `moodring.bot`."""
