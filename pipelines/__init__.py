"""The `clickhaul` command line and the runnable pipelines behind it."""
