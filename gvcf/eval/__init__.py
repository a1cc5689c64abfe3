"""Measurement: Inception and LPIPS features and their offline weights, metrics, image sets (datasets), the result
cache and the runtime benchmark. Imports only gvcf.engine."""
