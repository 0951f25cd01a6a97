"""Patch compliance and endpoint protection exporter: NinjaOne, Intune via Graph."""
