"""Tests of `moodring.recommender`."""
