"""Tests of the `moodring` shell: settings, errors, the command line."""
