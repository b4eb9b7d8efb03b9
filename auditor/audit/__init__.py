"""The nightly audit: join sales with snapshots, find the shopper's face, estimate, flag."""
