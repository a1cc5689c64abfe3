"""The paper's constants: its ten prompts, view size, strides, Style Alignment strength and method names.

Settings the engine also needs (guidance 7.5, SyncDiffusion's weight 20, 7 views wide, stride 3/4 of a view) are
the engine's defaults, referred to here, not restated."""
from ..engine.generate import DEFAULT_GUIDANCE
from ..engine.sync import DEFAULT_WEIGHT as DEFAULT_SYNC_WEIGHT
from ..engine.views import DEFAULT_STRIDE_FRACTION, DEFAULT_WIDTH_VIEWS

PAPER_PROMPTS = (
    "A photo of a city skyline at night", "A photo of a mountain range at twilight",
    "A photo of a snowy mountain peak with skiers", "Cartoon panorama of spring summer beautiful nature",
    "Natural landscape in anime style illustration", "A photo of lush forest with a babbling brook",
    "An illustration of a beach in La La Land style", "Silhouette wallpaper of a dreamy scene with shooting stars",
    "A beach with palm trees", "A film photo of a beachside street under the sunset")

PAPER_VIEW = 512                 # Stable Diffusion 2's native view, in pixels: the paper's strides are on it
SA_ALPHA = 0.4                   # the paper's Style Alignment strength (Table 2)
FIG7_ALPHA = 0.1                 # Fig. 7 / Table 4: SA with alpha 0.1 vs SyncDiffusion with weight 0.1
SYNC_WEIGHT = DEFAULT_SYNC_WEIGHT  # SyncDiffusion's default weight (Table 2's Sync row)
TABLE1_FRACTIONS = (0.25, 0.5, 0.75)         # the paper's strides 128, 256, 384 on 512 px views
FIG4_FRACTIONS = (0.125, 0.25, 0.5, 0.75)    # Fig. 4: 64, 128, 256, 384
TABLE2_METHODS = ("MD", "Sync", "Elastic", "GF", "MD+SA0.4", "GF+SA0.4", "VCF", "VCF+GF", "VCF+SA0.4",
                  "VCF+GF+SA0.4")
GUIDANCE = DEFAULT_GUIDANCE      # classifier-free guidance, as Stable Diffusion's default
WIDTH_VIEWS = DEFAULT_WIDTH_VIEWS   # 512 x 3584
STRIDE_FRACTION = DEFAULT_STRIDE_FRACTION   # 384 px on 512 px views
