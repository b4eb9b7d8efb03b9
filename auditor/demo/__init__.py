"""The demo: synthetic checkout snapshots built from the labelled face sets."""
