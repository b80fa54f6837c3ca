"""clickhaul's dlt sources, one package per vendor, over the shared layer in `sources.common`."""
