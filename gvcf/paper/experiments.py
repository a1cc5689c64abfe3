"""The experiments that reproduce the paper, by the names the chapters call them (``E.setup``, ``E.table2`` ...).

This module holds no code of its own: each idea lives in its own module, and their public names are re-exported
here so that ``from gvcf.paper import experiments as E`` keeps working.

- gvcf.paper.chapter_setup: path and step resolution, the model loaded once per kernel, Setup and setup()
- gvcf.paper.image_sets: an image set's files and images
- gvcf.paper.metric_rows: native tiles, their cached Inception features, the paper's metric row
- gvcf.paper.per_panorama: per-panorama results (the claims' data) and their standard errors
- gvcf.paper.fusion_measurements: the fused noise's variance and the fusions' column shares, without a UNet
- gvcf.paper.ssim: SSIM between methods (Table 4)
- gvcf.paper.calibration: a knob's strength calibrated by SSIM to MD
- gvcf.paper.chapter_tables: the chapters' image sets and tables, one call each
"""
from ..engine.models import resolve_device
from .calibration import CALIBRATION_DIGITS, KNOBS, Calibration, calibrate, calibrated_sets, calibration_value
from .chapter_setup import STEP_BUDGETS, Setup, load, model_tag, resolve_path, setup, steps_for
from .chapter_tables import (cost_table, figure_prompt, method_results, method_sets, metric_table, overview_table,
                             region_panoramas, seam_table, stride_results, stride_seams, stride_sets, table2)
from .fusion_measurements import expected_md_ratio, fused_noise_variance, guided_profile, variance_summary
from .image_sets import image_of, image_paths, images, prompt_of
from .metric_rows import FEATURES_FILE, Tiles, feature_caches, inception, metric_row
from .per_panorama import PER_PANORAMA, results, sharpness, standard_errors, variance_results
from .ssim import ssim_pairs, ssim_results, ssim_table
from .tables import fraction_label

__all__ = [
    "CALIBRATION_DIGITS", "FEATURES_FILE", "KNOBS", "PER_PANORAMA", "STEP_BUDGETS", "Calibration", "Setup", "Tiles",
    "calibrate", "calibrated_sets", "calibration_value", "cost_table", "expected_md_ratio", "feature_caches",
    "figure_prompt", "fraction_label", "fused_noise_variance", "guided_profile", "image_of", "image_paths", "images",
    "inception", "load", "method_results", "method_sets", "metric_row", "metric_table", "model_tag", "overview_table",
    "prompt_of", "region_panoramas", "resolve_device", "resolve_path", "results", "seam_table", "setup",
    "sharpness", "ssim_pairs", "ssim_results", "ssim_table", "standard_errors", "steps_for", "stride_results",
    "stride_seams", "stride_sets", "table2", "variance_results", "variance_summary",
]
