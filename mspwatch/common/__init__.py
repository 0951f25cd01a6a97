"""The bottom layer: strict config loading, secrets, durations, time parsing. Imports nothing of mspwatch."""
