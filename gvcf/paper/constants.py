"""The paper's constants: its ten prompts, view size, strides, Style Alignment strength and method names.

The settings the engine needs as well are the engine's defaults, not restated here: guidance 7.5
(gvcf.engine.generate.DEFAULT_GUIDANCE), 7 views wide and a stride of 3/4 of a view (gvcf.engine.views), SyncDiffusion's
weight 20 (gvcf.engine.sync.DEFAULT_WEIGHT)."""
from ..engine.archs import SD2_NATIVE_SIZE
from ..engine.sync import DEFAULT_WEIGHT as DEFAULT_SYNC_WEIGHT

PAPER_PROMPTS = (
    "A photo of a city skyline at night", "A photo of a mountain range at twilight",
    "A photo of a snowy mountain peak with skiers", "Cartoon panorama of spring summer beautiful nature",
    "Natural landscape in anime style illustration", "A photo of lush forest with a babbling brook",
    "An illustration of a beach in La La Land style", "Silhouette wallpaper of a dreamy scene with shooting stars",
    "A beach with palm trees", "A film photo of a beachside street under the sunset")

PAPER_VIEW = SD2_NATIVE_SIZE     # Stable Diffusion 2's native view (512 px): the paper's strides are on it
SA_ALPHA = 0.4                   # the paper's Style Alignment strength (Table 2)
FIG7_ALPHA = 0.1                 # Fig. 7 / Table 4: SA with alpha 0.1 vs SyncDiffusion with weight 0.1
SYNC_WEIGHT = DEFAULT_SYNC_WEIGHT  # SyncDiffusion's default weight (Table 2's Sync row)
TABLE1_FRACTIONS = (0.25, 0.5, 0.75)         # the paper's strides 128, 256, 384 on 512 px views
FIG4_FRACTIONS = (0.125, 0.25, 0.5, 0.75)    # Fig. 4: 64, 128, 256, 384
FIG4_PROMPT = PAPER_PROMPTS[2]   # Fig. 4 here: a ridgeline by day, where a seam shows (the night city hides it)
REGION_PROMPTS = (PAPER_PROMPTS[8], PAPER_PROMPTS[0])   # beyond the paper: a beach (left) beside the night city
TABLE2_METHODS = ("MD", "Sync", "Elastic", "GF", *(f"{m}+SA{SA_ALPHA:g}" for m in ("MD", "GF")), "VCF", "VCF+GF",
                  *(f"{m}+SA{SA_ALPHA:g}" for m in ("VCF", "VCF+GF")))
