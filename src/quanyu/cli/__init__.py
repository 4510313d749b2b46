"""The `quanyu` command line."""
